//! `exec`: a new process in a running container. The calling process
//! (single-threaded) opens the container's namespaces and cgroup files,
//! enters the namespaces (the pid namespace takes effect for its
//! children), and forks: the child joins the cgroup, takes the user and
//! working directory, and execs; the caller supervises it like the
//! monitor does its container.

use super::cgroup;
use super::containers::Container;
use super::process::{resolve_user, DEFAULT_PATH};
use super::session::{block_signals, reset_signals, supervise, PtyRelay, RawTerminal};
use super::{io, sys, Result, RuntimeError};
use nix::sched::{setns, CloneFlags};
use std::ffi::CString;
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::Path;

pub struct ExecOptions {
    pub args: Vec<String>,
    /// Added to the container's environment.
    pub env: Vec<String>,
    /// Default: the container's user.
    pub user: Option<String>,
    /// Default: the container's working directory.
    pub cwd: Option<String>,
    pub tty: bool,
    pub interactive: bool,
}

/// Runs the command in the container; returns its exit code.
pub fn exec(container: &Container, options: &ExecOptions) -> Result<i32> {
    if !container.state.is_running() {
        return Err(RuntimeError::NotRunning(container.config.id.clone()));
    }
    if container.state.paused {
        return Err(RuntimeError::Invalid(format!(
            "container {} is paused, unpause the container before exec",
            container.config.id
        )));
    }
    if options.args.is_empty() {
        return Err(RuntimeError::Invalid("no command given".into()));
    }
    let pid = container.state.pid;
    let namespaces: Vec<(std::fs::File, CloneFlags)> = [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ]
    .into_iter()
    .map(|(name, flag)| {
        let path = format!("/proc/{pid}/ns/{name}");
        std::fs::File::open(&path)
            .map(|f| (f, flag))
            .map_err(io(Path::new(&path)))
    })
    .collect::<Result<_>>()?;
    let procs: Vec<std::fs::File> = cgroup::for_container(&container.config.id)
        .paths()
        .into_iter()
        .filter_map(|dir| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
                .ok()
        })
        .collect();
    let pty = if options.tty {
        Some(nix::pty::openpty(None, None).map_err(sys("openpty"))?)
    } else {
        None
    };
    let stdin = std::io::stdin();
    if let Some(pty) = &pty {
        if stdin.is_terminal() {
            super::session::copy_window_size(stdin.as_fd(), pty.master.as_fd());
        }
    }
    let mut env = container.config.process.env.clone();
    for entry in &options.env {
        let key = entry.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    let user_spec = options
        .user
        .clone()
        .unwrap_or_else(|| container.config.process.user.clone());
    let cwd = options
        .cwd
        .clone()
        .unwrap_or_else(|| container.config.process.cwd.clone());
    let keep_mknod = super::cgroup::restricts_devices();
    let signals = block_signals()?;
    for (file, flag) in &namespaces {
        setns(file, *flag).map_err(sys("join the container's namespaces"))?;
    }
    // SAFETY: this process is single-threaded (exec runs without the async runtime).
    match unsafe { nix::unistd::fork() }.map_err(sys("fork"))? {
        nix::unistd::ForkResult::Child => {
            let code = child(
                &procs,
                pty.as_ref().map(|p| &p.slave),
                options,
                &env,
                &user_spec,
                &cwd,
                keep_mknod,
            );
            std::process::exit(code)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(procs);
            let stdout = std::io::stdout();
            let _raw = match &pty {
                Some(_) if stdin.is_terminal() => RawTerminal::enter(stdin.as_fd()),
                _ => None,
            };
            let relay = pty.as_ref().map(|p| PtyRelay {
                master: p.master.as_fd(),
                input: options.interactive.then(|| stdin.as_fd()),
                output: stdout.as_fd(),
            });
            supervise(child, &signals, relay, false)
        }
    }
}

/// The forked process: cgroup, session, user, directory, exec. Returns an exit code on failure.
fn child(
    procs: &[std::fs::File],
    slave: Option<&std::os::fd::OwnedFd>,
    options: &ExecOptions,
    env: &[String],
    user_spec: &str,
    cwd: &str,
    keep_mknod: bool,
) -> i32 {
    for mut file in procs {
        let _ = file.write_all(b"0");
    }
    let _ = nix::unistd::setsid();
    if let Some(slave) = slave {
        let _ = nix::unistd::dup2_stdin(slave);
        let _ = nix::unistd::dup2_stdout(slave);
        let _ = nix::unistd::dup2_stderr(slave);
        // SAFETY: TIOCSCTTY on our new stdin, the pty slave.
        unsafe {
            libc::ioctl(0, libc::TIOCSCTTY, 0);
        }
    } else if !options.interactive {
        if let Ok(null) = std::fs::File::open("/dev/null") {
            let _ = nix::unistd::dup2_stdin(&null);
        }
    }
    if let Err(e) = super::init::drop_capabilities(keep_mknod) {
        eprintln!("rctl: {e}");
        return 126;
    }
    let user = match resolve_user(Path::new("/"), user_spec) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("rctl: {e}");
            return 126;
        }
    };
    use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
    let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    if let Err(e) = setgroups(&groups)
        .and_then(|_| setgid(Gid::from_raw(user.gid)))
        .and_then(|_| setuid(Uid::from_raw(user.uid)))
    {
        eprintln!("rctl: set user {user_spec}: {e}");
        return 126;
    }
    let cwd = if cwd.is_empty() { "/" } else { cwd };
    if let Err(e) = std::env::set_current_dir(cwd) {
        eprintln!("rctl: chdir to {cwd}: {e}");
        return 126;
    }
    let mut env = env.to_vec();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    let name = &options.args[0];
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let program = if name.contains('/') {
        Some(name.clone())
    } else {
        path_var
            .split(':')
            .map(|d| format!("{d}/{name}"))
            .find(|p| {
                Path::new(p).is_file()
                    && nix::unistd::access(p.as_str(), nix::unistd::AccessFlags::X_OK).is_ok()
            })
    };
    let Some(program) = program else {
        eprintln!("rctl: exec: \"{name}\": executable file not found in $PATH");
        return 127;
    };
    let to_c = |s: &str| CString::new(s).unwrap_or_default();
    let args: Vec<CString> = options.args.iter().map(|a| to_c(a)).collect();
    let envp: Vec<CString> = env.iter().map(|e| to_c(e)).collect();
    reset_signals();
    let error = match nix::unistd::execve(&to_c(&program), &args, &envp) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    eprintln!("rctl: exec: \"{name}\": {}", error.desc().to_lowercase());
    if error == nix::errno::Errno::ENOENT {
        127
    } else {
        126
    }
}
