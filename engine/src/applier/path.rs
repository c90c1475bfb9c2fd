//! Entry paths of a layer, made safe before anything is written: a leading
//! `/` is dropped (paths are relative to the layer root, as docker reads
//! them), `.` components vanish, and `..` is refused outright.

use std::ffi::OsString;
use std::path::{Component, Path};

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
}
