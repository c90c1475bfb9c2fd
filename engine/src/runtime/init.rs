//! The container's first process, run as `rctl __rctl-init` by the
//! monitor's `clone` into new namespaces (it is PID 1 there). It reads
//! its [`InitSpec`] from fd 3 (the monitor writes it once the process is
//! in its cgroup), builds the root, sets hostname, network, user and
//! working directory, and execs the command. A failure before the exec is
//! written to fd 4 (closed on exec, so the monitor reading it to EOF
//! learns whether the exec happened) with the exit code docker would give.
//!
//! With `--init` it forks the command instead and stays as PID 1: it
//! forwards signals to the command, reaps every orphan, and exits with
//! the command's status (what docker-init/tini do).

use super::config::InitSpec;
use super::process::{resolve_user, User, DEFAULT_PATH};
use super::rootfs;
use super::session::{block_signals, reset_signals, supervise};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The spec pipe's read end in the init process.
pub const SPEC_FD: i32 = 3;
/// The error pipe's write end in the init process.
pub const ERROR_FD: i32 = 4;

/// What the init reports when it cannot exec.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitFailure {
    pub code: i32,
    pub message: String,
}

fn fail(code: i32, message: impl Into<String>) -> InitFailure {
    InitFailure {
        code,
        message: message.into(),
    }
}

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
    let mut env = spec.process.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            if user.home.is_empty() {
                "/"
            } else {
                &user.home
            }
        ));
    }
    if let Err(e) = drop_capabilities(keep_mknod) {
        return fail(1, e);
    }
    let program = match find_program(&spec.process.args[0], &env) {
        Ok(path) => path,
        Err(failure) => return failure,
    };
    if !spec.init {
        return exec(&program, spec, &env, &user, cwd);
    }
    // --init: stay as PID 1, run the command as our child.
    let signals = match block_signals() {
        Ok(s) => s,
        Err(e) => return fail(1, e.to_string()),
    };
    // SAFETY: this process is single-threaded; the child only execs or reports.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let failure = exec(&program, spec, &env, &user, cwd);
            report(&failure);
            std::process::exit(failure.code)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
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

/// The capabilities docker leaves a container (its default bounding set,
/// `0xa80425fb`): CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID,
/// SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD,
/// AUDIT_WRITE, SETFCAP. Without SYS_ADMIN and the rest, root in the
/// container cannot remount, load modules, or reach the host's devices.
const KEPT_CAPABILITIES: [libc::c_ulong; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

/// Drops every other capability from the bounding set (so no exec can
/// gain it back), for this process and what it runs. Where the device
/// cgroup cannot be used (v2 without a BPF program), MKNOD goes too:
/// `keep_mknod` is [`super::cgroup::restricts_devices`], asked while the
/// host's mounts are still in view.
pub fn drop_capabilities(keep_mknod: bool) -> Result<(), String> {
    for cap in 0..64 {
        if KEPT_CAPABILITIES.contains(&cap) && (cap != 27 || keep_mknod) {
            continue;
        }
        // SAFETY: prctl with an integer argument.
        let done = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if done != 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EINVAL) {
                break; // past the last capability this kernel knows
            }
            return Err(format!("drop capability {cap}: {error}"));
        }
    }
    Ok(())
}

/// Finds the command as runc does: a path with `/` as is, else in PATH.
fn find_program(name: &str, env: &[String]) -> Result<PathBuf, InitFailure> {
    use nix::unistd::{access, AccessFlags};
    if name.contains('/') {
        let path = PathBuf::from(name);
        return match std::fs::metadata(&path) {
            Ok(_) => Ok(path),
            Err(e) => Err(fail(
                127,
                format!("exec: \"{name}\": stat {name}: {}", lower_io(&e)),
            )),
        };
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path_var.split(':') {
        let candidate = Path::new(if dir.is_empty() { "." } else { dir }).join(name);
        if candidate.is_file() && access(&candidate, AccessFlags::X_OK).is_ok() {
            return Ok(candidate);
        }
    }
    Err(fail(
        127,
        format!("exec: \"{name}\": executable file not found in $PATH"),
    ))
}

fn lower_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Becomes the command: session, terminal, user, directory, then execve.
fn exec(program: &Path, spec: &InitSpec, env: &[String], user: &User, cwd: &str) -> InitFailure {
    use nix::unistd::{setgid, setgroups, setsid, setuid, Gid, Uid};
    let _ = setsid();
    if spec.process.tty {
        // SAFETY: TIOCSCTTY on our stdin, the pty slave the monitor gave us.
        unsafe {
            libc::ioctl(0, libc::TIOCSCTTY, 0);
        }
    }
    let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    if let Err(e) = setgroups(&groups)
        .and_then(|_| setgid(Gid::from_raw(user.gid)))
        .and_then(|_| setuid(Uid::from_raw(user.uid)))
    {
        return fail(1, format!("set user {}: {e}", spec.process.user));
    }
    if let Err(e) = std::env::set_current_dir(cwd) {
        return fail(1, format!("chdir to {cwd}: {e}"));
    }
    let to_c = |s: &str| CString::new(s).unwrap_or_default();
    let args: Vec<CString> = spec.process.args.iter().map(|a| to_c(a)).collect();
    let env: Vec<CString> = env.iter().map(|e| to_c(e)).collect();
    let path = to_c(&program.to_string_lossy());
    reset_signals();
    let error = match nix::unistd::execve(&path, &args, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let name = &spec.process.args[0];
    match error {
        nix::errno::Errno::EACCES => fail(126, format!("exec: \"{name}\": permission denied")),
        nix::errno::Errno::ENOENT => {
            fail(127, format!("exec: \"{name}\": no such file or directory"))
        }
        e => fail(
            126,
            format!("exec: \"{name}\": {}", e.desc().to_lowercase()),
        ),
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
