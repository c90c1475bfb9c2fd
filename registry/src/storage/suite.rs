//! The behaviour every [`Backend`] must show. Each backend's tests call
//! [`run`] on a fresh, empty store; a backend that passes can serve the
//! registry logic unchanged.

use super::{Backend, ByteStream, StorageError};
use bytes::Bytes;
use futures_util::StreamExt;

fn stream_of(chunks: &[&'static [u8]]) -> ByteStream {
    let items: Vec<std::io::Result<Bytes>> =
        chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
    Box::pin(futures_util::stream::iter(items))
}

fn failing_stream() -> ByteStream {
    let items: Vec<std::io::Result<Bytes>> = vec![
        Ok(Bytes::from_static(b"partial")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];
    Box::pin(futures_util::stream::iter(items))
}

async fn collect(stream: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stream = stream;
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("stream chunk"));
    }
    out
}

/// Runs every check against `backend`, which must start empty. Panics on the
/// first behaviour that differs from the contract.
pub async fn run(backend: &dyn Backend) {
    // Absent objects.
    assert!(backend.stat("a/missing").await.unwrap().is_none());
    assert!(matches!(
        backend.read_all("a/missing").await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        backend.read("a/missing", None).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(!backend.delete("a/missing").await.unwrap());
    assert!(backend
        .list("nothing/here", None, 10)
        .await
        .unwrap()
        .is_empty());

    // Streaming writes and reads, whole and ranged.
    let n = backend
        .write("a/b/obj", stream_of(&[b"hello ", b"world"]))
        .await
        .unwrap();
    assert_eq!(n, 11);
    assert_eq!(backend.stat("a/b/obj").await.unwrap().unwrap().size, 11);
    assert_eq!(
        collect(backend.read("a/b/obj", None).await.unwrap()).await,
        b"hello world"
    );
    assert_eq!(
        collect(backend.read("a/b/obj", Some(6..11)).await.unwrap()).await,
        b"world"
    );
    assert_eq!(
        collect(backend.read("a/b/obj", Some(0..1)).await.unwrap()).await,
        b"h"
    );

    // Replacing is atomic and whole.
    backend
        .write_all("a/b/obj", Bytes::from_static(b"new"))
        .await
        .unwrap();
    assert_eq!(
        backend.read_all("a/b/obj").await.unwrap(),
        Bytes::from_static(b"new")
    );

    // A failed source stream leaves nothing behind and the old object intact.
    let err = backend
        .write("a/b/obj", failing_stream())
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Source(_)), "{err}");
    assert_eq!(
        backend.read_all("a/b/obj").await.unwrap(),
        Bytes::from_static(b"new")
    );
    let err = backend
        .write("a/b/fresh", failing_stream())
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Source(_)), "{err}");
    assert!(backend.stat("a/b/fresh").await.unwrap().is_none());

    // Keeping what arrived before a stream broke off.
    let kept = backend
        .write_prefix("a/b/prefix", failing_stream(), true)
        .await
        .unwrap();
    assert_eq!(kept.bytes, 7);
    assert!(kept.broke_off.is_some());
    assert_eq!(
        backend.read_all("a/b/prefix").await.unwrap(),
        Bytes::from_static(b"partial")
    );
    let dropped = backend
        .write_prefix("a/b/dropped", failing_stream(), false)
        .await
        .unwrap();
    assert!(dropped.broke_off.is_some());
    assert!(backend.stat("a/b/dropped").await.unwrap().is_none());

    // Conditional writes.
    assert!(backend
        .write_if_absent("c/once", Bytes::from_static(b"1"))
        .await
        .unwrap());
    assert!(!backend
        .write_if_absent("c/once", Bytes::from_static(b"2"))
        .await
        .unwrap());
    assert_eq!(
        backend.read_all("c/once").await.unwrap(),
        Bytes::from_static(b"1")
    );

    // Of many writers racing on one key, exactly one wins.
    let racers = (0..16u8).map(|i| backend.write_if_absent("c/race", Bytes::from(vec![i])));
    let won = futures_util::future::join_all(racers).await;
    assert_eq!(won.iter().filter(|w| matches!(w, Ok(true))).count(), 1);
    assert_eq!(won.iter().filter(|w| matches!(w, Ok(false))).count(), 15);

    assert_eq!(
        backend
            .write("u/data", stream_of(&[b"abc", b"dXY"]))
            .await
            .unwrap(),
        6
    );

    // Rename moves atomically and replaces.
    backend.rename("u/data", "d/moved").await.unwrap();
    assert!(backend.stat("u/data").await.unwrap().is_none());
    assert_eq!(
        backend.read_all("d/moved").await.unwrap(),
        Bytes::from_static(b"abcdXY")
    );
    backend
        .write_all("d/other", Bytes::from_static(b"x"))
        .await
        .unwrap();
    backend.rename("d/other", "d/moved").await.unwrap();
    assert_eq!(
        backend.read_all("d/moved").await.unwrap(),
        Bytes::from_static(b"x")
    );

    // Listing: direct children, sorted bytewise, after a key, bounded.
    for name in ["b", "a-b", "a", "a.b", "c/deeper"] {
        backend
            .write_all(&format!("l/{name}"), Bytes::new())
            .await
            .unwrap();
    }
    assert_eq!(
        backend.list("l", None, 100).await.unwrap(),
        vec!["a", "a-b", "a.b", "b", "c"]
    );
    assert_eq!(
        backend.list("l", Some("a-b"), 2).await.unwrap(),
        vec!["a.b", "b"]
    );
    assert_eq!(
        backend.list("l", Some("c"), 10).await.unwrap(),
        Vec::<String>::new()
    );

    // Deletes.
    assert!(backend.delete("l/a").await.unwrap());
    assert!(backend.stat("l/a").await.unwrap().is_none());
    backend.delete_prefix("l").await.unwrap();
    assert!(backend.list("l", None, 10).await.unwrap().is_empty());
    backend.delete_prefix("never/was").await.unwrap();

    // Keys that could escape are refused.
    for key in ["../x", "/abs", "a//b", "a/./b", ""] {
        assert!(
            matches!(backend.stat(key).await, Err(StorageError::InvalidKey(_))),
            "{key}"
        );
    }
}
