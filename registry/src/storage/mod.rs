//! The storage backend: a small key/value interface under the registry
//! logic, which knows nothing of the backend it runs on.
//!
//! Keys are `/`-separated relative paths chosen by [`crate::store::layout`].
//! Every write is atomic: an object is either absent or whole. Bodies are
//! streams ([`ByteStream`]) and are never held whole in memory.
//!
//! - [`fs`]: the filesystem backend (temp file, fsync, rename).
//! - [`direct`]: writing streams around the page cache (`O_DIRECT`).
//! - [`suite`]: the behaviour every backend must show, run against each.

pub mod direct;
pub mod fs;
pub mod suite;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use std::ops::Range;
use std::pin::Pin;
use std::time::SystemTime;

/// A stream of bytes: a request body going in, or an object coming out.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + 'static>>;

/// What [`Backend::stat`] tells of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub size: u64,
    pub modified: SystemTime,
}

/// What [`Backend::write_prefix`] stored.
#[derive(Debug)]
pub struct Written {
    pub bytes: u64,
    /// The stream failed after `bytes` bytes (a client that went away).
    pub broke_off: Option<std::io::Error>,
}

/// A backend failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object {0} not found")]
    NotFound(String),
    #[error("invalid storage key {0:?}")]
    InvalidKey(String),
    /// The store has no room left (ENOSPC, EDQUOT): nothing was kept.
    #[error("storage is full writing {0}")]
    Full(String),
    /// The incoming stream failed (a client that went away): not the store's fault.
    #[error("reading the request body failed: {0}")]
    Source(std::io::Error),
    #[error("storage I/O on {key}: {source}")]
    Io { key: String, source: std::io::Error },
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The operations the registry needs from a store of objects.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Size and modification time, or `None` when absent.
    async fn stat(&self, key: &str) -> Result<Option<Meta>>;

    /// A whole small object (links, tags, manifests).
    async fn read_all(&self, key: &str) -> Result<Bytes>;

    /// An object, or the byte range of it, as a stream.
    async fn read(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream>;

    /// Writes an object from a stream, replacing any previous one atomically.
    /// Returns the number of bytes written. When the stream or the write
    /// fails, nothing is left behind (not even a partial object).
    async fn write(&self, key: &str, body: ByteStream) -> Result<u64>;

    /// Writes an object from a stream like [`Backend::write`]; when the
    /// stream breaks off and `keep` is set, the bytes that arrived before it
    /// did are kept (published, whole and durable) and the break is
    /// reported in [`Written::broke_off`]. Without `keep`, a broken stream
    /// leaves nothing, as with `write`. An upload's chunk uses this so that
    /// a client that lost its connection resumes from what arrived, as
    /// with Distribution.
    async fn write_prefix(&self, key: &str, body: ByteStream, keep: bool) -> Result<Written>;

    /// Writes a small object held in memory, atomically.
    async fn write_all(&self, key: &str, bytes: Bytes) -> Result<()>;

    /// Writes a small object only if none exists (a conditional put).
    /// Returns `false`, writing nothing, when the key was already present.
    /// Of two writers racing on one key, in one process or several, exactly
    /// one gets `true`: uploads and tags are serialised by this alone.
    async fn write_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool>;

    /// Moves an object to another key atomically, replacing what was there;
    /// the object is durable at its new key when this returns.
    async fn rename(&self, from: &str, to: &str) -> Result<()>;

    /// Deletes an object; `false` when it was absent.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Deletes every object under `prefix/`.
    async fn delete_prefix(&self, prefix: &str) -> Result<()>;

    /// The names directly under `prefix/` (objects and deeper prefixes),
    /// sorted bytewise, strictly after `after`, at most `limit` of them.
    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>>;
}

/// The backend the configuration names (today: the filesystem).
pub fn open(config: &rconfig::Config) -> Result<std::sync::Arc<dyn Backend>> {
    Ok(std::sync::Arc::new(fs::FsBackend::open(
        config.storage.root_directory(),
    )?))
}

/// Refuses keys that could leave the store's root.
pub fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.contains('\0')
        || key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        Err(StorageError::InvalidKey(key.to_string()))
    } else {
        Ok(())
    }
}
