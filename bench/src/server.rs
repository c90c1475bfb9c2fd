//! Registry servers under test: the release rregistry and Debian's
//! Distribution, each started on loopback from the same kind of config
//! (filesystem storage in a fresh directory, no auth, delete enabled,
//! no access log), watched for peak RSS, and stopped by pid.

use crate::{Context, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Rregistry,
    Distribution,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rregistry => "rregistry",
            Kind::Distribution => "distribution",
        }
    }
}

pub struct Server {
    pub kind: Kind,
    pub addr: String,
    program: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// Starts `kind` on a free loopback port, storing under `dir` (made fresh).
    pub fn start(kind: Kind, rregistry: &Path, dir: &Path) -> Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let program = match kind {
            Kind::Rregistry => rregistry.to_path_buf(),
            Kind::Distribution => PathBuf::from("docker-registry"),
        };
        let mut server = Server {
            kind,
            addr: format!("127.0.0.1:{port}"),
            program,
            dir: dir.to_path_buf(),
            child: None,
        };
        server.launch()?;
        Ok(server)
    }

    fn launch(&mut self) -> Result<()> {
        let data = self.dir.join("data");
        if data.exists() {
            std::fs::remove_dir_all(&data).context("clearing the registry's data")?;
        }
        std::fs::create_dir_all(&data).context("creating the registry's data directory")?;
        let config = self.dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {}\n{}",
                data.display(),
                self.addr,
                // Distribution caps a catalog page at 1,000 entries unless told.
                if self.kind == Kind::Distribution {
                    "catalog:\n  maxentries: 100000\n"
                } else {
                    ""
                },
            ),
        )
        .context("writing the registry config")?;
        let log =
            std::fs::File::create(self.dir.join("log")).context("creating the registry log")?;
        let child = crate::docker::dies_with_us(&mut Command::new(&self.program))
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("the registry log")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if probe(&self.addr) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "{} did not answer on {} (see {})",
            self.kind.name(),
            self.addr,
            self.dir.join("log").display()
        )
        .into())
    }

    /// Stops the server, empties its storage and starts it again.
    pub fn restart_empty(&mut self) -> Result<()> {
        self.stop();
        self.launch()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Resets the kernel's peak-RSS mark of the server (`clear_refs` 5).
    pub fn reset_peak_rss(&self) {
        if let Some(pid) = self.pid() {
            let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        }
    }

    /// The server's peak resident set since the last reset, in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `GET /v2/` answers 200 on `addr`.
fn probe(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(
            format!("GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
