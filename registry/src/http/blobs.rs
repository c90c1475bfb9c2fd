//! Blob requests: `GET`/`HEAD` (with single `Range`) and `DELETE`.

use super::{empty, header};
use crate::digest::Digest;
use crate::error::{Code, RegistryError, Result};
use crate::names::RepoName;
use crate::store::Registry;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::ops::Range;

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
                format!("bytes {}-{}/{size}", r.start, r.end - 1),
            ));
            out.push(("content-length", (r.end - r.start).to_string()));
            StatusCode::PARTIAL_CONTENT
        }
        None => {
            out.push(("content-length", size.to_string()));
            StatusCode::OK
        }
    };
    let mut response = empty(status, &out);
    let length = range.as_ref().map_or(size, |r| r.end - r.start);
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

/// Reads a single-range `Range` header. Multiple ranges and forms other
/// than bytes are ignored (the whole blob is served), as RFC 9110 allows;
/// a range starting past the end is 416.
fn parse_range(value: &str, size: u64) -> Result<Option<Range<u64>>> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = || {
        RegistryError::new(
            Code::RangeInvalid,
            format!("range {value:?} not satisfiable for a blob of {size} bytes"),
        )
        .with_header("content-range", format!("bytes */{size}"))
    };
    let range = match (first.trim(), last.trim()) {
        ("", "") => return Ok(None),
        ("", suffix) => {
            let Ok(n) = suffix.parse::<u64>() else {
                return Ok(None);
            };
            if n == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            size.saturating_sub(n)..size
        }
        (start, end) => {
            let Ok(start) = start.parse::<u64>() else {
                return Ok(None);
            };
            let end = if end.is_empty() {
                size.saturating_sub(1)
            } else {
                match end.parse::<u64>() {
                    Ok(end) if end >= start => end.min(size.saturating_sub(1)),
                    _ => return Ok(None),
                }
            };
            if start >= size {
                return Err(unsatisfiable());
            }
            start..end + 1
        }
    };
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=95-200", 100).unwrap(), Some(95..100));
        assert_eq!(parse_range("bytes=0-1,5-6", 100).unwrap(), None);
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=5-2", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=100-", 100).unwrap_err().status, 416);
        assert_eq!(parse_range("bytes=0-0", 0).unwrap_err().status, 416);
    }
}
