//! `exec`: a new process in a running container. The calling process
//! (single-threaded) opens the container's namespaces and cgroup files,
//! enters the namespaces (the pid namespace takes effect for its
//! children), and forks: the child joins the cgroup, takes the user and
//! working directory, and execs; the caller supervises it like the
//! monitor does its container.

use super::cgroup;
use super::containers::Container;
use super::launch::{drop_capabilities, find_program, launch, with_home, Launch};
use super::process::resolve_user;
use super::security::Confinement;
use super::session::{block_signals, supervise, PtyRelay, RawTerminal};
use super::{io, sys, Result, RuntimeError};
use nix::sched::{setns, CloneFlags};
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
    let keep_mknod = cgroup::restricts_devices();
    // The same capabilities and seccomp filter as the container's command, as docker exec.
    let confinement = Confinement::for_container(&container.config.security)?;
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
                (&confinement, keep_mknod),
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

/// The forked process: cgroup, terminal, then [`launch`]. Returns an exit code on failure.
fn child(
    procs: &[std::fs::File],
    slave: Option<&std::os::fd::OwnedFd>,
    options: &ExecOptions,
    env: &[String],
    user_spec: &str,
    cwd: &str,
    (confinement, keep_mknod): (&Confinement, bool),
) -> i32 {
    for mut file in procs {
        let _ = file.write_all(b"0");
    }
    if let Some(slave) = slave {
        let _ = nix::unistd::dup2_stdin(slave);
        let _ = nix::unistd::dup2_stdout(slave);
        let _ = nix::unistd::dup2_stderr(slave);
    } else if !options.interactive {
        if let Ok(null) = std::fs::File::open("/dev/null") {
            let _ = nix::unistd::dup2_stdin(&null);
        }
    }
    if let Err(e) = drop_capabilities(confinement, keep_mknod) {
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
    let env = with_home(env, &user);
    let failure = match find_program(&options.args[0], &env) {
        Ok(program) => {
            let command = Launch {
                args: &options.args,
                env: &env,
                user: &user,
                user_spec,
                cwd,
                tty: slave.is_some(),
                confinement,
            };
            launch(&program, &command, 126)
        }
        Err(failure) => failure,
    };
    eprintln!("rctl: {}", failure.message);
    failure.code
}
