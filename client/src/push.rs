//! Push: every blob of a stored image the registry lacks is uploaded
//! (several at once; those it has are skipped after a `HEAD`), then the
//! manifest is put under the reference's tag.

use crate::distribution::{ApiError, Registry, Source};
use crate::pull::short;
use crate::reference::ImageReference;
use crate::transport::Transport;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use rengine::store::{ContentStore, StoreError};
use roci::Digest;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no image named {0} in the local store (rctl images lists them)")]
    NotFound(String),
    #[error("{0}")]
    Manifest(String),
    #[error("interrupted; the uploads begun were cancelled")]
    Interrupted,
}

/// What a push did.
#[derive(Debug)]
pub struct Pushed {
    pub digest: Digest,
    pub size: u64,
    pub uploaded: usize,
    pub skipped: usize,
}

/// How a push goes.
pub struct PushOptions<'a> {
    pub max_concurrent_uploads: usize,
    /// Upload in `PATCH` chunks of this many bytes instead of one request per blob.
    pub chunk_size: Option<u64>,
    /// Called with one line per blob (pushed, mounted, already there).
    pub report: &'a (dyn Fn(String) + Send + Sync),
    /// Makes a future that resolves when the push is to stop (Ctrl-C): the
    /// uploads begun are then cancelled (`DELETE`), none left half done.
    pub interrupted: Option<&'a (dyn Fn() -> BoxFuture<'static, ()> + Send + Sync)>,
}

/// How long cancelling the uploads of an interrupted push may take.
const CANCEL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Pushes the stored image `name` to `reference`.
pub async fn push(
    transport: &Transport,
    store: &ContentStore,
    name: &str,
    reference: &ImageReference,
    options: &PushOptions<'_>,
) -> Result<Pushed, PushError> {
    let report = options.report;
    let name = name.to_string();
    let image = store
        .resolve(&name)?
        .ok_or_else(|| PushError::NotFound(name.clone()))?;
    let bytes = store.read_blob(&image.digest)?;
    let manifest: Value = serde_json::from_slice(&bytes).map_err(|e| {
        PushError::Manifest(format!("stored manifest {} is not JSON: {e}", image.digest))
    })?;
    if manifest.get("manifests").is_some() {
        return Err(PushError::Manifest(format!(
            "{name} is an index; push its platform images by digest"
        )));
    }
    let mut blobs: Vec<Digest> = Vec::new();
    for descriptor in manifest.get("config").into_iter().chain(
        manifest
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    ) {
        if descriptor.get("urls").is_some() && store.blob_size(&parse_digest(descriptor)?).is_none()
        {
            continue; // a foreign layer the image names but does not carry
        }
        blobs.push(parse_digest(descriptor)?);
    }
    let registry = Registry::new(transport, &reference.registry);
    let repo = reference.repository.as_str();
    let uploads = futures_util::stream::iter(blobs.into_iter().map(|digest| {
        let registry = &registry;
        async move {
            if registry.blob_size(repo, &digest).await?.is_some() {
                report(format!("{}: Layer already exists", short(&digest)));
                return Ok(false);
            }
            // Pulled from another repository of this registry: mount it from there.
            let prefix = format!("{}/", registry.host());
            for place in store.origins(&digest) {
                let Some(from) = place.strip_prefix(&prefix).filter(|from| *from != repo) else {
                    continue;
                };
                if registry.mount_blob(repo, &digest, from).await? {
                    report(format!("{}: Mounted from {from}", short(&digest)));
                    return Ok(false);
                }
            }
            let len = store
                .blob_size(&digest)
                .ok_or_else(|| StoreError::BlobUnknown(digest.clone()))?;
            let path = store.blob_path(&digest);
            registry
                .upload(repo, &digest, len, &Source::File(&path), options.chunk_size)
                .await?;
            report(format!("{}: Pushed", short(&digest)));
            Ok::<bool, PushError>(true)
        }
    }))
    .buffer_unordered(options.max_concurrent_uploads.max(1))
    .collect::<Vec<_>>();
    let results = match options.interrupted {
        None => uploads.await,
        Some(interrupted) => tokio::select! {
            results = uploads => results,
            () = interrupted() => {
                let _ = tokio::time::timeout(CANCEL_TIMEOUT, registry.cancel_open_uploads()).await;
                return Err(PushError::Interrupted);
            }
        },
    };
    let (mut uploaded, mut skipped) = (0, 0);
    for result in results {
        if result? {
            uploaded += 1;
        } else {
            skipped += 1;
        }
    }
    let tag = reference.reference();
    let digest = registry
        .put_manifest(
            repo,
            &tag,
            &image.media_type,
            bytes::Bytes::from(bytes.clone()),
        )
        .await?;
    Ok(Pushed {
        digest,
        size: bytes.len() as u64,
        uploaded,
        skipped,
    })
}

fn parse_digest(descriptor: &Value) -> Result<Digest, PushError> {
    descriptor
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| PushError::Manifest("descriptor without a valid digest".into()))
}
