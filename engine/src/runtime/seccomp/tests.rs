//! Filters checked by running them: a forked child sets no_new_privs
//! (so no root is needed), installs the filter, makes raw system calls
//! and reports through its exit status which answers were not the
//! expected ones.

use super::profile::{Action, SyscallRule};
use super::*;

/// docker's default capability set.
fn docker_caps() -> Vec<String> {
    [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
        "CAP_SYS_CHROOT",
        "CAP_MKNOD",
        "CAP_AUDIT_WRITE",
        "CAP_SETFCAP",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect()
}

/// A check: its name, the call, and the errno expected (0: it succeeds).
type Check = (&'static str, fn() -> libc::c_long, i32);

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Runs `checks` under `program` in a child; returns the names of those that failed.
fn under(program: &Program, checks: &[Check]) -> Vec<&'static str> {
    assert!(checks.len() <= 7);
    // SAFETY: the child only makes raw system calls (no allocation, no
    // locks) and leaves with _exit.
    match unsafe { libc::fork() } {
        0 => {
            let mut failed = 0;
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0
                || program.install().is_err()
            {
                // SAFETY: leaving the forked child.
                unsafe { libc::_exit(255) };
            }
            for (i, (_, call, expected)) in checks.iter().enumerate() {
                let got = if call() < 0 { errno() } else { 0 };
                if got != *expected {
                    failed |= 1 << i;
                }
            }
            // SAFETY: leaving the forked child.
            unsafe { libc::_exit(failed) }
        }
        pid => {
            assert!(pid > 0, "fork failed");
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
            let failed = libc::WEXITSTATUS(status);
            assert_ne!(failed, 255, "could not install the filter");
            checks
                .iter()
                .enumerate()
                .filter(|(i, _)| failed & (1 << i) != 0)
                .map(|(_, c)| c.0)
                .collect()
        }
    }
}

fn getpid() -> libc::c_long {
    // SAFETY: a raw system call without pointers.
    unsafe { libc::syscall(libc::SYS_getpid) }
}
fn unshare_user() -> libc::c_long {
    // SAFETY: a raw system call without pointers.
    unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) }
}
fn clone3_null() -> libc::c_long {
    // SAFETY: clone3 with a null, zero-sized argument only fails (EINVAL) when it runs.
    unsafe { libc::syscall(libc::SYS_clone3, 0usize, 0usize) }
}
fn vsock() -> libc::c_long {
    // SAFETY: a raw system call without pointers (the socket, if any, dies with the child).
    unsafe { libc::syscall(libc::SYS_socket, libc::AF_VSOCK, libc::SOCK_STREAM, 0) }
}
fn persona_query() -> libc::c_long {
    // SAFETY: a raw system call without pointers.
    unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffffu64) }
}
fn persona_read_implies_exec() -> libc::c_long {
    // SAFETY: a raw system call without pointers.
    unsafe { libc::syscall(libc::SYS_personality, 0x0040_0000u64) }
}
fn mkdir_tmp() -> libc::c_long {
    // SAFETY: a static NUL-terminated path; the directory may or may not be made.
    unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, c"/".as_ptr(), 0o700) }
}

#[test]
fn docker_default_refuses_namespaces_vsock_and_odd_personas() {
    let program = Program::build(&default::profile(), &docker_caps())
        .unwrap()
        .unwrap();
    assert!(program.0.len() < 4096);
    let failed = under(
        &program,
        &[
            ("getpid allowed", getpid, 0),
            ("unshare(CLONE_NEWUSER) EPERM", unshare_user, libc::EPERM),
            ("clone3 ENOSYS", clone3_null, libc::ENOSYS),
            ("socket(AF_VSOCK) EPERM", vsock, libc::EPERM),
            ("personality query allowed", persona_query, 0),
            (
                "personality(READ_IMPLIES_EXEC) EPERM",
                persona_read_implies_exec,
                libc::EPERM,
            ),
            (
                "mkdirat reaches the kernel (EEXIST)",
                mkdir_tmp,
                libc::EEXIST,
            ),
        ],
    );
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn sys_admin_opens_the_namespace_calls_as_docker_does() {
    let mut caps = docker_caps();
    caps.push("CAP_SYS_ADMIN".into());
    let program = Program::build(&default::profile(), &caps).unwrap().unwrap();
    // clone3 now reaches the kernel, which refuses the empty argument.
    let failed = under(
        &program,
        &[
            ("getpid allowed", getpid, 0),
            ("clone3 reaches the kernel", clone3_null, libc::EINVAL),
        ],
    );
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn custom_profiles_chain_several_actions() {
    let json = r#"{
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 4194304, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "includes": {"caps": ["CAP_SYS_ADMIN"]}}
        ]
    }"#;
    let program = Program::build(&Profile::parse(json).unwrap(), &docker_caps())
        .unwrap()
        .unwrap();
    let failed = under(
        &program,
        &[
            ("mkdirat EACCES", mkdir_tmp, libc::EACCES),
            (
                "personality(READ_IMPLIES_EXEC) EPERM",
                persona_read_implies_exec,
                libc::EPERM,
            ),
            ("personality query allowed", persona_query, 0),
            ("getpid allowed (its rule needs SYS_ADMIN)", getpid, 0),
        ],
    );
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn profile_errors_are_named() {
    let caps = docker_caps();
    let both = Profile {
        syscalls: vec![SyscallRule {
            name: "read".into(),
            ..SyscallRule::new(&["write"], Action::Errno)
        }],
        ..default::profile()
    };
    let error = Program::build(&both, &caps).unwrap_err().to_string();
    assert!(error.contains("'name' and 'names'"), "{error}");
    let notify = r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#;
    let error = Program::build(&Profile::parse(notify).unwrap(), &caps)
        .unwrap_err()
        .to_string();
    assert!(error.contains("SCMP_ACT_NOTIFY"), "{error}");
    let index = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#;
    let error = Program::build(&Profile::parse(index).unwrap(), &caps)
        .unwrap_err()
        .to_string();
    assert!(error.contains("argument index 6"), "{error}");
    // No default and no rules: no filter, as docker reads it.
    assert_eq!(
        Program::build(&Profile::parse("{}").unwrap(), &caps).unwrap(),
        None
    );
}
