//! Streams stay streams: a 5 GiB blob goes up (monolithic and chunked
//! paths share the same streaming writer) and comes back down while the
//! server's peak memory stays where a small transfer leaves it.

use bytes::Bytes;
use e2e::{http_client, RegistryOptions, RegistryProcess};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;

/// `total` bytes made of one repeated 1 MiB random block, never held whole.
fn source(
    total: u64,
) -> (
    impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>,
    String,
) {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let block: Vec<u8> = (0..MIB)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let block = Bytes::from(block);
    let mut hasher = Sha256::new();
    for _ in 0..total / MIB {
        hasher.update(&block);
    }
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    let stream = futures_util::stream::iter(0..total / MIB).map(move |_| Ok(block.clone()));
    (stream, digest)
}

async fn round_trip(registry: &RegistryProcess, total: u64) {
    let client = http_client();
    let (stream, digest) = source(total);
    let r = client
        .post(format!(
            "{}/v2/big/blob/blobs/uploads/?digest={digest}",
            registry.url()
        ))
        .header("content-length", total)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let r = client
        .get(format!("{}/v2/big/blob/blobs/{digest}", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(total));
    let mut body = r.bytes_stream();
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        received += chunk.len() as u64;
        hasher.update(&chunk);
    }
    assert_eq!(received, total);
    assert_eq!(format!("sha256:{}", hex::encode(hasher.finalize())), digest);
}

#[tokio::test(flavor = "multi_thread")]
async fn five_gib_blob_with_flat_memory() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    round_trip(&registry, 64 * MIB).await;
    let baseline = registry.child.peak_rss_kib().expect("VmHWM");
    round_trip(&registry, 5 * 1024 * MIB).await;
    let peak = registry.child.peak_rss_kib().expect("VmHWM");
    println!("server peak RSS: {baseline} KiB after 64 MiB, {peak} KiB after 5 GiB");
    assert!(
        peak < baseline + 64 * 1024,
        "server memory grew with blob size: {baseline} KiB -> {peak} KiB"
    );
}
