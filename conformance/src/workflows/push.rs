//! Push: every upload path (monolithic, POST then PUT, chunked, streamed,
//! mount with and without `from`), the failures the spec requires (digest
//! mismatch, out-of-order chunk, unknown upload), and every manifest kind
//! of the data set, including sha512 ones.

use super::*;
use crate::data::{sha256, Blob, OCI_LAYER};

const W: &str = "push";

fn created(resp: &Resp, digest: &str) -> Result<(), String> {
    resp.expect(&[201])?;
    resp.require_header("location")?;
    match resp.header("docker-content-digest") {
        Some(d) if d != digest => Err(format!("Docker-Content-Digest {d}, expected {digest}")),
        _ => Ok(()),
    }
}

pub async fn run(run: &mut Run) {
    let c = &run.client;
    let repo = run.repo.clone();
    let d = &run.data;

    let base = c.get("/v2/", &[]).await;
    let outcome = base.and_then(|r| {
        r.expect(&[200])?;
        ensure(
            r.header("docker-distribution-api-version") == Some("registry/2.0"),
            || "missing Docker-Distribution-API-Version: registry/2.0".into(),
        )
    });
    run.report.record(
        W,
        "GET /v2/ answers 200 with the API version header",
        outcome,
    );

    let mut results: Vec<(&str, Result<(), String>)> = Vec::new();
    let r = push_monolithic(c, &repo, &d.config)
        .await
        .and_then(|r| created(&r, &d.config.digest()));
    results.push(("monolithic upload (POST ?digest=, or 202 then PUT)", r));
    let r = push_post_put(c, &repo, &d.layers[0])
        .await
        .and_then(|r| created(&r, &d.layers[0].digest()));
    results.push(("POST then PUT with the body", r));
    let r = push_chunked(c, &repo, &d.layers[1], 1024 * 1024)
        .await
        .and_then(|r| created(&r, &d.layers[1].digest()));
    results.push(("chunked upload (PATCH with Content-Range, then PUT)", r));
    let r = push_streamed(c, &repo, &d.artifact_blob)
        .await
        .and_then(|r| created(&r, &d.artifact_blob.digest()));
    results.push(("streamed PATCH without Content-Range, then PUT", r));
    let r = push_post_put(c, &repo, &d.zero)
        .await
        .and_then(|r| created(&r, &d.zero.digest()));
    results.push(("zero-length blob", r));
    let r = push_monolithic(c, &repo, &d.empty_config)
        .await
        .and_then(|r| created(&r, &d.empty_config.digest()));
    results.push(("empty config blob {}", r));
    let r = push_monolithic(c, &repo, &d.docker_config)
        .await
        .and_then(|r| created(&r, &d.docker_config.digest()));
    results.push(("Docker config blob", r));
    let r = push_post_put(c, &repo, &d.nondist_layer)
        .await
        .and_then(|r| created(&r, &d.nondist_layer.digest()));
    results.push(("non-distributable layer blob", r));
    let r = push_monolithic(c, &repo, &d.sha512_config)
        .await
        .and_then(|r| created(&r, &d.sha512_config.digest()));
    results.push(("sha512 blob, monolithic", r));
    let r = push_chunked(c, &repo, &d.sha512_layer, 400 * 1024)
        .await
        .and_then(|r| created(&r, &d.sha512_layer.digest()));
    results.push(("sha512 blob, chunked", r));
    for (name, outcome) in results {
        run.report.record(W, name, outcome);
    }

    let outcome = upload_status(c, &repo).await;
    run.report.record(
        W,
        "GET upload status gives 204, Range and Location",
        outcome,
    );
    let outcome = out_of_order(c, &repo).await;
    run.report
        .record(W, "out-of-order chunk refused with 416", outcome);
    let outcome = cancel(c, &repo).await;
    run.report
        .record(W, "DELETE cancels an upload; it is then unknown", outcome);
    let outcome = wrong_digest(c, &repo).await;
    run.report
        .record(W, "digest mismatch refused with DIGEST_INVALID", outcome);
    let outcome = unknown_upload(c, &repo).await;
    run.report.record(
        W,
        "unknown upload id answered 404 BLOB_UPLOAD_UNKNOWN",
        outcome,
    );

    let other = run.other_repo.clone();
    let outcome = mount(c, &other, &d.layers[0], Some(&repo)).await;
    run.report
        .record(W, "cross-repository mount with from (201)", outcome);
    let outcome = mount(c, &other, &d.config, None).await;
    run.report.record(
        W,
        "mount without from (201, or 202 and a usable upload)",
        outcome,
    );
    let unknown = Blob::new(crate::data::random_bytes(7777, 100), OCI_LAYER);
    let outcome = mount_fallback(c, &other, &unknown, &repo).await;
    run.report.record(
        W,
        "mount of an unknown blob falls back to an upload (202)",
        outcome,
    );

    let manifests = [
        ("image manifest by tag", "v1", &d.image),
        ("Docker schema2 manifest by tag", "docker", &d.docker_image),
        (
            "manifest with no layers (empty config with data)",
            "no-layers",
            &d.no_layers,
        ),
        (
            "manifest with a non-distributable layer with urls",
            "nondist",
            &d.nondist_image,
        ),
        ("index by tag", "index", &d.index),
        ("index of indexes by tag", "nested", &d.nested_index),
    ];
    for (name, tag, manifest) in manifests {
        let outcome = put_manifest(c, &repo, tag, manifest)
            .await
            .and_then(|r| created(&r, &manifest.digest()));
        run.report.record(W, name, outcome);
    }
    let outcome = put_manifest(c, &repo, &d.image.digest(), &d.image)
        .await
        .and_then(|r| created(&r, &d.image.digest()));
    run.report.record(W, "manifest by digest", outcome);
    let outcome = put_manifest(c, &repo, &d.sha512_image.digest(), &d.sha512_image)
        .await
        .and_then(|r| created(&r, &d.sha512_image.digest()));
    run.report
        .record(W, "sha512 manifest by sha512 digest", outcome);

    for (name, manifest, subject) in [
        (
            "artifact with artifactType and subject: OCI-Subject returned",
            &d.sbom,
            d.image.digest(),
        ),
        (
            "manifest with subject and no artifactType: OCI-Subject returned",
            &d.signature,
            d.image.digest(),
        ),
        (
            "manifest whose subject does not exist is accepted",
            &d.orphan_referrer,
            d.missing_subject.clone(),
        ),
    ] {
        let outcome = put_manifest(c, &repo, &manifest.digest(), manifest)
            .await
            .and_then(|r| {
                created(&r, &manifest.digest())?;
                ensure(r.header("oci-subject") == Some(subject.as_str()), || {
                    format!(
                        "OCI-Subject {:?}, expected {subject}",
                        r.header("oci-subject")
                    )
                })
            });
        run.report.record(W, name, outcome);
    }

    let outcome = missing_blob_manifest(run).await;
    run.report.record(
        W,
        "manifest naming an unknown blob refused with MANIFEST_BLOB_UNKNOWN",
        outcome,
    );
    let outcome = async {
        let r = c
            .send(
                Method::PUT,
                &format!("/v2/{repo}/manifests/broken"),
                &[("content-type", crate::data::OCI_MANIFEST.to_string())],
                Some(Bytes::from_static(b"{\"schemaVersion\": 2, \"config\": ")),
            )
            .await?;
        r.expect_error(&[400], "MANIFEST_INVALID")
    }
    .await;
    run.report.record(
        W,
        "malformed manifest refused with MANIFEST_INVALID",
        outcome,
    );
}

async fn upload_status(c: &Client, repo: &str) -> Result<(), String> {
    let location = start_upload(c, repo).await?;
    let r = c
        .send(
            Method::PATCH,
            &location,
            &[("content-range", "0-9".into())],
            Some(Bytes::from_static(b"0123456789")),
        )
        .await?;
    r.expect(&[202])?;
    let location = r.require_header("location")?.to_string();
    let status = c.get(&location, &[]).await?;
    status.expect(&[204])?;
    status.require_header("location")?;
    let range = status.require_header("range")?;
    ensure(range == "0-9", || format!("Range {range:?}, expected 0-9"))?;
    c.delete(&location).await.map(|_| ())
}

async fn out_of_order(c: &Client, repo: &str) -> Result<(), String> {
    let location = start_upload(c, repo).await?;
    let first = c
        .send(
            Method::PATCH,
            &location,
            &[("content-range", "0-4".into())],
            Some(Bytes::from_static(b"01234")),
        )
        .await?;
    first.expect(&[202])?;
    let location = first.require_header("location")?.to_string();
    let gap = c
        .send(
            Method::PATCH,
            &location,
            &[("content-range", "10-14".into())],
            Some(Bytes::from_static(b"abcde")),
        )
        .await?;
    gap.expect(&[416])?;
    let status = c.get(&location, &[]).await?;
    status.expect(&[204])?;
    let range = status.require_header("range")?;
    ensure(range == "0-4", || {
        format!("after the refused chunk, Range is {range:?}, expected 0-4")
    })?;
    c.delete(&location).await.map(|_| ())
}

async fn cancel(c: &Client, repo: &str) -> Result<(), String> {
    let location = start_upload(c, repo).await?;
    c.delete(&location).await?.expect(&[204])?;
    c.get(&location, &[])
        .await?
        .expect_error(&[404], "BLOB_UPLOAD_UNKNOWN")
}

async fn wrong_digest(c: &Client, repo: &str) -> Result<(), String> {
    let wrong = sha256(b"something else");
    let r = monolithic_bytes(c, repo, &wrong, Bytes::from_static(b"the real content")).await?;
    r.expect_error(&[400], "DIGEST_INVALID")?;
    let head = c.head(&format!("/v2/{repo}/blobs/{wrong}")).await?;
    ensure(head.status == 404, || {
        format!("the mismatched blob is visible ({})", head.status)
    })
}

async fn unknown_upload(c: &Client, repo: &str) -> Result<(), String> {
    c.get(
        &format!("/v2/{repo}/blobs/uploads/00000000-0000-4000-8000-000000000000"),
        &[],
    )
    .await?
    .expect_error(&[404], "BLOB_UPLOAD_UNKNOWN")
}

async fn mount(c: &Client, target: &str, blob: &Blob, from: Option<&str>) -> Result<(), String> {
    let path = match from {
        Some(from) => format!(
            "/v2/{target}/blobs/uploads/?mount={}&from={from}",
            blob.digest()
        ),
        None => format!("/v2/{target}/blobs/uploads/?mount={}", blob.digest()),
    };
    let r = c.send(Method::POST, &path, &[], None).await?;
    match (r.status, from) {
        (201, _) => {
            created(&r, &blob.digest())?;
            c.head(&format!("/v2/{target}/blobs/{}", blob.digest()))
                .await?
                .expect(&[200])
                .map(|_| ())
        }
        (202, None) => {
            // Not mounted: the answer must be a usable upload session.
            let location = r.require_header("location")?.to_string();
            let done = c
                .send(
                    Method::PUT,
                    &with_digest(&location, &blob.digest()),
                    &[],
                    Some(blob.bytes.clone()),
                )
                .await?;
            created(&done, &blob.digest())
        }
        _ => r.expect(&[201]).map(|_| ()),
    }
}

async fn mount_fallback(c: &Client, target: &str, blob: &Blob, from: &str) -> Result<(), String> {
    let path = format!(
        "/v2/{target}/blobs/uploads/?mount={}&from={from}",
        blob.digest()
    );
    let r = c.send(Method::POST, &path, &[], None).await?;
    r.expect(&[202])?;
    let location = r.require_header("location")?.to_string();
    c.delete(&location).await.map(|_| ())
}

async fn missing_blob_manifest(run: &Run) -> Result<(), String> {
    let layer = Blob::new(crate::data::random_bytes(4242, 64), OCI_LAYER);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::data::OCI_MANIFEST,
        "config": run.data.config.descriptor(),
        "layers": [layer.descriptor()]
    });
    let r = run
        .client
        .send(
            Method::PUT,
            &format!("/v2/{}/manifests/missing-blob", run.repo),
            &[("content-type", crate::data::OCI_MANIFEST.to_string())],
            Some(Bytes::from(manifest.to_string())),
        )
        .await?;
    r.expect_error(&[400, 404], "MANIFEST_BLOB_UNKNOWN")
}
