//! Pull: resolve the reference, pick the platform of an index, download
//! the config and layers several at once into the content store (each
//! verified by its digest while it is written; a broken download resumes
//! with `Range`), then name the image.

use crate::distribution::{ApiError, FetchedManifest, Registry};
use crate::platform::Platform;
use crate::reference::ImageReference;
use crate::transport::Transport;
use futures_util::StreamExt;
use rengine::store::{ContentStore, ImageRef, StoreError};
use roci::Digest;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no manifest for platform {wanted} in {reference}; available: {}", available.join(", "))]
    NoPlatform {
        reference: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("{0}")]
    Manifest(String),
    #[error("download of {digest} failed after {attempts} attempts: {message}")]
    Download {
        digest: Digest,
        attempts: u32,
        message: String,
    },
}

/// What a pull reports as it goes, for a display to render.
#[derive(Debug)]
pub enum Event<'a> {
    /// Bytes of a blob written so far (sent after every chunk).
    Progress {
        digest: &'a Digest,
        written: u64,
        size: u64,
    },
    /// A blob is finished: `Pull complete` or `Already exists`.
    Done {
        digest: &'a Digest,
        status: &'static str,
    },
    /// What the image is made of, before any blob is fetched.
    Plan {
        config: &'a Digest,
        layers: &'a [Digest],
    },
    /// A download broke off and resumes.
    Resuming {
        digest: &'a Digest,
        written: u64,
        size: u64,
        why: String,
    },
}

pub struct PullOptions {
    pub platform: Platform,
    pub max_concurrent_downloads: usize,
    /// The name the image gets in the store (default `host/repo:tag`, or `host/repo@digest`).
    pub name: Option<String>,
    pub report: Box<dyn Fn(Event<'_>) + Send + Sync>,
}

/// What a pull did.
#[derive(Debug)]
pub struct Pulled {
    pub name: String,
    /// The digest of what the reference resolved to (an index, for a multi-platform image).
    pub digest: Digest,
    /// The digest of the platform's image manifest that was stored.
    pub manifest_digest: Digest,
    pub downloaded: usize,
    pub present: usize,
}

/// A descriptor's digest and size.
fn descriptor(value: &Value, what: &str) -> Result<(Digest, u64), PullError> {
    let digest = value
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| PullError::Manifest(format!("{what}: descriptor without a valid digest")))?;
    let size = value
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| PullError::Manifest(format!("{what}: descriptor without a size")))?;
    Ok((digest, size))
}

fn is_index(manifest: &FetchedManifest, json: &Value) -> bool {
    manifest.media_type.contains("index")
        || manifest.media_type.contains("manifest.list")
        || json.get("manifests").is_some()
}

pub async fn pull(
    transport: &Transport,
    store: &ContentStore,
    reference: &ImageReference,
    options: &PullOptions,
) -> Result<Pulled, PullError> {
    let registry = Registry::new(transport, &reference.registry);
    let repo = reference.repository.as_str();
    let top = registry.manifest(repo, &reference.reference()).await?;
    let top_json = top.json()?;
    let manifest = if is_index(&top, &top_json) {
        let entries = top_json
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let chosen = entries
            .iter()
            .find(|e| {
                e.get("platform")
                    .is_some_and(|p| options.platform.matches(p))
            })
            .ok_or_else(|| PullError::NoPlatform {
                reference: reference.to_string(),
                wanted: options.platform.to_string(),
                available: entries
                    .iter()
                    .filter_map(|e| e.get("platform"))
                    .map(Platform::describe)
                    .collect(),
            })?;
        let (digest, _) = descriptor(chosen, "index entry")?;
        registry.manifest(repo, &digest.to_string()).await?
    } else {
        top.clone()
    };
    let json = manifest.json()?;
    let mut blobs = vec![descriptor(
        json.get("config").unwrap_or(&Value::Null),
        "config",
    )?];
    for layer in json
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if layer.get("urls").is_some()
            && layer
                .get("mediaType")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains("foreign") || t.contains("nondistributable"))
        {
            continue; // lives elsewhere by design; not fetched, as docker does not
        }
        blobs.push(descriptor(layer, "layer")?);
    }

    let layer_digests: Vec<Digest> = blobs[1..].iter().map(|(d, _)| d.clone()).collect();
    (options.report)(Event::Plan {
        config: &blobs[0].0,
        layers: &layer_digests,
    });
    let _session = store.write_session()?;
    let mut downloaded = 0;
    let mut present = 0;
    let results = futures_util::stream::iter(blobs.into_iter().map(|(digest, size)| {
        let registry = &registry;
        async move {
            let place = format!("{}/{repo}", registry.host());
            if store.blob_size(&digest) == Some(size) {
                store.add_origin(&digest, &place)?;
                (options.report)(Event::Done {
                    digest: &digest,
                    status: "Already exists",
                });
                return Ok(false);
            }
            download(registry, repo, store, &digest, size, options).await?;
            store.add_origin(&digest, &place)?;
            (options.report)(Event::Done {
                digest: &digest,
                status: "Pull complete",
            });
            Ok::<bool, PullError>(true)
        }
    }))
    .buffer_unordered(options.max_concurrent_downloads.max(1))
    .collect::<Vec<_>>()
    .await;
    for result in results {
        if result? {
            downloaded += 1;
        } else {
            present += 1;
        }
    }
    store.put_bytes_as(&manifest.digest, &manifest.bytes)?;
    let name = match &options.name {
        Some(name) => name.clone(),
        None if reference.tag.is_none() && reference.digest.is_some() => {
            format!("{}@{}", reference.name(), top.digest)
        }
        None => reference
            .with_tag(&reference.tag.clone().unwrap_or_else(|| "latest".into()))
            .to_string(),
    };
    store.tag(&ImageRef {
        name: name.clone(),
        digest: manifest.digest.clone(),
        media_type: manifest.media_type.clone(),
        size: manifest.bytes.len() as u64,
    })?;
    Ok(Pulled {
        name,
        digest: top.digest,
        manifest_digest: manifest.digest,
        downloaded,
        present,
    })
}

/// An error and its causes on one line.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The first 12 hex digits, as docker shows layer ids.
pub fn short(digest: &Digest) -> String {
    digest.hex().chars().take(12).collect()
}

/// Downloads one blob into the store, resuming with `Range` from what was
/// written (and hashed) so far after a broken connection, for as long as
/// the retry budget lasts (it starts again whenever bytes arrive); verified
/// before it becomes visible.
async fn download(
    registry: &Registry<'_>,
    repo: &str,
    store: &ContentStore,
    digest: &Digest,
    size: u64,
    options: &PullOptions,
) -> Result<(), PullError> {
    let mut writer = store.blob_writer(digest, Some(size))?;
    let mut retries = registry.retry_policy().start();
    loop {
        let before = writer.written();
        // Refusals and store errors (too many bytes) are final; the
        // transport retries connection failures and 5xx itself.
        let response = registry.blob(repo, digest, before).await?;
        let mut body = response.bytes_stream();
        let mut broken = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    tokio::task::block_in_place(|| writer.write_chunk(&chunk))?;
                    (options.report)(Event::Progress {
                        digest,
                        written: writer.written(),
                        size,
                    });
                }
                Err(e) => {
                    broken = Some(describe(&e));
                    break;
                }
            }
        }
        if broken.is_none() && writer.written() == size {
            break;
        }
        let why = broken.unwrap_or_else(|| "the connection ended early".to_string());
        if writer.written() > before {
            retries.progressed();
        }
        let Some(delay) = retries.failed(None) else {
            return Err(PullError::Download {
                digest: digest.clone(),
                attempts: retries.attempt(),
                message: why,
            });
        };
        (options.report)(Event::Resuming {
            digest,
            written: writer.written(),
            size,
            why: why.clone(),
        });
        let what = format!("downloading {digest}");
        retries.wait(&what, &why, delay).await;
    }
    tokio::task::block_in_place(|| writer.commit())?;
    Ok(())
}
