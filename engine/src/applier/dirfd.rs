//! The filesystem operations of an unpack, all relative to the file
//! descriptor of the layer's directory. Parents are opened one component
//! at a time with `O_NOFOLLOW | O_DIRECTORY`, so no symlink (one planted
//! earlier in the same archive, say) is ever followed, and nothing can be
//! created outside the layer.

use super::path::{self, Components, Entry, ResolveError};
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What a path holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Nothing,
    Directory,
    Other,
}

/// The layer directory, opened.
pub struct LayerDir {
    root: OwnedFd,
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

impl LayerDir {
    pub fn open(path: &Path) -> nix::Result<LayerDir> {
        let root = openat(nix::fcntl::AT_FDCWD, path, dir_flags(), Mode::empty())?;
        Ok(LayerDir { root })
    }

    /// Opens a directory at a path of the engine's own (an `l/` short
    /// link of overlay2 may name it): followed to the end, as no image
    /// wrote it. Below it, nothing is followed.
    pub fn open_engine_path(path: &Path) -> nix::Result<LayerDir> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let root = openat(nix::fcntl::AT_FDCWD, path, flags, Mode::empty())?;
        Ok(LayerDir { root })
    }

    /// Opens the directory `components` names (creating missing ones),
    /// refusing to pass through anything that is not a real directory.
    /// `Err(None)` means a symlink or a non-directory was in the way.
    pub fn directory(&self, components: &[OsString]) -> Result<OwnedFd, Option<Errno>> {
        let mut current = self.root.try_clone().map_err(|_| Some(Errno::EBADF))?;
        for part in components {
            let next = match openat(&current, part.as_os_str(), dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(&current, part.as_os_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(Some(e)),
                    }
                    openat(&current, part.as_os_str(), dir_flags(), Mode::empty()).map_err(|e| {
                        match e {
                            Errno::ELOOP | Errno::ENOTDIR => None,
                            other => Some(other),
                        }
                    })?
                }
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => return Err(None),
                Err(e) => return Err(Some(e)),
            };
            current = next;
        }
        Ok(current)
    }

    /// Opens the existing directory `components` names, passing through
    /// no symlink; `Ok(None)` when it is missing or not a directory.
    pub fn existing_directory(&self, components: &[OsString]) -> nix::Result<Option<OwnedFd>> {
        let mut current = self.root.try_clone().map_err(|_| Errno::EBADF)?;
        for part in components {
            current = match openat(&current, part.as_os_str(), dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR) => return Ok(None),
                Err(e) => return Err(e),
            };
        }
        Ok(Some(current))
    }

    /// What `components` names in this directory, not following it (the
    /// lookup of a [`path::resolve`] inside this directory as a root).
    pub fn lookup(&self, components: &[OsString]) -> std::io::Result<Entry> {
        let Some((name, parents)) = components.split_last() else {
            return Ok(Entry::Directory);
        };
        let Some(dir) = self.existing_directory(parents)? else {
            return Ok(Entry::Missing);
        };
        entry_at(&dir, name)
    }

    /// `raw` resolved inside this directory as its root ([`path::resolve`]).
    pub fn resolve(&self, raw: &Path) -> Result<Components, ResolveError> {
        path::resolve(raw, |components| self.lookup(components))
    }

    /// Opens (creating it and its parents when missing) the file
    /// `components` names, for a bind mount of a file over it. The parents
    /// must be real directories and the file no symlink.
    pub fn file(&self, components: &[OsString]) -> Result<OwnedFd, Option<Errno>> {
        let Some((name, parents)) = components.split_last() else {
            return Err(Some(Errno::EISDIR));
        };
        let dir = self.directory(parents)?;
        openat(
            &dir,
            name.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(|e| match e {
            Errno::ELOOP => None,
            other => Some(other),
        })
    }

    /// What `name` in `dir` is, without following a symlink.
    pub fn existing(dir: &OwnedFd, name: &OsStr) -> nix::Result<Existing> {
        match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat)
                if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
                    == SFlag::S_IFDIR =>
            {
                Ok(Existing::Directory)
            }
            Ok(_) => Ok(Existing::Other),
            Err(Errno::ENOENT) => Ok(Existing::Nothing),
            Err(e) => Err(e),
        }
    }

    /// Sets an extended attribute on `name` in `dir` without following a
    /// final symlink (through `/proc/self/fd`, as there is no `lsetxattrat`).
    pub fn set_xattr(dir: &OwnedFd, name: &OsStr, key: &str, value: &[u8]) -> std::io::Result<()> {
        let mut path = format!("/proc/self/fd/{}/", dir.as_fd().as_raw_fd()).into_bytes();
        path.extend_from_slice(name.as_bytes());
        let path = CString::new(path).map_err(std::io::Error::other)?;
        let key = CString::new(key).map_err(std::io::Error::other)?;
        // SAFETY: both strings are NUL-terminated and live across the call;
        // the value pointer and length describe a valid slice.
        let rc = unsafe {
            libc::lsetxattr(
                path.as_ptr(),
                key.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        os_result(rc)
    }

    /// Sets an extended attribute on a directory opened as `dir`.
    pub fn set_dir_xattr(dir: &OwnedFd, key: &str, value: &[u8]) -> std::io::Result<()> {
        let key = CString::new(key).map_err(std::io::Error::other)?;
        // SAFETY: a valid open fd, a NUL-terminated key, a valid slice.
        let rc = unsafe {
            libc::fsetxattr(
                dir.as_fd().as_raw_fd(),
                key.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        os_result(rc)
    }
}

/// What `name` in `dir` is, a symlink's target read, nothing followed.
pub fn entry_at(dir: &OwnedFd, name: &OsStr) -> std::io::Result<Entry> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => {
            let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
            Ok(if kind == SFlag::S_IFDIR {
                Entry::Directory
            } else if kind == SFlag::S_IFLNK {
                Entry::Symlink(PathBuf::from(readlinkat(dir, name)?))
            } else {
                Entry::Other
            })
        }
        Err(Errno::ENOENT) => Ok(Entry::Missing),
        Err(e) => Err(e.into()),
    }
}

/// The path through which the kernel reaches an open descriptor's file
/// (`/proc/self/fd/N`): a mount or a read there acts on that very file,
/// whatever its path became.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// A libc return code as a result: 0 is success, anything else `errno`.
fn os_result(rc: libc::c_int) -> std::io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
