//! Copy: an image from one place to another without a local copy, where a
//! place is a registry reference (`docker://` optional) or an OCI layout
//! directory (`oci:PATH:NAME`). Between registries blobs stream through,
//! are skipped when the target has them, and are mounted across
//! repositories of one registry. `--all` copies every platform of an index.

use crate::distribution::{ApiError, FetchedManifest, Registry, Source};
use crate::platform::Platform;
use crate::pull::{self, short, PullError, PullOptions};
use crate::push::{self, PushError};
use crate::reference::{ImageReference, ReferenceError};
use crate::transport::Transport;
use rengine::store::{ContentStore, StoreError};
use roci::Digest;
use serde_json::Value;
use std::path::PathBuf;

/// One end of a copy.
#[derive(Debug, Clone)]
pub enum Location {
    Registry(ImageReference),
    /// An OCI image layout and the `ref.name` of the image in it.
    Layout {
        path: PathBuf,
        name: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

impl Location {
    /// `oci:PATH:NAME`, `docker://REF` or `REF`.
    pub fn parse(text: &str, default_registry: &str) -> Result<Location, CopyError> {
        if let Some(rest) = text.strip_prefix("oci:") {
            let (path, name) = rest
                .split_once(':')
                .ok_or_else(|| CopyError::Invalid(format!("{text}: expected oci:PATH:NAME")))?;
            if path.is_empty() || name.is_empty() {
                return Err(CopyError::Invalid(format!(
                    "{text}: expected oci:PATH:NAME"
                )));
            }
            return Ok(Location::Layout {
                path: PathBuf::from(path),
                name: name.to_string(),
            });
        }
        let text = text.strip_prefix("docker://").unwrap_or(text);
        Ok(Location::Registry(ImageReference::parse(
            text,
            default_registry,
        )?))
    }
}

/// How a copy goes.
pub struct CopyOptions {
    /// Every platform of an index, instead of one.
    pub all: bool,
    pub platform: Platform,
    pub report: Box<dyn Fn(String) + Send + Sync>,
}

/// Copies `source` to `target`; returns the digest of what was written.
pub async fn copy(
    transport: &Transport,
    source: &Location,
    target: &Location,
    options: &CopyOptions,
) -> Result<Digest, CopyError> {
    match (source, target) {
        (Location::Registry(from), Location::Registry(to)) => {
            let src = Registry::new(transport, &from.registry);
            let dst = Registry::new(transport, &to.registry);
            let copier = Copier {
                src: &src,
                dst: &dst,
                from,
                to,
                options,
            };
            copier.manifest(&from.reference(), &to.reference()).await
        }
        (Location::Registry(from), Location::Layout { path, name }) => {
            if options.all {
                return Err(CopyError::Invalid(
                    "--all into an OCI layout is not supported; copy one platform".into(),
                ));
            }
            let store = ContentStore::open(path)?;
            let pull_options = PullOptions {
                platform: options.platform.clone(),
                max_concurrent_downloads: 4,
                name: Some(name.clone()),
                report: Box::new(|_| {}),
            };
            let pulled = pull::pull(transport, &store, from, &pull_options).await?;
            (options.report)(format!(
                "Wrote {} to {}",
                pulled.manifest_digest,
                path.display()
            ));
            Ok(pulled.manifest_digest)
        }
        (Location::Layout { path, name }, Location::Registry(to)) => {
            let store = ContentStore::open(path)?;
            let push_options = push::PushOptions {
                max_concurrent_uploads: 4,
                chunk_size: None,
                report: options.report.as_ref(),
                interrupted: None,
            };
            let pushed = push::push(transport, &store, name, to, &push_options).await?;
            Ok(pushed.digest)
        }
        (Location::Layout { .. }, Location::Layout { .. }) => Err(CopyError::Invalid(
            "copy between two OCI layouts is not supported; use a registry as one end".into(),
        )),
    }
}

struct Copier<'a> {
    src: &'a Registry<'a>,
    dst: &'a Registry<'a>,
    from: &'a ImageReference,
    to: &'a ImageReference,
    options: &'a CopyOptions,
}

impl Copier<'_> {
    /// Copies the manifest at `reference` (and what it names) to `target_reference`.
    async fn manifest(&self, reference: &str, target_reference: &str) -> Result<Digest, CopyError> {
        let manifest = self
            .src
            .manifest(self.from.repository.as_str(), reference)
            .await?;
        let json = manifest.json()?;
        if let Some(entries) = json.get("manifests").and_then(Value::as_array) {
            if self.options.all {
                for entry in entries {
                    let digest = entry_digest(entry)?;
                    Box::pin(self.manifest(&digest.to_string(), &digest.to_string())).await?;
                }
                return self.put(&manifest, target_reference).await;
            }
            let chosen = entries
                .iter()
                .find(|e| {
                    e.get("platform")
                        .is_some_and(|p| self.options.platform.matches(p))
                })
                .ok_or_else(|| PullError::NoPlatform {
                    reference: self.from.to_string(),
                    wanted: self.options.platform.to_string(),
                    available: entries
                        .iter()
                        .filter_map(|e| e.get("platform"))
                        .map(Platform::describe)
                        .collect(),
                })?;
            return Box::pin(self.manifest(&entry_digest(chosen)?.to_string(), target_reference))
                .await;
        }
        let blobs = json.get("config").into_iter().chain(
            json.get("layers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
        for descriptor in blobs {
            let digest = entry_digest(descriptor)?;
            let size = descriptor.get("size").and_then(Value::as_u64).unwrap_or(0);
            self.blob(&digest, size).await?;
        }
        self.put(&manifest, target_reference).await
    }

    async fn put(
        &self,
        manifest: &FetchedManifest,
        target_reference: &str,
    ) -> Result<Digest, CopyError> {
        Ok(self
            .dst
            .put_manifest(
                self.to.repository.as_str(),
                target_reference,
                &manifest.media_type,
                manifest.bytes.clone(),
            )
            .await?)
    }

    async fn blob(&self, digest: &Digest, size: u64) -> Result<(), CopyError> {
        let (from_repo, to_repo) = (self.from.repository.as_str(), self.to.repository.as_str());
        if self.dst.blob_size(to_repo, digest).await?.is_some() {
            (self.options.report)(format!("{}: Already exists", short(digest)));
            return Ok(());
        }
        if self.src.host() == self.dst.host()
            && self.dst.mount_blob(to_repo, digest, from_repo).await?
        {
            (self.options.report)(format!("{}: Mounted from {from_repo}", short(digest)));
            return Ok(());
        }
        let source = Source::Blob {
            registry: self.src,
            repo: from_repo,
        };
        self.dst
            .upload(to_repo, digest, size, &source, None)
            .await?;
        (self.options.report)(format!("{}: Copied", short(digest)));
        Ok(())
    }
}

fn entry_digest(entry: &Value) -> Result<Digest, CopyError> {
    entry
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| CopyError::Invalid("descriptor without a valid digest".into()))
}
