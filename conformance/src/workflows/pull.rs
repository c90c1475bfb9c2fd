//! Pull: manifests by tag and digest (exact bytes, Content-Type and
//! digest), blobs whole and by range, and the 404s for unknown content.

use super::*;
use crate::data::sha256;

const W: &str = "pull";

async fn manifest_matches(
    c: &Client,
    repo: &str,
    reference: &str,
    manifest: &Manifest,
) -> Result<(), String> {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let accept = [
        crate::data::OCI_MANIFEST,
        crate::data::OCI_INDEX,
        crate::data::DOCKER_MANIFEST,
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
    .join(", ");
    let head = c
        .send(Method::HEAD, &path, &[("accept", accept.clone())], None)
        .await?;
    head.expect(&[200])?;
    ensure(
        head.header("docker-content-digest") == Some(manifest.digest().as_str()),
        || {
            format!(
                "HEAD Docker-Content-Digest {:?}",
                head.header("docker-content-digest")
            )
        },
    )?;
    ensure(
        head.header("content-length") == Some(manifest.bytes.len().to_string().as_str()),
        || {
            format!(
                "HEAD Content-Length {:?}, expected {}",
                head.header("content-length"),
                manifest.bytes.len()
            )
        },
    )?;
    let get = c.get(&path, &[("accept", accept)]).await?;
    get.expect(&[200])?;
    ensure(get.body == manifest.bytes, || {
        "body differs from the bytes pushed".into()
    })?;
    ensure(
        get.header("content-type") == Some(manifest.media_type),
        || {
            format!(
                "Content-Type {:?}, expected {}",
                get.header("content-type"),
                manifest.media_type
            )
        },
    )?;
    ensure(
        get.header("docker-content-digest") == Some(manifest.digest().as_str()),
        || {
            format!(
                "GET Docker-Content-Digest {:?}",
                get.header("docker-content-digest")
            )
        },
    )
}

async fn blob_matches(c: &Client, repo: &str, blob: &crate::data::Blob) -> Result<(), String> {
    let path = format!("/v2/{repo}/blobs/{}", blob.digest());
    let head = c.head(&path).await?;
    head.expect(&[200])?;
    ensure(
        head.header("content-length") == Some(blob.bytes.len().to_string().as_str()),
        || {
            format!(
                "HEAD Content-Length {:?}, expected {}",
                head.header("content-length"),
                blob.bytes.len()
            )
        },
    )?;
    let get = c.get(&path, &[]).await?;
    get.expect(&[200])?;
    ensure(get.body == blob.bytes, || {
        format!("body of {} bytes differs", get.body.len())
    })?;
    ensure(
        get.header("docker-content-digest")
            .is_none_or(|d| d == blob.digest()),
        || "wrong Docker-Content-Digest".into(),
    )
}

pub async fn run(run: &mut Run) {
    let c = &run.client;
    let repo = run.repo.clone();
    let d = &run.data;
    let checks = [
        (
            "image manifest by tag: exact bytes, type, digest",
            "v1".to_string(),
            &d.image,
        ),
        ("image manifest by digest", d.image.digest(), &d.image),
        (
            "Docker schema2 manifest by tag",
            "docker".to_string(),
            &d.docker_image,
        ),
        ("index by tag", "index".to_string(), &d.index),
        (
            "index of indexes by tag",
            "nested".to_string(),
            &d.nested_index,
        ),
        (
            "manifest with no layers",
            "no-layers".to_string(),
            &d.no_layers,
        ),
        (
            "manifest with a non-distributable layer",
            "nondist".to_string(),
            &d.nondist_image,
        ),
        (
            "sha512 manifest by sha512 digest",
            d.sha512_image.digest(),
            &d.sha512_image,
        ),
        ("artifact manifest by digest", d.sbom.digest(), &d.sbom),
    ];
    let mut outcomes = Vec::new();
    for (name, reference, manifest) in checks {
        outcomes.push((name, manifest_matches(c, &repo, &reference, manifest).await));
    }
    for (name, blob) in [
        ("config blob", &d.config),
        ("layer blob (POST then PUT)", &d.layers[0]),
        ("layer blob (chunked)", &d.layers[1]),
        ("artifact blob (streamed)", &d.artifact_blob),
        ("zero-length blob", &d.zero),
        ("sha512 blob (monolithic)", &d.sha512_config),
        ("sha512 blob (chunked)", &d.sha512_layer),
    ] {
        outcomes.push((name, blob_matches(c, &repo, blob).await));
    }
    for (name, outcome) in outcomes {
        run.report.record(W, name, outcome);
    }

    let layer = &d.layers[0];
    let path = format!("/v2/{repo}/blobs/{}", layer.digest());
    let outcome = async {
        let r = c.get(&path, &[("range", "bytes=10-19".into())]).await?;
        r.expect(&[206])?;
        ensure(r.body[..] == layer.bytes[10..20], || {
            "range body differs".into()
        })?;
        let range = r.require_header("content-range")?;
        ensure(
            range == format!("bytes 10-19/{}", layer.bytes.len()),
            || format!("Content-Range {range:?}"),
        )
    }
    .await;
    run.report
        .record(W, "blob range request (206 and Content-Range)", outcome);
    let outcome = async {
        let r = c
            .get(
                &path,
                &[("range", format!("bytes={}-", layer.bytes.len() + 10))],
            )
            .await?;
        r.expect(&[416]).map(|_| ())
    }
    .await;
    run.report
        .record(W, "unsatisfiable range answered 416", outcome);

    let unknown = sha256(b"never pushed");
    let outcome = async {
        c.get(&format!("/v2/{repo}/manifests/{unknown}"), &[])
            .await?
            .expect_error(&[404], "MANIFEST_UNKNOWN")?;
        c.get(&format!("/v2/{repo}/manifests/no-such-tag"), &[])
            .await?
            .expect_error(&[404], "MANIFEST_UNKNOWN")
    }
    .await;
    run.report
        .record(W, "unknown manifest answered 404 MANIFEST_UNKNOWN", outcome);
    let outcome = async {
        c.get(&format!("/v2/{repo}/blobs/{unknown}"), &[])
            .await?
            .expect_error(&[404], "BLOB_UNKNOWN")?;
        c.head(&format!("/v2/{repo}/blobs/{unknown}"))
            .await?
            .expect(&[404])
            .map(|_| ())
    }
    .await;
    run.report
        .record(W, "unknown blob answered 404 BLOB_UNKNOWN", outcome);
    let outcome = async {
        let r = c
            .get(
                &format!("/v2/{}/blobs/{}", run.other_repo, d.layers[1].digest()),
                &[],
            )
            .await?;
        r.expect(&[404]).map(|_| ())
    }
    .await;
    run.report.record(
        W,
        "a blob is not readable through a repository that lacks it",
        outcome,
    );
}
