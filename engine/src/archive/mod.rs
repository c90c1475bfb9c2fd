//! Image archives: `save` writes stored images to a tar stream, `load`
//! reads one into the store. Two formats:
//!
//! - docker-archive, as `docker save` writes and `docker load` reads
//!   (`manifest.json` naming a config and layer files per image);
//! - OCI archive: a tar of an OCI image layout (`oci-layout`, `index.json`,
//!   `blobs/<alg>/<hex>`).
//!
//! Both stream: blobs go from the store into the tar and from the tar into
//! the store without being held in memory; only the small index files are.

mod load;
mod save;

pub use load::load;
pub use save::save;

use crate::store::StoreError;

/// The archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Docker,
    Oci,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("archive I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("no image named {0} in the local store")]
    NotFound(String),
    #[error("invalid archive: {0}")]
    Invalid(String),
}

pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
