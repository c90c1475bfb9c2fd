//! Containers confined as docker confines them, as root with the real
//! `rctl`: docker's default seccomp profile (and `seccomp=unconfined` or a
//! profile file), `--cap-add`/`--cap-drop`, `no-new-privileges` and
//! `--read-only`, for `run` and `exec` alike, recorded by `inspect`; and
//! the same `/proc/self/status` lines as a private dockerd gives.

use e2e::docker::{busybox_context, Dockerd};
use e2e::images::BusyboxRegistry;
use e2e::{require_root, require_tool};
use serde_json::{json, Value};
use std::process::Output;

struct Fixture(BusyboxRegistry);

impl Fixture {
    async fn new(test: &str) -> Option<Fixture> {
        if !require_root(test) {
            return None;
        }
        let config = json!({"Env": ["PATH=/bin"], "Cmd": ["sh"]});
        Some(Fixture(BusyboxRegistry::start(config).await))
    }

    /// `rctl run --rm FLAGS... IMAGE sh -c SCRIPT`.
    fn run(&self, flags: &[&str], script: &str) -> Output {
        let image = self.0.image();
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(flags);
        all.extend_from_slice(&[&image, "sh", "-c", script]);
        self.0.rctl.run(&all)
    }

    /// Runs, asserting success; returns stdout.
    fn out(&self, flags: &[&str], script: &str) -> String {
        let output = self.run(flags, script);
        assert!(
            output.status.success(),
            "run {flags:?} {script:?}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn inspect(&self, name: &str) -> Value {
        let text = self.0.rctl.ok(&["inspect", name]);
        serde_json::from_str::<Value>(&text).expect("inspect JSON")[0].clone()
    }
}

/// The status lines these tests compare.
const STATUS: &str =
    "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status";

/// docker's default capability mask, less MKNOD where the device cgroup
/// cannot guard it (cgroup v2).
fn default_caps() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "00000000a00425fb"
    } else {
        "00000000a80425fb"
    }
}

fn line<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn default_profile_refuses_a_user_namespace_that_unconfined_allows() {
    let Some(f) =
        Fixture::new("default_profile_refuses_a_user_namespace_that_unconfined_allows").await
    else {
        return;
    };
    let probe = format!("{STATUS}; unshare -U true 2>&1 && echo userns-made; true");
    let confined = f.out(&[], &probe);
    assert_eq!(line(&confined, "Seccomp:"), "2", "{confined}");
    assert!(
        confined.contains("unshare(0x10000000): Operation not permitted"),
        "{confined}"
    );
    assert!(!confined.contains("userns-made"), "{confined}");
    // clone without namespace flags still works: a pipeline forks.
    assert_eq!(f.out(&[], "echo forked | cat"), "forked\n");
    let unconfined = f.out(&["--security-opt", "seccomp=unconfined"], &probe);
    assert_eq!(line(&unconfined, "Seccomp:"), "0", "{unconfined}");
    assert!(unconfined.contains("userns-made"), "{unconfined}");
    // CAP_SYS_ADMIN opens mount (the capability-gated group), as in docker.
    let mount = "mount -t tmpfs t /tmp 2>&1 && echo mounted; true";
    assert!(!f.out(&[], mount).contains("mounted"));
    assert!(f
        .out(&["--cap-add", "SYS_ADMIN"], mount)
        .contains("mounted"));

    // exec'd processes get the container's filter, capabilities and no_new_privs.
    let rctl = &f.0.rctl;
    let image = f.0.image();
    rctl.ok(&[
        "run",
        "-d",
        "--name",
        "held",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "KILL",
        "--security-opt",
        "no-new-privileges",
        &image,
        "sleep",
        "300",
    ]);
    let exec = rctl.ok(&["exec", "held", "sh", "-c", &probe]);
    assert_eq!(line(&exec, "Seccomp:"), "2", "{exec}");
    assert_eq!(line(&exec, "CapEff:"), "0000000000000020", "{exec}");
    assert_eq!(line(&exec, "NoNewPrivs:"), "1", "{exec}");
    assert!(!exec.contains("userns-made"), "{exec}");
    let host = f.inspect("held")["HostConfig"].clone();
    assert_eq!(host["SecurityOpt"], json!(["no-new-privileges"]));
    assert_eq!(host["CapAdd"], json!(["CAP_KILL"]));
    assert_eq!(host["CapDrop"], json!(["ALL"]));
    assert_eq!(host["ReadonlyRootfs"], json!(false));
    rctl.ok(&["rm", "-f", "held"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_file_is_applied_and_a_bad_one_refused_before_the_container_exists() {
    let Some(f) =
        Fixture::new("a_profile_file_is_applied_and_a_bad_one_refused_before_the_container_exists")
            .await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
            ]
        }"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = f.out(
        &["--security-opt", &opt],
        "mkdir /made 2>&1; touch /touched && echo touched; unshare -U true && echo userns-made",
    );
    assert!(
        out.contains("mkdir: can't create directory '/made': Operation not permitted"),
        "{out}"
    );
    // Only mkdir: the rest is allowed, even what docker's default refuses.
    assert!(out.contains("touched\nuserns-made"), "{out}");
    assert!(f.out(&[], "mkdir /made && echo made").contains("made"));
    // inspect shows the profile's JSON, as docker does.
    let rctl = &f.0.rctl;
    let image = f.0.image();
    rctl.ok(&["create", "--name", "kept", "--security-opt", &opt, &image]);
    let recorded = f.inspect("kept")["HostConfig"]["SecurityOpt"].clone();
    let recorded = recorded[0].as_str().unwrap_or_default().to_string();
    let json: Value = serde_json::from_str(recorded.strip_prefix("seccomp=").unwrap()).unwrap();
    assert_eq!(json["syscalls"][0]["names"], json!(["mkdir", "mkdirat"]));
    rctl.ok(&["rm", "kept"]);

    // Errors in the file stop the run before any container is made.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_SOMETIMES"}]}"#).unwrap();
    let error = f.run(
        &["--security-opt", &format!("seccomp={}", bad.display())],
        "true",
    );
    assert_eq!(error.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&error.stderr);
    assert!(
        stderr.contains("Decoding seccomp profile failed"),
        "{stderr}"
    );
    assert!(stderr.contains("SCMP_ACT_SOMETIMES"), "{stderr}");
    let missing = f.run(&["--security-opt", "seccomp=/no/such.json"], "true");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("opening seccomp profile (/no/such.json) failed"),
        "{stderr}"
    );
    let wrong = f.run(&["--security-opt", "seccomp"], "true");
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("Invalid --security-opt: \"seccomp\""),
        "{stderr}"
    );
    assert_eq!(rctl.ok(&["ps", "-a", "-q"]), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn capabilities_follow_cap_add_and_cap_drop() {
    let Some(f) = Fixture::new("capabilities_follow_cap_add_and_cap_drop").await else {
        return;
    };
    let chown = "touch /f && chown 1:1 /f 2>&1 && echo chowned; true";
    let default = f.out(&[], &format!("{STATUS}; {chown}"));
    assert_eq!(line(&default, "CapEff:"), default_caps(), "{default}");
    assert_eq!(line(&default, "CapBnd:"), default_caps(), "{default}");
    assert_eq!(line(&default, "CapInh:"), "0000000000000000", "{default}");
    assert!(default.contains("chowned"), "{default}");
    let none = f.out(&["--cap-drop", "ALL"], &format!("{STATUS}; {chown}"));
    assert_eq!(line(&none, "CapEff:"), "0000000000000000", "{none}");
    assert!(none.contains("Operation not permitted"), "{none}");
    assert!(!none.contains("chowned"), "{none}");
    // `CAP_` optional, any case; add wins over drop.
    let some = f.out(
        &[
            "--cap-drop",
            "all",
            "--cap-add",
            "chown",
            "--cap-add",
            "CAP_Net_Admin",
        ],
        &format!("{STATUS}; {chown}"),
    );
    assert_eq!(line(&some, "CapEff:"), "0000000000001001", "{some}");
    assert!(some.contains("chowned"), "{some}");
    // A user other than root holds none, as in docker; the bounding set stays.
    let user = f.out(&["--user", "1000"], STATUS);
    assert_eq!(line(&user, "CapEff:"), "0000000000000000", "{user}");
    assert_eq!(line(&user, "CapBnd:"), default_caps(), "{user}");
    let unknown = f.run(&["--cap-add", "NOSUCH"], "true");
    assert_eq!(unknown.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("unknown capability: \"CAP_NOSUCH\""),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_new_privileges_and_read_only_root() {
    let Some(f) = Fixture::new("no_new_privileges_and_read_only_root").await else {
        return;
    };
    let status = f.out(&[], STATUS);
    assert_eq!(line(&status, "NoNewPrivs:"), "0", "{status}");
    for opt in ["no-new-privileges", "no-new-privileges=true"] {
        let status = f.out(&["--security-opt", opt], STATUS);
        assert_eq!(line(&status, "NoNewPrivs:"), "1", "{opt}: {status}");
        assert_eq!(line(&status, "Seccomp:"), "2", "{opt}: {status}");
    }
    let status = f.out(&["--security-opt", "no-new-privileges=false"], STATUS);
    assert_eq!(line(&status, "NoNewPrivs:"), "0", "{status}");

    // --read-only: the root refuses writes; volumes, /dev/shm and the /etc files do not.
    let probe = "for p in /x /tmp/x /data/x /dev/shm/x; do touch $p 2>/dev/null && echo $p:rw || echo $p:ro; done; echo ok >> /etc/hosts && echo hosts:rw";
    let out = f.out(&["--read-only", "-v", "ro-test-data:/data"], probe);
    assert_eq!(
        out,
        "/x:ro\n/tmp/x:ro\n/data/x:rw\n/dev/shm/x:rw\nhosts:rw\n"
    );
    let out = f.out(&["-v", "ro-test-data:/data"], probe);
    assert_eq!(
        out,
        "/x:rw\n/tmp/x:rw\n/data/x:rw\n/dev/shm/x:rw\nhosts:rw\n"
    );
    let rctl = &f.0.rctl;
    rctl.ok(&["create", "--name", "ro", "--read-only", &f.0.image()]);
    assert_eq!(f.inspect("ro")["HostConfig"]["ReadonlyRootfs"], json!(true));
    assert_eq!(f.inspect("ro")["HostConfig"]["SecurityOpt"], Value::Null);
    rctl.ok(&["rm", "ro"]);
}

/// The same flags give the same capability, no_new_privs and seccomp
/// lines under docker and under rctl.
#[tokio::test(flavor = "multi_thread")]
async fn docker_agrees_on_capabilities_seccomp_and_no_new_privs() {
    let test = "docker_agrees_on_capabilities_seccomp_and_no_new_privs";
    if !(require_root(test) && require_tool("dockerd", test) && require_tool("busybox", test)) {
        return;
    }
    let Some(f) = Fixture::new(test).await else {
        return;
    };
    let dockerd = Dockerd::start();
    let context = busybox_context(&[], &["/bin/busybox", "sh"]);
    dockerd.docker_ok(&[
        "build",
        "-q",
        "-t",
        "confined:1",
        &context.path().display().to_string(),
    ]);
    let flag_sets: [&[&str]; 5] = [
        &[],
        &["--security-opt", "seccomp=unconfined"],
        &["--security-opt", "no-new-privileges"],
        &[
            "--cap-drop",
            "ALL",
            "--cap-add",
            "chown",
            "--cap-add",
            "SETUID",
        ],
        &["--cap-add", "SYS_ADMIN", "--cap-drop", "NET_RAW"],
    ];
    let probe = "/bin/busybox grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; /bin/busybox unshare -U /bin/busybox true 2>/dev/null && echo userns-made; true";
    for flags in flag_sets {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["confined:1", "/bin/busybox", "sh", "-c", probe]);
        let docker = dockerd.docker_ok(&args);
        let ours = f.out(flags, probe);
        assert_eq!(ours, docker, "rctl and docker differ with {flags:?}");
    }
}

/// `rctl build` runs RUN steps under the default profile, as docker's builder does.
#[tokio::test(flavor = "multi_thread")]
async fn build_run_steps_get_the_default_profile() {
    let Some(f) = Fixture::new("build_run_steps_get_the_default_profile").await else {
        return;
    };
    let context = tempfile::tempdir().unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM {}\nRUN grep -E '^(CapEff|Seccomp):' /proc/self/status > /confined; unshare -U true 2> /userns; true\nCMD [\"cat\", \"/confined\", \"/userns\"]\n",
            f.0.image()
        ),
    )
    .unwrap();
    let rctl = &f.0.rctl;
    rctl.ok(&[
        "build",
        "-q",
        "-t",
        "confined:1",
        &context.path().display().to_string(),
    ]);
    let out = rctl.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "confined:1",
    ]);
    assert_eq!(line(&out, "Seccomp:"), "2", "{out}");
    assert_eq!(line(&out, "CapEff:"), default_caps(), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
}
