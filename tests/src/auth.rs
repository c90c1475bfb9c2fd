//! Registries with auth on, for the auth tests:
//!
//! - [`AuthRegistry`]: the real rregistry with its built-in token server
//!   (or htpasswd mode), users made with the real `htpasswd -B`, and a
//!   policy: `alice` pushes `team-a/**`, `bob` pushes `team-b/**`, the
//!   `admins` group (`admin`) may do anything including delete and the
//!   catalog, signed-in users pull and push `public/**`, anonymous
//!   callers pull `public/**`.
//! - [`ExternalTokenServer`]: a small token server run inside the test,
//!   signing RS256 with a key whose certificate (made by `openssl`) the
//!   registry lists in `rootcertbundle`, and EdDSA with a key listed in a
//!   `jwks` file. It grants whatever is asked to anyone.

use crate::{free_port, http_client, sha256, RegistryOptions, RegistryProcess};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub const USERS: [(&str, &str); 3] = [
    ("alice", "alice-pw"),
    ("bob", "bob-pw"),
    ("admin", "admin-pw"),
];

const POLICY: &str = "  access:
    groups:
      admins: [admin]
    rules:
      - repositories: [\"**\"]
        groups: [admins]
        actions: [\"*\"]
      - catalog: true
        groups: [admins]
        actions: [\"*\"]
      - repositories: [\"team-a/**\"]
        users: [alice]
        actions: [pull, push]
      - repositories: [\"team-b/**\"]
        users: [bob]
        actions: [pull, push]
      - repositories: [\"public/**\"]
        authenticated: true
        actions: [pull, push]
      - repositories: [\"public/**\"]
        anonymous: true
        actions: [pull]
";

pub struct AuthRegistry {
    pub registry: RegistryProcess,
    pub service: String,
    pub issuer: String,
    pub key_path: PathBuf,
    pub htpasswd: PathBuf,
    /// The layer every [`AuthRegistry::push_manifest`] pushes.
    pub layer_digest: String,
    _dir: tempfile::TempDir,
}

/// Writes an htpasswd file of [`USERS`] with `htpasswd -B`.
pub fn write_htpasswd(path: &Path) {
    for (i, (user, password)) in USERS.iter().enumerate() {
        let mut command = Command::new("htpasswd");
        command.arg("-bB");
        if i == 0 {
            command.arg("-c");
        }
        let status = command
            .arg(path)
            .arg(user)
            .arg(password)
            .output()
            .expect("run htpasswd");
        assert!(status.status.success(), "htpasswd failed");
    }
}

impl AuthRegistry {
    /// rregistry with the built-in token server and the policy.
    pub fn start_token(capture_log: bool) -> AuthRegistry {
        let dir = tempfile::tempdir().expect("temp dir");
        let htpasswd = dir.path().join("htpasswd");
        write_htpasswd(&htpasswd);
        let key_path = dir.path().join("keys/token.pem");
        let port = free_port();
        let yaml = format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{port}/auth/token\n    service: test-service\n    issuer: test-issuer\n    issue:\n      key: {}\n      htpasswd: {}\n{POLICY}",
            key_path.display(),
            htpasswd.display()
        );
        let registry = RegistryProcess::start(RegistryOptions {
            port: Some(port),
            extra_yaml: yaml,
            capture_log,
            ..Default::default()
        });
        AuthRegistry {
            registry,
            service: "test-service".into(),
            issuer: "test-issuer".into(),
            key_path,
            htpasswd,
            layer_digest: sha256(LAYER),
            _dir: dir,
        }
    }

    /// rregistry in htpasswd mode with the policy.
    pub fn start_htpasswd() -> AuthRegistry {
        let dir = tempfile::tempdir().expect("temp dir");
        let htpasswd = dir.path().join("htpasswd");
        write_htpasswd(&htpasswd);
        let yaml = format!(
            "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n{POLICY}",
            htpasswd.display()
        );
        let registry = RegistryProcess::start(RegistryOptions {
            extra_yaml: yaml,
            ..Default::default()
        });
        AuthRegistry {
            registry,
            service: String::new(),
            issuer: String::new(),
            key_path: PathBuf::new(),
            htpasswd,
            layer_digest: sha256(LAYER),
            _dir: dir,
        }
    }

    pub fn realm(&self) -> String {
        format!("{}/auth/token", self.registry.url())
    }

    /// Adds a user to the htpasswd file (as an admin would, in place).
    pub fn add_user(&self, user: &str, password: &str) {
        let out = Command::new("htpasswd")
            .arg("-bB")
            .arg(&self.htpasswd)
            .arg(user)
            .arg(password)
            .output()
            .expect("run htpasswd");
        assert!(out.status.success());
    }

    /// A token from the built-in endpoint (GET), and the scope it grants.
    pub async fn token(
        &self,
        credentials: Option<(&str, &str)>,
        scopes: &[&str],
    ) -> (String, String) {
        let mut request = http_client()
            .get(self.realm())
            .query(&[("service", &self.service)]);
        for scope in scopes {
            request = request.query(&[("scope", scope)]);
        }
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.expect("token request");
        assert_eq!(response.status(), 200, "token request for {credentials:?}");
        let body: Value = response.json().await.expect("token JSON");
        (
            body["token"].as_str().expect("token").to_string(),
            body["scope"].as_str().unwrap_or("").to_string(),
        )
    }

    /// A refresh token from `POST` with `grant_type=password`.
    pub async fn refresh_token(&self, user: &str, password: &str) -> String {
        let response = http_client()
            .post(self.realm())
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
                ("service", &self.service),
                ("access_type", "offline"),
                ("client_id", "e2e"),
            ])
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("token JSON");
        body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_string()
    }

    /// Pushes a one-layer image as `repo:tag` with `token`; its digest.
    pub async fn push_manifest(&self, token: &str, repo: &str, tag: &str) -> String {
        self.push_image(token, repo, tag, LAYER).await
    }

    /// Pushes an image of one uncompressed tar `layer`; its digest.
    pub async fn push_image(&self, token: &str, repo: &str, tag: &str, layer: &[u8]) -> String {
        let http = http_client();
        let base = self.registry.url();
        let config = json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
        })
        .to_string();
        let config = config.as_bytes();
        for blob in [config, layer] {
            let started = http
                .post(format!("{base}/v2/{repo}/blobs/uploads/"))
                .bearer_auth(token)
                .send()
                .await
                .expect("start upload");
            assert_eq!(started.status(), 202, "starting an upload to {repo}");
            let location = started.headers()["location"]
                .to_str()
                .expect("location")
                .to_string();
            let url = if location.starts_with('/') {
                format!("{base}{location}")
            } else {
                location
            };
            let separator = if url.contains('?') { '&' } else { '?' };
            let done = http
                .put(format!("{url}{separator}digest={}", sha256(blob)))
                .bearer_auth(token)
                .body(blob.to_vec())
                .send()
                .await
                .expect("finish upload");
            assert_eq!(done.status(), 201, "finishing an upload to {repo}");
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(layer), "size": layer.len()}],
        })
        .to_string();
        let response = http
            .put(format!("{base}/v2/{repo}/manifests/{tag}"))
            .bearer_auth(token)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
            .expect("put manifest");
        assert_eq!(response.status(), 201, "putting the manifest of {repo}");
        sha256(manifest.as_bytes())
    }

    /// The status of `GET` of `repo:tag`, with or without a token.
    pub async fn get_manifest(
        &self,
        token: Option<&str>,
        repo: &str,
        tag: &str,
    ) -> reqwest::StatusCode {
        let mut request = http_client()
            .get(format!("{}/v2/{repo}/manifests/{tag}", self.registry.url()))
            .header("accept", "application/vnd.oci.image.manifest.v1+json");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("get manifest").status()
    }

    /// The built-in server's signing key, read from the file it saved.
    pub fn signing_key(&self) -> EncodingKey {
        EncodingKey::from_ec_der(&self.pkcs8())
    }

    /// The uncompressed public point of the signing key.
    pub fn public_key_point(&self) -> Vec<u8> {
        use ring::signature::KeyPair;
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &self.pkcs8(),
            &ring::rand::SystemRandom::new(),
        )
        .expect("P-256 key");
        pair.public_key().as_ref().to_vec()
    }

    fn pkcs8(&self) -> Vec<u8> {
        use base64::Engine;
        let text = std::fs::read_to_string(&self.key_path).expect("token key file");
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("PEM body")
    }
}

const LAYER: &[u8] = b"an auth test layer, not a real tar";

/// A token server of the test's own, trusted by rootcertbundle and jwks.
pub struct ExternalTokenServer {
    pub port: u16,
    rsa: Arc<EncodingKey>,
    ed: EncodingKey,
    cert: PathBuf,
    jwks: PathBuf,
    issued: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

const EXTERNAL_ISSUER: &str = "external-issuer";
const EXTERNAL_SERVICE: &str = "external-service";

impl ExternalTokenServer {
    pub async fn start() -> ExternalTokenServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let key_pem = dir.path().join("rsa.pem");
        let cert = dir.path().join("cert.pem");
        let key_der = dir.path().join("rsa.der");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=external token server",
            "-days",
            "2",
            "-keyout",
            &path(&key_pem),
            "-out",
            &path(&cert),
        ]);
        run(&[
            "rsa",
            "-in",
            &path(&key_pem),
            "-traditional",
            "-outform",
            "DER",
            "-out",
            &path(&key_der),
        ]);
        let rsa = EncodingKey::from_rsa_der(&std::fs::read(&key_der).expect("rsa der"));

        let rng = ring::rand::SystemRandom::new();
        let ed_doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("ed25519 key");
        let ed_pair =
            ring::signature::Ed25519KeyPair::from_pkcs8(ed_doc.as_ref()).expect("ed25519");
        use base64::Engine;
        use ring::signature::KeyPair;
        let x =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ed_pair.public_key().as_ref());
        let jwks = dir.path().join("jwks.json");
        std::fs::write(
            &jwks,
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "ed-1", "use": "sig"}]}).to_string(),
        )
        .expect("write jwks");
        let ed = EncodingKey::from_ed_der(ed_doc.as_ref());

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let issued = Arc::new(AtomicUsize::new(0));
        let rsa = Arc::new(rsa);
        let app = {
            let (rsa, issued) = (rsa.clone(), issued.clone());
            axum::Router::new().route(
                "/token",
                axum::routing::get(move |query: axum::extract::RawQuery| {
                    let (rsa, issued) = (rsa.clone(), issued.clone());
                    async move {
                        let query = query.0.unwrap_or_default();
                        let scopes: Vec<String> = query
                            .split('&')
                            .filter_map(|pair| pair.strip_prefix("scope="))
                            .map(|s| {
                                s.replace("%3A", ":")
                                    .replace("%2F", "/")
                                    .replace("%2C", ",")
                            })
                            .collect();
                        issued.fetch_add(1, Ordering::SeqCst);
                        let token = sign(&rsa, Algorithm::RS256, &scopes, EXTERNAL_SERVICE, None);
                        (
                            [("content-type", "application/json")],
                            json!({"token": token, "expires_in": 300}).to_string(),
                        )
                    }
                }),
            )
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ExternalTokenServer {
            port,
            rsa,
            ed,
            cert,
            jwks,
            issued,
            task,
            _dir: dir,
        }
    }

    /// The registry's `auth` section trusting this server.
    pub fn config_yaml(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {EXTERNAL_SERVICE}\n    issuer: {EXTERNAL_ISSUER}\n    rootcertbundle: {}\n    jwks: {}\n",
            self.port,
            self.cert.display(),
            self.jwks.display()
        )
    }

    /// A token granting `scope` for `audience`, signed with the RSA or Ed25519 key.
    pub fn sign(&self, algorithm: Algorithm, scope: &str, audience: &str) -> String {
        let key = match algorithm {
            Algorithm::EdDSA => &self.ed,
            _ => &*self.rsa,
        };
        let kid = (algorithm == Algorithm::EdDSA).then_some("ed-1");
        sign(key, algorithm, &[scope.to_string()], audience, kid)
    }

    pub fn tokens_issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }
}

impl Drop for ExternalTokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn sign(
    key: &EncodingKey,
    algorithm: Algorithm,
    scopes: &[String],
    audience: &str,
    kid: Option<&str>,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let access: Vec<Value> = scopes
        .iter()
        .filter_map(|scope| {
            let (kind, rest) = scope.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let claims = json!({
        "iss": EXTERNAL_ISSUER, "sub": "external-user", "aud": audience,
        "exp": now + 300, "nbf": now - 5, "iat": now, "jti": format!("{now}-{}", access.len()),
        "access": access,
    });
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, &claims, key).expect("sign token")
}
