//! Content digests, from the shared `roci` crate.

pub use roci::digest::{Algorithm, Digest, DigestError, Hasher};
