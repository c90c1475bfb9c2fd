//! Upload state survives restarts, and a crash (SIGKILL) at any moment of a
//! push leaves nothing corrupt or half-visible; stale uploads are purged on
//! the configured schedule.

use bytes::Bytes;
use e2e::api::{fetch_blob, push_blob};
use e2e::{http_client, sha256, RegistryOptions, RegistryProcess};
use std::io::Write;
use std::time::Duration;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_upload_continues_after_restart() {
    let mut registry = RegistryProcess::start(RegistryOptions::default());
    let client = http_client();
    let data = pattern(3 * 1024 * 1024 + 7, 1);
    let digest = sha256(&data);
    let (first, second) = data.split_at(2 * 1024 * 1024);

    let r = client
        .post(format!("{}/v2/durable/blob/blobs/uploads/", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let r = client
        .patch(format!("{}{location}", registry.url()))
        .header("content-range", format!("0-{}", first.len() - 1))
        .body(first.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();

    // A crash, not a clean stop: state must already be in storage.
    registry.kill9();
    registry.restart();

    let r = client
        .get(format!("{}{location}", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["range"],
        format!("0-{}", first.len() - 1).as_str()
    );
    let r = client
        .patch(format!("{}{location}", registry.url()))
        .header(
            "content-range",
            format!("{}-{}", first.len(), data.len() - 1),
        )
        .body(second.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let r = client
        .put(format!("{}{location}?digest={digest}", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let r = client
        .get(format!("{}/v2/durable/blob/blobs/{digest}", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), Bytes::from(data));
}

/// A monolithic push killed mid-stream: after restart the blob is not
/// visible, no temp file remains, and the same push then succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn kill_during_push_leaves_nothing_visible() {
    let mut registry = RegistryProcess::start(RegistryOptions::default());
    let data = pattern(8 * 1024 * 1024, 2);
    let digest = sha256(&data);

    // Send headers and half the body by hand, then kill the server mid-body.
    let mut stream = std::net::TcpStream::connect(registry.host()).unwrap();
    write!(
        stream,
        "POST /v2/crash/test/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        registry.host(),
        data.len()
    )
    .unwrap();
    stream.write_all(&data[..data.len() / 2]).unwrap();
    stream.flush().unwrap();
    let tmp = registry.root().join("_tmp");
    assert!(
        e2e::process::wait_until(Duration::from_secs(20), || e2e::bytes_under(&tmp) > 0),
        "the server never started writing the body"
    );
    let killed_owner = owner_dir(&tmp);
    registry.kill9();
    drop(stream);
    registry.restart();

    let client = http_client();
    let head = client
        .head(format!("{}/v2/crash/test/blobs/{digest}", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404, "a half-written blob is visible");
    assert_eq!(
        e2e::bytes_under(&tmp),
        0,
        "temp files left in {}",
        tmp.display()
    );
    assert!(
        !tmp.join(&killed_owner).exists(),
        "the killed process's temp directory was not cleared"
    );
    let blobs = registry.root().join("blobs");
    if blobs.exists() {
        let count = walk(&blobs);
        assert_eq!(count, 0, "a blob file exists after the crash");
    }

    push_blob(&client, &registry.url(), "crash/test", &data).await;
    let got = fetch_blob(&client, &registry.url(), "crash/test", &digest).await;
    assert_eq!(got, Bytes::from(data));
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_uploads_are_purged_on_schedule() {
    let registry = RegistryProcess::start(RegistryOptions {
        storage_yaml: "  maintenance:\n    uploadpurging:\n      enabled: true\n      age: 2s\n      interval: 1s\n".into(),
        ..RegistryOptions::default()
    });
    let client = http_client();
    let r = client
        .post(format!("{}/v2/purge/me/blobs/uploads/", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let url = format!(
        "{}{}",
        registry.url(),
        r.headers()["location"].to_str().unwrap()
    );
    let r = client.patch(&url).body("abc").send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        204,
        "fresh upload already gone"
    );

    let mut gone = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if client.get(&url).send().await.unwrap().status() == 404 {
            gone = true;
            break;
        }
    }
    assert!(
        gone,
        "stale upload not purged within 10 s (age 2s, interval 1s)"
    );
    let uploads = registry.root().join("uploads");
    assert_eq!(
        std::fs::read_dir(uploads).map(|d| d.count()).unwrap_or(0),
        0,
        "upload files left on disk"
    );
}

/// A blob pushed to several repositories (uploaded twice, and mounted) is
/// stored once on disk.
#[tokio::test(flavor = "multi_thread")]
async fn shared_blobs_are_stored_once() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let client = http_client();
    let data = pattern(1024 * 1024, 9);
    let digest = sha256(&data);
    for repo in ["team-a/app", "team-b/app"] {
        push_blob(&client, &registry.url(), repo, &data).await;
    }
    let r = client
        .post(format!(
            "{}/v2/team-c/app/blobs/uploads/?mount={digest}&from=team-a/app",
            registry.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for repo in ["team-a/app", "team-b/app", "team-c/app"] {
        let got = fetch_blob(&client, &registry.url(), repo, &digest).await;
        assert_eq!(got, Bytes::from(data.clone()), "{repo}");
    }
    assert_eq!(
        walk(&registry.root().join("blobs")),
        1,
        "the blob is stored more than once"
    );
}

/// The name of the (only) process temp directory under `tmp`.
fn owner_dir(tmp: &std::path::Path) -> String {
    std::fs::read_dir(tmp)
        .expect("temp root")
        .flatten()
        .find(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .expect("a process temp directory")
}
