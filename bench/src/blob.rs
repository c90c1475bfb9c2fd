//! Blob contents for the transfer scenarios, made without holding a whole
//! blob: a 64 MiB random pattern repeated, each 64 MiB piece starting with
//! a 16-byte stamp (a salt and the piece's index) so that every blob, and
//! every piece of it, differs.

use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::sync::Arc;

pub const PIECE: u64 = 64 * 1024 * 1024;
const STAMP: usize = 16;

pub struct BlobSource {
    pattern: Arc<Vec<u8>>,
    stamps: Vec<[u8; STAMP]>,
    pub size: u64,
}

pub fn random_bytes(len: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// "1 GiB", "256 MiB": a blob size as the table shows it.
pub fn size_name(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// The 64 MiB pattern every blob repeats.
pub fn pattern() -> std::io::Result<Arc<Vec<u8>>> {
    Ok(Arc::new(random_bytes(PIECE as usize)?))
}

impl BlobSource {
    /// A blob of `size` bytes (a whole number of 64 MiB pieces), distinct per `salt`.
    pub fn new(pattern: Arc<Vec<u8>>, size: u64, salt: u64) -> BlobSource {
        assert!(
            size > 0 && size.is_multiple_of(PIECE),
            "blob sizes are whole 64 MiB pieces"
        );
        let stamps = (0..size / PIECE)
            .map(|index| {
                let mut stamp = [0u8; STAMP];
                stamp[..8].copy_from_slice(&salt.to_le_bytes());
                stamp[8..].copy_from_slice(&index.to_le_bytes());
                stamp
            })
            .collect();
        BlobSource {
            pattern,
            stamps,
            size,
        }
    }

    /// The bytes `start..start + len` as consecutive slices.
    pub fn segments(&self, start: u64, len: u64) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let (mut at, end) = (start, (start + len).min(self.size));
        while at < end {
            let piece = (at / PIECE) as usize;
            let offset = (at % PIECE) as usize;
            let piece_end = ((end - piece as u64 * PIECE).min(PIECE)) as usize;
            if offset < STAMP {
                let stamp_end = piece_end.min(STAMP);
                out.push(&self.stamps[piece][offset..stamp_end]);
                if piece_end > STAMP {
                    out.push(&self.pattern[STAMP..piece_end]);
                }
            } else {
                out.push(&self.pattern[offset..piece_end]);
            }
            at = piece as u64 * PIECE + piece_end as u64;
        }
        out
    }

    /// `sha256:<hex>` of the whole blob.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for segment in self.segments(0, self.size) {
            hasher.update(segment);
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_the_blob_in_order_whatever_the_cut() {
        let pattern = Arc::new((0..PIECE).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        let blob = BlobSource::new(pattern, 2 * PIECE, 7);
        let whole: Vec<u8> = blob.segments(0, blob.size).concat();
        assert_eq!(whole.len() as u64, 2 * PIECE);
        assert_eq!(&whole[..8], &7u64.to_le_bytes());
        assert_eq!(
            &whole[PIECE as usize + 8..PIECE as usize + 16],
            &1u64.to_le_bytes()
        );
        let chunk = 16 * 1024 * 1024 + 5;
        let mut joined = Vec::new();
        let mut at = 0;
        while at < blob.size {
            joined.extend(blob.segments(at, chunk).concat());
            at += chunk;
        }
        assert!(joined == whole);
        assert_eq!(blob.segments(3, 20).concat(), whole[3..23].to_vec());
    }
}
