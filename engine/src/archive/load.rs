//! Reading a docker-archive or an OCI archive into the store. The format
//! is recognised by its index file (`manifest.json` or `index.json`),
//! wherever it stands in the tar.

use super::{ArchiveError, Result, OCI_CONFIG, OCI_MANIFEST};
use crate::store::refs::REF_NAME;
use crate::store::{ContentStore, ImageRef};
use roci::Digest;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};

/// Index files are read into memory (at most this large); everything else
/// streams into the store.
const INDEX_LIMIT: u64 = 16 * 1024 * 1024;
const INDEX_FILES: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];

/// A blob of the archive, by its path in the tar.
struct Stored {
    digest: Digest,
    size: u64,
}

/// Feeds a [`crate::store::BlobWriter`] through `std::io::Write`.
struct WriterAdapter<'a>(&'a mut crate::store::BlobWriter);

impl Write for WriterAdapter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_chunk(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Loads the archive read from `input`; `name_for` turns a name in the
/// archive into the store's name for it (`None` to keep it). Returns the
/// names loaded.
pub fn load(
    store: &ContentStore,
    input: impl Read,
    name_for: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let _session = store.write_session()?;
    let mut archive = tar::Archive::new(input);
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut blobs: HashMap<String, Stored> = HashMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if INDEX_FILES.contains(&path.as_str()) {
            let mut bytes = Vec::new();
            (&mut entry).take(INDEX_LIMIT + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > INDEX_LIMIT {
                return Err(ArchiveError::Invalid(format!(
                    "{path} is larger than {INDEX_LIMIT} bytes"
                )));
            }
            small.insert(path, bytes);
            continue;
        }
        // An OCI layout's blob is verified against the digest its path
        // claims; other files are stored under the digest computed.
        let claimed = path
            .strip_prefix("blobs/")
            .and_then(|rest| rest.replacen('/', ":", 1).parse::<Digest>().ok());
        let mut writer = match &claimed {
            Some(digest) => store.blob_writer(digest, Some(entry.header().size()?))?,
            None => store.blob_writer_computed()?,
        };
        let size = std::io::copy(&mut entry, &mut WriterAdapter(&mut writer))?;
        let digest = writer.commit()?;
        blobs.insert(path, Stored { digest, size });
    }
    if let Some(manifest) = small.get("manifest.json") {
        load_docker(store, manifest, &blobs, name_for)
    } else if let Some(index) = small.get("index.json") {
        load_oci(store, index, name_for)
    } else {
        Err(ArchiveError::Invalid(
            "neither manifest.json (docker-archive) nor index.json (OCI archive) found".into(),
        ))
    }
}

fn blob<'a>(blobs: &'a HashMap<String, Stored>, path: &str) -> Result<&'a Stored> {
    blobs.get(path.trim_start_matches("./")).ok_or_else(|| {
        ArchiveError::Invalid(format!("the archive names {path} but does not hold it"))
    })
}

/// The layer media type by the blob's first bytes (gzip, zstd or plain tar).
fn layer_media_type(store: &ContentStore, digest: &Digest) -> Result<&'static str> {
    let mut magic = [0u8; 4];
    let mut file = store.open_blob(digest)?;
    let n = file.read(&mut magic)?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => "application/vnd.oci.image.layer.v1.tar+gzip",
        [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.oci.image.layer.v1.tar+zstd",
        _ => "application/vnd.oci.image.layer.v1.tar",
    })
}

fn load_docker(
    store: &ContentStore,
    manifest: &[u8],
    blobs: &HashMap<String, Stored>,
    name_for: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let entries: Vec<Value> = serde_json::from_slice(manifest)
        .map_err(|e| ArchiveError::Invalid(format!("manifest.json: {e}")))?;
    let mut loaded = Vec::new();
    for entry in entries {
        let config_path = entry
            .get("Config")
            .and_then(Value::as_str)
            .ok_or_else(|| ArchiveError::Invalid("an entry has no Config".into()))?;
        let config = blob(blobs, config_path)?;
        let mut layers = Vec::new();
        for path in entry
            .get("Layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let path = path
                .as_str()
                .ok_or_else(|| ArchiveError::Invalid("a layer path is not a string".into()))?;
            let layer = blob(blobs, path)?;
            layers.push(json!({
                "mediaType": layer_media_type(store, &layer.digest)?,
                "digest": layer.digest.to_string(),
                "size": layer.size,
            }));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.digest.to_string(), "size": config.size},
            "layers": layers,
        })
        .to_string();
        let digest = store.put_bytes(manifest.as_bytes())?;
        let tags: Vec<String> = entry
            .get("RepoTags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        let names = if tags.is_empty() {
            vec![format!("sha256:{}", digest.hex())]
        } else {
            tags
        };
        for name in names {
            let name = name_for(&name).unwrap_or(name);
            store.tag(&ImageRef {
                name: name.clone(),
                digest: digest.clone(),
                media_type: OCI_MANIFEST.into(),
                size: manifest.len() as u64,
            })?;
            loaded.push(name);
        }
    }
    Ok(loaded)
}

fn load_oci(
    store: &ContentStore,
    index: &[u8],
    name_for: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let index: Value = serde_json::from_slice(index)
        .map_err(|e| ArchiveError::Invalid(format!("index.json: {e}")))?;
    let mut loaded = Vec::new();
    for entry in index
        .get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = entry
            .get("annotations")
            .and_then(|a| a.get(REF_NAME))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let digest: Digest = entry
            .get("digest")
            .and_then(Value::as_str)
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| ArchiveError::Invalid("an index entry has no valid digest".into()))?;
        if store.blob_size(&digest).is_none() {
            return Err(ArchiveError::Invalid(format!(
                "index.json names {digest}, which the archive does not hold"
            )));
        }
        let name = name_for(name).unwrap_or_else(|| name.to_string());
        store.tag(&ImageRef {
            name: name.clone(),
            digest,
            media_type: entry
                .get("mediaType")
                .and_then(Value::as_str)
                .unwrap_or(OCI_MANIFEST)
                .to_string(),
            size: entry.get("size").and_then(Value::as_u64).unwrap_or(0),
        })?;
        loaded.push(name);
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::super::{save, Format};
    use super::*;

    fn image(store: &ContentStore, name: &str, layer: &[u8]) -> ImageRef {
        let layer_digest = store.put_bytes(layer).unwrap();
        let config = store
            .put_bytes(
                format!(
                    "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"n\":{:?}}}",
                    name
                )
                .as_bytes(),
            )
            .unwrap();
        let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.to_string(), "size": 1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest.to_string(), "size": layer.len()}]})
        .to_string();
        let digest = store.put_bytes(manifest.as_bytes()).unwrap();
        let image = ImageRef {
            name: name.into(),
            digest,
            media_type: OCI_MANIFEST.into(),
            size: manifest.len() as u64,
        };
        store.tag(&image).unwrap();
        image
    }

    #[test]
    fn round_trips_in_both_formats() {
        let a = tempfile::tempdir().unwrap();
        let source = ContentStore::open(a.path()).unwrap();
        let one = image(&source, "localhost:5000/one:1", b"layer one");
        image(&source, "localhost:5000/two:1", b"layer two");
        let names = vec![
            "localhost:5000/one:1".to_string(),
            "localhost:5000/two:1".to_string(),
        ];

        let mut oci = Vec::new();
        save(&source, &names, Format::Oci, &mut oci).unwrap();
        let b = tempfile::tempdir().unwrap();
        let target = ContentStore::open(b.path()).unwrap();
        assert_eq!(load(&target, &oci[..], &|_| None).unwrap(), names);
        assert_eq!(
            target
                .resolve("localhost:5000/one:1")
                .unwrap()
                .unwrap()
                .digest,
            one.digest,
            "OCI keeps digests"
        );

        let mut docker = Vec::new();
        save(&source, &names[..1], Format::Docker, &mut docker).unwrap();
        let c = tempfile::tempdir().unwrap();
        let target = ContentStore::open(c.path()).unwrap();
        let loaded = load(&target, &docker[..], &|name| {
            Some(format!("renamed/{name}"))
        })
        .unwrap();
        assert_eq!(loaded, vec!["renamed/localhost:5000/one:1".to_string()]);
        let image = target.resolve(&loaded[0]).unwrap().unwrap();
        let manifest: Value =
            serde_json::from_slice(&target.read_blob(&image.digest).unwrap()).unwrap();
        let layer: Digest = manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(target.read_blob(&layer).unwrap(), b"layer one");
    }

    #[test]
    fn refuses_broken_archives() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        let manifest = br#"[{"Config":"missing.json","RepoTags":["x:1"],"Layers":[]}]"#;
        header.set_size(manifest.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "manifest.json", &manifest[..])
            .unwrap();
        let bytes = tar.into_inner().unwrap();
        assert!(matches!(
            load(&store, &bytes[..], &|_| None),
            Err(ArchiveError::Invalid(_))
        ));
        assert!(load(&store, &b"not a tar at all"[..], &|_| None).is_err());
        assert!(store.images().unwrap().is_empty());
    }
}
