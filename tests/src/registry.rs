//! The real `rregistry` binary on a free loopback port, with a config file
//! written for the test, and Debian's Distribution (`docker-registry`) the
//! same way.

use crate::process::{free_port, wait_until, Child};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What the test wants from the registry's configuration.
#[derive(Clone)]
pub struct RegistryOptions {
    pub delete: bool,
    /// Extra YAML inside the `storage` section, indented by two spaces.
    pub storage_yaml: String,
    /// Extra YAML appended to the generated config (top-level sections).
    pub extra_yaml: String,
    /// Storage root; a fresh temp dir when `None`.
    pub root: Option<PathBuf>,
    pub port: Option<u16>,
    /// Send the server's stderr to a file that [`RegistryProcess::log`]
    /// reads (rregistry only), instead of the test's stderr.
    pub capture_log: bool,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            delete: true,
            storage_yaml: String::new(),
            extra_yaml: String::new(),
            root: None,
            port: None,
            capture_log: false,
        }
    }
}

/// A running registry process and where it keeps its files.
pub struct RegistryProcess {
    pub child: Child,
    pub port: u16,
    pub root: PathBuf,
    pub config: PathBuf,
    scheme: &'static str,
    server: Server,
    log: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

/// Which server binary to run; both read the same config file shape.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Rregistry,
    Distribution,
}

impl Server {
    fn spawn(self, config: &Path, log: Option<&Path>) -> Child {
        match self {
            Server::Rregistry => Child::spawn(
                "rregistry",
                Command::new(crate::workspace_bin("rregistry"))
                    .arg("serve")
                    .arg(config)
                    .env_remove("RUST_LOG")
                    .stdout(Stdio::null())
                    .stderr(match log {
                        Some(path) => std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(path)
                            .expect("server log file")
                            .into(),
                        None => Stdio::inherit(),
                    }),
            ),
            Server::Distribution => Child::spawn(
                "docker-registry",
                Command::new("docker-registry")
                    .arg("serve")
                    .arg(config)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            ),
        }
    }
}

impl RegistryProcess {
    /// Starts `rregistry serve CONFIG` and waits until `/v2/` answers.
    pub fn start(options: RegistryOptions) -> RegistryProcess {
        Self::launch(Server::Rregistry, options)
    }

    /// Starts Debian's Distribution on a free port with delete enabled.
    pub fn start_distribution() -> RegistryProcess {
        Self::launch(Server::Distribution, RegistryOptions::default())
    }

    /// Starts Debian's Distribution with the given options (the config shape is the same).
    pub fn start_distribution_with(options: RegistryOptions) -> RegistryProcess {
        Self::launch(Server::Distribution, options)
    }

    fn launch(server: Server, options: RegistryOptions) -> RegistryProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = options
            .root
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let port = options.port.unwrap_or_else(free_port);
        let config = dir.path().join("config.yml");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {}\n{}http:\n  addr: 127.0.0.1:{port}\n{}",
            root.display(),
            options.delete,
            options.storage_yaml,
            options.extra_yaml
        );
        std::fs::write(&config, yaml).expect("write config");
        let scheme = if options.extra_yaml.contains("tls:") {
            "https"
        } else {
            "http"
        };
        let log = options.capture_log.then(|| dir.path().join("server.log"));
        let mut process = RegistryProcess {
            child: server.spawn(&config, log.as_deref()),
            log,
            server,
            port,
            root,
            config,
            scheme,
            _dir: dir,
        };
        process.wait_ready(scheme);
        process
    }

    /// Waits until the base endpoint answers, or panics.
    pub fn wait_ready(&mut self, scheme: &str) {
        let url = format!("{scheme}://127.0.0.1:{}/v2/", self.port);
        let ready = wait_until(Duration::from_secs(20), || {
            if let Ok(Some(status)) = self.child.inner.try_wait() {
                panic!("{} exited before it was ready: {status}", self.child.name);
            }
            probe(&url)
        });
        assert!(ready, "{} did not answer on {url}", self.child.name);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        self.child.signal("KILL");
        let _ = self.child.inner.wait();
    }

    /// Starts a new process of the same server on the same port, config and storage.
    pub fn restart(&mut self) {
        self.child = self.server.spawn(&self.config, self.log.as_deref());
        self.wait_ready(self.scheme);
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The number and total size of the temp files rregistry is writing
    /// (under `_tmp/<process>/`; the lock files beside them are empty and
    /// not counted): how a test sees that a request body has started to
    /// arrive.
    pub fn temp_files(&self) -> (usize, u64) {
        fn walk(dir: &Path, depth: usize, acc: &mut (usize, u64)) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                match entry.file_type() {
                    Ok(t) if t.is_dir() => walk(&entry.path(), depth + 1, acc),
                    Ok(t) if t.is_file() && depth > 0 => {
                        acc.0 += 1;
                        acc.1 += entry.metadata().map(|m| m.len()).unwrap_or(0);
                    }
                    _ => {}
                }
            }
        }
        let mut acc = (0, 0);
        walk(&self.root.join("_tmp"), 0, &mut acc);
        acc
    }

    /// `rregistry fsck [--repair]` on this registry's configuration: the
    /// exit code and the problems it listed (stdout).
    pub fn fsck(&self, repair: bool) -> (i32, String) {
        let mut command = Command::new(crate::workspace_bin("rregistry"));
        command.arg("fsck").arg(&self.config).env_remove("RUST_LOG");
        if repair {
            command.arg("--repair");
        }
        let out = command.output().expect("run rregistry fsck");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// What the server wrote to stderr (with `capture_log`).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }
}

/// Whether `url` answers: for `http`, an HTTP response to a GET; for
/// `https`, an accepted TCP connection (the test's own client checks TLS).
pub fn probe(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some(rest) = url.split("://").nth(1) else {
        return false;
    };
    let Some((host, path)) = rest.split_once('/') else {
        return false;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return false;
    };
    if url.starts_with("https") {
        return true; // connected; TLS readiness is checked by the test's own client
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    stream.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1")
}
