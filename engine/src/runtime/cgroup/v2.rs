//! cgroup v2: one unified hierarchy; controllers are enabled for
//! `rctl/` through `cgroup.subtree_control` on the way down.

use super::{keyed, read_u64, remove_dir, write, Cgroup, Resources, Usage};
use crate::runtime::{io, Result};
use std::path::{Path, PathBuf};

pub struct CgroupV2 {
    root: PathBuf,
    dir: PathBuf,
}

impl CgroupV2 {
    pub fn new(root: &Path, id: &str) -> CgroupV2 {
        CgroupV2 {
            root: root.to_path_buf(),
            dir: root.join("rctl").join(id),
        }
    }
}

impl Cgroup for CgroupV2 {
    fn create(&self, resources: &Resources) -> Result<()> {
        let parent = self.root.join("rctl");
        std::fs::create_dir_all(&parent).map_err(io(&parent))?;
        for dir in [&self.root, &parent] {
            let available =
                std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            let wanted: Vec<String> = ["memory", "cpu", "pids"]
                .iter()
                .filter(|c| available.split_whitespace().any(|a| a == **c))
                .map(|c| format!("+{c}"))
                .collect();
            if !wanted.is_empty() {
                // Fails when the root has processes of its own; limits then fail below, loudly.
                let _ = write(&dir.join("cgroup.subtree_control"), &wanted.join(" "));
            }
        }
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        if let Some(memory) = resources.memory {
            write(&self.dir.join("memory.max"), &memory.to_string())?;
            let swap = self.dir.join("memory.swap.max");
            if swap.exists() {
                write(&swap, &memory.to_string())?;
            }
        }
        if let Some(cpus) = resources.cpus {
            let quota = ((cpus * 100_000.0) as u64).max(1000);
            write(&self.dir.join("cpu.max"), &format!("{quota} 100000"))?;
        }
        if let Some(pids) = resources.pids_limit.filter(|p| *p > 0) {
            write(&self.dir.join("pids.max"), &pids.to_string())?;
        }
        Ok(())
    }

    fn add(&self, pid: i32) -> Result<()> {
        write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        write(
            &self.dir.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )?;
        for _ in 0..500 {
            if keyed(&self.dir.join("cgroup.events"), "frozen") == Some(u64::from(frozen)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Ok(())
    }

    fn usage(&self) -> Result<Usage> {
        Ok(Usage {
            cpu_nanos: keyed(&self.dir.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000,
            memory_bytes: read_u64(&self.dir.join("memory.current")).unwrap_or(0),
            memory_limit: read_u64(&self.dir.join("memory.max")),
            pids: read_u64(&self.dir.join("pids.current")).unwrap_or(0),
        })
    }

    fn oom_killed(&self) -> bool {
        keyed(&self.dir.join("memory.events"), "oom_kill").is_some_and(|n| n > 0)
    }

    fn remove(&self) -> Result<()> {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        remove_dir(&self.dir)
    }

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }
}
