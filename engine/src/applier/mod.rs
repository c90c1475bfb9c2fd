//! The layer applier: a layer's tar stream unpacked into the layer's own
//! directory, the way overlayfs reads it.
//!
//! - Compression is recognised by magic bytes (gzip, zstd, or none); the DiffID
//!   (sha256 of the uncompressed tar) is computed as the stream is read.
//! - Whiteouts become overlay whiteouts: `.wh.NAME` a 0/0 character device
//!   named NAME, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on
//!   its directory.
//! - Files, directories, symlinks, hardlinks, fifos and (when allowed)
//!   devices keep their owners, modes (setuid included), mtimes and xattrs.
//! - Hostile layers are contained ([`path`], [`dirfd`]): `..` is refused,
//!   absolute paths land inside the layer, no symlink is followed while
//!   writing, hardlinks reach only entries already in this layer, and
//!   device nodes are skipped unless allowed.
//! - The same no-follow walk places what a container's config names
//!   (`VOLUME`, `WORKDIR`, `-v`, COPY destinations): [`path::resolve`]
//!   follows symlinks as the container would, inside its root only, and
//!   [`dirfd::LayerDir::directory`] makes the result through no symlink.

pub mod dirfd;
pub mod path;
pub mod zstd;

use dirfd::{Existing, LayerDir};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmodat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use path::Components;
use roci::{Algorithm, Digest, Hasher};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

/// How an unpack may treat what it finds.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// Create device nodes the layer holds (root only); otherwise skip them.
    pub allow_devices: bool,
    /// Give files the owners the layer names (root only).
    pub preserve_owners: bool,
}

impl ApplyOptions {
    /// What the running user can honour: everything as root.
    pub fn for_current_user() -> ApplyOptions {
        let root = nix::unistd::geteuid().is_root();
        ApplyOptions {
            allow_devices: root,
            preserve_owners: root,
        }
    }
}

/// What an unpack did.
#[derive(Debug)]
pub struct Applied {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    pub entries: u64,
    /// Entries skipped on purpose (devices when not allowed), by path.
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The layer tried to write outside its directory: nothing was.
    #[error("hostile layer entry {path}: {reason}")]
    Hostile { path: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io(path: &str) -> impl FnOnce(std::io::Error) -> ApplyError + '_ {
    move |source| ApplyError::Io {
        path: path.to_string(),
        source,
    }
}

fn sys(path: &str) -> impl FnOnce(Errno) -> ApplyError + '_ {
    move |errno| ApplyError::Io {
        path: path.to_string(),
        source: std::io::Error::from(errno),
    }
}

/// Hashes what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Unpacks the layer read from `input` into the existing directory `dest`.
pub fn apply_layer(
    input: impl Read,
    dest: &Path,
    options: ApplyOptions,
) -> Result<Applied, ApplyError> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let magic = buffered.fill_buf().map_err(io("layer"))?.to_vec();
    let tar_stream: Box<dyn Read> = match magic.as_slice() {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            Box::new(zstd::ZstdReader::new(buffered).map_err(io("layer"))?)
        }
        _ => Box::new(buffered),
    };
    let mut hashing = HashingReader {
        inner: tar_stream,
        hasher: Hasher::new(Algorithm::Sha256),
    };
    let layer = LayerDir::open(dest).map_err(sys("layer directory"))?;
    let mut applier = Applier {
        layer: &layer,
        options,
        entries: 0,
        skipped: Vec::new(),
        directories: Vec::new(),
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(io("layer"))? {
            let entry = entry.map_err(io("layer"))?;
            applier.entry(entry)?;
        }
    }
    // The DiffID covers the whole tar, its end-of-archive padding included.
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(io("layer"))?;
    applier.finish_directories()?;
    Ok(Applied {
        diff_id: hashing.hasher.finish(),
        entries: applier.entries,
        skipped: applier.skipped,
    })
}

struct Applier<'a> {
    layer: &'a LayerDir,
    options: ApplyOptions,
    entries: u64,
    skipped: Vec<String>,
    /// Directories and their mtimes, set last (their children change them).
    directories: Vec<(Components, i64)>,
}

fn display(components: &[OsString]) -> String {
    components
        .iter()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

impl Applier<'_> {
    fn parent(&self, components: &[OsString], shown: &str) -> Result<OwnedFd, ApplyError> {
        self.layer
            .directory(&components[..components.len() - 1])
            .map_err(|e| match e {
                None => ApplyError::Hostile {
                    path: shown.to_string(),
                    reason: "its path goes through a symlink or a file".into(),
                },
                Some(errno) => ApplyError::Io {
                    path: shown.to_string(),
                    source: std::io::Error::from(errno),
                },
            })
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), ApplyError> {
        let raw = entry.path().map_err(io("entry"))?.into_owned();
        let shown = raw.display().to_string();
        let components = path::sanitize(&raw).map_err(|reason| ApplyError::Hostile {
            path: shown.clone(),
            reason,
        })?;
        let Some(name) = components.last().cloned() else {
            return Ok(()); // the layer root itself
        };
        self.entries += 1;
        let dir = self.parent(&components, &shown)?;
        let name_bytes = name.as_encoded_bytes();

        // Whiteouts.
        if name_bytes == b".wh..wh..opq" {
            LayerDir::set_dir_xattr(&dir, "trusted.overlay.opaque", b"y").map_err(io(&shown))?;
            return Ok(());
        }
        if let Some(hidden) = name_bytes.strip_prefix(b".wh.") {
            let hidden = OsString::from(String::from_utf8_lossy(hidden).into_owned());
            self.clear(&dir, &hidden, false, &shown)?;
            mknodat(
                &dir,
                hidden.as_os_str(),
                SFlag::S_IFCHR,
                Mode::empty(),
                nix::sys::stat::makedev(0, 0),
            )
            .map_err(sys(&shown))?;
            return Ok(());
        }

        let header = entry.header().clone();
        let kind = header.entry_type();
        let mode = Mode::from_bits_truncate(header.mode().map_err(io(&shown))? & 0o7777);
        let is_dir = kind.is_dir();
        self.clear(&dir, &name, is_dir, &shown)?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = nix::fcntl::openat(
                    &dir,
                    name.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(sys(&shown))?;
                let mut file = std::fs::File::from(fd);
                std::io::copy(&mut entry, &mut file).map_err(io(&shown))?;
            }
            tar::EntryType::Directory => {
                match nix::sys::stat::mkdirat(
                    &dir,
                    name.as_os_str(),
                    Mode::from_bits_truncate(0o700),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(sys(&shown)(e)),
                }
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(io(&shown))?
                    .unwrap_or_default()
                    .into_owned();
                symlinkat(target.as_os_str(), &dir, name.as_os_str()).map_err(sys(&shown))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(io(&shown))?
                    .unwrap_or_default()
                    .into_owned();
                let target = path::sanitize(&target).map_err(|reason| ApplyError::Hostile {
                    path: shown.clone(),
                    reason: format!("hardlink target: {reason}"),
                })?;
                let outside = || ApplyError::Hostile {
                    path: shown.clone(),
                    reason: format!(
                        "hardlink to {}, which is not in this layer",
                        display(&target)
                    ),
                };
                let Some(target_name) = target.last() else {
                    return Err(outside());
                };
                let target_dir = self
                    .layer
                    .directory(&target[..target.len() - 1])
                    .map_err(|_| outside())?;
                if LayerDir::existing(&target_dir, target_name).map_err(sys(&shown))?
                    != Existing::Other
                {
                    return Err(outside());
                }
                linkat(
                    &target_dir,
                    target_name.as_os_str(),
                    &dir,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(sys(&shown))?;
                return Ok(()); // a hardlink shares its target's metadata
            }
            tar::EntryType::Fifo => {
                mknodat(&dir, name.as_os_str(), SFlag::S_IFIFO, mode, 0).map_err(sys(&shown))?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                if !self.options.allow_devices {
                    self.skipped.push(shown);
                    return Ok(());
                }
                let kind = if kind == tar::EntryType::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let dev = nix::sys::stat::makedev(u64::from(major), u64::from(minor));
                mknodat(&dir, name.as_os_str(), kind, mode, dev).map_err(sys(&shown))?;
            }
            _ => {
                self.skipped.push(shown);
                return Ok(());
            }
        }
        self.metadata(&dir, &name, &mut entry, &header, kind, mode, &shown)?;
        if is_dir {
            self.directories
                .push((components, header.mtime().unwrap_or(0) as i64));
        }
        Ok(())
    }

    /// Makes room for `name`: an existing directory stays when a directory
    /// comes (its contents merge); anything else is removed.
    fn clear(
        &self,
        dir: &OwnedFd,
        name: &OsString,
        keep_dir: bool,
        shown: &str,
    ) -> Result<(), ApplyError> {
        match LayerDir::existing(dir, name).map_err(sys(shown))? {
            Existing::Nothing => Ok(()),
            Existing::Directory if keep_dir => Ok(()),
            Existing::Directory => {
                unlinkat(dir, name.as_os_str(), UnlinkatFlags::RemoveDir).map_err(sys(shown))
            }
            Existing::Other => {
                unlinkat(dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir).map_err(sys(shown))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn metadata<R: Read>(
        &self,
        dir: &OwnedFd,
        name: &OsString,
        entry: &mut tar::Entry<'_, R>,
        header: &tar::Header,
        kind: tar::EntryType,
        mode: Mode,
        shown: &str,
    ) -> Result<(), ApplyError> {
        if self.options.preserve_owners {
            // An empty or garbled numeric field reads as root, as tar does.
            let uid = header.uid().unwrap_or(0) as u32;
            let gid = header.gid().unwrap_or(0) as u32;
            fchownat(
                dir,
                name.as_os_str(),
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(sys(shown))?;
        }
        if let Ok(Some(extensions)) = entry.pax_extensions() {
            for extension in extensions.flatten() {
                let Ok(key) = extension.key() else { continue };
                if let Some(attr) = key.strip_prefix("SCHILY.xattr.") {
                    LayerDir::set_xattr(dir, name, attr, extension.value_bytes())
                        .map_err(io(shown))?;
                }
            }
        }
        if kind != tar::EntryType::Symlink {
            // After chown, which clears setuid bits.
            fchmodat(dir, name.as_os_str(), mode, FchmodatFlags::FollowSymlink)
                .map_err(sys(shown))?;
        }
        if !kind.is_dir() {
            let mtime = TimeSpec::new(header.mtime().unwrap_or(0) as i64, 0);
            utimensat(
                dir,
                name.as_os_str(),
                &mtime,
                &mtime,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(sys(shown))?;
        }
        Ok(())
    }

    /// Sets directories' mtimes, deepest first, once their contents are written.
    fn finish_directories(&mut self) -> Result<(), ApplyError> {
        self.directories
            .sort_by_key(|(components, _)| std::cmp::Reverse(components.len()));
        for (components, mtime) in &self.directories {
            let shown = display(components);
            let dir = self.parent(components, &shown)?;
            let name = &components[components.len() - 1];
            let time = TimeSpec::new(*mtime, 0);
            utimensat(
                &dir,
                name.as_os_str(),
                &time,
                &time,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(sys(&shown))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
