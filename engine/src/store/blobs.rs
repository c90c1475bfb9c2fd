//! Blobs: written through a [`BlobWriter`] that hashes while it copies and
//! publishes the blob only once its digest (and size, when known) match;
//! or, for content whose digest is learnt by reading it (archive entries),
//! under the digest computed.

use super::{io_error, ContentStore, Result, StoreError};
use roci::{Digest, Hasher};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

/// A blob being written. Dropped without [`BlobWriter::commit`], it leaves nothing.
pub struct BlobWriter {
    file: Option<File>,
    temp: PathBuf,
    hasher: Hasher,
    written: u64,
    /// The digest (and size) the content must have; `None` to take the computed one.
    expected: Option<(Digest, Option<u64>)>,
    store: ContentStore,
}

impl ContentStore {
    /// Starts writing the blob `expected` (of `size` bytes, when known).
    pub fn blob_writer(&self, expected: &Digest, size: Option<u64>) -> Result<BlobWriter> {
        let temp = self.temp_path();
        let file = File::create(&temp).map_err(io_error(&temp))?;
        Ok(BlobWriter {
            file: Some(file),
            temp,
            hasher: Hasher::new(expected.algorithm()),
            written: 0,
            expected: Some((expected.clone(), size)),
            store: self.clone(),
        })
    }

    /// Starts writing a blob stored under the sha256 of whatever is written.
    pub fn blob_writer_computed(&self) -> Result<BlobWriter> {
        let temp = self.temp_path();
        let file = File::create(&temp).map_err(io_error(&temp))?;
        Ok(BlobWriter {
            file: Some(file),
            temp,
            hasher: Hasher::new(roci::Algorithm::Sha256),
            written: 0,
            expected: None,
            store: self.clone(),
        })
    }

    /// Stores small content held in memory (a manifest, a config) and returns its digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of_bytes(roci::Algorithm::Sha256, bytes);
        if self.blob_size(&digest).is_none() {
            let mut writer = self.blob_writer(&digest, Some(bytes.len() as u64))?;
            writer.write_chunk(bytes)?;
            writer.commit()?;
        }
        Ok(digest)
    }

    /// Stores small content under the digest it was fetched by (which may
    /// be sha512), verifying it.
    pub fn put_bytes_as(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        if self.blob_size(digest).is_none() {
            let mut writer = self.blob_writer(digest, Some(bytes.len() as u64))?;
            writer.write_chunk(bytes)?;
            writer.commit()?;
        }
        Ok(())
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        File::open(self.blob_path(digest)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::BlobUnknown(digest.clone()),
            _ => StoreError::Io {
                path: self.blob_path(digest),
                source: e,
            },
        })
    }

    /// Reads a small stored blob whole (manifests, configs).
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        std::fs::read(self.blob_path(digest)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::BlobUnknown(digest.clone()),
            _ => StoreError::Io {
                path: self.blob_path(digest),
                source: e,
            },
        })
    }
}

impl BlobWriter {
    /// Bytes written so far (the offset a resumed download continues from).
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        if let Some((digest, Some(expected))) = &self.expected {
            if self.written + chunk.len() as u64 > *expected {
                return Err(StoreError::SizeMismatch {
                    digest: digest.clone(),
                    expected: *expected,
                    actual: self.written + chunk.len() as u64,
                });
            }
        }
        let file = self.file.as_mut().ok_or_else(|| StoreError::Io {
            path: self.temp.clone(),
            source: std::io::Error::other("writer already finished"),
        })?;
        file.write_all(chunk).map_err(io_error(&self.temp))?;
        self.hasher.update(chunk);
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// Verifies size and digest, then makes the blob visible. On a
    /// mismatch nothing is kept.
    pub fn commit(mut self) -> Result<Digest> {
        let file = self.file.take().ok_or_else(|| StoreError::Io {
            path: self.temp.clone(),
            source: std::io::Error::other("writer already finished"),
        })?;
        let algorithm = self.hasher.algorithm();
        let actual = std::mem::replace(&mut self.hasher, Hasher::new(algorithm)).finish();
        if let Some((expected, size)) = &self.expected {
            if size.is_some_and(|size| size != self.written) {
                return Err(StoreError::SizeMismatch {
                    digest: expected.clone(),
                    expected: size.unwrap_or_default(),
                    actual: self.written,
                });
            }
            if &actual != expected {
                return Err(StoreError::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        file.sync_all().map_err(io_error(&self.temp))?;
        drop(file);
        let target = self.store.blob_path(&actual);
        std::fs::rename(&self.temp, &target).map_err(io_error(&target))?;
        if let Some(dir) = target.parent() {
            roci::atomic::sync_dir(dir).map_err(io_error(dir))?;
        }
        Ok(actual)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // Committed writers have renamed their temp file away; others leave nothing.
        let _ = std::fs::remove_file(&self.temp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roci::Algorithm;

    #[test]
    fn verified_blobs_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let data = b"layer bytes";
        let digest = Digest::of_bytes(Algorithm::Sha256, data);

        let mut writer = store.blob_writer(&digest, Some(data.len() as u64)).unwrap();
        writer.write_chunk(&data[..5]).unwrap();
        writer.write_chunk(&data[5..]).unwrap();
        assert_eq!(writer.commit().unwrap(), digest);
        assert_eq!(store.read_blob(&digest).unwrap(), data);
        assert_eq!(store.blob_size(&digest), Some(data.len() as u64));

        let wrong = Digest::of_bytes(Algorithm::Sha256, b"something else");
        let mut writer = store.blob_writer(&wrong, None).unwrap();
        writer.write_chunk(data).unwrap();
        assert!(matches!(
            writer.commit(),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(store.blob_size(&wrong).is_none());

        let mut writer = store.blob_writer(&digest, Some(3)).unwrap();
        assert!(matches!(
            writer.write_chunk(data),
            Err(StoreError::SizeMismatch { .. })
        ));
        drop(writer);
        let leftovers = std::fs::read_dir(dir.path().join("tmp")).unwrap().count();
        assert_eq!(leftovers, 0, "failed writes left temp files");

        let sha512 = Digest::of_bytes(Algorithm::Sha512, data);
        let mut writer = store.blob_writer(&sha512, None).unwrap();
        writer.write_chunk(data).unwrap();
        writer.commit().unwrap();
        assert!(store
            .blob_path(&sha512)
            .starts_with(dir.path().join("blobs/sha512")));
    }
}
