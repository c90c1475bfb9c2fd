//! Content discovery: tag listing, sorted and paginated with `n`, `last`
//! and `Link`, and the catalog.

use super::*;
use serde_json::Value;

const W: &str = "content discovery";

fn tags_of(resp: &Resp) -> Result<Vec<String>, String> {
    let body: Value = serde_json::from_slice(&resp.body).map_err(|e| format!("tags body: {e}"))?;
    body["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .ok_or_else(|| "no tags array".to_string())
}

pub async fn run(run: &mut Run) {
    let c = &run.client;
    let repo = run.repo.clone();
    let mut expected: Vec<String> = ["v1", "docker", "no-layers", "nondist", "index", "nested"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    expected.sort();

    let outcome = async {
        let r = c.get(&format!("/v2/{repo}/tags/list"), &[]).await?;
        r.expect(&[200])?;
        let tags = tags_of(&r)?;
        ensure(tags == expected, || {
            format!("tags {tags:?}, expected {expected:?} in lexical order")
        })
    }
    .await;
    run.report
        .record(W, "tags list holds every tag, in lexical order", outcome);

    let outcome = async {
        let r = c.get(&format!("/v2/{repo}/tags/list?n=2"), &[]).await?;
        r.expect(&[200])?;
        let first = tags_of(&r)?;
        ensure(first == expected[..2], || format!("first page {first:?}"))?;
        let link = r.require_header("link")?;
        ensure(link.contains("rel=\"next\""), || {
            format!("Link {link:?} lacks rel=\"next\"")
        })?;
        let next = link
            .trim()
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap_or("")
            .to_string();
        let r = c.get(&next, &[]).await?;
        r.expect(&[200])?;
        let second = tags_of(&r)?;
        ensure(second == expected[2..4], || {
            format!("second page (via Link) {second:?}")
        })
    }
    .await;
    run.report
        .record(W, "tags list paginated with n and a Link header", outcome);

    let outcome = async {
        let r = c
            .get(
                &format!("/v2/{repo}/tags/list?n=3&last={}", expected[1]),
                &[],
            )
            .await?;
        r.expect(&[200])?;
        let tags = tags_of(&r)?;
        ensure(tags == expected[2..5], || {
            format!("tags after {:?}: {tags:?}", expected[1])
        })
    }
    .await;
    run.report.record(W, "tags list with last", outcome);

    let outcome = async {
        let r = c.get(&format!("/v2/{repo}/tags/list?n=0"), &[]).await?;
        r.expect(&[200])?;
        let tags = tags_of(&r).unwrap_or_default();
        ensure(tags.is_empty(), || format!("n=0 gave {tags:?}"))
    }
    .await;
    run.report.record(W, "tags list with n=0 is empty", outcome);

    let outcome = async {
        let r = c
            .get(&format!("/v2/{repo}/never/pushed/tags/list"), &[])
            .await?;
        r.expect_error(&[404], "NAME_UNKNOWN")
    }
    .await;
    run.report.record(
        W,
        "tags list of an unknown repository is 404 NAME_UNKNOWN",
        outcome,
    );

    let outcome = async {
        let mut last: Option<String> = None;
        let mut seen = Vec::new();
        for _ in 0..10_000 {
            let path = match &last {
                Some(last) => format!("/v2/_catalog?n=100&last={last}"),
                None => "/v2/_catalog?n=100".to_string(),
            };
            let r = c.get(&path, &[]).await?;
            r.expect(&[200])?;
            let body: Value =
                serde_json::from_slice(&r.body).map_err(|e| format!("catalog body: {e}"))?;
            let page: Vec<String> = body["repositories"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let done = page.is_empty() || r.header("link").is_none();
            last = page.last().cloned();
            seen.extend(page);
            if done {
                break;
            }
        }
        ensure(
            seen.contains(&repo) && seen.contains(&run.other_repo),
            || format!("catalog lacks {repo} or {}", run.other_repo),
        )
    }
    .await;
    run.report
        .record(W, "catalog lists the repositories (paginated)", outcome);
}
