//! Routing: `(method, path)` parsed into a typed [`Action`] before anything
//! else looks at the request. Repository names hold any number of `/`
//! segments, so the path is read from its end: the last segments say what
//! is asked for, everything before them is the name.

// Parses what clients send: every sum on a number from outside is checked.
#![deny(clippy::arithmetic_side_effects)]

use crate::digest::{Digest, DigestError};
use crate::error::{Code, RegistryError};
use crate::names::{valid_tag, Reference, RepoName};
use axum::http::Method;

/// What a request asks the registry to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `GET /v2/`: the API version check.
    Base,
    /// `GET /v2/_catalog`.
    Catalog,
    /// `GET /v2/<name>/tags/list`.
    ListTags { name: RepoName },
    /// `GET`/`HEAD /v2/<name>/manifests/<reference>`.
    GetManifest {
        name: RepoName,
        reference: Reference,
        head: bool,
    },
    /// `PUT /v2/<name>/manifests/<reference>`.
    PutManifest {
        name: RepoName,
        reference: Reference,
    },
    /// `DELETE /v2/<name>/manifests/<reference>`.
    DeleteManifest {
        name: RepoName,
        reference: Reference,
    },
    /// `GET`/`HEAD /v2/<name>/blobs/<digest>`.
    GetBlob {
        name: RepoName,
        digest: Digest,
        head: bool,
    },
    /// `DELETE /v2/<name>/blobs/<digest>`.
    DeleteBlob { name: RepoName, digest: Digest },
    /// `POST /v2/<name>/blobs/uploads/` (with `digest`, or `mount` and `from`).
    StartUpload { name: RepoName },
    /// `GET /v2/<name>/blobs/uploads/<id>`: upload status.
    GetUpload { name: RepoName, id: String },
    /// `PATCH /v2/<name>/blobs/uploads/<id>`: a chunk.
    PatchUpload { name: RepoName, id: String },
    /// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: completion.
    PutUpload { name: RepoName, id: String },
    /// `DELETE /v2/<name>/blobs/uploads/<id>`: cancel.
    CancelUpload { name: RepoName, id: String },
    /// `GET /v2/<name>/referrers/<digest>`.
    Referrers { name: RepoName, digest: Digest },
}

impl Action {
    /// Parses a request line. Unknown paths are 404, known paths with a
    /// method they do not take are 405, bad names and digests are 400.
    pub fn parse(method: &Method, path: &str) -> Result<Action, RegistryError> {
        let rest = path.strip_prefix("/v2").ok_or_else(not_found)?;
        if rest.is_empty() || rest == "/" {
            return match *method {
                Method::GET | Method::HEAD => Ok(Action::Base),
                _ => Err(method_not_allowed()),
            };
        }
        let rest = rest.strip_prefix('/').ok_or_else(not_found)?;
        if rest == "_catalog" {
            return match *method {
                Method::GET | Method::HEAD => Ok(Action::Catalog),
                _ => Err(method_not_allowed()),
            };
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let name_of = |prefix: &[&str]| -> Result<RepoName, RegistryError> {
            let raw = prefix.join("/");
            RepoName::parse(&raw).ok_or_else(|| {
                RegistryError::new(
                    Code::NameInvalid,
                    format!("invalid repository name {raw:?}"),
                )
            })
        };
        // The last segments say what is asked for; the ones before are the name.
        match segments.as_slice() {
            [prefix @ .., "tags", "list"] if !prefix.is_empty() => {
                let name = name_of(prefix)?;
                match *method {
                    Method::GET | Method::HEAD => Ok(Action::ListTags { name }),
                    _ => Err(method_not_allowed()),
                }
            }
            [prefix @ .., "blobs", "uploads", id] if !prefix.is_empty() => {
                let name = name_of(prefix)?;
                let id = decode(id);
                if id.is_empty() {
                    return match *method {
                        Method::POST => Ok(Action::StartUpload { name }),
                        _ => Err(method_not_allowed()),
                    };
                }
                match *method {
                    Method::GET | Method::HEAD => Ok(Action::GetUpload { name, id }),
                    Method::PATCH => Ok(Action::PatchUpload { name, id }),
                    Method::PUT => Ok(Action::PutUpload { name, id }),
                    Method::DELETE => Ok(Action::CancelUpload { name, id }),
                    _ => Err(method_not_allowed()),
                }
            }
            [prefix @ .., "blobs", "uploads"] if !prefix.is_empty() && *method == Method::POST => {
                let name = name_of(prefix)?;
                Ok(Action::StartUpload { name })
            }
            [prefix @ .., "blobs", digest] if !prefix.is_empty() => {
                let name = name_of(prefix)?;
                let digest = parse_digest(&decode(digest))?;
                match *method {
                    Method::GET => Ok(Action::GetBlob {
                        name,
                        digest,
                        head: false,
                    }),
                    Method::HEAD => Ok(Action::GetBlob {
                        name,
                        digest,
                        head: true,
                    }),
                    Method::DELETE => Ok(Action::DeleteBlob { name, digest }),
                    _ => Err(method_not_allowed()),
                }
            }
            [prefix @ .., "manifests", reference] if !prefix.is_empty() => {
                let name = name_of(prefix)?;
                let reference = parse_reference(&decode(reference))?;
                match *method {
                    Method::GET => Ok(Action::GetManifest {
                        name,
                        reference,
                        head: false,
                    }),
                    Method::HEAD => Ok(Action::GetManifest {
                        name,
                        reference,
                        head: true,
                    }),
                    Method::PUT => Ok(Action::PutManifest { name, reference }),
                    Method::DELETE => Ok(Action::DeleteManifest { name, reference }),
                    _ => Err(method_not_allowed()),
                }
            }
            [prefix @ .., "referrers", digest] if !prefix.is_empty() => {
                let name = name_of(prefix)?;
                let digest = parse_digest(&decode(digest))?;
                match *method {
                    Method::GET | Method::HEAD => Ok(Action::Referrers { name, digest }),
                    _ => Err(method_not_allowed()),
                }
            }
            _ => Err(not_found()),
        }
    }
}

/// Parses a digest from a URL or query, answering the spec's error for a bad one.
pub fn parse_digest(text: &str) -> Result<Digest, RegistryError> {
    text.parse()
        .map_err(|e: DigestError| RegistryError::new(Code::DigestInvalid, e.to_string()))
}

fn parse_reference(text: &str) -> Result<Reference, RegistryError> {
    if text.contains(':') {
        return parse_digest(text).map(Reference::Digest);
    }
    if valid_tag(text) {
        Ok(Reference::Tag(text.to_string()))
    } else {
        Err(RegistryError::new(
            Code::ManifestInvalid,
            format!("invalid tag {text:?}"),
        ))
    }
}

/// Percent-decoding of one path segment (clients may encode the `:` of a digest).
fn decode(segment: &str) -> String {
    crate::http::query::percent_decode(segment)
}

fn not_found() -> RegistryError {
    RegistryError::new(Code::NameUnknown, "no such endpoint")
        .with_status(axum::http::StatusCode::NOT_FOUND)
}

fn method_not_allowed() -> RegistryError {
    RegistryError::new(Code::Unsupported, "method not allowed on this endpoint")
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn name(s: &str) -> RepoName {
        RepoName::parse(s).unwrap()
    }

    #[test]
    fn routes_nested_names() {
        assert_eq!(Action::parse(&Method::GET, "/v2/").unwrap(), Action::Base);
        assert_eq!(
            Action::parse(&Method::GET, "/v2/_catalog").unwrap(),
            Action::Catalog
        );
        assert_eq!(
            Action::parse(&Method::GET, "/v2/a/b/c/tags/list").unwrap(),
            Action::ListTags {
                name: name("a/b/c")
            }
        );
        // A name may itself contain "blobs" or "manifests" components.
        assert_eq!(
            Action::parse(&Method::PUT, "/v2/x/blobs/manifests/manifests/v1").unwrap(),
            Action::PutManifest {
                name: name("x/blobs/manifests"),
                reference: Reference::Tag("v1".into())
            }
        );
        assert_eq!(
            Action::parse(&Method::POST, "/v2/a/b/blobs/uploads/").unwrap(),
            Action::StartUpload { name: name("a/b") }
        );
        assert_eq!(
            Action::parse(&Method::PATCH, "/v2/a/blobs/uploads/123").unwrap(),
            Action::PatchUpload {
                name: name("a"),
                id: "123".into()
            }
        );
        assert_eq!(
            Action::parse(
                &Method::HEAD,
                &format!("/v2/a/blobs/{}", D.replace(':', "%3A"))
            )
            .unwrap(),
            Action::GetBlob {
                name: name("a"),
                digest: D.parse().unwrap(),
                head: true
            }
        );
        assert_eq!(
            Action::parse(&Method::GET, &format!("/v2/a/referrers/{D}")).unwrap(),
            Action::Referrers {
                name: name("a"),
                digest: D.parse().unwrap()
            }
        );
    }

    #[test]
    fn refuses_bad_requests() {
        let code = |m: Method, p: &str| Action::parse(&m, p).unwrap_err().code;
        assert_eq!(code(Method::GET, "/v2/UPPER/tags/list"), Code::NameInvalid);
        assert_eq!(
            code(Method::GET, "/v2/a/blobs/sha256:zz"),
            Code::DigestInvalid
        );
        assert_eq!(code(Method::POST, "/v2/a/manifests/x"), Code::Unsupported);
        assert_eq!(
            code(Method::GET, "/v2/a/manifests/bad:tag:x"),
            Code::DigestInvalid
        );
        assert_eq!(Action::parse(&Method::GET, "/v3/").unwrap_err().status, 404);
        assert_eq!(
            Action::parse(&Method::GET, "/v2/a/unknown")
                .unwrap_err()
                .status,
            404
        );
    }
}
