//! Listing requests: tags, catalog (both paginated with `n`/`last` and an
//! RFC 5988 `Link`), and referrers.

use super::query::Query;
use crate::digest::Digest;
use crate::error::{Code, RegistryError, Result};
use crate::names::RepoName;
use crate::store::manifests::OCI_INDEX;
use crate::store::Registry;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Reads `n` and `last`; a bad `n` is the spec's 400.
fn pagination(query: &Query) -> Result<(Option<usize>, Option<String>)> {
    let n = match query.get("n") {
        None | Some("") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            RegistryError::new(Code::Unsupported, format!("invalid page size n={n:?}"))
                .with_status(StatusCode::BAD_REQUEST)
        })?),
    };
    let last = query
        .get("last")
        .filter(|l| !l.is_empty())
        .map(str::to_string);
    Ok((n, last))
}

fn json_response(body: serde_json::Value, link: Option<String>) -> Response {
    let mut response = (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(link) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert("link", link);
    }
    response
}

fn next_link(path: &str, n: Option<usize>, names: &[String], more: bool) -> Option<String> {
    let (Some(n), true, Some(last)) = (n, more, names.last()) else {
        return None;
    };
    Some(format!("<{path}?n={n}&last={last}>; rel=\"next\""))
}

pub async fn tags(registry: &Registry, name: &RepoName, query: &Query) -> Result<Response> {
    let (n, last) = pagination(query)?;
    if !registry.repository_exists(name).await? {
        return Err(RegistryError::new(
            Code::NameUnknown,
            format!("repository {name} is unknown"),
        ));
    }
    let (tags, more) = registry.tags(name, last.as_deref(), n).await?;
    let link = next_link(&format!("/v2/{name}/tags/list"), n, &tags, more);
    Ok(json_response(
        json!({ "name": name.as_str(), "tags": tags }),
        link,
    ))
}

pub async fn catalog(registry: &Registry, query: &Query) -> Result<Response> {
    let (n, last) = pagination(query)?;
    let (repositories, more) = registry.catalog(last.as_deref(), n).await?;
    let link = next_link("/v2/_catalog", n, &repositories, more);
    Ok(json_response(json!({ "repositories": repositories }), link))
}

pub async fn referrers(
    registry: &Registry,
    name: &RepoName,
    subject: &Digest,
    query: &Query,
) -> Result<Response> {
    let artifact_type = query.get("artifactType").filter(|t| !t.is_empty());
    let manifests = registry.referrers(name, subject, artifact_type).await?;
    let body = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    let mut response = (
        StatusCode::OK,
        [("content-type", OCI_INDEX)],
        body.to_string(),
    )
        .into_response();
    if artifact_type.is_some() {
        response.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}
