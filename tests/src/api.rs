//! Registry requests the tests repeat: a monolithic blob push and a blob
//! fetch, each asserting the status a working registry gives.

use bytes::Bytes;

/// Pushes `data` to `repo` with `POST ?digest=`, asserts 201, returns the digest.
pub async fn push_blob(client: &reqwest::Client, base: &str, repo: &str, data: &[u8]) -> String {
    let digest = crate::sha256(data);
    let r = client
        .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={digest}"))
        .body(data.to_vec())
        .send()
        .await
        .expect("push request");
    assert_eq!(r.status(), 201, "push to {repo}: {:?}", r.text().await);
    digest
}

/// Fetches a blob, asserts 200, returns its bytes.
pub async fn fetch_blob(client: &reqwest::Client, base: &str, repo: &str, digest: &str) -> Bytes {
    let r = client
        .get(format!("{base}/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .expect("fetch request");
    assert_eq!(r.status(), 200, "fetch {digest} from {repo}");
    r.bytes().await.expect("blob body")
}
