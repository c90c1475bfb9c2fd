//! Our conformance runner against the real rregistry (every check must
//! pass) and, for comparison, against Debian's Distribution, whose known
//! gaps (no referrers API among them) must be reported, not hidden.

use e2e::{require_tool, workspace_bin, RegistryOptions, RegistryProcess};
use std::process::Command;

fn run_conformance(url: &str) -> (bool, String) {
    let output = Command::new(workspace_bin("oci-conformance"))
        .arg(url)
        .output()
        .expect("run oci-conformance");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    (output.status.success(), stdout)
}

fn summary(stdout: &str) -> (usize, usize) {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.ends_with(" failed") && l.contains(" passed, "))
        .expect("summary line");
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    (numbers[0], numbers[1])
}

#[test]
fn rregistry_passes_every_conformance_check() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let (ok, stdout) = run_conformance(&registry.url());
    let (passed, failed) = summary(&stdout);
    assert!(ok, "conformance run failed");
    assert_eq!(failed, 0);
    assert!(passed >= 70, "only {passed} checks ran");
    // The same registry, run twice, stays conformant (no state leaks between runs).
    let (ok, _) = run_conformance(&registry.url());
    assert!(ok, "second conformance run failed");
}

#[test]
fn distribution_gaps_are_reported() {
    if !require_tool("docker-registry", "distribution_gaps_are_reported") {
        return;
    }
    let distribution = RegistryProcess::start_distribution();
    let (ok, stdout) = run_conformance(&distribution.url());
    let (passed, failed) = summary(&stdout);
    println!("Distribution 2.8: {passed} passed, {failed} failed");
    assert!(
        !ok,
        "Distribution 2.8 has no referrers API: the runner must fail it"
    );
    assert!(
        stdout.contains("FAIL  referrers"),
        "the missing referrers API is not reported"
    );
    // The core pull and push paths work on Distribution: the runner is not
    // failing it for our own mistakes.
    for check in [
        "PASS  push               POST then PUT with the body",
        "PASS  push               chunked upload (PATCH with Content-Range, then PUT)",
        "PASS  push               image manifest by tag",
        "PASS  push               index of indexes by tag",
        "PASS  pull               image manifest by tag: exact bytes, type, digest",
        "PASS  pull               layer blob (chunked)",
    ] {
        assert!(stdout.contains(check), "expected on Distribution: {check}");
    }
}
