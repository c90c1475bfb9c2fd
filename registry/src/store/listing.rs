//! Listings: a repository's tags, the catalog of repositories, and the
//! referrers of a subject. Each is a bounded listing of a prefix, never a
//! walk of the tree.
//!
//! A tag is listed only while the manifest it points at is in the
//! repository. A tag can outlive its manifest for a moment (a delete
//! removes the manifest's link before its tags, see [`super::tagging`]),
//! or for good when a store was written before that order was kept (or a
//! process died between the two steps): such tags are skipped here, as a
//! `GET` by them answers 404 anyway, and left for `fsck` to report and
//! remove. Removing them while listing would race a push that is
//! re-tagging the same digest.

use super::{layout, Registry};
use crate::digest::Digest;
use crate::error::{Code, RegistryError, Result};
use crate::names::RepoName;
use crate::storage::StorageError;
use serde_json::Value;
use std::collections::HashMap;

/// Tags read per listing call while filling a page.
/// Tags read per listing: large, since each listing of a directory reads
/// all of it (a batch of 1000 made listing 150,000 tags quadratic).
const TAG_BATCH: usize = 100_000;

/// A page of names and whether more follow it.
pub type Page = (Vec<String>, bool);

fn page(mut names: Vec<String>, n: usize) -> Page {
    let more = names.len() > n;
    names.truncate(n);
    (names, more)
}

impl Registry {
    /// Tags of `name` in lexical order, after `last`, at most `n`.
    pub async fn tags(
        &self,
        name: &RepoName,
        last: Option<&str>,
        n: Option<usize>,
    ) -> Result<Page> {
        let n = n.unwrap_or(usize::MAX - 1);
        let wanted = n.saturating_add(1);
        let prefix = layout::tags(name);
        let mut live = Vec::new();
        // Whether each digest seen is in the repository: tags share digests.
        let mut present: HashMap<Digest, bool> = HashMap::new();
        let mut after = last.map(str::to_string);
        while live.len() < wanted {
            let batch = (wanted - live.len()).min(TAG_BATCH);
            let keys = self.backend.list(&prefix, after.as_deref(), batch).await?;
            let exhausted = keys.len() < batch;
            after = keys.last().cloned();
            for tag in keys {
                if self.tag_is_live(name, &tag, &mut present).await? {
                    live.push(tag);
                }
            }
            if exhausted || after.is_none() {
                break;
            }
        }
        Ok(page(live, n))
    }

    /// Whether `tag` points at a manifest the repository holds.
    async fn tag_is_live(
        &self,
        name: &RepoName,
        tag: &str,
        present: &mut HashMap<Digest, bool>,
    ) -> Result<bool> {
        let bytes = match self.backend.read_all(&layout::tag(name, tag)).await {
            Ok(bytes) => bytes,
            Err(StorageError::NotFound(_)) => return Ok(false), // deleted meanwhile
            Err(e) => return Err(e.into()),
        };
        let Ok(digest) = String::from_utf8_lossy(&bytes).trim().parse::<Digest>() else {
            tracing::warn!(%name, tag, "corrupt tag skipped");
            return Ok(false);
        };
        let live = match present.get(&digest) {
            Some(live) => *live,
            None => {
                let live = self
                    .backend
                    .stat(&layout::manifest_link(name, &digest))
                    .await?
                    .is_some();
                present.insert(digest.clone(), live);
                live
            }
        };
        if !live {
            tracing::debug!(%name, tag, %digest, "tag of a missing manifest skipped");
        }
        Ok(live)
    }

    /// Repository names in lexical order, after `last`, at most `n`.
    pub async fn catalog(&self, last: Option<&str>, n: Option<usize>) -> Result<Page> {
        let n = n.unwrap_or(usize::MAX - 1);
        let after = last.map(layout::catalog_after);
        let keys = self
            .backend
            .list(layout::CATALOG, after.as_deref(), n.saturating_add(1))
            .await?;
        let names = keys
            .iter()
            .filter_map(|key| layout::catalog_name(key))
            .map(|name| name.as_str().to_string())
            .collect();
        Ok(page(names, n))
    }

    /// Descriptors of the manifests in `name` whose subject is `subject`,
    /// keeping those of `artifact_type` when given.
    pub async fn referrers(
        &self,
        name: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Value>> {
        let prefix = layout::referrers(name, subject);
        let mut descriptors = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let keys = self.backend.list(&prefix, after.as_deref(), 1000).await?;
            let Some(last) = keys.last().cloned() else {
                break;
            };
            for key in keys {
                let bytes = match self.backend.read_all(&format!("{prefix}/{key}")).await {
                    Ok(bytes) => bytes,
                    Err(StorageError::NotFound(_)) => continue, // deleted meanwhile
                    Err(e) => return Err(e.into()),
                };
                let descriptor: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    RegistryError::new(Code::Unknown, format!("corrupt referrer entry {key}: {e}"))
                })?;
                let matches = artifact_type.is_none_or(|wanted| {
                    descriptor.get("artifactType").and_then(Value::as_str) == Some(wanted)
                });
                if matches && self.holds_referrer(name, &key).await? {
                    descriptors.push(descriptor);
                }
            }
            after = Some(last);
        }
        Ok(descriptors)
    }

    /// Whether the manifest a referrer entry (`<alg>-<hex>`) names is still
    /// in the repository: an entry a cut-short delete left is not served.
    async fn holds_referrer(&self, name: &RepoName, entry: &str) -> Result<bool> {
        let Some(digest) = layout::referrer_digest(entry) else {
            return Ok(false);
        };
        Ok(self
            .backend
            .stat(&layout::manifest_link(name, &digest))
            .await?
            .is_some())
    }
}
