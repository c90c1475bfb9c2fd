//! The local image engine. It has no network code: blobs come in and go out
//! through the content store's writers and readers, which the client feeds.
//!
//! - [`applier`]: layer tar streams unpacked into a layer directory, overlay-style.
//! - [`archive`]: docker-archive and OCI archive save and load.
//! - [`differ`]: a container's upper directory turned back into a layer, and docker's `diff`.
//! - [`snapshot`]: unpacked layers laid out as docker's overlay2, keyed by ChainID.
//! - [`unpack`]: a stored image unpacked into the snapshotter, layers in parallel.
//! - [`store`]: the content store, an OCI image layout on disk (`oci-layout`,
//!   `index.json`, `blobs/<alg>/<hex>`) that skopeo and umoci can read.

pub mod applier;
pub mod archive;
pub mod build;
pub mod differ;
pub mod new_image;
pub mod runtime;
pub mod snapshot;
pub mod store;
pub mod unpack;
