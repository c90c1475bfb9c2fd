//! The command line: global options, the verbs, and what they share (the
//! transport, the content store, reference parsing).

mod images;
mod progress;
mod remote;

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
    /// Show an image's manifest and config (local if stored, else remote).
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
    Rmi { references: Vec<String> },
    /// Write stored images to a tar archive (docker-archive, or OCI with --format oci).
    Save(images::SaveArgs),
    /// Read images from a docker-archive or OCI archive.
    Load(images::LoadArgs),
}

/// What every verb may need.
pub struct Context {
    pub transport: Transport,
    root: PathBuf,
}

impl Context {
    pub fn store(&self) -> Result<ContentStore, CliError> {
        Ok(ContentStore::open(&self.root)?)
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

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let options = TransportOptions {
        insecure_hosts: cli.insecure.iter().cloned().collect(),
        ca_certs: cli.ca_cert.clone(),
        ..TransportOptions::default()
    };
    let context = Context {
        transport: Transport::new(options, CredentialStore::from_env())?,
        root: cli.root.clone().unwrap_or_else(default_root),
    };
    match cli.command {
        Command::Login(args) => remote::login(&context, args).await,
        Command::Logout { host } => remote::logout(&host),
        Command::Tags(args) => remote::tags(&context, args).await,
        Command::Catalog(args) => remote::catalog(&context, args).await,
        Command::Manifest { reference } => remote::manifest(&context, &reference).await,
        Command::Digest { reference } => remote::digest(&context, &reference).await,
        Command::Delete { reference } => remote::delete(&context, &reference).await,
        Command::Inspect { reference } => remote::inspect(&context, &reference).await,
        Command::Copy(args) => images::copy(&context, args).await,
        Command::Pull(args) => images::pull(&context, args).await,
        Command::Push(args) => images::push(&context, args).await,
        Command::Images(args) => images::images(&context, args),
        Command::Tag { source, target } => images::tag(&context, &source, &target),
        Command::Rmi { references } => images::rmi(&context, &references),
        Command::Save(args) => images::save(&context, args),
        Command::Load(args) => images::load(&context, args),
    }
}
