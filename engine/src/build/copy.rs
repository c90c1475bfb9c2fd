//! COPY and ADD: sources copied into an empty staging directory laid out
//! as the image root, which the differ then turns into the step's layer.
//! docker's rules: several sources or a trailing `/` make the destination
//! a directory; a directory source copies its contents; new files belong
//! to 0:0 unless `--chown`; `--chmod` sets their mode; mtimes are kept;
//! ADD extracts local tar archives. A digest of what was copied (names,
//! contents, modes; not mtimes) keys the build cache.

use roci::{Algorithm, Hasher};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Copies a file or a symlink (not following it).
pub fn copy_entry(source: &Path, target: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(source)?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if meta.file_type().is_symlink() {
        let _ = std::fs::remove_file(target);
        std::os::unix::fs::symlink(std::fs::read_link(source)?, target)
    } else if meta.is_file() {
        std::fs::copy(source, target).map(|_| ())
    } else {
        Ok(()) // devices, fifos and sockets are not copied
    }
}

/// Sets `target`'s mode, owner and mtime from `meta`.
pub fn copy_metadata(meta: &std::fs::Metadata, target: &Path) -> std::io::Result<()> {
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(
            target,
            std::fs::Permissions::from_mode(meta.mode() & 0o7777),
        )?;
    }
    std::os::unix::fs::lchown(target, Some(meta.uid()), Some(meta.gid()))?;
    set_mtime(target, meta.mtime(), meta.mtime_nsec())
}

fn set_mtime(target: &Path, secs: i64, nanos: i64) -> std::io::Result<()> {
    let path = CString::new(target.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        },
    ];
    // SAFETY: a valid path and two timespecs.
    let done = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            path.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// How copied files are owned and moded.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyMode {
    pub uid: u32,
    pub gid: u32,
    pub chmod: Option<u32>,
}

/// Copies host path `source` (a file, link or directory) to `target`
/// under the staging root, applying `mode`, and feeds the cache digest.
pub fn copy_in(
    source: &Path,
    target: &Path,
    mode: CopyMode,
    digest: &mut Hasher,
    name: &str,
) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(source)?;
    if meta.is_dir() {
        std::fs::create_dir_all(target)?;
        let mut names: Vec<_> = std::fs::read_dir(source)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for child in names {
            let child_name = format!("{name}/{}", child.to_string_lossy());
            copy_in(
                &source.join(&child),
                &target.join(&child),
                mode,
                digest,
                &child_name,
            )?;
        }
    } else {
        copy_entry(source, target)?;
        if meta.is_file() {
            let mut file = std::fs::File::open(source)?;
            let mut content = Hasher::new(Algorithm::Sha256);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = std::io::Read::read(&mut file, &mut buf)?;
                if n == 0 {
                    break;
                }
                content.update(&buf[..n]);
            }
            digest.update(format!("{name} {}\n", content.finish()).as_bytes());
        } else if meta.file_type().is_symlink() {
            digest.update(
                format!("{name} -> {}\n", std::fs::read_link(source)?.display()).as_bytes(),
            );
        }
    }
    let perm = mode.chmod.unwrap_or(meta.mode() & 0o7777);
    digest.update(format!("{name} {perm:o}\n").as_bytes());
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(target, std::fs::Permissions::from_mode(perm))?;
    }
    std::os::unix::fs::lchown(target, Some(mode.uid), Some(mode.gid))?;
    set_mtime(target, meta.mtime(), meta.mtime_nsec())
}

/// Creates the parents of `dir` under `staging` (0:0, 0755) that the
/// image does not have, as a COPY into a new directory does.
pub fn make_parents(staging: &Path, dir: &str) -> std::io::Result<PathBuf> {
    let target = staging.join(dir.trim_start_matches('/'));
    std::fs::create_dir_all(&target)?;
    Ok(target)
}

/// Whether the bytes start like an archive ADD extracts.
pub fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let n = std::io::Read::read(&mut file, &mut head).unwrap_or(0);
    head[..n].starts_with(&[0x1f, 0x8b])
        || head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &head[257..262] == b"ustar")
}
