//! Helpers for the end-to-end tests: start the real `rregistry` binary (or
//! a peer) on a free loopback port and stop it by its pid, find tools, and
//! decide whether a missing tool is a skip (a developer's machine) or a
//! failure (CI, where `.ci/run` installs everything).

pub mod api;
pub mod auth;
pub mod docker;
pub mod front;
pub mod images;
pub mod process;
pub mod proxy;
pub mod rctl;
pub mod registry;
pub mod tls;

pub use process::{free_port, require_root, require_tool, Child};
pub use registry::{RegistryOptions, RegistryProcess};

use std::path::PathBuf;

/// The directory holding the workspace's built binaries (next to the test executable).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .to_path_buf()
}

/// The path of a workspace binary, which must have been built
/// (`cargo build --workspace --bins`, as the README's test command does).
pub fn workspace_bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` before the tests",
        path.display()
    );
    path
}

/// sha256 digest string of bytes.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// `len` pseudo-random bytes (xorshift) from `seed`: data that does not
/// compress and differs per seed, made the same way in every test.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Total size of the regular files under `dir` (0 when it is absent):
/// how a test sees that a server is writing, or left something behind.
pub fn bytes_under(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match entry.file_type() {
            Ok(t) if t.is_dir() => total += bytes_under(&entry.path()),
            Ok(t) if t.is_file() => total += entry.metadata().map(|m| m.len()).unwrap_or(0),
            _ => {}
        }
    }
    total
}

/// An HTTP client that ignores the machine's proxy and CA environment.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}
