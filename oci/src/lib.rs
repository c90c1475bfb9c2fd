//! The OCI distribution grammar shared by the registry, the client and the
//! engine.
//!
//! - [`atomic`]: atomic file writes (temp, fsync, rename, fsync of the directory).
//! - [`challenge`]: `WWW-Authenticate` challenges (Basic, Bearer).
//! - [`digest`]: content digests (`sha256:`, `sha512:`) and the streaming hasher.
//! - [`names`]: repository names, tags and manifest references.
//! - [`time`]: RFC 3339 timestamps.

pub mod atomic;
pub mod challenge;
pub mod digest;
pub mod names;
pub mod time;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use names::{valid_tag, Reference, RepoName};
