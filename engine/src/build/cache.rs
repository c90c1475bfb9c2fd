//! The build cache: `<root>/build-cache/<key>.json` holds the image a
//! step left (config and layer descriptors), under a key chained from the
//! base image through every step (its instruction, the build args it
//! sees, and for COPY/ADD a digest of the files' names, contents and
//! modes). An entry whose layers are no longer in the store is a miss.

use crate::new_image::NewImage;
use crate::store::ContentStore;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub struct BuildCache {
    dir: PathBuf,
}

impl BuildCache {
    pub fn open(root: &Path) -> Result<BuildCache, super::BuildError> {
        let dir = root.join("build-cache");
        std::fs::create_dir_all(&dir)
            .map_err(|e| super::BuildError::Other(format!("{}: {e}", dir.display())))?;
        Ok(BuildCache { dir })
    }

    pub fn get(&self, key: &str, store: &ContentStore) -> Option<NewImage> {
        let entry: Value =
            serde_json::from_slice(&std::fs::read(self.dir.join(format!("{key}.json"))).ok()?)
                .ok()?;
        let layers = entry.get("layers")?.as_array()?.clone();
        for layer in &layers {
            let digest = layer.get("digest")?.as_str()?.parse().ok()?;
            store.blob_size(&digest)?;
        }
        Some(NewImage {
            config: entry.get("config")?.clone(),
            layers,
        })
    }

    pub fn put(&self, key: &str, image: &NewImage) -> Result<(), super::BuildError> {
        let bytes = serde_json::to_vec(&json!({"config": image.config, "layers": image.layers}))
            .map_err(|e| super::BuildError::Other(e.to_string()))?;
        let path = self.dir.join(format!("{key}.json"));
        crate::runtime::write_atomic(&path, &bytes).map_err(super::BuildError::from)
    }
}
