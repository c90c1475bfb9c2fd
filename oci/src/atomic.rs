//! Atomic file writes, the one way every crate replaces a file: the bytes
//! go to a temp file in the target's own directory (same filesystem, so
//! the rename is atomic), the file is fsynced, renamed over the target,
//! and the directory fsynced so the rename itself survives a crash. A
//! reader sees the old whole file or the new whole file, never a part; a
//! crash leaves at most a hidden `.NAME.tmp-*` file beside the target,
//! never a torn target.
//!
//! - [`write_atomic`]: a whole buffer.
//! - [`AtomicFile`]: a stream (`std::io::Write`), made visible by
//!   [`AtomicFile::commit`]; dropped without a commit it leaves nothing.
//! - [`sync_dir`]: fsync of a directory, for callers that rename by
//!   themselves (a blob named by its digest once it is hashed).
//! - [`rename_durable`]: the rename and directory fsync of a temp file
//!   written and synced elsewhere.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of files made without [`AtomicFile::with_mode`] (before the umask).
const DEFAULT_MODE: u32 = 0o644;

/// Writes `bytes` to `path` atomically (mode 0644 before the umask).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// Flushes a directory's entries (a rename or create in it) to disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Moves an already synced `temp` file to `target` (creating the target's
/// directories) and fsyncs the directory: the last step of every atomic
/// write, for writers that keep their temp files elsewhere (the registry's
/// per-process temp directory) or write them their own way (`O_DIRECT`).
pub fn rename_durable(temp: &Path, target: &Path) -> std::io::Result<()> {
    let parent = parent_of(target);
    std::fs::create_dir_all(parent)?;
    std::fs::rename(temp, target)?;
    sync_dir(parent)
}

/// The directory a path's entry lives in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// A file being written in place of `target`; visible only once committed.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    temp: PathBuf,
    target: PathBuf,
}

impl AtomicFile {
    /// Starts a replacement of `target` (mode 0644 before the umask).
    pub fn create(target: &Path) -> std::io::Result<AtomicFile> {
        AtomicFile::with_mode(target, DEFAULT_MODE)
    }

    /// Starts a replacement of `target` whose file gets `mode` (0600 for secrets).
    pub fn with_mode(target: &Path, mode: u32) -> std::io::Result<AtomicFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = target.file_name().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{}: not a file name", target.display()),
            )
        })?;
        let dir = parent_of(target);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let unique = format!(
            "{}-{}-{nanos:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tmp-{unique}"));
        let temp = dir.join(temp_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        Ok(AtomicFile {
            file: Some(file),
            temp,
            target: target.to_path_buf(),
        })
    }

    /// The path being replaced.
    pub fn target(&self) -> &Path {
        &self.target
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("atomic file already committed"))
    }

    /// Makes the written bytes the target's: fsync, rename, fsync the directory.
    pub fn commit(mut self) -> std::io::Result<()> {
        let file = self.file()?;
        file.flush()?;
        file.sync_all()?;
        self.file = None;
        std::fs::rename(&self.temp, &self.target)?;
        // Renamed: nothing left for Drop to remove.
        self.temp = PathBuf::new();
        sync_dir(parent_of(&self.target))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file()?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file()?.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "roci-atomic-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn replaces_the_whole_file() {
        let dir = scratch("replace");
        let target = dir.join("state.json");
        write_atomic(&target, b"old").unwrap();
        write_atomic(&target, b"new and longer").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new and longer");
        assert_eq!(names(&dir), ["state.json"], "no temp file is left");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_uncommitted_write_is_never_visible() {
        let dir = scratch("crash");
        let target = dir.join("index.json");
        write_atomic(&target, b"committed").unwrap();
        let mut partial = AtomicFile::create(&target).unwrap();
        partial.write_all(b"half of a new ver").unwrap();
        // Mid-write (as at a crash): the target still holds the old whole file.
        assert_eq!(std::fs::read(&target).unwrap(), b"committed");
        // The leftover is a hidden temp beside it, never the target's name.
        let during = names(&dir);
        assert_eq!(during.len(), 2);
        assert!(during
            .iter()
            .any(|n| n.starts_with(".index.json.tmp-") && n != "index.json"));
        // Abandoned (dropped without commit): removed.
        drop(partial);
        assert_eq!(names(&dir), ["index.json"]);
        assert_eq!(std::fs::read(&target).unwrap(), b"committed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn streams_with_a_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        let target = dir.join("config.json");
        let mut file = AtomicFile::with_mode(&target, 0o600).unwrap();
        for chunk in [b"a".as_slice(), b"b", b"c"] {
            file.write_all(chunk).unwrap();
        }
        assert!(!target.exists());
        file.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_writers_never_tear() {
        let dir = scratch("race");
        let target = dir.join("shared");
        let writers: Vec<_> = (0..4u8)
            .map(|i| {
                let target = target.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        write_atomic(&target, &vec![b'a' + i; 4096]).unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..200 {
            if let Ok(bytes) = std::fs::read(&target) {
                assert_eq!(bytes.len(), 4096);
                assert!(bytes.iter().all(|b| *b == bytes[0]), "a torn file");
            }
        }
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(names(&dir), ["shared"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
