//! Resumable uploads. Their state is in storage: `uploads/<id>/info` names
//! the repository, `uploads/<id>/data` holds the bytes received in order, and
//! its size is the upload's offset. A restarted server, or another replica,
//! continues from there. The running hash of each upload is kept in memory
//! as a shortcut; when it is missing (a restart) or of another algorithm,
//! completion re-reads the data to verify it. Nothing becomes a blob before
//! its digest is verified.

use super::hashing::tally;
use super::{layout, Registry};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Code, RegistryError, Result};
use crate::names::RepoName;
use crate::storage::{ByteStream, StorageError};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Running sha256 states of uploads, keyed by upload id, valid at an offset.
#[derive(Default)]
pub struct HasherCache(Mutex<HashMap<String, (u64, Hasher)>>);

impl HasherCache {
    fn take(&self, id: &str, offset: u64) -> Option<Hasher> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match map.remove(id) {
            Some((at, hasher)) if at == offset => Some(hasher),
            _ => None,
        }
    }

    fn put(&self, id: &str, offset: u64, hasher: Hasher) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(id.to_string(), (offset, hasher));
    }

    fn forget(&self, id: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }
}

#[derive(Serialize, Deserialize)]
struct UploadInfo {
    repository: String,
    started: u64,
}

/// A chunk's declared position, from its `Content-Range` and `Content-Length`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkBounds {
    /// First byte offset (inclusive) and last (inclusive), from `Content-Range`.
    pub range: Option<(u64, u64)>,
    pub length: Option<u64>,
}

fn upload_unknown(id: &str) -> RegistryError {
    RegistryError::new(Code::BlobUploadUnknown, format!("upload {id} is unknown"))
}

/// Upload ids are UUIDs; anything else cannot name an upload.
fn valid_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}

impl Registry {
    /// Starts an upload into `name` and returns its id.
    pub async fn start_upload(&self, name: &RepoName) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        let info = UploadInfo {
            repository: name.to_string(),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
        };
        let bytes = serde_json::to_vec(&info)
            .map_err(|e| RegistryError::new(Code::Unknown, e.to_string()))?;
        self.backend
            .write_all(&layout::upload_info(&id), Bytes::from(bytes))
            .await?;
        Ok(id)
    }

    /// The number of bytes an upload holds; `BLOB_UPLOAD_UNKNOWN` unless the
    /// upload exists and belongs to `name`.
    pub async fn upload_size(&self, name: &RepoName, id: &str) -> Result<u64> {
        if !valid_id(id) {
            return Err(upload_unknown(id));
        }
        let info = match self.backend.read_all(&layout::upload_info(id)).await {
            Ok(info) => info,
            Err(StorageError::NotFound(_)) => return Err(upload_unknown(id)),
            Err(e) => return Err(e.into()),
        };
        match serde_json::from_slice::<UploadInfo>(&info) {
            Ok(info) if info.repository == name.as_str() => {}
            _ => return Err(upload_unknown(id)),
        }
        Ok(self
            .backend
            .stat(&layout::upload_data(id))
            .await?
            .map(|meta| meta.size)
            .unwrap_or(0))
    }

    /// Appends a chunk (PATCH). With a `Content-Range`, the chunk must start
    /// where the upload ends (416 otherwise) and be as long as it says.
    /// Returns the upload's new size.
    pub async fn append_chunk(
        &self,
        name: &RepoName,
        id: &str,
        bounds: ChunkBounds,
        body: ByteStream,
    ) -> Result<u64> {
        let size = self.upload_size(name, id).await?;
        if let Some((start, end)) = bounds.range {
            if start != size || end < start {
                return Err(RegistryError::new(
                    Code::RangeInvalid,
                    format!(
                        "chunk range {start}-{end} does not continue the upload at offset {size}"
                    ),
                )
                .with_header("range", range_header(size))
                .with_header("location", upload_location(name, id))
                .with_header("docker-upload-uuid", id.to_string()));
            }
        }
        let expected = match (bounds.range, bounds.length) {
            (Some((start, end)), _) => Some(end - start + 1),
            (None, length) => length,
        };
        let new_size = self
            .append_verified_length(id, size, expected, body)
            .await?;
        Ok(new_size)
    }

    /// Appends `body` at `size`, keeping the running hash, and undoes the
    /// append when fewer or more bytes came than `expected`.
    async fn append_verified_length(
        &self,
        id: &str,
        size: u64,
        expected: Option<u64>,
        body: ByteStream,
    ) -> Result<u64> {
        let hasher = if size == 0 {
            Some(Hasher::new(Algorithm::Sha256))
        } else {
            self.uploads.take(id, size)
        };
        let (body, seen) = tally(body, hasher);
        let data = layout::upload_data(id);
        let result = self.backend.append(&data, size, body).await;
        let (hasher, count) = seen.take();
        // On failure, what arrived stays: the client may ask for the offset and resume.
        let new_size = result?;
        if let Some(expected) = expected {
            if count != expected {
                // Undo the chunk; its bytes are in the dropped hasher, so the
                // next completion re-reads the data instead.
                self.backend
                    .append(&data, size, Box::pin(futures_util::stream::empty()))
                    .await?;
                return Err(RegistryError::new(
                    Code::SizeInvalid,
                    format!("chunk declared {expected} bytes but {count} arrived"),
                ));
            }
        }
        if let Some(hasher) = hasher {
            self.uploads.put(id, new_size, hasher);
        }
        Ok(new_size)
    }

    /// Completes an upload (PUT `?digest=`), with an optional last chunk:
    /// verifies the digest, then makes the blob visible in `name`.
    pub async fn complete_upload(
        &self,
        name: &RepoName,
        id: &str,
        digest: &Digest,
        last_chunk: Option<(ChunkBounds, ByteStream)>,
    ) -> Result<()> {
        let mut size = self.upload_size(name, id).await?;
        if let Some((bounds, body)) = last_chunk {
            size = self.append_chunk(name, id, bounds, body).await?;
        }
        let data = layout::upload_data(id);
        if size == 0 {
            // Nothing was ever written: the data object may not exist yet.
            self.backend.write_all(&data, Bytes::new()).await?;
        }
        let computed = match self.uploads.take(id, size) {
            Some(hasher) if hasher.algorithm() == digest.algorithm() => hasher.finish(),
            _ => self.hash_stored(&data, digest.algorithm()).await?,
        };
        if &computed != digest {
            self.cancel_upload_unchecked(id).await?;
            return Err(digest_mismatch(digest, &computed));
        }
        self.commit_blob(name, digest, &data).await?;
        self.cancel_upload_unchecked(id).await
    }

    /// Monolithic upload (POST `?digest=` with the body): stored under a
    /// fresh upload, verified, then committed.
    pub async fn put_blob(&self, name: &RepoName, digest: &Digest, body: ByteStream) -> Result<()> {
        let id = uuid::Uuid::new_v4().to_string();
        let data = layout::upload_data(&id);
        let (body, seen) = tally(body, Some(Hasher::new(digest.algorithm())));
        let written = self.backend.write(&data, body).await;
        let outcome = async {
            written?;
            let (hasher, _) = seen.take();
            let computed = hasher.map(Hasher::finish);
            match computed {
                Some(computed) if &computed == digest => {
                    self.commit_blob(name, digest, &data).await
                }
                Some(computed) => Err(digest_mismatch(digest, &computed)),
                None => Err(RegistryError::new(Code::Unknown, "hash state lost")),
            }
        }
        .await;
        self.backend.delete_prefix(&layout::upload(&id)).await?;
        outcome
    }

    /// Cancels an upload (DELETE).
    pub async fn cancel_upload(&self, name: &RepoName, id: &str) -> Result<()> {
        self.upload_size(name, id).await?;
        self.cancel_upload_unchecked(id).await
    }

    async fn cancel_upload_unchecked(&self, id: &str) -> Result<()> {
        self.uploads.forget(id);
        self.backend.delete_prefix(&layout::upload(id)).await?;
        Ok(())
    }

    async fn hash_stored(&self, key: &str, algorithm: Algorithm) -> Result<Digest> {
        let mut hasher = Hasher::new(algorithm);
        let mut stream = self.backend.read(key, None).await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| StorageError::Io {
                key: key.to_string(),
                source,
            })?;
            hasher.update(&chunk);
        }
        Ok(hasher.finish())
    }

    /// Removes uploads untouched for longer than `age`. Returns the ids
    /// removed (or, with `dry_run`, that would be).
    pub async fn purge_uploads(&self, age: Duration, dry_run: bool) -> Result<Vec<String>> {
        let now = SystemTime::now();
        let mut purged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let ids = self
                .backend
                .list(layout::UPLOADS, after.as_deref(), 1000)
                .await?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            for id in ids {
                let mut last_touch = None;
                for key in [layout::upload_info(&id), layout::upload_data(&id)] {
                    if let Some(meta) = self.backend.stat(&key).await? {
                        last_touch = last_touch.max(Some(meta.modified));
                    }
                }
                // Neither file there: the upload is being created (its
                // directory exists before its info is renamed in) or was
                // just completed. Either way it is not idle.
                let Some(last_touch) = last_touch else {
                    continue;
                };
                let idle = now.duration_since(last_touch).unwrap_or_default();
                if idle > age {
                    if !dry_run {
                        self.cancel_upload_unchecked(&id).await?;
                    }
                    purged.push(id);
                }
            }
            after = Some(last);
        }
        Ok(purged)
    }
}

fn digest_mismatch(expected: &Digest, computed: &Digest) -> RegistryError {
    RegistryError::new(
        Code::DigestInvalid,
        format!("provided digest {expected} does not match the content's digest {computed}"),
    )
}

/// The `Range` header of an upload holding `size` bytes, as Distribution writes it.
pub fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// The `Location` of an upload.
pub fn upload_location(name: &RepoName, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}
