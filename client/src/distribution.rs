//! The distribution API, as calls on one registry host: manifests, blobs
//! (ranged reads, uploads, mounts), tags and the catalog (following `Link`
//! pagination), and deletes. Each call names the token scope it needs.
//!
//! - [`upload`]: blob uploads that resume after a failure, or are cancelled.

mod upload;

pub use upload::Source;

use crate::transport::{Body, Request, Transport, TransportError};
use bytes::Bytes;
use reqwest::{Method, Response};
use roci::Digest;
use serde_json::Value;

/// Manifest media types rctl accepts, in order of preference.
pub const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The registry answered with an error (its code and message when it gave them).
    #[error("{what}: {status}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Registry {
        what: String,
        status: u16,
        detail: Option<String>,
    },
    #[error("{what}: {message}")]
    Protocol { what: String, message: String },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Registry { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A manifest as fetched.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: Digest,
}

impl FetchedManifest {
    pub fn json(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.bytes).map_err(|e| ApiError::Protocol {
            what: format!("manifest {}", self.digest),
            message: format!("not JSON: {e}"),
        })
    }
}

/// Turns an error answer into an [`ApiError`] carrying the spec's code and message.
async fn refused(what: String, response: Response) -> ApiError {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    let detail = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        let first = v.get("errors")?.get(0)?;
        Some(format!(
            "{}: {}",
            first.get("code")?.as_str().unwrap_or("?"),
            first.get("message").and_then(Value::as_str).unwrap_or("")
        ))
    });
    ApiError::Registry {
        what,
        status,
        detail,
    }
}

/// The distribution API of one registry host.
pub struct Registry<'a> {
    transport: &'a Transport,
    host: String,
    base: String,
    uploads: upload::OpenUploads,
}

fn pull_scope(repo: &str) -> Option<String> {
    Some(format!("repository:{repo}:pull"))
}

fn push_scope(repo: &str) -> Option<String> {
    Some(format!("repository:{repo}:pull,push"))
}

impl<'a> Registry<'a> {
    pub fn new(transport: &'a Transport, host: &str) -> Registry<'a> {
        Registry {
            transport,
            host: host.to_string(),
            base: transport.base_url(host),
            uploads: upload::OpenUploads::default(),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The retry policy of the transport the calls go through.
    pub fn retry_policy(&self) -> crate::transport::retry::RetryPolicy {
        self.transport.retry_policy()
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Fetches a manifest by tag or digest, verifying its digest.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<FetchedManifest, ApiError> {
        let what = format!("manifest {}/{repo}:{reference}", self.host);
        let request = Request::new(
            Method::GET,
            self.url(&format!("/v2/{repo}/manifests/{reference}")),
            pull_scope(repo),
        )
        .header("accept", MANIFEST_TYPES.join(", "));
        let response = self.transport.send(&request).await?;
        if !response.status().is_success() {
            return Err(refused(what, response).await);
        }
        let media_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let header_digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response.bytes().await.map_err(|e| ApiError::Protocol {
            what: what.clone(),
            message: e.to_string(),
        })?;
        let expected: Option<Digest> = match reference.parse::<Digest>() {
            Ok(digest) => Some(digest),
            Err(_) => header_digest.and_then(|d| d.parse().ok()),
        };
        let algorithm = expected
            .as_ref()
            .map(Digest::algorithm)
            .unwrap_or(roci::Algorithm::Sha256);
        let digest = Digest::of_bytes(algorithm, &bytes);
        if let Some(expected) = expected {
            if expected != digest {
                return Err(ApiError::Protocol {
                    what,
                    message: format!("content digest {digest} is not {expected}"),
                });
            }
        }
        let media_type = if media_type.is_empty() || media_type == "application/json" {
            serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.get("mediaType")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or(media_type)
        } else {
            media_type
        };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Pushes a manifest; returns the digest the registry reports.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest, ApiError> {
        let what = format!("pushing manifest {}/{repo}:{reference}", self.host);
        let request = Request::new(
            Method::PUT,
            self.url(&format!("/v2/{repo}/manifests/{reference}")),
            push_scope(repo),
        )
        .header("content-type", media_type)
        .body(Body::Bytes(bytes.clone()));
        let response = self.transport.send(&request).await?;
        if response.status() != 201 && !response.status().is_success() {
            return Err(refused(what, response).await);
        }
        let computed = Digest::of_bytes(roci::Algorithm::Sha256, &bytes);
        Ok(response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|d| d.parse().ok())
            .unwrap_or(computed))
    }

    /// Deletes a manifest (by digest) or a tag.
    pub async fn delete_manifest(&self, repo: &str, reference: &str) -> Result<(), ApiError> {
        let what = format!("deleting {}/{repo}:{reference}", self.host);
        let scope = Some(format!("repository:{repo}:delete"));
        let request = Request::new(
            Method::DELETE,
            self.url(&format!("/v2/{repo}/manifests/{reference}")),
            scope,
        );
        let response = self.transport.send(&request).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(refused(what, response).await)
        }
    }

    /// The size of a blob if the repository has it.
    pub async fn blob_size(&self, repo: &str, digest: &Digest) -> Result<Option<u64>, ApiError> {
        let request = Request::new(
            Method::HEAD,
            self.url(&format!("/v2/{repo}/blobs/{digest}")),
            pull_scope(repo),
        );
        let response = self.transport.send(&request).await?;
        match response.status().as_u16() {
            200 => Ok(response.content_length().or_else(|| {
                response
                    .headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
            })),
            404 => Ok(None),
            _ => Err(refused(format!("checking blob {digest} in {repo}"), response).await),
        }
    }

    /// Starts reading a blob from `offset` (a `Range` request past 0).
    pub async fn blob(
        &self,
        repo: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<Response, ApiError> {
        let mut request = Request::new(
            Method::GET,
            self.url(&format!("/v2/{repo}/blobs/{digest}")),
            pull_scope(repo),
        );
        if offset > 0 {
            request = request.header("range", format!("bytes={offset}-"));
        }
        let response = self.transport.send(&request).await?;
        let expected = if offset > 0 { 206 } else { 200 };
        if response.status().as_u16() == expected {
            Ok(response)
        } else {
            Err(refused(format!("fetching blob {digest} from {repo}"), response).await)
        }
    }

    /// Opens an upload session in `repo`; returns its `Location`.
    async fn open_upload(&self, repo: &str, what: &str) -> Result<String, ApiError> {
        let start = Request::new(
            Method::POST,
            self.url(&format!("/v2/{repo}/blobs/uploads/")),
            push_scope(repo),
        );
        let response = self.transport.send(&start).await?;
        if response.status() != 202 {
            return Err(refused(what.to_string(), response).await);
        }
        self.location(what, &response)
    }

    /// The `PUT` that completes an upload at `location` as `digest`.
    fn completion(&self, repo: &str, location: &str, digest: &Digest) -> Request {
        let separator = if location.contains('?') { '&' } else { '?' };
        Request::new(
            Method::PUT,
            self.url(&format!("{location}{separator}digest={digest}")),
            push_scope(repo),
        )
    }

    /// Mounts a blob from another repository of this registry; `false`
    /// when the registry would not (it then opened an upload, cancelled here).
    pub async fn mount_blob(
        &self,
        repo: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, ApiError> {
        let what = format!("mounting blob {digest} into {repo}");
        let scope = Some(format!(
            "repository:{repo}:pull,push repository:{from}:pull"
        ));
        let request = Request::new(
            Method::POST,
            self.url(&format!(
                "/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"
            )),
            scope.clone(),
        );
        let response = self.transport.send(&request).await?;
        match response.status().as_u16() {
            201 => Ok(true),
            202 => {
                if let Ok(location) = self.location(&what, &response) {
                    let cancel = Request::new(Method::DELETE, self.url(&location), scope);
                    let _ = self.transport.send(&cancel).await;
                }
                Ok(false)
            }
            _ => Err(refused(what, response).await),
        }
    }

    fn location(&self, what: &str, response: &Response) -> Result<String, ApiError> {
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| ApiError::Protocol {
                what: what.to_string(),
                message: "no Location header".into(),
            })
    }

    /// Every tag of `repo`, following `Link` pages of `page_size`.
    pub async fn tags(&self, repo: &str, page_size: usize) -> Result<Vec<String>, ApiError> {
        self.paged(
            &format!("/v2/{repo}/tags/list?n={page_size}"),
            "tags",
            pull_scope(repo),
            &format!("tags of {repo}"),
        )
        .await
    }

    /// Every repository, following `Link` pages of `page_size`.
    pub async fn catalog(&self, page_size: usize) -> Result<Vec<String>, ApiError> {
        let scope = Some("registry:catalog:*".to_string());
        self.paged(
            &format!("/v2/_catalog?n={page_size}"),
            "repositories",
            scope,
            "catalog",
        )
        .await
    }

    async fn paged(
        &self,
        first: &str,
        field: &str,
        scope: Option<String>,
        what: &str,
    ) -> Result<Vec<String>, ApiError> {
        let mut items = Vec::new();
        let mut next = Some(first.to_string());
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            if pages > 100_000 {
                return Err(ApiError::Protocol {
                    what: what.to_string(),
                    message: "pagination does not end".into(),
                });
            }
            let response = self
                .transport
                .send(&Request::new(Method::GET, self.url(&path), scope.clone()))
                .await?;
            if !response.status().is_success() {
                return Err(refused(what.to_string(), response).await);
            }
            next = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|link| link.trim().strip_prefix('<'))
                .and_then(|link| link.split_once('>'))
                .filter(|(_, rel)| rel.contains("next"))
                .map(|(target, _)| target.to_string());
            let body: Value = response.json().await.map_err(|e| ApiError::Protocol {
                what: what.to_string(),
                message: e.to_string(),
            })?;
            let page: Vec<String> = body
                .get(field)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if page.is_empty() {
                break;
            }
            items.extend(page);
        }
        Ok(items)
    }
}
