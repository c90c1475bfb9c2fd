//! The container's root filesystem, built by the init process inside its
//! new mount namespace before `pivot_root`: the overlay of the image's
//! layers, volumes and bind mounts, `/proc`, a minimal `/dev`, a read-only
//! `/sys`, and `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.

use super::config::{InitSpec, MountConfig};
use super::{io, sys, Result, RuntimeError};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use std::path::{Component, Path, PathBuf};

const NONE: Option<&str> = None;

/// Resolves `path` inside `root` as the container will see it: symlinks
/// met on the way are followed relative to `root`, never out of it.
pub fn secure_join(root: &Path, path: &str) -> PathBuf {
    let mut resolved = PathBuf::from("/");
    let mut pending: Vec<String> = path
        .split('/')
        .rev()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = resolved.join(&part);
        let host = root.join(candidate.strip_prefix("/").unwrap_or(&candidate));
        match std::fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() && links < 40 => {
                links += 1;
                let target = std::fs::read_link(&host).unwrap_or_default();
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                for c in target.components().rev() {
                    if let Component::Normal(name) = c {
                        pending.push(name.to_string_lossy().into_owned());
                    } else if c == Component::ParentDir {
                        pending.push("..".into());
                    }
                }
            }
            _ => resolved = candidate,
        }
    }
    root.join(resolved.strip_prefix("/").unwrap_or(&resolved))
}

fn mkdirs(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(io(path))
}

/// Makes sure a mount target exists with the kind of the source.
fn ensure_target(source: &Path, target: &Path) -> Result<()> {
    if source.is_dir() {
        return mkdirs(target);
    }
    if let Some(parent) = target.parent() {
        mkdirs(parent)?;
    }
    if !target.exists() {
        std::fs::File::create(target).map_err(io(target))?;
    }
    Ok(())
}

fn bind(source: &Path, target: &Path, readonly: bool) -> Result<()> {
    let what = || format!("bind mount {} on {}", source.display(), target.display());
    mount(
        Some(source),
        target,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(sys(what()))?;
    if readonly {
        mount(
            NONE,
            target,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            NONE,
        )
        .map_err(sys(what()))?;
    }
    Ok(())
}

/// Copies the image's files into an empty new volume, as docker does on first use.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let target = to.join(entry.file_name());
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        } else if meta.is_dir() {
            std::fs::create_dir(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else if meta.is_file() {
            std::fs::copy(entry.path(), &target)?;
        } else {
            continue;
        }
        if !meta.file_type().is_symlink() {
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(meta.mode()))?;
        }
        std::os::unix::fs::lchown(&target, Some(meta.uid()), Some(meta.gid()))?;
    }
    let meta = std::fs::metadata(from)?;
    chown(to, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode()))
}

fn mount_volume(rootfs: &Path, m: &MountConfig) -> Result<()> {
    let source = Path::new(&m.source);
    let target = secure_join(rootfs, &m.destination);
    if m.kind == "volume" {
        let empty = std::fs::read_dir(source)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if empty && target.is_dir() {
            copy_tree(&target, source).map_err(io(&target))?;
        }
    } else if !source.exists() {
        // docker creates a missing bind source as a directory.
        mkdirs(source)?;
    }
    ensure_target(source, &target)?;
    bind(source, &target, m.readonly)
}

fn mount_dev(rootfs: &Path, tty: bool) -> Result<()> {
    let dev = rootfs.join("dev");
    mkdirs(&dev)?;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(sys("mount /dev"))?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let path = dev.join(name);
        mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .map_err(sys(format!("mknod /dev/{name}")))?;
        // mknod honours the umask; the nodes must be 0666 as docker makes them.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .map_err(io(&path))?;
    }
    let pts = dev.join("pts");
    mkdirs(&pts)?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )
    .map_err(sys("mount /dev/pts"))?;
    let shm = dev.join("shm");
    mkdirs(&shm)?;
    mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        Some("mode=1777,size=65536k"),
    )
    .map_err(sys("mount /dev/shm"))?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let path = dev.join(link);
        std::os::unix::fs::symlink(target, &path).map_err(io(&path))?;
    }
    if tty {
        // The container's terminal is its console, as runc makes it. By
        // its name: a /proc/self/fd link would resolve to the monitor's
        // mount of it, which this namespace cannot bind.
        let console = dev.join("console");
        std::fs::File::create(&console).map_err(io(&console))?;
        let pty = nix::unistd::ttyname(std::io::stdin()).map_err(sys("ttyname of the pty"))?;
        bind(&pty, &console, false)?;
    }
    Ok(())
}

/// Paths docker hides (`/dev/null` over files, an empty read-only tmpfs
/// over directories) or makes read-only.
const MASKED: [&str; 10] = [
    "proc/asound",
    "proc/acpi",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
    "sys/firmware",
];
const READ_ONLY: [&str; 5] = [
    "proc/bus",
    "proc/fs",
    "proc/irq",
    "proc/sys",
    "proc/sysrq-trigger",
];

fn mask(rootfs: &Path) -> Result<()> {
    for path in MASKED.iter().map(|p| rootfs.join(p)) {
        if path.is_dir() {
            mount(
                Some("tmpfs"),
                &path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                NONE,
            )
            .map_err(sys(format!("mask {}", path.display())))?;
        } else if path.exists() {
            bind(&rootfs.join("dev/null"), &path, false)?;
        }
    }
    for path in READ_ONLY.iter().map(|p| rootfs.join(p)) {
        if path.exists() {
            bind(&path, &path, true)?;
        }
    }
    Ok(())
}

/// Builds the root under `spec.rootfs` and moves into it with `pivot_root`.
pub fn build_and_enter(spec: &InitSpec) -> Result<()> {
    // Nothing mounted here may leak back to the host.
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
        .map_err(sys("make / private"))?;
    let rootfs = Path::new(&spec.rootfs);
    std::env::set_current_dir(&spec.layers_root).map_err(io(Path::new(&spec.layers_root)))?;
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        spec.lowerdir, spec.upperdir, spec.workdir
    );
    mount(
        Some("overlay"),
        rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|e| {
        if e == nix::errno::Errno::ENODEV {
            RuntimeError::Invalid("this kernel has no overlay filesystem (modprobe overlay)".into())
        } else {
            sys(format!("mount the overlay root ({options})"))(e)
        }
    })?;
    for m in &spec.mounts {
        mount_volume(rootfs, m)?;
    }
    let proc_dir = rootfs.join("proc");
    mkdirs(&proc_dir)?;
    mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        NONE,
    )
    .map_err(sys("mount /proc"))?;
    mount_dev(rootfs, spec.process.tty)?;
    let sys_dir = rootfs.join("sys");
    mkdirs(&sys_dir)?;
    let ro = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV | MsFlags::MS_RDONLY;
    if mount(Some("sysfs"), &sys_dir, Some("sysfs"), ro, NONE).is_err() {
        bind(Path::new("/sys"), &sys_dir, true)?;
    }
    for (source, destination) in &spec.etc_files {
        let target = secure_join(rootfs, destination);
        ensure_target(Path::new(source), &target)?;
        bind(Path::new(source), &target, false)?;
    }
    mask(rootfs)?;
    std::env::set_current_dir(rootfs).map_err(io(rootfs))?;
    nix::unistd::pivot_root(".", ".").map_err(sys("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach the old root"))?;
    std::env::set_current_dir("/").map_err(io(Path::new("/")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::secure_join;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", root.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", root.path().join("up")).unwrap();
        assert_eq!(
            secure_join(root.path(), "/abs/x"),
            root.path().join("etc/x")
        );
        assert_eq!(secure_join(root.path(), "up/y"), root.path().join("y"));
        assert_eq!(secure_join(root.path(), "../../z"), root.path().join("z"));
    }
}
