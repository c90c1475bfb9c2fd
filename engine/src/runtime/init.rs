//! The container's first process, run as `rctl __rctl-init` by the
//! monitor's `clone` into new namespaces (it is PID 1 there). It reads
//! its [`InitSpec`] from fd 3 (the monitor writes it once the process is
//! in its cgroup), builds the root (read-only with `--read-only`), sets
//! hostname, network, user and working directory, cuts capabilities,
//! installs the seccomp filter, and execs the command. A failure before the exec is
//! written to fd 4 (closed on exec, so the monitor reading it to EOF
//! learns whether the exec happened) with the exit code docker would give.
//!
//! With `--init` it forks the command instead and stays as PID 1: it
//! forwards signals to the command, reaps every orphan, and exits with
//! the command's status (what docker-init/tini do).

use super::config::InitSpec;
use super::process::resolve_user;
use super::rootfs;
use super::session::{block_signals, reset_signals, supervise};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

/// The spec pipe's read end in the init process.
pub const SPEC_FD: i32 = 3;
/// The error pipe's write end in the init process.
pub const ERROR_FD: i32 = 4;

pub use super::launch::Failure as InitFailure;
use super::launch::{drop_capabilities, fail, find_program, launch, with_home, Launch};

fn set_cloexec(fd: i32) {
    // SAFETY: fcntl on a descriptor number; an invalid one just fails.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

/// The init process's entry point; never returns.
pub fn main() -> ! {
    reset_signals();
    set_cloexec(SPEC_FD);
    set_cloexec(ERROR_FD);
    let failure = match read_spec() {
        Ok(spec) => run(&spec),
        Err(e) => e,
    };
    report(&failure);
    std::process::exit(failure.code)
}

fn report(failure: &InitFailure) {
    // SAFETY: ERROR_FD was given to this process by the monitor and is used only here.
    let mut pipe = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(ERROR_FD) });
    if let Ok(json) = serde_json::to_vec(failure) {
        let _ = pipe.write_all(&json);
    }
}

fn read_spec() -> Result<InitSpec, InitFailure> {
    // SAFETY: SPEC_FD was given to this process by the monitor and is used only here.
    let mut pipe = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(SPEC_FD) });
    let mut bytes = Vec::new();
    pipe.read_to_end(&mut bytes)
        .map_err(|e| fail(1, format!("read the container spec: {e}")))?;
    if bytes.is_empty() {
        // The monitor went away before starting us.
        std::process::exit(1);
    }
    serde_json::from_slice(&bytes).map_err(|e| fail(1, format!("bad container spec: {e}")))
}

/// Builds the container and execs its command; returns only on failure.
fn run(spec: &InitSpec) -> InitFailure {
    let keep_mknod = super::cgroup::restricts_devices();
    if let Err(e) = rootfs::build_and_enter(spec) {
        return fail(1, e.to_string());
    }
    if let Err(e) = nix::unistd::sethostname(&spec.hostname) {
        return fail(1, format!("sethostname: {e}"));
    }
    if spec.private_network {
        if let Err(e) = loopback_up() {
            return fail(1, format!("bring up loopback: {e}"));
        }
    }
    let user = match resolve_user(Path::new("/"), &spec.process.user) {
        Ok(user) => user,
        Err(e) => return fail(1, e.to_string()),
    };
    let cwd = if spec.process.cwd.is_empty() {
        "/"
    } else {
        &spec.process.cwd
    };
    if let Err(e) = std::fs::create_dir_all(cwd) {
        return fail(1, format!("create the working directory {cwd}: {e}"));
    }
    let confinement = &spec.confinement;
    if confinement.readonly_rootfs {
        if let Err(e) = super::security::remount_root_readonly() {
            return fail(1, e.to_string());
        }
    }
    let env = with_home(&spec.process.env, &user);
    if let Err(e) = drop_capabilities(confinement, keep_mknod) {
        return fail(1, e);
    }
    let program = match find_program(&spec.process.args[0], &env) {
        Ok(path) => path,
        Err(failure) => return failure,
    };
    let command = Launch {
        args: &spec.process.args,
        env: &env,
        user: &user,
        user_spec: &spec.process.user,
        cwd,
        tty: spec.process.tty,
        confinement,
    };
    if !spec.init {
        return launch(&program, &command, 1);
    }
    // --init: stay as PID 1, run the command as our child.
    let signals = match block_signals() {
        Ok(s) => s,
        Err(e) => return fail(1, e.to_string()),
    };
    // SAFETY: this process is single-threaded; the child only execs or reports.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let failure = launch(&program, &command, 1);
            report(&failure);
            std::process::exit(failure.code)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            // The reaper stays in the container: the command's filter and capabilities.
            if let Err(e) = confinement.confine_self(keep_mknod) {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                return fail(1, e);
            }
            // SAFETY: closing our copy of the error pipe; the child holds its own.
            unsafe {
                libc::close(ERROR_FD);
            }
            let code = supervise(child, &signals, None, true).unwrap_or(1);
            std::process::exit(code)
        }
        Err(e) => fail(1, format!("fork: {e}")),
    }
}

/// Sets IFF_UP on `lo` in this network namespace.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a plain socket and two ioctls on a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let socket = OwnedFd::from_raw_fd(fd);
        let mut request: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            request.ifr_name[i] = *b as libc::c_char;
        }
        use std::os::fd::AsRawFd;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
