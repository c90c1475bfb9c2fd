//! An image's files read straight from its unpacked layers, with overlay's
//! rules (whiteouts hide, opaque directories end the look down), without
//! mounting anything: what COPY --from, `--chown` names and WORKDIR need.

use crate::differ::{self, is_opaque};
use std::path::{Path, PathBuf};

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
    /// Where `relative` (no leading `/`) lives: the topmost layer that has
    /// it, unless a whiteout or an opaque directory above hides it.
    pub fn find(&self, relative: &str) -> Option<PathBuf> {
        let relative = relative.trim_matches('/');
        if relative.is_empty() {
            return self.layers.first().cloned();
        }
        let parts: Vec<&str> = relative.split('/').collect();
        for layer in &self.layers {
            let path = layer.join(relative);
            if let Ok(meta) = std::fs::symlink_metadata(&path) {
                return (!differ::is_whiteout(&meta)).then_some(path);
            }
            // A whiteout of, or an opaque, ancestor in this layer hides the rest below.
            let mut ancestor = layer.clone();
            for part in &parts[..parts.len() - 1] {
                ancestor.push(part);
                if is_whiteout(&ancestor) || is_opaque(&ancestor) {
                    return None;
                }
            }
        }
        None
    }

    /// The names in directory `relative`, merged over the layers.
    pub fn list(&self, relative: &str) -> Vec<String> {
        let relative = relative.trim_matches('/');
        let mut seen = std::collections::BTreeMap::new();
        for layer in &self.layers {
            let dir = layer.join(relative);
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let whiteout = is_whiteout(&entry.path());
                    seen.entry(name).or_insert(!whiteout);
                }
                if is_opaque(&dir) {
                    break;
                }
            }
            if is_whiteout(&dir) {
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
