//! Content management: deleting tags, manifests and blobs, and what must
//! (and must not) go with them.

use super::*;
use serde_json::Value;

const W: &str = "content management";

pub async fn run(run: &mut Run) {
    let c = &run.client;
    let repo = run.repo.clone();
    let d = &run.data;

    let outcome = async {
        c.delete(&format!("/v2/{repo}/manifests/nondist"))
            .await?
            .expect(&[202])?;
        c.get(&format!("/v2/{repo}/manifests/nondist"), &[])
            .await?
            .expect_error(&[404], "MANIFEST_UNKNOWN")?;
        c.get(
            &format!("/v2/{repo}/manifests/{}", d.nondist_image.digest()),
            &[],
        )
        .await?
        .expect(&[200])?;
        let tags = c.get(&format!("/v2/{repo}/tags/list"), &[]).await?;
        let body: Value = serde_json::from_slice(&tags.body).map_err(|e| e.to_string())?;
        ensure(
            !body["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "nondist")),
            || "deleted tag still listed".into(),
        )
    }
    .await;
    run.report
        .record(W, "DELETE by tag removes the tag only", outcome);

    let outcome = async {
        let path = format!("/v2/{repo}/manifests/{}", d.signature.digest());
        c.delete(&path).await?.expect(&[202])?;
        c.get(&path, &[])
            .await?
            .expect_error(&[404], "MANIFEST_UNKNOWN")?;
        let r = c
            .get(&format!("/v2/{repo}/referrers/{}", d.image.digest()), &[])
            .await?;
        r.expect(&[200])?;
        let body: Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
        let listed = body["manifests"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["digest"] == d.signature.digest()));
        ensure(!listed, || "a deleted referrer is still listed".into())
    }
    .await;
    run.report.record(
        W,
        "DELETE manifest by digest; it leaves the referrers list",
        outcome,
    );

    let outcome = async {
        let path = format!("/v2/{repo}/manifests/{}", d.sha512_image.digest());
        c.delete(&path).await?.expect(&[202])?;
        c.get(&path, &[]).await?.expect(&[404]).map(|_| ())
    }
    .await;
    run.report
        .record(W, "DELETE sha512 manifest by digest", outcome);

    let outcome = async {
        let path = format!("/v2/{repo}/manifests/{}", d.image.digest());
        c.delete(&path).await?.expect(&[202])?;
        c.get(&format!("/v2/{repo}/manifests/v1"), &[])
            .await?
            .expect(&[404])
            .map(|_| ())
    }
    .await;
    run.report.record(
        W,
        "DELETE manifest by digest also removes its tags",
        outcome,
    );

    let outcome = async {
        let path = format!("/v2/{repo}/blobs/{}", d.layers[1].digest());
        c.delete(&path).await?.expect(&[202])?;
        c.get(&path, &[])
            .await?
            .expect_error(&[404], "BLOB_UNKNOWN")?;
        let path = format!("/v2/{repo}/blobs/{}", d.sha512_layer.digest());
        c.delete(&path).await?.expect(&[202])?;
        c.head(&path).await?.expect(&[404]).map(|_| ())
    }
    .await;
    run.report
        .record(W, "DELETE blob (sha256 and sha512)", outcome);

    let outcome = async {
        c.delete(&format!("/v2/{repo}/blobs/{}", d.layers[0].digest()))
            .await?
            .expect(&[202])?;
        let path = format!("/v2/{}/blobs/{}", run.other_repo, d.layers[0].digest());
        c.head(&path).await?.expect(&[200]).map(|_| ())
    }
    .await;
    run.report.record(
        W,
        "a mounted blob survives deletes in its source repository",
        outcome,
    );

    let outcome = async {
        c.delete(&format!("/v2/{repo}/manifests/no-such-tag"))
            .await?
            .expect(&[404])
            .map(|_| ())
    }
    .await;
    run.report
        .record(W, "DELETE of an unknown tag is 404", outcome);
}
