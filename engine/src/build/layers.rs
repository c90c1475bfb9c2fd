//! An image's files read straight from its unpacked layers, with overlay's
//! rules (whiteouts hide, opaque directories and non-directories end the
//! look down), without mounting anything: what COPY --from, `--chown`
//! names and WORKDIR need, and where the runtime resolves a container's
//! mount points before its root is mounted. Every look into a layer goes
//! through the applier's no-follow descriptors: a symlink in a layer is
//! read as what it is, never followed on the host.

use crate::applier::dirfd::{entry_at, fd_path, LayerDir};
use crate::applier::path::{self, Components, Entry, ResolveError};
use crate::differ::{self, is_opaque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// What one layer says of a path.
enum InLayer {
    /// The layer holds it (a whiteout reads as [`Entry::Missing`]).
    Found(Entry),
    /// The layer does not hold it; `hides_below`: nor may a lower one
    /// (an opaque, whited-out or non-directory ancestor here).
    Absent { hides_below: bool },
}

/// Looks `components` up in one layer directory.
fn in_layer(layer: &Path, components: &[OsString]) -> std::io::Result<InLayer> {
    let Some((name, parents)) = components.split_last() else {
        return Ok(InLayer::Found(Entry::Directory));
    };
    let dir = match LayerDir::open_engine_path(layer) {
        Ok(dir) => dir,
        Err(nix::errno::Errno::ENOENT) => return Ok(InLayer::Absent { hides_below: false }),
        Err(e) => return Err(e.into()),
    };
    let mut opaque = false;
    let mut walked: Components = Vec::new();
    for part in parents {
        let parent = dir
            .existing_directory(&walked)?
            .ok_or_else(|| std::io::Error::other("a layer directory vanished"))?;
        match entry_at(&parent, part)? {
            Entry::Directory => {}
            Entry::Missing => {
                return Ok(InLayer::Absent {
                    hides_below: opaque,
                })
            }
            // A whiteout, file or symlink here hides the lower layers' tree.
            Entry::Symlink(_) | Entry::Other => return Ok(InLayer::Absent { hides_below: true }),
        }
        walked.push(part.clone());
        if let Some(fd) = dir.existing_directory(&walked)? {
            opaque |= is_opaque(&fd_path(&fd));
        }
    }
    let Some(parent) = dir.existing_directory(parents)? else {
        return Ok(InLayer::Absent {
            hides_below: opaque,
        });
    };
    match entry_at(&parent, name)? {
        Entry::Missing => Ok(InLayer::Absent {
            hides_below: opaque,
        }),
        Entry::Other
            if std::fs::symlink_metadata(fd_path(&parent).join(name))
                .is_ok_and(|m| differ::is_whiteout(&m)) =>
        {
            Ok(InLayer::Found(Entry::Missing))
        }
        entry => Ok(InLayer::Found(entry)),
    }
}

/// The layers of an image, topmost first.
#[derive(Debug, Clone, Default)]
pub struct LayerView {
    pub layers: Vec<PathBuf>,
}

fn is_whiteout(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .map(|m| differ::is_whiteout(&m))
        .unwrap_or(false)
}

impl LayerView {
    /// What `components` names in the merged image, not following it, and
    /// in which layer (`None` when missing).
    fn locate(&self, components: &[OsString]) -> std::io::Result<Option<(Entry, &Path)>> {
        for layer in &self.layers {
            match in_layer(layer, components)? {
                InLayer::Found(Entry::Missing) => return Ok(None),
                InLayer::Found(entry) => return Ok(Some((entry, layer))),
                InLayer::Absent { hides_below: true } => return Ok(None),
                InLayer::Absent { hides_below: false } => {}
            }
        }
        Ok(None)
    }

    /// What `components` names in the merged image, not following it.
    pub fn lookup(&self, components: &[OsString]) -> std::io::Result<Entry> {
        if components.is_empty() {
            return Ok(Entry::Directory);
        }
        Ok(self
            .locate(components)?
            .map_or(Entry::Missing, |(entry, _)| entry))
    }

    /// `raw` resolved inside the image as a container of it would see it
    /// ([`path::resolve`]: symlinks followed within the image, `..` stops at `/`).
    pub fn resolve(&self, raw: &Path) -> Result<Components, ResolveError> {
        path::resolve(raw, |components| self.lookup(components))
    }

    /// Where `relative` (no leading `/`) lives: the topmost layer that has
    /// it, unless a whiteout, an opaque directory or a non-directory above
    /// hides it. The path goes through no symlink in that layer.
    pub fn find(&self, relative: &str) -> Option<PathBuf> {
        let components = path::clamp(Path::new(relative));
        if components.is_empty() {
            return self.layers.first().cloned();
        }
        let (_, layer) = self.locate(&components).ok()??;
        Some(
            components
                .iter()
                .fold(layer.to_path_buf(), |p, c| p.join(c)),
        )
    }

    /// The names in directory `relative`, merged over the layers.
    pub fn list(&self, relative: &str) -> Vec<String> {
        let components = path::clamp(Path::new(relative));
        let mut seen = std::collections::BTreeMap::new();
        for layer in &self.layers {
            match in_layer(layer, &components) {
                Ok(InLayer::Found(Entry::Directory)) => {}
                Ok(InLayer::Absent { hides_below: false }) => continue,
                _ => break,
            }
            let Some(fd) = LayerDir::open_engine_path(layer)
                .ok()
                .and_then(|d| d.existing_directory(&components).ok().flatten())
            else {
                continue;
            };
            let dir = fd_path(&fd);
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let whiteout = is_whiteout(&entry.path());
                    seen.entry(name).or_insert(!whiteout);
                }
            }
            if is_opaque(&dir) {
                break;
            }
        }
        seen.into_iter()
            .filter(|(_, visible)| *visible)
            .map(|(name, _)| name)
            .collect()
    }

    /// Reads a small file (`/etc/passwd`), if the image has it.
    pub fn read(&self, relative: &str) -> Option<String> {
        std::fs::read_to_string(self.find(relative)?).ok()
    }

    /// Copies `relative` (a file, link or whole directory) to `target`,
    /// keeping modes, owners and mtimes.
    pub fn copy_out(&self, relative: &str, target: &Path) -> std::io::Result<()> {
        let source = self.find(relative).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, relative.to_string())
        })?;
        let meta = std::fs::symlink_metadata(&source)?;
        if meta.is_dir() {
            std::fs::create_dir_all(target)?;
            for name in self.list(relative) {
                let child = format!("{}/{name}", relative.trim_matches('/'));
                self.copy_out(&child, &target.join(&name))?;
            }
        } else {
            super::copy::copy_entry(&source, target)?;
        }
        super::copy::copy_metadata(&meta, target)
    }
}
