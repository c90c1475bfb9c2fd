//! The monitor: the parent side of a container, and its only watcher (a
//! docker "shim"). Run as `rctl __rctl-monitor ROOT ID [--detached]`: `rctl
//! run` execs into it when attached (so signals to `rctl` reach it), or
//! spawns it in its own session when detached (it then tells `rctl` on
//! its stdout whether the container started, and lives on).
//!
//! It creates the cgroup, clones the init into new namespaces, puts it in
//! the cgroup, hands it its spec, learns whether the exec worked, then
//! supervises: signals forwarded, pty relayed, `-p` relays served. When
//! the container's PID 1 exits (taking its namespaces and mounts with it),
//! it records the exit code and an OOM kill, removes the cgroup, and with
//! `--rm` the container.

use super::cgroup;
use super::config::{ContainerConfig, InitSpec, Network};
use super::containers::{Container, Containers};
use super::init::{InitFailure, ERROR_FD, SPEC_FD};
use super::session::{block_signals, supervise, PtyRelay, RawTerminal};
use super::state::{process_start, Status};
use super::{io, time, Result, RuntimeError, INIT_ARG};
use crate::applier::dirfd::LayerDir;
use crate::build::layers::LayerView;
use crate::snapshot::Snapshotter;
use nix::fcntl::OFlag;
use std::ffi::CString;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Where a started container's output goes.
pub enum Attach {
    /// The caller's terminal or pipes (`rctl run` without `-d`).
    Foreground,
    /// The container's log; the outcome of the start is written to stdout.
    Detached,
}

/// The overlay2 root of an engine root.
pub fn layers_root(root: &Path) -> std::path::PathBuf {
    root.join("overlay2")
}

/// Runs the monitor for container `id`; returns the exit code for the process.
pub fn main(root: &Path, id: &str, attach: Attach) -> i32 {
    let detached = matches!(attach, Attach::Detached);
    let containers = match Containers::open(root) {
        Ok(c) => c,
        Err(e) => return started(detached, Err(e.to_string()), 125),
    };
    let container = match containers.load(id) {
        Ok(c) => c,
        Err(e) => return started(detached, Err(e.to_string()), 125),
    };
    match run(root, &containers, &container, detached) {
        Ok(code) => code,
        Err((code, message)) => started(detached, Err(message), code),
    }
}

/// Reports the outcome of a start: to `rctl` waiting on our stdout when
/// detached, else on stderr. Returns `code`.
fn started(detached: bool, outcome: std::result::Result<(), String>, code: i32) -> i32 {
    if detached {
        let mut out = std::io::stdout();
        let _ = match &outcome {
            Ok(()) => writeln!(out, "ok"),
            Err(message) => writeln!(out, "{code} {message}"),
        };
        let _ = out.flush();
        // Let `rctl` go: our stdout becomes /dev/null.
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let _ = nix::unistd::dup2_stdout(&null);
        }
    } else if let Err(message) = &outcome {
        eprintln!("rctl: {message}");
    }
    code
}

fn etc_files(config: &ContainerConfig, dir: &Path) -> Result<Vec<(String, String)>> {
    let host_network = config.network == Network::Host;
    let hosts = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
            config.hostname
        )
    };
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    // A nameserver on the host's loopback is unreachable from a network namespace.
    let resolv: String = host_resolv
        .lines()
        .filter(|l| {
            host_network || !(l.starts_with("nameserver 127.") || l.starts_with("nameserver ::1"))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let mut files = Vec::new();
    for (name, content) in [
        ("hosts", hosts),
        ("hostname", format!("{}\n", config.hostname)),
        ("resolv.conf", resolv),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(io(&path))?;
        files.push((path.to_string_lossy().into_owned(), format!("/etc/{name}")));
    }
    Ok(files)
}

/// `containers/<id>/init/`: empty mount points for `/proc`, `/dev`,
/// `/sys`, the `/etc` files and every volume, below the container's own
/// layer (so creating them does not write into it). A volume's place is
/// resolved in the image's layers as the container will see it (symlinks
/// followed inside the image, `..` stopping at `/`) and made with
/// no-follow calls: nothing an image or a user names lands outside `init/`.
fn init_layer(
    dir: &Path,
    config: &ContainerConfig,
    image_layers: Vec<std::path::PathBuf>,
) -> Result<std::path::PathBuf> {
    let init = dir.join("init");
    let mkdir = |path: &Path| std::fs::create_dir_all(path).map_err(io(path));
    let touch = |path: &Path| -> Result<()> {
        if let Some(parent) = path.parent() {
            mkdir(parent)?;
        }
        if !path.exists() {
            std::fs::File::create(path).map_err(io(path))?;
        }
        Ok(())
    };
    for sub in ["proc", "dev", "sys"] {
        mkdir(&init.join(sub))?;
    }
    for file in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        touch(&init.join(file))?;
    }
    let image = LayerView {
        layers: image_layers,
    };
    let layer = LayerDir::open(&init).map_err(super::sys("open the init layer"))?;
    for mount in &config.mounts {
        let invalid = |why: String| {
            RuntimeError::Invalid(format!("mount point {}: {why}", mount.destination))
        };
        let components = image
            .resolve(Path::new(&mount.destination))
            .map_err(|e| invalid(e.to_string()))?;
        let made = if Path::new(&mount.source).is_file() {
            layer.file(&components).map(drop)
        } else {
            layer.directory(&components).map(drop)
        };
        // One the image's own files are in the way of is made at mount time instead.
        if let Err(Some(errno)) = made {
            return Err(invalid(errno.desc().to_string()));
        }
    }
    Ok(init)
}

/// A descriptor copied to 10 or above, so that placing the child's
/// descriptors at 0..=4 cannot overwrite one not yet placed.
fn high(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we then own.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if new < 0 {
        return Err(io(Path::new("fcntl"))(std::io::Error::last_os_error()));
    }
    // SAFETY: `new` is a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

type Failed = (i32, String);

fn fail125(e: RuntimeError) -> Failed {
    (125, e.to_string())
}

fn run(
    root: &Path,
    containers: &Containers,
    container: &Container,
    detached: bool,
) -> std::result::Result<i32, Failed> {
    let config = &container.config;
    let dir = &container.dir;
    if container.state.is_running() {
        return Err((125, format!("container {} is already running", config.name)));
    }
    // The root: the image's layers, plus this container's upper dir.
    let layers_root = layers_root(root);
    let (lowerdir, image_layers) = match config.layers.last() {
        Some(top) => Snapshotter::open(&layers_root)
            .and_then(|s| Ok((s.lowerdir(top)?, s.lower_paths(top)?)))
            .map_err(|e| (125, e.to_string()))?,
        None => {
            let empty = dir.join("empty");
            std::fs::create_dir_all(&empty).map_err(|e| (125, e.to_string()))?;
            (empty.to_string_lossy().into_owned(), Vec::new())
        }
    };
    // Mount points live in an init layer under the upper dir, as docker's
    // `-init` layer: they never show in `diff` or a commit.
    let init_layer = init_layer(dir, config, image_layers).map_err(fail125)?;
    let lowerdir = format!("{}:{lowerdir}", init_layer.display());
    let spec = InitSpec {
        layers_root: layers_root.to_string_lossy().into_owned(),
        lowerdir,
        upperdir: dir.join("upper").to_string_lossy().into_owned(),
        workdir: dir.join("work").to_string_lossy().into_owned(),
        rootfs: dir.join("rootfs").to_string_lossy().into_owned(),
        mounts: config.mounts.clone(),
        hostname: config.hostname.clone(),
        private_network: config.network != Network::Host,
        etc_files: etc_files(config, dir).map_err(fail125)?,
        process: config.process.clone(),
        init: config.init,
        confinement: super::security::Confinement::for_container(&config.security)
            .map_err(fail125)?,
    };
    let listeners = super::ports::bind(&config.ports).map_err(|e| (125, e))?;

    // Standard streams for the container.
    let null = |write: bool| {
        std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| (125, format!("/dev/null: {e}")))
    };
    let log = || {
        let path = dir.join("container.log");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map(OwnedFd::from)
            .map_err(|e| (125, format!("{}: {e}", path.display())))
    };
    let mut master: Option<OwnedFd> = None;
    let stdio: [OwnedFd; 3] = if config.process.tty {
        let size = window_size();
        let pty =
            nix::pty::openpty(size.as_ref(), None).map_err(|e| (125, format!("openpty: {e}")))?;
        master = Some(pty.master);
        let slave = pty.slave;
        [
            slave.try_clone().map_err(|e| (125, e.to_string()))?,
            slave.try_clone().map_err(|e| (125, e.to_string()))?,
            slave,
        ]
    } else if detached {
        [null(false)?, log()?, log()?]
    } else {
        let stdin = if config.process.interactive {
            std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| (125, e.to_string()))?
        } else {
            null(false)?
        };
        let out = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| (125, e.to_string()))?;
        let err = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| (125, e.to_string()))?;
        [stdin, out, err]
    };

    let cgroup = cgroup::for_container(&config.id);
    cgroup.create(&config.resources).map_err(fail125)?;
    let result = start_and_watch(
        containers, container, &spec, stdio, master, listeners, &*cgroup, detached,
    );
    let _ = cgroup.remove();
    result
}

fn window_size() -> Option<nix::pty::Winsize> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return None;
    }
    // SAFETY: winsize is four integers, for which all-zero bytes are a valid value.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills one winsize struct.
    if unsafe { libc::ioctl(stdin.as_raw_fd(), libc::TIOCGWINSZ, &mut size) } != 0 {
        return None;
    }
    Some(nix::pty::Winsize {
        ws_row: size.ws_row,
        ws_col: size.ws_col,
        ws_xpixel: size.ws_xpixel,
        ws_ypixel: size.ws_ypixel,
    })
}

#[allow(clippy::too_many_arguments)]
fn start_and_watch(
    containers: &Containers,
    container: &Container,
    spec: &InitSpec,
    stdio: [OwnedFd; 3],
    master: Option<OwnedFd>,
    listeners: Vec<(std::net::TcpListener, u16)>,
    cgroup: &dyn cgroup::Cgroup,
    detached: bool,
) -> std::result::Result<i32, Failed> {
    let config = &container.config;
    let (spec_read, spec_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| (125, e.to_string()))?;
    let (error_read, error_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| (125, e.to_string()))?;
    let exe =
        std::fs::File::open("/proc/self/exe").map_err(|e| (125, format!("/proc/self/exe: {e}")))?;
    let mut child_fds = Vec::new();
    for fd in stdio
        .iter()
        .map(|f| f.as_fd())
        .chain([spec_read.as_fd(), error_write.as_fd()])
    {
        child_fds.push(high(fd).map_err(fail125)?);
    }
    let signals = block_signals().map_err(fail125)?;
    let argv = [
        c"rctl-init".to_owned(),
        CString::new(INIT_ARG).unwrap_or_default(),
    ];
    let envp: [CString; 0] = [];

    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if config.network != Network::Host {
        flags |= libc::CLONE_NEWNET;
    }
    let raw: Vec<RawFd> = child_fds.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: a fork-like clone (no new stack) of this single-threaded
    // process; the child only calls dup2 and execveat, both async-signal-safe.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // The child: place its descriptors, then become the init.
        // SAFETY: this is the cloned child of a single-threaded process
        // (no other thread can hold a lock the child would need); it only
        // calls dup2, fexecve and _exit. The descriptors in `raw` are open
        // (`child_fds` owns them in the child's copy of memory), `exe`,
        // `argv` and `envp` were made before the clone, and on a failed
        // exec `_exit` ends the child without running the parent's cleanup.
        unsafe {
            for (target, source) in raw.iter().enumerate() {
                libc::dup2(*source, target as RawFd);
            }
            let _ = nix::unistd::fexecve(&exe, &argv, &envp);
            libc::_exit(125);
        }
    }
    if pid < 0 {
        return Err((125, format!("clone: {}", std::io::Error::last_os_error())));
    }
    let pid = pid as i32;
    drop(child_fds);
    drop(stdio);
    drop(spec_read);
    drop(error_write);
    debug_assert_eq!((SPEC_FD, ERROR_FD), (3, 4));
    let child = nix::unistd::Pid::from_raw(pid);

    // In the cgroup before anything of the container runs.
    if let Err(e) = cgroup.add(pid) {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(child, None);
        return Err(fail125(e));
    }
    let json = serde_json::to_vec(spec).map_err(|e| (125, e.to_string()))?;
    let mut spec_pipe = std::fs::File::from(spec_write);
    let _ = spec_pipe.write_all(&json);
    drop(spec_pipe);
    let mut report = Vec::new();
    let _ = std::fs::File::from(error_read).read_to_end(&mut report);
    if !report.is_empty() {
        let status = nix::sys::wait::waitpid(child, None);
        let failure: InitFailure = serde_json::from_slice(&report).unwrap_or(InitFailure {
            code: super::session::exit_code(
                status.unwrap_or(nix::sys::wait::WaitStatus::StillAlive),
            )
            .unwrap_or(125),
            message: String::from_utf8_lossy(&report).into_owned(),
        });
        let mut state = container.state.clone();
        state.status = Status::Exited;
        state.exit_code = failure.code;
        state.error = failure.message.clone();
        state.finished_at = time::now_nanos();
        let _ = containers.save_state(&config.id, &state);
        if config.auto_remove {
            let _ = containers.remove(container);
        }
        return Err((failure.code, failure.message));
    }

    let mut state = container.state.clone();
    state.status = Status::Running;
    state.paused = false;
    state.pid = pid;
    state.pid_start = process_start(pid).unwrap_or(0);
    state.monitor_pid = std::process::id() as i32;
    state.monitor_start = process_start(state.monitor_pid).unwrap_or(0);
    state.started_at = time::now_nanos();
    state.exit_code = 0;
    state.error.clear();
    state.oom_killed = false;
    let _ = containers.save_state(&config.id, &state);
    if detached {
        started(true, Ok(()), 0);
    }
    super::ports::serve(pid, listeners);

    let stdin = std::io::stdin();
    let attached_terminal = !detached && stdin.is_terminal();
    let log = if detached && master.is_some() {
        let path = container.dir.join("container.log");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ok()
            .map(OwnedFd::from)
    } else {
        None
    };
    let stdout = std::io::stdout();
    let code = {
        let _raw = if attached_terminal && master.is_some() {
            RawTerminal::enter(stdin.as_fd())
        } else {
            None
        };
        let relay = master.as_ref().map(|m| PtyRelay {
            master: m.as_fd(),
            input: (!detached && config.process.interactive).then(|| stdin.as_fd()),
            output: match &log {
                Some(l) => l.as_fd(),
                None => stdout.as_fd(),
            },
        });
        supervise(child, &signals, relay, false).map_err(fail125)?
    };
    let oom = cgroup.oom_killed();
    state.status = Status::Exited;
    state.paused = false;
    state.exit_code = code;
    state.oom_killed = oom;
    state.finished_at = time::now_nanos();
    let _ = containers.save_state(&config.id, &state);
    if oom && !detached {
        eprintln!(
            "rctl: container {} was killed: out of memory (limit {} bytes)",
            config.name,
            config.resources.memory.unwrap_or(0)
        );
    }
    if config.auto_remove {
        let _ = cgroup.remove();
        let _ = containers.remove(container);
    }
    Ok(code)
}

/// Whether this kernel can mount overlay (for a clear error before a start).
pub fn overlay_supported() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|f| f.lines().any(|l| l.trim_end().ends_with("overlay")))
        .unwrap_or(true)
}
