//! Containers end to end, as root: busybox built `FROM scratch` out of
//! Debian's busybox-static, pushed to a real rregistry, pulled by `rctl
//! run`, and run in namespaces and cgroups by the real `rctl` binary.

use e2e::images::BusyboxRegistry;
use e2e::process::wait_until;
use e2e::rctl::Rctl;
use e2e::{http_client, require_root};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The busybox registry, and what these tests ask of containers.
struct Fixture(BusyboxRegistry);

impl std::ops::Deref for Fixture {
    type Target = BusyboxRegistry;
    fn deref(&self) -> &BusyboxRegistry {
        &self.0
    }
}

impl Fixture {
    /// `None` (the test is skipped, with the reason printed) when not root.
    async fn new(test: &str) -> Option<Fixture> {
        if !require_root(test) {
            return None;
        }
        let config = json!({"Env": ["PATH=/bin", "FROM_IMAGE=yes"], "Cmd": ["sh"]});
        Some(Fixture(BusyboxRegistry::start(config).await))
    }

    /// `rctl run --rm IMAGE ARGS...`.
    fn run(&self, flags: &[&str], args: &[&str]) -> Output {
        let image = self.image();
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(flags);
        all.push(&image);
        all.extend_from_slice(args);
        self.rctl.run(&all)
    }

    /// Runs and returns stdout, asserting success.
    fn out(&self, flags: &[&str], args: &[&str]) -> String {
        let output = self.run(flags, args);
        assert!(
            output.status.success(),
            "run {flags:?} {args:?}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn inspect(&self, name: &str) -> Value {
        let text = self.rctl.ok(&["inspect", name]);
        let all: Value = serde_json::from_str(&text).expect("inspect JSON");
        all[0].clone()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The cgroup directories a container would have, on v1 or v2.
fn cgroup_dirs(id: &str) -> Vec<std::path::PathBuf> {
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v2 {
        vec![format!("/sys/fs/cgroup/rctl/{id}").into()]
    } else {
        ["memory", "pids", "freezer"]
            .iter()
            .map(|c| format!("/sys/fs/cgroup/{c}/rctl/{id}").into())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_pulls_and_runs_with_docker_process_semantics() {
    let Some(f) = Fixture::new("run_pulls_and_runs_with_docker_process_semantics").await else {
        return;
    };
    // Pulled on first use, as docker run does.
    let first = f.run(&[], &["echo", "hi"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(String::from_utf8_lossy(&first.stdout), "hi\n");
    assert!(
        stderr(&first).contains("Unable to find image"),
        "{}",
        stderr(&first)
    );
    // Exit codes pass through; a missing executable is docker's 127.
    assert_eq!(f.run(&[], &["sh", "-c", "exit 3"]).status.code(), Some(3));
    let missing = f.run(&[], &["nosuch"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(
        stderr(&missing).contains("exec: \"nosuch\": executable file not found in $PATH"),
        "{}",
        stderr(&missing)
    );
    // PID 1 is the command.
    let ps = f.out(&[], &["ps", "-o", "pid,comm"]);
    assert!(
        ps.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "ps"]),
        "{ps}"
    );
    // Hostname, environment, working directory and user as asked.
    let env_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(env_file.path(), "# comment\nFROM_FILE=ok\n").unwrap();
    let out = f.out(
        &[
            "-h",
            "myhost",
            "-e",
            "GIVEN=bar",
            "--env-file",
            env_file.path().to_str().unwrap(),
            "-w",
            "/work/dir",
            "-u",
            "alice",
        ],
        &[
            "sh",
            "-c",
            "hostname; cat /etc/hostname; echo $GIVEN $FROM_IMAGE $FROM_FILE; pwd; id -u; id -g; id -G; echo $HOME",
        ],
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "myhost",
            "myhost",
            "bar yes ok",
            "/work/dir",
            "1000",
            "100",
            "100 10",
            "/home/alice"
        ],
        "{out}"
    );
    let hosts = f.out(
        &["-h", "myhost"],
        &["cat", "/etc/hosts", "/etc/resolv.conf"],
    );
    assert!(
        hosts.contains("127.0.0.1\tlocalhost") && hosts.contains("myhost"),
        "{hosts}"
    );
    assert_eq!(f.out(&["-u", "4242:10"], &["id", "-u"]).trim(), "4242");
    assert_eq!(f.out(&["-u", "4242:10"], &["id", "-g"]).trim(), "10");
    assert!(!f.run(&["-u", "nobody-here"], &["true"]).status.success());
    // The default hostname is the short container id.
    let id = f
        .rctl
        .ok(&["create", &f.image(), "hostname"])
        .trim()
        .to_string();
    let out = f.rctl.ok(&["start", "-a", &id]);
    assert_eq!(out.trim(), &id[..12]);
    f.rctl.ok(&["rm", &id]);

    // ENTRYPOINT and CMD combined as docker does.
    let image = f
        .push(
            "ep",
            json!({"Entrypoint": ["echo", "ep"], "Cmd": ["default"]}),
        )
        .await;
    assert_eq!(f.rctl.ok(&["run", "--rm", &image]), "ep default\n");
    assert_eq!(f.rctl.ok(&["run", "--rm", &image, "given"]), "ep given\n");
    assert_eq!(
        f.rctl
            .ok(&["run", "--rm", "--entrypoint", "echo", &image, "only"]),
        "only\n"
    );
    // Clear errors: no command, a missing image, a name in use.
    let nocmd = f.push("nocmd", json!({})).await;
    let out = f.rctl.run(&["run", "--rm", &nocmd]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("No command specified"),
        "{}",
        stderr(&out)
    );
    let out = f.rctl.run(&[
        "run",
        "--rm",
        &format!("{}/no/such:1", f.registry.host()),
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("no/such"), "{}", stderr(&out));
    f.rctl.ok(&["create", "--name", "dup", &f.image(), "true"]);
    let out = f.rctl.run(&["create", "--name", "dup", &f.image(), "true"]);
    assert!(
        stderr(&out).contains("The container name \"/dup\" is already in use"),
        "{}",
        stderr(&out)
    );
    f.rctl.ok(&["rm", "dup"]);
    // --rm left nothing behind.
    assert_eq!(f.rctl.ok(&["ps", "-a", "-q"]), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_are_isolated() {
    let Some(f) = Fixture::new("containers_are_isolated").await else {
        return;
    };
    // A write in one container is not seen by another from the same image.
    f.rctl.ok(&[
        "run",
        "--name",
        "writer",
        &f.image(),
        "sh",
        "-c",
        "echo mine > /tmp/written; echo changed > /etc/group",
    ]);
    let out = f.run(
        &[],
        &["sh", "-c", "cat /tmp/written; grep -c wheel /etc/group"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n");
    assert!(
        stderr(&out).contains("can't open '/tmp/written'"),
        "{}",
        stderr(&out)
    );
    // ... while its own changes stay with it.
    let upper = f.inspect("writer")["GraphDriver"]["Data"]["UpperDir"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        std::fs::read_to_string(format!("{upper}/tmp/written")).unwrap(),
        "mine\n"
    );
    f.rctl.ok(&["rm", "writer"]);
    assert!(!std::path::Path::new(&upper).exists());
    // Its own network namespace with only loopback, up; or the host's.
    let links = f.out(&[], &["ip", "-o", "link"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    let host_links = f.out(&["--network", "host"], &["ip", "-o", "link"]);
    let ours = std::fs::read_dir("/sys/class/net").unwrap().count();
    assert_eq!(host_links.lines().count(), ours, "{host_links}");
    // docker's capabilities (MKNOD only where the device cgroup guards its use),
    // and no way to the host's disks.
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let caps = f.out(&[], &["sh", "-c", "grep CapBnd /proc/self/status; mknod /tmp/disk b 8 0 2>/dev/null; head -c 1 /tmp/disk 2>&1 | grep -c 'not permitted'; mount -t tmpfs x /tmp 2>&1 | grep -c denied"]);
    let expected = if v2 {
        "00000000a00425fb"
    } else {
        "00000000a80425fb"
    };
    assert_eq!(caps, format!("CapBnd:\t{expected}\n1\n1\n"));
    // Its own pid, uts and ipc namespaces; /sys read-only; the /dev nodes docker gives.
    let out = f.out(
        &[],
        &[
            "sh",
            "-c",
            "ps -o pid > /tmp/ps; wc -l < /tmp/ps; touch /sys/x 2>/dev/null || echo sys-ro; ls /dev | tr '\\n' ' '",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    // The header, sh and ps: nothing of the host. (ps writes to a file, not
    // a pipe: a pipe's reader may or may not have started when ps reads /proc.)
    assert_eq!(lines[0].trim(), "3", "{out}");
    assert_eq!(lines[1], "sys-ro");
    for node in [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm",
    ] {
        assert!(
            lines[2].split(' ').any(|n| n == node),
            "no /dev/{node}: {out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn resources_are_limited_and_oom_is_reported() {
    let Some(f) = Fixture::new("resources_are_limited_and_oom_is_reported").await else {
        return;
    };
    // Memory: a process allocating past the limit is killed, and rctl says why.
    let out = f.rctl.run(&[
        "run",
        "--name",
        "hog",
        "-m",
        "32m",
        &f.image(),
        "sh",
        "-c",
        "x=$(head -c 200m /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("survived"));
    assert!(stderr(&out).contains("out of memory"), "{}", stderr(&out));
    let hog = f.inspect("hog");
    assert_eq!(hog["State"]["OOMKilled"], true, "{hog}");
    assert_eq!(hog["State"]["ExitCode"], 137);
    assert_eq!(hog["HostConfig"]["Memory"], 32 * 1024 * 1024);
    // The cgroup went with the container.
    let id = hog["Id"].as_str().unwrap();
    for dir in cgroup_dirs(id) {
        assert!(!dir.exists(), "{} was left behind", dir.display());
    }
    f.rctl.ok(&["rm", "hog"]);
    // Pids: a fork bomb hits the limit.
    let id = f
        .rctl
        .ok(&[
            "run",
            "-d",
            "--pids-limit",
            "10",
            &f.image(),
            "sh",
            "-c",
            "sh -c 'while true; do sleep 30 & done'; echo spawned; exec sleep 30",
        ])
        .trim()
        .to_string();
    assert!(wait_until(Duration::from_secs(10), || f
        .rctl
        .ok(&["logs", &id])
        .contains("spawned")));
    let logs = f.rctl.ok(&["logs", &id]);
    assert!(logs.contains("can't fork"), "{logs}");
    let stats = f.rctl.ok(&["stats", "--no-stream", &id]);
    let pids: u64 = stats
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().last())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // The bomb's shell died at the limit; what it started lives on, under it.
    assert!((8..=10).contains(&pids), "{stats}");
    f.rctl.ok(&["rm", "-f", &id]);
    // CPU quota is accepted and shown.
    let id = f
        .rctl
        .ok(&[
            "run",
            "-d",
            "--cpus",
            "0.5",
            "-m",
            "64m",
            &f.image(),
            "sleep",
            "30",
        ])
        .trim()
        .to_string();
    let stats = f.rctl.ok(&["stats", "--no-stream", &id]);
    assert!(
        stats.contains(&id[..12]) && stats.contains("64MiB"),
        "{stats}"
    );
    assert_eq!(f.inspect(&id)["HostConfig"]["NanoCpus"], 500_000_000u64);
    f.rctl.ok(&["rm", "-f", &id]);
    for dir in cgroup_dirs(&id) {
        assert!(!dir.exists(), "{} was left behind", dir.display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn init_reaps_zombies() {
    let Some(f) = Fixture::new("init_reaps_zombies").await else {
        return;
    };
    // An orphan reparented to PID 1: `sleep` never reaps it; --init does.
    let script = "sh -c 'sleep 0.1 &'; exec sleep 30";
    for (init, zombies) in [(false, 1), (true, 0)] {
        let mut args = vec!["run", "-d"];
        if init {
            args.push("--init");
        }
        let image = f.image();
        args.extend_from_slice(&[&image, "sh", "-c", script]);
        let id = f.rctl.ok(&args).trim().to_string();
        // Once PID 1 is `sleep 30` the orphan was started; once no
        // `sleep 0.1` runs it has exited (a zombie, or reaped).
        let orphan_done = wait_until(Duration::from_secs(10), || {
            let ps = f.rctl.ok(&["exec", &id, "ps", "-o", "stat,args"]);
            ps.contains("sleep 30") && !ps.contains("sleep 0.1")
        });
        assert!(orphan_done, "--init {init}: the orphan never exited");
        let ps = f.rctl.ok(&["exec", &id, "ps", "-o", "stat"]);
        let found = ps.lines().filter(|l| l.trim().starts_with('Z')).count();
        assert_eq!(found, zombies, "--init {init}: {ps}");
        // Signals reach the command through the reaper.
        f.rctl.ok(&["stop", "-t", "5", &id]);
        let state = f.inspect(&id)["State"].clone();
        let expected = if init { 143 } else { 137 }; // sleep as PID 1 ignores SIGTERM
        assert_eq!(state["ExitCode"], expected, "--init {init}: {state}");
        f.rctl.ok(&["rm", &id]);
    }
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn detached_lifecycle_pause_exec_logs_stop() {
    let Some(f) = Fixture::new("detached_lifecycle_pause_exec_logs_stop").await else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let ticks = shared.path().join("ticks");
    let mount = format!("{}:/shared", shared.path().display());
    let id = f
        .rctl
        .ok(&[
            "run",
            "-d",
            "--name",
            "ticker",
            "-v",
            &mount,
            &f.image(),
            "sh",
            "-c",
            "trap 'echo bye; exit 0' TERM; echo started; while true; do echo t >> /shared/ticks; sleep 0.05; done",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    // rctl has exited; a new rctl sees the container running, and it runs.
    assert!(wait_until(Duration::from_secs(5), || file_len(&ticks) > 10));
    let ps = f.rctl.ok(&["ps"]);
    assert!(ps.contains("ticker") && ps.contains("Up "), "{ps}");
    assert!(
        ps.contains("CONTAINER ID") && ps.contains(&id[..12]),
        "{ps}"
    );
    // exec joins it.
    let out = f.rctl.ok(&[
        "exec",
        "ticker",
        "sh",
        "-c",
        "hostname; ls /shared; tr '\\0' ' ' < /proc/1/cmdline",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], [&id[..12], "ticks"], "{out}");
    assert!(
        lines[2].contains("while true"),
        "PID 1 is not the container's command: {out}"
    );
    let out = f.rctl.run(&["exec", "ticker", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    // pause freezes, unpause resumes.
    f.rctl.ok(&["pause", "ticker"]);
    assert!(f.rctl.ok(&["ps"]).contains("(Paused)"));
    assert_eq!(f.inspect("ticker")["State"]["Status"], "paused");
    let frozen = file_len(&ticks);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(file_len(&ticks), frozen, "the container ran while paused");
    f.rctl.ok(&["unpause", "ticker"]);
    assert!(wait_until(Duration::from_secs(5), || file_len(&ticks) > frozen));
    // stats and logs.
    let stats = f.rctl.ok(&["stats", "--no-stream"]);
    assert!(
        stats.contains("ticker") && stats.contains("MEM USAGE / LIMIT"),
        "{stats}"
    );
    assert_eq!(f.rctl.ok(&["logs", "ticker"]), "started\n");
    // stop: SIGTERM first, which the trap takes.
    let follow = f
        .rctl
        .command()
        .args(["logs", "-f", "ticker"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    f.rctl.ok(&["stop", "ticker"]);
    let followed = follow.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&followed.stdout), "started\nbye\n");
    let state = f.inspect("ticker")["State"].clone();
    assert_eq!(
        (state["Status"].as_str(), state["ExitCode"].as_i64()),
        (Some("exited"), Some(0)),
        "{state}"
    );
    assert!(f.rctl.ok(&["ps", "-a"]).contains("Exited (0)"));
    // start again, then kill with a signal of our choice.
    f.rctl.ok(&["start", "ticker"]);
    assert!(f.rctl.ok(&["ps"]).contains("ticker"));
    f.rctl.ok(&["kill", "-s", "TERM", "ticker"]);
    assert!(wait_until(Duration::from_secs(5), || !f
        .rctl
        .ok(&["ps"])
        .contains("ticker")));
    f.rctl.ok(&["rm", "ticker"]);

    // stop sends the image's StopSignal.
    let image = f
        .push("stopsig", json!({"Cmd": ["sh"], "StopSignal": "SIGUSR1"}))
        .await;
    let id = f
        .rctl
        .ok(&[
            "run",
            "-d",
            &image,
            "sh",
            "-c",
            "trap 'exit 12' USR1; while true; do sleep 0.05; done",
        ])
        .trim()
        .to_string();
    f.rctl.ok(&["stop", "-t", "20", &id]);
    assert_eq!(f.inspect(&id)["State"]["ExitCode"], 12);
    f.rctl.ok(&["rm", &id]);

    // A container that ends while no rctl watches is shown exited with its code.
    let id = f
        .rctl
        .ok(&["run", "-d", &f.image(), "sh", "-c", "sleep 0.3; exit 7"]);
    let exited = wait_until(Duration::from_secs(10), || {
        f.rctl.ok(&["ps", "-a"]).contains("Exited (7)")
    });
    assert!(exited, "{}", f.rctl.ok(&["ps", "-a"]));
    // rm refuses a running container without -f.
    let running = f.rctl.ok(&["run", "-d", &f.image(), "sleep", "30"]);
    let out = f.rctl.run(&["rm", running.trim()]);
    assert!(
        stderr(&out).contains("You cannot remove a running container"),
        "{}",
        stderr(&out)
    );
    f.rctl.ok(&["rm", "-f", running.trim(), id.trim()]);
    assert_eq!(f.rctl.ok(&["ps", "-a", "-q"]), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn published_port_reaches_a_server_inside() {
    let Some(f) = Fixture::new("published_port_reaches_a_server_inside").await else {
        return;
    };
    let port = e2e::free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let id = f
        .rctl
        .ok(&[
            "run",
            "-d",
            "-p",
            &publish,
            &f.image(),
            "sh",
            "-c",
            "mkdir /www; echo served-from-inside > /www/index.html; exec httpd -f -p 127.0.0.1:8080 -h /www",
        ])
        .trim()
        .to_string();
    let get = || -> Option<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream
            .write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
            .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        Some(response)
    };
    let mut response = None;
    assert!(wait_until(Duration::from_secs(5), || {
        response = get().filter(|r| r.contains("served-from-inside"));
        response.is_some()
    }));
    assert!(f
        .rctl
        .ok(&["ps"])
        .contains(&format!("127.0.0.1:{port}->8080/tcp")));
    // The relay ends with the container.
    f.rctl.ok(&["rm", "-f", &id]);
    assert!(wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    }));
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_and_terminals() {
    let Some(f) = Fixture::new("signals_and_terminals").await else {
        return;
    };
    // A signal sent to `rctl run` reaches the container.
    f.out(&[], &["true"]); // pull first
    let marker = tempfile::tempdir().unwrap();
    let mount = format!("{}:/m", marker.path().display());
    let image = f.image();
    let mut child = f
        .rctl
        .command()
        .args([
            "run",
            "--rm",
            "-v",
            &mount,
            &image,
            "sh",
            "-c",
            "trap 'echo got-term; exit 9' TERM; touch /m/ready; while true; do sleep 0.05; done",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || marker
        .path()
        .join("ready")
        .exists()));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(status.code(), Some(9), "{out}");
    assert_eq!(out, "got-term\n");

    // -t gives a real terminal with the caller's window size (under `script`, a pty).
    if !e2e::require_tool("script", "signals_and_terminals") {
        return;
    }
    let rctl = e2e::workspace_bin("rctl");
    let line = format!(
        "stty rows 33 cols 91; DOCKER_CONFIG={} {} --root {} run --rm -t {image} sh -c 'test -t 0 && echo is-tty; stty size; exit 4'",
        f.rctl.docker_config.display(),
        rctl.display(),
        f.rctl.root.display()
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(text.contains("is-tty") && text.contains("33 91"), "{text}");
    // -i passes standard input through.
    let mut child = f
        .rctl
        .command()
        .args(["run", "--rm", "-i", &image, "sh"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo from-stdin; exit 6\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-stdin\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_mounts_and_volumes() {
    let Some(f) = Fixture::new("bind_mounts_and_volumes").await else {
        return;
    };
    // A bind mount is shared both ways; :ro is read-only.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("from-host"), "host\n").unwrap();
    let rw = format!("{}:/data", dir.path().display());
    let out = f.out(
        &["-v", &rw],
        &[
            "sh",
            "-c",
            "cat /data/from-host; echo container > /data/from-container",
        ],
    );
    assert_eq!(out, "host\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("from-container")).unwrap(),
        "container\n"
    );
    let ro = format!("{}:/data:ro", dir.path().display());
    let out = f.run(&["-v", &ro], &["sh", "-c", "echo x > /data/nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    // A named volume outlives its containers; rm refuses it while used.
    f.rctl.ok(&["volume", "create", "keep"]);
    f.out(&["-v", "keep:/v"], &["sh", "-c", "echo kept > /v/file"]);
    assert_eq!(f.out(&["-v", "keep:/v:ro"], &["cat", "/v/file"]), "kept\n");
    assert!(f.rctl.ok(&["volume", "ls"]).contains("keep"));
    let id = f.rctl.ok(&["create", "-v", "keep:/v", &f.image(), "true"]);
    assert!(stderr(&f.rctl.run(&["volume", "rm", "keep"])).contains("volume is in use"));
    f.rctl.ok(&["rm", id.trim()]);
    f.rctl.ok(&["volume", "rm", "keep"]);
    assert!(!f.rctl.ok(&["volume", "ls", "-q"]).contains("keep"));
    // An image VOLUME gets an anonymous volume, removed with its container.
    let image = f
        .push("withvol", json!({"Cmd": ["sh"], "Volumes": {"/etc": {}}}))
        .await;
    let id = f
        .rctl
        .ok(&[
            "run",
            "-d",
            &image,
            "sh",
            "-c",
            "cat /etc/passwd | head -1; sleep 30",
        ])
        .trim()
        .to_string();
    let mounts = f.inspect(&id)["Mounts"].clone();
    assert_eq!(mounts[0]["Type"], "volume", "{mounts}");
    assert_eq!(mounts[0]["Destination"], "/etc");
    let source = mounts[0]["Source"].as_str().unwrap().to_string();
    // The new volume was filled with the image's files.
    assert!(wait_until(Duration::from_secs(5), || std::path::Path::new(
        &source
    )
    .join("passwd")
    .exists()));
    f.rctl.ok(&["rm", "-f", &id]);
    assert!(!std::path::Path::new(&source).exists());
}

/// The 64-hex layer directories under the store's overlay2 root.
fn unpacked_layers(rctl: &Rctl) -> usize {
    std::fs::read_dir(rctl.root.join("overlay2"))
        .map(|d| d.flatten().filter(|e| e.file_name().len() == 64).count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn many_layers_mount_and_shared_layers_are_kept_until_unused() {
    use e2e::api::Layer;
    use e2e::images::{files_layer, gzip, push_busybox_with};
    let Some(f) = Fixture::new("many_layers_mount_and_shared_layers_are_kept_until_unused").await
    else {
        return;
    };
    // 120 layers above busybox; the first is gzip though its media type says plain tar.
    let mut extra = Vec::new();
    for i in 0..120 {
        let name = format!("{i:03}");
        let tar = files_layer("layers", &[(&name, name.as_bytes())]);
        let blob = if i == 0 { gzip(&tar) } else { tar.clone() };
        extra.push(Layer {
            blob,
            media_type: "application/vnd.oci.image.layer.v1.tar",
            diff_id: e2e::sha256(&tar),
        });
    }
    push_busybox_with(
        &http_client(),
        &f.registry.url(),
        "tall",
        "1",
        json!({"Cmd": ["sh"]}),
        extra,
    )
    .await;
    let tall = format!("{}/tall:1", f.registry.host());
    let out = f.rctl.ok(&[
        "run",
        "--rm",
        &tall,
        "sh",
        "-c",
        "ls /layers | wc -l; cat /layers/000 /layers/119",
    ]);
    assert_eq!(out, "120\n000119");
    assert_eq!(unpacked_layers(&f.rctl), 121);
    // busybox shares the bottom layer: unpacked once.
    f.rctl.ok(&["pull", &f.image()]);
    assert_eq!(unpacked_layers(&f.rctl), 121);
    // Removing the tall image keeps the shared layer for busybox.
    f.rctl.ok(&["rmi", &tall]);
    assert_eq!(unpacked_layers(&f.rctl), 1);
    assert_eq!(f.out(&[], &["echo", "still"]), "still\n");
    // A container keeps its image: rmi refuses, then (once it is gone) collects.
    let id = f.rctl.ok(&["create", &f.image(), "true"]);
    let out = f.rctl.run(&["rmi", &f.image()]);
    assert!(stderr(&out).contains("container"), "{}", stderr(&out));
    assert_eq!(unpacked_layers(&f.rctl), 1);
    f.rctl.ok(&["rm", id.trim()]);
    f.rctl.ok(&["rmi", &f.image()]);
    assert_eq!(unpacked_layers(&f.rctl), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn commit_diff_export_import_history() {
    let Some(f) = Fixture::new("commit_diff_export_import_history").await else {
        return;
    };
    let image = f.image();
    // Changes in a running container: added, changed, deleted.
    let id = f
        .rctl
        .ok(&[
            "run",
            "-d",
            "--name",
            "changed",
            &image,
            "sh",
            "-c",
            "echo new > /tmp/new; rm /etc/group; mkdir -p /opt/app; echo x > /opt/app/x; echo more >> /etc/passwd; touch /tmp/done; sleep 30",
        ])
        .trim()
        .to_string();
    let finished = || {
        f.rctl
            .ok(&["exec", "changed", "ls", "/tmp"])
            .contains("done")
    };
    assert!(wait_until(Duration::from_secs(5), finished));
    let diff = f.rctl.ok(&["diff", "changed"]);
    assert_eq!(
        diff.lines().collect::<Vec<_>>(),
        [
            "C /etc",
            "D /etc/group",
            "C /etc/passwd",
            "A /opt",
            "A /opt/app",
            "A /opt/app/x",
            "C /tmp",
            "A /tmp/done",
            "A /tmp/new"
        ],
        "{diff}"
    );
    // commit (the container keeps running), then run the committed image.
    let committed = format!("{}/committed:1", f.registry.host());
    let out = f.rctl.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/tmp/new\"]",
        "-c",
        "ENV COMMITTED=yes",
        "-m",
        "a message",
        "changed",
        &committed,
    ]);
    assert!(out.starts_with("sha256:"), "{out}");
    assert!(f.rctl.ok(&["ps"]).contains("changed"));
    assert_eq!(f.rctl.ok(&["run", "--rm", &committed]), "new\n");
    let out = f.rctl.ok(&[
        "run",
        "--rm",
        &committed,
        "sh",
        "-c",
        "test -e /etc/group || echo no-group; tail -1 /etc/passwd; cat /opt/app/x; echo $COMMITTED",
    ]);
    assert_eq!(out, "no-group\nmore\nx\nyes\n");
    let history = f.rctl.ok(&["history", &committed]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 3, "{history}");
    assert!(
        lines[0].starts_with("IMAGE") && lines[1].contains("a message"),
        "{history}"
    );
    assert!(lines[2].contains("busybox-static"), "{history}");
    // The committed image pushes and pulls into another store like any other.
    f.rctl.ok(&["push", &committed]);
    let other = Rctl::new();
    assert_eq!(other.ok(&["run", "--rm", &committed]), "new\n");

    // export: the container's whole file tree as a tar; import makes it an image again.
    let tar = tempfile::NamedTempFile::new().unwrap();
    f.rctl
        .ok(&["export", "-o", tar.path().to_str().unwrap(), "changed"]);
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(tar.path())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.lines().any(|l| l == "tmp/new") && listing.lines().any(|l| l == "bin/busybox"),
        "{listing}"
    );
    assert!(
        !listing.lines().any(|l| l == "etc/group"),
        "a deleted file was exported"
    );
    let imported = format!("{}/imported:1", f.registry.host());
    f.rctl.ok(&[
        "import",
        "-c",
        "CMD [\"cat\", \"/opt/app/x\"]",
        tar.path().to_str().unwrap(),
        &imported,
    ]);
    assert_eq!(f.rctl.ok(&["run", "--rm", &imported]), "x\n");
    f.rctl.ok(&["rm", "-f", &id]);
}
