//! The invariant checker (`rregistry fsck`): walks the whole store and
//! reports every place where it breaks its promises, and with `repair`
//! puts each right.
//!
//! - every blob hashes to its name (repair: the blob is removed, since
//!   serving wrong bytes under a digest is worse than serving none);
//! - every layer and manifest link names a blob that is present, every tag
//!   names a manifest of its repository, every referrer entry names one
//!   (repair: the dangling entry is removed);
//! - every repository holding anything is in the catalog (repair: added);
//! - no upload is older than the purge age (repair: removed).
//!
//! It reads the store only through [`Backend`], so it checks any backend
//! the registry runs on; blobs are streamed, a few at a time.

use super::{layout, Registry};
use crate::digest::{Digest, Hasher};
use crate::error::Result;
use crate::names::RepoName;
use crate::storage::StorageError;
use futures_util::{StreamExt, TryStreamExt};
use std::fmt;
use std::time::Duration;

/// Blobs hashed at once.
const HASH_CONCURRENCY: usize = 4;

/// One broken promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The storage key at fault.
    pub key: String,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    CorruptBlob,
    DanglingLayerLink,
    DanglingManifestLink,
    DanglingTag,
    DanglingReferrer,
    MissingCatalogEntry,
    StaleUpload,
    StrayObject,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}: {}", self.kind, self.key, self.detail)
    }
}

/// What a check found and counted.
#[derive(Debug, Default)]
pub struct Report {
    pub blobs: u64,
    pub blob_bytes: u64,
    pub repositories: u64,
    pub tags: u64,
    pub uploads: u64,
    pub problems: Vec<Problem>,
    /// Problems put right (with `repair`).
    pub repaired: u64,
}

impl Report {
    fn problem(&mut self, kind: ProblemKind, key: String, detail: impl Into<String>) {
        self.problems.push(Problem {
            kind,
            key,
            detail: detail.into(),
        });
    }
}

impl Registry {
    /// Checks every invariant of the store; with `repair`, fixes what it finds.
    pub async fn fsck(&self, upload_age: Duration, repair: bool) -> Result<Report> {
        let mut report = Report::default();
        self.fsck_blobs(&mut report, repair).await?;
        let mut repositories = Vec::new();
        self.find_repositories("", &mut repositories).await?;
        for name in repositories {
            report.repositories += 1;
            self.fsck_repository(&name, &mut report, repair).await?;
        }
        for id in self.stale_uploads(upload_age).await? {
            report.problem(
                ProblemKind::StaleUpload,
                layout::upload(&id),
                format!("untouched for longer than {}s", upload_age.as_secs()),
            );
            if repair {
                self.backend.delete_prefix(&layout::upload(&id)).await?;
                report.repaired += 1;
            }
        }
        report.uploads = self
            .backend
            .list(layout::UPLOADS, None, usize::MAX)
            .await?
            .len() as u64;
        Ok(report)
    }

    async fn fsck_blobs(&self, report: &mut Report, repair: bool) -> Result<()> {
        let mut keys = Vec::new();
        for algorithm in self.backend.list("blobs", None, usize::MAX).await? {
            let dir = format!("blobs/{algorithm}");
            for prefix in self.backend.list(&dir, None, usize::MAX).await? {
                let dir = format!("{dir}/{prefix}");
                for hex in self.backend.list(&dir, None, usize::MAX).await? {
                    keys.push((algorithm.clone(), format!("{dir}/{hex}"), hex));
                }
            }
        }
        let checks = futures_util::stream::iter(keys)
            .map(|(algorithm, key, hex)| async move {
                let verdict = self.check_blob(&algorithm, &key, &hex).await?;
                Ok::<_, crate::error::RegistryError>((key, verdict))
            })
            .buffer_unordered(HASH_CONCURRENCY);
        let results: Vec<_> = checks.try_collect().await?;
        for (key, verdict) in results {
            report.blobs += 1;
            match verdict {
                Ok(size) => report.blob_bytes = report.blob_bytes.saturating_add(size),
                Err((kind, detail)) => {
                    report.problem(kind, key.clone(), detail);
                    if repair {
                        self.backend.delete(&key).await?;
                        report.repaired += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// The blob's size when it is sound, or what is wrong with it.
    async fn check_blob(
        &self,
        algorithm: &str,
        key: &str,
        hex: &str,
    ) -> Result<std::result::Result<u64, (ProblemKind, String)>> {
        let Ok(digest) = format!("{algorithm}:{hex}").parse::<Digest>() else {
            return Ok(Err((
                ProblemKind::StrayObject,
                "not named by a digest".into(),
            )));
        };
        if layout::blob(&digest) != key {
            return Ok(Err((
                ProblemKind::StrayObject,
                "in the wrong directory".into(),
            )));
        }
        let mut hasher = Hasher::new(digest.algorithm());
        let mut size = 0u64;
        let mut stream = match self.backend.read(key, None).await {
            Ok(stream) => stream,
            Err(StorageError::NotFound(_)) => return Ok(Ok(0)), // removed meanwhile
            Err(e) => return Err(e.into()),
        };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| StorageError::Io {
                key: key.to_string(),
                source,
            })?;
            size = size.saturating_add(chunk.len() as u64);
            hasher.update(&chunk);
        }
        let computed = hasher.finish();
        if computed != digest {
            return Ok(Err((
                ProblemKind::CorruptBlob,
                format!("its {size} bytes hash to {computed}"),
            )));
        }
        Ok(Ok(size))
    }

    /// Repository names under `repositories/<prefix>`: a directory is a
    /// repository when it holds any `_`-entry; others are path components.
    async fn find_repositories(&self, prefix: &str, found: &mut Vec<RepoName>) -> Result<()> {
        let dir = if prefix.is_empty() {
            "repositories".to_string()
        } else {
            format!("repositories/{prefix}")
        };
        let children = self.backend.list(&dir, None, usize::MAX).await?;
        if !prefix.is_empty() && children.iter().any(|c| c.starts_with('_')) {
            if let Some(name) = RepoName::parse(prefix) {
                found.push(name);
            }
        }
        for child in children.iter().filter(|c| !c.starts_with('_')) {
            let nested = if prefix.is_empty() {
                child.clone()
            } else {
                format!("{prefix}/{child}")
            };
            Box::pin(self.find_repositories(&nested, found)).await?;
        }
        Ok(())
    }

    async fn fsck_repository(
        &self,
        name: &RepoName,
        report: &mut Report,
        repair: bool,
    ) -> Result<()> {
        let base = format!("repositories/{name}");
        // Layer and manifest links: the blob must be present.
        for (dir, kind) in [
            ("_layers", ProblemKind::DanglingLayerLink),
            ("_manifests", ProblemKind::DanglingManifestLink),
        ] {
            for (key, digest) in self.links(&format!("{base}/{dir}")).await? {
                let present = match &digest {
                    Some(digest) => self.backend.stat(&layout::blob(digest)).await?.is_some(),
                    None => false,
                };
                if !present {
                    report.problem(kind, key.clone(), "names no blob that is present");
                    if repair {
                        self.backend.delete(&key).await?;
                        report.repaired += 1;
                    }
                }
            }
        }
        // Tags: each names a manifest this repository holds.
        for tag in self
            .backend
            .list(&layout::tags(name), None, usize::MAX)
            .await?
        {
            report.tags += 1;
            let key = layout::tag(name, &tag);
            let target = match self.backend.read_all(&key).await {
                Ok(bytes) => std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|text| text.trim().parse::<Digest>().ok()),
                Err(StorageError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            if !self.holds_manifest(name, target.as_ref()).await? {
                report.problem(
                    ProblemKind::DanglingTag,
                    key.clone(),
                    "names no manifest of its repository",
                );
                if repair {
                    self.backend.delete(&key).await?;
                    report.repaired += 1;
                }
            }
        }
        // Referrer entries: each names a manifest this repository holds.
        for (subject_dir, _) in self.links(&format!("{base}/_referrers")).await? {
            for entry in self.backend.list(&subject_dir, None, usize::MAX).await? {
                let key = format!("{subject_dir}/{entry}");
                let referrer = layout::referrer_digest(&entry);
                if !self.holds_manifest(name, referrer.as_ref()).await? {
                    report.problem(
                        ProblemKind::DanglingReferrer,
                        key.clone(),
                        "names no manifest of its repository",
                    );
                    if repair {
                        self.backend.delete(&key).await?;
                        report.repaired += 1;
                    }
                }
            }
        }
        if !self.repository_exists(name).await? {
            report.problem(
                ProblemKind::MissingCatalogEntry,
                layout::catalog_entry(name),
                format!("repository {name} is not in the catalog"),
            );
            if repair {
                self.register_repository(name).await?;
                report.repaired += 1;
            }
        }
        Ok(())
    }

    async fn holds_manifest(&self, name: &RepoName, digest: Option<&Digest>) -> Result<bool> {
        let Some(digest) = digest else {
            return Ok(false);
        };
        Ok(self
            .backend
            .stat(&layout::manifest_link(name, digest))
            .await?
            .is_some()
            && self.backend.stat(&layout::blob(digest)).await?.is_some())
    }

    /// The entries `<dir>/<alg>/<hex>` with the digest each stands for.
    async fn links(&self, dir: &str) -> Result<Vec<(String, Option<Digest>)>> {
        let mut links = Vec::new();
        for algorithm in self.backend.list(dir, None, usize::MAX).await? {
            let sub = format!("{dir}/{algorithm}");
            for hex in self.backend.list(&sub, None, usize::MAX).await? {
                let digest = format!("{algorithm}:{hex}").parse::<Digest>().ok();
                links.push((format!("{sub}/{hex}"), digest));
            }
        }
        Ok(links)
    }
}
