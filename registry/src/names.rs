//! Repository names, tags and references, from the shared `roci` crate.

pub use roci::names::{valid_tag, Reference, RepoName, MAX_NAME_LEN};
