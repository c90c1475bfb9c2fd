//! Writing stored images as a docker-archive or an OCI archive.

use super::{ArchiveError, Format, Result};
use crate::store::refs::REF_NAME;
use crate::store::{ContentStore, ImageRef};
use roci::Digest;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::Write;

/// The parts of one image the archive needs.
struct Image {
    image: ImageRef,
    config: Digest,
    layers: Vec<Digest>,
}

fn digest_of(descriptor: &Value) -> Result<Digest> {
    descriptor
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| ArchiveError::Invalid("a descriptor has no valid digest".into()))
}

fn read_image(store: &ContentStore, name: &str) -> Result<Image> {
    let image = store
        .resolve(name)?
        .ok_or_else(|| ArchiveError::NotFound(name.to_string()))?;
    let manifest: Value = serde_json::from_slice(&store.read_blob(&image.digest)?)
        .map_err(|e| ArchiveError::Invalid(format!("manifest of {name}: {e}")))?;
    if manifest.get("manifests").is_some() {
        return Err(ArchiveError::Invalid(format!(
            "{name} is a multi-platform index; save one platform"
        )));
    }
    let config = digest_of(manifest.get("config").unwrap_or(&Value::Null))?;
    let layers = manifest
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(digest_of)
        .collect::<Result<Vec<_>>>()?;
    Ok(Image {
        image,
        config,
        layers,
    })
}

/// Appends a file from bytes in memory.
fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, path, bytes)?;
    Ok(())
}

/// Appends a stored blob, streamed from its file.
fn append_blob<W: Write>(
    tar: &mut tar::Builder<W>,
    store: &ContentStore,
    path: &str,
    digest: &Digest,
) -> Result<()> {
    let file = store.open_blob(digest)?;
    let mut header = tar::Header::new_ustar();
    header.set_size(file.metadata()?.len());
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, path, file)?;
    Ok(())
}

/// Writes the images named `names` to `out` as an archive of `format`.
pub fn save(store: &ContentStore, names: &[String], format: Format, out: impl Write) -> Result<()> {
    let images = names
        .iter()
        .map(|name| read_image(store, name))
        .collect::<Result<Vec<_>>>()?;
    let mut tar = tar::Builder::new(out);
    let mut written = HashSet::new();
    match format {
        Format::Docker => {
            let mut entries = Vec::new();
            for image in &images {
                let config_path = format!("{}.json", image.config.hex());
                if written.insert(config_path.clone()) {
                    append_blob(&mut tar, store, &config_path, &image.config)?;
                }
                let mut layers = Vec::new();
                for layer in &image.layers {
                    let path = format!("{}/layer.tar", layer.hex());
                    if written.insert(path.clone()) {
                        append_blob(&mut tar, store, &path, layer)?;
                    }
                    layers.push(path);
                }
                entries.push(json!({ "Config": config_path, "RepoTags": [image.image.name], "Layers": layers }));
            }
            append_bytes(
                &mut tar,
                "manifest.json",
                Value::Array(entries).to_string().as_bytes(),
            )?;
        }
        Format::Oci => {
            append_bytes(
                &mut tar,
                "oci-layout",
                b"{\"imageLayoutVersion\":\"1.0.0\"}",
            )?;
            let mut manifests = Vec::new();
            for image in &images {
                for digest in std::iter::once(&image.image.digest)
                    .chain(std::iter::once(&image.config))
                    .chain(&image.layers)
                {
                    let path = format!("blobs/{}/{}", digest.algorithm().name(), digest.hex());
                    if written.insert(path.clone()) {
                        append_blob(&mut tar, store, &path, digest)?;
                    }
                }
                manifests.push(json!({
                    "mediaType": image.image.media_type,
                    "digest": image.image.digest.to_string(),
                    "size": image.image.size,
                    "annotations": { REF_NAME: image.image.name },
                }));
            }
            let index = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": manifests,
            });
            append_bytes(&mut tar, "index.json", index.to_string().as_bytes())?;
        }
    }
    tar.into_inner()?.flush()?;
    Ok(())
}
