//! `rregistry`: an OCI Distribution v1.1 registry.
//!
//! A request travels: [`server`] (TCP/TLS, graceful shutdown, with each
//! connection held to the limits of [`connection`]) → [`http`]
//! (parse into an [`action::Action`], check it with [`auth`], call the
//! registry logic, shape the answer) → [`store`] (blobs, uploads, manifests, tags, referrers, catalog)
//! → [`storage`] (the backend trait and its filesystem implementation).

pub mod action;
pub mod auth;
pub mod connection;
pub mod digest;
pub mod error;
pub mod http;
pub mod names;
pub mod server;
pub mod storage;
pub mod store;
