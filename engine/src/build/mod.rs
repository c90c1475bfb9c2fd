//! Building images from Dockerfiles, as docker's classic builder does.
//!
//! - [`dockerfile`]: the parser (directives, continuations, instructions, flags, forms).
//! - [`words`]: docker's quoting and `$VAR` substitution.
//! - [`context`]: the build context, `.dockerignore` and COPY sources.
//! - [`executor`]: stages and steps: RUN in the runtime, COPY/ADD, config changes.
//! - [`copy`]: COPY/ADD into a staging root, and the digest the cache keys on.
//! - [`layers`]: an image's files read from its unpacked layers (COPY --from, --chown).
//! - [`cache`]: the build cache.

pub mod cache;
pub mod context;
pub mod copy;
pub mod dockerfile;
pub mod executor;
pub mod layers;
pub mod words;

pub use executor::{build, BuildError, BuildHost, BuildOptions, Built};
