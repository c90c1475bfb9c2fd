//! A private dockerd for the client and engine scenarios: its own data
//! and exec roots and socket under the work directory, no bridge, no
//! iptables; stopped by pid when dropped.

use crate::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Dockerd {
    dir: PathBuf,
    child: Option<Child>,
}

impl Dockerd {
    pub fn start(dir: &Path) -> Result<Dockerd> {
        std::fs::create_dir_all(dir).context("creating dockerd's directory")?;
        let log =
            std::fs::File::create(dir.join("dockerd.log")).context("creating dockerd's log")?;
        let child = dies_with_us(&mut Command::new("dockerd"))
            .arg("--host")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("dockerd's log")?)
            .stderr(log)
            .spawn()
            .context("starting dockerd")?;
        let dockerd = Dockerd {
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if dockerd
                .docker()
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                return Ok(dockerd);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "dockerd did not start (see {})",
            dir.join("dockerd.log").display()
        )
        .into())
    }

    /// A `docker` command talking to this daemon.
    pub fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        command
            .arg("-H")
            .arg(format!("unix://{}", self.dir.join("docker.sock").display()));
        command.env("DOCKER_BUILDKIT", "0");
        command
    }
}

/// Makes the child get SIGTERM should rbench die first (killed, say), so
/// that no server or dockerd outlives the run.
pub fn dies_with_us(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure makes one async-signal-safe
    // system call (prctl) and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        })
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
