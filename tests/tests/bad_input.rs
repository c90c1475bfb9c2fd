//! Bad input of every kind, each answered with the right status and the
//! spec's error code, and the server healthy afterwards.

use e2e::{http_client, sha256, RegistryOptions, RegistryProcess};
use reqwest::{Method, Response};
use serde_json::json;
use std::io::{Read, Write};
use std::time::Duration;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

async fn expect_error(response: Response, status: u16, code: &str) -> String {
    let got = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.text().await.unwrap();
    assert_eq!(got, status, "status for {code}: body {body}");
    let parsed: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    let codes: Vec<&str> = parsed["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&code), "expected {code}, got {codes:?}");
    assert!(
        parsed["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message: {body}"
    );
    assert_eq!(content_type.as_deref(), Some("application/json"));
    body
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send().await.unwrap()
    }

    async fn put_manifest(&self, path: &str, content_type: &str, body: Vec<u8>) -> Response {
        self.send(Method::PUT, path, Some(content_type), body).await
    }

    async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        e2e::api::push_blob(&self.client, &self.base, repo, bytes).await
    }
}

fn raw_request(host: &str, head: &str, body: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_with_the_right_codes() {
    let mut registry = RegistryProcess::start(RegistryOptions::default());
    let api = Api {
        client: http_client(),
        base: registry.url(),
    };
    let config_bytes = b"{\"architecture\":\"amd64\",\"os\":\"linux\"}";
    let config = api.push_blob("bad/repo", config_bytes).await;
    // Descriptor sizes are checked against the blob (it was 38, one too many).
    let config_size = config_bytes.len();

    // Malformed manifests.
    let r = api
        .put_manifest(
            "/v2/bad/repo/manifests/x",
            OCI_MANIFEST,
            b"{not json".to_vec(),
        )
        .await;
    expect_error(r, 400, "MANIFEST_INVALID").await;
    let r = api
        .put_manifest(
            "/v2/bad/repo/manifests/x",
            OCI_MANIFEST,
            b"[1,2,3]".to_vec(),
        )
        .await;
    expect_error(r, 400, "MANIFEST_INVALID").await;
    let no_config = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []});
    let r = api
        .put_manifest(
            "/v2/bad/repo/manifests/x",
            OCI_MANIFEST,
            no_config.to_string().into_bytes(),
        )
        .await;
    expect_error(r, 400, "MANIFEST_INVALID").await;
    let schema1 =
        json!({"schemaVersion": 1, "name": "bad/repo", "tag": "x", "fsLayers": [], "history": []});
    let r = api
        .put_manifest(
            "/v2/bad/repo/manifests/x",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            schema1.to_string().into_bytes(),
        )
        .await;
    let body = expect_error(r, 400, "MANIFEST_INVALID").await;
    assert!(
        body.contains("schema1"),
        "schema1 refusal does not say why: {body}"
    );
    let good = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": []});
    let r = api
        .put_manifest(
            "/v2/bad/repo/manifests/x",
            "application/vnd.oci.image.index.v1+json",
            good.to_string().into_bytes(),
        )
        .await;
    expect_error(r, 400, "MANIFEST_INVALID").await;
    let missing_layer = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(b"absent"), "size": 6}]});
    let r = api
        .put_manifest(
            "/v2/bad/repo/manifests/x",
            OCI_MANIFEST,
            missing_layer.to_string().into_bytes(),
        )
        .await;
    expect_error(r, 400, "MANIFEST_BLOB_UNKNOWN").await;
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(b"no such manifest"), "size": 10}]});
    let r = api
        .put_manifest(
            "/v2/bad/repo/manifests/i",
            "application/vnd.oci.image.index.v1+json",
            index.to_string().into_bytes(),
        )
        .await;
    expect_error(r, 400, "MANIFEST_BLOB_UNKNOWN").await;
    // A manifest pushed under a digest that is not its own.
    let wrong = sha256(b"other");
    let r = api
        .put_manifest(
            &format!("/v2/bad/repo/manifests/{wrong}"),
            OCI_MANIFEST,
            good.to_string().into_bytes(),
        )
        .await;
    expect_error(r, 400, "DIGEST_INVALID").await;
    // Oversize manifest (declared and streamed).
    let mut huge = good.clone();
    huge["annotations"] = json!({"pad": "x".repeat(5 * 1024 * 1024)});
    let r = api
        .put_manifest(
            "/v2/bad/repo/manifests/huge",
            OCI_MANIFEST,
            huge.to_string().into_bytes(),
        )
        .await;
    expect_error(r, 413, "MANIFEST_INVALID").await;
    // Invalid tag.
    let r = api
        .put_manifest(
            &format!("/v2/bad/repo/manifests/{}", "t".repeat(129)),
            OCI_MANIFEST,
            good.to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status(), 400);
    // The good manifest still goes in after all that.
    let r = api
        .put_manifest(
            "/v2/bad/repo/manifests/ok",
            OCI_MANIFEST,
            good.to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status(), 201);

    // Wrong and malformed digests.
    let r = api
        .send(
            Method::POST,
            &format!("/v2/bad/repo/blobs/uploads/?digest={wrong}"),
            None,
            b"content".to_vec(),
        )
        .await;
    expect_error(r, 400, "DIGEST_INVALID").await;
    assert_eq!(
        api.send(
            Method::HEAD,
            &format!("/v2/bad/repo/blobs/{wrong}"),
            None,
            vec![]
        )
        .await
        .status(),
        404
    );
    let r = api
        .send(Method::GET, "/v2/bad/repo/blobs/sha256:1234", None, vec![])
        .await;
    expect_error(r, 400, "DIGEST_INVALID").await;
    let r = api
        .send(
            Method::GET,
            "/v2/bad/repo/blobs/md5:d41d8cd98f00b204e9800998ecf8427e",
            None,
            vec![],
        )
        .await;
    expect_error(r, 400, "DIGEST_INVALID").await;
    let r = api
        .send(
            Method::POST,
            "/v2/bad/repo/blobs/uploads/?digest=nonsense",
            None,
            b"x".to_vec(),
        )
        .await;
    expect_error(r, 400, "DIGEST_INVALID").await;
    // Completing an upload without a digest.
    let r = api
        .send(Method::POST, "/v2/bad/repo/blobs/uploads/", None, vec![])
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let r = api
        .send(Method::PUT, &location, None, b"abc".to_vec())
        .await;
    expect_error(r, 400, "DIGEST_INVALID").await;
    // A chunk whose Content-Range disagrees with its body.
    let r = api
        .client
        .patch(format!("{}{location}", api.base))
        .header("content-range", "0-9")
        .body("12345")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "SIZE_INVALID").await;
    let status = api.send(Method::GET, &location, None, vec![]).await;
    assert_eq!(status.status(), 204);
    assert_eq!(
        status.headers()["range"],
        "0-0",
        "a refused chunk left bytes behind"
    );

    // Bad names and unknown repositories.
    for path in [
        "/v2/UPPER/tags/list",
        "/v2/a..b/tags/list",
        "/v2/-a/manifests/x",
        "/v2/a//b/tags/list",
    ] {
        expect_error(
            api.send(Method::GET, path, None, vec![]).await,
            400,
            "NAME_INVALID",
        )
        .await;
    }
    let long = format!("/v2/{}/tags/list", "a".repeat(256));
    expect_error(
        api.send(Method::GET, &long, None, vec![]).await,
        400,
        "NAME_INVALID",
    )
    .await;
    expect_error(
        api.send(Method::GET, "/v2/no/such/repo/tags/list", None, vec![])
            .await,
        404,
        "NAME_UNKNOWN",
    )
    .await;
    expect_error(
        api.send(
            Method::GET,
            "/v2/no/such/repo/manifests/latest",
            None,
            vec![],
        )
        .await,
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
    let blob = format!("/v2/no/such/repo/blobs/{config}");
    expect_error(
        api.send(Method::GET, &blob, None, vec![]).await,
        404,
        "BLOB_UNKNOWN",
    )
    .await;
    let upload = "/v2/bad/repo/blobs/uploads/not-a-uuid";
    expect_error(
        api.send(Method::GET, upload, None, vec![]).await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    // An upload cannot be continued through another repository.
    let other = location.replace("/v2/bad/repo/", "/v2/other/repo/");
    expect_error(
        api.send(Method::GET, &other, None, vec![]).await,
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    expect_error(
        api.send(Method::GET, "/v2/bad/repo/tags/list?n=lots", None, vec![])
            .await,
        400,
        "UNSUPPORTED",
    )
    .await;
    assert_eq!(
        api.send(Method::GET, "/v3/", None, vec![]).await.status(),
        404
    );
    expect_error(
        api.send(Method::POST, "/v2/bad/repo/manifests/ok", None, vec![])
            .await,
        405,
        "UNSUPPORTED",
    )
    .await;

    // Truncated bodies: a monolithic upload and a chunk cut off mid-way.
    let data = vec![7u8; 1000];
    let digest = sha256(&data);
    let response = raw_request(
        &registry.host(),
        &format!(
            "POST /v2/bad/repo/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
        ),
        &data[..500],
    );
    assert!(
        response.starts_with("HTTP/1.1 400") && response.contains("BLOB_UPLOAD_INVALID"),
        "truncated upload not refused with 400 BLOB_UPLOAD_INVALID: {response}"
    );
    assert_eq!(
        api.send(
            Method::HEAD,
            &format!("/v2/bad/repo/blobs/{digest}"),
            None,
            vec![]
        )
        .await
        .status(),
        404
    );

    let r = api
        .send(Method::POST, "/v2/bad/repo/blobs/uploads/", None, vec![])
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let _ = raw_request(
        &registry.host(),
        &format!("PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Range: 0-999\r\nContent-Length: 1000\r\n\r\n"),
        &data[..500],
    );
    // The client asks where the upload stands and resumes from there.
    let status = api.send(Method::GET, &location, None, vec![]).await;
    assert_eq!(status.status(), 204);
    let range = status.headers()["range"].to_str().unwrap().to_string();
    let end: usize = range.split('-').nth(1).unwrap().parse().unwrap();
    let offset = if end == 0 { 0 } else { end + 1 };
    assert!(offset <= 500, "more bytes recorded than were sent: {range}");
    let r = api
        .client
        .patch(format!("{}{location}", api.base))
        .header("content-range", format!("{offset}-999"))
        .body(data[offset..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let r = api
        .send(
            Method::PUT,
            &format!("{location}?digest={digest}"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status(), 201, "resumed upload could not complete");

    // Still healthy, still the same process.
    assert!(
        registry.child.inner.try_wait().unwrap().is_none(),
        "the server exited"
    );
    let r = api.send(Method::GET, "/v2/", None, vec![]).await;
    assert_eq!(r.status(), 200);
    let r = api
        .send(Method::GET, "/v2/bad/repo/manifests/ok", None, vec![])
        .await;
    assert_eq!(r.status(), 200);
    registry.kill9();
}

#[tokio::test(flavor = "multi_thread")]
async fn deletes_are_refused_when_disabled() {
    let registry = RegistryProcess::start(RegistryOptions {
        delete: false,
        ..RegistryOptions::default()
    });
    let api = Api {
        client: http_client(),
        base: registry.url(),
    };
    let digest = api.push_blob("keep/me", b"precious").await;
    let r = api
        .send(
            Method::DELETE,
            &format!("/v2/keep/me/blobs/{digest}"),
            None,
            vec![],
        )
        .await;
    expect_error(r, 405, "UNSUPPORTED").await;
    let r = api
        .send(Method::DELETE, "/v2/keep/me/manifests/latest", None, vec![])
        .await;
    expect_error(r, 405, "UNSUPPORTED").await;
    assert_eq!(
        api.send(
            Method::GET,
            &format!("/v2/keep/me/blobs/{digest}"),
            None,
            vec![]
        )
        .await
        .status(),
        200
    );
}
