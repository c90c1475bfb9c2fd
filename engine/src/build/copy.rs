//! COPY and ADD: sources copied into an empty staging directory laid out
//! as the image root, which the differ then turns into the step's layer.
//! docker's rules: several sources or a trailing `/` make the destination
//! a directory; a directory source copies its contents; new files belong
//! to 0:0 unless `--chown`; `--chmod` sets their mode; mtimes are kept;
//! ADD extracts local tar archives. A digest of what was copied (names,
//! contents, modes; not mtimes) keys the build cache.

use super::context::Context;
use crate::applier::dirfd::LayerDir;
use crate::applier::path;
use roci::{Algorithm, Hasher};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Copies a file or a symlink (not following it). Whatever non-directory
/// `target` held is replaced, never written through (a symlink an earlier
/// source copied there must not lead the copy out of the staging root).
pub fn copy_entry(source: &Path, target: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(source)?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if std::fs::symlink_metadata(target).is_ok_and(|m| !m.is_dir()) {
        std::fs::remove_file(target)?;
    }
    if meta.file_type().is_symlink() {
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
/// From the build context (`ignore` given, `name` the path in it), what
/// `.dockerignore` excludes is left out at every depth, as docker never
/// sends it: an excluded directory is entered only for its exceptions.
pub fn copy_in(
    source: &Path,
    target: &Path,
    mode: CopyMode,
    digest: &mut Hasher,
    name: &str,
    ignore: Option<&Context>,
) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(source)?;
    if meta.is_dir() {
        // A symlink or file an earlier source left there is replaced, not followed.
        if std::fs::symlink_metadata(target).is_ok_and(|m| !m.is_dir()) {
            std::fs::remove_file(target)?;
        }
        std::fs::create_dir_all(target)?;
        let mut names: Vec<_> = std::fs::read_dir(source)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for child in names {
            let child_name = format!("{name}/{}", child.to_string_lossy());
            let child_source = source.join(&child);
            if let Some(context) = ignore {
                if context.excluded(&child_name) {
                    let is_dir = std::fs::symlink_metadata(&child_source).is_ok_and(|m| m.is_dir());
                    if !(is_dir && context.includes_under(&child_name)?) {
                        continue;
                    }
                }
            }
            copy_in(
                &child_source,
                &target.join(&child),
                mode,
                digest,
                &child_name,
                ignore,
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
/// `dir` is clamped inside `staging` and made through no symlink.
pub fn make_parents(staging: &Path, dir: &str) -> std::io::Result<PathBuf> {
    let components = path::clamp(Path::new(dir));
    LayerDir::open(staging)?
        .directory(&components)
        .map_err(|e| match e {
            Some(errno) => std::io::Error::from(errno),
            None => std::io::Error::other(format!("{dir}: goes through a symlink or a file")),
        })?;
    Ok(components
        .iter()
        .fold(staging.to_path_buf(), |p, c| p.join(c)))
}

/// Whether the bytes start like an archive ADD extracts (a regular file
/// only: a symlink in the context is copied as a link, never read through).
pub fn is_archive(path: &Path) -> bool {
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = [0u8; 512];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let n = std::io::Read::read(&mut file, &mut head).unwrap_or(0);
    head[..n].starts_with(&[0x1f, 0x8b])
        || head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &head[257..262] == b"ustar")
}
