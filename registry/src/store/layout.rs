//! Where each thing lives in the backend's key space.
//!
//! ```text
//! blobs/<alg>/<hex[0..2]>/<hex>                      blob and manifest bytes, shared by all repositories
//! repositories/<name>/_layers/<alg>/<hex>            the repository may read this blob (empty)
//! repositories/<name>/_manifests/<alg>/<hex>         the repository holds this manifest (its media type)
//! repositories/<name>/_tags/<tag>                    a tag (the digest it points to)
//! repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  a referrer of a subject (its descriptor, JSON)
//! catalog-v2/<name in catalog order>                  one key per repository, listed in name order
//! uploads/<id>/log/<seq>                             an upload's history, one entry per step (JSON)
//! uploads/<id>/parts/<part>                          the bytes of one accepted chunk, never rewritten
//! ```
//!
//! Repository components never start with `_`, so the `_`-prefixed entries
//! cannot collide with nested repository names.
//!
//! A catalog key is the name with each byte moved by an order-keeping map
//! of the name alphabet `[a-z0-9._/-]` ([`catalog_key`]): `/` becomes `0`,
//! digits move up one (`0`-`9` to `1`-`:`), `_` becomes `` ` ``, letters move
//! up one (`a`-`z` to `b`-`{`), `-` and `.` stay. The map is strictly
//! increasing, so listing the keys bytewise lists the names in order, on
//! any backend, without walking the tree; it keeps the length, so every
//! valid name (at most 255 bytes) fits one path component (filesystems
//! allow 255 bytes); and it has no `/`. The first layout (`catalog/`, the
//! hex of the name) doubled the length, and names of 128 bytes or more
//! could not be stored: [`super::catalog`] moves such a catalog at startup.

use crate::digest::Digest;
use crate::names::RepoName;

pub const CATALOG: &str = "catalog-v2";
/// The first catalog layout (hex keys), read only to move it.
pub const LEGACY_CATALOG: &str = "catalog";
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

/// The referrer a referrer entry's name (`<alg>-<hex>`, as [`referrer`]
/// writes it) stands for.
pub fn referrer_digest(entry: &str) -> Option<Digest> {
    let (algorithm, hex) = entry.split_once('-')?;
    format!("{algorithm}:{hex}").parse().ok()
}

pub fn catalog_entry(name: &RepoName) -> String {
    format!("{CATALOG}/{}", catalog_key(name))
}

/// One byte of a name in catalog order; `None` outside the name alphabet.
fn to_key(byte: u8) -> Option<u8> {
    match byte {
        b'-' | b'.' => Some(byte),
        b'/' => Some(b'0'),
        b'0'..=b'9' | b'a'..=b'z' => Some(byte + 1),
        b'_' => Some(b'`'),
        _ => None,
    }
}

fn from_key(byte: u8) -> Option<u8> {
    match byte {
        b'-' | b'.' => Some(byte),
        b'0' => Some(b'/'),
        b'1'..=b':' | b'b'..=b'{' => Some(byte - 1),
        b'`' => Some(b'_'),
        _ => None,
    }
}

/// The catalog key of a repository name (see the module comment).
pub fn catalog_key(name: &RepoName) -> String {
    // A RepoName holds only bytes of the alphabet, so nothing is dropped.
    name.as_str()
        .bytes()
        .filter_map(to_key)
        .map(char::from)
        .collect()
}

/// The repository name a catalog key stands for.
pub fn catalog_name(key: &str) -> Option<RepoName> {
    let bytes: Option<Vec<u8>> = key.bytes().map(from_key).collect();
    let name = String::from_utf8(bytes?).ok()?;
    RepoName::parse(&name)
}

/// The key to list the catalog after, for a client's `last`, which may be
/// any text: every name `n` sorts after `last` exactly when
/// `catalog_key(n)` sorts after the returned key.
pub fn catalog_after(last: &str) -> String {
    let mut key = String::with_capacity(last.len() + 2);
    for byte in last.bytes() {
        match to_key(byte) {
            Some(mapped) => key.push(char::from(mapped)),
            None => {
                // Names continuing here with a byte above `byte` sort after
                // `last`, those with one below it before: list after the
                // highest alphabet byte below `byte` and everything under it
                // (`~` sorts above every key byte).
                if let Some(below) = (0..byte).rev().find_map(to_key) {
                    key.push(char::from(below));
                    key.push('~');
                }
                return key;
            }
        }
    }
    key
}

/// The repository name a key of the first catalog layout stands for.
pub fn legacy_catalog_name(key: &str) -> Option<RepoName> {
    let bytes = hex::decode(key).ok()?;
    RepoName::parse(&String::from_utf8(bytes).ok()?)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> RepoName {
        RepoName::parse(text).unwrap()
    }

    #[test]
    fn catalog_keys_fit_one_component_and_keep_order() {
        let long = "a".repeat(255);
        let nested = format!("{}/{}", "b".repeat(127), "c".repeat(127));
        let mut names: Vec<RepoName> = [
            "a",
            "a-b",
            "a.b",
            "a/b",
            "a0",
            "a9",
            "a_b",
            "a__b",
            "ab",
            "z",
            "0",
            "9z/x_y",
            long.as_str(),
            nested.as_str(),
            "library/alpine",
            "library-x/alpine",
        ]
        .iter()
        .map(|t| name(t))
        .collect();
        for n in &names {
            let key = catalog_key(n);
            assert_eq!(key.len(), n.as_str().len());
            assert!(!key.contains('/') && key != "." && key != "..");
            assert_eq!(catalog_name(&key).as_ref(), Some(n));
        }
        let mut keys: Vec<String> = names.iter().map(catalog_key).collect();
        names.sort();
        keys.sort();
        let decoded: Vec<RepoName> = keys.iter().filter_map(|k| catalog_name(k)).collect();
        assert_eq!(decoded, names);
    }

    #[test]
    fn catalog_after_matches_name_order_for_any_last() {
        let names: Vec<RepoName> = ["a", "a-b", "a.b", "a/b", "a0", "a_b", "ab", "b", "z9", "zz"]
            .iter()
            .map(|t| name(t))
            .collect();
        for last in [
            "", "a", "a/", "a/b", "a0", "aB", "a+", "a~", "a\u{e9}", "A", "zzz", "~",
        ] {
            let after = catalog_after(last);
            for n in &names {
                assert_eq!(
                    n.as_str() > last,
                    catalog_key(n).as_str() > after.as_str(),
                    "name {n} against last {last:?} (after {after:?})"
                );
            }
        }
    }

    #[test]
    fn legacy_keys_decode() {
        assert_eq!(legacy_catalog_name(&hex::encode("a/b")), Some(name("a/b")));
        assert_eq!(legacy_catalog_name("zz"), None);
    }
}
