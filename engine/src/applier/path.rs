//! Paths made safe before anything is written.
//!
//! - [`sanitize`]: a layer's entry paths: a leading `/` is dropped (paths
//!   are relative to the layer root, as docker reads them), `.` components
//!   vanish, and `..` is refused outright.
//! - [`resolve`]: a path an image or a user gives for inside a container
//!   (`VOLUME`, `WORKDIR`, `-v`, a COPY destination), resolved as the
//!   container's own processes would see it: `..` stops at the root, and
//!   symlinks are followed relative to the root, never out of it (docker's
//!   `FollowSymlinkInScope`). The lookups are the caller's (a directory
//!   through [`super::dirfd::LayerDir::lookup`], an image's layers), and
//!   the result is created with [`super::dirfd::LayerDir::directory`],
//!   which follows no symlink.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A path inside the layer, as its components; empty for the root itself.
pub type Components = Vec<OsString>;

/// Sanitises an entry path, or says why it cannot be used.
pub fn sanitize(raw: &Path) -> Result<Components, String> {
    let mut components = Vec::new();
    for component in raw.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => return Err("the path climbs out with '..'".to_string()),
            Component::Normal(part) => components.push(part.to_os_string()),
        }
    }
    Ok(components)
}

/// What a path inside a root holds, as a [`resolve`] lookup reports it
/// (never following it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Missing,
    Directory,
    Symlink(PathBuf),
    /// A file, device, fifo or socket.
    Other,
}

/// Symlinks followed before a resolution gives up (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{path}: too many levels of symbolic links")]
    Loop { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// `path` lexically cleaned inside a root: `..` at the root stays there
/// (what `filepath.Clean` gives for an absolute path), no symlink read.
pub fn clamp(path: &Path) -> Components {
    let mut out: Components = Vec::new();
    push_all(&mut out, path);
    out
}

fn push_all(out: &mut Components, path: &Path) {
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part.to_os_string()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

/// The components as an absolute container path (`/a/b`).
pub fn absolute(components: &[OsString]) -> String {
    let mut text = String::from("/");
    text.push_str(
        &components
            .iter()
            .map(|c| c.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
    );
    text
}

/// Resolves `path` inside a root whose entries `lookup` reports: every
/// symlink met (the last component's too) is followed as the container
/// would, an absolute target from the root, `..` never above it. What is
/// missing is kept as named, to be created. The components returned hold
/// no symlink (at the time of the lookups; create them with no-follow
/// calls, which refuse one planted since).
pub fn resolve(
    path: &Path,
    mut lookup: impl FnMut(&[OsString]) -> std::io::Result<Entry>,
) -> Result<Components, ResolveError> {
    let shown = || path.display().to_string();
    let mut resolved: Components = Vec::new();
    // Components still to walk, the next one last.
    let mut pending: Vec<OsString> = Vec::new();
    let push_pending = |pending: &mut Vec<OsString>, path: &Path| {
        for component in path.components().rev() {
            match component {
                Component::ParentDir => pending.push(OsString::from("..")),
                Component::Normal(part) => pending.push(part.to_os_string()),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
    };
    push_pending(&mut pending, path);
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part.as_bytes() == b".." {
            resolved.pop();
            continue;
        }
        resolved.push(part);
        let entry = lookup(&resolved).map_err(|source| ResolveError::Io {
            path: shown(),
            source,
        })?;
        match entry {
            Entry::Symlink(target) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(ResolveError::Loop { path: shown() });
                }
                resolved.pop();
                if target.is_absolute() {
                    resolved.clear();
                }
                push_pending(&mut pending, &target);
            }
            // A missing name is kept: what follows is missing too, or `..`.
            Entry::Missing | Entry::Directory | Entry::Other => {}
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            sanitize(Path::new("./etc/passwd")).unwrap(),
            vec!["etc", "passwd"]
        );
        assert_eq!(
            sanitize(Path::new("/abs/file")).unwrap(),
            vec!["abs", "file"]
        );
        assert_eq!(sanitize(Path::new("a/./b/")).unwrap(), vec!["a", "b"]);
        assert!(sanitize(Path::new("./")).unwrap().is_empty());
        assert!(sanitize(Path::new("../x")).is_err());
        assert!(sanitize(Path::new("a/../../x")).is_err());
    }

    #[test]
    fn clamping_stops_at_the_root() {
        assert_eq!(clamp(Path::new("/../../../tmp/x")), vec!["tmp", "x"]);
        assert_eq!(clamp(Path::new("a/../../b/./c")), vec!["b", "c"]);
        assert_eq!(absolute(&clamp(Path::new("/.."))), "/");
    }

    /// A fake root: `data -> /`, `up -> ../../..`, `etc/` a directory,
    /// `loop -> loop`.
    fn fake(components: &[OsString]) -> std::io::Result<Entry> {
        let path: Vec<&str> = components.iter().map(|c| c.to_str().unwrap()).collect();
        Ok(match path.as_slice() {
            ["data"] => Entry::Symlink("/".into()),
            ["up"] => Entry::Symlink("../../..".into()),
            ["rel"] => Entry::Symlink("etc/x/../y".into()),
            ["loop"] => Entry::Symlink("loop".into()),
            ["etc"] => Entry::Directory,
            ["etc", "passwd"] => Entry::Other,
            _ => Entry::Missing,
        })
    }

    #[test]
    fn symlinks_are_followed_inside_the_root() {
        let r = |p: &str| absolute(&resolve(Path::new(p), fake).unwrap());
        assert_eq!(r("/data/x"), "/x");
        assert_eq!(r("/data/../../tmp/escape"), "/tmp/escape");
        assert_eq!(r("up/up/tmp"), "/tmp");
        assert_eq!(r("/../../../tmp/escape-wd"), "/tmp/escape-wd");
        assert_eq!(r("rel/z"), "/etc/y/z");
        assert_eq!(r("/missing/../data/v"), "/v");
        assert_eq!(r("/"), "/");
        assert!(matches!(
            resolve(Path::new("/loop/x"), fake),
            Err(ResolveError::Loop { .. })
        ));
    }
}
