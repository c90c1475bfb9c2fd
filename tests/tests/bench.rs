//! The benchmark harness itself (no timing is asserted): `rbench --quick
//! --only registry --runs 1` against the real rregistry and Debian's
//! Distribution must finish, write its JSON with every registry scenario
//! measured on both systems, the machine's limits and the targets, and
//! leave none of the servers it started running.

use e2e::{bin_dir, require_tool, workspace_bin};
use serde_json::Value;
use std::process::Command;

const REGISTRY_ROWS: [&str; 9] = [
    "blob_push",
    "blob_pull",
    "blob_push_chunked",
    "small_push",
    "small_pull",
    "manifest_get",
    "manifest_head",
    "tags_list",
    "catalog",
];

fn figure(measure: &Value, field: &str) -> f64 {
    measure[field].as_f64().unwrap_or(0.0)
}

#[test]
fn quick_registry_run_measures_both_systems_and_stops_its_servers() {
    let test = "quick_registry_run_measures_both_systems_and_stops_its_servers";
    if !require_tool("docker-registry", test) {
        return;
    }
    let results = tempfile::tempdir().expect("results dir");
    let output = Command::new(workspace_bin("rbench"))
        .args(["--quick", "--only", "registry", "--runs", "1", "--bin"])
        .arg(bin_dir())
        .arg("--results")
        .arg(results.path())
        .output()
        .expect("run rbench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "rbench failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("ratio"), "no table printed:\n{stdout}");

    let files: Vec<_> = std::fs::read_dir(results.path())
        .expect("results dir")
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(files.len(), 1, "one JSON file per run");
    let json: Value =
        serde_json::from_slice(&std::fs::read(files[0].path()).expect("read results"))
            .expect("results are JSON");
    assert_eq!(json["mode"], "quick");

    // As root the page cache can be dropped: the disk read limit and the
    // pull from disk are measured too.
    let root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false)
    };
    let limits = json["limits"].as_array().expect("limits");
    let mut expected = vec!["sha256", "disk_write", "loopback"];
    if root {
        expected.push("disk_read");
    }
    for key in &expected {
        assert!(
            limits.iter().any(|l| l["key"] == *key),
            "limit {key} missing: {limits:?}"
        );
    }
    assert_eq!(limits.len(), expected.len(), "{limits:?}");
    for limit in limits {
        assert!(
            figure(limit, "mb_per_s") > 0.0,
            "limit not measured: {limit}"
        );
    }

    let rows = json["rows"].as_array().expect("rows");
    let cold: &[&str] = if root { &["blob_pull_cold"] } else { &[] };
    for key in REGISTRY_ROWS.iter().chain(cold) {
        let row = rows
            .iter()
            .find(|r| r["key"] == *key)
            .unwrap_or_else(|| panic!("no row {key} in {rows:?}"));
        assert_eq!(row["ours"]["system"], "rregistry", "{row}");
        assert_eq!(row["peer"]["system"], "distribution", "{row}");
        for side in ["ours", "peer"] {
            assert!(
                figure(&row[side], "median") > 0.0,
                "{key}: {side} not measured: {row}"
            );
            assert!(
                figure(&row[side], "peak_rss_mib") > 0.0,
                "{key}: {side} has no peak RSS: {row}"
            );
        }
        assert!(figure(row, "ratio") > 0.0, "{key}: no ratio: {row}");
        if key.starts_with("manifest") || key.starts_with("small") {
            assert!(figure(&row["ours"], "p99_ms") > 0.0, "{key}: no p99: {row}");
        }
    }
    let targets = json["targets"].as_array().expect("targets");
    assert!(
        targets.iter().any(|t| t["name"]
            .as_str()
            .is_some_and(|n| n.contains("manifest GET"))
            && t["met"].is_boolean()),
        "the manifest target is judged: {targets:?}"
    );

    // Every server ran with its config under the run's work directory.
    let leftover = Command::new("pgrep")
        .args(["-f", "rbench-[0-9]+/registry/"])
        .output()
        .expect("pgrep");
    assert!(
        leftover.stdout.is_empty(),
        "servers left running: {}",
        String::from_utf8_lossy(&leftover.stdout)
    );
}
