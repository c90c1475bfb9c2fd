//! The bytes served under a digest are the bytes of that digest, whatever
//! clients do at once, on one rregistry process or on two serving the same
//! root: requests racing on one upload (issue 13, findings 1 and 2), and a
//! bounded race harness of conflicting clients after which `rregistry fsck`
//! must find the store clean and every 201 must still be true.
//!
//! The harness runs for `RACE_SECS` seconds (default 6; `bench/race.sh`
//! runs it longer).

use bytes::Bytes;
use e2e::{bytes_under, http_client, sha256, RegistryOptions, RegistryProcess};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const MIB: usize = 1024 * 1024;

/// Two registry processes on one storage root (`second` is `None` for one process).
struct Pair {
    first: RegistryProcess,
    second: Option<RegistryProcess>,
}

impl Pair {
    fn start(two: bool) -> Pair {
        let first = RegistryProcess::start(RegistryOptions::default());
        let second = two.then(|| {
            RegistryProcess::start(RegistryOptions {
                root: Some(first.root.clone()),
                ..RegistryOptions::default()
            })
        });
        Pair { first, second }
    }

    fn a(&self) -> String {
        self.first.url()
    }

    fn b(&self) -> String {
        self.second.as_ref().unwrap_or(&self.first).url()
    }
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn start_upload(client: &reqwest::Client, base: &str, repo: &str) -> String {
    let r = client
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .expect("POST upload");
    assert_eq!(r.status(), 202);
    r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string()
}

async fn patch(client: &reqwest::Client, base: &str, location: &str, body: Vec<u8>) -> u16 {
    client
        .patch(format!("{base}{location}"))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .expect("PATCH")
        .status()
        .as_u16()
}

/// A PATCH whose body the test feeds (and ends) at its own pace.
fn open_patch(
    client: &reqwest::Client,
    url: String,
) -> (
    mpsc::Sender<Result<Bytes, std::io::Error>>,
    tokio::task::JoinHandle<u16>,
) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|item| (item, rx))
    }));
    let request = client
        .patch(url)
        .header("content-type", "application/octet-stream")
        .body(body);
    let response = tokio::spawn(async move {
        match request.send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    });
    (tx, response)
}

async fn put_digest(client: &reqwest::Client, base: &str, location: &str, digest: &str) -> u16 {
    let sep = if location.contains('?') { '&' } else { '?' };
    client
        .put(format!("{base}{location}{sep}digest={digest}"))
        .send()
        .await
        .expect("PUT")
        .status()
        .as_u16()
}

async fn get_blob(client: &reqwest::Client, base: &str, repo: &str, digest: &str) -> Option<Bytes> {
    let r = client
        .get(format!("{base}/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .expect("GET blob");
    if r.status() == 200 {
        Some(r.bytes().await.expect("blob body"))
    } else {
        None
    }
}

fn assert_clean(registry: &RegistryProcess) {
    let (code, text) = registry.fsck(false);
    assert_eq!(code, 0, "fsck found problems:\n{text}");
}

/// Finding 1: two chunked PATCHes on one upload; the first sends 1 MiB of A
/// and holds its body open while the second sends 1 MiB of B; then the
/// first ends. A PUT for sha256(A) must not publish B under A's digest.
async fn concurrent_patches(pair: &Pair) {
    let client = http_client();
    let repo = "poison/app";
    let a = vec![b'A'; MIB];
    let b = vec![b'B'; MIB];
    let digest_a = sha256(&a);
    let location = start_upload(&client, &pair.a(), repo).await;

    let before = bytes_under(&pair.first.root);
    let (tx, first) = open_patch(&client, format!("{}{location}", pair.a()));
    for chunk in a.chunks(64 * 1024) {
        tx.send(Ok(Bytes::copy_from_slice(chunk)))
            .await
            .expect("feed");
    }
    // The server has taken all of A before the second PATCH arrives.
    wait_for("the first PATCH's bytes on disk", || {
        bytes_under(&pair.first.root) >= before + MIB as u64
    })
    .await;
    let second = patch(&client, &pair.b(), &location, b.clone()).await;
    drop(tx); // the first PATCH ends now
    let first = first.await.expect("first PATCH task");
    assert!(
        [202, 416].contains(&first) && [202, 416].contains(&second),
        "PATCH answers {first} and {second}"
    );
    assert!(
        !(first == 202 && second == 202),
        "both racing chunks were accepted at offset 0"
    );

    let put = put_digest(&client, &pair.a(), &location, &digest_a).await;
    if let Some(served) = get_blob(&client, &pair.a(), repo, &digest_a).await {
        assert_eq!(
            sha256(&served),
            digest_a,
            "PUT answered {put}; A's digest serves other bytes"
        );
    }
    // A genuine push of A afterwards is served A.
    let genuine = e2e::api::push_blob(&client, &pair.b(), "victim/app", &a).await;
    assert_eq!(genuine, digest_a);
    let served = get_blob(&client, &pair.a(), "victim/app", &digest_a)
        .await
        .expect("A after a genuine push");
    assert_eq!(sha256(&served), digest_a);
    assert_clean(&pair.first);
}

/// Finding 2: a PATCH still streaming when the PUT completes the upload
/// must not change the published blob.
async fn patch_across_put(pair: &Pair) {
    let client = http_client();
    let repo = "tear/app";
    let c1: Vec<u8> = (0..112u8).collect();
    let digest = sha256(&c1);
    let location = start_upload(&client, &pair.a(), repo).await;
    assert_eq!(patch(&client, &pair.a(), &location, c1.clone()).await, 202);

    let before = bytes_under(&pair.first.root);
    let (tx, late) = open_patch(&client, format!("{}{location}", pair.b()));
    // A full MiB, so that it reaches the disk even through the server's
    // aligned block writer.
    tx.send(Ok(Bytes::from(vec![b'x'; MIB + 31])))
        .await
        .expect("feed");
    wait_for("the late PATCH's bytes on disk", || {
        bytes_under(&pair.first.root) >= before + MIB as u64
    })
    .await;
    assert_eq!(
        put_digest(&client, &pair.a(), &location, &digest).await,
        201
    );
    tx.send(Ok(Bytes::from(vec![b'y'; 4096])))
        .await
        .expect("feed");
    drop(tx);
    let late = late.await.expect("late PATCH task");
    assert_ne!(late, 202, "a chunk was accepted into a completed upload");
    let served = get_blob(&client, &pair.b(), repo, &digest)
        .await
        .expect("the blob");
    assert_eq!(served.len(), 112);
    assert_eq!(sha256(&served), digest);
    assert_clean(&pair.first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_patches_cannot_poison_a_blob() {
    concurrent_patches(&Pair::start(false)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_patches_on_two_processes_cannot_poison_a_blob() {
    concurrent_patches(&Pair::start(true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_patch_across_the_put_cannot_change_the_blob() {
    patch_across_put(&Pair::start(false)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_patch_across_the_put_on_another_process_cannot_change_the_blob() {
    patch_across_put(&Pair::start(true)).await;
}

/// A small deterministic generator (xorshift), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// A blob a client was told (201) is stored in `repo`.
struct Claim {
    repo: String,
    digest: String,
}

/// One round of conflicting requests; returns the blob claims it earned.
async fn race_round(
    client: &reqwest::Client,
    bases: [&str; 2],
    rng: &mut Rng,
    worker: usize,
) -> Vec<Claim> {
    let mut claims = Vec::new();
    let pick = |rng: &mut Rng| bases[rng.below(2) as usize];
    match rng.below(4) {
        // Parallel PATCHes on one upload, then a PUT for one of them.
        0 => {
            let repo = format!("race/blobs{worker}");
            let location = start_upload(client, pick(rng), &repo).await;
            let (len_x, len_y) = (
                1 + rng.below(70_000) as usize,
                1 + rng.below(70_000) as usize,
            );
            let (x, y) = (rng.bytes(len_x), rng.bytes(len_y));
            let (bx, by) = (pick(rng), pick(rng));
            let _ = tokio::join!(
                patch(client, bx, &location, x.clone()),
                patch(client, by, &location, y.clone())
            );
            let target = if rng.below(2) == 0 { &x } else { &y };
            let digest = sha256(target);
            if put_digest(client, pick(rng), &location, &digest).await == 201 {
                claims.push(Claim { repo, digest });
            }
        }
        // A PATCH racing the PUT that completes the upload.
        1 => {
            let repo = format!("race/blobs{worker}");
            let location = start_upload(client, pick(rng), &repo).await;
            let (len_first, len_more) = (
                1 + rng.below(50_000) as usize,
                1 + rng.below(50_000) as usize,
            );
            let first = rng.bytes(len_first);
            let more = rng.bytes(len_more);
            if patch(client, pick(rng), &location, first.clone()).await != 202 {
                return claims;
            }
            let digest = sha256(&first);
            let (put, _) = tokio::join!(
                put_digest(client, pick(rng), &location, &digest),
                patch(client, pick(rng), &location, more)
            );
            if put == 201 {
                claims.push(Claim { repo, digest });
            }
        }
        // Tag pushes racing manifest deletes.
        2 => {
            let repo = "race/tags";
            let n = rng.below(4);
            let config = format!("{{\"n\":{n}}}").into_bytes();
            let config_digest = sha256(&config);
            let base = pick(rng);
            e2e::api::push_blob(client, base, repo, &config).await;
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
                "layers": []
            })
            .to_string();
            let digest = sha256(manifest.as_bytes());
            let tag = format!("t{}", rng.below(3));
            let put = client
                .put(format!("{}/v2/{repo}/manifests/{tag}", pick(rng)))
                .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                .body(manifest);
            let delete = client.delete(format!("{}/v2/{repo}/manifests/{digest}", pick(rng)));
            let _ = tokio::join!(put.send(), delete.send());
        }
        // Mounts racing the source's blob delete.
        _ => {
            let len = 1 + rng.below(10_000) as usize;
            let data = rng.bytes(len);
            let digest = e2e::api::push_blob(client, pick(rng), "race/source", &data).await;
            let repo = format!("race/mounted{worker}");
            let mount = client.post(format!(
                "{}/v2/{repo}/blobs/uploads/?mount={digest}&from=race/source",
                pick(rng)
            ));
            let delete = client.delete(format!("{}/v2/race/source/blobs/{digest}", pick(rng)));
            let (mounted, _) = tokio::join!(mount.send(), delete.send());
            if mounted.map(|r| r.status() == 201).unwrap_or(false) {
                claims.push(Claim { repo, digest });
            }
        }
    }
    claims
}

async fn race_harness(pair: &Pair, seconds: u64) {
    let bases = [pair.a(), pair.b()];
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for worker in 0..8 {
        let bases = bases.clone();
        workers.push(tokio::spawn(async move {
            let client = http_client();
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((worker as u64 + 1) * 0x1000_0001));
            let mut claims = Vec::new();
            let mut rounds = 0u64;
            while Instant::now() < deadline {
                claims.extend(race_round(&client, [&bases[0], &bases[1]], &mut rng, worker).await);
                rounds += 1;
            }
            (claims, rounds)
        }));
    }
    let client = http_client();
    let mut total_rounds = 0;
    let mut checked = 0;
    for worker in workers {
        let (claims, rounds) = worker.await.expect("worker");
        total_rounds += rounds;
        for claim in claims {
            let served = get_blob(&client, &bases[0], &claim.repo, &claim.digest)
                .await
                .unwrap_or_else(|| {
                    panic!("{} answered 201 but is not in {}", claim.digest, claim.repo)
                });
            assert_eq!(sha256(&served), claim.digest, "wrong bytes under a digest");
            checked += 1;
        }
    }
    // Every listed tag resolves.
    let tags: serde_json::Value = client
        .get(format!("{}/v2/race/tags/tags/list", bases[1]))
        .send()
        .await
        .expect("tags/list")
        .json()
        .await
        .expect("tags json");
    for tag in tags["tags"].as_array().into_iter().flatten() {
        let tag = tag.as_str().expect("tag");
        let r = client
            .get(format!("{}/v2/race/tags/manifests/{tag}", bases[0]))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .expect("GET tag");
        assert_eq!(r.status(), 200, "tag {tag} is listed but does not resolve");
    }
    eprintln!("race harness: {total_rounds} rounds in {seconds}s, {checked} blob claims verified");
    assert!(total_rounds > 8, "the harness barely ran");
    assert_clean(&pair.first);
}

fn race_seconds() -> u64 {
    std::env::var("RACE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_harness_on_one_process_keeps_every_invariant() {
    race_harness(&Pair::start(false), race_seconds()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_harness_on_two_processes_keeps_every_invariant() {
    race_harness(&Pair::start(true), race_seconds()).await;
}
