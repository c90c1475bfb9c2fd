//! Child processes the tests start and stop by pid, free ports, and the
//! rule for missing tools.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

/// A started process, killed (SIGKILL) and reaped when dropped.
pub struct Child {
    pub inner: std::process::Child,
    pub name: String,
}

impl Child {
    pub fn spawn(name: &str, command: &mut Command) -> Child {
        let inner = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Child {
            inner,
            name: name.to_string(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.inner.id()
    }

    /// Sends a signal (`TERM`, `KILL`, ...) by pid.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// Waits up to `timeout` for the process to exit; its status if it did.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.inner.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        self.signal("TERM");
        match self.wait_timeout(grace) {
            Some(status) => Some(status),
            None => {
                let _ = self.inner.kill();
                let _ = self.inner.wait();
                None
            }
        }
    }

    /// Peak resident memory (VmHWM) in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.inner.try_wait() {
            let _ = self.inner.kill();
            let _ = self.inner.wait();
        }
    }
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Whether `tool` is on PATH. When it is not: in CI (where `.ci/run`
/// installs every tool) this fails the test; elsewhere it prints why the
/// test is skipped and returns false.
pub fn require_tool(tool: &str, test: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if found {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {tool} is required in CI (.ci/run installs it) but is not on PATH");
    }
    eprintln!("SKIPPED {test}: {tool} is not installed (apt-get install it to run this test)");
    false
}

/// Whether this test runs as root with what containers need (overlayfs
/// and namespaces). When not: in CI (which runs as root) this fails the
/// test; elsewhere it prints why the test is skipped and returns false.
pub fn require_root(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if root {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: CI runs as root, but this test is not running as root");
    }
    eprintln!("SKIPPED {test}: containers need root (run the tests as root)");
    false
}

/// Polls `check` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
