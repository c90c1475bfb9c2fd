//! Running the real `rctl` binary with its own store and docker config.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An `rctl` with a store root and a docker config directory of its own.
pub struct Rctl {
    pub root: PathBuf,
    pub docker_config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Rctl {
    pub fn new() -> Rctl {
        let dir = tempfile::tempdir().expect("temp dir");
        Rctl {
            root: dir.path().join("root"),
            docker_config: dir.path().join("docker"),
            _dir: dir,
        }
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(crate::workspace_bin("rctl"));
        command
            .arg("--root")
            .arg(&self.root)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("RCTL_DEFAULT_REGISTRY")
            .env_remove("RUST_LOG");
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run rctl")
    }

    /// Runs rctl and returns stdout, panicking with its output on failure.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "rctl {args:?} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs rctl expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "rctl {args:?} succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `rctl login HOST -u USER --password-stdin`, the password on stdin.
    pub fn login(&self, host: &str, user: &str, password: &str) -> Output {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .command()
            .args(["login", host, "-u", user, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run rctl login");
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(format!("{password}\n").as_bytes())
                .expect("write password");
        }
        child.wait_with_output().expect("rctl login")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Containers a test left running (it failed half-way) are removed with
/// their store, so no test leaves a process behind.
impl Drop for Rctl {
    fn drop(&mut self) {
        if !self.root.join("containers").exists() {
            return;
        }
        let Ok(out) = self
            .command()
            .args(["ps", "-a", "-q", "--no-trunc"])
            .output()
        else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = self.command().arg("rm").arg("-f").args(&ids).output();
        }
    }
}

impl Default for Rctl {
    fn default() -> Self {
        Rctl::new()
    }
}
