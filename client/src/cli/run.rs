//! `run`, `create` and `start`: an image made into a container (pulled
//! and unpacked when missing), and a container started by its monitor,
//! attached (this process becomes the monitor) or detached.

use super::images::{pull_quietly, store_name};
use super::{reference, CliError, Context};
use clap::{ArgAction, Args};
use rengine::runtime::config::{ContainerConfig, MountConfig, Network, ProcessConfig, Resources};
use rengine::runtime::containers::Containers;
use rengine::runtime::image::{self, RunnableImage};
use rengine::runtime::monitor::layers_root;
use rengine::runtime::security::{SecurityConfig, SecurityFlags};
use rengine::runtime::volumes::Volumes;
use rengine::runtime::{ports, process, time, MONITOR_ARG};
use rengine::snapshot::Snapshotter;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// Name the container.
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass this one's).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long)]
    env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// User (name or uid, optionally :group).
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Container host name (default: the short container id).
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Network: default (a private namespace with loopback), none (the same), or host.
    #[arg(long, default_value = "default")]
    network: String,
    /// Bind mount or volume: HOST-PATH:PATH[:ro], NAME:PATH[:ro], or PATH (anonymous volume).
    #[arg(short = 'v', long = "volume")]
    volumes: Vec<String>,
    /// Publish a port: [IP:]HOSTPORT:CONTAINERPORT (IP defaults to 127.0.0.1).
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Memory limit (bytes, or with k, m, g).
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// CPUs (a fraction).
    #[arg(long)]
    cpus: Option<f64>,
    /// Maximum number of processes.
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Run a reaper as PID 1 that forwards signals and reaps zombies.
    #[arg(long)]
    init: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Keep standard input open.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    tty: bool,
    /// Override the image's ENTRYPOINT.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Platform to pull when the image is missing.
    #[arg(long)]
    platform: Option<String>,
    /// Pull: missing, always or never.
    #[arg(long, default_value = "missing")]
    pull: String,
    /// Seconds `stop` waits before killing.
    #[arg(long)]
    stop_timeout: Option<u64>,
    /// Signal `stop` sends first.
    #[arg(long)]
    stop_signal: Option<String>,
    /// Security options: seccomp=unconfined|builtin|FILE (a docker profile),
    /// no-new-privileges[=true|false].
    #[arg(long = "security-opt")]
    security_opt: Vec<String>,
    /// Add a Linux capability (NET_ADMIN or CAP_NET_ADMIN; ALL for every one).
    #[arg(long = "cap-add")]
    cap_add: Vec<String>,
    /// Drop a Linux capability (ALL for every one).
    #[arg(long = "cap-drop")]
    cap_drop: Vec<String>,
    /// Mount the container's root filesystem read-only.
    #[arg(long = "read-only")]
    read_only: bool,
    image: String,
    /// The command and its arguments (default: the image's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    detach: bool,
    #[command(flatten)]
    create: CreateArgs,
}

#[derive(Args)]
pub struct StartArgs {
    /// Attach to the container's output and wait for it (one container).
    #[arg(short = 'a', long)]
    attach: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `64m` → 67108864.
pub fn parse_bytes(text: &str) -> Result<u64, CliError> {
    let text = text.trim().to_ascii_lowercase();
    let text = text.strip_suffix('b').unwrap_or(&text);
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("invalid size: {text:?}").into()),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid size: {text:?}"))?;
    Ok((value * (1u64 << shift) as f64) as u64)
}

/// The image, from the store or pulled; unpacked.
fn ensure_image(context: &Context, args: &CreateArgs) -> Result<(String, RunnableImage), CliError> {
    let reference = reference(&args.image)?;
    let name = store_name(&reference);
    let store = context.store()?;
    let stored = store.resolve(&name)?;
    let needs_pull = match args.pull.as_str() {
        "always" => true,
        "never" | "missing" => stored.is_none(),
        other => {
            return Err(format!("invalid --pull value {other:?} (missing, always, never)").into())
        }
    };
    let manifest = if needs_pull {
        if args.pull == "never" {
            return Err(format!("No such image: {name}").into());
        }
        if stored.is_none() {
            eprintln!("Unable to find image '{name}' locally");
        }
        let pulled = pull_quietly(context, &store, &reference, args.platform.as_deref())?;
        eprintln!("Digest: {}", pulled.digest);
        eprintln!("Status: Downloaded newer image for {}", pulled.name);
        pulled.manifest_digest
    } else {
        stored
            .map(|s| s.digest)
            .ok_or_else(|| format!("No such image: {name}"))?
    };
    let snapshots = Snapshotter::open(layers_root(&context.root))?;
    Ok((name, image::prepare(&store, &snapshots, &manifest, 4)?))
}

fn mounts(root: &Path, args: &CreateArgs, image: &Value) -> Result<Vec<MountConfig>, CliError> {
    let volumes = Volumes::open(root)?;
    let mut mounts: Vec<MountConfig> = Vec::new();
    for spec in &args.volumes {
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, destination, mode) = match parts.as_slice() {
            [dest] => (None, *dest, ""),
            [src, dest] => (Some(*src), *dest, ""),
            [src, dest, mode] => (Some(*src), *dest, *mode),
            _ => return Err(format!("invalid volume specification: {spec:?}").into()),
        };
        if !destination.starts_with('/') {
            return Err(format!(
                "invalid volume specification: {spec:?}: the container path must be absolute"
            )
            .into());
        }
        let readonly = match mode {
            "" | "rw" => false,
            "ro" => true,
            other => return Err(format!("invalid mode {other:?} in volume {spec:?}").into()),
        };
        let mount = match source {
            Some(src) if src.starts_with('/') || src.starts_with('.') => MountConfig {
                kind: "bind".into(),
                source: std::path::absolute(src)?.to_string_lossy().into_owned(),
                name: None,
                anonymous: false,
                destination: destination.into(),
                readonly,
            },
            Some(name) => MountConfig {
                kind: "volume".into(),
                source: volumes.create(name)?.to_string_lossy().into_owned(),
                name: Some(name.into()),
                anonymous: false,
                destination: destination.into(),
                readonly,
            },
            None => anonymous(&volumes, destination)?,
        };
        mounts.push(mount);
    }
    // The image's VOLUMEs not mounted over get anonymous volumes, as docker gives them.
    if let Some(paths) = image.get("Volumes").and_then(Value::as_object) {
        for path in paths.keys() {
            if !mounts
                .iter()
                .any(|m| m.destination.trim_end_matches('/') == path.trim_end_matches('/'))
            {
                mounts.push(anonymous(&volumes, path)?);
            }
        }
    }
    Ok(mounts)
}

fn anonymous(volumes: &Volumes, destination: &str) -> Result<MountConfig, CliError> {
    let (name, data) = volumes.create_anonymous()?;
    Ok(MountConfig {
        kind: "volume".into(),
        source: data.to_string_lossy().into_owned(),
        name: Some(name),
        anonymous: true,
        destination: destination.into(),
        readonly: false,
    })
}

fn resources(args: &CreateArgs) -> Result<Resources, CliError> {
    let memory = args.memory.as_deref().map(parse_bytes).transpose()?;
    if memory.is_some_and(|m| m < 6 * 1024 * 1024) {
        return Err("Minimum memory limit allowed is 6MB".into());
    }
    if args.cpus.is_some_and(|c| !(c > 0.0 && c.is_finite())) {
        return Err("Range of CPUs is from 0.01 to the number of CPUs available".into());
    }
    Ok(Resources {
        memory,
        cpus: args.cpus,
        pids_limit: args.pids_limit,
    })
}

/// Creates the container; returns its id.
fn create_container(
    context: &Context,
    args: &CreateArgs,
) -> Result<(Containers, String), CliError> {
    // Checked first: a bad profile or capability fails before any pull.
    let security = SecurityConfig::from_flags(&SecurityFlags {
        security_opt: &args.security_opt,
        cap_add: &args.cap_add,
        cap_drop: &args.cap_drop,
        read_only: args.read_only,
    })?;
    let (image_name, image) = ensure_image(context, args)?;
    let containers = Containers::open(&context.root)?;
    let id = Containers::new_id();
    let name = match &args.name {
        Some(name) => {
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                return Err(format!(
                    "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )
                .into());
            }
            name.clone()
        }
        None => containers.generate_name()?,
    };
    // With the host's network, the host's name too (as docker does).
    let host_network = args.network == "host";
    let hostname = match &args.hostname {
        Some(name) => name.clone(),
        None if host_network => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| id[..12].to_string()),
        None => id[..12].to_string(),
    };
    let mut given_env = Vec::new();
    for file in &args.env_file {
        given_env.extend(process::env_file(file)?);
    }
    given_env.extend(args.env.iter().cloned());
    let config_str = |key: &str| {
        image
            .config
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let network = match args.network.as_str() {
        "default" | "bridge" | "none" => Network::None,
        "host" => Network::Host,
        other => return Err(format!("network {other} not found (default, none, host)").into()),
    };
    let ports = args
        .publish
        .iter()
        .map(|p| ports::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    if network == Network::Host && !ports.is_empty() {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
    }
    let config = ContainerConfig {
        id: id.clone(),
        name,
        image: image_name,
        image_id: image.id.clone(),
        image_manifest: Some(image.manifest.clone()),
        layers: image.layers.clone(),
        created: time::now_nanos(),
        process: ProcessConfig {
            args: process::command(&image.config, args.entrypoint.as_deref(), &args.args)?,
            env: process::environment(&image.config, &given_env, &hostname, args.tty),
            cwd: args
                .workdir
                .clone()
                .unwrap_or_else(|| match config_str("WorkingDir") {
                    dir if dir.is_empty() => "/".into(),
                    dir => dir,
                }),
            user: args.user.clone().unwrap_or_else(|| config_str("User")),
            tty: args.tty,
            interactive: args.interactive,
        },
        hostname,
        network,
        mounts: mounts(&context.root, args, &image.config)?,
        ports: if network == Network::Host {
            Vec::new()
        } else {
            ports
        },
        resources: resources(args)?,
        init: args.init,
        auto_remove: args.rm,
        stop_signal: args
            .stop_signal
            .clone()
            .unwrap_or_else(|| match config_str("StopSignal") {
                s if s.is_empty() => "SIGTERM".into(),
                s => s,
            }),
        stop_timeout: args.stop_timeout.unwrap_or(10),
        image_config: image.config.clone(),
        security,
    };
    containers.create(&config)?;
    Ok((containers, id))
}

pub fn create(context: &Context, args: CreateArgs) -> Result<i32, CliError> {
    let (_, id) = create_container(context, &args)?;
    println!("{id}");
    Ok(0)
}

pub fn run(context: &Context, args: RunArgs) -> Result<i32, CliError> {
    let (_, id) = create_container(context, &args.create)?;
    if args.detach {
        start_detached(context, &id)?;
        println!("{id}");
        Ok(0)
    } else {
        Err(become_monitor(context, &id))
    }
}

/// The engine root as an absolute path (the monitor works from `/`).
fn absolute(root: &Path) -> PathBuf {
    std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf())
}

/// Replaces this process with the container's monitor, attached to our
/// terminal: signals sent to `rctl` reach it, its exit code is ours.
fn become_monitor(context: &Context, id: &str) -> CliError {
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new("/proc/self/exe")
        .arg0("rctl")
        .arg(MONITOR_ARG)
        .arg(absolute(&context.root))
        .arg(id)
        .exec();
    format!("cannot start the container monitor: {error}").into()
}

/// Starts the monitor in its own session and waits for it to say whether
/// the container started.
fn start_detached(context: &Context, id: &str) -> Result<(), CliError> {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let mut command = std::process::Command::new("/proc/self/exe");
    command
        .arg0("rctl")
        .arg(MONITOR_ARG)
        .arg(absolute(&context.root))
        .arg(id)
        .arg("--detached")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut monitor = command.spawn()?;
    let mut said = String::new();
    if let Some(mut out) = monitor.stdout.take() {
        out.read_to_string(&mut said)?;
    }
    // The monitor lives on; reap it if it already ended (a failed start).
    let _ = monitor.try_wait();
    let said = said.trim();
    if said == "ok" {
        return Ok(());
    }
    let (code, message) = said.split_once(' ').unwrap_or(("125", said));
    let message = if message.is_empty() {
        "the container monitor ended without a word"
    } else {
        message
    };
    Err(Box::new(super::ExitError {
        code: code.parse().unwrap_or(125),
        message: message.to_string(),
    }))
}

pub fn start(context: &Context, args: StartArgs) -> Result<i32, CliError> {
    let containers = Containers::open(&context.root)?;
    if args.attach {
        if args.containers.len() != 1 {
            return Err("you cannot start and attach multiple containers at once".into());
        }
        let container = containers.find(&args.containers[0])?;
        if container.state.is_running() {
            return Err(format!("container {} is already running", args.containers[0]).into());
        }
        return Err(become_monitor(context, &container.config.id));
    }
    for name in &args.containers {
        let container = containers.find(name)?;
        if !container.state.is_running() {
            start_detached(context, &container.config.id)?;
        }
        println!("{name}");
    }
    Ok(0)
}
