//! The speed targets the issue sets, checked against a run's rows, and
//! each transfer's distance from the machine's limits written beside it.

use crate::blob::size_name;
use crate::report::{Report, Target};
use crate::Plan;

fn target(report: &mut Report, name: &str, met: Option<bool>, detail: String) {
    report.targets.push(Target {
        name: name.to_string(),
        met,
        detail,
    });
}

/// Notes "N% of LIMIT" on a transfer row.
fn note_share(report: &mut Report, key: &str, limit: f64, limit_name: &str) -> Option<f64> {
    let row = report.rows.iter_mut().find(|r| r.key == key)?;
    let share = row.ours.value() / limit;
    let text = format!("{:.0}% of {limit_name}", share * 100.0);
    row.note = if row.note.is_empty() {
        text
    } else {
        format!("{}; {text}", row.note)
    };
    Some(share)
}

pub fn check(report: &mut Report, plan: &Plan) {
    let sha = report.limit("sha256").unwrap_or(f64::INFINITY);
    let disk = report.limit("disk_write").unwrap_or(f64::INFINITY);
    let loopback = report.limit("loopback").unwrap_or(f64::INFINITY);
    let write_limit = sha.min(disk);
    let write_name = if sha < disk {
        "sha256/core"
    } else {
        "disk write"
    };
    let push_share = note_share(report, "blob_push", write_limit, write_name);
    note_share(report, "blob_push_chunked", write_limit, write_name);
    let pull_share = note_share(report, "blob_pull", loopback, "loopback");
    if let Some(disk_read) = report.limit("disk_read") {
        note_share(report, "blob_pull_cold", disk_read, "disk read");
    }
    note_share(report, "memory_push", write_limit, write_name);
    note_share(report, "memory_pull", loopback, "loopback");

    let ratio = |report: &Report, key: &str| report.row(key).and_then(|r| r.ratio());
    let blob = size_name(plan.blob);

    let push = ratio(report, "blob_push");
    target(
        report,
        &format!("{blob} blob push: >= 5x Distribution and >= 60% of min(sha256/core, disk write)"),
        push.zip(push_share).map(|(r, s)| r >= 5.0 && s >= 0.6),
        format!(
            "{} Distribution, {} of {write_name}",
            times(push),
            percent(push_share)
        ),
    );
    let pull = ratio(report, "blob_pull");
    target(
        report,
        &format!("{blob} blob pull (cached): >= Distribution and >= 70% of loopback"),
        pull.zip(pull_share).map(|(r, s)| r >= 1.0 && s >= 0.7),
        format!(
            "{} Distribution, {} of loopback",
            times(pull),
            percent(pull_share)
        ),
    );
    let get = ratio(report, "manifest_get");
    let p99 = report.row("manifest_get").and_then(|r| r.ours.p99_ms());
    target(
        report,
        "manifest GET by tag: >= 10x Distribution's requests/s, p99 < 5 ms at 64 connections",
        get.zip(p99).map(|(r, p)| r >= 10.0 && p < 5.0),
        format!(
            "{} Distribution, p99 {}",
            times(get),
            p99.map(|p| format!("{p:.2} ms")).unwrap_or("-".into())
        ),
    );
    let rows = ["small_push", "small_pull", "tags_list", "catalog"];
    let ratios: Vec<(&str, Option<f64>)> = rows.iter().map(|k| (*k, ratio(report, k))).collect();
    let all = ratios.iter().all(|(_, r)| r.is_some());
    target(
        report,
        "small blobs and listings: ahead of Distribution in every row",
        all.then(|| ratios.iter().all(|(_, r)| r.is_some_and(|r| r > 1.0))),
        ratios
            .iter()
            .map(|(k, r)| format!("{k} {}", times(*r)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let pull = ratio(report, "pull_docker");
    target(
        report,
        "rctl pull of the image: at most half of docker pull's time",
        pull.map(|r| r >= 2.0),
        format!("{} docker", times(pull)),
    );
    let push = ratio(report, "push_docker");
    target(
        report,
        "rctl push: ahead of docker push",
        push.map(|r| r > 1.0),
        format!("{} docker", times(push)),
    );
    let run = ratio(report, "run_true");
    target(
        report,
        "rctl run --rm true: faster than docker run --rm true",
        run.map(|r| r > 1.0),
        format!("{} docker", times(run)),
    );
    for (key, small_key, verb) in [
        ("memory_push", "memory_push_base", "push"),
        ("memory_pull", "memory_pull_base", "pull"),
    ] {
        let big = report.row(key).and_then(|r| r.ours.rss_mib());
        let small = report.row(small_key).and_then(|r| r.ours.rss_mib());
        let name = format!("server memory flat in blob size ({verb}): peak RSS within 10%");
        match (big, small) {
            (Some(big), Some(small)) => target(
                report,
                &name,
                Some((big - small).abs() <= 0.1 * small.max(big)),
                format!(
                    "{small:.1} MiB at {blob}, {big:.1} MiB at {} GiB",
                    plan.big_blob.unwrap_or(0) >> 30
                ),
            ),
            _ => target(
                report,
                &name,
                None,
                "the full run measures it (6 GiB)".into(),
            ),
        }
    }
}

fn times(ratio: Option<f64>) -> String {
    ratio
        .map(|r| format!("{r:.2}x"))
        .unwrap_or_else(|| "-".into())
}

fn percent(share: Option<f64>) -> String {
    share
        .map(|s| format!("{:.0}%", s * 100.0))
        .unwrap_or_else(|| "-".into())
}
