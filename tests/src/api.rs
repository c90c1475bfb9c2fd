//! Registry requests the tests repeat: a monolithic blob push and a blob
//! fetch, each asserting the status a working registry gives.

use bytes::Bytes;

/// Pushes `data` to `repo` with `POST ?digest=`, asserts 201, returns the digest.
pub async fn push_blob(client: &reqwest::Client, base: &str, repo: &str, data: &[u8]) -> String {
    let digest = crate::sha256(data);
    let r = client
        .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={digest}"))
        .body(data.to_vec())
        .send()
        .await
        .expect("push request");
    assert_eq!(r.status(), 201, "push to {repo}: {:?}", r.text().await);
    digest
}

/// Fetches a blob, asserts 200, returns its bytes.
pub async fn fetch_blob(client: &reqwest::Client, base: &str, repo: &str, digest: &str) -> Bytes {
    let r = client
        .get(format!("{base}/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .expect("fetch request");
    assert_eq!(r.status(), 200, "fetch {digest} from {repo}");
    r.bytes().await.expect("blob body")
}

/// A layer tar holding one file, `data`, with `contents` (deterministic:
/// the same contents give the same bytes).
pub fn tar_layer(contents: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    builder
        .append_data(&mut header, "data", contents)
        .expect("tar entry");
    builder.into_inner().expect("tar")
}

/// A layer as pushed: the blob, its media type, and its DiffID (the
/// digest of the tar inside, which is the blob itself when uncompressed).
pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: &'static str,
    pub diff_id: String,
}

impl Layer {
    /// An uncompressed tar layer.
    pub fn tar(tar: Vec<u8>) -> Layer {
        Layer {
            diff_id: crate::sha256(&tar),
            blob: tar,
            media_type: "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// Pushes `layers`, the image config `config` (its `rootfs` filled in
/// from the layers) and an OCI manifest naming them as `repo:tag`;
/// returns the manifest's digest and bytes.
pub async fn push_oci_image(
    client: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    mut config: serde_json::Value,
    layers: &[Layer],
) -> (String, Vec<u8>) {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": diff_ids});
    let config = config.to_string().into_bytes();
    let config_digest = push_blob(client, base, repo, &config).await;
    let mut descriptors = Vec::new();
    for layer in layers {
        let digest = push_blob(client, base, repo, &layer.blob).await;
        descriptors.push(serde_json::json!({
            "mediaType": layer.media_type, "digest": digest, "size": layer.blob.len()
        }));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descriptors,
    });
    let bytes = serde_json::to_vec(&manifest).expect("manifest");
    put_manifest(
        client,
        base,
        repo,
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        &bytes,
    )
    .await;
    (crate::sha256(&bytes), bytes)
}

/// Pushes an image for `arch` whose layers are tars made of `contents`
/// by [`tar_layer`]; returns the manifest's digest and bytes.
pub async fn push_image(
    client: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    arch: &str,
    contents: &[Vec<u8>],
) -> (String, Vec<u8>) {
    let layers: Vec<Layer> = contents.iter().map(|c| Layer::tar(tar_layer(c))).collect();
    let config = serde_json::json!({
        "architecture": arch, "os": "linux", "created": "2026-11-23T10:00:00Z",
        "config": {"Cmd": ["/bin/sh"]},
    });
    push_oci_image(client, base, repo, tag, config, &layers).await
}

/// Puts a manifest and asserts 201.
pub async fn put_manifest(
    client: &reqwest::Client,
    base: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) {
    let r = client
        .put(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("content-type", media_type)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("manifest request");
    assert_eq!(
        r.status(),
        201,
        "manifest {repo}:{reference}: {:?}",
        r.text().await
    );
}

/// Puts an OCI index of manifests already in `repo`, each with its platform
/// (`os/arch[/variant]`); returns the index digest and bytes.
pub async fn push_index(
    client: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    entries: &[(&str, &str)],
) -> (String, Vec<u8>) {
    let mut manifests = Vec::new();
    for (digest, platform) in entries {
        let r = client
            .head(format!("{base}/v2/{repo}/manifests/{digest}"))
            .send()
            .await
            .expect("manifest HEAD");
        assert_eq!(r.status(), 200, "{digest} not in {repo}");
        let size: u64 = r.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let parts: Vec<&str> = platform.split('/').collect();
        let mut platform = serde_json::json!({"os": parts[0], "architecture": parts[1]});
        if let Some(variant) = parts.get(2) {
            platform["variant"] = serde_json::json!(variant);
        }
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size, "platform": platform,
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests,
    });
    let bytes = serde_json::to_vec(&index).expect("index");
    put_manifest(
        client,
        base,
        repo,
        tag,
        "application/vnd.oci.image.index.v1+json",
        &bytes,
    )
    .await;
    (crate::sha256(&bytes), bytes)
}
