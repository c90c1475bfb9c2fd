//! docker, rctl and skopeo against rregistry's built-in token server and
//! its policy (see `e2e::auth`): login, push, pull, logout, and the pull
//! refused after logout.

use e2e::auth::AuthRegistry;
use e2e::docker::{busybox_context, Dockerd};
use e2e::rctl::Rctl;
use e2e::{require_root, require_tool};
use serde_json::Value;
use std::process::Command;

#[test]
fn docker_login_push_pull_logout() {
    if !require_root("docker_login_push_pull_logout")
        || !require_tool("dockerd", "docker_login_push_pull_logout")
        || !require_tool("htpasswd", "docker_login_push_pull_logout")
    {
        return;
    }
    let reg = AuthRegistry::start_token(false);
    let host = reg.registry.host();
    let dockerd = Dockerd::start();
    let image = format!("{host}/team-a/hello:1");
    let context = busybox_context(
        &[("greeting", "hello from team a\n")],
        &["/bin/busybox", "cat", "/greeting"],
    );
    dockerd.docker_ok(&[
        "build",
        "-q",
        "-t",
        &image,
        &context.path().to_string_lossy(),
    ]);

    // Not logged in: the push is refused.
    let out = dockerd.docker(&["push", &image]);
    assert!(!out.status.success(), "push without login succeeded");

    let out = dockerd.docker(&["login", &host, "-u", "alice", "-p", "wrong"]);
    assert!(
        !out.status.success(),
        "login with a wrong password succeeded"
    );
    let out = dockerd.docker_ok(&["login", &host, "-u", "alice", "-p", "alice-pw"]);
    assert!(out.contains("Login Succeeded"), "{out}");
    // docker keeps the refresh token the OAuth2 POST gave, not the password.
    assert_identity_token_kept(&dockerd.cli_config_dir(), &host);
    dockerd.docker_ok(&["push", &image]);
    // team-b is not alice's.
    let other = format!("{host}/team-b/hello:1");
    dockerd.docker_ok(&["tag", &image, &other]);
    let out = dockerd.docker(&["push", &other]);
    assert!(!out.status.success(), "alice pushed to team-b");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("denied")
            || stderr.contains("unauthorized")
            || stderr.contains("insufficient"),
        "{stderr}"
    );

    dockerd.docker_ok(&["rmi", &image, &other]);
    dockerd.docker_ok(&["pull", &image]);
    let out = dockerd.docker_ok(&["run", "--rm", "--network", "none", &image]);
    assert_eq!(out, "hello from team a\n");

    dockerd.docker_ok(&["logout", &host]);
    dockerd.docker_ok(&["rmi", &image]);
    let out = dockerd.docker(&["pull", &image]);
    assert!(!out.status.success(), "pull after logout succeeded");
}

#[test]
fn rctl_and_skopeo_with_credentials() {
    if !require_tool("htpasswd", "rctl_and_skopeo_with_credentials")
        || !require_tool("skopeo", "rctl_and_skopeo_with_credentials")
    {
        return;
    }
    let reg = AuthRegistry::start_token(false);
    let host = reg.registry.host();
    let rctl = Rctl::new();
    let (admin, _) = tokio_block(reg.token(
        Some(("admin", "admin-pw")),
        &["repository:team-a/source:pull,push"],
    ));
    tokio_block(reg.push_image(&admin, "team-a/source", "1", &e2e::images::busybox_layer()));
    let image = format!("{host}/team-a/rctl:1");

    // skopeo pushes with --dest-creds; without, it is refused.
    let skopeo = |args: &[&str]| {
        Command::new("skopeo")
            .args(args)
            .output()
            .expect("run skopeo")
    };
    let src = format!("docker://{host}/team-a/source:1");
    let dest = format!("docker://{image}");
    let out = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &src,
        &dest,
    ]);
    assert!(!out.status.success(), "skopeo copied without credentials");
    let out = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        "alice:alice-pw",
        "--dest-creds",
        "alice:alice-pw",
        &src,
        &dest,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:alice-pw",
        &dest,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspected: Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    assert_eq!(inspected["Name"], format!("{host}/team-a/rctl"));
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "bob:bob-pw",
        &dest,
    ]);
    assert!(!out.status.success(), "bob read team-a");

    // rctl: refused before login, then login (an identity token is kept,
    // not the password), pull, push, logout, refused again.
    let err = rctl.fails(&["pull", &image]);
    assert!(
        err.contains("401")
            || err.contains("denied")
            || err.contains("unauthorized")
            || err.contains("refused"),
        "{err}"
    );
    let wrong = rctl.login(&host, "alice", "wrong");
    assert!(!wrong.status.success());
    let ok = rctl.login(&host, "alice", "alice-pw");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_identity_token_kept(&rctl.docker_config, &host);
    rctl.ok(&["pull", "-q", &image]);
    let copy = format!("{host}/team-a/rctl-copy:2");
    rctl.ok(&["tag", &image, &copy]);
    rctl.ok(&["push", &copy]);
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "admin:admin-pw",
        &format!("docker://{copy}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // alice may not push to team-b.
    let denied = format!("{host}/team-b/rctl:1");
    rctl.ok(&["tag", &image, &denied]);
    rctl.fails(&["push", &denied]);

    rctl.ok(&["logout", &host]);
    rctl.ok(&["rmi", &image]);
    rctl.fails(&["pull", &image]);
}

fn tokio_block<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// The login for `host` in `dir/config.json` holds an identity token (the
/// token server's refresh token) and not alice's password.
fn assert_identity_token_kept(dir: &std::path::Path, host: &str) {
    let text = std::fs::read_to_string(dir.join("config.json")).expect("config.json");
    let config: Value = serde_json::from_str(&text).expect("config JSON");
    assert!(
        config["auths"][host]["identitytoken"]
            .as_str()
            .is_some_and(|t| t.len() > 20),
        "{config}"
    );
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode("alice:alice-pw");
    assert!(
        !text.contains("alice-pw") && !text.contains(&encoded),
        "the password was stored: {text}"
    );
}
