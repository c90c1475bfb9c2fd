//! The command line: global options, the verbs, and what they share (the
//! transport, the content store, reference parsing).

mod build;
mod commit;
mod containers;
mod images;
mod progress;
mod remote;
mod run;
mod units;

use clap::{Parser, Subcommand};
use rctl::credentials::CredentialStore;
use rctl::reference::{default_registry, ImageReference};
use rctl::transport::{Transport, TransportOptions};
use rengine::store::ContentStore;
use std::path::PathBuf;

/// An error for the user: one line, with its causes.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(name = "rctl", version, about = "Registry client and image engine")]
pub struct Cli {
    /// Engine root holding the local image store (default /var/lib/rctl as root, else $XDG_DATA_HOME/rctl).
    #[arg(long, global = true, env = "RCTL_ROOT")]
    root: Option<PathBuf>,
    /// Allow plain HTTP or unverified TLS for this registry host (repeatable).
    #[arg(long, global = true, value_name = "HOST")]
    insecure: Vec<String>,
    /// Trust this CA certificate (PEM) besides the system roots (repeatable).
    #[arg(long, global = true, value_name = "FILE")]
    ca_cert: Vec<PathBuf>,
    /// Print debug logs.
    #[arg(long, short = 'D', global = true)]
    pub debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Log in to a registry (credentials are stored in docker's config.json).
    Login(remote::LoginArgs),
    /// Log out from a registry.
    Logout { host: String },
    /// List the tags of a repository.
    Tags(remote::ListArgs),
    /// List the repositories of a registry.
    Catalog(remote::ListArgs),
    /// Print an image's raw manifest.
    Manifest { reference: String },
    /// Print the digest an image reference resolves to.
    Digest { reference: String },
    /// Delete a manifest (by digest) or a tag from a registry.
    Delete { reference: String },
    /// Show a container's configuration and state, or an image's manifest and config (local if stored, else remote).
    Inspect { reference: String },
    /// Copy an image between registries or OCI layouts (oci:PATH:NAME), with no local copy.
    Copy(images::CopyArgs),
    /// Download an image into the local store.
    Pull(images::PullArgs),
    /// Upload an image from the local store.
    Push(images::PushArgs),
    /// List the images in the local store.
    Images(images::ImagesArgs),
    /// Give a stored image another name.
    Tag { source: String, target: String },
    /// Remove image names, and the blobs no other image uses.
    Rmi {
        /// Untag even when a container uses the image.
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        references: Vec<String>,
    },
    /// Write stored images to a tar archive (docker-archive, or OCI with --format oci).
    Save(images::SaveArgs),
    /// Read images from a docker-archive or OCI archive.
    Load(images::LoadArgs),
    /// Create a container from an image and start it (pulling the image when missing).
    Run(run::RunArgs),
    /// Create a container without starting it.
    Create(run::CreateArgs),
    /// Start created or stopped containers.
    Start(run::StartArgs),
    /// Stop running containers (their stop signal, then SIGKILL).
    Stop(containers::StopArgs),
    /// Send a signal to running containers.
    Kill(containers::KillArgs),
    /// Remove containers.
    Rm(containers::RmArgs),
    /// List containers.
    Ps(containers::PsArgs),
    /// Print a container's output (kept for detached containers).
    Logs(containers::LogsArgs),
    /// Freeze every process of containers.
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Thaw paused containers.
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Run a command in a running container.
    Exec(containers::ExecArgs),
    /// Show containers' CPU, memory and process counts.
    Stats(containers::StatsArgs),
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
    /// Make an image of a container's changes.
    Commit(commit::CommitArgs),
    /// List what changed in a container's files (A added, C changed, D deleted).
    Diff { container: String },
    /// Write a container's files as a tar.
    Export(commit::ExportArgs),
    /// Make an image of a tar of files.
    Import(commit::ImportArgs),
    /// Show how an image was made.
    History(commit::HistoryArgs),
    /// Manage named volumes.
    #[command(subcommand)]
    Volume(containers::VolumeCommand),
}

/// An error that carries the exit code to leave with (a container's, or docker's 125).
#[derive(Debug)]
pub struct ExitError {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for ExitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitError {}

/// Runs a future on a runtime made for it: only the verbs that talk to a
/// registry start one, so the container verbs stay single-threaded.
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(runtime.block_on(future))
}

/// What every verb may need.
pub struct Context {
    /// Made on first use: container verbs never talk to a registry, and
    /// loading the system's TLS roots is most of a short verb's time.
    transport: std::sync::OnceLock<Transport>,
    transport_options: TransportOptions,
    root: PathBuf,
}

impl Context {
    pub fn store(&self) -> Result<ContentStore, CliError> {
        Ok(ContentStore::open(&self.root)?)
    }

    pub fn transport(&self) -> Result<&Transport, CliError> {
        if let Some(transport) = self.transport.get() {
            return Ok(transport);
        }
        let made = Transport::new(self.transport_options.clone(), CredentialStore::from_env())?;
        Ok(self.transport.get_or_init(|| made))
    }
}

/// Parses a reference against the default registry.
pub fn reference(text: &str) -> Result<ImageReference, CliError> {
    Ok(ImageReference::parse(text, &default_registry())?)
}

fn default_root() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let root_user = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if root_user {
        return PathBuf::from("/var/lib/rctl");
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("rctl")
}

/// The exit code a failure of this verb gives (docker's 125 for `run`, `create` and `start`).
pub fn failure_code(cli: &Cli) -> i32 {
    match cli.command {
        Command::Run(_) | Command::Create(_) | Command::Start(_) => 125,
        _ => 1,
    }
}

/// Runs the verb; returns the exit code.
pub fn run(cli: Cli) -> Result<i32, CliError> {
    let options = TransportOptions {
        insecure_hosts: cli.insecure.iter().cloned().collect(),
        ca_certs: cli.ca_cert.clone(),
        retry: rctl::transport::retry::RetryPolicy::from_env(),
    };
    let context = Context {
        transport: std::sync::OnceLock::new(),
        transport_options: options,
        root: cli.root.clone().unwrap_or_else(default_root),
    };
    match cli.command {
        Command::Login(args) => block_on(remote::login(&context, args))?.map(|()| 0),
        Command::Logout { host } => remote::logout(&host).map(|()| 0),
        Command::Tags(args) => block_on(remote::tags(&context, args))?.map(|()| 0),
        Command::Catalog(args) => block_on(remote::catalog(&context, args))?.map(|()| 0),
        Command::Manifest { reference } => {
            block_on(remote::manifest(&context, &reference))?.map(|()| 0)
        }
        Command::Digest { reference } => {
            block_on(remote::digest(&context, &reference))?.map(|()| 0)
        }
        Command::Delete { reference } => {
            block_on(remote::delete(&context, &reference))?.map(|()| 0)
        }
        Command::Inspect { reference } => match containers::find(&context, &reference) {
            Some(container) => {
                let json = serde_json::to_string_pretty(&[containers::inspect_json(&container)])?;
                println!("{json}");
                Ok(0)
            }
            None => block_on(remote::inspect(&context, &reference))?.map(|()| 0),
        },
        Command::Copy(args) => block_on(images::copy(&context, args))?.map(|()| 0),
        Command::Pull(args) => block_on(images::pull(&context, args))?.map(|()| 0),
        Command::Push(args) => block_on(images::push(&context, args))?.map(|()| 0),
        Command::Images(args) => images::images(&context, args).map(|()| 0),
        Command::Tag { source, target } => images::tag(&context, &source, &target).map(|()| 0),
        Command::Rmi { references, force } => images::rmi(&context, &references, force).map(|()| 0),
        Command::Save(args) => images::save(&context, args).map(|()| 0),
        Command::Load(args) => images::load(&context, args).map(|()| 0),
        Command::Run(args) => run::run(&context, args),
        Command::Create(args) => run::create(&context, args),
        Command::Start(args) => run::start(&context, args),
        Command::Stop(args) => containers::stop(&context, args),
        Command::Kill(args) => containers::kill_verb(&context, args),
        Command::Rm(args) => containers::rm(&context, args),
        Command::Ps(args) => containers::ps(&context, args),
        Command::Logs(args) => containers::logs(&context, args),
        Command::Pause { containers: names } => containers::pause(&context, &names, true),
        Command::Unpause { containers: names } => containers::pause(&context, &names, false),
        Command::Exec(args) => containers::exec_verb(&context, args),
        Command::Stats(args) => containers::stats(&context, args),
        Command::Volume(command) => containers::volume(&context, command),
        Command::Build(args) => build::run(&context, args),
        Command::Commit(args) => commit::commit(&context, args),
        Command::Diff { container } => commit::diff(&context, &container),
        Command::Export(args) => commit::export(&context, args),
        Command::Import(args) => commit::import(&context, args),
        Command::History(args) => commit::history(&context, args),
    }
}
