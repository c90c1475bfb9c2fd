//! Helpers shared by the fuzz targets in `fuzz_targets/`: a registry
//! behind its real HTTP router (over a filesystem root on tmpfs when there
//! is one), requests sent to it in-process, and scratch directories.
//!
//! Every target is a few lines: decode the input, call the crate's public
//! entry point, assert what must hold for every input.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use rregistry::auth::Auth;
use rregistry::http::{router, App};
use rregistry::storage::fs::FsBackend;
use rregistry::store::{Options, Registry};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower::ServiceExt;

/// The input as text, or `None` when it is not UTF-8 (the parsers all take `&str`).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A scratch directory under tmpfs (`/dev/shm`) when present, so the
/// filesystem work of a run costs no disk I/O.
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    let made = if shm.is_dir() {
        builder.tempdir_in(shm)
    } else {
        builder.tempdir()
    };
    made.expect("a scratch directory (the fuzz harness's own, not the input's fault)")
}

/// An answer read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An open registry (no auth, deletes enabled) on a fresh root, answering
/// through the same router `rregistry serve` uses.
pub struct TestRegistry {
    pub registry: Registry,
    router: Router,
    runtime: tokio::runtime::Runtime,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    pub fn new() -> TestRegistry {
        let dir = scratch("rfuzz-registry-");
        let root = dir.path().join("data");
        let backend = FsBackend::open(&root).expect("the registry's root opens");
        let registry = Registry::new(
            Arc::new(backend),
            Options {
                delete_enabled: true,
                ..Options::default()
            },
        );
        let app = App {
            registry: registry.clone(),
            extra_headers: HeaderMap::new(),
            read_only: false,
            access_log: false,
            auth: Auth::open(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime");
        TestRegistry {
            registry,
            router: router(Arc::new(app)),
            runtime,
            root,
            _dir: dir,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs a future of the registry's API to completion.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Sends one request through the router. `None` when the request itself
    /// cannot be built (a header value HTTP does not allow, say): no server
    /// would ever see it.
    pub fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &[u8])],
        body: Vec<u8>,
    ) -> Option<Answer> {
        let mut request = Request::builder().method(method).uri(uri);
        // HTTP/1.1 requires one Host; the server refuses a request without it.
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
            request = request.header("host", "registry.fuzz");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body)).ok()?;
        let router = self.router.clone();
        Some(self.runtime.block_on(async move {
            let response = router
                .oneshot(request)
                .await
                .expect("the router is infallible");
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .expect("a response body the registry produced reads back")
                .to_bytes()
                .to_vec();
            Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        }))
    }

    /// Pushes `bytes` as a blob of `repository` (monolithic POST + PUT) and
    /// returns its digest.
    pub fn push_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let answer = self
            .send(
                Method::POST,
                &format!("/v2/{repository}/blobs/uploads/?digest={digest}"),
                &[],
                bytes.to_vec(),
            )
            .expect("a well-formed request");
        assert_eq!(answer.status, StatusCode::CREATED, "seeding blob {digest}");
        digest
    }
}

impl Default for TestRegistry {
    fn default() -> Self {
        Self::new()
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A server error is a bug whatever the input: the client sent it, so the
/// answer must be a 4xx (or success).
pub fn assert_not_server_error(answer: &Answer, what: &str) {
    assert!(
        !answer.status.is_server_error(),
        "{what}: {} {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
}

/// Splits `data` at the first `\n`: (first line, rest).
pub fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
