//! Moving a catalog of the first key layout (`catalog/<hex of name>`) to
//! the current one ([`layout::catalog_key`]), once, when the registry opens.
//!
//! Each entry is written at its new key before the old one is removed, so
//! a crash part way loses nothing and the next start finishes the move.
//! Both steps are idempotent, so two processes opening one store at the
//! same time may both run it.

use super::{layout, Registry};
use crate::storage::Result;
use bytes::Bytes;

/// Entries moved per listing of the old catalog.
const BATCH: usize = 1000;

impl Registry {
    /// Moves every entry of the old catalog layout; returns how many.
    pub async fn migrate_catalog(&self) -> Result<usize> {
        let mut moved = 0;
        let mut after: Option<String> = None;
        loop {
            let keys = self
                .backend
                .list(layout::LEGACY_CATALOG, after.as_deref(), BATCH)
                .await?;
            let Some(last) = keys.last().cloned() else {
                return Ok(moved);
            };
            for key in keys {
                let Some(name) = layout::legacy_catalog_name(&key) else {
                    tracing::warn!(key, "not a catalog entry; left in place");
                    continue;
                };
                self.backend
                    .write_if_absent(&layout::catalog_entry(&name), Bytes::new())
                    .await?;
                self.backend
                    .delete(&format!("{}/{key}", layout::LEGACY_CATALOG))
                    .await?;
                moved += 1;
            }
            after = Some(last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::RepoName;
    use crate::storage::fs::FsBackend;
    use crate::storage::Backend;
    use crate::store::Options;
    use std::sync::Arc;

    #[tokio::test]
    async fn an_old_catalog_is_moved_and_listed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(FsBackend::open(dir.path()).unwrap());
        let names = ["zeta", "alpha/beta", "alpha", "alpha-x"];
        for name in names {
            backend
                .write_all(&format!("catalog/{}", hex::encode(name)), Bytes::new())
                .await
                .unwrap();
        }
        backend
            .write_all("catalog/not-hex", Bytes::new())
            .await
            .unwrap();
        let registry = Registry::open(backend.clone(), Options::default())
            .await
            .unwrap();
        let (listed, more) = registry.catalog(None, None).await.unwrap();
        assert_eq!(listed, ["alpha", "alpha-x", "alpha/beta", "zeta"]);
        assert!(!more);
        for name in names {
            let name = RepoName::parse(name).unwrap();
            assert!(registry.repository_exists(&name).await.unwrap());
        }
        // Moved, not copied; what is not an entry stays; a second open is a no-op.
        assert_eq!(
            backend.list("catalog", None, 10).await.unwrap(),
            ["not-hex"]
        );
        assert_eq!(registry.migrate_catalog().await.unwrap(), 0);
        // Paging with `last` follows name order.
        let (page, more) = registry.catalog(Some("alpha"), Some(2)).await.unwrap();
        assert_eq!(page, ["alpha-x", "alpha/beta"]);
        assert!(more);
    }
}
