//! The differ: a container's upper directory turned back into a layer,
//! the inverse of the applier. Overlay whiteouts (0/0 character devices)
//! become `.wh.NAME` entries and opaque directories a `.wh..wh..opq`
//! entry. The tar is deterministic: entries sorted by name, owners, modes,
//! mtimes and xattrs as on disk, no atime or ctime, hardlinks inside the
//! layer kept as links. Also: the changes docker's `diff` lists.

use crate::store::{ContentStore, StoreError};
use roci::{Algorithm, Digest, Hasher};
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The overlay xattr marking an opaque directory.
const OPAQUE: &str = "trusted.overlay.opaque";
/// The media type of the layers the differ writes.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> DiffError + '_ {
    move |source| DiffError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The xattrs of `path` (not following a symlink), minus overlay's own.
fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return Vec::new();
    };
    let mut names = vec![0u8; 4096];
    // SAFETY: the buffer's length is passed; the kernel writes at most that.
    let len = unsafe { libc::llistxattr(c_path.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if len <= 0 {
        return Vec::new();
    }
    names.truncate(len as usize);
    let mut found = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let key = String::from_utf8_lossy(name).into_owned();
        if key.starts_with("trusted.overlay.") {
            continue;
        }
        if let Some(value) = xattr(&c_path, name) {
            found.push((key, value));
        }
    }
    found.sort();
    found
}

fn xattr(c_path: &CString, name: &[u8]) -> Option<Vec<u8>> {
    let c_name = CString::new(name).ok()?;
    let mut value = vec![0u8; 64 * 1024];
    // SAFETY: the buffer's length is passed; the kernel writes at most that.
    let len = unsafe {
        libc::lgetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    if len < 0 {
        return None;
    }
    value.truncate(len as usize);
    Some(value)
}

/// An overlay whiteout: a 0/0 character device.
pub(crate) fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// A directory overlay marks opaque (`trusted.overlay.opaque=y`).
pub(crate) fn is_opaque(path: &Path) -> bool {
    CString::new(path.as_os_str().as_bytes())
        .ok()
        .and_then(|p| xattr(&p, OPAQUE.as_bytes()))
        .is_some_and(|v| v == b"y")
}

/// The entries of a directory, sorted by name.
fn sorted(dir: &Path) -> Result<Vec<std::ffi::OsString>, DiffError> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(io_at(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(io_at(dir))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// One PAX record: `LEN key=value\n`, LEN counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len += 1;
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// Writes one layer tar of `upper` to `out`.
struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    /// (dev, inode) of files with several links, to the first path written.
    links: HashMap<(u64, u64), String>,
}

impl<W: Write> TarWriter<W> {
    fn header(meta: &std::fs::Metadata, kind: tar::EntryType) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(u64::from(meta.uid()));
        header.set_gid(u64::from(meta.gid()));
        header.set_mtime(meta.mtime().max(0) as u64);
        header.set_size(0);
        header
    }

    fn append(
        &mut self,
        path: &Path,
        name: &str,
        meta: &std::fs::Metadata,
    ) -> Result<(), DiffError> {
        let attrs = xattrs(path);
        if !attrs.is_empty() {
            let mut records = Vec::new();
            for (key, value) in &attrs {
                records.extend(pax_record(&format!("SCHILY.xattr.{key}"), value));
            }
            let mut pax = tar::Header::new_ustar();
            pax.set_entry_type(tar::EntryType::XHeader);
            pax.set_size(records.len() as u64);
            pax.set_mode(0o644);
            pax.set_cksum();
            self.builder
                .append(&pax, records.as_slice())
                .map_err(io_at(path))?;
        }
        let file_type = meta.file_type();
        let builder = &mut self.builder;
        if file_type.is_dir() {
            let mut header = Self::header(meta, tar::EntryType::Directory);
            builder
                .append_data(&mut header, format!("{name}/"), io::empty())
                .map_err(io_at(path))
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(path).map_err(io_at(path))?;
            let mut header = Self::header(meta, tar::EntryType::Symlink);
            builder
                .append_link(&mut header, name, target)
                .map_err(io_at(path))
        } else if file_type.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    let mut header = Self::header(meta, tar::EntryType::Link);
                    return builder
                        .append_link(&mut header, name, first)
                        .map_err(io_at(path));
                }
                self.links.insert(key, name.to_string());
            }
            let mut header = Self::header(meta, tar::EntryType::Regular);
            header.set_size(meta.len());
            let file = std::fs::File::open(path).map_err(io_at(path))?;
            builder
                .append_data(&mut header, name, file)
                .map_err(io_at(path))
        } else {
            let kind = if file_type.is_fifo() {
                tar::EntryType::Fifo
            } else if file_type.is_block_device() {
                tar::EntryType::Block
            } else if file_type.is_char_device() {
                tar::EntryType::Char
            } else {
                return Ok(()); // sockets have no place in a layer
            };
            let mut header = Self::header(meta, kind);
            let rdev = meta.rdev();
            let _ = header.set_device_major(libc::major(rdev));
            let _ = header.set_device_minor(libc::minor(rdev));
            builder
                .append_data(&mut header, name, io::empty())
                .map_err(io_at(path))
        }
    }

    /// A whiteout or opaque marker: an empty regular file.
    fn marker(&mut self, name: &str, meta: &std::fs::Metadata) -> Result<(), DiffError> {
        let mut header = Self::header(meta, tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        self.builder
            .append_data(&mut header, name, io::empty())
            .map_err(io_at(Path::new(name)))
    }

    fn walk(&mut self, dir: &Path, prefix: &str) -> Result<(), DiffError> {
        for name in sorted(dir)? {
            let path = dir.join(&name);
            let meta = std::fs::symlink_metadata(&path).map_err(io_at(&path))?;
            let text = name.to_string_lossy();
            let entry = format!("{prefix}{text}");
            if is_whiteout(&meta) {
                self.marker(&format!("{prefix}.wh.{text}"), &meta)?;
                continue;
            }
            self.append(&path, &entry, &meta)?;
            if meta.is_dir() {
                if is_opaque(&path) {
                    self.marker(&format!("{entry}/.wh..wh..opq"), &meta)?;
                }
                self.walk(&path, &format!("{entry}/"))?;
            }
        }
        Ok(())
    }
}

/// Writes the layer tar of the upper directory `upper` to `out`.
pub fn write_layer<W: Write>(upper: &Path, out: W) -> Result<W, DiffError> {
    let mut writer = TarWriter {
        builder: tar::Builder::new(out),
        links: HashMap::new(),
    };
    writer.walk(upper, "")?;
    writer.builder.into_inner().map_err(io_at(upper))
}

/// A layer the differ stored.
#[derive(Debug, Clone)]
pub struct StoredLayer {
    /// The gzip blob's digest and size.
    pub digest: Digest,
    pub size: u64,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
}

/// Hashes what passes through (the DiffID of the uncompressed tar).
struct Hashing<W: Write> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A store blob writer as `io::Write`.
struct BlobSink(crate::store::BlobWriter);

impl Write for BlobSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .write_chunk(buf)
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the layer of `upper` into the store, gzip-compressed, hashing
/// both the blob and the tar as they stream.
pub fn store_layer(store: &ContentStore, upper: &Path) -> Result<StoredLayer, DiffError> {
    let _session = store.write_session()?;
    let sink = BlobSink(store.blob_writer_computed()?);
    let gzip = flate2::write::GzEncoder::new(sink, flate2::Compression::fast());
    let hashing = Hashing {
        inner: gzip,
        hasher: Hasher::new(Algorithm::Sha256),
    };
    let hashing = write_layer(upper, hashing)?;
    let diff_id = hashing.hasher.finish();
    let sink = hashing.inner.finish().map_err(io_at(upper))?;
    let size = sink.0.written();
    let digest = sink.0.commit()?;
    Ok(StoredLayer {
        digest,
        size,
        diff_id,
    })
}

/// A change `docker diff` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(String),
    Changed(String),
    Deleted(String),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Added(p) => write!(f, "A {p}"),
            Change::Changed(p) => write!(f, "C {p}"),
            Change::Deleted(p) => write!(f, "D {p}"),
        }
    }
}

/// The changes in `upper` over the image layers `lowers` (topmost
/// first): what is new is added, what shadows a lower entry is changed,
/// a whiteout is a deletion. Sorted by path.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, DiffError> {
    fn in_lowers(lowers: &[PathBuf], relative: &str) -> bool {
        lowers
            .iter()
            .any(|l| std::fs::symlink_metadata(l.join(relative.trim_start_matches('/'))).is_ok())
    }
    fn walk(
        dir: &Path,
        prefix: &str,
        lowers: &[PathBuf],
        out: &mut Vec<Change>,
    ) -> Result<(), DiffError> {
        for name in sorted(dir)? {
            let path = dir.join(&name);
            let meta = std::fs::symlink_metadata(&path).map_err(io_at(&path))?;
            let entry = format!("{prefix}/{}", OsStr::new(&name).to_string_lossy());
            if is_whiteout(&meta) {
                out.push(Change::Deleted(entry));
                continue;
            }
            if in_lowers(lowers, &entry) {
                out.push(Change::Changed(entry.clone()));
            } else {
                out.push(Change::Added(entry.clone()));
            }
            if meta.is_dir() {
                walk(&path, &entry, lowers, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(upper, "", lowers, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        let record = pax_record("SCHILY.xattr.user.k", b"v");
        let text = String::from_utf8(record.clone()).unwrap();
        let len: usize = text.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(len, record.len());
    }

    #[test]
    fn layers_are_deterministic_and_round_trip_through_the_applier() {
        let upper = tempfile::tempdir().unwrap();
        let u = upper.path();
        std::fs::create_dir_all(u.join("b/dir")).unwrap();
        std::fs::write(u.join("b/dir/file"), b"content").unwrap();
        std::fs::write(u.join("a"), b"first").unwrap();
        std::fs::hard_link(u.join("a"), u.join("a-link")).unwrap();
        std::os::unix::fs::symlink("a", u.join("c")).unwrap();
        let one = write_layer(u, Vec::new()).unwrap();
        let two = write_layer(u, Vec::new()).unwrap();
        assert_eq!(one, two, "the same directory gave two different tars");
        let mut names = Vec::new();
        let mut archive = tar::Archive::new(one.as_slice());
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            names.push(entry.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(names, ["a", "a-link", "b/", "b/dir/", "b/dir/file", "c"]);
        let target = tempfile::tempdir().unwrap();
        let applied = crate::applier::apply_layer(
            one.as_slice(),
            target.path(),
            crate::applier::ApplyOptions::for_current_user(),
        )
        .unwrap();
        assert_eq!(applied.diff_id, Digest::of_bytes(Algorithm::Sha256, &one));
        assert_eq!(
            std::fs::read(target.path().join("b/dir/file")).unwrap(),
            b"content"
        );
        let meta = std::fs::metadata(target.path().join("a-link")).unwrap();
        assert_eq!(meta.nlink(), 2);
    }
}
