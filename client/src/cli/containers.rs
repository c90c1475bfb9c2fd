//! Verbs on existing containers: stop, kill, rm, ps, inspect, logs,
//! pause, unpause, exec, stats, and volumes. None needs the network, and
//! `exec` must run single-threaded, so these run without the async runtime.

use super::{CliError, Context};
use clap::{Args, Subcommand};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rengine::runtime::cgroup;
use rengine::runtime::containers::{Container, Containers};
use rengine::runtime::exec::{exec, ExecOptions};
use rengine::runtime::state::Status;
use rengine::runtime::time::{ago, rfc3339};
use rengine::runtime::volumes::Volumes;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait before killing (default: the container's stop timeout, 10).
    #[arg(short = 't', long = "time")]
    time: Option<u64>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Kill a running container first.
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default: running ones).
    #[arg(short = 'a', long)]
    all: bool,
    /// Only ids.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Do not truncate ids and commands.
    #[arg(long)]
    no_trunc: bool,
}

#[derive(Args)]
pub struct LogsArgs {
    /// Keep printing output as it comes, until the container stops.
    #[arg(short = 'f', long)]
    follow: bool,
    container: String,
}

#[derive(Args)]
#[command(disable_help_flag = true)]
pub struct ExecArgs {
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[arg(short = 'i', long)]
    interactive: bool,
    #[arg(short = 't', long)]
    tty: bool,
    #[arg(short = 'u', long)]
    user: Option<String>,
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

#[derive(Args)]
pub struct StatsArgs {
    /// Print one sample and exit.
    #[arg(long)]
    no_stream: bool,
    /// Containers (default: all running).
    containers: Vec<String>,
}

#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a named volume.
    Create { name: String },
    /// List volumes.
    Ls {
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Remove volumes no container uses.
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

fn containers(context: &Context) -> Result<Containers, CliError> {
    Ok(Containers::open(&context.root)?)
}

/// A signal by name (`TERM`, `SIGTERM`) or number.
pub fn parse_signal(text: &str) -> Result<Signal, CliError> {
    if let Ok(number) = text.parse::<i32>() {
        return Ok(Signal::try_from(number)?);
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Ok(name
        .parse::<Signal>()
        .map_err(|_| format!("invalid signal: {text}"))?)
}

/// Waits until the monitor recorded the exit (or was found gone).
fn wait_exited(containers: &Containers, id: &str, limit: Duration) -> Result<bool, CliError> {
    let deadline = Instant::now() + limit;
    loop {
        if containers.load(id)?.state.status != Status::Running {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops a running container: its stop signal, then SIGKILL after `timeout` seconds.
fn stop_one(containers: &Containers, container: &Container, timeout: u64) -> Result<(), CliError> {
    if !container.state.is_running() {
        return Ok(());
    }
    let pid = Pid::from_raw(container.state.pid);
    if container.state.paused {
        // A frozen process cannot act on a signal.
        cgroup::for_container(&container.config.id).freeze(false)?;
    }
    let signal = parse_signal(&container.config.stop_signal).unwrap_or(Signal::SIGTERM);
    let _ = kill(pid, signal);
    if !wait_exited(
        containers,
        &container.config.id,
        Duration::from_secs(timeout),
    )? {
        let _ = kill(pid, Signal::SIGKILL);
        wait_exited(containers, &container.config.id, Duration::from_secs(10))?;
    }
    Ok(())
}

pub fn stop(context: &Context, args: StopArgs) -> Result<i32, CliError> {
    let containers = containers(context)?;
    for name in &args.containers {
        let container = containers.find(name)?;
        stop_one(
            &containers,
            &container,
            args.time.unwrap_or(container.config.stop_timeout),
        )?;
        println!("{name}");
    }
    Ok(0)
}

pub fn kill_verb(context: &Context, args: KillArgs) -> Result<i32, CliError> {
    let containers = containers(context)?;
    let signal = parse_signal(&args.signal)?;
    for name in &args.containers {
        let container = containers.find(name)?;
        if !container.state.is_running() {
            return Err(format!(
                "Cannot kill container: {name}: container {} is not running",
                container.config.id
            )
            .into());
        }
        kill(Pid::from_raw(container.state.pid), signal)?;
        if signal == Signal::SIGKILL {
            wait_exited(&containers, &container.config.id, Duration::from_secs(10))?;
        }
        println!("{name}");
    }
    Ok(0)
}

pub fn rm(context: &Context, args: RmArgs) -> Result<i32, CliError> {
    let containers = containers(context)?;
    let mut failed = false;
    for name in &args.containers {
        let result = (|| -> Result<(), CliError> {
            let container = containers.find(name)?;
            if container.state.is_running() {
                if !args.force {
                    return Err(format!("You cannot remove a running container {}. Stop the container before attempting removal or force remove", container.config.id).into());
                }
                if container.state.paused {
                    cgroup::for_container(&container.config.id).freeze(false)?;
                }
                let _ = kill(Pid::from_raw(container.state.pid), Signal::SIGKILL);
                wait_exited(&containers, &container.config.id, Duration::from_secs(10))?;
            }
            // An --rm container's monitor may have removed it meanwhile.
            if let Ok(current) = containers.load(&container.config.id) {
                containers.remove(&current)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn short_command(args: &[String], no_trunc: bool) -> String {
    let command = args.join(" ");
    if !no_trunc && command.chars().count() > 20 {
        format!("\"{}…\"", command.chars().take(19).collect::<String>())
    } else {
        format!("\"{command}\"")
    }
}

pub(super) fn print_table(rows: &[Vec<String>]) {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = std::io::stdout().lock();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == columns {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

pub fn ps(context: &Context, args: PsArgs) -> Result<i32, CliError> {
    let mut all = containers(context)?.list()?;
    all.reverse(); // newest first, as docker lists
    let shown: Vec<&Container> = all
        .iter()
        .filter(|c| args.all || c.state.is_running())
        .collect();
    if args.quiet {
        for c in shown {
            println!(
                "{}",
                if args.no_trunc {
                    &c.config.id[..]
                } else {
                    &c.config.id[..12]
                }
            );
        }
        return Ok(0);
    }
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for c in shown {
        let ports: Vec<String> = c
            .config
            .ports
            .iter()
            .map(|p| format!("{}:{}->{}/tcp", p.host_ip, p.host_port, p.container_port))
            .collect();
        rows.push(vec![
            if args.no_trunc {
                c.config.id.clone()
            } else {
                c.config.id[..12].to_string()
            },
            c.config.image.clone(),
            short_command(&c.config.process.args, args.no_trunc),
            ago(c.config.created),
            c.state.describe(),
            ports.join(", "),
            c.config.name.clone(),
        ]);
    }
    print_table(&rows);
    Ok(0)
}

/// A list as docker's `inspect` shows it: `null` when empty.
fn non_empty(items: &[String]) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        json!(items)
    }
}

/// docker's `inspect` document for a container.
pub fn inspect_json(c: &Container) -> Value {
    let config = &c.config;
    let state = &c.state;
    let at = |n: u128| {
        if n == 0 {
            "0001-01-01T00:00:00Z".to_string()
        } else {
            rfc3339(n)
        }
    };
    let running = state.is_running();
    json!({
        "Id": config.id,
        "Created": rfc3339(config.created),
        "Path": config.process.args.first(),
        "Args": config.process.args.get(1..).unwrap_or_default(),
        "State": {
            "Status": state.status_word(),
            "Running": running,
            "Paused": running && state.paused,
            "OOMKilled": state.oom_killed,
            "Dead": false,
            "Pid": if running { state.pid } else { 0 },
            "ExitCode": state.exit_code,
            "Error": state.error,
            "StartedAt": at(state.started_at),
            "FinishedAt": at(state.finished_at),
        },
        "Image": config.image_id.to_string(),
        "Name": format!("/{}", config.name),
        "LogPath": c.dir.join("container.log"),
        "HostnamePath": c.dir.join("hostname"),
        "HostsPath": c.dir.join("hosts"),
        "ResolvConfPath": c.dir.join("resolv.conf"),
        "Mounts": config.mounts.iter().map(|m| json!({
            "Type": m.kind,
            "Name": m.name,
            "Source": m.source,
            "Destination": m.destination,
            "Mode": if m.readonly { "ro" } else { "" },
            "RW": !m.readonly,
        })).collect::<Vec<_>>(),
        "Config": {
            "Hostname": config.hostname,
            "User": config.process.user,
            "Tty": config.process.tty,
            "OpenStdin": config.process.interactive,
            "Env": config.process.env,
            "Cmd": config.process.args,
            "Image": config.image,
            "WorkingDir": config.process.cwd,
            "Entrypoint": config.image_config.get("Entrypoint"),
            "Labels": config.image_config.get("Labels").cloned().unwrap_or(json!({})),
            "StopSignal": config.stop_signal,
        },
        "HostConfig": {
            "NetworkMode": match config.network {
                rengine::runtime::config::Network::Host => "host",
                rengine::runtime::config::Network::None => "default",
            },
            "AutoRemove": config.auto_remove,
            "Init": config.init,
            "Memory": config.resources.memory.unwrap_or(0),
            "NanoCpus": config.resources.cpus.map(|c| (c * 1e9) as u64).unwrap_or(0),
            "PidsLimit": config.resources.pids_limit,
            "SecurityOpt": non_empty(&config.security.security_opt),
            "CapAdd": non_empty(&config.security.cap_add),
            "CapDrop": non_empty(&config.security.cap_drop),
            "ReadonlyRootfs": config.security.readonly_rootfs,
            "PortBindings": config.ports.iter().map(|p| (format!("{}/tcp", p.container_port), json!([{"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}]))).collect::<serde_json::Map<_, _>>(),
        },
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "UpperDir": c.dir.join("upper"),
                "WorkDir": c.dir.join("work"),
                "MergedDir": c.dir.join("rootfs"),
            }
        },
    })
}

/// The container named `name`, if there is one (for `inspect`, which also takes images).
pub fn find(context: &Context, name: &str) -> Option<Container> {
    Containers::open(&context.root).ok()?.find(name).ok()
}

pub fn logs(context: &Context, args: LogsArgs) -> Result<i32, CliError> {
    let containers = containers(context)?;
    let container = containers.find(&args.container)?;
    let path = container.dir.join("container.log");
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n > 0 {
            out.write_all(&buf[..n])?;
            continue;
        }
        out.flush()?;
        if !args.follow {
            return Ok(0);
        }
        match containers.load(&container.config.id) {
            Ok(c) if c.state.status == Status::Running => {}
            _ => {
                // Stopped: print what came in at the end, then stop following.
                while let Ok(n) = file.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n])?;
                }
                return Ok(0);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn pause(context: &Context, names: &[String], frozen: bool) -> Result<i32, CliError> {
    let containers = containers(context)?;
    for name in names {
        let mut container = containers.find(name)?;
        if !container.state.is_running() {
            return Err(format!("Container {} is not running", container.config.id).into());
        }
        if container.state.paused == frozen {
            let word = if frozen {
                "already paused"
            } else {
                "not paused"
            };
            return Err(format!("Container {} is {word}", container.config.id).into());
        }
        cgroup::for_container(&container.config.id).freeze(frozen)?;
        container.state.paused = frozen;
        containers.save_state(&container.config.id, &container.state)?;
        println!("{name}");
    }
    Ok(0)
}

pub fn exec_verb(context: &Context, args: ExecArgs) -> Result<i32, CliError> {
    let container = containers(context)?.find(&args.container)?;
    Ok(exec(
        &container,
        &ExecOptions {
            args: args.command,
            env: args.env,
            user: args.user,
            cwd: args.workdir,
            tty: args.tty,
            interactive: args.interactive,
        },
    )?)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

pub fn stats(context: &Context, args: StatsArgs) -> Result<i32, CliError> {
    let containers = containers(context)?;
    let chosen = || -> Result<Vec<Container>, CliError> {
        if args.containers.is_empty() {
            Ok(containers
                .list()?
                .into_iter()
                .filter(|c| c.state.is_running())
                .collect())
        } else {
            args.containers
                .iter()
                .map(|n| Ok(containers.find(n)?))
                .collect()
        }
    };
    let sample = |list: &[Container]| -> Vec<(u64, Instant)> {
        list.iter()
            .map(|c| {
                let usage = cgroup::for_container(&c.config.id)
                    .usage()
                    .unwrap_or_default();
                (usage.cpu_nanos, Instant::now())
            })
            .collect()
    };
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        let list = chosen()?;
        let before = sample(&list);
        std::thread::sleep(Duration::from_millis(if args.no_stream {
            500
        } else {
            1000
        }));
        let mut rows = vec![[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "PIDS",
        ]
        .map(String::from)
        .to_vec()];
        for (c, (cpu_before, at)) in list.iter().zip(&before) {
            let usage = cgroup::for_container(&c.config.id)
                .usage()
                .unwrap_or_default();
            let now = Instant::now();
            let wall = now.duration_since(*at).as_nanos().max(1) as f64;
            let cpu = usage.cpu_nanos.saturating_sub(*cpu_before) as f64 / wall * 100.0;
            let limit = usage.memory_limit.unwrap_or_else(host_memory);
            rows.push(vec![
                c.config.id[..12].to_string(),
                c.config.name.clone(),
                format!("{cpu:.2}%"),
                format!(
                    "{} / {}",
                    super::units::binary(usage.memory_bytes),
                    super::units::binary(limit)
                ),
                format!(
                    "{:.2}%",
                    usage.memory_bytes as f64 / limit.max(1) as f64 * 100.0
                ),
                usage.pids.to_string(),
            ]);
        }
        if terminal && !args.no_stream {
            print!("\x1b[2J\x1b[H");
        }
        print_table(&rows);
        if args.no_stream {
            return Ok(0);
        }
    }
}

pub fn volume(context: &Context, command: VolumeCommand) -> Result<i32, CliError> {
    let volumes = Volumes::open(&context.root)?;
    match command {
        VolumeCommand::Create { name } => {
            volumes.create(&name)?;
            println!("{name}");
        }
        VolumeCommand::Ls { quiet } => {
            if !quiet {
                println!("DRIVER    VOLUME NAME");
            }
            for name in volumes.list()? {
                if quiet {
                    println!("{name}");
                } else {
                    println!("local     {name}");
                }
            }
        }
        VolumeCommand::Rm { names } => {
            let containers = containers(context)?;
            for name in names {
                volumes.remove(&name, &containers)?;
                println!("{name}");
            }
        }
    }
    Ok(0)
}
