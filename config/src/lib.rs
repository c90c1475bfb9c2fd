//! Typed configuration for `rregistry`.
//!
//! The file shape is Distribution's `config.yml` (`version`, `log`, `storage`,
//! `http`, ...), so an existing deployment moves over by changing the binary.
//! Every value can be overridden from the environment with
//! `REGISTRY_<SECTION>_<KEY>=value`, as Distribution does.
//!
//! - [`model`]: the configuration types and their defaults.
//! - [`load`]: reading a file, applying environment overrides, validating.
//! - [`auth`]: the `auth` section (htpasswd, token, the built-in token server, access rules).
//! - [`duration`]: Go-style durations (`168h`, `10s`, `1h30m`) used by the file.

pub mod auth;
pub mod duration;
pub mod load;
pub mod model;

pub use duration::GoDuration;
pub use load::{load, load_from_str, ConfigError};
pub use model::*;
