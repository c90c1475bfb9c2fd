//! The server as an operator meets it: zero-config start, config file
//! (flag or positional) and REGISTRY_* overrides, startup errors that name
//! the key, extra headers, TLS, and graceful drain on SIGTERM.

use e2e::process::wait_until;
use e2e::{free_port, http_client, sha256, workspace_bin, Child, RegistryOptions, RegistryProcess};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn rregistry() -> Command {
    let mut command = Command::new(workspace_bin("rregistry"));
    command.env_remove("RUST_LOG");
    for (key, _) in std::env::vars() {
        if key.starts_with("REGISTRY_") {
            command.env_remove(key);
        }
    }
    command
}

fn answers(host: &str) -> bool {
    e2e::registry::probe(&format!("http://{host}/v2/"))
}

#[test]
fn zero_config_start_uses_data_dir_and_env_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No file at all: defaults plus one override for a free port.
    let mut child = Child::spawn(
        "rregistry",
        rregistry()
            .arg("serve")
            .current_dir(dir.path())
            .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .stderr(Stdio::null()),
    );
    assert!(wait_until(Duration::from_secs(10), || answers(&format!(
        "127.0.0.1:{port}"
    ))));
    assert!(
        dir.path().join("data").is_dir(),
        "default ./data not created"
    );
    let status = child.stop(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM did not stop it cleanly: {status:?}"
    );
}

#[test]
fn config_by_flag_and_positional_and_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let root = dir.path().join("store");
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:1\n", root.display()),
    )
    .unwrap();
    for flag in [Some("--config"), None] {
        let mut command = rregistry();
        command.arg("serve");
        if let Some(flag) = flag {
            command.arg(flag);
        }
        command
            .arg(&config)
            .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .stderr(Stdio::null());
        let mut child = Child::spawn("rregistry", &mut command);
        assert!(
            wait_until(Duration::from_secs(10), || answers(&format!(
                "127.0.0.1:{port}"
            ))),
            "{flag:?}"
        );
        assert!(
            root.join("_tmp").is_dir(),
            "rootdirectory from the file not used"
        );
        child.stop(Duration::from_secs(10));
    }
}

#[test]
fn bad_configuration_is_a_startup_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("storage:\n  filesystem:\n    rootdir: /x\n", "rootdir"),
        ("http:\n  addr: nowhere\n", "http.addr"),
        (
            "storage:\n  delete:\n    enabled: perhaps\n",
            "storage.delete.enabled",
        ),
        ("log:\n  level: chatty\n", "log.level"),
        (
            "storage:\n  maintenance:\n    uploadpurging:\n      interval: soon\n",
            "interval",
        ),
        ("version: 0.1\nauth:\n  htpasswd:\n    realm: x\n", "auth"),
    ];
    for (yaml, key) in cases {
        let config = dir.path().join("bad.yml");
        std::fs::write(&config, yaml).unwrap();
        let out = rregistry().arg("serve").arg(&config).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{yaml:?} gave {stderr}");
        assert!(
            stderr.contains(key),
            "error for {yaml:?} does not name {key}: {stderr}"
        );
    }
    let out = rregistry()
        .arg("serve")
        .env("REGISTRY_STORAGE_DELETE_ENABLED", "sometimes")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("storage.delete.enabled")
            && stderr.contains("REGISTRY_STORAGE_DELETE_ENABLED"),
        "{stderr}"
    );
    let out = rregistry()
        .arg("serve")
        .arg(dir.path().join("missing.yml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yml"));
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_headers_are_sent() {
    let registry = RegistryProcess::start(RegistryOptions {
        extra_yaml:
            "  headers:\n    X-Content-Type-Options: [nosniff]\n    X-Team: [registry, platform]\n"
                .into(),
        ..RegistryOptions::default()
    });
    let r = http_client()
        .get(format!("{}/v2/", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let team: Vec<_> = r
        .headers()
        .get_all("x-team")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(team, vec!["registry", "platform"]);
    let r = http_client()
        .get(format!("{}/v2/nothing/here/tags/list", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.headers()["x-content-type-options"],
        "nosniff",
        "headers missing on errors"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_tls_with_the_configured_certificate() {
    if !e2e::require_tool("openssl", "serves_tls_with_the_configured_certificate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = e2e::tls::make_certs(dir.path(), &[]);
    let (cert, key, ca) = (certs.cert, certs.key, certs.ca);
    let registry = RegistryProcess::start(RegistryOptions {
        extra_yaml: format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            cert.display(),
            key.display()
        ),
        port: None,
        ..RegistryOptions::default()
    });
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{}", registry.port);
    let r = client.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let data = b"over tls".to_vec();
    let digest = sha256(&data);
    let r = client
        .post(format!("{base}/v2/tls/repo/blobs/uploads/?digest={digest}"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let got = client
        .get(format!("{base}/v2/tls/repo/blobs/{digest}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], &data[..]);
    // Plain HTTP to the TLS port gets no registry answer.
    assert!(http_client()
        .get(format!("http://127.0.0.1:{}/v2/", registry.port))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true));
}

#[test]
fn sigterm_drains_an_in_flight_upload() {
    let mut registry = RegistryProcess::start(RegistryOptions::default());
    let data = vec![5u8; 4 * 1024 * 1024];
    let digest = sha256(&data);
    let mut stream = std::net::TcpStream::connect(registry.host()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /v2/drain/me/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        data.len()
    )
    .unwrap();
    stream.write_all(&data[..data.len() / 2]).unwrap();
    // The server is writing the body (its aligned writer flushes whole MiBs).
    assert!(
        e2e::process::wait_until(Duration::from_secs(20), || registry.temp_files().1
            >= 1024 * 1024),
        "the server never started writing the body"
    );
    registry.child.signal("TERM");
    // New connections are refused while the old request finishes.
    assert!(
        e2e::process::wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(registry.host()).is_err()
        }),
        "still accepting after SIGTERM"
    );
    stream.write_all(&data[data.len() / 2..]).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "in-flight upload not completed: {response}"
    );
    let status = registry.child.wait_timeout(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "did not exit cleanly after draining: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_mode_refuses_writes_and_serves_reads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let data = b"written before read-only".to_vec();
    let digest = sha256(&data);
    {
        let writable = RegistryProcess::start(RegistryOptions {
            root: Some(root.clone()),
            ..RegistryOptions::default()
        });
        e2e::api::push_blob(&http_client(), &writable.url(), "ro/repo", &data).await;
    }
    let registry = RegistryProcess::start(RegistryOptions {
        root: Some(root),
        storage_yaml: "  maintenance:\n    readonly:\n      enabled: true\n".into(),
        ..RegistryOptions::default()
    });
    let client = http_client();
    let r = client
        .get(format!("{}/v2/ro/repo/blobs/{digest}", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), data);
    let r = client
        .post(format!("{}/v2/ro/repo/blobs/uploads/", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.text().await.unwrap().contains("UNSUPPORTED"));
    let r = client
        .delete(format!("{}/v2/ro/repo/blobs/{digest}", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

#[test]
fn drain_timeout_bounds_shutdown() {
    let mut registry = RegistryProcess::start(RegistryOptions {
        extra_yaml: "  draintimeout: 1s\n".into(),
        ..RegistryOptions::default()
    });
    // A request whose body never finishes.
    let mut stream = std::net::TcpStream::connect(registry.host()).unwrap();
    write!(
        stream,
        "POST /v2/slow/client/blobs/uploads/?digest={} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc",
        sha256(b"never")
    )
    .unwrap();
    // The request reached its handler: the blob's temp file exists.
    assert!(
        e2e::process::wait_until(Duration::from_secs(20), || registry.temp_files().0 > 0),
        "the request never reached the server"
    );
    let started = std::time::Instant::now();
    registry.child.signal("TERM");
    let status = registry.child.wait_timeout(Duration::from_secs(15));
    assert!(
        status.is_some(),
        "still running 15 s after SIGTERM with a 1 s drain timeout"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "exited before the drain timeout"
    );
    drop(stream);
}
