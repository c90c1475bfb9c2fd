//! cgroup v1: each controller (memory, cpu, cpuacct, pids, freezer) has its
//! own hierarchy, found in `/proc/self/mountinfo`.

use super::{keyed, read_u64, remove_dir, write, Cgroup, Resources, Usage};
use crate::runtime::{io, Result, RuntimeError};
use std::path::{Path, PathBuf};

const CONTROLLERS: [&str; 6] = ["memory", "cpu", "cpuacct", "pids", "freezer", "devices"];

/// What docker's device cgroup allows: any node may be made, only these
/// used (null, zero, full, random, urandom, tty, console, ptmx, pty slaves).
const DEVICES_ALLOWED: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

/// Whether the v1 `devices` controller is mounted.
pub fn has_devices() -> bool {
    mounts().iter().any(|(option, _)| option == "devices")
}

pub struct CgroupV1 {
    /// Controller name to this container's directory in its hierarchy.
    dirs: Vec<(&'static str, PathBuf)>,
}

/// Mount points of v1 hierarchies by controller.
fn mounts() -> Vec<(String, PathBuf)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut right = right.split(' ');
        if right.next() != Some("cgroup") {
            continue;
        }
        let options = right.nth(1).unwrap_or("");
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        for option in options.split(',') {
            found.push((option.to_string(), PathBuf::from(point)));
        }
    }
    found
}

impl CgroupV1 {
    pub fn new(id: &str) -> CgroupV1 {
        let mounts = mounts();
        let dirs = CONTROLLERS
            .iter()
            .filter_map(|c| {
                let point = mounts.iter().find(|(o, _)| o == c)?;
                Some((*c, point.1.join("rctl").join(id)))
            })
            .collect();
        CgroupV1 { dirs }
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, d)| d.as_path())
    }

    fn need(&self, controller: &str) -> Result<&Path> {
        self.dir(controller).ok_or_else(|| {
            RuntimeError::Invalid(format!("the {controller} cgroup controller is not mounted"))
        })
    }
}

impl Cgroup for CgroupV1 {
    fn create(&self, resources: &Resources) -> Result<()> {
        for (_, dir) in &self.dirs {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        if let Some(dir) = self.dir("devices") {
            write(&dir.join("devices.deny"), "a")?;
            for rule in DEVICES_ALLOWED {
                write(&dir.join("devices.allow"), rule)?;
            }
        }
        if let Some(memory) = resources.memory {
            let dir = self.need("memory")?;
            write(&dir.join("memory.limit_in_bytes"), &memory.to_string())?;
            // docker's default --memory-swap: as much swap again as memory.
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                write(&memsw, &memory.saturating_mul(2).to_string())?;
            }
        }
        if let Some(cpus) = resources.cpus {
            let dir = self.need("cpu")?;
            write(&dir.join("cpu.cfs_period_us"), "100000")?;
            write(
                &dir.join("cpu.cfs_quota_us"),
                &((cpus * 100_000.0) as u64).max(1000).to_string(),
            )?;
        }
        if let Some(pids) = resources.pids_limit.filter(|p| *p > 0) {
            write(&self.need("pids")?.join("pids.max"), &pids.to_string())?;
        }
        Ok(())
    }

    fn add(&self, pid: i32) -> Result<()> {
        for (_, dir) in &self.dirs {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        let dir = self.need("freezer")?;
        let state = dir.join("freezer.state");
        write(&state, if frozen { "FROZEN" } else { "THAWED" })?;
        // Freezing is asynchronous: wait until the kernel says it is done.
        for _ in 0..500 {
            let now = std::fs::read_to_string(&state).unwrap_or_default();
            if now.trim() == if frozen { "FROZEN" } else { "THAWED" } {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Err(RuntimeError::Invalid("the freezer did not settle".into()))
    }

    fn usage(&self) -> Result<Usage> {
        let memory = self.need("memory")?;
        let limit = read_u64(&memory.join("memory.limit_in_bytes"));
        Ok(Usage {
            cpu_nanos: self
                .dir("cpuacct")
                .and_then(|d| read_u64(&d.join("cpuacct.usage")))
                .unwrap_or(0),
            memory_bytes: read_u64(&memory.join("memory.usage_in_bytes")).unwrap_or(0),
            // v1 shows "unlimited" as a huge page-rounded number.
            memory_limit: limit.filter(|l| *l < (1 << 62)),
            pids: self
                .dir("pids")
                .and_then(|d| read_u64(&d.join("pids.current")))
                .unwrap_or(0),
        })
    }

    fn oom_killed(&self) -> bool {
        self.dir("memory")
            .and_then(|d| keyed(&d.join("memory.oom_control"), "oom_kill"))
            .is_some_and(|n| n > 0)
    }

    fn remove(&self) -> Result<()> {
        let mut first_error = None;
        for (_, dir) in &self.dirs {
            if let Err(e) = remove_dir(dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self.dirs.iter().map(|(_, d)| d.clone()).collect();
        paths.dedup();
        paths
    }
}
