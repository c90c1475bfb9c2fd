//! The container runtime: a container is a directory of configuration and
//! state under the engine root, a process tree in its own namespaces and
//! cgroup, and an overlay root made of the image's layers plus its own
//! upper directory.
//!
//! Processes (all the same `rctl` binary, in helper modes that start no
//! threads, since `setns` and `clone` need a single-threaded caller):
//!
//! ```text
//! rctl run ──exec──▶ monitor ──clone(new ns)──▶ init (PID 1) ──exec──▶ the command
//!                    │ cgroup, signals,          mounts, pivot_root,
//!                    │ pty, logs, -p relay,      user, workdir
//!                    │ exit status → state.json
//! ```
//!
//! - [`config`]: what a container runs (saved once, at create).
//! - [`state`]: what it is doing (saved by the monitor as it changes).
//! - [`containers`]: the containers on disk: create, find by id or name, remove.
//! - [`image`]: a stored image unpacked and read for running.
//! - [`process`]: docker's rules for command, environment and user.
//! - [`cgroup`]: resources, v1 and v2, behind one trait.
//! - [`monitor`]: the parent side: starts the container and watches it.
//! - [`init`] and [`rootfs`]: the child side: namespaces made real, then exec.
//! - [`session`]: a supervised process: signals forwarded, pty relayed, status reaped.
//! - [`launch`]: the last steps of every process started in a container (capabilities, user, exec).
//! - [`exec`]: a process joining a running container.
//! - [`ports`]: `-p` relays from the host's loopback into the container's network.
//! - [`volumes`]: named volumes.
//! - [`security`], [`capabilities`] and [`seccomp`]: `--security-opt`, `--cap-add`/`--cap-drop`
//!   and `--read-only`, and docker's default seccomp profile.

pub mod capabilities;
pub mod cgroup;
pub mod config;
pub mod containers;
pub mod exec;
pub mod image;
pub mod init;
pub mod launch;
pub mod monitor;
pub mod ports;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod security;
pub mod session;
pub mod state;
pub mod time;
pub mod volumes;

use std::path::PathBuf;

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("Conflict. The container name \"/{0}\" is already in use")]
    NameInUse(String),
    #[error("{0}")]
    Invalid(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("{path} is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> RuntimeError {
    let what = what.into();
    move |source| RuntimeError::Sys { what, source }
}

/// Writes `bytes` to `path` atomically ([`roci::atomic`]), so readers see the old or the new whole.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    roci::atomic::write_atomic(path, bytes).map_err(io(path))
}

/// The path of the running binary, for the helper modes it re-executes.
pub const INIT_ARG: &str = "__rctl-init";
/// argv[1] of the monitor mode.
pub const MONITOR_ARG: &str = "__rctl-monitor";
