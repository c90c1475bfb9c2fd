#![no_main]
//! Manifest and index validation on `PUT /v2/<name>/manifests/<reference>`,
//! through the registry's router. Input: a first line `t <content-type>`
//! (push by tag) or `d <content-type>` (push by digest), then the body.
//! Whatever the body: no 5xx; a 201 serves exactly the bytes pushed under
//! their digest and tag; a refused push leaves no trace (the digest and
//! the tag answer as they did before).

use axum::http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use rfuzz::{assert_not_server_error, sha256, Answer, TestRegistry};
use std::sync::Mutex;

const REPO: &str = "fuzz/manifest";
/// Pushed before any input, so manifests naming them can be accepted.
const CONFIG: &[u8] = b"{}";
const LAYER: &[u8] = b"layer";
/// Runs before the registry starts afresh (its root only grows).
const RUNS_PER_REGISTRY: u32 = 5_000;

static REGISTRY: Mutex<Option<(TestRegistry, u32)>> = Mutex::new(None);

fn get(registry: &TestRegistry, reference: &str) -> Answer {
    registry
        .send(
            Method::GET,
            &format!("/v2/{REPO}/manifests/{reference}"),
            &[("accept", b"*/*")],
            Vec::new(),
        )
        .expect("a well-formed request")
}

fuzz_target!(|data: &[u8]| {
    let (first, body) = rfuzz::first_line(data);
    let (by_digest, content_type) = match first.split_first() {
        Some((b'd', rest)) => (true, rest.trim_ascii()),
        Some((_, rest)) => (false, rest.trim_ascii()),
        None => (false, &[][..]),
    };
    let mut slot = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    if slot
        .as_ref()
        .is_none_or(|(_, runs)| *runs >= RUNS_PER_REGISTRY)
    {
        let registry = TestRegistry::new();
        registry.push_blob(REPO, CONFIG);
        registry.push_blob(REPO, LAYER);
        *slot = Some((registry, 0));
    }
    let Some((registry, runs)) = slot.as_mut() else {
        return;
    };
    *runs += 1;

    let digest = sha256(body);
    let reference = if by_digest {
        digest.clone()
    } else {
        "t".to_string()
    };
    let before_digest = get(registry, &digest);
    let before_tag = get(registry, "t");
    let mut headers = vec![];
    if !content_type.is_empty() {
        headers.push(("content-type", content_type));
    }
    let Some(put) = registry.send(
        Method::PUT,
        &format!("/v2/{REPO}/manifests/{reference}"),
        &headers,
        body.to_vec(),
    ) else {
        return;
    };
    assert_not_server_error(&put, "PUT manifest");
    let after_digest = get(registry, &digest);
    let after_tag = get(registry, "t");
    if put.status == StatusCode::CREATED {
        assert_eq!(put.header("docker-content-digest"), Some(digest.as_str()));
        assert_eq!(after_digest.status, StatusCode::OK);
        assert_eq!(after_digest.body, body);
        if !by_digest {
            assert_eq!(after_tag.status, StatusCode::OK);
            assert_eq!(after_tag.body, body);
        }
    } else {
        let why = String::from_utf8_lossy(&put.body);
        assert_eq!(
            (
                after_digest.status,
                String::from_utf8_lossy(&after_digest.body)
            ),
            (
                before_digest.status,
                String::from_utf8_lossy(&before_digest.body)
            ),
            "the refused push ({} {why}) changed what {digest} serves",
            put.status
        );
        assert_eq!(
            (after_tag.status, String::from_utf8_lossy(&after_tag.body)),
            (before_tag.status, String::from_utf8_lossy(&before_tag.body)),
            "the refused push ({} {why}) changed what the tag serves",
            put.status
        );
    }
});
