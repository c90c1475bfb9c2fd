//! Manifests: validated on push, stored byte for byte with the media type
//! they were pushed with, reachable by digest and by tag.
//!
//! A push is checked whole before anything is written ([`super::references`],
//! tag names), then written in an order where every prefix is a state the
//! registry may be in: the catalog entry first (the write most likely to
//! fail, and harmless alone: an empty repository), then the bytes
//! (content-addressed, invisible until linked), then the link, referrer
//! entry and tags as [`super::tagging`] publishes them, safe against a
//! concurrent delete. A push that fails part way leaves no tag or referrer
//! entry without its manifest.

use super::tagging::Publication;
use super::{layout, Registry};
use crate::digest::{Algorithm, Digest};
use crate::error::{Code, RegistryError, Result};
use crate::names::{valid_tag, Reference, RepoName};
use crate::storage::StorageError;
use bytes::Bytes;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde_json::{json, Value};

/// The largest manifest accepted, as the spec suggests.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: [&str; 3] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1",
];
/// Layer media types that may live elsewhere (their `urls`), not in this registry.
pub(super) const NON_DISTRIBUTABLE: [&str; 4] = [
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// A manifest as stored.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

/// What a successful push tells the client.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: Digest,
    pub subject: Option<String>,
    /// The tags applied from `?tag=` (each answered with an `OCI-Tag` header).
    pub tags: Vec<String>,
}

/// The parts of a manifest the registry acts on.
pub(super) enum Parsed {
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

impl Parsed {
    fn subject(&self) -> Option<&Descriptor> {
        match self {
            Parsed::Image(m) => m.subject().as_ref(),
            Parsed::Index(i) => i.subject().as_ref(),
        }
    }

    /// The referrer's `artifactType`: its own, else (for an image) its config's media type.
    fn artifact_type(&self) -> Option<String> {
        match self {
            Parsed::Image(m) => Some(
                m.artifact_type()
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| m.config().media_type().to_string()),
            ),
            Parsed::Index(i) => i.artifact_type().as_ref().map(|t| t.to_string()),
        }
    }

    fn annotations(&self) -> Option<Value> {
        let annotations = match self {
            Parsed::Image(m) => m.annotations().as_ref(),
            Parsed::Index(i) => i.annotations().as_ref(),
        };
        annotations.and_then(|a| serde_json::to_value(a).ok())
    }
}

fn invalid(message: impl Into<String>) -> RegistryError {
    RegistryError::new(Code::ManifestInvalid, message)
}

fn manifest_unknown(reference: &dyn std::fmt::Display) -> RegistryError {
    RegistryError::new(
        Code::ManifestUnknown,
        format!("manifest {reference} is unknown"),
    )
}

/// Decides the manifest's media type from the body's `mediaType` and the
/// request's `Content-Type`, refusing schema1 and contradictions.
fn media_type_of(body: &Value, content_type: Option<&str>) -> Result<String> {
    let declared = body.get("mediaType").and_then(Value::as_str);
    let header = content_type
        .map(|ct| ct.split(';').next().unwrap_or("").trim())
        .filter(|ct| {
            !ct.is_empty() && *ct != "application/json" && *ct != "application/octet-stream"
        });
    for candidate in [declared, header].into_iter().flatten() {
        if DOCKER_SCHEMA1.contains(&candidate) {
            return Err(invalid(
                "Docker schema1 manifests are deprecated and not accepted: push a schema2 or OCI manifest",
            ));
        }
    }
    if body.get("schemaVersion").and_then(Value::as_i64) == Some(1) {
        return Err(invalid(
            "Docker schema1 manifests are deprecated and not accepted: push a schema2 or OCI manifest",
        ));
    }
    match (declared, header) {
        (Some(d), Some(h)) if d != h => Err(invalid(format!(
            "the manifest's mediaType {d:?} differs from the Content-Type {h:?}"
        ))),
        (Some(d), _) => Ok(d.to_string()),
        (None, Some(h)) => Ok(h.to_string()),
        (None, None) => Err(invalid(
            "the manifest has no mediaType and the request no Content-Type",
        )),
    }
}

fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<(String, Parsed)> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    if !body.is_object() {
        return Err(invalid("manifest is not a JSON object"));
    }
    let media_type = media_type_of(&body, content_type)?;
    if body.get("schemaVersion").and_then(Value::as_i64) != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let detail =
        |e: serde_json::Error| invalid(format!("manifest of type {media_type} is malformed: {e}"));
    let parsed = match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => Parsed::Image(Box::new(serde_json::from_value(body).map_err(detail)?)),
        OCI_INDEX | DOCKER_LIST => Parsed::Index(Box::new(serde_json::from_value(body).map_err(detail)?)),
        other => {
            return Err(invalid(format!(
                "unsupported manifest media type {other:?} (expected {OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST} or {DOCKER_LIST})"
            )))
        }
    };
    Ok((media_type, parsed))
}

pub(super) fn descriptor_digest(descriptor: &Descriptor) -> Result<Digest> {
    let text = descriptor.digest().to_string();
    text.parse()
        .map_err(|e| invalid(format!("descriptor digest {text:?}: {e}")))
}

/// Tags one manifest push may apply with `?tag=`: each is a durable write
/// and an `OCI-Tag` header in the answer (hyper's clients read at most 100
/// headers; 100 tags made a response rctl's own client refused).
pub const MAX_TAGS_PER_PUSH: usize = 50;

/// The largest annotations (as JSON) copied into a referrer's entry; larger
/// ones are left out of the referrers listing (the manifest keeps them).
pub const MAX_REFERRER_ANNOTATIONS: usize = 16 * 1024;

impl Registry {
    /// Pushes a manifest under a tag or a digest, and under `tags` (the
    /// `?tag=` of the request) too.
    pub async fn put_manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
        tags: &[String],
    ) -> Result<Pushed> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(invalid(format!(
                "manifest exceeds the {MAX_MANIFEST_BYTES}-byte limit"
            ))
            .with_status(axum::http::StatusCode::PAYLOAD_TOO_LARGE));
        }
        if tags.len() > MAX_TAGS_PER_PUSH {
            return Err(RegistryError::new(
                Code::TagInvalid,
                format!("at most {MAX_TAGS_PER_PUSH} tags may be given with one manifest push"),
            ));
        }
        let mut applied: Vec<String> = Vec::new();
        for tag in tags {
            if !valid_tag(tag) {
                return Err(RegistryError::new(
                    Code::TagInvalid,
                    format!("invalid tag {tag:?}: a tag is [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}"),
                ));
            }
            if !applied.contains(tag) {
                applied.push(tag.clone());
            }
        }
        let digest = match reference {
            Reference::Digest(expected) => {
                let computed = Digest::of_bytes(expected.algorithm(), &bytes);
                if &computed != expected {
                    return Err(RegistryError::new(
                        Code::DigestInvalid,
                        format!("manifest digest is {computed}, not {expected}"),
                    ));
                }
                computed
            }
            Reference::Tag(_) => Digest::of_bytes(Algorithm::Sha256, &bytes),
        };
        let (media_type, parsed) = parse(&bytes, content_type)?;
        self.check_references(name, &parsed).await?;
        let referrer = match parsed.subject() {
            Some(descriptor) => {
                let subject = descriptor_digest(descriptor)?;
                let mut entry = json!({
                    "mediaType": media_type,
                    "digest": digest.to_string(),
                    "size": bytes.len(),
                });
                if let Some(artifact_type) = parsed.artifact_type() {
                    entry["artifactType"] = Value::String(artifact_type);
                }
                if let Some(annotations) = parsed.annotations() {
                    // Every referrer's entry is held in memory to answer the
                    // referrers API: huge annotations stay in the manifest.
                    if annotations.to_string().len() <= MAX_REFERRER_ANNOTATIONS {
                        entry["annotations"] = annotations;
                    }
                }
                Some((subject, Bytes::from(entry.to_string())))
            }
            None => None,
        };
        let mut all_tags = applied.clone();
        if let Reference::Tag(tag) = reference {
            if !all_tags.contains(tag) {
                all_tags.push(tag.clone());
            }
        }

        self.register_repository(name).await?;
        self.backend
            .write_if_absent(&layout::blob(&digest), bytes.clone())
            .await?;
        let subject = referrer.as_ref().map(|(subject, _)| subject.to_string());
        self.publish(&Publication {
            name,
            digest: &digest,
            media_type: &media_type,
            referrer,
            tags: &all_tags,
        })
        .await?;
        Ok(Pushed {
            digest,
            subject,
            tags: applied,
        })
    }

    /// Resolves a reference to the digest of a manifest of `name`.
    pub async fn resolve(&self, name: &RepoName, reference: &Reference) -> Result<Digest> {
        match reference {
            Reference::Digest(digest) => Ok(digest.clone()),
            Reference::Tag(tag) => match self.backend.read_all(&layout::tag(name, tag)).await {
                Ok(bytes) => String::from_utf8_lossy(&bytes).trim().parse().map_err(|_| {
                    RegistryError::new(Code::Unknown, format!("tag {tag} is corrupt"))
                }),
                Err(StorageError::NotFound(_)) => Err(manifest_unknown(reference)),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Fetches a manifest by tag or digest.
    pub async fn get_manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        let digest = self.resolve(name, reference).await?;
        let media_type = match self
            .backend
            .read_all(&layout::manifest_link(name, &digest))
            .await
        {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(StorageError::NotFound(_)) => return Err(manifest_unknown(reference)),
            Err(e) => return Err(e.into()),
        };
        let bytes = match self.backend.read_all(&layout::blob(&digest)).await {
            Ok(bytes) => bytes,
            Err(StorageError::NotFound(_)) => return Err(manifest_unknown(reference)),
            Err(e) => return Err(e.into()),
        };
        Ok(StoredManifest {
            digest,
            media_type,
            bytes,
        })
    }

    /// Deletes a tag (by tag) or a manifest with its tags and referrers entry (by digest).
    pub async fn delete_manifest(&self, name: &RepoName, reference: &Reference) -> Result<()> {
        self.require_delete()?;
        match reference {
            Reference::Tag(tag) => {
                if self.backend.delete(&layout::tag(name, tag)).await? {
                    Ok(())
                } else {
                    Err(manifest_unknown(reference))
                }
            }
            Reference::Digest(digest) => {
                // The manifest's bytes stay until garbage collection, so its
                // subject can be read even when an earlier delete removed
                // the link and was cut short before it swept the tags.
                let subject = match self.backend.read_all(&layout::blob(digest)).await {
                    Ok(bytes) => parse(&bytes, None).ok().and_then(|(_, parsed)| {
                        parsed.subject().and_then(|d| descriptor_digest(d).ok())
                    }),
                    Err(StorageError::NotFound(_)) => None,
                    Err(e) => return Err(e.into()),
                };
                if self.withdraw(name, digest, subject.as_ref()).await? {
                    Ok(())
                } else {
                    // Not (or no longer) here; what a cut-short delete left
                    // pointing at it was swept all the same.
                    Err(manifest_unknown(reference))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_rules() {
        let body = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST});
        assert_eq!(
            media_type_of(&body, Some(OCI_MANIFEST)).unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(media_type_of(&body, None).unwrap(), OCI_MANIFEST);
        assert_eq!(
            media_type_of(&body, Some("application/json")).unwrap(),
            OCI_MANIFEST
        );
        assert!(media_type_of(&body, Some(OCI_INDEX)).is_err());
        let bare = json!({"schemaVersion": 2});
        assert_eq!(media_type_of(&bare, Some(OCI_INDEX)).unwrap(), OCI_INDEX);
        assert!(media_type_of(&bare, None).is_err());
        let schema1 = json!({"schemaVersion": 1, "name": "x", "fsLayers": []});
        let err = media_type_of(&schema1, Some(DOCKER_SCHEMA1[1])).unwrap_err();
        assert!(err.message.contains("schema1"));
    }
}

/// Found by the `manifest` fuzz target: a push refused for its subject's
/// digest (an algorithm oci-spec reads but we do not verify) had already
/// written the manifest and its repository link, so the refused manifest
/// was served under its digest.
#[cfg(test)]
mod refused_push {
    use super::*;
    use crate::storage::fs::FsBackend;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_refused_subject_leaves_no_manifest_behind() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(
            Arc::new(FsBackend::open(dir.path()).unwrap()),
            Default::default(),
        );
        let name = RepoName::parse("fuzz/manifest").unwrap();
        let body = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": format!("sha384:{}", "a".repeat(96)), "size": 1},
        })
        .to_string();
        let digest = Digest::of_bytes(Algorithm::Sha256, body.as_bytes());
        let refused = registry
            .put_manifest(
                &name,
                &Reference::Tag("t".into()),
                None,
                Bytes::from(body),
                &[],
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code, Code::ManifestInvalid);
        let served = registry
            .get_manifest(&name, &Reference::Digest(digest))
            .await
            .unwrap_err();
        assert_eq!(served.code, Code::ManifestUnknown);
    }
}
