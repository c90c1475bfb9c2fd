//! The data sets: blobs and manifests chosen to cover what registries get
//! wrong (an image, a Docker schema2 image, an index, an index of indexes,
//! artifacts with `artifactType` and the empty config, `subject` present and
//! missing, `data` fields, non-distributable layers with `urls`, unknown
//! fields, no layers, the zero-length blob, and sha512 throughout).

use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256, Sha512};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const SBOM_TYPE: &str = "application/vnd.conformance.sbom.v1+json";
pub const SIGNATURE_TYPE: &str = "application/vnd.conformance.signature.v1+json";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(bytes)))
}

/// Deterministic pseudo-random bytes (xorshift), different for each seed.
pub fn random_bytes(seed: u64, len: usize) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// Standard base64, for descriptors' `data` fields.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Bytes with a media type, addressed by sha256 or sha512: a blob, or a
/// manifest's exact bytes.
#[derive(Clone)]
pub struct Content {
    pub bytes: Bytes,
    pub media_type: &'static str,
    pub sha512: bool,
}

/// A blob of the data set.
pub type Blob = Content;
/// A manifest of the data set (its bytes are what is pushed and must come back).
pub type Manifest = Content;

impl Content {
    pub fn new(bytes: Bytes, media_type: &'static str) -> Content {
        Content {
            bytes,
            media_type,
            sha512: false,
        }
    }

    /// A manifest from JSON, pretty-printed on purpose: the registry must
    /// keep these exact bytes.
    fn from_json(value: Value, media_type: &'static str) -> Content {
        let bytes = serde_json::to_vec_pretty(&value).unwrap_or_default();
        Content::new(Bytes::from(bytes), media_type)
    }

    pub fn digest(&self) -> String {
        if self.sha512 {
            sha512(&self.bytes)
        } else {
            sha256(&self.bytes)
        }
    }

    pub fn descriptor(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest(), "size": self.bytes.len() })
    }
}

/// Every blob and manifest of one run; `seed` makes them unique to the run.
pub struct DataSet {
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub docker_config: Blob,
    pub empty_config: Blob,
    pub artifact_blob: Blob,
    pub zero: Blob,
    pub nondist_layer: Blob,
    pub sha512_config: Blob,
    pub sha512_layer: Blob,
    pub image: Manifest,
    pub docker_image: Manifest,
    pub index: Manifest,
    pub nested_index: Manifest,
    pub no_layers: Manifest,
    pub nondist_image: Manifest,
    pub sha512_image: Manifest,
    pub sbom: Manifest,
    pub signature: Manifest,
    pub orphan_referrer: Manifest,
    pub missing_subject: String,
}

impl DataSet {
    pub fn new(seed: u64) -> DataSet {
        let config_json = json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Env": [format!("SEED={seed}")]}
        });
        let config = Blob::new(Bytes::from(config_json.to_string()), OCI_CONFIG);
        let layers = vec![
            Blob::new(random_bytes(seed, 3 * 1024 * 1024 + 17), OCI_LAYER),
            Blob::new(random_bytes(seed + 1, 2 * 1024 * 1024 + 5), OCI_LAYER),
        ];
        let docker_config = Blob::new(
            Bytes::from(json!({"architecture": "arm64", "os": "linux", "seed": seed}).to_string()),
            DOCKER_CONFIG,
        );
        let empty_config = Blob::new(Bytes::from_static(b"{}"), OCI_EMPTY);
        let artifact_blob = Blob::new(
            Bytes::from(json!({"sbom": "conformance", "seed": seed}).to_string()),
            "application/json",
        );
        let zero = Blob::new(Bytes::new(), OCI_LAYER);
        let nondist_layer = Blob::new(random_bytes(seed + 2, 4096), OCI_NONDIST);
        let mut sha512_config = Blob::new(
            Bytes::from(
                json!({"architecture": "amd64", "os": "linux", "sha512": seed}).to_string(),
            ),
            OCI_CONFIG,
        );
        sha512_config.sha512 = true;
        let mut sha512_layer = Blob::new(random_bytes(seed + 3, 1024 * 1024 + 3), OCI_LAYER);
        sha512_layer.sha512 = true;

        let image = Manifest::from_json(
            json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.descriptor(),
                "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
                "annotations": {"org.opencontainers.image.title": "conformance"},
                "x-unknown-field": {"kept": ["byte", "for", "byte"]}
            }),
            OCI_MANIFEST,
        );
        let docker_image = Manifest::from_json(
            json!({
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": DOCKER_CONFIG, "digest": docker_config.digest(), "size": docker_config.bytes.len()},
                "layers": [{"mediaType": DOCKER_LAYER, "digest": layers[0].digest(), "size": layers[0].bytes.len()}]
            }),
            DOCKER_MANIFEST,
        );
        let mut amd64 = image.descriptor();
        amd64["platform"] = json!({"architecture": "amd64", "os": "linux"});
        let mut arm64 = docker_image.descriptor();
        arm64["platform"] = json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
        let index = Manifest::from_json(
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [amd64, arm64]}),
            OCI_INDEX,
        );
        let nested_index = Manifest::from_json(
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [index.descriptor()],
                   "annotations": {"conformance": "index of indexes"}}),
            OCI_INDEX,
        );
        let mut empty_with_data = empty_config.descriptor();
        empty_with_data["data"] = json!(base64(b"{}"));
        let no_layers = Manifest::from_json(
            json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": empty_with_data.clone(), "layers": []}),
            OCI_MANIFEST,
        );
        let mut nondist = nondist_layer.descriptor();
        nondist["urls"] = json!(["https://conformance.invalid/layer.tar.gz"]);
        let nondist_image = Manifest::from_json(
            json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
                   "layers": [layers[0].descriptor(), nondist]}),
            OCI_MANIFEST,
        );
        let mut sha512_image = Manifest::from_json(
            json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": sha512_config.descriptor(),
                   "layers": [sha512_layer.descriptor()]}),
            OCI_MANIFEST,
        );
        sha512_image.sha512 = true;
        let mut artifact_layer = artifact_blob.descriptor();
        artifact_layer["data"] = json!(base64(&artifact_blob.bytes));
        let sbom = Manifest::from_json(
            json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SBOM_TYPE,
                   "config": empty_with_data.clone(), "layers": [artifact_layer],
                   "subject": image.descriptor(),
                   "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}}),
            OCI_MANIFEST,
        );
        // No artifactType: the referrers API must report the config's media type.
        let signature_config = Blob::new(Bytes::from_static(b"{}"), SIGNATURE_TYPE);
        let signature = Manifest::from_json(
            json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                   "config": {"mediaType": SIGNATURE_TYPE, "digest": signature_config.digest(), "size": 2},
                   "layers": [empty_config.descriptor()],
                   "subject": image.descriptor()}),
            OCI_MANIFEST,
        );
        let missing_subject = sha256(&random_bytes(seed + 99, 64));
        let orphan_referrer = Manifest::from_json(
            json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SBOM_TYPE,
                   "config": empty_with_data, "layers": [empty_config.descriptor()],
                   "subject": {"mediaType": OCI_MANIFEST, "digest": missing_subject, "size": 1234}}),
            OCI_MANIFEST,
        );
        DataSet {
            config,
            layers,
            docker_config,
            empty_config,
            artifact_blob,
            zero,
            nondist_layer,
            sha512_config,
            sha512_layer,
            image,
            docker_image,
            index,
            nested_index,
            no_layers,
            nondist_image,
            sha512_image,
            sbom,
            signature,
            orphan_referrer,
            missing_subject,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"{}"), "e30=");
    }

    #[test]
    fn data_sets_differ_by_seed() {
        assert_ne!(
            DataSet::new(1).image.digest(),
            DataSet::new(2).image.digest()
        );
        assert!(DataSet::new(1).sha512_image.digest().starts_with("sha512:"));
    }
}
