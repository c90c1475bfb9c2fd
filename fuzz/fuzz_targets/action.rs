#![no_main]
//! The request router: `Action::parse(method, path)`. Every action it
//! returns, written back as a path, parses to the same action.

use axum::http::Method;
use libfuzzer_sys::fuzz_target;
use rregistry::action::Action;

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The method and path that ask for `action`.
fn request_of(action: &Action) -> (Method, String) {
    match action {
        Action::Base => (Method::GET, "/v2/".into()),
        Action::Catalog => (Method::GET, "/v2/_catalog".into()),
        Action::ListTags { name } => (Method::GET, format!("/v2/{name}/tags/list")),
        Action::GetManifest {
            name,
            reference,
            head,
        } => (
            if *head { Method::HEAD } else { Method::GET },
            format!("/v2/{name}/manifests/{reference}"),
        ),
        Action::PutManifest { name, reference } => {
            (Method::PUT, format!("/v2/{name}/manifests/{reference}"))
        }
        Action::DeleteManifest { name, reference } => {
            (Method::DELETE, format!("/v2/{name}/manifests/{reference}"))
        }
        Action::GetBlob { name, digest, head } => (
            if *head { Method::HEAD } else { Method::GET },
            format!("/v2/{name}/blobs/{digest}"),
        ),
        Action::DeleteBlob { name, digest } => {
            (Method::DELETE, format!("/v2/{name}/blobs/{digest}"))
        }
        Action::StartUpload { name } => (Method::POST, format!("/v2/{name}/blobs/uploads/")),
        Action::GetUpload { name, id } => (
            Method::GET,
            format!("/v2/{name}/blobs/uploads/{}", encode(id)),
        ),
        Action::PatchUpload { name, id } => (
            Method::PATCH,
            format!("/v2/{name}/blobs/uploads/{}", encode(id)),
        ),
        Action::PutUpload { name, id } => (
            Method::PUT,
            format!("/v2/{name}/blobs/uploads/{}", encode(id)),
        ),
        Action::CancelUpload { name, id } => (
            Method::DELETE,
            format!("/v2/{name}/blobs/uploads/{}", encode(id)),
        ),
        Action::Referrers { name, digest } => {
            (Method::GET, format!("/v2/{name}/referrers/{digest}"))
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = rfuzz::text(data) else {
        return;
    };
    let (method, path) = text.split_once(' ').unwrap_or(("GET", text));
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let Ok(action) = Action::parse(&method, path) else {
        return;
    };
    let (method, path) = request_of(&action);
    let again = Action::parse(&method, &path)
        .unwrap_or_else(|e| panic!("{action:?} written as {method} {path} is refused: {e:?}"));
    assert_eq!(again, action, "{method} {path}");
});
