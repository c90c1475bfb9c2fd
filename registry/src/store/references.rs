//! What a pushed manifest must find in its repository before it is stored.
//!
//! - An image's config and layers must be blobs of the repository (except
//!   non-distributable layers that name `urls`, which live elsewhere).
//! - An index's children must be manifests of the repository as far as
//!   `validation.manifests.indexes` asks ([`IndexChildren`]): all of them
//!   by default, as Distribution 3 does (and Distribution 2 always did),
//!   none, or those of listed platforms. A sparse index (some children
//!   absent) is what mirrors and single-platform copies make.
//! - Every referenced object that is present must have the size its
//!   descriptor declares. A client trusts the descriptor: a wrong size makes
//!   a pull fail later (or read short), so the push is refused now with
//!   `MANIFEST_INVALID`, the code Distribution gives a manifest that fails
//!   verification (`SIZE_INVALID` is the spec's code for blob uploads).
//!   An absent child that need not exist cannot be checked, and is not.

// Parses what clients send: every sum on a number from outside is checked.
#![deny(clippy::arithmetic_side_effects)]

use super::manifests::{descriptor_digest, Parsed, NON_DISTRIBUTABLE};
use super::{layout, Registry};
use crate::digest::Digest;
use crate::error::{Code, RegistryError, Result};
use crate::names::RepoName;
use oci_spec::image::Descriptor;
use rconfig::IndexChildren;
use serde_json::json;

/// What is wrong with a manifest's references.
#[derive(Default)]
struct Findings {
    missing: Vec<String>,
    /// (digest, declared size, stored size)
    wrong_size: Vec<(String, u64, u64)>,
}

impl Registry {
    /// Checks every reference of a parsed manifest against the repository.
    pub(super) async fn check_references(&self, name: &RepoName, parsed: &Parsed) -> Result<()> {
        let mut findings = Findings::default();
        match parsed {
            Parsed::Image(manifest) => {
                let blobs = std::iter::once(manifest.config()).chain(manifest.layers().iter());
                for descriptor in blobs {
                    if is_foreign(descriptor) {
                        continue;
                    }
                    let digest = descriptor_digest(descriptor)?;
                    let link = layout::layer_link(name, &digest);
                    self.check_one(&link, &digest, descriptor, true, &mut findings)
                        .await?;
                }
            }
            Parsed::Index(index) => {
                for descriptor in index.manifests() {
                    let digest = descriptor_digest(descriptor)?;
                    let required = must_exist(&self.options.index_children, descriptor);
                    let link = layout::manifest_link(name, &digest);
                    self.check_one(&link, &digest, descriptor, required, &mut findings)
                        .await?;
                }
            }
        }
        if !findings.missing.is_empty() {
            return Err(RegistryError::new(
                Code::ManifestBlobUnknown,
                format!(
                    "manifest references content unknown to {name}: {}",
                    findings.missing.join(", ")
                ),
            )
            .with_detail(json!({ "missing": findings.missing })));
        }
        if !findings.wrong_size.is_empty() {
            let text: Vec<String> = findings
                .wrong_size
                .iter()
                .map(|(digest, declared, stored)| {
                    format!("{digest} is declared {declared} bytes but holds {stored}")
                })
                .collect();
            let detail: Vec<_> = findings
                .wrong_size
                .iter()
                .map(|(digest, declared, stored)| {
                    json!({ "digest": digest, "size": declared, "stored": stored })
                })
                .collect();
            return Err(RegistryError::new(
                Code::ManifestInvalid,
                format!(
                    "descriptor sizes do not match the content: {}",
                    text.join("; ")
                ),
            )
            .with_detail(json!({ "sizes": detail })));
        }
        Ok(())
    }

    /// Records whether the object behind `link` is missing (when it must
    /// exist) or of another size than `descriptor` says.
    async fn check_one(
        &self,
        link: &str,
        digest: &Digest,
        descriptor: &Descriptor,
        required: bool,
        findings: &mut Findings,
    ) -> Result<()> {
        let stored = match self.backend.stat(link).await? {
            Some(_) => self
                .backend
                .stat(&layout::blob(digest))
                .await?
                .map(|meta| meta.size),
            None => None,
        };
        match stored {
            None if required => findings.missing.push(digest.to_string()),
            None => {}
            Some(size) if size != descriptor.size() => {
                findings
                    .wrong_size
                    .push((digest.to_string(), descriptor.size(), size))
            }
            Some(_) => {}
        }
        Ok(())
    }
}

/// A non-distributable layer that names where it lives.
fn is_foreign(descriptor: &Descriptor) -> bool {
    NON_DISTRIBUTABLE.contains(&descriptor.media_type().to_string().as_str())
        && descriptor
            .urls()
            .as_ref()
            .is_some_and(|urls| !urls.is_empty())
}

/// Whether an index child must be in the repository under `rule`. With a
/// platform list, a child without a platform need not (as in Distribution).
fn must_exist(rule: &IndexChildren, descriptor: &Descriptor) -> bool {
    match rule {
        IndexChildren::All => true,
        IndexChildren::None => false,
        IndexChildren::Platforms(platforms) => descriptor.platform().as_ref().is_some_and(|p| {
            let (os, arch) = (p.os().to_string(), p.architecture().to_string());
            platforms
                .iter()
                .any(|wanted| wanted.os == os && wanted.architecture == arch)
        }),
    }
}
