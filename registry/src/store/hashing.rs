//! Hashing while copying: a stream adapter that feeds every chunk to a
//! [`Hasher`] and counts bytes, so a blob is verified in the same pass that
//! stores it.

use crate::digest::Hasher;
use crate::storage::ByteStream;
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};

/// What the adapter saw, read once the stream has been consumed.
#[derive(Clone)]
pub struct Tally(Arc<Mutex<(Option<Hasher>, u64)>>);

impl Tally {
    /// The hasher (if one was given) and the number of bytes that passed.
    pub fn take(&self) -> (Option<Hasher>, u64) {
        let mut inner = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (inner.0.take(), inner.1)
    }
}

/// Wraps `body` so that each chunk updates `hasher` (when given) and the byte count.
pub fn tally(body: ByteStream, hasher: Option<Hasher>) -> (ByteStream, Tally) {
    let tally = Tally(Arc::new(Mutex::new((hasher, 0))));
    let seen = tally.clone();
    let stream = body.map(move |chunk| {
        if let Ok(bytes) = &chunk {
            let mut inner = seen
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(hasher) = inner.0.as_mut() {
                hasher.update(bytes);
            }
            inner.1 += bytes.len() as u64;
        }
        chunk
    });
    (Box::pin(stream), tally)
}
