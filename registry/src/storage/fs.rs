//! The filesystem backend: one file per key under a root directory.
//!
//! Writes go to a temp file under `<root>/_tmp/<process>/`, are fsynced,
//! then renamed into place (and the directory fsynced), so a `kill -9` or a
//! crash leaves either the old object or the new one, never a torn file.
//! Conditional writes use `link(2)`, which fails when the target exists, in
//! this process or any other. Several processes may serve one root: each
//! holds a lock on its own temp directory, and a process starting clears
//! only the temp directories whose owner is gone. Streams are
//! copied by a blocking thread fed through a bounded channel, so network
//! reads, hashing and disk writes overlap; the thread writes around the
//! page cache where the filesystem allows ([`super::direct`]). A stream
//! being read asks the kernel for the next 32 MiB ahead of the reader, so
//! a blob that is not in the page cache (one written that way, or evicted)
//! comes off the disk with a deep queue rather than the default
//! readahead's.
//!
//! `stat` and `read_all` (links, tags, manifests: small objects, nearly
//! always in the page cache) run on the calling thread. A hand-off to the
//! blocking pool costs two thread wake-ups, far more than the read itself:
//! it was most of the time of a manifest `GET`. An object larger than
//! [`INLINE_READ_LIMIT`] is still read on the blocking pool.

use super::direct::{read_ahead, BlockWriter};
use super::{check_key, Backend, ByteStream, Meta, Result, StorageError, Written};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use roci::atomic::{rename_durable as publish, sync_dir as fsync_dir};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

const TMP_DIR: &str = "_tmp";
/// Reads of a stream: 256 KiB each, at most two waiting for the network,
/// so that a pull holds well under 1 MiB whether the disk or the network
/// is the slower (1 MiB reads, four waiting, held 13.1 MiB at peak for a
/// cached 1 GiB pull and 11.2 MiB for a 6 GiB one read from the disk).
const READ_CHUNK: u64 = 256 * 1024;
const READ_DEPTH: usize = 2;
/// How far ahead of a stream's reader the kernel is asked to read, and in
/// what steps (the kernel caps one request at its readahead window, 8 MiB
/// on this project's machines; a larger step would be cut short).
const READ_AHEAD: u64 = 32 * 1024 * 1024;
const READ_AHEAD_STEP: u64 = 4 * 1024 * 1024;
/// Chunks in flight between the network and the writing thread: enough to
/// keep both busy, few enough that the server's memory does not depend on
/// how far the disk falls behind (16 let peak RSS grow from 12.4 MiB at
/// 1 GiB to 15.8 MiB at 6 GiB; 4 keeps both at 11.4-11.7 MiB, as fast).
const CHANNEL_DEPTH: usize = 4;
/// Objects up to this size are read on the calling thread.
const INLINE_READ_LIMIT: u64 = 1024 * 1024;

/// Objects stored as files under `root`.
#[derive(Debug, Clone)]
pub struct FsBackend {
    root: PathBuf,
    /// This process's temp directory, `<root>/_tmp/<uuid>`.
    tmp: PathBuf,
    /// Held for as long as the backend lives: tells other processes that
    /// `tmp` is in use.
    _lock: Arc<std::fs::File>,
}

impl FsBackend {
    /// Opens (creating) the store at `root`, takes a temp directory of its
    /// own and clears those that processes which are gone left behind.
    pub fn open(root: impl Into<PathBuf>) -> Result<FsBackend> {
        let root = root.into();
        let tmp_root = root.join(TMP_DIR);
        let io = |source| StorageError::Io {
            key: tmp_root.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&tmp_root).map_err(io)?;
        let owner = uuid::Uuid::new_v4().to_string();
        let lock =
            std::fs::File::create(tmp_root.join(format!("{owner}{LOCK_SUFFIX}"))).map_err(io)?;
        lock.try_lock()
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        clear_abandoned_temps(&tmp_root).map_err(io)?;
        let tmp = tmp_root.join(&owner);
        std::fs::create_dir_all(&tmp).map_err(io)?;
        Ok(FsBackend {
            root,
            tmp,
            _lock: Arc::new(lock),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn temp_path(&self) -> PathBuf {
        self.tmp.join(uuid::Uuid::new_v4().to_string())
    }
}

const LOCK_SUFFIX: &str = ".lock";

/// A temp file removed when the guard is dropped, unless disarmed (set to
/// `None`) once the file was published.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Removes what other processes left in `_tmp`: the temp directory of each
/// lock file nobody holds any more, and anything with no lock file at all
/// (temp files of versions that kept them directly in `_tmp`).
fn clear_abandoned_temps(tmp_root: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(tmp_root)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(owner) = name.strip_suffix(LOCK_SUFFIX) {
            let lock = match std::fs::File::open(&path) {
                Ok(lock) => lock,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if lock.try_lock().is_ok() {
                remove_any(&tmp_root.join(owner))?;
                remove_any(&path)?;
            }
        } else if !tmp_root.join(format!("{name}{LOCK_SUFFIX}")).exists() {
            remove_any(&path)?;
        }
    }
    Ok(())
}

/// Removes a file or a directory tree; absent is fine.
fn remove_any(path: &Path) -> std::io::Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn io_err(key: &str) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            StorageError::NotFound(key.to_string())
        } else if matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) {
            StorageError::Full(key.to_string())
        } else {
            StorageError::Io {
                key: key.to_string(),
                source,
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    key: &str,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(io_err(key)),
        Err(join) => Err(StorageError::Io {
            key: key.to_string(),
            source: std::io::Error::other(join.to_string()),
        }),
    }
}

/// What [`copy_into`] copied: the bytes written (and synced), whether any
/// went around the page cache, and why the source stopped early, if it did.
struct Copied {
    written: u64,
    broke_off: Option<std::io::Error>,
}

/// How much of a request body is read and dropped after the store failed,
/// so that the client reads the error rather than a reset connection.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

async fn drain(body: &mut ByteStream) {
    let mut drained = 0u64;
    while drained < DRAIN_LIMIT {
        match body.next().await {
            Some(Ok(chunk)) => drained = drained.saturating_add(chunk.len() as u64),
            _ => return,
        }
    }
}

/// Copies `body` into the new `file` on a blocking thread and syncs it.
/// Every byte the source gave before it failed is written.
async fn copy_into(key: &str, file: std::fs::File, mut body: ByteStream) -> Result<Copied> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, bool)> {
        // No early writeback (`sync_file_range` every few MiB): on this
        // project's machines it made a 1 GiB push take 1.3-2.3 s instead
        // of 1.0-1.2 s; the disk's work competed with the hashing.
        let mut writer = BlockWriter::new(file, 0);
        let mut written = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            writer.write(&chunk)?;
            written += chunk.len() as u64;
        }
        let (file, direct) = writer.finish()?;
        file.sync_data()?;
        Ok((written, direct))
    });
    let mut source_error = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                if tx.send(chunk).await.is_err() {
                    // The writer failed (a full disk); its error is reported
                    // below. Read on (up to a limit) so that a client still
                    // sending gets the answer instead of a broken pipe.
                    drain(&mut body).await;
                    break;
                }
            }
            Err(e) => {
                source_error = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let (written, _direct) = match writer.await {
        Ok(result) => result.map_err(io_err(key))?,
        Err(join) => return Err(io_err(key)(std::io::Error::other(join.to_string()))),
    };
    Ok(Copied {
        written,
        broke_off: source_error,
    })
}

#[async_trait]
impl Backend for FsBackend {
    async fn stat(&self, key: &str) -> Result<Option<Meta>> {
        let path = self.path(key)?;
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Some(Meta {
                size: meta.len(),
                modified: meta.modified().map_err(io_err(key))?,
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(key)(e)),
        }
    }

    async fn read_all(&self, key: &str) -> Result<Bytes> {
        let path = self.path(key)?;
        let mut file = std::fs::File::open(&path).map_err(io_err(key))?;
        let len = file.metadata().map_err(io_err(key))?.len();
        if len > INLINE_READ_LIMIT {
            return blocking(key, move || std::fs::read(path))
                .await
                .map(Bytes::from);
        }
        let mut buffer = Vec::with_capacity(len as usize);
        file.read_to_end(&mut buffer).map_err(io_err(key))?;
        Ok(Bytes::from(buffer))
    }

    async fn read(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream> {
        let path = self.path(key)?;
        let start = range.as_ref().map_or(0, |r| r.start);
        let (mut file, len) = blocking(key, move || {
            let mut file = std::fs::File::open(path)?;
            let len = match range.clone() {
                Some(range) => {
                    file.seek(SeekFrom::Start(range.start))?;
                    range.end.saturating_sub(range.start)
                }
                None => file.metadata()?.len(),
            };
            Ok((file, len))
        })
        .await?;
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(READ_DEPTH);
        tokio::task::spawn_blocking(move || {
            let end = start + len;
            let mut advised = start;
            let mut left = len;
            while left > 0 {
                let at = end - left;
                if advised < end && advised < at + READ_AHEAD {
                    let step = READ_AHEAD_STEP.min(end - advised);
                    read_ahead(&file, advised, step);
                    advised += step;
                }
                // read_to_end fills spare capacity without zeroing it first.
                let want = READ_CHUNK.min(left);
                let mut buf = Vec::with_capacity(want as usize);
                let result = match (&mut file).take(want).read_to_end(&mut buf) {
                    Ok(0) => Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "object shorter than expected",
                    )),
                    Ok(n) => {
                        left -= n as u64;
                        Ok(Bytes::from(buf))
                    }
                    Err(e) => Err(e),
                };
                let failed = result.is_err();
                if tx.blocking_send(result).is_err() || failed {
                    return; // the reader went away, or the error was passed on
                }
            }
        });
        Ok(Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
        )))
    }

    async fn write(&self, key: &str, body: ByteStream) -> Result<u64> {
        match self.write_prefix(key, body, false).await? {
            Written {
                bytes,
                broke_off: None,
            } => Ok(bytes),
            Written {
                broke_off: Some(e), ..
            } => Err(StorageError::Source(e)),
        }
    }

    async fn write_prefix(&self, key: &str, body: ByteStream, keep: bool) -> Result<Written> {
        let target = self.path(key)?;
        let temp = self.temp_path();
        let file = {
            let temp = temp.clone();
            blocking(key, move || std::fs::File::create(temp)).await?
        };
        // Removes the temp file unless it was published, also when this
        // future is dropped part way (a client that hung up).
        let mut guard = TempGuard(Some(temp.clone()));
        let outcome = match copy_into(key, file, body).await {
            Ok(copied) if copied.broke_off.is_none() || keep => {
                let temp = temp.clone();
                blocking(key, move || publish(&temp, &target))
                    .await
                    .map(|_| Written {
                        bytes: copied.written,
                        broke_off: copied.broke_off,
                    })
            }
            Ok(copied) => Ok(Written {
                bytes: copied.written,
                broke_off: copied.broke_off,
            }),
            Err(e) => Err(e),
        };
        if matches!(&outcome, Ok(w) if w.broke_off.is_none() || keep) {
            guard.0 = None; // published
        }
        outcome
    }

    async fn write_all(&self, key: &str, bytes: Bytes) -> Result<()> {
        let target = self.path(key)?;
        let temp = self.temp_path();
        blocking(key, move || {
            let result = (|| {
                let mut file = std::fs::File::create(&temp)?;
                file.write_all(&bytes)?;
                file.sync_data()?;
                publish(&temp, &target)
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
            result
        })
        .await
    }

    async fn write_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool> {
        let target = self.path(key)?;
        let temp = self.temp_path();
        blocking(key, move || {
            let result = (|| {
                let mut file = std::fs::File::create(&temp)?;
                file.write_all(&bytes)?;
                file.sync_data()?;
                let parent = target.parent().unwrap_or(Path::new("."));
                std::fs::create_dir_all(parent)?;
                match std::fs::hard_link(&temp, &target) {
                    Ok(()) => fsync_dir(parent).map(|_| true),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(e),
                }
            })();
            let _ = std::fs::remove_file(&temp);
            result
        })
        .await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let source = self.path(from)?;
        let target = self.path(to)?;
        blocking(from, move || {
            std::fs::File::open(&source)?.sync_data()?;
            publish(&source, &target)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(key)(e)),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let path = self.path(prefix)?;
        // Another request may create an entry inside while the tree is
        // being removed (a late chunk of a completed upload); try again.
        let mut attempts = 0;
        loop {
            match tokio::fs::remove_dir_all(&path).await {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempts < 5 => {
                    attempts += 1;
                }
                Err(e) => return Err(io_err(prefix)(e)),
            }
        }
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let path = self.path(prefix)?;
        let after = after.map(str::to_string);
        blocking(prefix, move || {
            let entries = match std::fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let mut names = Vec::new();
            for entry in entries {
                let Ok(name) = entry?.file_name().into_string() else {
                    continue; // not a key this store wrote
                };
                if after.as_deref().is_none_or(|after| name.as_str() > after) {
                    names.push(name);
                }
            }
            // The `limit` smallest, without sorting the whole directory.
            if names.len() > limit {
                names.select_nth_unstable(limit);
                names.truncate(limit);
            }
            names.sort_unstable();
            Ok(names)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn filesystem_backend_passes_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FsBackend::open(dir.path()).unwrap();
        super::super::suite::run(&backend).await;
    }

    #[tokio::test]
    async fn crash_leftovers_are_cleared_and_never_visible() {
        let dir = tempfile::tempdir().unwrap();
        let tmp_root = dir.path().join(TMP_DIR);
        let first = FsBackend::open(dir.path()).unwrap();
        // A temp file as an older version's killed writer leaves it, and
        // one in the temp directory of a process that is gone.
        std::fs::write(tmp_root.join("partial"), b"half").unwrap();
        let gone = FsBackend::open(dir.path()).unwrap();
        let gone_temp = gone.temp_path();
        std::fs::write(&gone_temp, b"half").unwrap();
        drop(gone);
        // A live process's temp file, being written.
        let live_temp = first.temp_path();
        std::fs::write(&live_temp, b"in flight").unwrap();

        let reopened = FsBackend::open(dir.path()).unwrap();
        assert!(!tmp_root.join("partial").exists());
        assert!(!gone_temp.exists());
        assert!(!gone_temp.parent().unwrap().exists());
        assert!(
            live_temp.exists(),
            "another live process's temp file was removed"
        );
        assert!(reopened.stat("partial").await.unwrap().is_none());
    }
}
