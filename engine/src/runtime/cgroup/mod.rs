//! Resources through cgroups: one trait, a v1 implementation (a directory
//! per controller hierarchy, as this machine mounts them) and a v2 one
//! (one unified hierarchy). A container's cgroup is `rctl/<id>` under each
//! hierarchy root; it is removed when the container ends.

mod v1;
mod v2;

use super::config::Resources;
use super::Result;
use std::path::Path;

/// What `stats` shows, read from the cgroup.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// CPU time used, nanoseconds.
    pub cpu_nanos: u64,
    pub memory_bytes: u64,
    /// The memory limit, or `None` when unlimited.
    pub memory_limit: Option<u64>,
    pub pids: u64,
}

/// A container's cgroup.
pub trait Cgroup {
    /// Creates the cgroup and sets its limits.
    fn create(&self, resources: &Resources) -> Result<()>;
    /// Moves a process into it.
    fn add(&self, pid: i32) -> Result<()>;
    /// Freezes (`pause`) or thaws (`unpause`) every process in it.
    fn freeze(&self, frozen: bool) -> Result<()>;
    fn usage(&self) -> Result<Usage>;
    /// Whether the kernel's OOM killer killed a process in it.
    fn oom_killed(&self) -> bool;
    /// Removes it (waits briefly for the last processes to go).
    fn remove(&self) -> Result<()>;
    /// The directory a process must join (for `exec`), one per hierarchy.
    fn paths(&self) -> Vec<std::path::PathBuf>;
}

/// Whether containers' device access is limited by a device cgroup
/// (v1's `devices` controller; v2 would need a BPF program, not loaded here).
pub fn restricts_devices() -> bool {
    !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() && v1::has_devices()
}

/// The cgroup of container `id` in whatever hierarchy this host mounts.
pub fn for_container(id: &str) -> Box<dyn Cgroup> {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        Box::new(v2::CgroupV2::new(Path::new("/sys/fs/cgroup"), id))
    } else {
        Box::new(v1::CgroupV1::new(id))
    }
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(super::io(path))
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The number after `key ` in a flat-keyed file (`memory.events`, `cpu.stat`).
fn keyed(path: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `rmdir`, retried while the last processes of the container exit.
fn remove_dir(path: &Path) -> Result<()> {
    for _ in 0..200 {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => return Err(super::io(path)(e)),
        }
    }
    std::fs::remove_dir(path).map_err(super::io(path))
}
