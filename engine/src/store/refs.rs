//! Image names: entries of the layout's `index.json` annotated with
//! `org.opencontainers.image.ref.name`, changed under a lock and replaced
//! atomically; and the collection of blobs no named image reaches.
//!
//! Two lock files keep concurrent processes apart: `.index.lock` is held
//! while `index.json` changes; `.gc.lock` is held shared by every write
//! session (a pull, from its first blob to its tag) and exclusively by
//! collection, so no collection removes blobs a pull has written but not
//! yet named. Both are always taken in that order: `.gc.lock`, then
//! `.index.lock`.

use super::{io_error, ContentStore, Result, StoreError};
use nix::fcntl::{Flock, FlockArg};
use roci::Digest;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::fs::File;

/// The annotation naming an image in an OCI layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// A named image in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// `index.json`, keeping whatever else other tools wrote into it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Index {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Value>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.to_string()),
            manifests: Vec::new(),
            rest: Map::new(),
        }
    }
}

fn ref_name(entry: &Value) -> Option<&str> {
    entry.get("annotations")?.get(REF_NAME)?.as_str()
}

fn image_ref(entry: &Value) -> Option<ImageRef> {
    Some(ImageRef {
        name: ref_name(entry)?.to_string(),
        digest: entry.get("digest")?.as_str()?.parse().ok()?,
        media_type: entry.get("mediaType")?.as_str()?.to_string(),
        size: entry.get("size")?.as_u64()?,
    })
}

/// A held lock; released when dropped.
pub struct StoreLock(#[allow(dead_code)] Flock<File>);

impl ContentStore {
    pub(crate) fn lock_exclusive(&self, name: &str) -> Result<StoreLock> {
        self.lock(name, FlockArg::LockExclusive)
    }

    /// The lock if it is free now, `None` if another process holds it.
    pub(crate) fn try_lock_exclusive(&self, name: &str) -> Result<Option<StoreLock>> {
        match self.lock(name, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(lock)),
            Err(StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::WouldBlock =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn lock(&self, name: &str, arg: FlockArg) -> Result<StoreLock> {
        let path = self.root.join(name);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        Flock::lock(file, arg)
            .map(StoreLock)
            .map_err(|(_, errno)| StoreError::Io {
                path,
                source: std::io::Error::from(errno),
            })
    }

    /// A write session: blobs written while it is held are safe from
    /// collection until they are named. Any number may be held at once.
    pub fn write_session(&self) -> Result<StoreLock> {
        self.lock(".gc.lock", FlockArg::LockShared)
    }

    pub(crate) fn read_index(&self) -> Result<Index> {
        let path = self.index_path();
        let bytes = std::fs::read(&path).map_err(io_error(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    pub(crate) fn write_index(&self, index: &Index) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(index).map_err(|e| StoreError::Corrupt {
            path: self.index_path(),
            message: e.to_string(),
        })?;
        self.write_atomic(&self.index_path(), &bytes)
    }

    /// Every named image, in the order of `index.json`.
    pub fn images(&self) -> Result<Vec<ImageRef>> {
        Ok(self
            .read_index()?
            .manifests
            .iter()
            .filter_map(image_ref)
            .collect())
    }

    /// The image named `name`, if any.
    pub fn resolve(&self, name: &str) -> Result<Option<ImageRef>> {
        Ok(self.images()?.into_iter().find(|image| image.name == name))
    }

    /// Names (or renames) a stored manifest.
    pub fn tag(&self, image: &ImageRef) -> Result<()> {
        let _lock = self.lock(".index.lock", FlockArg::LockExclusive)?;
        let mut index = self.read_index()?;
        index
            .manifests
            .retain(|entry| ref_name(entry) != Some(image.name.as_str()));
        index.manifests.push(json!({
            "mediaType": image.media_type,
            "digest": image.digest.to_string(),
            "size": image.size,
            "annotations": { REF_NAME: image.name },
        }));
        self.write_index(&index)
    }

    /// Removes a name; the image it named, or `None` when there was none.
    pub fn untag(&self, name: &str) -> Result<Option<ImageRef>> {
        let _lock = self.lock(".index.lock", FlockArg::LockExclusive)?;
        let mut index = self.read_index()?;
        let removed = index
            .manifests
            .iter()
            .find(|e| ref_name(e) == Some(name))
            .and_then(image_ref);
        if removed.is_some() {
            index
                .manifests
                .retain(|entry| ref_name(entry) != Some(name));
            self.write_index(&index)?;
        }
        Ok(removed)
    }

    /// Removes every blob that no entry of `index.json` reaches (through
    /// indexes, manifests, configs and layers). Returns what was removed.
    pub fn collect_garbage(&self) -> Result<Vec<Digest>> {
        let _gc = self.lock(".gc.lock", FlockArg::LockExclusive)?;
        let _index = self.lock(".index.lock", FlockArg::LockExclusive)?;
        let mut reachable = HashSet::new();
        let mut pending: Vec<Digest> = self
            .read_index()?
            .manifests
            .iter()
            .filter_map(|e| e.get("digest")?.as_str()?.parse().ok())
            .collect();
        while let Some(digest) = pending.pop() {
            if !reachable.insert(digest.clone()) {
                continue;
            }
            let Ok(bytes) = self.read_blob(&digest) else {
                continue;
            };
            let Ok(manifest) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            let children = manifest
                .get("manifests")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .chain(manifest.get("config"))
                .chain(
                    manifest
                        .get("layers")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten(),
                );
            for child in children {
                if let Some(d) = child
                    .get("digest")
                    .and_then(Value::as_str)
                    .and_then(|d| d.parse().ok())
                {
                    pending.push(d);
                }
            }
        }
        let mut removed = Vec::new();
        for algorithm in ["sha256", "sha512"] {
            let dir = self.root.join("blobs").join(algorithm);
            let entries = std::fs::read_dir(&dir).map_err(io_error(&dir))?;
            for entry in entries {
                let entry = entry.map_err(io_error(&dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(digest) = format!("{algorithm}:{name}").parse::<Digest>() else {
                    continue;
                };
                if !reachable.contains(&digest) {
                    std::fs::remove_file(entry.path()).map_err(io_error(&entry.path()))?;
                    removed.push(digest);
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(store: &ContentStore, layer: &[u8]) -> (ImageRef, Digest) {
        let layer_digest = store.put_bytes(layer).unwrap();
        let config = store
            .put_bytes(format!("{{\"layer\":{:?}}}", String::from_utf8_lossy(layer)).as_bytes())
            .unwrap();
        let body = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest.to_string(), "size": layer.len()}]})
        .to_string();
        let digest = store.put_bytes(body.as_bytes()).unwrap();
        let image = ImageRef {
            name: String::new(),
            digest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: body.len() as u64,
        };
        (image, layer_digest)
    }

    #[test]
    fn names_and_collection() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let (mut a, layer_a) = manifest(&store, b"layer a");
        let (mut b, layer_b) = manifest(&store, b"layer b");
        a.name = "localhost:5000/app:1".into();
        b.name = "localhost:5000/app:2".into();
        store.tag(&a).unwrap();
        store.tag(&b).unwrap();
        let mut alias = a.clone();
        alias.name = "localhost:5000/other:latest".into();
        store.tag(&alias).unwrap();
        assert_eq!(store.images().unwrap().len(), 3);
        assert_eq!(
            store.resolve("localhost:5000/app:2").unwrap(),
            Some(b.clone())
        );

        // Removing one of two names of an image frees nothing.
        store.untag("localhost:5000/app:1").unwrap();
        assert!(store.collect_garbage().unwrap().is_empty());
        assert!(store.blob_size(&layer_a).is_some());
        // Removing the last name frees its manifest, config and layer, and only those.
        store.untag("localhost:5000/other:latest").unwrap();
        let removed = store.collect_garbage().unwrap();
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(store.blob_size(&layer_a).is_none());
        assert!(store.blob_size(&layer_b).is_some());
        assert_eq!(store.untag("never:there").unwrap(), None);

        // The layout stays readable by other tools, with their fields kept.
        let raw: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(raw["schemaVersion"], 2);
        assert_eq!(
            raw["manifests"][0]["annotations"][REF_NAME],
            "localhost:5000/app:2"
        );
        assert!(dir.path().join("oci-layout").exists());
    }

    #[test]
    fn concurrent_taggers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let (image, _) = manifest(&store, b"shared");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = ContentStore::open_existing(dir.path());
                let mut image = image.clone();
                std::thread::spawn(move || {
                    for j in 0..10 {
                        image.name = format!("localhost:5000/t{i}:{j}");
                        store.tag(&image).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(store.images().unwrap().len(), 80);
    }
}
