//! Content digests, from the shared `rdigest` crate.

pub use rdigest::{Algorithm, Digest, DigestError, Hasher};
