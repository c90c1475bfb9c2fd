//! rctl's distribution client when the registry fails under it (issue 13,
//! findings 7, 19 and 20): an outage during a pull or a push is ridden out
//! and the transfer resumes from the bytes already sent, a connection
//! dropped mid-upload resumes the upload instead of re-sending it whole
//! into the same session (which the registry refused as `DIGEST_INVALID`),
//! and an upload rctl gives up is cancelled so no partial data stays on
//! the registry. Real rregistry (and Distribution) processes; a proxy in
//! the test slows or breaks the traffic, and tests wait on the bytes it
//! has forwarded.

use e2e::api::{fetch_blob, push_image, tar_layer};
use e2e::process::wait_until;
use e2e::proxy::{Proxy, ProxyOptions};
use e2e::rctl::Rctl;
use e2e::{http_client, noise, sha256, RegistryOptions, RegistryProcess};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

const MIB: usize = 1024 * 1024;

/// An rctl store holding an image of one layer (a tar of `contents`),
/// pulled from a registry of its own. Returns the registry (keep it), the
/// rctl, the image's name in the store and the layer's digest.
async fn local_image(contents: &[u8]) -> (RegistryProcess, Rctl, String, String) {
    let source = RegistryProcess::start(RegistryOptions::default());
    push_image(
        &http_client(),
        &source.url(),
        "local/image",
        "1",
        "amd64",
        &[contents.to_vec()],
    )
    .await;
    let rctl = Rctl::new();
    let name = format!("{}/local/image:1", source.host());
    rctl.ok(&["pull", "-q", &name]);
    (source, rctl, name, sha256(&tar_layer(contents)))
}

/// Starts `rctl ARGS` with its output captured.
fn spawn(rctl: &Rctl, args: &[&str], envs: &[(&str, &str)]) -> std::process::Child {
    rctl.command()
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rctl")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The upload sessions a registry holds: rregistry keeps them under
/// `uploads/<id>/`, Distribution under each repository's `_uploads/`.
/// The uploads left once the server is done: a chunk whose client went
/// away may still be finishing server-side, and removes what it wrote when
/// it finds its upload cancelled. Waits (up to 20 s) for none to be left.
fn uploads_settled(root: &Path) -> Vec<PathBuf> {
    wait_until(Duration::from_secs(20), || uploads(root).is_empty());
    uploads(root)
}

fn uploads(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let parent = dir.file_name().and_then(|n| n.to_str());
            if matches!(parent, Some("uploads" | "_uploads")) {
                found.push(path);
            } else {
                dirs.push(path);
            }
        }
    }
    found
}

/// The registry down for `outage` while `rctl push` sends a big layer
/// through a slow link: the push retries (saying so on stderr), resumes,
/// and the registry holds the blob under its digest, no upload left over.
async fn push_survives_outage(outage: Duration) {
    let contents = noise(24 * MIB, 1);
    let (_source, rctl, from, digest) = local_image(&contents).await;
    let mut target = RegistryProcess::start(RegistryOptions::default());
    let options = ProxyOptions {
        rate: Some(8 * MIB as u64),
        ..ProxyOptions::default()
    };
    let proxy = Proxy::start(&target.host(), options).await;
    let to = format!("{}/outage/push:1", proxy.host());
    rctl.ok(&["tag", &from, &to]);
    let child = spawn(&rctl, &["push", &to], &[]);
    let third = contents.len() as u64 / 3;
    assert!(
        wait_until(Duration::from_secs(30), || proxy.up() > third),
        "the push never got a third of the layer out"
    );
    target.kill9();
    std::thread::sleep(outage); // the outage itself
    target.restart();
    let output = child.wait_with_output().expect("rctl push");
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "push failed across a {outage:?} outage:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("retrying in"), "no retry said:\n{stderr}");
    assert!(!stdout.contains("retrying"), "retries go to stderr only");
    let blob = fetch_blob(&http_client(), &target.url(), "outage/push", &digest).await;
    assert_eq!(sha256(&blob), digest);
    assert_eq!(uploads_settled(target.root()), Vec::<PathBuf>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn push_survives_a_two_second_outage() {
    push_survives_outage(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn push_survives_a_ten_second_outage() {
    push_survives_outage(Duration::from_secs(10)).await;
}

/// The registry down for 10 s in the middle of a pull of a big layer:
/// rctl waits it out, resumes with `Range`, and the image it unpacks is
/// the one pushed.
#[tokio::test(flavor = "multi_thread")]
async fn pull_survives_a_ten_second_outage() {
    let mut registry = RegistryProcess::start(RegistryOptions::default());
    let contents = noise(32 * MIB, 2);
    push_image(
        &http_client(),
        &registry.url(),
        "outage/pull",
        "1",
        "amd64",
        std::slice::from_ref(&contents),
    )
    .await;
    let options = ProxyOptions {
        rate: Some(8 * MIB as u64),
        ..ProxyOptions::default()
    };
    let proxy = Proxy::start(&registry.host(), options).await;
    let rctl = Rctl::new();
    let name = format!("{}/outage/pull:1", proxy.host());
    let child = spawn(
        &rctl,
        &["pull", "--max-concurrent-downloads", "1", &name],
        &[],
    );
    let third = contents.len() as u64 / 3;
    assert!(
        wait_until(Duration::from_secs(30), || proxy.down() > third),
        "the pull never got a third of the layer"
    );
    registry.kill9();
    std::thread::sleep(Duration::from_secs(10)); // the outage itself
    registry.restart();
    let output = child.wait_with_output().expect("rctl pull");
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "pull failed across a 10 s outage:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("resuming at"), "no resume:\n{stdout}");
    assert!(stderr.contains("retrying in"), "no retry said:\n{stderr}");
    // Resumed, not started over: little more than the layer came through.
    assert!(
        proxy.down() < contents.len() as u64 * 5 / 4,
        "{} bytes came down for a layer of {}",
        proxy.down(),
        contents.len()
    );
    // The unpacked layer holds the file as pushed.
    let unpacked = find_file(&rctl.root.join("overlay2"), "data").expect("unpacked layer file");
    assert!(std::fs::read(unpacked).expect("read unpacked") == contents);
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    None
}

/// The connection carrying a push's layer drops half way: rctl asks the
/// registry where the upload stands and sends the rest, instead of sending
/// the whole blob again into the session that holds half of it (which the
/// registry refused with `DIGEST_INVALID`).
/// Distribution will not resume such an upload: rctl starts a new one.
/// `extra` are more arguments of `rctl push`.
async fn dropped_upload_resumes(target: RegistryProcess, resumes_in_place: bool, extra: &[&str]) {
    let contents = noise(8 * MIB, 3);
    let (_source, rctl, from, digest) = local_image(&contents).await;
    let options = ProxyOptions {
        cut_after: Some(contents.len() as u64 / 2),
        ..ProxyOptions::default()
    };
    let proxy = Proxy::start(&target.host(), options).await;
    let to = format!("{}/dropped/push:1", proxy.host());
    rctl.ok(&["tag", &from, &to]);
    let mut args = vec!["-D", "push"];
    args.extend_from_slice(extra);
    args.push(&to);
    let output = rctl.run(&args);
    let (stdout, stderr) = text(&output);
    assert!(proxy.was_cut(), "the upload was never cut");
    assert!(
        output.status.success(),
        "push failed after a dropped connection:\n{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("DIGEST_INVALID"), "{stderr}");
    assert!(stderr.contains("retrying in"), "no retry said:\n{stderr}");
    if resumes_in_place {
        // Half the layer went up before the cut; the resume sent the rest.
        assert!(
            proxy.up() < contents.len() as u64 * 5 / 4,
            "{} bytes went up for a layer of {}: not resumed",
            proxy.up(),
            contents.len()
        );
    }
    let blob = fetch_blob(&http_client(), &target.url(), "dropped/push", &digest).await;
    assert_eq!(sha256(&blob), digest);
    if resumes_in_place {
        // (Distribution answers 404 to the status and the DELETE of an
        // upload whose `_state` no longer matches its size, so the broken
        // session is left to its purge, as it is for docker.)
        assert_eq!(
            uploads_settled(target.root()),
            Vec::<PathBuf>::new(),
            "{stderr}"
        );
    }
    let fresh = Rctl::new();
    fresh.ok(&["pull", "-q", &to]);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_upload_resumes_on_rregistry() {
    let target = RegistryProcess::start(RegistryOptions::default());
    dropped_upload_resumes(target, true, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_chunked_upload_resumes_on_rregistry() {
    let target = RegistryProcess::start(RegistryOptions::default());
    dropped_upload_resumes(target, true, &["--chunk-size", "1048576"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_upload_resumes_on_distribution() {
    if !e2e::require_tool("docker-registry", "dropped_upload_resumes_on_distribution") {
        return;
    }
    let target = RegistryProcess::start_distribution();
    dropped_upload_resumes(target, false, &[]).await;
}

/// An upload that cannot get through (every connection drops after 1 MiB)
/// is given up when the retry budget is spent, and cancelled: the registry
/// keeps none of its partial data.
#[tokio::test(flavor = "multi_thread")]
async fn abandoned_upload_is_cancelled() {
    let contents = noise(16 * MIB, 4);
    let (_source, rctl, from, _) = local_image(&contents).await;
    let target = RegistryProcess::start(RegistryOptions::default());
    let options = ProxyOptions {
        cut_each_after: Some(MIB as u64),
        ..ProxyOptions::default()
    };
    let proxy = Proxy::start(&target.host(), options).await;
    let to = format!("{}/abandoned/push:1", proxy.host());
    rctl.ok(&["tag", &from, &to]);
    let started = std::time::Instant::now();
    let output = rctl
        .command()
        .args(["push", &to])
        .env("RCTL_RETRY_TIMEOUT", "2")
        .output()
        .expect("rctl push");
    let (stdout, stderr) = text(&output);
    assert!(
        !output.status.success(),
        "the push got through:\n{stdout}\n{stderr}"
    );
    assert!(proxy.was_cut());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a 2 s retry budget took {:?}",
        started.elapsed()
    );
    assert!(stderr.contains("retrying in"), "no retry said:\n{stderr}");
    assert_eq!(
        uploads_settled(target.root()),
        Vec::<PathBuf>::new(),
        "the abandoned upload was left on the registry:\n{stderr}"
    );
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs on {}", path.display());
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A push onto a registry whose disk fills up fails, and the upload it
/// gave up is cancelled: the registry's `uploads/` holds nothing after it.
#[tokio::test(flavor = "multi_thread")]
async fn push_onto_a_full_disk_leaves_no_upload() {
    if !e2e::require_root("push_onto_a_full_disk_leaves_no_upload") {
        return;
    }
    let contents = noise(16 * MIB, 5);
    let (_source, rctl, from, _) = local_image(&contents).await;
    let disk = tempfile::tempdir().expect("temp dir");
    let _tmpfs = Tmpfs::mount(disk.path(), "8m");
    let target = RegistryProcess::start(RegistryOptions {
        root: Some(disk.path().join("data")),
        ..RegistryOptions::default()
    });
    let to = format!("{}/full/push:1", target.host());
    rctl.ok(&["tag", &from, &to]);
    let output = rctl
        .command()
        .args(["push", &to])
        .env("RCTL_RETRY_TIMEOUT", "2")
        .output()
        .expect("rctl push");
    let (stdout, stderr) = text(&output);
    assert!(
        !output.status.success(),
        "16 MiB fit on an 8 MiB disk:\n{stdout}\n{stderr}"
    );
    assert_eq!(
        uploads_settled(target.root()),
        Vec::<PathBuf>::new(),
        "the failed upload was left on the registry:\n{stderr}"
    );
}

/// Ctrl-C in the middle of a push: rctl stops, cancels the upload it had
/// begun, and the registry keeps none of its data.
#[tokio::test(flavor = "multi_thread")]
async fn interrupted_push_cancels_its_upload() {
    let contents = noise(16 * MIB, 6);
    let (_source, rctl, from, _) = local_image(&contents).await;
    let target = RegistryProcess::start(RegistryOptions::default());
    let options = ProxyOptions {
        rate: Some(4 * MIB as u64),
        ..ProxyOptions::default()
    };
    let proxy = Proxy::start(&target.host(), options).await;
    let to = format!("{}/interrupted/push:1", proxy.host());
    rctl.ok(&["tag", &from, &to]);
    let child = spawn(&rctl, &["push", &to], &[]);
    assert!(
        wait_until(Duration::from_secs(30), || proxy.up() > 2 * MIB as u64),
        "the push never got going"
    );
    let started = uploads(target.root());
    assert_eq!(started.len(), 1, "one upload in progress: {started:?}");
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupt.success());
    let output = child.wait_with_output().expect("rctl push");
    let (stdout, stderr) = text(&output);
    assert!(
        !output.status.success(),
        "the push went on:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(
        uploads_settled(target.root()),
        Vec::<PathBuf>::new(),
        "the interrupted upload was left on the registry"
    );
}

/// `rctl copy` between registries whose upload connection drops half way:
/// the rest of the blob is read again from the source with `Range` and
/// the upload resumes; the copy is complete.
#[tokio::test(flavor = "multi_thread")]
async fn dropped_copy_resumes() {
    let contents = noise(8 * MIB, 7);
    let source = RegistryProcess::start(RegistryOptions::default());
    let (manifest, _) = push_image(
        &http_client(),
        &source.url(),
        "copy/src",
        "1",
        "amd64",
        std::slice::from_ref(&contents),
    )
    .await;
    let target = RegistryProcess::start(RegistryOptions::default());
    let options = ProxyOptions {
        cut_after: Some(contents.len() as u64 / 2),
        ..ProxyOptions::default()
    };
    let proxy = Proxy::start(&target.host(), options).await;
    let rctl = Rctl::new();
    let from = format!("{}/copy/src:1", source.host());
    let to = format!("{}/copy/dst:1", proxy.host());
    let output = rctl.run(&["copy", &from, &to]);
    let (stdout, stderr) = text(&output);
    assert!(proxy.was_cut(), "the upload was never cut");
    assert!(
        output.status.success(),
        "copy failed after a dropped connection:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("retrying in"), "no retry said:\n{stderr}");
    assert!(
        proxy.up() < contents.len() as u64 * 5 / 4,
        "{} bytes went up for a layer of {}: not resumed",
        proxy.up(),
        contents.len()
    );
    let digest = sha256(&tar_layer(&contents));
    let blob = fetch_blob(&http_client(), &target.url(), "copy/dst", &digest).await;
    assert_eq!(sha256(&blob), digest);
    assert_eq!(rctl.ok(&["digest", &to]).trim(), manifest);
}
