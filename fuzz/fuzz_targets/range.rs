#![no_main]
//! `Range` on `GET /v2/<name>/blobs/<digest>`, through the registry's router.
//! Input: one byte choosing the blob's size, then the header's value.
//! Whatever the header, the answer is the whole blob (200), exactly the
//! bytes its `Content-Range` names (206), or 416 with `bytes */<size>`.

use axum::http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use rfuzz::{assert_not_server_error, TestRegistry};
use std::sync::OnceLock;

const SIZES: [usize; 4] = [0, 1, 10, 100];

struct Fixture {
    registry: TestRegistry,
    blobs: Vec<(Vec<u8>, String)>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let registry = TestRegistry::new();
        let blobs = SIZES
            .iter()
            .map(|&size| {
                let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
                let digest = registry.push_blob("fuzz/range", &bytes);
                (bytes, digest)
            })
            .collect();
        Fixture { registry, blobs }
    })
}

/// `bytes <first>-<last>/<size>`.
fn content_range(value: &str) -> Option<(usize, usize, usize)> {
    let rest = value.strip_prefix("bytes ")?;
    let (span, size) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?, size.parse().ok()?))
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, value)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    let (blob, digest) = &fixture.blobs[usize::from(choice) % fixture.blobs.len()];
    let Some(answer) = fixture.registry.send(
        Method::GET,
        &format!("/v2/fuzz/range/blobs/{digest}"),
        &[("range", value)],
        Vec::new(),
    ) else {
        return;
    };
    assert_not_server_error(&answer, "GET with Range");
    let shown = String::from_utf8_lossy(value);
    match answer.status {
        StatusCode::OK => assert_eq!(&answer.body, blob, "Range {shown:?}"),
        StatusCode::PARTIAL_CONTENT => {
            let header = answer.header("content-range").unwrap_or_default();
            let (first, last, size) = content_range(header)
                .unwrap_or_else(|| panic!("Range {shown:?}: Content-Range {header:?}"));
            assert_eq!(size, blob.len(), "Range {shown:?}: {header}");
            assert!(
                first <= last && last < blob.len(),
                "Range {shown:?}: {header}"
            );
            assert_eq!(answer.body, blob[first..=last], "Range {shown:?}: {header}");
            assert_eq!(
                answer.header("content-length"),
                Some(answer.body.len().to_string().as_str()),
                "Range {shown:?}"
            );
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            assert_eq!(
                answer.header("content-range"),
                Some(format!("bytes */{}", blob.len()).as_str()),
                "Range {shown:?}"
            );
        }
        other => panic!("Range {shown:?}: unexpected {other}"),
    }
});
