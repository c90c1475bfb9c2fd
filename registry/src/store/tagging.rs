//! Publishing a manifest (its link, referrer entry and tags) and
//! withdrawing it, so that a push racing a delete never leaves a tag or a
//! referrer entry pointing at a manifest that is gone, with no lock: two
//! processes serving one root directory (and replicas on an object store
//! later) coordinate only through the objects themselves.
//!
//! The scheme is Dekker's: each side writes its own mark, then reads the
//! other's.
//!
//! - A push writes the link, then the referrer entry and the tags, then
//!   reads the link again ([`Registry::publish`]).
//! - A delete removes the link first, then the referrer entry and every tag
//!   that points at the digest ([`Registry::withdraw`]).
//!
//! Each store operation is atomic and, once it returns, seen by every later
//! one (POSIX rename and unlink on one filesystem; an object store with
//! read-after-write consistency). So if the push's re-read finds the link,
//! that read came before the delete removed it, and the delete's listing of
//! tags, which comes later still, sees the push's tags and removes them:
//! the outcome is "push, then delete", with nothing left over. If the
//! re-read finds no link, a delete got in between: the push writes
//! everything again and checks again (the outcome is "delete, then push"),
//! up to [`ATTEMPTS`] times; after that it removes what it wrote that could
//! dangle and answers 503, which clients retry. Either way no tag outlives
//! its manifest once both requests have answered.
//!
//! The re-read also checks the push's tags and referrer entry are still
//! there: a delete reads a tag, then removes it, so a tag re-pointed in
//! between by this push could be removed by that delete; the push sees it
//! gone and writes it again. (A push that has already answered cannot
//! notice that; closing that window needs a delete-if-unchanged from the
//! backend, which it does not offer yet.) A tag that now points at another
//! digest was re-pointed by a later push and is left alone.
//!
//! Between a delete's two steps a tag points at nothing for a moment;
//! [`super::listing`] does not list such tags, and a `GET` by one answers
//! 404, as it would a moment later.

use super::{layout, Registry};
use crate::digest::Digest;
use crate::error::{Code, RegistryError, Result};
use crate::names::RepoName;
use crate::storage::StorageError;
use axum::http::StatusCode;
use bytes::Bytes;

/// How many times a push writes its tags again after a delete got in between.
pub const ATTEMPTS: usize = 5;

/// Tags read per listing call while a delete looks for those of a digest.
/// Tags read per listing: large, since each listing of a directory reads
/// all of it (a batch of 1000 made a sweep of 150,000 tags quadratic).
const TAG_BATCH: usize = 100_000;

/// What a push makes visible once the manifest's bytes are stored.
pub(super) struct Publication<'a> {
    pub name: &'a RepoName,
    pub digest: &'a Digest,
    pub media_type: &'a str,
    /// The subject and the referrer entry to write under it.
    pub referrer: Option<(Digest, Bytes)>,
    pub tags: &'a [String],
}

impl Publication<'_> {
    fn link(&self) -> String {
        layout::manifest_link(self.name, self.digest)
    }
}

impl Registry {
    /// Writes the link, the referrer entry and the tags, then checks that
    /// no delete removed the link meanwhile (see the module comment).
    pub(super) async fn publish(&self, publication: &Publication<'_>) -> Result<()> {
        let link = publication.link();
        for attempt in 1..=ATTEMPTS {
            self.backend
                .write_all(&link, Bytes::from(publication.media_type.to_string()))
                .await?;
            if let Some((subject, entry)) = &publication.referrer {
                let key = layout::referrer(publication.name, subject, publication.digest);
                self.backend.write_all(&key, entry.clone()).await?;
            }
            for tag in publication.tags {
                self.backend
                    .write_all(
                        &layout::tag(publication.name, tag),
                        Bytes::from(publication.digest.to_string()),
                    )
                    .await?;
            }
            if self.published(publication).await? {
                return Ok(());
            }
            tracing::info!(
                name = %publication.name,
                digest = %publication.digest,
                attempt,
                "the manifest was deleted while it was being pushed; writing it again"
            );
        }
        if self.backend.stat(&link).await?.is_none() {
            self.remove_marks(
                publication.name,
                publication.digest,
                publication.referrer.as_ref().map(|(s, _)| s),
                publication.tags,
            )
            .await?;
        }
        Err(RegistryError::new(
            Code::Unknown,
            format!(
                "manifest {} was deleted while it was being pushed, {ATTEMPTS} times; push it again",
                publication.digest
            ),
        )
        .with_status(StatusCode::SERVICE_UNAVAILABLE))
    }

    /// Whether the link, the referrer entry and the tags are all in place
    /// (a tag re-pointed at another digest by a later push counts).
    async fn published(&self, publication: &Publication<'_>) -> Result<bool> {
        if self.backend.stat(&publication.link()).await?.is_none() {
            return Ok(false);
        }
        if let Some((subject, _)) = &publication.referrer {
            let key = layout::referrer(publication.name, subject, publication.digest);
            if self.backend.stat(&key).await?.is_none() {
                return Ok(false);
            }
        }
        for tag in publication.tags {
            if self
                .backend
                .stat(&layout::tag(publication.name, tag))
                .await?
                .is_none()
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Removes a manifest from `name`: its tags, then the link, then the
    /// referrer entry and the tags again (see the module comment). The
    /// first sweep means a delete cut short (a crash) before the link goes
    /// leaves a manifest with fewer tags, never tags that a later push of
    /// the same bytes would bring back; the second catches tags pushed
    /// meanwhile. `false` when the link was already gone (the sweeps run
    /// all the same, finishing a delete that was cut short).
    pub(super) async fn withdraw(
        &self,
        name: &RepoName,
        digest: &Digest,
        subject: Option<&Digest>,
    ) -> Result<bool> {
        self.remove_marks(name, digest, None, &[]).await?;
        let removed = self
            .backend
            .delete(&layout::manifest_link(name, digest))
            .await?;
        self.remove_marks(name, digest, subject, &[]).await?;
        Ok(removed)
    }

    /// Removes the referrer entry of `digest` under `subject`, the tags in
    /// `tags` and, when `tags` is empty, every tag, that point at `digest`.
    async fn remove_marks(
        &self,
        name: &RepoName,
        digest: &Digest,
        subject: Option<&Digest>,
        tags: &[String],
    ) -> Result<()> {
        if let Some(subject) = subject {
            self.backend
                .delete(&layout::referrer(name, subject, digest))
                .await?;
        }
        if !tags.is_empty() {
            for tag in tags {
                self.delete_tag_of(name, tag, digest).await?;
            }
            return Ok(());
        }
        let prefix = layout::tags(name);
        let mut after: Option<String> = None;
        loop {
            let keys = self
                .backend
                .list(&prefix, after.as_deref(), TAG_BATCH)
                .await?;
            let Some(last) = keys.last().cloned() else {
                return Ok(());
            };
            for tag in &keys {
                self.delete_tag_of(name, tag, digest).await?;
            }
            after = Some(last);
        }
    }

    /// Deletes `tag` if it points at `digest`.
    async fn delete_tag_of(&self, name: &RepoName, tag: &str, digest: &Digest) -> Result<()> {
        let key = layout::tag(name, tag);
        let bytes = match self.backend.read_all(&key).await {
            Ok(bytes) => bytes,
            Err(StorageError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if String::from_utf8_lossy(&bytes).trim() == digest.to_string() {
            self.backend.delete(&key).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Reference;
    use crate::storage::fs::FsBackend;
    use crate::storage::Backend;
    use crate::store::manifests::OCI_INDEX;
    use crate::store::Options;
    use std::sync::Arc;

    /// Two registries on one root (as two processes): tag pushes on one
    /// racing deletes on the other leave no tag of a missing manifest. The
    /// repository holds 400 other tags, so a delete spends a while on them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn tag_pushes_racing_deletes_leave_no_dangling_tag() {
        let dir = tempfile::tempdir().unwrap();
        let options = || Options {
            delete_enabled: true,
            ..Options::default()
        };
        let backend = Arc::new(FsBackend::open(dir.path()).unwrap());
        let pusher = Registry::new(backend.clone(), options());
        let deleter = Registry::new(Arc::new(FsBackend::open(dir.path()).unwrap()), options());
        let name = RepoName::parse("race").unwrap();
        let index = |note: &str| {
            Bytes::from(format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[],"annotations":{{"n":"{note}"}}}}"#
            ))
        };
        let (raced, other) = (index("raced"), index("other"));
        let digest = Digest::of_bytes(crate::digest::Algorithm::Sha256, &raced);
        let by_digest = Reference::Digest(digest.clone());
        let pad: Vec<String> = (0..400).map(|i| format!("pad{i:03}")).collect();
        for pad in pad.chunks(50) {
            pusher
                .put_manifest(
                    &name,
                    &Reference::Tag("other".into()),
                    None,
                    other.clone(),
                    pad,
                )
                .await
                .unwrap();
        }
        let also = ["x".to_string()];
        for round in 0..60 {
            pusher
                .put_manifest(&name, &by_digest, None, raced.clone(), &[])
                .await
                .unwrap();
            let tag = Reference::Tag(format!("t{round}"));
            let (pushed, deleted) = tokio::join!(
                pusher.put_manifest(&name, &tag, None, raced.clone(), &also),
                deleter.delete_manifest(&name, &by_digest)
            );
            assert!(pushed.is_ok() || pushed.is_err_and(|e| e.status.as_u16() == 503));
            assert!(deleted.is_ok() || deleted.is_err_and(|e| e.code == Code::ManifestUnknown));
        }
        let stored = backend
            .list(&layout::tags(&name), None, 1000)
            .await
            .unwrap();
        let mut dangling = Vec::new();
        for tag in &stored {
            let target = backend.read_all(&layout::tag(&name, tag)).await.unwrap();
            let target: Digest = String::from_utf8_lossy(&target).parse().unwrap();
            let link = layout::manifest_link(&name, &target);
            if backend.stat(&link).await.unwrap().is_none() {
                dangling.push(tag.clone());
            }
        }
        assert_eq!(dangling, Vec::<String>::new(), "tags of a deleted manifest");
        let (listed, _) = pusher.tags(&name, None, None).await.unwrap();
        assert_eq!(listed, stored);
    }
}
