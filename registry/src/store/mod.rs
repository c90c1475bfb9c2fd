//! The registry logic: what blobs, uploads, manifests, tags, referrers and
//! the catalog mean, written against [`Backend`] and nothing below it.
//!
//! - [`layout`]: the key of each object.
//! - [`blobs`]: reading, linking, mounting and deleting blobs.
//! - [`uploads`]: resumable uploads whose state lives in storage.
//! - [`upload_log`]: an upload's history, advanced by conditional puts.
//! - [`manifests`]: validation, storage, tags and deletion of manifests.
//! - [`listing`]: tags, catalog and referrers listings.
//! - [`fsck`]: the invariant checker behind `rregistry fsck`.
//! - [`hashing`]: a stream adapter that hashes bytes as they pass.

pub mod blobs;
pub mod fsck;
pub mod hashing;
pub mod layout;
pub mod listing;
pub mod manifests;
pub mod upload_log;
pub mod uploads;

use crate::storage::Backend;
use std::sync::Arc;

/// Switches that change what the registry allows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Blob and manifest deletion (`storage.delete.enabled`).
    pub delete_enabled: bool,
}

/// The registry logic over one backend. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    backend: Arc<dyn Backend>,
    options: Options,
}

impl Registry {
    pub fn new(backend: Arc<dyn Backend>, options: Options) -> Registry {
        Registry { backend, options }
    }
}
