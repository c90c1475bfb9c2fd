//! Referrers: the index of manifests whose `subject` is a digest, with
//! `artifactType` filtering, and an empty index for a subject with none.

use super::*;
use crate::data::{OCI_INDEX, SBOM_TYPE, SIGNATURE_TYPE};
use serde_json::Value;

const W: &str = "referrers";

async fn referrers(
    c: &Client,
    repo: &str,
    subject: &str,
    filter: Option<&str>,
) -> Result<(Resp, Vec<Value>), String> {
    let path = match filter {
        Some(t) => format!(
            "/v2/{repo}/referrers/{subject}?artifactType={}",
            t.replace('+', "%2B")
        ),
        None => format!("/v2/{repo}/referrers/{subject}"),
    };
    let r = c.get(&path, &[]).await?;
    r.expect(&[200])?;
    ensure(
        r.header("content-type")
            .is_some_and(|t| t.starts_with(OCI_INDEX)),
        || format!("Content-Type {:?}", r.header("content-type")),
    )?;
    let body: Value =
        serde_json::from_slice(&r.body).map_err(|e| format!("referrers body: {e}"))?;
    ensure(
        body["schemaVersion"] == 2 && body["mediaType"] == OCI_INDEX,
        || "not an OCI index".into(),
    )?;
    let manifests = body["manifests"]
        .as_array()
        .cloned()
        .ok_or("no manifests array")?;
    Ok((r, manifests))
}

fn find<'a>(manifests: &'a [Value], digest: &str) -> Option<&'a Value> {
    manifests.iter().find(|m| m["digest"] == digest)
}

pub async fn run(run: &mut Run) {
    let c = &run.client;
    let repo = run.repo.clone();
    let d = &run.data;
    let subject = d.image.digest();

    let outcome = async {
        let (_, manifests) = referrers(c, &repo, &subject, None).await?;
        ensure(manifests.len() == 2, || {
            format!("{} referrers, expected 2", manifests.len())
        })?;
        let sbom = find(&manifests, &d.sbom.digest()).ok_or("the artifact is missing")?;
        ensure(sbom["artifactType"] == SBOM_TYPE, || {
            format!("artifactType {}", sbom["artifactType"])
        })?;
        ensure(sbom["size"] == d.sbom.bytes.len(), || "wrong size".into())?;
        ensure(
            sbom["annotations"]["org.opencontainers.image.created"] == "2026-01-01T00:00:00Z",
            || "annotations not carried".into(),
        )?;
        let signature =
            find(&manifests, &d.signature.digest()).ok_or("the signature is missing")?;
        ensure(signature["artifactType"] == SIGNATURE_TYPE, || {
            format!(
                "artifactType {} (expected the config media type)",
                signature["artifactType"]
            )
        })
    }
    .await;
    run.report
        .record(W, "referrers list every manifest with the subject", outcome);

    let outcome = async {
        let (r, manifests) = referrers(c, &repo, &subject, Some(SBOM_TYPE)).await?;
        ensure(
            manifests.len() == 1 && manifests[0]["digest"] == d.sbom.digest(),
            || format!("filtered list {manifests:?}"),
        )?;
        ensure(
            r.header("oci-filters-applied") == Some("artifactType"),
            || "missing OCI-Filters-Applied".into(),
        )
    }
    .await;
    run.report
        .record(W, "artifactType filter with OCI-Filters-Applied", outcome);

    let outcome = async {
        let (_, manifests) = referrers(c, &repo, &d.missing_subject, None).await?;
        ensure(
            find(&manifests, &d.orphan_referrer.digest()).is_some(),
            || "referrer of a missing subject not listed".into(),
        )
    }
    .await;
    run.report
        .record(W, "referrers of a subject that was never pushed", outcome);

    let outcome = async {
        let (_, manifests) = referrers(c, &repo, &d.config.digest(), None).await?;
        ensure(manifests.is_empty(), || {
            format!("expected none, got {}", manifests.len())
        })
    }
    .await;
    run.report.record(
        W,
        "a digest with no referrers gives an empty index",
        outcome,
    );

    let outcome = async {
        c.get(&format!("/v2/{repo}/referrers/sha256:not-a-digest"), &[])
            .await?
            .expect(&[400])
            .map(|_| ())
    }
    .await;
    run.report
        .record(W, "an invalid digest is refused with 400", outcome);
}
