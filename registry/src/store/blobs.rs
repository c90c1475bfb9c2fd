//! Blobs: content-addressed bytes stored once and shared by every
//! repository, readable through a repository only where it holds a link.

use super::{layout, Registry};
use crate::digest::Digest;
use crate::error::{Code, RegistryError, Result};
use crate::names::RepoName;
use crate::storage::{ByteStream, StorageError};
use bytes::Bytes;
use std::ops::Range;

fn blob_unknown(digest: &Digest) -> RegistryError {
    RegistryError::new(
        Code::BlobUnknown,
        format!("blob {digest} is unknown to this repository"),
    )
}

impl Registry {
    /// The size of a blob the repository may read, or `BLOB_UNKNOWN`.
    pub async fn blob_size(&self, name: &RepoName, digest: &Digest) -> Result<u64> {
        if self
            .backend
            .stat(&layout::layer_link(name, digest))
            .await?
            .is_none()
        {
            return Err(blob_unknown(digest));
        }
        match self.backend.stat(&layout::blob(digest)).await? {
            Some(meta) => Ok(meta.size),
            None => Err(blob_unknown(digest)),
        }
    }

    /// Streams a blob (or a byte range of it); call [`Registry::blob_size`] first.
    pub async fn read_blob(
        &self,
        digest: &Digest,
        range: Option<Range<u64>>,
    ) -> Result<ByteStream> {
        match self.backend.read(&layout::blob(digest), range).await {
            Ok(stream) => Ok(stream),
            Err(StorageError::NotFound(_)) => Err(blob_unknown(digest)),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes a stored blob readable through `name`.
    pub(crate) async fn link_blob(&self, name: &RepoName, digest: &Digest) -> Result<()> {
        let link = layout::layer_link(name, digest);
        if self.backend.stat(&link).await?.is_none() {
            self.backend.write_all(&link, Bytes::new()).await?;
        }
        self.register_repository(name).await
    }

    /// Moves verified bytes at `staged` into the blob store (or drops them
    /// when the blob is already there) and links the blob into `name`.
    pub(crate) async fn commit_blob(
        &self,
        name: &RepoName,
        digest: &Digest,
        staged: &str,
    ) -> Result<()> {
        let key = layout::blob(digest);
        if self.backend.stat(&key).await?.is_some() {
            self.backend.delete(staged).await?;
        } else {
            self.backend.rename(staged, &key).await?;
        }
        self.link_blob(name, digest).await
    }

    /// Cross-repository mount: links `digest` into `name` when `from` holds
    /// it. `false` when not mountable. There is no form without `from`:
    /// linking any blob the registry holds would let a caller read what it
    /// may not pull, and tell anyone which digests exist.
    pub async fn mount_blob(
        &self,
        name: &RepoName,
        digest: &Digest,
        from: &RepoName,
    ) -> Result<bool> {
        let readable = self
            .backend
            .stat(&layout::layer_link(from, digest))
            .await?
            .is_some();
        if !readable || self.backend.stat(&layout::blob(digest)).await?.is_none() {
            return Ok(false);
        }
        self.link_blob(name, digest).await?;
        Ok(true)
    }

    /// Removes a blob from a repository. The bytes stay until garbage
    /// collection, since other repositories may share them.
    pub async fn delete_blob(&self, name: &RepoName, digest: &Digest) -> Result<()> {
        self.require_delete()?;
        if self
            .backend
            .delete(&layout::layer_link(name, digest))
            .await?
        {
            Ok(())
        } else {
            Err(blob_unknown(digest))
        }
    }

    pub(crate) fn require_delete(&self) -> Result<()> {
        if self.options.delete_enabled {
            Ok(())
        } else {
            Err(RegistryError::new(
                Code::Unsupported,
                "deletion is disabled on this registry (storage.delete.enabled)",
            ))
        }
    }

    /// Adds `name` to the catalog if it is not there yet.
    pub(crate) async fn register_repository(&self, name: &RepoName) -> Result<()> {
        let key = layout::catalog_entry(name);
        if self.backend.stat(&key).await?.is_none() {
            self.backend.write_if_absent(&key, Bytes::new()).await?;
        }
        Ok(())
    }

    /// Whether `name` exists (has ever held a blob or a manifest).
    pub async fn repository_exists(&self, name: &RepoName) -> Result<bool> {
        Ok(self
            .backend
            .stat(&layout::catalog_entry(name))
            .await?
            .is_some())
    }
}
