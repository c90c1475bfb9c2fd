//! rregistry's authentication and access control, against the real binary:
//! the built-in token server and the access policy (every allowed and
//! denied case by status and error code), hostile tokens, htpasswd mode
//! with its reload, failures logged and slowed, and an external token
//! server whose keys are listed in `rootcertbundle` and `jwks`.
//! docker, rctl and skopeo through it are in `auth_clients.rs`.

use e2e::auth::{AuthRegistry, USERS};
use e2e::{require_tool, workspace_bin, RegistryOptions, RegistryProcess};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap_or(Value::Null);
    body["errors"][0]["code"].as_str().unwrap_or("").to_string()
}

/// Sends `method url` with `token` as Bearer (if any).
async fn send(
    http: &reqwest::Client,
    method: Method,
    url: impl reqwest::IntoUrl,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = http.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request")
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn builtin_token_server_and_policies() {
    if !require_tool("htpasswd", "builtin_token_server_and_policies") {
        return;
    }
    let reg = AuthRegistry::start_token(true);
    let http = reqwest::Client::new();
    let base = reg.registry.url();
    let realm = reg.realm();

    // No credentials: the version check and a pull answer the exact challenges.
    let response = send(&http, Method::GET, format!("{base}/v2/"), None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        format!("Bearer realm=\"{realm}\",service=\"{}\"", reg.service)
    );
    let response = send(
        &http,
        Method::GET,
        format!("{base}/v2/team-a/app/manifests/1"),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        format!(
            "Bearer realm=\"{realm}\",service=\"{}\",scope=\"repository:team-a/app:pull\"",
            reg.service
        )
    );
    assert_eq!(error_code(response).await, "UNAUTHORIZED");
    let response = send(
        &http,
        Method::POST,
        format!("{base}/v2/team-a/app/blobs/uploads/"),
        None,
    )
    .await;
    assert!(challenge(&response).ends_with("scope=\"repository:team-a/app:pull,push\""));

    // alice pushes to team-a; the token says what it grants.
    let (token, granted) = reg
        .token(
            Some(("alice", "alice-pw")),
            &["repository:team-a/app:pull,push"],
        )
        .await;
    assert_eq!(granted, "repository:team-a/app:pull,push");
    let digest = reg.push_manifest(&token, "team-a/app", "1").await;
    assert_eq!(
        reg.get_manifest(Some(&token), "team-a/app", "1").await,
        StatusCode::OK
    );

    // ...but not to team-b: the token grants nothing there, and using it
    // is 401 insufficient_scope with the scope to ask for.
    let (token_b, granted) = reg
        .token(
            Some(("alice", "alice-pw")),
            &["repository:team-b/app:pull,push"],
        )
        .await;
    assert_eq!(granted, "");
    let response = send(
        &http,
        Method::POST,
        format!("{base}/v2/team-b/app/blobs/uploads/"),
        Some(&token_b),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        format!(
            "Bearer realm=\"{realm}\",service=\"{}\",scope=\"repository:team-b/app:pull,push\",error=\"insufficient_scope\"",
            reg.service
        )
    );
    assert_eq!(error_code(response).await, "UNAUTHORIZED");
    // bob may push to team-b, and not pull team-a.
    let (bob, _) = reg
        .token(
            Some(("bob", "bob-pw")),
            &[
                "repository:team-b/app:pull,push",
                "repository:team-a/app:pull",
            ],
        )
        .await;
    reg.push_manifest(&bob, "team-b/app", "1").await;
    assert_eq!(
        reg.get_manifest(Some(&bob), "team-a/app", "1").await,
        StatusCode::UNAUTHORIZED
    );

    // Anonymous: pull public/* (with or without a token), nothing else.
    let (admin, _) = reg
        .token(
            Some(("admin", "admin-pw")),
            &["repository:public/tool:pull,push,delete"],
        )
        .await;
    reg.push_manifest(&admin, "public/tool", "1").await;
    assert_eq!(
        reg.get_manifest(None, "public/tool", "1").await,
        StatusCode::OK
    );
    let (anonymous, granted) = reg.token(None, &["repository:public/tool:pull,push"]).await;
    assert_eq!(granted, "repository:public/tool:pull");
    assert_eq!(
        reg.get_manifest(Some(&anonymous), "public/tool", "1").await,
        StatusCode::OK
    );
    let response = send(
        &http,
        Method::POST,
        format!("{base}/v2/public/tool/blobs/uploads/"),
        Some(&anonymous),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        reg.get_manifest(None, "team-a/app", "1").await,
        StatusCode::UNAUTHORIZED
    );

    // Delete only for admins.
    let (alice_delete, granted) = reg
        .token(
            Some(("alice", "alice-pw")),
            &["repository:team-a/app:delete"],
        )
        .await;
    assert_eq!(granted, "");
    let url = format!("{base}/v2/team-a/app/manifests/{digest}");
    let response = send(&http, Method::DELETE, &url, Some(&alice_delete)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&response).contains("scope=\"repository:team-a/app:delete\""));
    let (admin_delete, _) = reg
        .token(
            Some(("admin", "admin-pw")),
            &["repository:team-a/app:delete"],
        )
        .await;
    let response = send(&http, Method::DELETE, &url, Some(&admin_delete)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    // The catalog needs registry:catalog:*.
    let response = send(
        &http,
        Method::GET,
        format!("{base}/v2/_catalog"),
        Some(&token),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&response).contains("scope=\"registry:catalog:*\",error=\"insufficient_scope\"")
    );
    let (alice_catalog, granted) = reg
        .token(Some(("alice", "alice-pw")), &["registry:catalog:*"])
        .await;
    assert_eq!(granted, "");
    let response = send(
        &http,
        Method::GET,
        format!("{base}/v2/_catalog"),
        Some(&alice_catalog),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (admin_catalog, _) = reg
        .token(Some(("admin", "admin-pw")), &["registry:catalog:*"])
        .await;
    let response = send(
        &http,
        Method::GET,
        format!("{base}/v2/_catalog"),
        Some(&admin_catalog),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["repositories"],
        json!(["public/tool", "team-a/app", "team-b/app"])
    );

    // A cross-repository mount from a repository the caller may not pull
    // is a plain upload (202), revealing nothing.
    let layer = reg.layer_digest.clone();
    let response = http
        .post(format!(
            "{base}/v2/team-a/other/blobs/uploads/?mount={layer}&from=team-b/app"
        ))
        .bearer_auth(
            reg.token(
                Some(("alice", "alice-pw")),
                &["repository:team-a/other:pull,push"],
            )
            .await
            .0,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    // Bad credentials at the token endpoint: 401, logged with the user
    // (never the password), counted, and slowed when repeated.
    let mut last = Duration::ZERO;
    for attempt in 0..4 {
        let started = Instant::now();
        let response = http
            .get(format!(
                "{realm}?service={}&scope=repository:team-a/app:pull",
                reg.service
            ))
            .basic_auth("alice", Some("not-her-password"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
        last = started.elapsed();
    }
    assert!(
        last >= Duration::from_millis(350),
        "the fourth failure in a row was answered after {last:?}, not slowed"
    );
    let log = reg.registry.log();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request refused") && l.contains("alice"))
        .collect();
    assert!(refusals.len() >= 4, "refusals not logged:\n{log}");
    assert!(
        refusals.iter().any(|l| l.contains("client_failures=4")),
        "{log}"
    );
    assert!(
        !log.contains("not-her-password"),
        "a password reached the log"
    );
    let bob_denied = log
        .lines()
        .find(|l| l.contains("request refused") && l.contains("bob") && l.contains("team-a/app"))
        .unwrap_or_else(|| panic!("bob's denied pull is not logged:\n{log}"));
    assert!(bob_denied.contains("pull"), "{bob_denied}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_tokens_are_refused() {
    if !require_tool("htpasswd", "hostile_tokens_are_refused") {
        return;
    }
    let reg = AuthRegistry::start_token(false);
    let http = reqwest::Client::new();
    let base = reg.registry.url();
    let (good, _) = reg
        .token(Some(("alice", "alice-pw")), &["repository:team-a/app:pull"])
        .await;
    let url = format!("{base}/v2/team-a/app/tags/list");
    let status = |token: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let response = send(&http, Method::GET, &url, Some(&token)).await;
            (response.status(), challenge(&response))
        }
    };
    // The genuine token works (404: no such repository yet, but allowed).
    assert_eq!(status(good.clone()).await.0, StatusCode::NOT_FOUND);

    let key = reg.signing_key();
    let claims = |edit: &dyn Fn(&mut Value)| {
        let mut claims = json!({
            "iss": reg.issuer, "sub": "alice", "aud": reg.service,
            "exp": now() + 300, "nbf": now() - 5, "iat": now(), "jti": "x",
            "access": [{"type": "repository", "name": "team-a/app", "actions": ["pull"]}],
        });
        edit(&mut claims);
        claims
    };
    let sign = |claims: &Value, key: &EncodingKey| {
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, key).unwrap()
    };
    // Our own signature over good claims works: the forgeries below differ
    // from it in one thing each.
    assert_eq!(
        status(sign(&claims(&|_| {}), &key)).await.0,
        StatusCode::NOT_FOUND
    );

    let other_key = {
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        EncodingKey::from_ec_der(doc.as_ref())
    };
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let good_claims = claims(&|_| {});
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&good_claims)
    );
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good_claims,
        &EncodingKey::from_secret(&reg.public_key_point()),
    )
    .unwrap();
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let mut payload: Value = {
            use base64::Engine;
            serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(parts[1])
                    .unwrap(),
            )
            .unwrap()
        };
        payload["access"][0]["name"] = json!("team-b/app");
        payload["access"][0]["actions"] = json!(["pull", "push"]);
        format!("{}.{}.{}", parts[0], b64(&payload), parts[2])
    };
    let cases: Vec<(&str, String)> = vec![
        ("wrong signing key", sign(&good_claims, &other_key)),
        ("alg none", none),
        ("HS256 keyed with the public key", hs256),
        (
            "expired",
            sign(&claims(&|c| c["exp"] = json!(now() - 120)), &key),
        ),
        (
            "not yet valid",
            sign(&claims(&|c| c["nbf"] = json!(now() + 600)), &key),
        ),
        (
            "issued in the future",
            sign(&claims(&|c| c["iat"] = json!(now() + 600)), &key),
        ),
        (
            "wrong audience",
            sign(&claims(&|c| c["aud"] = json!("other-service")), &key),
        ),
        (
            "wrong issuer",
            sign(&claims(&|c| c["iss"] = json!("someone-else")), &key),
        ),
        ("tampered payload", tampered),
        ("garbage", "not.a.token".to_string()),
        ("empty", String::new()),
    ];
    for (name, token) in cases {
        let (code, header) = status(token).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{name}");
        assert!(
            header.contains("error=\"invalid_token\""),
            "{name}: {header}"
        );
    }
    // Valid tokens, too narrow: another repository, pull used to push.
    let other_repo = sign(
        &claims(&|c| c["access"][0]["name"] = json!("team-b/app")),
        &key,
    );
    let (code, header) = status(other_repo).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(header.contains("error=\"insufficient_scope\""), "{header}");
    let response = send(
        &http,
        Method::POST,
        format!("{base}/v2/team-a/app/blobs/uploads/"),
        Some(&good),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&response)
        .contains("scope=\"repository:team-a/app:pull,push\",error=\"insufficient_scope\""));
    // A refresh token is not an access token.
    let refresh = reg.refresh_token("alice", "alice-pw").await;
    assert_eq!(status(refresh).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn htpasswd_mode_with_reload_and_policy() {
    if !require_tool("htpasswd", "htpasswd_mode_with_reload_and_policy") {
        return;
    }
    let reg = AuthRegistry::start_htpasswd();
    let http = reqwest::Client::new();
    let base = reg.registry.url();
    let response = send(&http, Method::GET, format!("{base}/v2/"), None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&response), "Basic realm=\"test-realm\"");
    let get = |path: &str, user: &str, password: &str| {
        http.get(format!("{base}{path}"))
            .basic_auth(user, Some(password))
            .send()
    };
    let ok = get("/v2/", "alice", "alice-pw").await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let wrong = get("/v2/", "alice", "wrong").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // Signed in, but the policy refuses: 403 DENIED.
    let response = get("/v2/team-b/app/tags/list", "alice", "alice-pw")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(response).await, "DENIED");

    // A user added to the file is accepted without a restart.
    let carol = get("/v2/", "carol", "carol-pw").await.unwrap();
    assert_eq!(carol.status(), StatusCode::UNAUTHORIZED);
    reg.add_user("carol", "carol-pw");
    let mut accepted = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !accepted && Instant::now() < deadline {
        let response = get("/v2/", "carol", "carol-pw").await.unwrap();
        accepted = response.status() == StatusCode::OK;
        if !accepted {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(
        accepted,
        "a user added to the htpasswd file was not accepted"
    );
}

#[test]
fn non_bcrypt_htpasswd_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    std::fs::write(&file, "alice:$apr1$Qx1uDq8E$H0QKjUMqDMqS4Zt5GdSO51\n").unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{}\nauth:\n  htpasswd:\n    realm: r\n    path: {}\n",
            dir.path().join("data").display(),
            e2e::free_port(),
            file.display()
        ),
    )
    .unwrap();
    let out = Command::new(workspace_bin("rregistry"))
        .arg("serve")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MD5") && stderr.contains("htpasswd -B") && stderr.contains("alice"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn external_token_server_keys_are_honoured() {
    if !require_tool("openssl", "external_token_server_keys_are_honoured") {
        return;
    }
    let external = e2e::auth::ExternalTokenServer::start().await;
    let registry = RegistryProcess::start(RegistryOptions {
        extra_yaml: external.config_yaml(),
        ..Default::default()
    });
    let http = reqwest::Client::new();
    let base = registry.url();
    // RS256 from the certificate's key, EdDSA from the JWKS key.
    for algorithm in [Algorithm::RS256, Algorithm::EdDSA] {
        let token = external.sign(algorithm, "repository:ext/app:pull", "external-service");
        let response = send(
            &http,
            Method::GET,
            format!("{base}/v2/ext/app/tags/list"),
            Some(&token),
        )
        .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{algorithm:?}");
        let wrong_audience = external.sign(algorithm, "repository:ext/app:pull", "elsewhere");
        let response = send(
            &http,
            Method::GET,
            format!("{base}/v2/ext/app/tags/list"),
            Some(&wrong_audience),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{algorithm:?}");
    }
    // The whole conformance run through the external server's tokens.
    let out = Command::new(workspace_bin("oci-conformance"))
        .arg(&base)
        .args(["--username", "anyone", "--password", "external-pw"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert!(external.tokens_issued() > 0);
}

#[test]
fn conformance_passes_with_token_auth() {
    if !require_tool("htpasswd", "conformance_passes_with_token_auth") {
        return;
    }
    let reg = AuthRegistry::start_token(false);
    let out = Command::new(workspace_bin("oci-conformance"))
        .arg(reg.registry.url())
        .env("OCI_USERNAME", "admin")
        .env("OCI_PASSWORD", USERS[2].1)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    // Without credentials the same run fails: auth is really on.
    let out = Command::new(workspace_bin("oci-conformance"))
        .arg(reg.registry.url())
        .env_remove("OCI_USERNAME")
        .env_remove("OCI_PASSWORD")
        .output()
        .unwrap();
    assert!(!out.status.success());
}
