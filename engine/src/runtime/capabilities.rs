//! Linux capabilities by docker's names: the set a container gets
//! (docker's default, changed by `--cap-add`/`--cap-drop` as docker
//! changes it), and the calls that cut a process down to it.

/// Every capability, by number.
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities docker leaves a container (`0xa80425fb`). Without
/// SYS_ADMIN and the rest, root in the container cannot remount, load
/// modules, or reach the host's devices.
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_MKNOD",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
];

/// CAP_MKNOD's number (dropped where no device cgroup guards its use).
pub const MKNOD: u32 = 27;

/// The magic name for every capability.
pub const ALL: &str = "ALL";

/// `net_admin`, ` CAP_NET_ADMIN ` → `CAP_NET_ADMIN`; `all` → `ALL` (docker's CLI).
pub fn normalize(name: &str) -> String {
    let name = name.trim().to_ascii_uppercase();
    if name == ALL || name.starts_with("CAP_") {
        name
    } else {
        format!("CAP_{name}")
    }
}

/// A capability's number.
pub fn number(name: &str) -> Option<u32> {
    NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| u32::try_from(i).ok())
}

/// The capabilities this kernel has (`ALL`).
fn all() -> Vec<String> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(NAMES.len() - 1);
    NAMES
        .iter()
        .take(last.saturating_add(1))
        .map(|n| n.to_string())
        .collect()
}

/// `--cap-add` and `--cap-drop` normalized, deduplicated and sorted; a
/// capability in both is added, and `ALL` stands alone (docker's
/// `EffectiveCapAddCapDrop`).
pub fn effective_add_drop(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    let set = |items: &[String]| {
        let mut set: Vec<String> = items.iter().map(|c| normalize(c)).collect();
        if set.iter().any(|c| c == ALL) {
            set = vec![ALL.to_string()];
        }
        set.sort();
        set.dedup();
        set
    };
    let add = set(add);
    let drop = set(drop).into_iter().filter(|c| !add.contains(c)).collect();
    (add, drop)
}

/// The container's capabilities: docker's default less `drop` plus
/// `add`, `ALL` meaning every one (docker's `TweakCapabilities`). An
/// unknown name is an error, as docker's daemon gives it.
pub fn container_set(add: &[String], drop: &[String]) -> Result<Vec<String>, String> {
    for (flag, list) in [("CapAdd", add), ("CapDrop", drop)] {
        if let Some(bad) = list.iter().find(|c| *c != ALL && number(c).is_none()) {
            return Err(format!("invalid {flag}: unknown capability: {bad:?}"));
        }
    }
    let mut caps: Vec<String> = if add.iter().any(|c| c == ALL) {
        all().into_iter().filter(|c| !drop.contains(c)).collect()
    } else if drop.iter().any(|c| c == ALL) {
        add.to_vec()
    } else {
        DOCKER_DEFAULT
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .chain(add.iter().cloned())
            .collect()
    };
    caps.sort_by_key(|c| number(c));
    caps.dedup();
    Ok(caps)
}

/// The capabilities as a bit mask.
pub fn mask(names: &[String]) -> u64 {
    names
        .iter()
        .filter_map(|n| number(n))
        .fold(0, |mask, bit| mask | (1u64 << bit))
}

/// Drops every capability outside `kept` from the bounding set (so no
/// exec can gain it back), for this process and what it runs.
pub fn drop_bounding(kept: u64) -> Result<(), String> {
    for cap in 0..64u32 {
        if kept & (1u64 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with an integer argument.
        let done = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if done != 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EINVAL) {
                break; // past the last capability this kernel knows
            }
            return Err(format!("drop capability {cap}: {error}"));
        }
    }
    Ok(())
}

/// Cuts this process's own effective and permitted sets to `kept` and
/// empties the inheritable one (for a process that stays in the
/// container without an exec: the `--init` reaper).
pub fn limit_process(kept: u64) -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget fills two Data records for a version-3 header.
    if unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut Header,
            data.as_mut_ptr(),
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    for (i, d) in data.iter_mut().enumerate() {
        let part = (kept >> (32 * i)) as u32;
        d.effective &= part;
        d.permitted &= part;
        d.inheritable = 0;
    }
    // SAFETY: capset reads two Data records for a version-3 header.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn docker_default_is_docker_mask() {
        assert_eq!(mask(&strings(&DOCKER_DEFAULT)), 0xa804_25fb);
    }

    #[test]
    fn names_are_normalized_and_add_wins_as_in_docker_cli() {
        let (add, drop) = effective_add_drop(
            &strings(&["net_admin", " sys_time", "CAP_CHOWN"]),
            &strings(&["chown", "Cap_Kill", "all"]),
        );
        assert_eq!(add, ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_TIME"]);
        assert_eq!(drop, ["ALL"]);
        let (add, _) = effective_add_drop(&strings(&["all", "chown"]), &[]);
        assert_eq!(add, ["ALL"]);
    }

    #[test]
    fn container_sets_follow_docker() {
        let set = container_set(&strings(&["CAP_NET_ADMIN"]), &strings(&["CAP_CHOWN"])).unwrap();
        assert!(set.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!set.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(set.len(), 14);
        assert_eq!(
            container_set(&strings(&["CAP_CHOWN"]), &strings(&["ALL"])).unwrap(),
            ["CAP_CHOWN"]
        );
        assert!(container_set(&[], &strings(&["ALL"])).unwrap().is_empty());
        let everything = container_set(&strings(&["ALL"]), &strings(&["CAP_SYS_ADMIN"])).unwrap();
        assert!(everything.len() > 30 && !everything.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(
            container_set(&strings(&["CAP_FOO"]), &[]).unwrap_err(),
            "invalid CapAdd: unknown capability: \"CAP_FOO\""
        );
    }
}
