//! rctl through the docker token flow: `rctl login` earns an identity
//! (refresh) token and stores it in config.json; push and pull then get
//! scoped Bearer tokens with it (OAuth2 `grant_type=refresh_token`).
//! The token server is the test's own (tests/src/front.rs), a second
//! implementation of the token spec beside rregistry's built-in one
//! (tests/tests/auth_clients.rs), so rctl's flow is checked against a
//! server that is not ours; the registry behind it is the real one.

use e2e::api::push_image;
use e2e::front::TokenFront;
use e2e::rctl::Rctl;
use e2e::{http_client, RegistryOptions, RegistryProcess};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_flow_with_identity_token() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let layers: Vec<Vec<u8>> = (0..2u8).map(|i| vec![i; 70_000]).collect();
    let (digest, _) = push_image(
        &http_client(),
        &registry.url(),
        "bearer/app",
        "1",
        "amd64",
        &layers,
    )
    .await;
    let front = TokenFront::start(&registry.url(), "alice", "correct horse").await;
    let host = front.host();
    let rctl = Rctl::new();

    // Anonymous: the token endpoint refuses, so the pull fails cleanly.
    let err = rctl.fails(&["pull", &format!("{host}/bearer/app:1")]);
    assert!(err.contains("refused") || err.contains("401"), "{err}");

    let wrong = rctl.login(&host, "alice", "wrong");
    assert!(!wrong.status.success());
    let ok = rctl.login(&host, "alice", "correct horse");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let config: Value =
        serde_json::from_slice(&std::fs::read(rctl.docker_config.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        config["auths"][&host]["identitytoken"], "refresh-alice",
        "{config}"
    );
    assert!(
        !config.to_string().contains("correct horse"),
        "the password was stored beside the identity token"
    );

    // Pull, then push under another repository, both through scoped tokens.
    let source = format!("{host}/bearer/app:1");
    rctl.ok(&["pull", "-q", &source]);
    let target = format!("{host}/bearer/copy:2");
    rctl.ok(&["tag", &source, &target]);
    let out = rctl.ok(&["push", &target]);
    assert!(out.contains(&format!("2: digest: {digest}")), "{out}");
    let requests = front.token_requests();
    assert!(
        requests.iter().any(|s| s == "repository:bearer/app:pull"),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|s| s == "repository:bearer/copy:pull,push"),
        "{requests:?}"
    );
    // Tokens are cached per scope: far fewer token requests than registry requests.
    assert!(requests.len() <= 8, "a token per request: {requests:?}");
    assert_eq!(rctl.ok(&["digest", &target]).trim(), digest);
}
