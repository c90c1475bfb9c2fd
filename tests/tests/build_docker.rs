//! One Dockerfile exercising every instruction the classic builder knows,
//! built by `rctl build` and by dockerd's classic builder
//! (`DOCKER_BUILDKIT=0`) from the same context and base image: the image
//! configs agree field by field, and so do the files (path, type, mode,
//! owner; not mtimes) of the resulting filesystems. A `COPY . /ctx/` of a
//! context whose `.dockerignore` leaves out files, whole directories and
//! keys at any depth, with `!` exceptions, copies what docker copies.

use e2e::docker::Dockerd;
use e2e::images::{files_layer, gzip, BusyboxRegistry};
use e2e::{require_root, require_tool};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

const DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
ARG BASE_IMAGE
FROM ${BASE_IMAGE} AS base
MAINTAINER someone@example.com
ARG VERSION=1.0
ENV APP_HOME=/srv/app \
    MODE="two words"
LABEL org.example.version=$VERSION org.example.mode="${MODE}"
WORKDIR ${APP_HOME}
COPY --chown=1000:100 files/*.conf conf/
COPY [ "files/data.txt", "data/" ]
ADD files/bundle.tar.gz /opt/
COPY . /ctx/
RUN mkdir -p /var/lib/app && echo "v=$VERSION" > /var/lib/app/version && rm -rf /home/alice
USER 1000:100
RUN id -u > /tmp/uid
EXPOSE 8080 53/udp
VOLUME ["/srv/app/state"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD cat /srv/app/data/data.txt
SHELL ["/bin/sh", "-c"]
ONBUILD RUN echo triggered
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /var/lib/app/version"]
"#;

/// `path type mode uid/gid` for every entry of a tar listing, minus what
/// each runtime adds at create (the /etc files, .dockerenv, mount points).
fn files(tar: &Path) -> BTreeSet<String> {
    let out = std::process::Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(tar)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (mode, owner) = (fields.first()?, fields.get(1)?);
            let path = fields.get(5)?.trim_end_matches('/');
            let skip = [
                "etc/hosts",
                "etc/hostname",
                "etc/resolv.conf",
                ".dockerenv",
                "dev",
                "proc",
                "sys",
                "etc/mtab",
            ];
            if skip.contains(&path)
                || path.starts_with("dev/")
                || path.starts_with("proc/")
                || path.starts_with("sys/")
            {
                return None;
            }
            let link = if mode.starts_with('l') {
                fields.get(7).copied().unwrap_or("")
            } else {
                ""
            };
            Some(format!("{path} {mode} {owner} {link}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn rctl_and_docker_build_the_same_image() {
    let test = "rctl_and_docker_build_the_same_image";
    if !(require_root(test) && require_tool("dockerd", test)) {
        return;
    }
    let busybox = BusyboxRegistry::start(json!({"Env": ["PATH=/bin"], "Cmd": ["sh"]})).await;
    let base = busybox.name("busybox:latest");
    let context = tempfile::tempdir().unwrap();
    let c = context.path();
    std::fs::create_dir_all(c.join("files")).unwrap();
    std::fs::write(c.join("Dockerfile"), DOCKERFILE).unwrap();
    for (name, text) in [
        ("files/a.conf", "a\n"),
        ("files/b.conf", "b\n"),
        ("files/data.txt", "data\n"),
    ] {
        std::fs::write(c.join(name), text).unwrap();
    }
    // What .dockerignore keeps out of a directory COPY (secrets among it).
    for dir in ["secrets", "logs/keep", "sub/deep", "cache/x", "docs"] {
        std::fs::create_dir_all(c.join(dir)).unwrap();
    }
    for (name, text) in [
        (".env", "TOKEN=secret\n"),
        ("server.key", "top-level key\n"),
        ("sub/deep/id.key", "deep key\n"),
        ("sub/deep/ok.txt", "ok\n"),
        ("secrets/db.txt", "password\n"),
        ("secrets/public.txt", "brought back\n"),
        ("logs/a.log", "dropped\n"),
        ("logs/keep/x.log", "kept\n"),
        ("cache/x/blob", "cached\n"),
        ("docs/a.md", "dropped\n"),
        ("docs/README.md", "kept\n"),
    ] {
        std::fs::write(c.join(name), text).unwrap();
    }
    std::fs::write(
        c.join(".dockerignore"),
        "# secrets and noise\n.env\n**/*.key\nsecrets/\n!secrets/public.txt\n\
         logs\n!logs/keep\ncache/\ndocs/*.md\n!docs/README.md\n",
    )
    .unwrap();
    let bundle = gzip(&files_layer("bundled", &[("file", b"inner\n")]));
    std::fs::write(c.join("files/bundle.tar.gz"), bundle).unwrap();

    let image = busybox.name("same:1");
    let build_arg = format!("BASE_IMAGE={base}");
    let rctl = &busybox.rctl;
    rctl.ok(&[
        "build",
        "-q",
        "--build-arg",
        &build_arg,
        "--build-arg",
        "VERSION=2.5",
        "-t",
        &image,
        c.to_str().unwrap(),
    ]);
    let dockerd = Dockerd::start();
    let docker_image = "docker-built:1";
    dockerd.docker_ok(&[
        "build",
        "-q",
        "--network",
        "none",
        "--build-arg",
        &build_arg,
        "--build-arg",
        "VERSION=2.5",
        "-t",
        docker_image,
        c.to_str().unwrap(),
    ]);

    // The configs, field by field.
    let ours: Value = serde_json::from_str(&rctl.ok(&["inspect", &image])).unwrap();
    let ours = &ours["Config"]["config"];
    let theirs: Value =
        serde_json::from_str(&dockerd.docker_ok(&["image", "inspect", docker_image])).unwrap();
    let theirs = &theirs[0]["Config"];
    for field in [
        "Env",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "User",
        "Labels",
        "ExposedPorts",
        "Volumes",
        "StopSignal",
        "Healthcheck",
        "OnBuild",
        "Shell",
    ] {
        assert_eq!(
            ours[field], theirs[field],
            "{field} differs: rctl {} vs docker {}",
            ours[field], theirs[field]
        );
    }

    // The files.
    let dir = tempfile::tempdir().unwrap();
    let ours_tar = dir.path().join("rctl.tar");
    let id = rctl.ok(&["create", &image]).trim().to_string();
    rctl.ok(&["export", "-o", ours_tar.to_str().unwrap(), &id]);
    let theirs_tar = dir.path().join("docker.tar");
    let cid = dockerd
        .docker_ok(&["create", docker_image])
        .trim()
        .to_string();
    dockerd.docker_ok(&["export", "-o", theirs_tar.to_str().unwrap(), &cid]);
    let (ours, theirs) = (files(&ours_tar), files(&theirs_tar));
    assert!(ours.len() > 250, "too few files exported: {}", ours.len());
    for expected in [
        "srv/app/conf drwxr-xr-x 1000/100 ",
        "srv/app/conf/a.conf -rw-r--r-- 1000/100 ",
        "srv/app/data/data.txt -rw-r--r-- 0/0 ",
        "opt/bundled/file -rw-r--r-- 0/0 ",
        "tmp/uid -rw-r--r-- 1000/100 ",
        "bin/sh lrwxrwxrwx 0/0 busybox",
    ] {
        assert!(ours.contains(expected), "rctl's image lacks {expected:?}");
    }
    assert!(
        !ours.iter().any(|f| f.starts_with("home/alice ")),
        "a deleted directory is still there"
    );
    for kept in [
        "ctx/Dockerfile ",
        "ctx/files/a.conf ",
        "ctx/sub/deep/ok.txt ",
        "ctx/secrets/public.txt ",
        "ctx/logs/keep/x.log ",
        "ctx/docs/README.md ",
    ] {
        assert!(
            ours.iter().any(|f| f.starts_with(kept)),
            "COPY . left out {kept:?}"
        );
    }
    for ignored in [
        "ctx/.env ",
        "ctx/server.key ",
        "ctx/sub/deep/id.key ",
        "ctx/secrets/db.txt ",
        "ctx/logs/a.log ",
        "ctx/cache ",
        "ctx/docs/a.md ",
    ] {
        assert!(
            !ours.iter().any(|f| f.starts_with(ignored)),
            "COPY . copied {ignored:?}, which .dockerignore excludes"
        );
    }
    let only_ours: Vec<&String> = ours.difference(&theirs).collect();
    let only_theirs: Vec<&String> = theirs.difference(&ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "filesystems differ:\nonly rctl: {only_ours:#?}\nonly docker: {only_theirs:#?}"
    );
    // And they run alike.
    let ours = rctl.ok(&["run", "--rm", &image]);
    let theirs = dockerd.docker_ok(&["run", "--rm", "--network", "none", docker_image]);
    assert_eq!(ours, theirs);
    // The copied context, file by file, contents included.
    let listing = "cd /ctx && find . -type f | sort | xargs md5sum";
    let ours = rctl.ok(&["run", "--rm", &image, listing]);
    let theirs = dockerd.docker_ok(&["run", "--rm", "--network", "none", docker_image, listing]);
    assert_eq!(ours, theirs, "the copied contexts differ");
    assert!(ours.contains("./logs/keep/x.log"), "{ours}");
}
