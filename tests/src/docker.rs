//! A private dockerd for one test, started as DEVELOPERS.md prescribes (its
//! own socket, data and exec roots, no bridge, no iptables), and stopped by
//! its pid when the test ends.

use crate::process::{wait_until, Child};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub struct Dockerd {
    child: Child,
    pub socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Dockerd {
    pub fn start() -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("dkr")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let d = dir.path();
        let socket = d.join("docker.sock");
        let log = std::fs::File::create(d.join("dockerd.log")).expect("dockerd log");
        let child = Child::spawn(
            "dockerd",
            Command::new("dockerd")
                .arg("--host")
                .arg(format!("unix://{}", socket.display()))
                .arg("--data-root")
                .arg(d.join("data"))
                .arg("--exec-root")
                .arg(d.join("exec"))
                .arg("--pidfile")
                .arg(d.join("docker.pid"))
                .args([
                    "--bridge=none",
                    "--iptables=false",
                    "--ip-forward=false",
                    "--ip-masq=false",
                ])
                .stdout(Stdio::null())
                .stderr(log),
        );
        let mut dockerd = Dockerd { child, socket, dir };
        let ready = wait_until(Duration::from_secs(60), || {
            if let Ok(Some(status)) = dockerd.child.inner.try_wait() {
                panic!("dockerd exited: {status}; log:\n{}", dockerd.log());
            }
            dockerd.docker(&["version"]).status.success()
        });
        assert!(ready, "dockerd did not come up; log:\n{}", dockerd.log());
        dockerd
    }

    /// Runs the docker CLI against this daemon (classic builder).
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", self.dir.path().join("cli"))
            .output()
            .expect("run docker")
    }

    /// Runs docker and panics with its output unless it succeeds; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// The docker CLI's config directory (`DOCKER_CONFIG`: logins live here).
    pub fn cli_config_dir(&self) -> PathBuf {
        self.dir.path().join("cli")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

/// A build context holding busybox-static and `files` (name, contents),
/// with a Dockerfile `FROM scratch` that adds them and runs `cmd`.
pub fn busybox_context(files: &[(&str, &str)], cmd: &[&str]) -> tempfile::TempDir {
    let context = tempfile::tempdir().expect("build context");
    let busybox = Command::new("sh")
        .args(["-c", "command -v busybox"])
        .output()
        .expect("find busybox");
    let busybox = String::from_utf8_lossy(&busybox.stdout).trim().to_string();
    std::fs::copy(&busybox, context.path().join("busybox")).expect("copy busybox");
    let mut dockerfile = String::from("FROM scratch\nCOPY busybox /bin/busybox\n");
    for (name, contents) in files {
        std::fs::write(context.path().join(name), contents).expect("write context file");
        dockerfile.push_str(&format!("COPY {name} /{name}\n"));
    }
    let cmd: Vec<String> = cmd.iter().map(|part| format!("{part:?}")).collect();
    dockerfile.push_str(&format!("CMD [{}]\n", cmd.join(", ")));
    std::fs::write(context.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
    context
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.child.stop(Duration::from_secs(30));
    }
}
