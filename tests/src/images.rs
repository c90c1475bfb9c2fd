//! Images for container tests: busybox built `FROM scratch` out of
//! Debian's busybox-static (one layer: the binary, a link per applet, and
//! an `/etc/passwd` and `/etc/group` with a non-root user), pushed to a
//! registry through the distribution API.

use crate::api::{push_oci_image, Layer};
use std::process::Command;

fn dir(builder: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(mode);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    builder
        .append_data(&mut header, path, std::io::empty())
        .expect("tar dir");
}

fn file(builder: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, contents: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(mode);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    builder
        .append_data(&mut header, path, contents)
        .expect("tar file");
}

/// The busybox layer (an uncompressed tar).
pub fn busybox_layer() -> Vec<u8> {
    let which = Command::new("sh")
        .args(["-c", "command -v busybox"])
        .output()
        .expect("find busybox");
    let path = String::from_utf8_lossy(&which.stdout).trim().to_string();
    let binary = std::fs::read(&path).expect("read busybox (apt-get install busybox-static)");
    let list = Command::new(&path)
        .arg("--list")
        .output()
        .expect("busybox --list");
    let mut builder = tar::Builder::new(Vec::new());
    for (name, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("home", 0o755),
        ("home/alice", 0o755),
    ] {
        dir(&mut builder, name, mode);
    }
    file(&mut builder, "bin/busybox", 0o755, &binary);
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet == "busybox" {
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        header.set_mtime(1_700_000_000);
        builder
            .append_link(&mut header, format!("bin/{applet}"), "busybox")
            .expect("tar link");
    }
    file(
        &mut builder,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:100:Alice:/home/alice:/bin/sh\n",
    );
    file(
        &mut builder,
        "etc/group",
        0o644,
        b"root:x:0:\nusers:x:100:\nwheel:x:10:alice\n",
    );
    builder.into_inner().expect("tar")
}

/// Pushes busybox as `repo:tag` with `config` as the image's `config`
/// section (Cmd, Env, ...); returns the manifest digest.
pub async fn push_busybox(
    client: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    config: serde_json::Value,
) -> String {
    push_busybox_with(client, base, repo, tag, config, Vec::new()).await
}

/// [`push_busybox`] with more layers on top.
pub async fn push_busybox_with(
    client: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    config: serde_json::Value,
    extra: Vec<Layer>,
) -> String {
    let mut layers = vec![Layer::tar(busybox_layer())];
    layers.extend(extra);
    let image_config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-11-23T10:00:00Z",
        "config": config,
        "history": [{"created_by": "busybox-static"}],
    });
    push_oci_image(client, base, repo, tag, image_config, &layers)
        .await
        .0
}

/// A layer tar holding the files `files` (path, contents) in `dir/`.
pub fn files_layer(dir: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    self::dir(&mut builder, dir, 0o755);
    for (name, contents) in files {
        file(&mut builder, &format!("{dir}/{name}"), 0o644, contents);
    }
    builder.into_inner().expect("tar")
}

/// `bytes` gzip-compressed (a layer blob, an archive for ADD).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A real rregistry holding busybox as `busybox:latest` (with `config` as
/// its config section), and an rctl with an empty store: where the
/// container and build tests start.
pub struct BusyboxRegistry {
    pub registry: crate::RegistryProcess,
    pub rctl: crate::rctl::Rctl,
}

impl BusyboxRegistry {
    pub async fn start(config: serde_json::Value) -> BusyboxRegistry {
        let registry = crate::RegistryProcess::start(crate::RegistryOptions::default());
        push_busybox(
            &crate::http_client(),
            &registry.url(),
            "busybox",
            "latest",
            config,
        )
        .await;
        BusyboxRegistry {
            registry,
            rctl: crate::rctl::Rctl::new(),
        }
    }

    /// `HOST/busybox`.
    pub fn image(&self) -> String {
        self.name("busybox")
    }

    /// `HOST/NAME` in this registry.
    pub fn name(&self, name: &str) -> String {
        format!("{}/{name}", self.registry.host())
    }

    /// Pushes busybox again as `repo:1` with another config; returns its name.
    pub async fn push(&self, repo: &str, config: serde_json::Value) -> String {
        push_busybox(
            &crate::http_client(),
            &self.registry.url(),
            repo,
            "1",
            config,
        )
        .await;
        self.name(&format!("{repo}:1"))
    }
}
