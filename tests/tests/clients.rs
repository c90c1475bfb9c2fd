//! Real clients against the real rregistry: dockerd builds an image
//! `FROM scratch` holding busybox-static, pushes it, removes it, pulls it
//! back and runs it; skopeo copies it to an `oci:` directory and back into
//! another repository and inspects it; docker runs the copy.

use e2e::docker::{busybox_context, Dockerd};
use e2e::{require_tool, RegistryOptions, RegistryProcess};
use std::process::Command;

const GREETING: &str = "hello from rregistry";

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn docker_push_pull_run_and_skopeo_round_trip() {
    let test = "docker_push_pull_run_and_skopeo_round_trip";
    if !(require_tool("dockerd", test)
        && require_tool("skopeo", test)
        && require_tool("busybox", test))
    {
        return;
    }
    let registry = RegistryProcess::start(RegistryOptions::default());
    let dockerd = Dockerd::start();
    let host = registry.host();

    // Build FROM scratch with busybox-static.
    let context = busybox_context(&[], &["/bin/busybox", "echo", GREETING]);
    let image = format!("{host}/e2e/busybox:1");
    dockerd.docker_ok(&["build", "-t", &image, &context.path().display().to_string()]);

    // Push, remove, pull, run.
    let push = dockerd.docker_ok(&["push", &image]);
    assert!(push.contains("digest: sha256:"), "push output: {push}");
    dockerd.docker_ok(&["rmi", &image]);
    let images = dockerd.docker_ok(&["images", "-q", &image]);
    assert!(images.trim().is_empty(), "image still present after rmi");
    dockerd.docker_ok(&["pull", &image]);
    let out = dockerd.docker_ok(&["run", "--rm", "--network", "none", &image]);
    assert_eq!(out.trim(), GREETING);

    // skopeo: registry -> oci: directory -> another repository, then inspect.
    let layout = tempfile::tempdir().expect("oci layout");
    let oci = format!("oci:{}:busybox", layout.path().display());
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{image}"),
        &oci,
    ]);
    assert!(
        layout.path().join("index.json").exists(),
        "no OCI layout written"
    );
    let copied = format!("{host}/e2e/copied:2");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &oci,
        &format!("docker://{copied}"),
    ]);
    let inspect = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{copied}"),
    ]);
    let inspect: serde_json::Value = serde_json::from_str(&inspect).expect("inspect JSON");
    assert_eq!(
        inspect["Layers"].as_array().map(Vec::len),
        Some(1),
        "{inspect}"
    );
    assert_eq!(inspect["Architecture"], "amd64", "{inspect}");
    assert!(
        inspect["Digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{inspect}"
    );
    let tags = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{host}/e2e/copied"),
    ]);
    assert!(tags.contains("\"2\""), "{tags}");

    // The copy, pulled by docker, runs the same.
    dockerd.docker_ok(&["pull", &copied]);
    let out = dockerd.docker_ok(&["run", "--rm", "--network", "none", &copied]);
    assert_eq!(out.trim(), GREETING);
}
