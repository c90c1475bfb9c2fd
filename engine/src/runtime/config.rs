//! What a container runs, fixed when it is created: the process, the root
//! filesystem, mounts, network, ports and resources. Saved as
//! `containers/<id>/config.json`.

use super::security::{Confinement, SecurityConfig};
use roci::Digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// The image config's digest (docker's image id).
    pub image_id: Digest,
    /// The image's manifest in the store (what `commit` builds on).
    #[serde(default)]
    pub image_manifest: Option<Digest>,
    /// ChainIDs of the image's layers, lowest first (kept while the container exists).
    pub layers: Vec<Digest>,
    pub created: u128,
    pub process: ProcessConfig,
    pub hostname: String,
    pub network: Network,
    pub mounts: Vec<MountConfig>,
    pub ports: Vec<PortConfig>,
    pub resources: Resources,
    /// Run the project's reaper as PID 1 (`--init`).
    pub init: bool,
    /// Remove the container when it exits (`--rm`).
    pub auto_remove: bool,
    /// The signal `stop` sends first (the image's `StopSignal`, default SIGTERM).
    pub stop_signal: String,
    /// Seconds `stop` waits before SIGKILL when `-t` is not given.
    pub stop_timeout: u64,
    /// The image's config section, for `inspect`.
    pub image_config: Value,
    /// Seccomp, capabilities, no_new_privs, read-only root (docker's defaults when absent).
    #[serde(default)]
    pub security: SecurityConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessConfig {
    /// The command and its arguments (ENTRYPOINT and CMD combined).
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Working directory; created when missing.
    pub cwd: String,
    /// `user[:group]` by name or number, resolved inside the image; empty for root.
    pub user: String,
    pub tty: bool,
    /// Keep standard input open (`-i`).
    pub interactive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// A new network namespace with loopback up (the default, and `--network none`).
    None,
    /// The host's network namespace.
    Host,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountConfig {
    /// `bind` or `volume`.
    pub kind: String,
    /// Host path (for a volume: its `_data` directory).
    pub source: String,
    /// The volume's name, for volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An anonymous volume made for an image `VOLUME`, removed with the container.
    #[serde(default)]
    pub anonymous: bool,
    pub destination: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortConfig {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Resources {
    /// Bytes of memory (`-m`).
    pub memory: Option<u64>,
    /// CPUs (`--cpus`), as a fraction.
    pub cpus: Option<f64>,
    /// Maximum number of processes (`--pids-limit`).
    pub pids_limit: Option<i64>,
}

/// What the monitor hands to the init process (over a pipe, once the init
/// is in its cgroup): everything it needs to build the root and exec.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitSpec {
    /// The overlay2 root: the mount is made from here so `lowerdir` can use the short links.
    pub layers_root: String,
    /// `lowerdir=` value, relative to `layers_root`.
    pub lowerdir: String,
    pub upperdir: String,
    pub workdir: String,
    /// Where the overlay is mounted (and becomes `/`).
    pub rootfs: String,
    pub mounts: Vec<MountConfig>,
    pub hostname: String,
    pub private_network: bool,
    /// Host files bind-mounted over `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
    pub etc_files: Vec<(String, String)>,
    pub process: ProcessConfig,
    pub init: bool,
    /// Capabilities, seccomp filter, no_new_privs and read-only root.
    pub confinement: Confinement,
}
