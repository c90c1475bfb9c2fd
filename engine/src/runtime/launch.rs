//! The last steps of every process started in a container, the command
//! itself (from the init) and an `exec`'d one alike: capabilities cut to
//! the container's set, the program found in PATH, then session,
//! terminal, user and directory, the seccomp filter and no_new_privs, and
//! `execve`. A failure comes back with the exit code docker gives it (127
//! not found, 126 not executable).

use super::process::{User, DEFAULT_PATH};
use super::security::Confinement;
use super::session::reset_signals;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// Why a process could not be started, with the exit code to leave with.
#[derive(Debug, Serialize, Deserialize)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

pub fn fail(code: i32, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// Drops every capability the container may not have from the bounding
/// set (so no exec can gain it back), for this process and what it runs.
/// Where the device cgroup cannot be used (v2 without a BPF program),
/// MKNOD goes too: `keep_mknod` is [`super::cgroup::restricts_devices`],
/// asked while the host's mounts are still in view.
pub fn drop_capabilities(confinement: &Confinement, keep_mknod: bool) -> Result<(), String> {
    super::capabilities::drop_bounding(confinement.bounding(keep_mknod))
}

/// The environment with `HOME` set from the user's entry when it is missing.
pub fn with_home(env: &[String], user: &User) -> Vec<String> {
    let mut env = env.to_vec();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = if user.home.is_empty() {
            "/"
        } else {
            &user.home
        };
        env.push(format!("HOME={home}"));
    }
    env
}

/// Finds the command as runc does: a path with `/` as is, else in PATH.
pub fn find_program(name: &str, env: &[String]) -> Result<PathBuf, Failure> {
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

/// A process about to become its program.
pub struct Launch<'a> {
    pub args: &'a [String],
    pub env: &'a [String],
    pub user: &'a User,
    /// The user as asked (for messages).
    pub user_spec: &'a str,
    pub cwd: &'a str,
    /// Stdin is a pty slave to take as the controlling terminal.
    pub tty: bool,
    /// The seccomp filter and no_new_privs to apply.
    pub confinement: &'a Confinement,
}

/// Becomes `program`: a new session (with the pty as its terminal), the
/// user's groups, gid and uid, the working directory, default signals,
/// the seccomp filter (before the user changes unless no_new_privs is
/// asked for, as runc orders them), then `execve`. Returns only on failure; a failure before the exec
/// gets `setup_code` (the init exits 1, as runc; `exec` 126, as docker exec).
pub fn launch(program: &Path, l: &Launch<'_>, setup_code: i32) -> Failure {
    use nix::unistd::{setgid, setgroups, setsid, setuid, Gid, Uid};
    let _ = setsid();
    if l.tty {
        // SAFETY: TIOCSCTTY on our stdin, the pty slave we were given.
        unsafe {
            libc::ioctl(0, libc::TIOCSCTTY, 0);
        }
    }
    if let Err(e) = l.confinement.before_user_switch() {
        return fail(setup_code, e);
    }
    let groups: Vec<Gid> = l.user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    if let Err(e) = setgroups(&groups)
        .and_then(|_| setgid(Gid::from_raw(l.user.gid)))
        .and_then(|_| setuid(Uid::from_raw(l.user.uid)))
    {
        return fail(setup_code, format!("set user {}: {e}", l.user_spec));
    }
    let cwd = if l.cwd.is_empty() { "/" } else { l.cwd };
    if let Err(e) = std::env::set_current_dir(cwd) {
        return fail(setup_code, format!("chdir to {cwd}: {e}"));
    }
    let to_c = |s: &str| CString::new(s).unwrap_or_default();
    let args: Vec<CString> = l.args.iter().map(|a| to_c(a)).collect();
    let env: Vec<CString> = l.env.iter().map(|e| to_c(e)).collect();
    let path = to_c(&program.to_string_lossy());
    reset_signals();
    if let Err(e) = l.confinement.before_exec() {
        return fail(setup_code, e);
    }
    let error = match nix::unistd::execve(&path, &args, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let name = l.args.first().map(String::as_str).unwrap_or("");
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
