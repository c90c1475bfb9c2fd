//! Upload requests: `POST` (start, monolithic, mount), `GET` status,
//! `PATCH` chunk, `PUT` completion, `DELETE` cancel.

use super::{body_stream, content_length, empty, header, Incoming};
use crate::action::parse_digest;
use crate::digest::Digest;
use crate::error::{Code, RegistryError, Result};
use crate::names::RepoName;
use crate::store::uploads::{range_header, upload_location, ChunkBounds};
use crate::store::Registry;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

fn created(name: &RepoName, digest: &Digest) -> Response {
    empty(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{name}/blobs/{digest}")),
            ("docker-content-digest", digest.to_string()),
            ("content-length", "0".to_string()),
        ],
    )
}

fn in_progress(status: StatusCode, name: &RepoName, id: &str, size: u64) -> Response {
    empty(
        status,
        &[
            ("location", upload_location(name, id)),
            ("range", range_header(size)),
            ("docker-upload-uuid", id.to_string()),
            ("content-length", "0".to_string()),
        ],
    )
}

/// `POST /v2/<name>/blobs/uploads/`: a monolithic upload with `?digest=`, a
/// mount with `?mount=` (falling back to a new upload), or a new upload.
pub async fn start(registry: &Registry, name: &RepoName, incoming: Incoming) -> Result<Response> {
    let query = &incoming.query;
    if let Some(mount) = query.get("mount") {
        let digest = parse_digest(mount)?;
        let from = match query.get("from") {
            Some(from) => Some(RepoName::parse(from).ok_or_else(|| {
                RegistryError::new(
                    Code::NameInvalid,
                    format!("invalid repository name {from:?} in from"),
                )
            })?),
            None => None,
        };
        if registry.mount_blob(name, &digest, from.as_ref()).await? {
            return Ok(created(name, &digest));
        }
    } else if let Some(digest) = query.get("digest") {
        let digest = parse_digest(digest)?;
        registry
            .put_blob(name, &digest, body_stream(incoming.body))
            .await?;
        return Ok(created(name, &digest));
    }
    let id = registry.start_upload(name).await?;
    Ok(in_progress(StatusCode::ACCEPTED, name, &id, 0))
}

/// `GET /v2/<name>/blobs/uploads/<id>`: how much has arrived.
pub async fn status(registry: &Registry, name: &RepoName, id: &str) -> Result<Response> {
    let size = registry.upload_size(name, id).await?;
    Ok(in_progress(StatusCode::NO_CONTENT, name, id, size))
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`: one chunk, or the whole stream.
pub async fn patch(
    registry: &Registry,
    name: &RepoName,
    id: &str,
    incoming: Incoming,
) -> Result<Response> {
    let bounds = chunk_bounds(&incoming.headers)?;
    let size = registry
        .append_chunk(name, id, bounds, body_stream(incoming.body))
        .await?;
    Ok(in_progress(StatusCode::ACCEPTED, name, id, size))
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: completes the upload.
pub async fn complete(
    registry: &Registry,
    name: &RepoName,
    id: &str,
    incoming: Incoming,
) -> Result<Response> {
    let query = &incoming.query;
    let digest = match query.get("digest") {
        Some(digest) => parse_digest(digest)?,
        None => {
            return Err(RegistryError::new(
                Code::DigestInvalid,
                "the digest query parameter is required",
            ));
        }
    };
    let bounds = chunk_bounds(&incoming.headers)?;
    let has_body = content_length(&incoming.headers).is_none_or(|len| len > 0);
    let last_chunk = has_body.then(|| (bounds, body_stream(incoming.body)));
    registry
        .complete_upload(name, id, &digest, last_chunk)
        .await?;
    Ok(created(name, &digest))
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`.
pub async fn cancel(registry: &Registry, name: &RepoName, id: &str) -> Result<Response> {
    registry.cancel_upload(name, id).await?;
    Ok(empty(
        StatusCode::NO_CONTENT,
        &[("content-length", "0".to_string())],
    ))
}

/// Reads `Content-Range: <start>-<end>` (also `bytes <start>-<end>/<total>`)
/// and `Content-Length`.
fn chunk_bounds(headers: &HeaderMap) -> Result<ChunkBounds> {
    let length = content_length(headers);
    let range = match header(headers, "content-range") {
        None => None,
        Some(value) => {
            let spec = value.trim().trim_start_matches("bytes").trim();
            let spec = spec.split('/').next().unwrap_or("");
            let parsed = spec.split_once('-').and_then(|(a, b)| {
                Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?))
            });
            match parsed {
                Some((start, end)) if end >= start => Some((start, end)),
                _ => {
                    return Err(RegistryError::new(
                        Code::RangeInvalid,
                        format!("invalid Content-Range {value:?}"),
                    ))
                }
            }
        }
    };
    Ok(ChunkBounds { range, length })
}
