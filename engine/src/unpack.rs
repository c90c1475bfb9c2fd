//! Unpacking a stored image into the snapshotter: every layer not yet
//! unpacked is applied into its own staging directory (in parallel when
//! asked, since no layer waits for another), its DiffID checked against
//! the image config, then the layers are published lowest first.

use crate::applier::{apply_layer, ApplyError, ApplyOptions};
use crate::snapshot::{chain_ids, SnapshotError, Snapshotter, Staged};
use crate::store::{ContentStore, StoreError};
use roci::Digest;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("layer {layer}: {source}")]
    Apply { layer: Digest, source: ApplyError },
    #[error("layer {layer} unpacks to DiffID {actual}, but the image config says {expected}")]
    DiffId {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("invalid image: {0}")]
    Invalid(String),
}

/// What an unpack did.
#[derive(Debug)]
pub struct Unpacked {
    /// ChainID of the top layer (the stack to mount), `None` for an image without layers.
    pub top: Option<Digest>,
    pub layers: usize,
    /// Layers unpacked now (the others were already there).
    pub unpacked: usize,
}

fn digests(value: Option<&Value>, what: &str) -> Result<Vec<Digest>, UnpackError> {
    value
        .and_then(Value::as_array)
        .ok_or_else(|| UnpackError::Invalid(format!("no {what}")))?
        .iter()
        .map(|v| {
            v.as_str()
                .or_else(|| v.get("digest").and_then(Value::as_str))
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| UnpackError::Invalid(format!("a bad digest in {what}")))
        })
        .collect()
}

/// Unpacks the image whose manifest is `manifest` (stored in `store`).
/// `workers` layers are applied at once (1: one at a time, as docker does).
pub fn unpack_image(
    store: &ContentStore,
    snapshots: &Snapshotter,
    manifest: &Digest,
    workers: usize,
    options: ApplyOptions,
) -> Result<Unpacked, UnpackError> {
    unpack_with(
        store,
        snapshots,
        manifest,
        workers,
        options,
        Early::default(),
    )
}

/// Layers unpacked before the image config was read, by blob digest: the
/// staging directory and the DiffID found.
type Early = Mutex<HashMap<Digest, (Staged, Digest)>>;

fn unpack_with(
    store: &ContentStore,
    snapshots: &Snapshotter,
    manifest: &Digest,
    workers: usize,
    options: ApplyOptions,
    early: Early,
) -> Result<Unpacked, UnpackError> {
    let manifest: Value = serde_json::from_slice(&store.read_blob(manifest)?)
        .map_err(|e| UnpackError::Invalid(format!("manifest: {e}")))?;
    let layers = digests(manifest.get("layers"), "layers")?;
    let config_digest = manifest
        .get("config")
        .and_then(|c| c.get("digest"))
        .and_then(Value::as_str)
        .and_then(|d| d.parse::<Digest>().ok())
        .ok_or_else(|| UnpackError::Invalid("no config".into()))?;
    let config: Value = serde_json::from_slice(&store.read_blob(&config_digest)?)
        .map_err(|e| UnpackError::Invalid(format!("config: {e}")))?;
    let diff_ids = digests(
        config.get("rootfs").and_then(|r| r.get("diff_ids")),
        "rootfs.diff_ids",
    )?;
    if diff_ids.len() != layers.len() {
        return Err(UnpackError::Invalid(format!(
            "{} layers but {} DiffIDs in the config",
            layers.len(),
            diff_ids.len()
        )));
    }
    let chain = chain_ids(&diff_ids);
    let todo: Vec<usize> = (0..layers.len())
        .filter(|&i| !snapshots.exists(&chain[i]))
        .collect();

    // Apply the missing layers, each into its own staging directory.
    let staged: Mutex<Vec<Option<Staged>>> = Mutex::new((0..layers.len()).map(|_| None).collect());
    let failure: Mutex<Option<UnpackError>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    let apply_one = |i: usize| -> Result<(), UnpackError> {
        let ready = early
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&layers[i]);
        if let Some((stage, diff_id)) = ready {
            if diff_id != diff_ids[i] {
                return Err(UnpackError::DiffId {
                    layer: layers[i].clone(),
                    expected: diff_ids[i].clone(),
                    actual: diff_id,
                });
            }
            staged.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(stage.into_layer(&chain[i]));
            return Ok(());
        }
        let stage = snapshots.stage(&chain[i])?;
        let blob = store.open_blob(&layers[i])?;
        let applied = apply_layer(std::io::BufReader::new(blob), &stage.diff(), options).map_err(
            |source| UnpackError::Apply {
                layer: layers[i].clone(),
                source,
            },
        )?;
        if applied.diff_id != diff_ids[i] {
            return Err(UnpackError::DiffId {
                layer: layers[i].clone(),
                expected: diff_ids[i].clone(),
                actual: applied.diff_id,
            });
        }
        staged.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(stage);
        Ok(())
    };
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1).min(todo.len().max(1)) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = todo.get(k) else { break };
                if failure.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                    break;
                }
                if let Err(e) = apply_one(i) {
                    failure
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                    break;
                }
            });
        }
    });
    if let Some(error) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(error); // staged layers are dropped, and with them their directories
    }
    // Publish lowest first: each layer's `lower` names its published parents.
    let mut staged = staged.into_inner().unwrap_or_else(|p| p.into_inner());
    for &i in &todo {
        if let Some(stage) = staged[i].take() {
            snapshots.publish(stage, &chain[..i])?;
        }
    }
    Ok(Unpacked {
        top: chain.last().cloned(),
        layers: layers.len(),
        unpacked: todo.len(),
    })
}

/// Unpacks layers while an image is still downloading: each layer blob is
/// applied (into a staging directory of its own) as soon as it is
/// complete in the store, `workers` at once; [`EarlyUnpacker::finish`]
/// then checks them against the config and publishes the image's stack.
pub struct EarlyUnpacker {
    sender: Option<mpsc::Sender<Digest>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    early: Arc<Early>,
    store: ContentStore,
    snapshots: Snapshotter,
    options: ApplyOptions,
    threads: usize,
}

impl EarlyUnpacker {
    pub fn new(
        store: &ContentStore,
        snapshots: &Snapshotter,
        workers: usize,
        options: ApplyOptions,
    ) -> EarlyUnpacker {
        let (sender, receiver) = mpsc::channel::<Digest>();
        let receiver = Arc::new(Mutex::new(receiver));
        let early: Arc<Early> = Arc::default();
        let threads = workers.max(1);
        let handles = (0..threads)
            .map(|_| {
                let receiver = receiver.clone();
                let early = early.clone();
                let store = store.clone();
                let snapshots = snapshots.clone();
                std::thread::spawn(move || loop {
                    let next = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok(blob) = next else { break };
                    // A failure here is not final: finish() applies the layer again and reports.
                    let Ok(stage) = snapshots.stage(&blob) else {
                        continue;
                    };
                    let Ok(file) = store.open_blob(&blob) else {
                        continue;
                    };
                    if let Ok(applied) =
                        apply_layer(std::io::BufReader::new(file), &stage.diff(), options)
                    {
                        early
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(blob, (stage, applied.diff_id));
                    }
                })
            })
            .collect();
        EarlyUnpacker {
            sender: Some(sender),
            workers: handles,
            early,
            store: store.clone(),
            snapshots: snapshots.clone(),
            options,
            threads,
        }
    }

    /// A layer blob is complete in the store: unpack it now.
    pub fn layer_ready(&self, blob: &Digest) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(blob.clone());
        }
    }

    /// Waits for the early unpacks, applies what is still missing, checks
    /// every DiffID and publishes the stack of the image `manifest`.
    pub fn finish(mut self, manifest: &Digest) -> Result<Unpacked, UnpackError> {
        self.sender = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        let early = Arc::try_unwrap(std::mem::take(&mut self.early))
            .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
            .unwrap_or_default();
        unpack_with(
            &self.store,
            &self.snapshots,
            manifest,
            self.threads,
            self.options,
            Mutex::new(early),
        )
    }
}
