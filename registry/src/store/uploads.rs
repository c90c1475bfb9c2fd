//! Resumable uploads, whose whole state is in storage (see
//! [`super::upload_log`]): any process serving the same storage, a restarted
//! one or another replica, continues an upload where it stands, and two
//! requests racing on one upload cannot mix their bytes. A chunk the store
//! fails to write leaves the upload at its previous offset; one whose body
//! breaks off keeps what arrived. Nothing becomes a blob before its digest
//! is verified.

// Parses what clients send: every sum on a number from outside is checked.
#![deny(clippy::arithmetic_side_effects)]

use super::hashing::tally;
use super::upload_log::{Entry, Log, Part};
use super::{layout, Registry};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Code, RegistryError, Result};
use crate::names::RepoName;
use crate::storage::{ByteStream, StorageError};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A chunk's declared position, from its `Content-Range` and `Content-Length`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkBounds {
    /// First byte offset (inclusive) and last (inclusive), from `Content-Range`.
    pub range: Option<(u64, u64)>,
    pub length: Option<u64>,
}

/// Chunks one upload may take (S3's limit on the parts of a multipart
/// upload): every request on an upload lists its log, so an upload of
/// millions of one-byte chunks would cost the server more with each one.
pub const MAX_CHUNKS: u64 = 10_000;

fn upload_unknown(id: &str) -> RegistryError {
    RegistryError::new(Code::BlobUploadUnknown, format!("upload {id} is unknown"))
}

/// Upload ids are UUIDs; anything else cannot name an upload.
fn valid_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// 416 with the headers a client needs to resume at `offset`.
fn range_conflict(name: &RepoName, id: &str, offset: u64, message: String) -> RegistryError {
    RegistryError::new(Code::RangeInvalid, message)
        .with_header("range", range_header(offset))
        .with_header("location", upload_location(name, id))
        .with_header("docker-upload-uuid", id.to_string())
}

impl Registry {
    /// Starts an upload into `name` and returns its id.
    pub async fn start_upload(&self, name: &RepoName) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        let log = Log::new(self.backend.as_ref(), &id);
        if !log
            .append(0, &Entry::first(name.as_str(), now_secs()))
            .await?
        {
            return Err(RegistryError::new(Code::Unknown, "upload id collision"));
        }
        Ok(id)
    }

    /// The latest entry of an open upload of `name`; `BLOB_UPLOAD_UNKNOWN`
    /// unless the upload exists, belongs to `name` and is not completing.
    async fn open_upload(&self, name: &RepoName, id: &str) -> Result<(u64, Entry)> {
        if !valid_id(id) {
            return Err(upload_unknown(id));
        }
        match Log::new(self.backend.as_ref(), id).latest().await? {
            Some((seq, entry)) if entry.repository == name.as_str() && !entry.closed => {
                Ok((seq, entry))
            }
            _ => Err(upload_unknown(id)),
        }
    }

    /// The number of bytes an upload holds; `BLOB_UPLOAD_UNKNOWN` unless the
    /// upload exists and belongs to `name`.
    pub async fn upload_size(&self, name: &RepoName, id: &str) -> Result<u64> {
        Ok(self.open_upload(name, id).await?.1.offset)
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
        let (seq, entry) = self.open_upload(name, id).await?;
        if seq >= MAX_CHUNKS {
            return Err(RegistryError::new(
                Code::BlobUploadInvalid,
                format!("an upload takes at most {MAX_CHUNKS} chunks; send larger ones"),
            ));
        }
        let expected = match bounds.range {
            Some((start, end)) => {
                let length = end.checked_sub(start).and_then(|n| n.checked_add(1));
                match length {
                    Some(length) if start == entry.offset => Some(length),
                    _ => {
                        return Err(range_conflict(
                            name,
                            id,
                            entry.offset,
                            format!(
                            "chunk range {start}-{end} does not continue the upload at offset {}",
                            entry.offset
                        ),
                        ))
                    }
                }
            }
            None => bounds.length,
        };
        let log = Log::new(self.backend.as_ref(), id);
        let part = uuid::Uuid::new_v4().to_string();
        let part_key = layout::upload_part(id, &part);
        let (body, seen) = tally(body, Some(entry.hasher()?));
        // The part is written whole or not at all, except that a body that
        // breaks off (a client gone, a stalled upload) keeps the bytes that
        // arrived, as Distribution does, so the client resumes from there.
        // A chunk the store failed to write (a full disk) or whose length
        // is not what it declared leaves the upload at its previous offset.
        let written = self.backend.write_prefix(&part_key, body, true).await;
        let (hasher, count) = seen.take();
        let mut broke_off = None;
        let kept = async {
            let written = written?;
            if let Some(e) = written.broke_off {
                if written.bytes != count {
                    return Err(RegistryError::new(
                        Code::BlobUploadInvalid,
                        format!("the request body broke off: {e}"),
                    ));
                }
                broke_off = Some(e);
            } else if let Some(expected) = expected {
                if written.bytes != expected {
                    return Err(RegistryError::new(
                        Code::SizeInvalid,
                        format!(
                            "chunk declared {expected} bytes but {} arrived",
                            written.bytes
                        ),
                    ));
                }
            }
            let hasher = hasher.ok_or_else(|| RegistryError::new(Code::Unknown, "hash lost"))?;
            Ok((written.bytes, hasher))
        }
        .await;
        let (written, hasher) = match kept {
            Ok(kept) => kept,
            Err(e) => {
                self.drop_part(id, &part_key).await?;
                tracing::debug!(upload = id, arrived = count, error = %e, "chunk not kept");
                return Err(e);
            }
        };
        if written == 0 {
            self.drop_part(id, &part_key).await?;
            return match broke_off {
                Some(e) => Err(RegistryError::new(
                    Code::BlobUploadInvalid,
                    format!("the request body broke off: {e}"),
                )),
                None => Ok(entry.offset),
            };
        }
        let offset = entry.offset.checked_add(written).ok_or_else(|| {
            RegistryError::new(Code::SizeInvalid, "the upload would exceed 2^64 bytes")
        })?;
        let next = Entry {
            offset,
            part: Some(Part {
                name: part,
                size: written,
            }),
            sha256: hex::encode(hasher.save()),
            ..entry
        };
        if !log.append(next_seq(seq)?, &next).await? {
            // Another request on this upload got there first.
            self.drop_part(id, &part_key).await?;
            let now = self.open_upload(name, id).await?.1.offset;
            return Err(range_conflict(
                name,
                id,
                now,
                format!("the upload moved to offset {now} while this chunk arrived"),
            ));
        }
        if !log.exists().await? {
            // Completed or cancelled while this chunk arrived: what we wrote
            // has no upload left to belong to.
            self.backend.delete_prefix(&layout::upload(id)).await?;
            return Err(upload_unknown(id));
        }
        match broke_off {
            Some(e) => Err(RegistryError::new(
                Code::BlobUploadInvalid,
                format!("the request body broke off ({e}); the upload keeps the {offset} bytes that arrived"),
            )),
            None => Ok(offset),
        }
    }

    /// Removes a part no log entry names; when the upload itself was
    /// removed meanwhile (cancelled or completed), removes what is left of
    /// it, so no empty upload directory stays behind.
    async fn drop_part(&self, id: &str, part_key: &str) -> Result<()> {
        self.backend.delete(part_key).await?;
        if !Log::new(self.backend.as_ref(), id).exists().await? {
            self.backend.delete_prefix(&layout::upload(id)).await?;
        }
        Ok(())
    }

    /// Completes an upload (PUT `?digest=`), with an optional last chunk:
    /// closes it to further chunks, verifies the digest, then makes the
    /// blob visible in `name`. The upload is gone afterwards, either way.
    pub async fn complete_upload(
        &self,
        name: &RepoName,
        id: &str,
        digest: &Digest,
        last_chunk: Option<(ChunkBounds, ByteStream)>,
    ) -> Result<()> {
        if let Some((bounds, body)) = last_chunk {
            self.append_chunk(name, id, bounds, body).await?;
        }
        let (seq, entry) = self.open_upload(name, id).await?;
        let log = Log::new(self.backend.as_ref(), id);
        let closing = Entry {
            part: None,
            closed: true,
            ..entry.clone()
        };
        if !log.append(next_seq(seq)?, &closing).await? {
            return match self.open_upload(name, id).await {
                Ok((_, now)) => Err(range_conflict(
                    name,
                    id,
                    now.offset,
                    format!("the upload moved to offset {} while completing", now.offset),
                )),
                Err(e) => Err(e),
            };
        }
        // Closed: no other request can change this upload any more.
        let outcome = self.publish_upload(name, id, seq, &entry, digest).await;
        self.backend.delete_prefix(&layout::upload(id)).await?;
        outcome
    }

    /// Verifies a closed upload against `digest` and moves it into the blob store.
    async fn publish_upload(
        &self,
        name: &RepoName,
        id: &str,
        seq: u64,
        entry: &Entry,
        digest: &Digest,
    ) -> Result<()> {
        let log = Log::new(self.backend.as_ref(), id);
        let parts = log.parts(seq, entry.offset).await?;
        let keys: Vec<String> = parts
            .iter()
            .map(|part| layout::upload_part(id, &part.name))
            .collect();
        let computed = match digest.algorithm() {
            Algorithm::Sha256 => entry.hasher()?.finish(),
            other => self.hash_parts(&keys, other).await?,
        };
        if &computed != digest {
            return Err(digest_mismatch(digest, &computed));
        }
        let blob = layout::blob(digest);
        if self.backend.stat(&blob).await?.is_none() {
            match keys.as_slice() {
                [] => self.backend.write_all(&blob, Bytes::new()).await?,
                [only] => self.backend.rename(only, &blob).await?,
                _ => {
                    self.backend.write(&blob, self.concat(keys)).await?;
                }
            }
        }
        self.link_blob(name, digest).await
    }

    /// The parts' bytes, one after the other, as one stream.
    fn concat(&self, keys: Vec<String>) -> ByteStream {
        let backend = self.backend.clone();
        let stream = futures_util::stream::iter(keys)
            .then(move |key| {
                let backend = backend.clone();
                async move {
                    backend
                        .read(&key, None)
                        .await
                        .map_err(std::io::Error::other)
                }
            })
            .try_flatten();
        Box::pin(stream)
    }

    async fn hash_parts(&self, keys: &[String], algorithm: Algorithm) -> Result<Digest> {
        let mut hasher = Hasher::new(algorithm);
        let mut stream = self.concat(keys.to_vec());
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| StorageError::Io {
                key: layout::upload_parts(""),
                source,
            })?;
            hasher.update(&chunk);
        }
        Ok(hasher.finish())
    }

    /// Monolithic upload (POST `?digest=` with the body): stored under a
    /// fresh upload, verified, then committed.
    pub async fn put_blob(&self, name: &RepoName, digest: &Digest, body: ByteStream) -> Result<()> {
        let id = uuid::Uuid::new_v4().to_string();
        let staged = layout::upload_part(&id, "monolithic");
        let (body, seen) = tally(body, Some(Hasher::new(digest.algorithm())));
        let written = self.backend.write(&staged, body).await;
        let outcome = async {
            written?;
            let (hasher, _) = seen.take();
            let computed = hasher.map(Hasher::finish);
            match computed {
                Some(computed) if &computed == digest => {
                    self.commit_blob(name, digest, &staged).await
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
        self.open_upload(name, id).await?;
        self.backend.delete_prefix(&layout::upload(id)).await?;
        Ok(())
    }

    /// When upload `id` last changed: its latest log entry, or for what is
    /// left of one without a log (a monolithic upload, or a chunk that
    /// arrived after its upload was removed) its newest part. `None` when
    /// neither exists yet (being created) or any more (just removed).
    pub(crate) async fn upload_last_touch(&self, id: &str) -> Result<Option<SystemTime>> {
        let mut keys = Vec::new();
        let log = self
            .backend
            .list(&layout::upload_log(id), None, usize::MAX)
            .await?;
        if let Some(last) = log.last() {
            keys.push(format!("{}/{last}", layout::upload_log(id)));
        } else {
            let parts = self
                .backend
                .list(&layout::upload_parts(id), None, usize::MAX)
                .await?;
            keys.extend(
                parts
                    .iter()
                    .map(|part| format!("{}/{part}", layout::upload_parts(id))),
            );
        }
        let mut last_touch = None;
        for key in keys {
            if let Some(meta) = self.backend.stat(&key).await? {
                last_touch = last_touch.max(Some(meta.modified));
            }
        }
        Ok(last_touch)
    }

    /// Uploads untouched for longer than `age`.
    pub(crate) async fn stale_uploads(&self, age: Duration) -> Result<Vec<String>> {
        let now = SystemTime::now();
        let mut stale = Vec::new();
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
                let Some(last_touch) = self.upload_last_touch(&id).await? else {
                    continue;
                };
                if now.duration_since(last_touch).unwrap_or_default() > age {
                    stale.push(id);
                }
            }
            after = Some(last);
        }
        Ok(stale)
    }

    /// Removes uploads untouched for longer than `age`. Returns the ids
    /// removed (or, with `dry_run`, that would be).
    pub async fn purge_uploads(&self, age: Duration, dry_run: bool) -> Result<Vec<String>> {
        let stale = self.stale_uploads(age).await?;
        if !dry_run {
            for id in &stale {
                self.backend.delete_prefix(&layout::upload(id)).await?;
            }
        }
        Ok(stale)
    }
}

/// The number of the entry after `seq`.
fn next_seq(seq: u64) -> Result<u64> {
    seq.checked_add(1)
        .ok_or_else(|| RegistryError::new(Code::SizeInvalid, "the upload has too many chunks"))
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
