//! The snapshotter: layers unpacked on disk as docker's overlay2 lays them
//! out, one directory per layer keyed by its ChainID.
//!
//! ```text
//! <root>/<chainid>/diff/     the layer's files (an overlay lower dir)
//! <root>/<chainid>/link      its 26-character short id
//! <root>/<chainid>/lower     l/<short> of every parent, topmost first (absent for a base layer)
//! <root>/<chainid>/work/     overlay work dir (layers with parents)
//! <root>/l/<short>           symlink to ../<chainid>/diff
//! <root>/.staging/<chainid>-<uuid>/   a layer being unpacked
//! ```
//!
//! A layer is unpacked into a staging directory and published by rename,
//! so a killed unpack leaves no half layer, and concurrent unpacks of one
//! layer end with one copy. Layers need not wait for their parents: the
//! parent chain only matters for `lower`, written when a layer is
//! published. Mount options use the short links so that 100+ layers fit
//! in one page, as overlay2 does.

use roci::{Algorithm, Digest};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("layer {0} is not unpacked")]
    Missing(Digest),
    #[error("mount options for {layers} layers do not fit in one page ({len} bytes)")]
    TooLong { layers: usize, len: usize },
}

pub type Result<T, E = SnapshotError> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// ChainIDs of a stack of layers given their DiffIDs, lowest first:
/// ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(parent) => {
                Digest::of_bytes(Algorithm::Sha256, format!("{parent} {diff_id}").as_bytes())
            }
        };
        chain.push(next);
    }
    chain
}

/// The 26-character short id of a layer: base32 of the first 130 bits of
/// its ChainID (overlay2's are random base32 of the same length).
fn short_id(chain_id: &Digest) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hex = chain_id.hex().as_bytes();
    let mut out = String::with_capacity(26);
    let (mut bits, mut count) = (0u32, 0u32);
    for nibble in hex.iter().map(|c| (*c as char).to_digit(16).unwrap_or(0)) {
        bits = (bits << 4) | nibble;
        count += 4;
        while count >= 5 && out.len() < 26 {
            count -= 5;
            out.push(ALPHABET[((bits >> count) & 31) as usize] as char);
        }
        bits &= (1 << count) - 1;
        if out.len() == 26 {
            break;
        }
    }
    out
}

/// A layer being unpacked: write into [`Staged::diff`], then [`Snapshotter::publish`].
pub struct Staged {
    dir: PathBuf,
    chain_id: Digest,
}

impl Staged {
    pub fn diff(&self) -> PathBuf {
        self.dir.join("diff")
    }

    /// Names the layer this staging directory will be published as (for
    /// a layer unpacked before its ChainID was known).
    pub fn into_layer(mut self, chain_id: &Digest) -> Staged {
        self.chain_id = chain_id.clone();
        self
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Published layers were renamed away; anything left is a failed unpack.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The overlay2 layer directories under one root.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
}

impl Snapshotter {
    /// Opens (creating) the layer root; stale staging directories of a
    /// killed unpack are removed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Snapshotter> {
        let root = root.into();
        let staging = root.join(".staging");
        if staging.exists() {
            // Only directories no live unpack holds: those older than a minute.
            for entry in std::fs::read_dir(&staging).map_err(io(&staging))?.flatten() {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 60);
                if old {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        for dir in [root.join("l"), staging] {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        Ok(Snapshotter { root })
    }

    fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.root.join(chain_id.hex())
    }

    /// Whether the layer is unpacked and published.
    pub fn exists(&self, chain_id: &Digest) -> bool {
        self.layer_dir(chain_id).join("link").exists()
    }

    /// The layer's files.
    pub fn diff(&self, chain_id: &Digest) -> PathBuf {
        self.layer_dir(chain_id).join("diff")
    }

    /// A staging directory to unpack the layer `chain_id` into.
    pub fn stage(&self, chain_id: &Digest) -> Result<Staged> {
        let dir =
            self.root
                .join(".staging")
                .join(format!("{}-{}", chain_id.hex(), uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("diff")).map_err(io(&dir))?;
        Ok(Staged {
            dir,
            chain_id: chain_id.clone(),
        })
    }

    /// Publishes an unpacked layer whose parents are `parents` (ChainIDs,
    /// lowest first), which must be published already. A layer someone
    /// else published meanwhile is kept and this copy dropped.
    pub fn publish(&self, staged: Staged, parents: &[Digest]) -> Result<()> {
        let target = self.layer_dir(&staged.chain_id);
        if self.exists(&staged.chain_id) {
            return Ok(());
        }
        let short = short_id(&staged.chain_id);
        roci::atomic::write_atomic(&staged.dir.join("link"), short.as_bytes())
            .map_err(io(&staged.dir))?;
        if !parents.is_empty() {
            let mut lower = Vec::with_capacity(parents.len());
            for parent in parents.iter().rev() {
                if !self.exists(parent) {
                    return Err(SnapshotError::Missing(parent.clone()));
                }
                lower.push(format!("l/{}", short_id(parent)));
            }
            roci::atomic::write_atomic(&staged.dir.join("lower"), lower.join(":").as_bytes())
                .map_err(io(&staged.dir))?;
            std::fs::create_dir_all(staged.dir.join("work")).map_err(io(&staged.dir))?;
        }
        match std::fs::rename(&staged.dir, &target) {
            Ok(()) => {}
            // Published by another unpack between the check and the rename.
            Err(e)
                if target.exists()
                    && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) =>
            {
                return Ok(())
            }
            Err(e) => return Err(io(&target)(e)),
        }
        if let Some(layers) = target.parent() {
            roci::atomic::sync_dir(layers).map_err(io(layers))?;
        }
        let link = self.root.join("l").join(&short);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(
            Path::new("..").join(staged.chain_id.hex()).join("diff"),
            &link,
        )
        .map_err(io(&link))?;
        Ok(())
    }

    /// The overlay `lowerdir=` value for a stack whose top layer is `top`,
    /// relative to the root (mount with the root as working directory).
    pub fn lowerdir(&self, top: &Digest) -> Result<String> {
        let dir = self.layer_dir(top);
        let link = std::fs::read_to_string(dir.join("link"))
            .map_err(|_| SnapshotError::Missing(top.clone()))?;
        let mut lower = format!("l/{}", link.trim());
        if let Ok(parents) = std::fs::read_to_string(dir.join("lower")) {
            lower.push(':');
            lower.push_str(parents.trim());
        }
        let page = 4096;
        if lower.len() + 256 > page {
            return Err(SnapshotError::TooLong {
                layers: lower.matches(':').count() + 1,
                len: lower.len(),
            });
        }
        Ok(lower)
    }

    /// The layers' files for a stack whose top layer is `top`, topmost
    /// first, as absolute paths (for a mount made from anywhere).
    pub fn lower_paths(&self, top: &Digest) -> Result<Vec<PathBuf>> {
        let relative = self.lowerdir(top)?;
        Ok(relative
            .split(':')
            .map(|short| self.root.join(short))
            .collect())
    }

    /// Removes every layer not in `keep` (ChainIDs in use by some image).
    pub fn collect(&self, keep: &std::collections::HashSet<Digest>) -> Result<Vec<Digest>> {
        let mut removed = Vec::new();
        for entry in std::fs::read_dir(&self.root)
            .map_err(io(&self.root))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(chain_id) = format!("sha256:{name}").parse::<Digest>() else {
                continue;
            };
            if keep.contains(&chain_id) {
                continue;
            }
            if let Ok(short) = std::fs::read_to_string(entry.path().join("link")) {
                let _ = std::fs::remove_file(self.root.join("l").join(short.trim()));
            }
            std::fs::remove_dir_all(entry.path()).map_err(io(&entry.path()))?;
            removed.push(chain_id);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests;
