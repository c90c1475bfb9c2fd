//! The container's root filesystem, built by the init process inside its
//! new mount namespace before `pivot_root`: the overlay of the image's
//! layers, volumes and bind mounts, `/proc`, a minimal `/dev`, a read-only
//! `/sys`, and `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.

use super::config::{InitSpec, MountConfig};
use super::{io, sys, Result, RuntimeError};
use crate::applier::dirfd::{fd_path, LayerDir};
use crate::applier::path::Entry;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use std::os::fd::OwnedFd;
use std::path::Path;

const NONE: Option<&str> = None;

/// The place `destination` names inside the container's root, resolved
/// with the applier's rules (symlinks followed inside the root, `..`
/// stopping at it) and opened, created when missing (a directory, or a
/// file when `file`), through no symlink: whatever an image or a user
/// names, nothing outside the root is made or mounted on.
fn mount_point(root: &LayerDir, destination: &str, file: bool) -> Result<OwnedFd> {
    let invalid = |why: String| RuntimeError::Invalid(format!("mount point {destination}: {why}"));
    let components = root
        .resolve(Path::new(destination))
        .map_err(|e| invalid(e.to_string()))?;
    let opened = if file {
        root.file(&components)
    } else {
        root.directory(&components)
    };
    opened.map_err(|e| match e {
        None => invalid("its path goes through a symlink or a file".into()),
        Some(errno) => invalid(errno.desc().to_string()),
    })
}

fn mkdirs(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(io(path))
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
        self::readonly(source, target)?;
    }
    Ok(())
}

/// Makes the bind mount at `target` (of `source`) read-only.
fn readonly(source: &Path, target: &Path) -> Result<()> {
    let what = || format!("bind mount {} on {}", source.display(), target.display());
    mount(
        NONE,
        target,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
        NONE,
    )
    .map_err(sys(what()))
}

/// Copies the image's files into an empty new volume, as docker does on first use.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        // Not followed: a link in the image must not copy a host file in.
        let meta = std::fs::symlink_metadata(entry.path())?;
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

fn mount_volume(root: &LayerDir, m: &MountConfig) -> Result<()> {
    let source = Path::new(&m.source);
    if m.kind != "volume" && !source.exists() {
        // docker creates a missing bind source as a directory.
        mkdirs(source)?;
    }
    let file = !source.is_dir();
    let components = root
        .resolve(Path::new(&m.destination))
        .map_err(|e| RuntimeError::Invalid(format!("mount point {}: {e}", m.destination)))?;
    let existed = root.lookup(&components).map_err(io(source))? == Entry::Directory;
    let target_fd = mount_point(root, &m.destination, file)?;
    let target = fd_path(&target_fd);
    if m.kind == "volume" && existed && !file {
        let empty = std::fs::read_dir(source)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if empty {
            copy_tree(&target, source).map_err(io(Path::new(&m.destination)))?;
        }
    }
    bind(source, &target, false)?;
    if m.readonly {
        // The descriptor names the directory under the new mount: open the mount itself.
        let mounted = mount_point(root, &m.destination, file)?;
        readonly(source, &fd_path(&mounted))?;
    }
    Ok(())
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
    let root = LayerDir::open(rootfs).map_err(sys("open the container's root"))?;
    for m in &spec.mounts {
        mount_volume(&root, m)?;
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
        let target = mount_point(&root, destination, true)?;
        bind(Path::new(source), &fd_path(&target), false)?;
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
    use super::mount_point;
    use crate::applier::dirfd::LayerDir;

    #[test]
    fn mount_points_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink("/", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
        let opened = LayerDir::open(&root).unwrap();
        for (destination, inside) in [
            ("/abs/x", "x"),
            ("up/y", "y"),
            ("/../../z", "z"),
            ("/up/../../w/v", "w/v"),
        ] {
            mount_point(&opened, destination, false).unwrap();
            assert!(root.join(inside).is_dir(), "{destination} made {inside}");
        }
        mount_point(&opened, "/abs/etc/hosts", true).unwrap();
        assert!(root.join("etc/hosts").is_file());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "nothing made beside the root");
    }
}
