//! What the runtime needs of a stored image: its config section, its id,
//! and its layers unpacked into the snapshotter.

use crate::applier::ApplyOptions;
use crate::snapshot::{chain_ids, Snapshotter};
use crate::store::ContentStore;
use crate::unpack::{unpack_image, UnpackError};
use roci::Digest;
use serde_json::Value;

/// A stored image ready to run.
#[derive(Debug, Clone)]
pub struct RunnableImage {
    /// The manifest's digest in the store.
    pub manifest: Digest,
    /// The config blob's digest: docker's image id.
    pub id: Digest,
    /// The config's `config` section (Env, Cmd, Entrypoint, WorkingDir, User, ...).
    pub config: Value,
    /// ChainIDs of its layers, lowest first.
    pub layers: Vec<Digest>,
}

fn read_json(store: &ContentStore, digest: &Digest) -> Result<Value, UnpackError> {
    serde_json::from_slice(&store.read_blob(digest)?)
        .map_err(|e| UnpackError::Invalid(format!("{digest}: {e}")))
}

/// Reads the image whose manifest is `manifest`, without unpacking.
pub fn read(store: &ContentStore, manifest_digest: &Digest) -> Result<RunnableImage, UnpackError> {
    let manifest = read_json(store, manifest_digest)?;
    let id: Digest = manifest
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(Value::as_str)
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| UnpackError::Invalid("manifest without a config".into()))?;
    let config = read_json(store, &id)?;
    let diff_ids: Vec<Digest> = config
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|d| d.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    Ok(RunnableImage {
        manifest: manifest_digest.clone(),
        id,
        config: config.get("config").cloned().unwrap_or(Value::Null),
        layers: chain_ids(&diff_ids),
    })
}

/// Unpacks the image (the layers not yet unpacked, `workers` at once) and reads it.
pub fn prepare(
    store: &ContentStore,
    snapshots: &Snapshotter,
    manifest: &Digest,
    workers: usize,
) -> Result<RunnableImage, UnpackError> {
    unpack_image(
        store,
        snapshots,
        manifest,
        workers,
        ApplyOptions::for_current_user(),
    )?;
    read(store, manifest)
}
