//! `rctl build` end to end, as root: Dockerfiles built on busybox (pushed
//! to a real rregistry), the cache, multi-stage builds, the loop through
//! the registry into a fresh store, and bad Dockerfiles.

use e2e::images::{files_layer, gzip, BusyboxRegistry};
use e2e::rctl::Rctl;
use e2e::{http_client, require_root};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;

/// The busybox registry, and what these tests ask of builds.
struct Fixture(BusyboxRegistry);

impl std::ops::Deref for Fixture {
    type Target = BusyboxRegistry;
    fn deref(&self) -> &BusyboxRegistry {
        &self.0
    }
}

impl Fixture {
    async fn new(test: &str) -> Option<Fixture> {
        if !require_root(test) {
            return None;
        }
        let config = json!({"Env": ["PATH=/bin"], "Cmd": ["sh"]});
        Some(Fixture(BusyboxRegistry::start(config).await))
    }

    /// A context directory with these files (`@BASE@` replaced by the busybox image).
    fn context(&self, files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text.replace("@BASE@", &self.image())).unwrap();
        }
        dir
    }

    fn build(&self, args: &[&str], context: &Path) -> Output {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        let context = context.to_str().unwrap();
        all.push(context);
        self.rctl.run(&all)
    }

    fn built(&self, args: &[&str], context: &Path) -> String {
        let out = self.build(args, context);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "build failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn config(&self, image: &str) -> Value {
        let out = self.rctl.ok(&["inspect", image]);
        let all: Value = serde_json::from_str(&out).unwrap();
        all["Config"].clone()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_runs_and_rebuilds_from_cache() {
    let Some(f) = Fixture::new("builds_runs_and_rebuilds_from_cache").await else {
        return;
    };
    let context = f.context(&[
        (
            "Dockerfile",
            "FROM @BASE@\nRUN mkdir -p /srv && echo built > /srv/a\nCOPY greeting.txt /srv/\nRUN cat /srv/greeting.txt >> /srv/a\nCMD [\"cat\", \"/srv/a\"]\n",
        ),
        ("greeting.txt", "hello\n"),
    ]);
    let image = f.name("app:1");
    let first = f.built(&["-t", &image], context.path());
    assert!(first.contains("Step 1/5 : FROM"), "{first}");
    assert!(first.contains("Step 5/5 : CMD"), "{first}");
    assert!(
        first.contains(&format!("Successfully tagged {image}")),
        "{first}"
    );
    assert_eq!(f.rctl.ok(&["run", "--rm", &image]), "built\nhello\n");
    // The second build is served from the cache, to the same image.
    let second = f.built(&["-t", &image], context.path());
    assert_eq!(second.matches(" ---> Using cache").count(), 4, "{second}");
    let id = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("Successfully built "))
            .map(str::to_string)
    };
    assert_eq!(id(&first), id(&second));
    // A changed file invalidates its COPY and what follows; mtimes alone do not.
    std::fs::write(context.path().join("greeting.txt"), "hello\n").unwrap();
    let touched = f.built(&["-t", &image], context.path());
    assert_eq!(touched.matches(" ---> Using cache").count(), 4, "{touched}");
    std::fs::write(context.path().join("greeting.txt"), "changed\n").unwrap();
    let changed = f.built(&["-t", &image], context.path());
    assert_eq!(changed.matches(" ---> Using cache").count(), 1, "{changed}");
    assert_eq!(f.rctl.ok(&["run", "--rm", &image]), "built\nchanged\n");
    // --no-cache runs everything again.
    let fresh = f.built(&["--no-cache", "-t", &image], context.path());
    assert_eq!(fresh.matches("Using cache").count(), 0, "{fresh}");
    // history shows each step.
    let history = f.rctl.ok(&["history", &image]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 1 + 4 + 1, "{history}");
    assert!(lines[1].contains("CMD [\"cat\", \"/srv/a\"]"), "{history}");
    assert!(lines[2].contains("cat /srv/greeting.txt"), "{history}");
    assert!(lines[3].contains("COPY"), "{history}");
    assert!(lines[4].contains("mkdir -p /srv"), "{history}");
    // ADD of a URL fetches it (here: a blob from the registry, over loopback).
    let expected = b"fetched over http\n".to_vec();
    let digest = e2e::api::push_blob(&http_client(), &f.registry.url(), "busybox", &expected).await;
    let url = format!("{}/v2/busybox/blobs/{digest}", f.registry.url());
    let added = f.context(&[(
        "Dockerfile",
        &format!("FROM @BASE@\nADD {url} /fetched/blob\n"),
    )]);
    let fetched_image = f.name("fetched:1");
    f.built(&["-t", &fetched_image], added.path());
    let out = f
        .rctl
        .run(&["run", "--rm", &fetched_image, "cat", "/fetched/blob"]);
    assert_eq!(out.stdout, expected);
    // -q prints only the id.
    let quiet = f.built(&["-q", "-t", &image], context.path());
    assert!(
        quiet.trim().starts_with("sha256:") && quiet.lines().count() == 1,
        "{quiet}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_stage_copies_only_what_it_takes() {
    let Some(f) = Fixture::new("multi_stage_copies_only_what_it_takes").await else {
        return;
    };
    let context = f.context(&[(
        "Dockerfile",
        "FROM @BASE@ AS builder\nRUN mkdir /out && echo artifact > /out/app && echo junk > /out/junk\n\nFROM builder AS second\nRUN echo more >> /out/app\n\nFROM @BASE@ AS unused\nRUN exit 1\n\nFROM scratch\nCOPY --from=second /out/app /app\nCOPY --from=@BASE@ /bin/busybox /bin/cat\nENTRYPOINT [\"/bin/cat\"]\nCMD [\"/app\"]\n",
    )]);
    let image = f.name("multi:1");
    let out = f.built(&["-t", &image], context.path());
    assert!(!out.contains("exit 1"), "the unused stage was built: {out}");
    assert_eq!(f.rctl.ok(&["run", "--rm", &image]), "artifact\nmore\n");
    // Only what COPY --from took: no junk, no shell.
    let export = tempfile::NamedTempFile::new().unwrap();
    let id = f.rctl.ok(&["create", &image]).trim().to_string();
    f.rctl
        .ok(&["export", "-o", export.path().to_str().unwrap(), &id]);
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(export.path())
        .output()
        .unwrap();
    let mut files: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter(|l| !l.ends_with('/') && !l.starts_with("etc/"))
        .map(str::to_string)
        .collect();
    files.sort();
    assert_eq!(files, ["app", "bin/cat"]);
    f.rctl.ok(&["rm", &id]);
    // ENTRYPOINT plus CMD defaults, overridden by run arguments.
    let out = f.rctl.run(&["run", "--rm", &image, "/nope"]);
    assert!(stderr(&out).contains("/nope"), "{}", stderr(&out));
    // --target builds that stage.
    let builder = f.name("multi:builder");
    f.built(&["--target", "builder", "-t", &builder], context.path());
    assert_eq!(
        f.rctl.ok(&["run", "--rm", &builder, "cat", "/out/junk"]),
        "junk\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_instruction_and_the_context_rules() {
    let Some(f) = Fixture::new("every_instruction_and_the_context_rules").await else {
        return;
    };
    let dockerfile = r#"# syntax=docker/dockerfile:1
# escape=\
ARG BASE_IMAGE=@BASE@
FROM ${BASE_IMAGE} AS base
MAINTAINER someone@example.com
ARG VERSION=1.0
ARG UNSET
ENV APP_HOME=/srv/app \
    MODE="two words"
LABEL org.example.version=$VERSION org.example.mode="${MODE}"
WORKDIR ${APP_HOME}
COPY --chown=1000:100 --chmod=640 files/*.conf conf/
COPY [ "files/data.txt", "data/" ]
ADD files/bundle.tar.gz /opt/
USER 1000:100
EXPOSE 8080 53/udp
VOLUME ["/srv/app/state"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD cat /srv/app/data/data.txt
SHELL ["/bin/sh", "-c"]
RUN echo "v=$VERSION unset=${UNSET:-none} mode=$MODE" > /tmp/args && id -u > /tmp/uid
ONBUILD RUN echo triggered > /tmp/onbuild
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /tmp/args"]
"#;
    let tarball = gzip(&files_layer("bundled", &[("file", b"inner\n")]));
    let context = f.context(&[
        ("Dockerfile", dockerfile),
        ("files/a.conf", "a\n"),
        ("files/b.conf", "b\n"),
        ("files/skip.conf", "skip\n"),
        ("files/data.txt", "data\n"),
        ("secret.key", "do not send\n"),
        (".dockerignore", "secret.key\nfiles/skip.conf\n"),
    ]);
    std::fs::write(context.path().join("files/bundle.tar.gz"), tarball).unwrap();
    let image = f.name("every:1");
    let out = f.built(
        &[
            "-t",
            &image,
            "--build-arg",
            "VERSION=2.5",
            "--label",
            "extra=yes",
        ],
        context.path(),
    );
    assert!(out.contains("Step 1/"), "{out}");
    let c = f.config(&image);
    let c = &c["config"];
    assert_eq!(c["User"], "1000:100");
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], json!(["cat /tmp/args"]));
    assert_eq!(c["ExposedPorts"], json!({"8080/tcp": {}, "53/udp": {}}));
    assert_eq!(c["Volumes"], json!({"/srv/app/state": {}}));
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert_eq!(
        c["Labels"],
        json!({"org.example.version": "2.5", "org.example.mode": "two words", "extra": "yes"})
    );
    assert!(c["Env"]
        .as_array()
        .unwrap()
        .contains(&json!("APP_HOME=/srv/app")));
    assert!(c["Env"]
        .as_array()
        .unwrap()
        .contains(&json!("MODE=two words")));
    assert_eq!(
        c["Healthcheck"]["Test"],
        json!(["CMD-SHELL", "cat /srv/app/data/data.txt"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 30_000_000_000u64);
    assert_eq!(c["OnBuild"], json!(["RUN echo triggered > /tmp/onbuild"]));
    // Files as the instructions put them.
    let out = f.rctl.ok(&[
        "run", "--rm", "-u", "0", &image,
        "cat /tmp/args /tmp/uid; ls conf; stat -c '%u:%g %a' conf/a.conf; cat data/data.txt /opt/bundled/file; test -e secret.key || echo no-secret",
    ]);
    assert_eq!(out, "v=2.5 unset=none mode=two words\n1000\na.conf\nb.conf\n1000:100 640\ndata\ninner\nno-secret\n");
    // ONBUILD triggers run when the image is a base.
    let child = f.context(&[("Dockerfile", &format!("FROM {image}\nUSER 0\n"))]);
    let child_image = f.name("child:1");
    let out = f.built(&["-t", &child_image], child.path());
    assert!(out.contains("Executing 1 build trigger"), "{out}");
    assert_eq!(
        f.rctl
            .ok(&["run", "--rm", &child_image, "cat /tmp/onbuild"]),
        "triggered\n"
    );
    // A Dockerfile on stdin, and a context as a tar.
    let mut child_proc = f
        .rctl
        .command()
        .args(["build", "-t", &f.name("stdin:1"), "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child_proc
        .stdin
        .take()
        .unwrap()
        .write_all(format!("FROM {}\nCMD [\"echo\", \"from-stdin\"]\n", f.image()).as_bytes())
        .unwrap();
    assert!(child_proc.wait().unwrap().success());
    assert_eq!(
        f.rctl.ok(&["run", "--rm", &f.name("stdin:1")]),
        "from-stdin\n"
    );
    let tar_path = context.path().join("../ctx.tar");
    let status = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&tar_path)
        .arg("-C")
        .arg(child.path())
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    f.built(&["-t", &f.name("fromtar:1")], &tar_path);
    let _ = std::fs::remove_file(&tar_path);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_dockerfiles_stop_cleanly() {
    let Some(f) = Fixture::new("bad_dockerfiles_stop_cleanly").await else {
        return;
    };
    let cases = [
        (
            "FROM @BASE@\nFROBNICATE x\n",
            "Dockerfile:2: unknown instruction: FROBNICATE",
        ),
        (
            "FROM @BASE@\nENV A=\"open\n",
            "Dockerfile:2: unterminated double quote",
        ),
        (
            "FROM @BASE@\nCOPY ../outside /x\n",
            "forbidden path outside the build context",
        ),
        (
            "FROM @BASE@\nCOPY --from=nosuchstage /x /y\n",
            "nosuchstage",
        ),
        (
            "FROM @BASE@\nRUN echo before && false\nRUN echo never\n",
            "The command '/bin/sh -c echo before && false' returned a non-zero code: 1",
        ),
    ];
    for (dockerfile, expected) in cases {
        let context = f.context(&[("Dockerfile", dockerfile)]);
        let image = f.name("bad:1");
        let out = f.build(&["-t", &image], context.path());
        assert!(!out.status.success(), "{dockerfile} built");
        assert!(
            stderr(&out).contains(expected),
            "{dockerfile}: {}",
            stderr(&out)
        );
        // Nothing half-made or leaked.
        assert!(
            !f.rctl.ok(&["images"]).contains("bad"),
            "{dockerfile} left an image"
        );
        assert_eq!(
            f.rctl.ok(&["ps", "-a", "-q"]),
            "",
            "{dockerfile} left a container"
        );
        let root = f.rctl.root.display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&root), "{dockerfile} left a mount");
        // The step's container (named in the output) left no cgroup.
        let stdout = String::from_utf8_lossy(&out.stdout);
        for id in stdout
            .lines()
            .filter_map(|l| l.strip_prefix(" ---> Running in "))
        {
            for group in ["memory", "pids", "freezer"] {
                let dir = std::path::Path::new("/sys/fs/cgroup")
                    .join(group)
                    .join("rctl");
                let left = std::fs::read_dir(&dir)
                    .map(|d| {
                        d.flatten()
                            .any(|e| e.file_name().to_string_lossy().starts_with(id))
                    })
                    .unwrap_or(false);
                assert!(
                    !left,
                    "{dockerfile} left the cgroup of {id} in {}",
                    dir.display()
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn build_push_pull_run_loop() {
    let Some(f) = Fixture::new("build_push_pull_run_loop").await else {
        return;
    };
    let context = f.context(&[
        ("Dockerfile", "FROM @BASE@\nCOPY app.sh /usr/local/bin/app\nRUN chmod +x /usr/local/bin/app\nENTRYPOINT [\"/usr/local/bin/app\"]\nCMD [\"world\"]\n"),
        ("app.sh", "#!/bin/sh\necho \"hello $1\"\n"),
    ]);
    let image = f.name("app:1");
    f.built(&["-t", &image], context.path());
    f.rctl.ok(&["push", &image]);
    f.rctl.ok(&["rmi", &image]);
    assert!(!f.rctl.ok(&["images"]).contains("app"));
    let fresh = Rctl::new();
    assert_eq!(fresh.ok(&["run", "--rm", &image]), "hello world\n");
    assert_eq!(fresh.ok(&["run", "--rm", &image, "there"]), "hello there\n");
    // The same image through docker.
    if !e2e::require_tool("dockerd", "build_push_pull_run_loop") {
        return;
    }
    let dockerd = e2e::docker::Dockerd::start();
    dockerd.docker_ok(&["pull", &image]);
    let out = dockerd.docker_ok(&["run", "--rm", "--network", "none", &image]);
    assert_eq!(out, "hello world\n");
}
