//! rctl and TLS: a registry reached by a name that is not loopback by
//! name (this machine's hostname, which /etc/hosts maps to 127.0.0.1) is
//! spoken to over verified TLS: refused with an unknown CA, accepted with
//! `--ca-cert`, accepted unverified with `--insecure`; and an `--insecure`
//! host that speaks plain HTTP is reached after TLS fails, as docker does.

use e2e::api::push_image;
use e2e::rctl::Rctl;
use e2e::{http_client, require_tool, RegistryOptions, RegistryProcess};
use std::net::ToSocketAddrs;

/// This machine's hostname, when it resolves only to loopback addresses.
fn loopback_alias() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()?
        .trim()
        .to_string();
    if name.is_empty() || name == "localhost" || name.starts_with("127.") {
        return None;
    }
    let addrs: Vec<_> = (name.as_str(), 0).to_socket_addrs().ok()?.collect();
    (!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())).then_some(name)
}

#[tokio::test(flavor = "multi_thread")]
async fn verified_tls_ca_cert_and_insecure() {
    let test = "verified_tls_ca_cert_and_insecure";
    if !require_tool("openssl", test) {
        return;
    }
    let Some(alias) = loopback_alias() else {
        let why = "this machine's hostname does not resolve to a loopback address";
        if std::env::var_os("CI").is_some() {
            panic!("{test}: {why}");
        }
        eprintln!("SKIPPED {test}: {why}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = e2e::tls::make_certs(dir.path(), &[&alias]);
    let tls = RegistryProcess::start(RegistryOptions {
        extra_yaml: format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            certs.cert.display(),
            certs.key.display()
        ),
        ..RegistryOptions::default()
    });
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&certs.ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let (digest, _) = push_image(
        &client,
        &format!("https://127.0.0.1:{}", tls.port),
        "tls/app",
        "1",
        "amd64",
        &[vec![7; 1000]],
    )
    .await;

    let rctl = Rctl::new();
    let name = format!("{alias}:{}/tls/app:1", tls.port);
    let err = rctl.fails(&["digest", &name]);
    assert!(
        err.to_lowercase().contains("certificate"),
        "an unknown CA was not refused: {err}"
    );
    assert!(err.contains("--ca-cert"), "no hint: {err}");
    assert!(
        !err.contains("retrying"),
        "a certificate failure was retried: {err}"
    );
    let ca_cert = certs.ca.display().to_string();
    assert_eq!(
        rctl.ok(&["--ca-cert", &ca_cert, "digest", &name]).trim(),
        digest
    );
    rctl.ok(&["--ca-cert", &ca_cert, "pull", "-q", &name]);
    let insecure_host = format!("{alias}:{}", tls.port);
    assert_eq!(
        rctl.ok(&["--insecure", &insecure_host, "digest", &name])
            .trim(),
        digest
    );

    // A plain-HTTP registry under that name: refused unless --insecure.
    let plain = RegistryProcess::start(RegistryOptions::default());
    let (digest, _) = push_image(
        &http_client(),
        &plain.url(),
        "plain/app",
        "1",
        "amd64",
        &[vec![8; 1000]],
    )
    .await;
    let name = format!("{alias}:{}/plain/app:1", plain.port);
    rctl.fails(&["digest", &name]);
    let insecure_host = format!("{alias}:{}", plain.port);
    assert_eq!(
        rctl.ok(&["--insecure", &insecure_host, "digest", &name])
            .trim(),
        digest
    );
    let out = rctl.ok(&["--insecure", &insecure_host, "pull", &name]);
    assert!(out.contains("Pull complete"), "{out}");
}
