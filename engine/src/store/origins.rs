//! Where blobs came from: `origins/<alg>/<hex>` lists the `host/repository`
//! each blob was pulled from, one per line, so a push to another repository
//! of the same registry can mount instead of upload. A hint only: a lost
//! line costs an upload, never correctness.

use super::{ContentStore, Result};
use roci::Digest;

impl ContentStore {
    fn origins_path(&self, digest: &Digest) -> std::path::PathBuf {
        self.root
            .join("origins")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// The `host/repository` places `digest` was pulled from.
    pub fn origins(&self, digest: &Digest) -> Vec<String> {
        std::fs::read_to_string(self.origins_path(digest))
            .map(|text| {
                text.lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records that `digest` is available at `place` (`host/repository`).
    pub fn add_origin(&self, digest: &Digest, place: &str) -> Result<()> {
        let mut places = self.origins(digest);
        if places.iter().any(|p| p == place) {
            return Ok(());
        }
        places.push(place.to_string());
        let path = self.origins_path(digest);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(super::io_error(dir))?;
        }
        self.write_atomic(&path, format!("{}\n", places.join("\n")).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_places_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let digest = store.put_bytes(b"x").unwrap();
        assert!(store.origins(&digest).is_empty());
        store.add_origin(&digest, "localhost:5000/a").unwrap();
        store.add_origin(&digest, "localhost:5000/b").unwrap();
        store.add_origin(&digest, "localhost:5000/a").unwrap();
        assert_eq!(
            store.origins(&digest),
            vec!["localhost:5000/a", "localhost:5000/b"]
        );
    }
}
