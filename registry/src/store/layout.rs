//! Where each thing lives in the backend's key space.
//!
//! ```text
//! blobs/<alg>/<hex[0..2]>/<hex>                      blob and manifest bytes, shared by all repositories
//! repositories/<name>/_layers/<alg>/<hex>            the repository may read this blob (empty)
//! repositories/<name>/_manifests/<alg>/<hex>         the repository holds this manifest (its media type)
//! repositories/<name>/_tags/<tag>                    a tag (the digest it points to)
//! repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  a referrer of a subject (its descriptor, JSON)
//! catalog/<hex of name>                              one key per repository, listed in name order
//! uploads/<id>/log/<seq>                             an upload's history, one entry per step (JSON)
//! uploads/<id>/parts/<part>                          the bytes of one accepted chunk, never rewritten
//! ```
//!
//! Repository components never start with `_`, so the `_`-prefixed entries
//! cannot collide with nested repository names. Catalog keys are the hex of
//! the name: hex keeps byte order, so listing the keys lists the names in
//! order, on any backend, without walking the tree.

use crate::digest::Digest;
use crate::names::RepoName;

pub const CATALOG: &str = "catalog";
pub const UPLOADS: &str = "uploads";

pub fn blob(digest: &Digest) -> String {
    let hex = digest.hex();
    format!("blobs/{}/{}/{}", digest.algorithm().name(), &hex[..2], hex)
}

pub fn layer_link(name: &RepoName, digest: &Digest) -> String {
    format!(
        "repositories/{name}/_layers/{}/{}",
        digest.algorithm().name(),
        digest.hex()
    )
}

pub fn manifest_link(name: &RepoName, digest: &Digest) -> String {
    format!(
        "repositories/{name}/_manifests/{}/{}",
        digest.algorithm().name(),
        digest.hex()
    )
}

pub fn tags(name: &RepoName) -> String {
    format!("repositories/{name}/_tags")
}

pub fn tag(name: &RepoName, tag: &str) -> String {
    format!("repositories/{name}/_tags/{tag}")
}

pub fn referrers(name: &RepoName, subject: &Digest) -> String {
    format!(
        "repositories/{name}/_referrers/{}/{}",
        subject.algorithm().name(),
        subject.hex()
    )
}

pub fn referrer(name: &RepoName, subject: &Digest, referrer: &Digest) -> String {
    format!(
        "{}/{}-{}",
        referrers(name, subject),
        referrer.algorithm().name(),
        referrer.hex()
    )
}

pub fn catalog_entry(name: &RepoName) -> String {
    format!("{CATALOG}/{}", hex::encode(name.as_str()))
}

/// The repository name a catalog key stands for.
pub fn catalog_name(key: &str) -> Option<String> {
    hex::decode(key)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

pub fn upload(id: &str) -> String {
    format!("{UPLOADS}/{id}")
}

pub fn upload_log(id: &str) -> String {
    format!("{UPLOADS}/{id}/log")
}

/// Log entries are numbered with 20 digits, so listing them lists them in order.
pub fn upload_log_entry(id: &str, seq: u64) -> String {
    format!("{UPLOADS}/{id}/log/{seq:020}")
}

pub fn upload_parts(id: &str) -> String {
    format!("{UPLOADS}/{id}/parts")
}

pub fn upload_part(id: &str, part: &str) -> String {
    format!("{UPLOADS}/{id}/parts/{part}")
}
