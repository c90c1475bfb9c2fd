//! The spec's workflows, run in order against one registry: push (which
//! also creates what the others read), pull, content discovery, referrers,
//! and content management (deletes, last).
//!
//! Shared here: the upload helpers every workflow uses.

pub mod discovery;
pub mod management;
pub mod pull;
pub mod push;
pub mod referrers;

use crate::client::{Client, Resp};
use crate::data::{Blob, DataSet, Manifest};
use crate::report::Report;
use bytes::Bytes;
use reqwest::Method;

/// One conformance run.
pub struct Run {
    pub client: Client,
    pub report: Report,
    /// The repository most checks use.
    pub repo: String,
    /// A second repository, for mounts.
    pub other_repo: String,
    pub data: DataSet,
}

/// Starts an upload session; returns its `Location`.
pub async fn start_upload(client: &Client, repo: &str) -> Result<String, String> {
    let resp = client
        .send(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            None,
        )
        .await?;
    resp.expect(&[202])?;
    Ok(resp.require_header("location")?.to_string())
}

/// Adds `digest=` to an upload location, which may already hold a query.
pub fn with_digest(location: &str, digest: &str) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}

/// Completes an upload at `location` with an empty `PUT ?digest=`.
pub async fn complete(client: &Client, location: &str, digest: &str) -> Result<Resp, String> {
    client
        .send(Method::PUT, &with_digest(location, digest), &[], None)
        .await
}

/// Monolithic upload: `POST ?digest=` with the body. A registry may answer
/// 202 instead of 201 (it does not take single-request uploads); the spec
/// then has the client `PUT` the body to the returned `Location`, as here.
pub async fn push_monolithic(client: &Client, repo: &str, blob: &Blob) -> Result<Resp, String> {
    monolithic_bytes(client, repo, &blob.digest(), blob.bytes.clone()).await
}

/// [`push_monolithic`] of arbitrary bytes under a claimed digest.
pub async fn monolithic_bytes(
    client: &Client,
    repo: &str,
    digest: &str,
    bytes: Bytes,
) -> Result<Resp, String> {
    let resp = client
        .send(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            &[("content-type", "application/octet-stream".into())],
            Some(bytes.clone()),
        )
        .await?;
    if resp.status != 202 {
        return Ok(resp);
    }
    let location = resp.require_header("location")?.to_string();
    client
        .send(
            Method::PUT,
            &with_digest(&location, digest),
            &[("content-type", "application/octet-stream".into())],
            Some(bytes),
        )
        .await
}

/// `POST`, then `PUT ?digest=` with the body.
pub async fn push_post_put(client: &Client, repo: &str, blob: &Blob) -> Result<Resp, String> {
    let location = start_upload(client, repo).await?;
    client
        .send(
            Method::PUT,
            &with_digest(&location, &blob.digest()),
            &[("content-type", "application/octet-stream".into())],
            Some(blob.bytes.clone()),
        )
        .await
}

/// `POST`, `PATCH` chunks with `Content-Range`, then `PUT ?digest=` with no body.
pub async fn push_chunked(
    client: &Client,
    repo: &str,
    blob: &Blob,
    chunk: usize,
) -> Result<Resp, String> {
    let mut location = start_upload(client, repo).await?;
    let mut offset = 0;
    for piece in blob.bytes.chunks(chunk) {
        let end = offset + piece.len() - 1;
        let resp = client
            .send(
                Method::PATCH,
                &location,
                &[
                    ("content-type", "application/octet-stream".into()),
                    ("content-range", format!("{offset}-{end}")),
                ],
                Some(Bytes::copy_from_slice(piece)),
            )
            .await?;
        resp.expect(&[202])?;
        let range = resp.require_header("range")?;
        if range != format!("0-{end}") {
            return Err(format!("after chunk {offset}-{end}, Range is {range:?}"));
        }
        location = resp.require_header("location")?.to_string();
        offset = end + 1;
    }
    complete(client, &location, &blob.digest()).await
}

/// `POST`, one `PATCH` with no `Content-Range` (a streamed upload), then `PUT ?digest=`.
pub async fn push_streamed(client: &Client, repo: &str, blob: &Blob) -> Result<Resp, String> {
    let location = start_upload(client, repo).await?;
    let resp = client
        .send(
            Method::PATCH,
            &location,
            &[("content-type", "application/octet-stream".into())],
            Some(blob.bytes.clone()),
        )
        .await?;
    resp.expect(&[202])?;
    let location = resp.require_header("location")?.to_string();
    complete(client, &location, &blob.digest()).await
}

/// `PUT` a manifest under a tag or digest reference.
pub async fn put_manifest(
    client: &Client,
    repo: &str,
    reference: &str,
    manifest: &Manifest,
) -> Result<Resp, String> {
    client
        .send(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", manifest.media_type.to_string())],
            Some(manifest.bytes.clone()),
        )
        .await
}

/// Fails with `what` when `condition` does not hold.
pub fn ensure(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what())
    }
}
