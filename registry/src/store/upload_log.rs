//! An upload's history in storage: an append-only log of entries under
//! `uploads/<id>/log/<seq>`, written only with conditional puts.
//!
//! Entry 0 is written when the upload starts. Each accepted chunk adds one
//! entry that names the part object holding the chunk's bytes
//! (`uploads/<id>/parts/<part>`) and carries the running sha256 state after
//! it. Completion adds a closing entry before it touches anything else.
//!
//! Why this shape:
//! - Two requests that continue the same entry (two PATCHes at once, a
//!   PATCH racing the PUT) both try to write entry `seq + 1` with
//!   [`Backend::write_if_absent`]; exactly one wins, whether they run in one
//!   process, in two processes on one directory, or on two replicas over
//!   one bucket. The loser deletes its part and answers 416. No lock, and
//!   no per-process state anyone has to trust.
//! - A part is written whole (atomically) before any entry names it and is
//!   never written again, so the bytes an entry names are the bytes its hash
//!   state covers. A chunk still streaming when the upload completes writes
//!   into its own part, which no entry will ever name: a published blob
//!   cannot change.
//! - The hash state travels with the entry, so the next chunk may land on
//!   another process and completion does not re-read the blob (unless the
//!   digest asked for is not sha256).

// Parses what clients send: every sum on a number from outside is checked.
#![deny(clippy::arithmetic_side_effects)]

use super::layout;
use crate::digest::{Algorithm, Hasher};
use crate::error::{Code, RegistryError, Result};
use crate::storage::{Backend, StorageError};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One step of an upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The repository the upload belongs to.
    pub repository: String,
    /// When the upload started (seconds since the epoch).
    pub started: u64,
    /// The upload's size after this entry.
    pub offset: u64,
    /// The part this entry added, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<Part>,
    /// The running sha256 state over the upload's bytes, hex.
    pub sha256: String,
    /// The upload is being completed: nothing may follow this entry.
    #[serde(default)]
    pub closed: bool,
}

/// A part object of an upload and its size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    pub name: String,
    pub size: u64,
}

impl Entry {
    /// The first entry of an upload into `repository`.
    pub fn first(repository: &str, started: u64) -> Entry {
        Entry {
            repository: repository.to_string(),
            started,
            offset: 0,
            part: None,
            sha256: hex::encode(Hasher::new(Algorithm::Sha256).save()),
            closed: false,
        }
    }

    /// The running hash after this entry.
    pub fn hasher(&self) -> Result<Hasher> {
        hex::decode(&self.sha256)
            .ok()
            .and_then(|state| Hasher::resume(Algorithm::Sha256, &state))
            .ok_or_else(|| corrupt("its hash state is unreadable"))
    }
}

fn corrupt(why: &str) -> RegistryError {
    RegistryError::new(Code::Unknown, format!("upload state is corrupt: {why}"))
}

/// The log of upload `id` in `backend`.
pub struct Log<'a> {
    backend: &'a dyn Backend,
    id: &'a str,
}

impl<'a> Log<'a> {
    pub fn new(backend: &'a dyn Backend, id: &'a str) -> Log<'a> {
        Log { backend, id }
    }

    /// The sequence numbers of the entries present, in order.
    async fn sequence(&self) -> Result<Vec<u64>> {
        let names = self
            .backend
            .list(&layout::upload_log(self.id), None, usize::MAX)
            .await?;
        Ok(names.iter().filter_map(|name| name.parse().ok()).collect())
    }

    /// The last entry and its number; `None` when the upload does not exist
    /// (never started, or removed: its entry 0 is gone).
    pub async fn latest(&self) -> Result<Option<(u64, Entry)>> {
        let sequence = self.sequence().await?;
        if sequence.first() != Some(&0) {
            return Ok(None);
        }
        let Some(&last) = sequence.last() else {
            return Ok(None);
        };
        match self.read(last).await {
            Ok(entry) => Ok(Some((last, entry))),
            // Removed between the listing and the read.
            Err(e) if e.code == Code::BlobUploadUnknown => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn read(&self, seq: u64) -> Result<Entry> {
        let key = layout::upload_log_entry(self.id, seq);
        match self.backend.read_all(&key).await {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|_| corrupt("an entry is not valid JSON"))
            }
            Err(StorageError::NotFound(_)) => Err(RegistryError::new(
                Code::BlobUploadUnknown,
                format!("upload {} is unknown", self.id),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes entry `seq` unless one is there already; `false` when another
    /// request wrote it first.
    pub async fn append(&self, seq: u64, entry: &Entry) -> Result<bool> {
        let bytes = serde_json::to_vec(entry).map_err(|e| corrupt(&e.to_string()))?;
        Ok(self
            .backend
            .write_if_absent(&layout::upload_log_entry(self.id, seq), Bytes::from(bytes))
            .await?)
    }

    /// Whether entry 0 is still there (the upload was not removed).
    pub async fn exists(&self) -> Result<bool> {
        Ok(self
            .backend
            .stat(&layout::upload_log_entry(self.id, 0))
            .await?
            .is_some())
    }

    /// The parts named by entries `1..=last`, in upload order. Their sizes
    /// add up to entry `last`'s offset, or the log is refused as corrupt.
    pub async fn parts(&self, last: u64, offset: u64) -> Result<Vec<Part>> {
        let mut parts = Vec::new();
        let mut total = 0u64;
        for seq in 1..=last {
            if let Some(part) = self.read(seq).await?.part {
                total = total
                    .checked_add(part.size)
                    .ok_or_else(|| corrupt("part sizes overflow"))?;
                parts.push(part);
            }
        }
        if total != offset {
            return Err(corrupt("its parts do not add up to its size"));
        }
        Ok(parts)
    }
}
