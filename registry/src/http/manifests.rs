//! Manifest requests: `GET`/`HEAD` with content negotiation, `PUT`, `DELETE`.

use super::{content_length, empty, header, Incoming};
use crate::error::{Code, RegistryError, Result};
use crate::names::{Reference, RepoName};
use crate::store::manifests::MAX_MANIFEST_BYTES;
use crate::store::Registry;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

pub async fn get(
    registry: &Registry,
    name: &RepoName,
    reference: &Reference,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response> {
    let manifest = registry.get_manifest(name, reference).await?;
    if !accepts(headers, &manifest.media_type) {
        return Err(RegistryError::new(
            Code::ManifestUnknown,
            format!(
                "manifest {reference} is of type {}, which the Accept header does not include",
                manifest.media_type
            ),
        ));
    }
    let mut response = empty(
        StatusCode::OK,
        &[
            ("content-type", manifest.media_type.clone()),
            ("content-length", manifest.bytes.len().to_string()),
            ("docker-content-digest", manifest.digest.to_string()),
            ("etag", format!("\"{}\"", manifest.digest)),
        ],
    );
    if !head {
        *response.body_mut() = Body::from(manifest.bytes);
    }
    Ok(response)
}

/// Whether the request's `Accept` headers admit `media_type`. No `Accept`,
/// or a wildcard, admits everything.
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    let mut listed = false;
    for value in headers.get_all("accept") {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let item = item.split(';').next().unwrap_or("").trim();
            if item.is_empty() {
                continue;
            }
            listed = true;
            if item == media_type || item == "*/*" || item == "application/*" {
                return true;
            }
        }
    }
    !listed
}

pub async fn put(
    registry: &Registry,
    name: &RepoName,
    reference: &Reference,
    incoming: Incoming,
) -> Result<Response> {
    let too_large = || {
        RegistryError::new(
            Code::ManifestInvalid,
            format!("manifest exceeds the {MAX_MANIFEST_BYTES}-byte limit"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    // `?tag=a&tag=b` (distribution-spec v1.1.1, "pushing manifests with
    // tags"): applied with the manifest, each answered with `OCI-Tag`.
    let tags: Vec<String> = incoming.query.all("tag").map(str::to_string).collect();
    let declared = content_length(&incoming.headers);
    let content_type = header(&incoming.headers, "content-type").map(str::to_string);
    let bytes = match read_limited(incoming.body, declared).await? {
        Some(bytes) => bytes,
        None => return Err(too_large()),
    };
    let pushed = registry
        .put_manifest(name, reference, content_type.as_deref(), bytes, &tags)
        .await?;
    let mut out = vec![
        (
            "location",
            format!("/v2/{name}/manifests/{}", pushed.digest),
        ),
        ("docker-content-digest", pushed.digest.to_string()),
        ("content-length", "0".to_string()),
    ];
    if let Some(subject) = pushed.subject {
        out.push(("oci-subject", subject));
    }
    let mut response = empty(StatusCode::CREATED, &out);
    for tag in &pushed.tags {
        if let Ok(value) = HeaderValue::from_str(tag) {
            response.headers_mut().append("oci-tag", value);
        }
    }
    Ok(response)
}

/// Past this, an oversize body is no longer read (the connection closes).
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Reads a manifest body of at most [`MAX_MANIFEST_BYTES`]; `None` when it
/// is larger. A larger body is read and discarded up to [`DRAIN_LIMIT`], so
/// the client gets the 413 instead of a broken pipe.
async fn read_limited(body: Body, declared: Option<u64>) -> Result<Option<Bytes>> {
    let mut stream = body.into_data_stream();
    let mut buffer = BytesMut::new();
    let mut seen = 0u64;
    if declared.is_some_and(|len| len > DRAIN_LIMIT) {
        return Ok(None);
    }
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            RegistryError::new(
                Code::ManifestInvalid,
                format!("reading the manifest body failed: {e}"),
            )
        })?;
        seen += chunk.len() as u64;
        if seen > DRAIN_LIMIT {
            return Ok(None);
        }
        if seen <= MAX_MANIFEST_BYTES as u64 {
            buffer.extend_from_slice(&chunk);
        }
    }
    Ok((seen <= MAX_MANIFEST_BYTES as u64).then(|| buffer.freeze()))
}

pub async fn delete(
    registry: &Registry,
    name: &RepoName,
    reference: &Reference,
) -> Result<Response> {
    registry.delete_manifest(name, reference).await?;
    Ok(empty(
        StatusCode::ACCEPTED,
        &[("content-length", "0".to_string())],
    ))
}
