//! The registry logic: what blobs, uploads, manifests, tags, referrers and
//! the catalog mean, written against [`Backend`] and nothing below it.
//!
//! - [`layout`]: the key of each object.
//! - [`blobs`]: reading, linking, mounting and deleting blobs.
//! - [`uploads`]: resumable uploads whose state lives in storage.
//! - [`upload_log`]: an upload's history, advanced by conditional puts.
//! - [`manifests`]: validation, storage, tags and deletion of manifests.
//! - [`references`]: what a pushed manifest must find in the repository.
//! - [`tagging`]: publishing links, referrers and tags safely against deletes.
//! - [`listing`]: tags, catalog and referrers listings.
//! - [`catalog`]: moving a catalog of the old key layout to the current one.
//! - [`fsck`]: the invariant checker behind `rregistry fsck`.
//! - [`hashing`]: a stream adapter that hashes bytes as they pass.

pub mod blobs;
pub mod catalog;
pub mod fsck;
pub mod hashing;
pub mod layout;
pub mod listing;
pub mod manifests;
pub mod references;
pub mod tagging;
pub mod upload_log;
pub mod uploads;

use crate::storage::Backend;
use rconfig::IndexChildren;
use std::sync::Arc;

/// Switches that change what the registry allows.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Blob and manifest deletion (`storage.delete.enabled`).
    pub delete_enabled: bool,
    /// Which children of a pushed index must exist
    /// (`validation.manifests.indexes`).
    pub index_children: IndexChildren,
}

impl Options {
    /// The options a (validated) configuration gives.
    pub fn from_config(config: &rconfig::Config) -> Options {
        let index_children = config
            .validation
            .manifests
            .indexes
            .children()
            // The loader refused a bad value already; the strictest rule otherwise.
            .unwrap_or_default();
        Options {
            delete_enabled: config.storage.delete.enabled,
            index_children,
        }
    }
}

/// The registry logic over one backend. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    backend: Arc<dyn Backend>,
    options: Arc<Options>,
}

impl Registry {
    pub fn new(backend: Arc<dyn Backend>, options: Options) -> Registry {
        Registry {
            backend,
            options: Arc::new(options),
        }
    }

    /// Opens the registry on `backend`, first moving catalog entries of the
    /// old key layout ([`catalog`]) so that no repository disappears.
    pub async fn open(
        backend: Arc<dyn Backend>,
        options: Options,
    ) -> crate::storage::Result<Registry> {
        let registry = Registry::new(backend, options);
        let moved = registry.migrate_catalog().await?;
        if moved > 0 {
            tracing::info!(moved, "catalog entries moved to the current key layout");
        }
        Ok(registry)
    }
}
