#![no_main]
//! A chunk's `Content-Range` and `Content-Length` on `PATCH` of an upload,
//! through the registry's router. Input: header lines (`name: value`), an
//! empty line, the chunk's bytes. Whatever the headers, the registry never
//! errs with a 5xx, an accepted chunk is exactly the bytes sent, and the
//! completed blob serves them.

use axum::http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use rfuzz::{assert_not_server_error, sha256, TestRegistry};
use std::sync::OnceLock;

fn registry() -> &'static TestRegistry {
    static REGISTRY: OnceLock<TestRegistry> = OnceLock::new();
    REGISTRY.get_or_init(TestRegistry::new)
}

/// Header lines up to the first empty line, then the body.
fn split(data: &[u8]) -> (Vec<(&str, &[u8])>, &[u8]) {
    let mut headers = Vec::new();
    let mut rest = data;
    loop {
        let (line, after) = rfuzz::first_line(rest);
        if line.is_empty() || after.len() == rest.len() {
            return (headers, after);
        }
        rest = after;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let Ok(name) = std::str::from_utf8(&line[..colon]) else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        // Only the headers this target is about; Content-Length is checked
        // by hyper before a request reaches the router, so it must match.
        match name.trim().to_ascii_lowercase().as_str() {
            "content-range" => headers.push(("content-range", value)),
            "content-type" => headers.push(("content-type", value)),
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (headers, body) = split(data);
    let registry = registry();
    let start = registry
        .send(
            Method::POST,
            "/v2/fuzz/upload/blobs/uploads/",
            &[],
            Vec::new(),
        )
        .expect("a well-formed request");
    assert_eq!(start.status, StatusCode::ACCEPTED);
    let location = start
        .header("location")
        .expect("an upload has a location")
        .to_string();

    let length = body.len().to_string();
    let mut patch_headers = headers.clone();
    patch_headers.push(("content-length", length.as_bytes()));
    let Some(patch) = registry.send(Method::PATCH, &location, &patch_headers, body.to_vec()) else {
        return;
    };
    assert_not_server_error(&patch, "PATCH");
    let digest = sha256(body);
    if patch.status == StatusCode::ACCEPTED {
        let expected = if body.is_empty() {
            "0-0".to_string()
        } else {
            format!("0-{}", body.len() - 1)
        };
        assert_eq!(patch.header("range"), Some(expected.as_str()));
        let location = patch.header("location").unwrap_or(&location).to_string();
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = registry
            .send(
                Method::PUT,
                &format!("{location}{separator}digest={digest}"),
                &[("content-length", b"0")],
                Vec::new(),
            )
            .expect("a well-formed request");
        assert_eq!(
            put.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&put.body)
        );
        let get = registry
            .send(
                Method::GET,
                &format!("/v2/fuzz/upload/blobs/{digest}"),
                &[],
                Vec::new(),
            )
            .expect("a well-formed request");
        assert_eq!(get.status, StatusCode::OK);
        assert_eq!(get.body, body);
    } else {
        let cancel = registry
            .send(Method::DELETE, &location, &[], Vec::new())
            .expect("a well-formed request");
        assert_not_server_error(&cancel, "DELETE of the upload");
    }
});
