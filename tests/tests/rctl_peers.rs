//! rctl with real peers: Debian's Distribution behind htpasswd (Basic
//! auth, `rctl login`/`logout` sharing docker's config.json), dockerd in
//! both directions, and skopeo reading rctl's local OCI layout.

use e2e::api::push_image;
use e2e::docker::{busybox_context, Dockerd};
use e2e::rctl::Rctl;
use e2e::{http_client, require_tool, RegistryOptions, RegistryProcess};
use serde_json::Value;
use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn distribution_with_basic_auth() {
    let test = "distribution_with_basic_auth";
    if !(require_tool("docker-registry", test) && require_tool("htpasswd", test)) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let out = Command::new("htpasswd")
        .args(["-Bbn", "ci-user", "s3cret pass"])
        .output()
        .unwrap();
    std::fs::write(&htpasswd, &out.stdout).unwrap();
    let distribution = RegistryProcess::start_distribution_with(RegistryOptions {
        extra_yaml: format!(
            "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
            htpasswd.display()
        ),
        ..RegistryOptions::default()
    });
    let ours = RegistryProcess::start(RegistryOptions::default());
    let target = format!("{}/auth/app:1", distribution.host());

    // An image made in the engine's store from a rootfs tarball: a
    // docker-archive around it, loaded with rctl load.
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/greeting"), "from a rootfs tarball\n").unwrap();
    std::fs::write(rootfs.join("etc/data"), vec![42u8; 300_000]).unwrap();
    let tar = |args: &[&str]| {
        let status = Command::new("tar").args(args).status().unwrap();
        assert!(status.success(), "tar {args:?}");
    };
    let w = work.path().display().to_string();
    tar(&[
        "-C",
        &rootfs.display().to_string(),
        "-cf",
        &format!("{w}/layer.tar"),
        ".",
    ]);
    let diff_id = e2e::sha256(&std::fs::read(work.path().join("layer.tar")).unwrap());
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "config": {"Cmd": ["/bin/sh"]}});
    std::fs::write(work.path().join("config.json"), config.to_string()).unwrap();
    let manifest = serde_json::json!([{"Config": "config.json", "RepoTags": [target], "Layers": ["layer.tar"]}]);
    std::fs::write(work.path().join("manifest.json"), manifest.to_string()).unwrap();
    tar(&[
        "-C",
        &w,
        "-cf",
        &format!("{w}/archive.tar"),
        "config.json",
        "layer.tar",
        "manifest.json",
    ]);

    let rctl = Rctl::new();
    let out = rctl.ok(&["load", "-i", &format!("{w}/archive.tar")]);
    assert!(out.contains(&format!("Loaded image: {target}")), "{out}");
    let loaded: Value = serde_json::from_str(&rctl.ok(&["inspect", &target])).unwrap();
    let digest = loaded["Digest"].as_str().unwrap().to_string();
    assert_eq!(loaded["Config"]["rootfs"]["diff_ids"][0], diff_id);
    // The same image to rregistry, and back into a fresh store, identical.
    let ours_name = format!("{}/auth/app:1", ours.host());
    rctl.ok(&["tag", &target, &ours_name]);
    rctl.ok(&["push", "-q", &ours_name]);
    let check = Rctl::new();
    check.ok(&["pull", "-q", &ours_name]);
    let pulled: Value = serde_json::from_str(&check.ok(&["inspect", &ours_name])).unwrap();
    assert_eq!(pulled["Digest"], digest.as_str());
    assert_eq!(pulled["Source"], "local");
    let err = rctl.fails(&["push", &target]);
    assert!(err.contains("401") || err.contains("UNAUTHORIZED"), "{err}");

    let wrong = rctl.login(&distribution.host(), "ci-user", "wrong");
    assert!(!wrong.status.success(), "a wrong password was accepted");
    let right = rctl.login(&distribution.host(), "ci-user", "s3cret pass");
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    assert!(String::from_utf8_lossy(&right.stdout).contains("Login Succeeded"));
    let config: Value =
        serde_json::from_slice(&std::fs::read(rctl.docker_config.join("config.json")).unwrap())
            .unwrap();
    assert!(
        config["auths"][distribution.host()]["auth"].is_string(),
        "{config}"
    );

    let out = rctl.ok(&["push", &target]);
    assert!(out.contains(&format!("1: digest: {digest}")), "{out}");
    // A fresh store with the same docker config pulls it back, identical.
    let mut fresh = Rctl::new();
    fresh.docker_config = rctl.docker_config.clone();
    fresh.ok(&["pull", "-q", &target]);
    assert_eq!(fresh.ok(&["digest", &target]).trim(), digest);
    assert_eq!(
        fresh
            .ok(&["tags", &format!("{}/auth/app", distribution.host())])
            .trim(),
        "1"
    );
    assert!(fresh
        .ok(&["catalog", &distribution.host()])
        .contains("auth/app"));
    // Copy back the other way: push the pulled image to rregistry under a new name.
    let back = format!("{}/copied/app:2", ours.host());
    fresh.ok(&["tag", &target, &back]);
    fresh.ok(&["push", "-q", &back]);
    assert_eq!(fresh.ok(&["digest", &back]).trim(), digest);

    let out = rctl.ok(&["logout", &distribution.host()]);
    assert!(out.contains("Removing login credentials"), "{out}");
    let err = rctl.fails(&["digest", &target]);
    assert!(err.contains("401"), "{err}");
}

#[test]
fn docker_interop_both_ways_and_skopeo_reads_the_store() {
    let test = "docker_interop_both_ways_and_skopeo_reads_the_store";
    if !(require_tool("dockerd", test)
        && require_tool("skopeo", test)
        && require_tool("busybox", test))
    {
        return;
    }
    let registry = RegistryProcess::start(RegistryOptions::default());
    let dockerd = Dockerd::start();
    let host = registry.host();
    let context = busybox_context(
        &[("greeting", "hello via rctl\n")],
        &["/bin/busybox", "cat", "/greeting"],
    );
    let built = format!("{host}/interop/docker:1");
    dockerd.docker_ok(&["build", "-t", &built, &context.path().display().to_string()]);
    dockerd.docker_ok(&["push", &built]);

    // docker push -> rctl pull: the same manifest and layers.
    let rctl = Rctl::new();
    rctl.ok(&["pull", "-q", &built]);
    let local: Value = serde_json::from_str(&rctl.ok(&["inspect", &built])).unwrap();
    let remote: Value = serde_json::from_str(
        &String::from_utf8(
            Command::new("skopeo")
                .args([
                    "inspect",
                    "--raw",
                    "--tls-verify=false",
                    &format!("docker://{built}"),
                ])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(local["Manifest"]["layers"], remote["layers"]);
    assert_eq!(local["Source"], "local");

    // rctl push -> docker pull and run.
    let pushed = format!("{host}/interop/rctl:2");
    rctl.ok(&["tag", &built, &pushed]);
    rctl.ok(&["push", &pushed]);
    dockerd.docker_ok(&["pull", &pushed]);
    let out = dockerd.docker_ok(&["run", "--rm", "--network", "none", &pushed]);
    assert_eq!(out.trim(), "hello via rctl");

    // rctl save -> docker load -> run.
    let archives = tempfile::tempdir().unwrap();
    let saved = archives.path().join("saved.tar");
    rctl.ok(&["save", "-o", &saved.display().to_string(), &pushed]);
    dockerd.docker_ok(&["rmi", &pushed]);
    let out = dockerd.docker_ok(&["load", "-i", &saved.display().to_string()]);
    assert!(out.contains(&pushed), "{out}");
    let out = dockerd.docker_ok(&["run", "--rm", "--network", "none", &pushed]);
    assert_eq!(out.trim(), "hello via rctl");

    // docker save -> rctl load (a fresh store) -> push -> docker pull -> run.
    let from_docker = archives.path().join("docker.tar");
    dockerd.docker_ok(&["save", "-o", &from_docker.display().to_string(), &built]);
    let loader = Rctl::new();
    let out = loader.ok(&["load", "-i", &from_docker.display().to_string()]);
    assert!(out.contains(&format!("Loaded image: {built}")), "{out}");
    let reloaded = format!("{host}/interop/loaded:3");
    loader.ok(&["tag", &built, &reloaded]);
    loader.ok(&["push", &reloaded]);
    dockerd.docker_ok(&["pull", &reloaded]);
    let out = dockerd.docker_ok(&["run", "--rm", "--network", "none", &reloaded]);
    assert_eq!(out.trim(), "hello via rctl");

    // OCI archive round trip keeps the digest.
    let oci_archive = archives.path().join("oci.tar");
    rctl.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        &oci_archive.display().to_string(),
        &pushed,
    ]);
    let other = Rctl::new();
    other.ok(&["load", "-i", &oci_archive.display().to_string()]);
    let a: Value = serde_json::from_str(&rctl.ok(&["inspect", &pushed])).unwrap();
    let b: Value = serde_json::from_str(&other.ok(&["inspect", &pushed])).unwrap();
    assert_eq!(
        (a["Digest"].clone(), b["Source"].as_str()),
        (b["Digest"].clone(), Some("local"))
    );

    // skopeo reads the local store as an OCI layout. (Its oci: transport
    // lists only OCI-typed entries; docker schema2 manifests are kept
    // byte for byte, so the check uses an OCI image.)
    let rt = tokio::runtime::Runtime::new().unwrap();
    let layers = vec![vec![1u8; 4096], vec![2u8; 8192]];
    let (digest, _) = rt.block_on(push_image(
        &http_client(),
        &registry.url(),
        "interop/oci",
        "3",
        "amd64",
        &layers,
    ));
    let oci = format!("{host}/interop/oci:3");
    rctl.ok(&["pull", "-q", &oci]);
    let out = Command::new("skopeo")
        .args(["inspect", &format!("oci:{}:{oci}", rctl.root().display())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo cannot read the store: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspect: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspect["Digest"], digest);
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_between_registries_and_layouts() {
    if !require_tool("docker-registry", "copy_between_registries_and_layouts") {
        return;
    }
    let ours = RegistryProcess::start(RegistryOptions::default());
    let distribution = RegistryProcess::start_distribution();
    let client = http_client();
    let base = ours.url();
    let layers: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i + 10; 200_000]).collect();
    let (amd64, _) = push_image(&client, &base, "src/multi", "amd64", "amd64", &layers).await;
    let (arm64, _) = push_image(&client, &base, "src/multi", "arm64", "arm64", &layers[1..]).await;
    let (index, _) = e2e::api::push_index(
        &client,
        &base,
        "src/multi",
        "1",
        &[(&amd64, "linux/amd64"), (&arm64, "linux/arm64")],
    )
    .await;
    let (a, d) = (ours.host(), distribution.host());
    let rctl = Rctl::new();

    // Every platform to Distribution: the same index digest, both platforms readable there.
    let out = rctl.ok(&[
        "copy",
        "--all",
        &format!("docker://{a}/src/multi:1"),
        &format!("{d}/dst/multi:1"),
    ]);
    assert_eq!(out.lines().last(), Some(index.as_str()), "{out}");
    assert_eq!(
        rctl.ok(&["digest", &format!("{d}/dst/multi:1")]).trim(),
        index
    );
    assert_eq!(
        rctl.ok(&["digest", &format!("{d}/dst/multi@{arm64}")])
            .trim(),
        arm64
    );
    // One platform back: the platform's manifest under the new tag.
    let out = rctl.ok(&[
        "copy",
        &format!("{d}/dst/multi:1"),
        &format!("{a}/back/single:1"),
    ]);
    assert_eq!(out.lines().last(), Some(amd64.as_str()), "{out}");
    // Within one registry, blobs are mounted, not copied.
    let out = rctl.ok(&[
        "copy",
        &format!("{a}/src/multi:amd64"),
        &format!("{a}/mounted/x:1"),
    ]);
    assert!(
        out.contains("Mounted from src/multi") && !out.contains("Copied"),
        "{out}"
    );

    // Through an OCI layout directory and back.
    let layout = tempfile::tempdir().unwrap();
    let oci = format!("oci:{}:app", layout.path().display());
    rctl.ok(&["copy", &format!("{a}/src/multi:1"), &oci]);
    assert!(layout.path().join("index.json").exists());
    let out = rctl.ok(&["copy", &oci, &format!("{a}/from-oci/app:1")]);
    assert!(out.contains(&amd64), "{out}");
    assert_eq!(
        rctl.ok(&["digest", &format!("{a}/from-oci/app:1")]).trim(),
        amd64
    );
    if require_tool("skopeo", "copy_between_registries_and_layouts") {
        let out = Command::new("skopeo")
            .args(["inspect", &oci])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let inspect: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(inspect["Digest"], amd64);
    }
}
