//! Named volumes: `<root>/volumes/<name>/_data`, as docker's local driver
//! lays them out. A new empty volume is filled with the image's files at
//! its mount point on first use (see `rootfs`).

use super::containers::Containers;
use super::{io, Result, RuntimeError};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    pub fn open(root: &Path) -> Result<Volumes> {
        let dir = root.join("volumes");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(Volumes { dir })
    }

    fn valid(name: &str) -> bool {
        let mut chars = name.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    }

    /// The data directory of volume `name`, created when missing.
    pub fn create(&self, name: &str) -> Result<PathBuf> {
        if !Self::valid(name) {
            return Err(RuntimeError::Invalid(format!(
                "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
            )));
        }
        let data = self.dir.join(name).join("_data");
        std::fs::create_dir_all(&data).map_err(io(&data))?;
        Ok(data)
    }

    /// An anonymous volume (a random 64-hex name), for an image `VOLUME`.
    pub fn create_anonymous(&self) -> Result<(String, PathBuf)> {
        let name = Containers::new_id();
        let data = self.create(&name)?;
        Ok((name, data))
    }

    pub fn list(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(io(&self.dir))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| Self::valid(n))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Removes a volume no container uses.
    pub fn remove(&self, name: &str, containers: &Containers) -> Result<()> {
        let path = self.dir.join(name);
        if !Self::valid(name) || !path.exists() {
            return Err(RuntimeError::Invalid(format!("no such volume: {name}")));
        }
        let users: Vec<String> = containers
            .list()?
            .into_iter()
            .filter(|c| {
                c.config
                    .mounts
                    .iter()
                    .any(|m| m.name.as_deref() == Some(name))
            })
            .map(|c| c.config.id[..12].to_string())
            .collect();
        if !users.is_empty() {
            return Err(RuntimeError::Invalid(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        std::fs::remove_dir_all(&path).map_err(io(&path))
    }
}
