//! Blob requests: `GET`/`HEAD` (with a `Range`, see [`super::ranges`]) and `DELETE`.

use super::ranges::parse_range;
use super::{empty, header};
use crate::digest::Digest;
use crate::error::Result;
use crate::names::RepoName;
use crate::store::Registry;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

pub async fn get(
    registry: &Registry,
    name: &RepoName,
    digest: &Digest,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response> {
    let size = registry.blob_size(name, digest).await?;
    let range = match header(headers, "range") {
        Some(value) => parse_range(value, size)?,
        None => None,
    };
    let mut out = vec![
        ("docker-content-digest", digest.to_string()),
        ("etag", format!("\"{digest}\"")),
        ("accept-ranges", "bytes".to_string()),
        ("content-type", "application/octet-stream".to_string()),
        ("cache-control", "max-age=31536000".to_string()),
    ];
    let status = match &range {
        Some(r) => {
            out.push((
                "content-range",
                format!("bytes {}-{}/{size}", r.start, r.end.saturating_sub(1)),
            ));
            out.push(("content-length", r.end.saturating_sub(r.start).to_string()));
            StatusCode::PARTIAL_CONTENT
        }
        None => {
            out.push(("content-length", size.to_string()));
            StatusCode::OK
        }
    };
    let mut response = empty(status, &out);
    let length = range
        .as_ref()
        .map_or(size, |r| r.end.saturating_sub(r.start));
    if !head && length > 0 {
        let stream = registry.read_blob(digest, range).await?;
        *response.body_mut() = Body::from_stream(stream);
    }
    Ok(response)
}

pub async fn delete(registry: &Registry, name: &RepoName, digest: &Digest) -> Result<Response> {
    registry.delete_blob(name, digest).await?;
    Ok(empty(
        StatusCode::ACCEPTED,
        &[("content-length", "0".to_string())],
    ))
}
