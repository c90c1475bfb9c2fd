//! A three-layer image built by docker (classic builder) that deletes a
//! file and replaces a directory: its whiteouts and opaque directory,
//! pushed to rregistry and pulled by rctl, show through the overlay root
//! exactly as `docker run` shows them.

use e2e::docker::Dockerd;
use e2e::rctl::Rctl;
use e2e::{require_root, require_tool, RegistryOptions, RegistryProcess};

#[test]
fn docker_built_whiteouts_and_opaque_dirs_show_through() {
    let test = "docker_built_whiteouts_and_opaque_dirs_show_through";
    if !(require_root(test) && require_tool("dockerd", test) && require_tool("busybox", test)) {
        return;
    }
    let registry = RegistryProcess::start(RegistryOptions::default());
    let dockerd = Dockerd::start();
    let context = tempfile::tempdir().unwrap();
    let busybox = std::process::Command::new("sh")
        .args(["-c", "command -v busybox"])
        .output()
        .unwrap();
    let busybox = String::from_utf8_lossy(&busybox.stdout).trim().to_string();
    std::fs::copy(&busybox, context.path().join("busybox")).unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /dir/sub && echo a > /dir/a && echo b > /dir/sub/b && echo keep > /keep && echo gone > /gone"]
RUN rm /gone && rm -rf /dir && mkdir /dir && echo new > /dir/new
CMD ["sh"]
"#,
    )
    .unwrap();
    let image = format!("{}/layers/whiteouts:1", registry.host());
    dockerd.docker_ok(&[
        "build",
        "--network",
        "none",
        "-t",
        &image,
        &context.path().display().to_string(),
    ]);
    dockerd.docker_ok(&["push", &image]);

    let probe = "ls -A /dir; test -e /gone || echo gone-is-gone; cat /keep; ls /dir/sub 2>&1 | head -c 0; test -d /dir/sub || echo no-sub";
    let expected = "new\ngone-is-gone\nkeep\nno-sub\n";
    let rctl = Rctl::new();
    let out = rctl.ok(&["run", "--rm", &image, "sh", "-c", probe]);
    assert_eq!(out, expected);
    let out = dockerd.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        probe,
    ]);
    assert_eq!(out, expected, "docker disagrees");
    // The layers as unpacked: a 0/0 character device for the file, the
    // opaque xattr on the replaced directory.
    let layers = rctl.root.join("overlay2");
    let mut whiteout = false;
    let mut opaque = false;
    for entry in std::fs::read_dir(&layers).unwrap().flatten() {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let diff = entry.path().join("diff");
        if let Ok(meta) = std::fs::symlink_metadata(diff.join("gone")) {
            whiteout |= meta.file_type().is_char_device() && meta.rdev() == 0;
        }
        let xattr = std::process::Command::new("getfattr")
            .args([
                "--absolute-names",
                "-n",
                "trusted.overlay.opaque",
                "--only-values",
            ])
            .arg(diff.join("dir"))
            .output();
        if let Ok(out) = xattr {
            opaque |= out.stdout == b"y";
        }
    }
    assert!(
        whiteout,
        "no overlay whiteout for /gone under {}",
        layers.display()
    );
    if require_tool("getfattr", test) {
        assert!(
            opaque,
            "no opaque directory for /dir under {}",
            layers.display()
        );
    }
}
