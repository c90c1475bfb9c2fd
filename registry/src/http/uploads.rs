//! Upload requests: `POST` (start, monolithic, mount), `GET` status,
//! `PATCH` chunk, `PUT` completion, `DELETE` cancel.

// Parses what clients send: every sum on a number from outside is checked.
#![deny(clippy::arithmetic_side_effects)]

use super::ranges::chunk_bounds;
use super::{body_stream, content_length, empty, Incoming};
use crate::action::parse_digest;
use crate::digest::Digest;
use crate::error::{Code, RegistryError, Result};
use crate::names::RepoName;
use crate::store::uploads::{range_header, upload_location};
use crate::store::Registry;
use axum::http::StatusCode;
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
/// mount with `?mount=` and `?from=` (falling back to a new upload), or a
/// new upload.
///
/// A mount names the repository it copies from; one without `from` is a
/// plain new upload (202), whatever the blob and the auth mode. Linking
/// any blob the registry holds would let a caller read what no repository
/// it may pull holds, and a 201 against a 202 would say which digests
/// exist. The dispatcher has already dropped `mount` when the caller may
/// not pull `from`.
pub async fn start(registry: &Registry, name: &RepoName, incoming: Incoming) -> Result<Response> {
    let query = &incoming.query;
    if let Some(mount) = query.get("mount") {
        let digest = parse_digest(mount)?;
        if let Some(from) = query.get("from") {
            let from = RepoName::parse(from).ok_or_else(|| {
                RegistryError::new(
                    Code::NameInvalid,
                    format!("invalid repository name {from:?} in from"),
                )
            })?;
            if registry.mount_blob(name, &digest, &from).await? {
                return Ok(created(name, &digest));
            }
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
