//! Building images from Dockerfiles, as docker's classic builder does.
//!
//! - [`dockerfile`]: the parser (directives, continuations, instructions, flags, forms).
//! - [`words`]: docker's quoting and `$VAR` substitution.

pub mod dockerfile;
pub mod words;
