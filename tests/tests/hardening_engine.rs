//! The engine against hostile images and imported ones (issue 13, 16 and
//! 18): paths an image config, a Dockerfile or `-v` names (`VOLUME`,
//! `WORKDIR`, a COPY destination, a mount point) stay inside the
//! container's root however many `..` or symlinks they hold, as docker
//! keeps them (dockerd 20.10 runs such an image with the volumes and the
//! working directory at `/x` for `/../x`, symlinks followed within the
//! root, and nothing made on the host); and an image whose config has `"Env": null` (every `docker
//! import`) keeps the ENV a build or a commit adds, with docker's PATH.

use e2e::images::{busybox_layer, BusyboxRegistry};
use e2e::rctl::Rctl;
use e2e::{require_root, require_tool};
use serde_json::json;
use std::path::{Path, PathBuf};

/// A name no other run of this test uses, for the host paths it checks.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("escape-{what}-{}-{nanos:x}", std::process::id())
}

/// `/..` enough times to climb out of any engine root, then `rest`.
fn climbing(rest: &str) -> String {
    format!("{}{rest}", "/..".repeat(24))
}

/// busybox's layer plus `data -> /` and `up -> ../../..`, symlinks that
/// point out of a layer directory if followed on the host.
fn busybox_with_links() -> Vec<u8> {
    let base = busybox_layer();
    let mut archive = tar::Archive::new(base.as_slice());
    let mut builder = tar::Builder::new(Vec::new());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        builder.append(&header, &mut entry).unwrap();
    }
    for (name, target) in [("data", "/"), ("up", "../../..")] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        builder.append_link(&mut header, name, target).unwrap();
    }
    builder.into_inner().unwrap()
}

/// Host paths a test must never create, checked absent first.
struct Forbidden(Vec<PathBuf>);

impl Forbidden {
    fn new(paths: &[&Path]) -> Forbidden {
        for path in paths {
            assert!(!path.exists(), "{} exists before the test", path.display());
        }
        Forbidden(paths.iter().map(|p| p.to_path_buf()).collect())
    }

    fn check(&self, after: &str) {
        for path in &self.0 {
            assert!(
                !path.exists(),
                "{after} created {} on the host",
                path.display()
            );
        }
    }
}

impl Drop for Forbidden {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_dir_all(path);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Imports `layer` as image `name` with the config changes `changes`.
fn import(rctl: &Rctl, dir: &Path, layer: &[u8], name: &str, changes: &[String]) {
    let file = dir.join(format!("{}.tar", name.replace([':', '/'], "-")));
    std::fs::write(&file, layer).unwrap();
    let mut args: Vec<&str> = vec!["import"];
    for change in changes {
        args.extend(["-c", change]);
    }
    args.extend([file.to_str().unwrap(), name]);
    rctl.ok(&args);
}

#[test]
fn image_volumes_and_workdir_stay_inside_the_container() {
    let test = "image_volumes_and_workdir_stay_inside_the_container";
    if !(require_root(test) && require_tool("busybox", test)) {
        return;
    }
    let rctl = Rctl::new();
    let dir = tempfile::tempdir().unwrap();
    let (volume, workdir, linked, upward, bind) = (
        unique("vol"),
        unique("wd"),
        unique("link"),
        unique("up"),
        unique("bind"),
    );
    let host = |name: &str| PathBuf::from("/tmp").join(name);
    let forbidden = Forbidden::new(&[
        &host(&volume),
        &host(&workdir),
        &host(&linked),
        &host(&upward),
        &host(&bind),
    ]);
    // The engine's own directories are outside the root too.
    let engine_dir = rctl.root().parent().unwrap().to_path_buf();

    let volumes = serde_json::to_string(&[
        climbing(&format!("/tmp/{volume}")),
        format!("/data/tmp/{linked}"),
        format!("/up/up/tmp/{upward}"),
    ])
    .unwrap();
    import(
        &rctl,
        dir.path(),
        &busybox_with_links(),
        "hostile:1",
        &[
            format!("VOLUME {volumes}"),
            format!("WORKDIR {}", climbing(&format!("/tmp/{workdir}"))),
            r#"CMD ["sh", "-c", "pwd; ls -d /tmp/escape-* | sort; [ -L /data ] && echo data is a symlink"]"#.to_string(),
        ],
    );
    let run = rctl.run(&[
        "run",
        "--rm",
        "-v",
        &format!(
            "{}:{}",
            dir.path().display(),
            climbing(&format!("/tmp/{bind}"))
        ),
        "hostile:1",
    ]);
    // First: nothing on the host, whatever the run made of the paths.
    forbidden.check("rctl run");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "rctl run failed:\n{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // As docker: the paths are the container's own, cleaned and resolved in it.
    let mut inside = [
        format!("/tmp/{volume}"),
        format!("/tmp/{linked}"),
        format!("/tmp/{upward}"),
        format!("/tmp/{bind}"),
        format!("/tmp/{workdir}"),
    ];
    inside.sort();
    let expected = format!("/tmp/{workdir}\n{}\ndata is a symlink\n", inside.join("\n"));
    assert_eq!(out, expected, "inside the container");
    for name in [&volume, &linked, &upward, &workdir, &bind] {
        let stray = walkdir_find(&engine_dir, name);
        assert!(
            stray.iter().all(|p| p.contains("/containers/")
                || p.contains("/volumes/")
                || p.contains("/overlay2/")),
            "{name} made outside a container's directories: {stray:?}"
        );
    }
}

/// Paths under `dir` whose file name is `name`.
fn walkdir_find(dir: &Path, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy() == name {
                found.push(path.display().to_string());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    found
}

#[test]
fn build_paths_stay_inside_the_image() {
    let test = "build_paths_stay_inside_the_image";
    if !(require_root(test) && require_tool("busybox", test)) {
        return;
    }
    let rctl = Rctl::new();
    let dir = tempfile::tempdir().unwrap();
    let (workdir, copied, linked) = (unique("bwd"), unique("bcopy"), unique("blink"));
    let host = |name: &str| PathBuf::from("/tmp").join(name);
    let forbidden = Forbidden::new(&[&host(&workdir), &host(&copied), &host(&linked)]);
    import(&rctl, dir.path(), &busybox_with_links(), "links:1", &[]);
    let context = dir.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(context.join("f"), "payload\n").unwrap();
    let dockerfile = format!(
        "FROM links:1\n\
         WORKDIR {}\n\
         COPY f {}/\n\
         COPY f /data/tmp/{linked}/\n\
         CMD [\"sh\", \"-c\", \"pwd; cat /tmp/{copied}/f /tmp/{linked}/f; [ -L /data ] && echo data is a symlink\"]\n",
        climbing(&format!("/tmp/{workdir}")),
        climbing(&format!("/tmp/{copied}")),
    );
    std::fs::write(context.join("Dockerfile"), dockerfile).unwrap();
    rctl.ok(&["build", "-q", "-t", "built:1", context.to_str().unwrap()]);
    forbidden.check("rctl build");
    let config: serde_json::Value =
        serde_json::from_str(&rctl.ok(&["inspect", "built:1"])).unwrap();
    assert_eq!(
        config["Config"]["config"]["WorkingDir"],
        format!("/tmp/{workdir}"),
        "WORKDIR is stored cleaned (docker's classic builder keeps the string as \
         written, which names the same directory)"
    );
    let out = rctl.ok(&["run", "--rm", "built:1"]);
    forbidden.check("rctl run");
    assert_eq!(
        out,
        format!("/tmp/{workdir}\npayload\npayload\ndata is a symlink\n")
    );
}

/// busybox in a registry with the config `docker import` writes: `"Env": null`.
async fn null_env_busybox() -> BusyboxRegistry {
    let registry = BusyboxRegistry::start(json!({"Env": null, "Cmd": null})).await;
    let image = registry.image();
    registry.rctl.ok(&["pull", "-q", &image]);
    let config: serde_json::Value =
        serde_json::from_str(&registry.rctl.ok(&["inspect", &image])).unwrap();
    assert!(
        config["Config"]["config"]["Env"].is_null(),
        "the base sets Env null: {config}"
    );
    registry
}

#[tokio::test(flavor = "multi_thread")]
async fn env_on_an_imported_image_is_kept_by_build() {
    let test = "env_on_an_imported_image_is_kept_by_build";
    if !(require_root(test) && require_tool("busybox", test)) {
        return;
    }
    let registry = null_env_busybox().await;
    let (rctl, base) = (&registry.rctl, registry.image());
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {base}\n\
             ENV A=1\n\
             ENV PATH=$PATH:/opt/bin\n\
             RUN echo \"during the build A=$A\"\n\
             CMD [\"sh\", \"-c\", \"echo A=$A PATH=$PATH\"]\n"
        ),
    )
    .unwrap();
    let built = rctl.ok(&["build", "-t", "with-env:1", context.to_str().unwrap()]);
    assert!(
        built.contains("during the build A=1"),
        "RUN sees the ENV:\n{built}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&rctl.ok(&["inspect", "with-env:1"])).unwrap();
    let default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    assert_eq!(
        config["Config"]["config"]["Env"],
        serde_json::json!([format!("PATH={default_path}:/opt/bin"), "A=1"]),
        "docker's default PATH, then the ENV, as docker's builder makes them"
    );
    let out = rctl.run(&["run", "--rm", "with-env:1"]);
    assert!(
        out.status.success(),
        "the CMD runs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("A=1 PATH={default_path}:/opt/bin\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn env_on_an_imported_image_is_kept_by_commit() {
    let test = "env_on_an_imported_image_is_kept_by_commit";
    if !(require_root(test) && require_tool("busybox", test)) {
        return;
    }
    let registry = null_env_busybox().await;
    let (rctl, base) = (&registry.rctl, registry.image());
    rctl.ok(&["run", "--name", "source", &base, "true"]);
    rctl.ok(&[
        "commit",
        "-c",
        "ENV X=1",
        "-c",
        r#"CMD ["sh", "-c", "echo X=$X"]"#,
        "source",
        "committed:1",
    ]);
    let config: serde_json::Value =
        serde_json::from_str(&rctl.ok(&["inspect", "committed:1"])).unwrap();
    assert_eq!(
        config["Config"]["config"]["Env"],
        serde_json::json!(["X=1"]),
        "commit -c ENV on a null Env"
    );
    assert_eq!(rctl.ok(&["run", "--rm", "committed:1"]), "X=1\n");
    rctl.ok(&["rm", "source"]);
}
