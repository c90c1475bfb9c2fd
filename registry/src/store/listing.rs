//! Listings: a repository's tags, the catalog of repositories, and the
//! referrers of a subject. Each is one bounded listing of a prefix, never a
//! walk of the tree.

use super::{layout, Registry};
use crate::digest::Digest;
use crate::error::{Code, RegistryError, Result};
use crate::names::RepoName;
use serde_json::Value;

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
        let names = self
            .backend
            .list(&layout::tags(name), last, n.saturating_add(1))
            .await?;
        Ok(page(names, n))
    }

    /// Repository names in lexical order, after `last`, at most `n`.
    pub async fn catalog(&self, last: Option<&str>, n: Option<usize>) -> Result<Page> {
        let n = n.unwrap_or(usize::MAX - 1);
        let after = last.map(hex::encode);
        let keys = self
            .backend
            .list(layout::CATALOG, after.as_deref(), n.saturating_add(1))
            .await?;
        let names = keys
            .iter()
            .filter_map(|key| layout::catalog_name(key))
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
                    Err(crate::storage::StorageError::NotFound(_)) => continue, // deleted meanwhile
                    Err(e) => return Err(e.into()),
                };
                let descriptor: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    RegistryError::new(Code::Unknown, format!("corrupt referrer entry {key}: {e}"))
                })?;
                let matches = artifact_type.is_none_or(|wanted| {
                    descriptor.get("artifactType").and_then(Value::as_str) == Some(wanted)
                });
                if matches {
                    descriptors.push(descriptor);
                }
            }
            after = Some(last);
        }
        Ok(descriptors)
    }
}
