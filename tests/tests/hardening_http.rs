//! The registry's HTTP edge under hostile input (issue 13), against the
//! real binary: byte ranges that overflow or cannot be satisfied, mounts
//! that name no source repository, access-rule globs that used to
//! backtrack, lenient framing, and connections that are held open.

use e2e::auth::AuthRegistry;
use e2e::{http_client, require_tool, sha256, RegistryOptions, RegistryProcess};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

async fn error_code(response: Response) -> String {
    let body: Value = response.json().await.unwrap_or(Value::Null);
    body["errors"][0]["code"].as_str().unwrap_or("").to_string()
}

/// Sends a raw HTTP/1.1 request (`Connection: close` is up to the caller)
/// and reads the answer until the server closes, bounded by 20 s.
fn raw(host: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    stream.write_all(request).expect("send");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Starts an upload in `repo`; its location.
async fn start_upload(http: &reqwest::Client, base: &str, repo: &str) -> String {
    let r = http
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.headers()["location"].to_str().unwrap().to_string()
}

/// The `Range` an upload reports (`0-0` when empty).
async fn upload_range(http: &reqwest::Client, base: &str, location: &str) -> String {
    let r = http.get(format!("{base}{location}")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    r.headers()["range"].to_str().unwrap().to_string()
}

// Finding 5: a Content-Range whose length overflows a u64 wrapped to an
// empty chunk (202 on an empty body; a panic in a debug build).
#[tokio::test(flavor = "multi_thread")]
async fn content_range_arithmetic_is_checked() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let http = http_client();
    let base = registry.url();
    let location = start_upload(&http, &base, "ranges/app").await;

    for range in ["0-18446744073709551615", "bytes 0-18446744073709551615/*"] {
        let r = http
            .patch(format!("{base}{location}"))
            .header("content-range", range)
            .body(Vec::new())
            .send()
            .await
            .expect("the server answers");
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(
            r.headers()["content-type"],
            "application/json",
            "the spec's error body"
        );
        assert_eq!(error_code(r).await, "RANGE_INVALID", "{range}");
    }
    // An end before the start, and a Content-Length that disagrees.
    let r = http
        .patch(format!("{base}{location}"))
        .header("content-range", "5-4")
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let path = location.clone();
    let answer = raw(
        &registry.host(),
        format!("PATCH {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Range: 0-9\r\nContent-Length: 3\r\n\r\nabc").as_bytes(),
    );
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("SIZE_INVALID"), "{answer}");
    assert_eq!(upload_range(&http, &base, &location).await, "0-0");

    // The upload is unharmed: a right chunk and the completion work.
    let data = b"0123456789";
    let r = http
        .patch(format!("{base}{location}"))
        .header("content-range", "0-9")
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = http
        .put(format!("{base}{location}?digest={}", sha256(data)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

// Finding 14: a Range the registry cannot satisfy answered 200 with the
// whole blob.
#[tokio::test(flavor = "multi_thread")]
async fn unsatisfiable_blob_ranges_are_416() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let http = http_client();
    let base = registry.url();
    let data: Vec<u8> = (0..100u8).collect();
    let digest = e2e::api::push_blob(&http, &base, "ranges/blob", &data).await;
    let get = |range: &'static str| {
        http.get(format!("{base}/v2/ranges/blob/blobs/{digest}"))
            .header("range", range)
            .send()
    };
    for range in ["bytes=500-0", "bytes=100-", "bytes=500-600", "bytes=-0"] {
        let r = get(range).await.unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(r.headers()["content-range"], "bytes */100", "{range}");
        assert_eq!(error_code(r).await, "RANGE_INVALID", "{range}");
    }
    let cases: [(&str, StatusCode, Option<&str>, &[u8]); 5] = [
        (
            "bytes=10-19",
            StatusCode::PARTIAL_CONTENT,
            Some("bytes 10-19/100"),
            &data[10..20],
        ),
        (
            "bytes=90-",
            StatusCode::PARTIAL_CONTENT,
            Some("bytes 90-99/100"),
            &data[90..],
        ),
        (
            "bytes=-5",
            StatusCode::PARTIAL_CONTENT,
            Some("bytes 95-99/100"),
            &data[95..],
        ),
        (
            "bytes=95-1000",
            StatusCode::PARTIAL_CONTENT,
            Some("bytes 95-99/100"),
            &data[95..],
        ),
        // Several ranges: the whole blob (Range may be ignored, RFC 9110).
        ("bytes=0-1,5-6", StatusCode::OK, None, &data[..]),
    ];
    for (range, status, content_range, body) in cases {
        let r = get(range).await.unwrap();
        assert_eq!(r.status(), status, "{range}");
        assert_eq!(
            r.headers()
                .get("content-range")
                .map(|v| v.to_str().unwrap()),
            content_range,
            "{range}"
        );
        assert_eq!(&r.bytes().await.unwrap()[..], body, "{range}");
    }
}

/// How a test client signs its requests.
#[derive(Clone)]
enum Credentials {
    None,
    Basic(&'static str, &'static str),
    Bearer(String),
}

impl Credentials {
    fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        match self {
            Credentials::None => request,
            Credentials::Basic(user, password) => request.basic_auth(user, Some(password)),
            Credentials::Bearer(token) => request.bearer_auth(token),
        }
    }
}

async fn send(
    http: &reqwest::Client,
    who: &Credentials,
    method: Method,
    url: String,
    body: Vec<u8>,
) -> Response {
    who.apply(http.request(method, url).body(body))
        .send()
        .await
        .expect("request")
}

/// Pushes a one-layer image to `repo` as `who`; the layer's and the
/// manifest's digests.
async fn push_image(
    http: &reqwest::Client,
    base: &str,
    who: &Credentials,
    repo: &str,
    layer: &[u8],
) -> (String, String) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    for blob in [&config[..], layer] {
        let url = format!("{base}/v2/{repo}/blobs/uploads/?digest={}", sha256(blob));
        let r = send(http, who, Method::POST, url, blob.to_vec()).await;
        assert_eq!(r.status(), 201, "pushing a blob to {repo}");
    }
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(layer), "size": layer.len()}],
    })
    .to_string();
    let r = who
        .apply(
            http.put(format!("{base}/v2/{repo}/manifests/latest"))
                .header("content-type", OCI_MANIFEST)
                .body(manifest.clone()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "pushing the manifest of {repo}");
    (sha256(layer), sha256(manifest.as_bytes()))
}

/// The attack of finding 8: `attacker` may push `team-a/app` but (with
/// auth) not pull `secret/app`, whose layer and manifest are `secrets`. A
/// mount without `from` must be a plain upload (202) that links nothing,
/// so nothing of secret/app can then be read through team-a/app; with
/// auth, so must a mount from secret/app.
async fn mount_without_from_reveals_nothing(
    http: &reqwest::Client,
    base: &str,
    attacker: &Credentials,
    secrets: &[String],
) {
    let with_auth = !matches!(attacker, Credentials::None);
    for digest in secrets {
        let mut queries = vec![format!("mount={digest}")];
        if with_auth {
            queries.push(format!("mount={digest}&from=secret/app"));
        }
        for query in queries {
            let url = format!("{base}/v2/team-a/app/blobs/uploads/?{query}");
            let r = send(http, attacker, Method::POST, url, Vec::new()).await;
            assert_eq!(r.status(), StatusCode::ACCEPTED, "POST ?{query}");
            assert!(
                r.headers()["location"]
                    .to_str()
                    .unwrap()
                    .starts_with("/v2/team-a/app/blobs/uploads/"),
                "a plain upload's location"
            );
        }
        let url = format!("{base}/v2/team-a/app/blobs/{digest}");
        let r = send(http, attacker, Method::GET, url, Vec::new()).await;
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "{digest} of secret/app is readable through team-a/app"
        );
        let url = format!("{base}/v2/team-a/app/manifests/{digest}");
        let r = send(http, attacker, Method::GET, url, Vec::new()).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}

/// A mount from a repository the caller may pull still links (201).
async fn mount_with_from_still_works(
    http: &reqwest::Client,
    base: &str,
    who: &Credentials,
    from: &str,
    digest: &str,
) {
    let url = format!("{base}/v2/team-a/app/blobs/uploads/?mount={digest}&from={from}");
    let r = send(http, who, Method::POST, url, Vec::new()).await;
    assert_eq!(r.status(), StatusCode::CREATED, "mount from {from}");
    let url = format!("{base}/v2/team-a/app/blobs/{digest}");
    let r = send(http, who, Method::GET, url, Vec::new()).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn mount_without_from_is_a_plain_upload_with_htpasswd() {
    if !require_tool(
        "htpasswd",
        "mount_without_from_is_a_plain_upload_with_htpasswd",
    ) {
        return;
    }
    let reg = AuthRegistry::start_htpasswd();
    let (http, base) = (http_client(), reg.registry.url());
    let admin = Credentials::Basic("admin", "admin-pw");
    let alice = Credentials::Basic("alice", "alice-pw");
    let (layer, manifest) = push_image(&http, &base, &admin, "secret/app", b"secret layer").await;
    // alice may not pull secret/app directly.
    let url = format!("{base}/v2/secret/app/blobs/{layer}");
    let r = send(&http, &alice, Method::GET, url, Vec::new()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    mount_without_from_reveals_nothing(&http, &base, &alice, &[layer, manifest]).await;
    let (own, _) = push_image(&http, &base, &alice, "team-a/base", b"alice's layer").await;
    mount_with_from_still_works(&http, &base, &alice, "team-a/base", &own).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mount_without_from_is_a_plain_upload_with_tokens() {
    if !require_tool(
        "htpasswd",
        "mount_without_from_is_a_plain_upload_with_tokens",
    ) {
        return;
    }
    let reg = AuthRegistry::start_token(false);
    let (http, base) = (http_client(), reg.registry.url());
    let (admin, _) = reg
        .token(
            Some(("admin", "admin-pw")),
            &["repository:secret/app:pull,push"],
        )
        .await;
    let admin = Credentials::Bearer(admin);
    let (alice, granted) = reg
        .token(
            Some(("alice", "alice-pw")),
            &[
                "repository:team-a/app:pull,push",
                "repository:team-a/base:pull,push",
                "repository:secret/app:pull",
            ],
        )
        .await;
    assert!(!granted.contains("secret/app"), "granted {granted}");
    let alice = Credentials::Bearer(alice);
    let (layer, manifest) = push_image(&http, &base, &admin, "secret/app", b"secret layer").await;
    mount_without_from_reveals_nothing(&http, &base, &alice, &[layer, manifest]).await;
    let (own, _) = push_image(&http, &base, &alice, "team-a/base", b"alice's layer").await;
    mount_with_from_still_works(&http, &base, &alice, "team-a/base", &own).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mount_without_from_is_a_plain_upload_without_auth() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let (http, base) = (http_client(), registry.url());
    let (layer, manifest) =
        push_image(&http, &base, &Credentials::None, "secret/app", b"layer").await;
    mount_without_from_reveals_nothing(&http, &base, &Credentials::None, &[layer, manifest]).await;
}

// Finding 10: `team-*-*-*-*-*-prod` against a 254-character name took
// seconds of CPU per request (backtracking), and a few at once stalled
// the server.
#[tokio::test(flavor = "multi_thread")]
async fn pathological_access_globs_do_not_stall_the_server() {
    let policy = "auth:\n  access:\n    rules:\n      - repositories: [\"team-*-*-*-*-*-prod\"]\n        anonymous: true\n        actions: [pull]\n      - repositories: [\"**\"]\n        anonymous: true\n        actions: [\"*\"]\n";
    let registry = RegistryProcess::start(RegistryOptions {
        extra_yaml: policy.to_string(),
        ..Default::default()
    });
    let base = registry.url();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let name = format!("team-{}x", "a-".repeat(124));
    assert_eq!(name.len(), 254);
    let mut hostile = Vec::new();
    for _ in 0..8 {
        let request = http
            .get(format!("{base}/v2/{name}/manifests/latest"))
            .send();
        hostile.push(tokio::spawn(request));
    }
    let normal = http.get(format!("{base}/v2/")).send().await;
    assert_eq!(
        normal.expect("a normal request answers").status(),
        StatusCode::OK
    );
    for request in hostile {
        let response = request.await.unwrap().expect("a hostile request answers");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    // The rule still matches what it names.
    let r = http
        .get(format!("{base}/v2/team-a-b-c-d-e-prod/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "allowed, and unknown");
    let r = http
        .delete(format!("{base}/v2/team-a-b-c-d-e-prod/manifests/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "the rule grants pull only"
    );
}

// Finding 12: `Transfer-Encoding: gzip, chunked` was accepted and the body
// stored still gzipped; an HTTP/1.1 request without Host was served.
#[tokio::test(flavor = "multi_thread")]
async fn lenient_framing_is_refused() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let (http, base, host) = (http_client(), registry.url(), registry.host());
    let location = start_upload(&http, &base, "strict/app").await;
    for coding in ["gzip, chunked", "identity, chunked"] {
        let answer = raw(
            &host,
            format!("PATCH {location} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {coding}\r\n\r\n5\r\nhello\r\n0\r\n\r\n").as_bytes(),
        );
        assert_eq!(status_of(&answer), 501, "{coding}: {answer}");
        assert!(answer.contains("UNSUPPORTED"), "{answer}");
    }
    assert_eq!(upload_range(&http, &base, &location).await, "0-0");
    let digest = sha256(b"hello");
    let answer = raw(
        &host,
        format!("POST /v2/strict/app/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").as_bytes(),
    );
    assert_eq!(status_of(&answer), 501, "{answer}");
    let r = http
        .head(format!("{base}/v2/strict/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the refused body was stored");

    let answer = raw(&host, b"GET /v2/ HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(status_of(&answer), 400, "{answer}");
    let answer = raw(
        &host,
        b"GET /v2/ HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 400, "{answer}");
    // What a strict server still serves.
    let answer = raw(&host, b"GET /v2/ HTTP/1.0\r\n\r\n");
    assert_eq!(status_of(&answer), 200, "{answer}");
    let answer = raw(
        &host,
        format!("PATCH {location} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").as_bytes(),
    );
    assert_eq!(status_of(&answer), 202, "{answer}");
    assert_eq!(upload_range(&http, &base, &location).await, "0-4");
}

// Finding 11: connections that sent half a header, nothing, or sat idle
// between requests stayed open forever; a stalled body held its request.

/// Open sockets of process `pid` (its listener and its connections).
fn sockets_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// Waits up to `limit` until `condition` holds; whether it did.
fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// Whether the server has closed `stream` (EOF or reset), waiting up to
/// `limit` for it; whatever the server sent before closing is skipped.
fn closed_by_server(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return true
            }
            Err(_) => return false,
        }
    }
}

/// Whether the server has already closed `stream`, without waiting.
fn already_closed(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 1];
    let closed = match stream.peek(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).expect("blocking");
    closed
}

/// Medians of `n` manifest GETs, each on a new connection.
async fn manifest_get_median(url: &str, n: usize) -> Duration {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut times = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let r = http
            .get(url)
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .expect("a normal client is served");
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    times[n / 2]
}

#[tokio::test(flavor = "multi_thread")]
async fn held_connections_are_closed_and_do_not_lock_out_clients() {
    let registry = RegistryProcess::start(RegistryOptions {
        extra_yaml: "  timeout:\n    header: 5s\n    idle: 3s\n    body: 3s\n".to_string(),
        ..Default::default()
    });
    let (http, base, host) = (http_client(), registry.url(), registry.host());
    let pid = registry.child.pid();
    let (digest, _) = e2e::api::push_image(
        &http,
        &base,
        "flood/app",
        "latest",
        "amd64",
        &[b"x".to_vec()],
    )
    .await;
    let url = format!("{base}/v2/flood/app/manifests/{digest}");
    let quiet = manifest_get_median(&url, 20).await;

    // 400 connections send half a header, 100 send nothing.
    let mut held: Vec<TcpStream> = (0..500)
        .map(|i| {
            let mut stream = TcpStream::connect(&host).expect("connect");
            if i % 5 != 0 {
                stream
                    .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nUser-Agent: sl")
                    .expect("half a header");
            }
            stream
        })
        .collect();
    assert!(
        wait_for(Duration::from_secs(20), || sockets_of(pid) > 500),
        "the server did not take the flood's connections"
    );
    let flooded = manifest_get_median(&url, 20).await;
    println!(
        "manifest GET on a new connection, median of 20: {:.2} ms alone, {:.2} ms with 500 held connections",
        quiet.as_secs_f64() * 1000.0,
        flooded.as_secs_f64() * 1000.0
    );

    // The header timeout closes every held connection.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, stream) in held.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            closed_by_server(stream, left),
            "held connection {i} is still open"
        );
    }
    assert!(
        wait_for(Duration::from_secs(20), || sockets_of(pid) < 10),
        "the server still holds the flood's sockets"
    );

    // A kept-alive connection that goes idle is closed too.
    let mut idle = TcpStream::connect(&host).unwrap();
    idle.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    assert!(
        closed_by_server(&mut idle, Duration::from_secs(30)),
        "an idle kept-alive connection is still open"
    );

    // A stalled upload body fails its request, and the upload can resume.
    let location = start_upload(&http, &base, "flood/app").await;
    let mut stalled = TcpStream::connect(&host).unwrap();
    stalled
        .write_all(
            format!("PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    stalled.write_all(&[7u8; 500]).unwrap();
    assert!(
        closed_by_server(&mut stalled, Duration::from_secs(30)),
        "a stalled upload body still holds its connection"
    );
    let range = upload_range(&http, &base, &location).await;
    let end: u64 = range.split('-').nth(1).unwrap().parse().unwrap();
    assert!(end < 500, "more recorded than was sent: {range}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_limit_wait_for_a_free_slot() {
    let registry = RegistryProcess::start(RegistryOptions {
        extra_yaml: "  timeout:\n    header: 3s\n  maxconnections: 20\n".to_string(),
        ..Default::default()
    });
    let host = registry.host();
    let pid = registry.child.pid();
    let mut held: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&host).expect("connect"))
        .collect();
    assert!(
        wait_for(Duration::from_secs(20), || sockets_of(pid) > 20),
        "the server did not take 20 connections"
    );
    // The 21st waits in the listen queue until a held one is closed; it is
    // then served.
    let answer = raw(
        &host,
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(
        held.iter_mut().any(already_closed),
        "a 21st connection was served while 20 were held open (maxconnections: 20)"
    );
}
