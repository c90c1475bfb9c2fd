//! The registry client behind `rctl`.
//!
//! - [`reference`]: image references by the docker grammar.
//! - [`credentials`]: logins in docker's `config.json` and credential helpers.
//! - [`transport`]: HTTP in layers (retry, auth, request).
//! - [`distribution`]: the distribution API calls on one registry.
//! - [`platform`]: platforms and their choice in an index.
//! - [`pull`], [`push`]: moving images between a registry and the local store.
//! - [`copy`]: images between registries and OCI layouts, with no local copy.

pub mod copy;
pub mod credentials;
pub mod distribution;
pub mod platform;
pub mod pull;
pub mod push;
pub mod reference;
pub mod transport;
