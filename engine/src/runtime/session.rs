//! A supervised process: the signals its supervisor receives are
//! forwarded to it, its pty (if any) is relayed to the supervisor's
//! terminal or log, and its exit status is reaped and turned into an exit
//! code as a shell would (`128 + signal` for a killed process).
//!
//! The monitor, `exec` and the `--init` reaper all supervise this way.
//! Signals are taken through a `signalfd`, so [`block_signals`] must run
//! before the child is started, and the child must unblock them
//! ([`reset_signals`]) before it execs.

use super::{sys, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// The signals a supervisor forwards (and SIGCHLD, which it handles).
const HANDLED: [Signal; 9] = [
    Signal::SIGCHLD,
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// Blocks the handled signals in this (single-threaded) process and
/// returns a descriptor to read them from.
pub fn block_signals() -> Result<SignalFd> {
    let mut set = SigSet::empty();
    for signal in HANDLED {
        set.add(signal);
    }
    set.thread_block().map_err(sys("block signals"))?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).map_err(sys("signalfd"))
}

/// Unblocks every signal and restores default dispositions, as a process
/// about to exec a container's command must (Rust ignores SIGPIPE).
pub fn reset_signals() {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: restoring the default disposition installs no handler.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl);
    }
}

/// An exit code from a wait status, as a shell computes it.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as i32),
        _ => None,
    }
}

/// A pty's master side and where its bytes go.
pub struct PtyRelay<'a> {
    pub master: BorrowedFd<'a>,
    /// Read and sent to the container (the user's terminal), if attached with `-i`.
    pub input: Option<BorrowedFd<'a>>,
    /// Where the container's output goes (the user's terminal, or the log).
    pub output: BorrowedFd<'a>,
}

fn copy_once(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 16 * 1024];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut done = 0;
            while done < n {
                match nix::unistd::write(to, &buf[done..n]) {
                    Ok(w) => done += w,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return false,
                }
            }
            true
        }
    }
}

/// Copies the window size of `from` (a terminal) to `to` (a pty).
pub fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    // SAFETY: winsize is four integers, for which all-zero bytes are a valid value.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ and TIOCSWINSZ read and write one winsize struct.
    unsafe {
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &size);
        }
    }
}

/// Waits for `child` to exit, forwarding signals to it, relaying its pty,
/// and (with `reap_all`, as PID 1 must) reaping every other child too.
/// Returns its exit code.
pub fn supervise(
    child: Pid,
    signals: &SignalFd,
    pty: Option<PtyRelay<'_>>,
    reap_all: bool,
) -> Result<i32> {
    let mut input_open = pty.as_ref().is_some_and(|p| p.input.is_some());
    let mut output_open = pty.is_some();
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(relay) = &pty {
            if output_open {
                fds.push(PollFd::new(relay.master, PollFlags::POLLIN));
            }
            if let (true, Some(input)) = (input_open, relay.input) {
                fds.push(PollFd::new(input, PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(sys("poll")(e)),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut index = 1;
        if let Some(relay) = &pty {
            if output_open {
                if ready[index] && !copy_once(relay.master, relay.output) {
                    output_open = false;
                }
                index += 1;
            }
            if let (true, Some(input)) = (input_open, relay.input) {
                if ready[index] && !copy_once(input, relay.master) {
                    input_open = false;
                }
            }
        }
        if !ready[0] {
            continue;
        }
        while let Ok(Some(info)) = signals.read_signal() {
            let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            match signal {
                Signal::SIGCHLD => {
                    if let Some(code) = reap(child, reap_all) {
                        if let Some(relay) = &pty {
                            drain(relay.master, relay.output);
                        }
                        return Ok(code);
                    }
                }
                Signal::SIGWINCH => {
                    if let Some(relay) = &pty {
                        if let Some(input) = relay.input {
                            copy_window_size(input, relay.master);
                        }
                    }
                }
                other => {
                    let _ = kill(child, other);
                }
            }
        }
    }
}

/// Reaps what has exited; the exit code once `child` is among them.
fn reap(child: Pid, reap_all: bool) -> Option<i32> {
    let target = if reap_all { None } else { Some(child) };
    let mut result = None;
    loop {
        match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(status) => {
                if status.pid() == Some(child) {
                    result = exit_code(status);
                    if !reap_all {
                        return result;
                    }
                }
            }
        }
    }
}

/// Copies what is left in the pty after the process exited.
fn drain(master: BorrowedFd<'_>, output: BorrowedFd<'_>) {
    loop {
        let mut fds = [PollFd::new(master, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(50u16)) {
            Ok(n) if n > 0 => {
                if !copy_once(master, output) {
                    return;
                }
            }
            _ => return,
        }
    }
}

/// Puts a terminal in raw mode for as long as the guard lives.
pub struct RawTerminal {
    fd: OwnedFd,
    saved: nix::sys::termios::Termios,
}

impl RawTerminal {
    pub fn enter(fd: BorrowedFd<'_>) -> Option<RawTerminal> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal {
            fd: fd.try_clone_to_owned().ok()?,
            saved,
        })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ =
            nix::sys::termios::tcsetattr(&self.fd, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}
