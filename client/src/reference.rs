//! Image references by the docker grammar: `[host[:port]/]path[:tag][@digest]`.
//! A reference without a host uses the configured default registry (there
//! is no default public registry).

use roci::{valid_tag, Digest, RepoName};
use std::fmt;

/// Where a host-less reference points unless `RCTL_DEFAULT_REGISTRY` says otherwise.
pub const DEFAULT_REGISTRY: &str = "localhost:5000";

/// The default registry host from the environment, or [`DEFAULT_REGISTRY`].
pub fn default_registry() -> String {
    std::env::var("RCTL_DEFAULT_REGISTRY")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_REGISTRY.to_string())
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    pub registry: String,
    pub repository: RepoName,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

impl ImageReference {
    /// Parses `text`, filling in `default_registry` when it names no host.
    pub fn parse(text: &str, default_registry: &str) -> Result<ImageReference, ReferenceError> {
        let fail = |reason: &str| ReferenceError {
            input: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(fail("empty reference"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(digest.parse::<Digest>().map_err(|e| fail(&e.to_string()))?),
            ),
            None => (text, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path)
            }
            _ => (default_registry.to_string(), rest),
        };
        if registry.is_empty() || registry.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(fail("invalid registry host"));
        }
        let (path, tag) = match path.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') => {
                if !valid_tag(tag) {
                    return Err(fail("invalid tag"));
                }
                (path, Some(tag.to_string()))
            }
            _ => (path, None),
        };
        let repository = RepoName::parse(path).ok_or_else(|| {
            fail("repository must be lowercase path components of [a-z0-9] joined by ., _, __ or -")
        })?;
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry for: the digest if given, else the tag, else `latest`.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// `host/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same image with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> ImageReference {
        ImageReference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for ImageReference {
    /// `host/repository:tag` (with `latest` when neither tag nor digest is given), `@digest` when present.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        match (&self.tag, &self.digest) {
            (Some(tag), _) => write!(f, ":{tag}")?,
            (None, None) => write!(f, ":latest")?,
            (None, Some(_)) => {}
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn parse(s: &str) -> ImageReference {
        ImageReference::parse(s, "localhost:5000").unwrap()
    }

    #[test]
    fn docker_grammar() {
        let r = parse("busybox");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.reference()),
            ("localhost:5000", "busybox", "latest".into())
        );
        assert_eq!(r.to_string(), "localhost:5000/busybox:latest");
        let r = parse("library/busybox:1.36");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("localhost:5000", "library/busybox", Some("1.36"))
        );
        let r = parse("registry.example.com:5443/team/app:v2");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("registry.example.com:5443", "team/app")
        );
        let r = parse("localhost/app");
        assert_eq!(r.registry, "localhost");
        let r = parse("127.0.0.1:5000/a/b/c");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag),
            ("127.0.0.1:5000", "a/b/c", None)
        );
        let r = parse(&format!("localhost:5000/app:1@{D}"));
        assert_eq!(
            (r.tag.as_deref(), r.reference()),
            (Some("1"), D.to_string())
        );
        assert_eq!(r.to_string(), format!("localhost:5000/app:1@{D}"));
        let r = parse(&format!("app@{D}"));
        assert_eq!(r.to_string(), format!("localhost:5000/app@{D}"));
    }

    #[test]
    fn malformed_references() {
        for bad in [
            "",
            "UPPER/app",
            "app:",
            "app:bad:tag",
            "app@sha256:123",
            "host:5000/",
            "a//b",
            "app:-x",
            " app",
        ] {
            assert!(
                ImageReference::parse(bad, "localhost:5000").is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
