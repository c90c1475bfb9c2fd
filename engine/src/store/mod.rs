//! The content store: an OCI image layout under the engine root.
//!
//! ```text
//! <root>/oci-layout              {"imageLayoutVersion": "1.0.0"}
//! <root>/index.json              named images: descriptors annotated with
//!                                org.opencontainers.image.ref.name
//! <root>/blobs/<alg>/<hex>       every blob and manifest, once, shared by all images
//! <root>/origins/<alg>/<hex>     where a blob was pulled from (host/repository lines)
//! <root>/tmp/                    writes in progress (cleared on open)
//! <root>/.lock                   held (flock) while index.json changes or blobs are collected
//! ```
//!
//! A blob becomes visible only by `rename(2)` after its digest and size are
//! verified; `index.json` is replaced by rename under the lock. So
//! concurrent `rctl` processes, or a kill at any moment, leave the store
//! whole.
//!
//! - [`blobs`]: writing (verified) and reading blobs.
//! - [`refs`]: image names in `index.json`, and collection of unused blobs.
//! - [`origins`]: where blobs were pulled from, for mounts on push.

pub mod blobs;
pub mod origins;
pub mod refs;

pub use blobs::BlobWriter;
pub use refs::ImageRef;

use roci::Digest;
use std::path::{Path, PathBuf};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("blob {0} is not in the store")]
    BlobUnknown(Digest),
    #[error("content does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("content of {digest} is {actual} bytes, expected {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("{path} is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The content store at one root directory.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

const LAYOUT: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";

impl ContentStore {
    /// Opens the store at `root`, creating the layout if it is new and
    /// clearing writes a killed process left in `tmp/`.
    ///
    /// Other processes may be using the store: `tmp/` is cleared only when
    /// no write session is open (every temp file is written inside one, or
    /// under the index lock, which is held here too), and the layout files
    /// are created under the index lock.
    pub fn open(root: impl Into<PathBuf>) -> Result<ContentStore> {
        let root = root.into();
        let tmp = root.join("tmp");
        for dir in [
            root.join("blobs/sha256"),
            root.join("blobs/sha512"),
            tmp.clone(),
        ] {
            std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        }
        let store = ContentStore { root };
        let unused = store.try_lock_exclusive(".gc.lock")?;
        let _index = store.lock_exclusive(".index.lock")?;
        if unused.is_some() {
            for entry in std::fs::read_dir(&tmp).map_err(io_error(&tmp))? {
                let path = entry.map_err(io_error(&tmp))?.path();
                let _ = std::fs::remove_file(&path);
            }
        }
        let layout = store.root.join("oci-layout");
        if !layout.exists() {
            store.write_atomic(&layout, LAYOUT.as_bytes())?;
        }
        if !store.index_path().exists() {
            store.write_index(&refs::Index::default())?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// The size of a stored blob, or `None`.
    pub fn blob_size(&self, digest: &Digest) -> Option<u64> {
        std::fs::metadata(self.blob_path(digest))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn temp_path(&self) -> PathBuf {
        self.root.join("tmp").join(uuid::Uuid::new_v4().to_string())
    }

    /// Writes a small file atomically ([`roci::atomic`]).
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        roci::atomic::write_atomic(path, bytes).map_err(io_error(path))
    }
}

impl ContentStore {
    /// A handle on a store already opened (and so laid out) elsewhere,
    /// without clearing its `tmp/`, for another thread or process.
    pub fn open_existing(root: impl Into<PathBuf>) -> ContentStore {
        ContentStore { root: root.into() }
    }
}
