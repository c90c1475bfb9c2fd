//! The HTTP transport, in layers around `reqwest`: retry (connection
//! errors, 408, 429, 5xx, with backoff) around auth (Basic, and the Bearer
//! token flow with tokens cached per host and scope) around the request.
//!
//! - [`challenge`]: `WWW-Authenticate` parsing.
//! - [`token`]: the token endpoint.
//! - [`retry`]: the retry policy.

pub mod challenge;
pub mod retry;
pub mod token;

use crate::credentials::{Credential, CredentialError, CredentialStore};
use bytes::Bytes;
use challenge::Challenge;
use reqwest::{Method, Response};
use retry::RetryPolicy;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{method} {url}: {message}")]
    Http {
        method: String,
        url: String,
        message: String,
    },
    /// No answer: the connection failed or broke (worth another try).
    #[error("{method} {url}: {message}")]
    Connection {
        method: String,
        url: String,
        message: String,
    },
    #[error("token endpoint {realm}: {message}")]
    Token { realm: String, message: String },
    #[error("authentication failed: {message}")]
    Unauthorized { message: String },
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("reading {path}: {message}")]
    File { path: PathBuf, message: String },
}

impl TransportError {
    /// Whether the request got no answer because of the connection.
    pub fn is_connection(&self) -> bool {
        matches!(self, TransportError::Connection { .. })
    }

    /// What went wrong, without the request.
    pub fn cause(&self) -> String {
        match self {
            TransportError::Http { message, .. } | TransportError::Connection { message, .. } => {
                message.clone()
            }
            other => other.to_string(),
        }
    }
}

/// A request body that can be sent again when a request is retried.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Bytes(Bytes),
    /// `len` bytes of a file from `offset`, re-read on each attempt.
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
}

/// One request: the scope says which token it needs under Bearer auth
/// (`repository:NAME:pull`, `registry:catalog:*`).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    pub scope: Option<String>,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>, scope: Option<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Body::Empty,
            scope,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Body) -> Request {
        self.body = body;
        self
    }
}

/// How hosts are reached.
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// Hosts reached over plain HTTP or unverified TLS (`--insecure`).
    pub insecure_hosts: HashSet<String>,
    /// Extra CA certificates (PEM) trusted beside the system roots (`--ca-cert`).
    pub ca_certs: Vec<PathBuf>,
    pub retry: RetryPolicy,
}

/// The transport shared by every registry call of one `rctl` run.
pub struct Transport {
    http: reqwest::Client,
    /// Accepts unverified certificates; used only for `insecure_hosts`.
    unverified: reqwest::Client,
    options: TransportOptions,
    credentials: CredentialStore,
    /// Logins given for this run only (`rctl login` checking a password).
    given: Mutex<HashMap<String, Credential>>,
    /// `Authorization` values by `host` (Basic) or `host scope` (Bearer).
    cache: Mutex<HashMap<String, String>>,
    /// Held while a challenge is answered, so concurrent requests of one
    /// scope wait for one token instead of each fetching their own.
    answering: tokio::sync::Mutex<()>,
    /// `--insecure` hosts found to speak plain HTTP (TLS is tried first, as docker does).
    plain_http: Mutex<HashSet<String>>,
}

/// Whether a host is a loopback address, reached over plain HTTP by default.
pub fn is_loopback(host: &str) -> bool {
    let name = host
        .rsplit_once(':')
        .map(|(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
        .unwrap_or(host);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost" || name == "::1" || name.starts_with("127.")
}

fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("")
        .to_string()
}

impl Transport {
    pub fn new(
        options: TransportOptions,
        credentials: CredentialStore,
    ) -> Result<Transport, TransportError> {
        let http = Self::client(&options, false)?;
        let unverified = Self::client(&options, true)?;
        Ok(Transport {
            http,
            unverified,
            options,
            credentials,
            given: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            answering: tokio::sync::Mutex::new(()),
            plain_http: Mutex::new(HashSet::new()),
        })
    }

    fn client(
        options: &TransportOptions,
        unverified: bool,
    ) -> Result<reqwest::Client, TransportError> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::limited(10))
            .connect_timeout(std::time::Duration::from_secs(15))
            .danger_accept_invalid_certs(unverified);
        for path in &options.ca_certs {
            let pem = std::fs::read(path).map_err(|e| TransportError::File {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| TransportError::File {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder.build().map_err(|e| TransportError::Http {
            method: String::new(),
            url: String::new(),
            message: e.to_string(),
        })
    }

    /// The client for `url`: unverified TLS only for hosts named insecure.
    fn http_for(&self, url: &str) -> &reqwest::Client {
        if self.options.insecure_hosts.contains(&host_of(url)) {
            &self.unverified
        } else {
            &self.http
        }
    }

    /// `http://host` for loopback and insecure hosts, `https://host` otherwise.
    /// `http://` for loopback hosts and for `--insecure` hosts found to
    /// speak plain HTTP; `https://` otherwise (unverified for `--insecure`
    /// hosts, which fall back to HTTP when TLS fails).
    pub fn base_url(&self, host: &str) -> String {
        let plain = is_loopback(host)
            || self
                .plain_http
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(host);
        if plain {
            format!("http://{host}")
        } else {
            format!("https://{host}")
        }
    }

    /// `url` with the scheme [`Transport::base_url`] now gives its host.
    fn effective_url(&self, url: &str) -> String {
        match url.strip_prefix("https://") {
            Some(rest) if self.base_url(&host_of(url)).starts_with("http://") => {
                format!("http://{rest}")
            }
            _ => url.to_string(),
        }
    }

    /// After a failed TLS attempt to an `--insecure` host: use plain HTTP
    /// from now on. Returns whether the request should be tried again so.
    fn fall_back_to_http(&self, url: &str, error: &reqwest::Error) -> bool {
        let host = host_of(url);
        let fallback = url.starts_with("https://")
            && self.options.insecure_hosts.contains(&host)
            && (error.is_connect() || error.is_request());
        if fallback {
            tracing::debug!(
                "{host}: TLS failed ({}); using plain HTTP (--insecure)",
                describe(error)
            );
            self.plain_http
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(host);
        }
        fallback
    }

    /// Uses `credential` for `host` for the rest of this run, whatever is stored.
    pub fn use_credential(&self, host: &str, credential: Credential) {
        self.given
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), credential);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|key, _| !key.starts_with(host));
    }

    fn credential_for(&self, host: &str) -> Result<Option<Credential>, TransportError> {
        if let Some(given) = self
            .given
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
        {
            return Ok(Some(given.clone()));
        }
        Ok(self.credentials.get(host)?)
    }

    /// The cached `Authorization` for a request: a token of its scope, or
    /// a `pull,push` token of the same repository for a `pull`, or Basic.
    fn cached(&self, host: &str, scope: Option<&str>) -> Option<String> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let scope = scope.unwrap_or("");
        let wider = scope
            .strip_suffix(":pull")
            .map(|repo| format!("{host} {repo}:pull,push"));
        cache
            .get(&format!("{host} {scope}"))
            .or_else(|| wider.and_then(|key| cache.get(&key)))
            .or_else(|| cache.get(host))
            .cloned()
    }

    fn build(
        &self,
        request: &Request,
        url: &str,
        auth: Option<&str>,
    ) -> Result<reqwest::RequestBuilder, TransportError> {
        let mut builder = self.http_for(url).request(request.method.clone(), url);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(auth) = auth {
            builder = builder.header("authorization", auth);
        }
        builder = match &request.body {
            Body::Empty => {
                if matches!(request.method, Method::POST | Method::PUT | Method::PATCH) {
                    builder.header("content-length", "0")
                } else {
                    builder
                }
            }
            Body::Bytes(bytes) => builder.body(bytes.clone()),
            Body::File { path, offset, len } => {
                use std::io::{Seek, SeekFrom};
                let file_error = |e: std::io::Error| TransportError::File {
                    path: path.clone(),
                    message: e.to_string(),
                };
                let mut file = std::fs::File::open(path).map_err(file_error)?;
                file.seek(SeekFrom::Start(*offset)).map_err(file_error)?;
                let file = tokio::fs::File::from_std(file);
                let reader = tokio::io::AsyncReadExt::take(file, *len);
                let stream = tokio_util_stream(reader);
                builder
                    .header("content-length", len.to_string())
                    .body(reqwest::Body::wrap_stream(stream))
            }
        };
        Ok(builder)
    }

    /// Sends a request: retried as the policy says (connection errors and
    /// retryable statuses, each retry said on stderr), authenticated as the
    /// registry's challenge asks. Answers other than 401 and retryable
    /// statuses are returned as they are; so is the last retryable one.
    pub async fn send(&self, request: &Request) -> Result<Response, TransportError> {
        let mut retries = self.options.retry.start();
        let what = format!("{} {}", request.method, request.url);
        loop {
            match self.attempt(request).await {
                Ok(response) if RetryPolicy::retryable_status(response.status().as_u16()) => {
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    match retries.failed(retry_after.as_deref()) {
                        Some(delay) => {
                            let why = response.status().to_string();
                            retries.wait(&what, &why, delay).await;
                        }
                        None => return Ok(response),
                    }
                }
                Err(e) if e.is_connection() => match retries.failed(None) {
                    Some(delay) => retries.wait(&what, &e.cause(), delay).await,
                    None => return Err(e),
                },
                other => return other,
            }
        }
    }

    /// The retry policy requests are sent under.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.options.retry
    }

    /// Sends a request once, authenticated as the registry's challenge
    /// asks (answering a 401 sends it again), without retrying failures:
    /// for requests whose retry the caller shapes (an upload resumes).
    pub async fn attempt(&self, request: &Request) -> Result<Response, TransportError> {
        let host = host_of(&request.url);
        let mut authenticated = false;
        loop {
            let auth = self.cached(&host, request.scope.as_deref());
            let url = self.effective_url(&request.url);
            match self.build(request, &url, auth.as_deref())?.send().await {
                Ok(response) => {
                    tracing::debug!(
                        "{} {} -> {}",
                        request.method,
                        request.url,
                        response.status()
                    );
                    if response.status() != 401 || authenticated {
                        return Ok(response);
                    }
                    authenticated = true;
                    let Some(challenge) = challenge::of_response(&response) else {
                        return Ok(response);
                    };
                    if !self
                        .authenticate(&host, request.scope.as_deref(), challenge, auth.as_deref())
                        .await?
                    {
                        return Ok(response);
                    }
                }
                // Not a failure of the registry: the wrong scheme.
                Err(e) if self.fall_back_to_http(&url, &e) => {}
                Err(e) => return Err(failure(request, &host, &e)),
            }
        }
    }

    /// Sends a request whose body is a one-time stream: a single attempt,
    /// with the authorization an earlier request of the same scope earned.
    pub async fn send_stream(
        &self,
        request: &Request,
        body: reqwest::Body,
    ) -> Result<Response, TransportError> {
        let host = host_of(&request.url);
        let auth = self.cached(&host, request.scope.as_deref());
        let url = self.effective_url(&request.url);
        self.build(request, &url, auth.as_deref())?
            .body(body)
            .send()
            .await
            .map_err(|e| failure(request, &host, &e))
    }

    /// Answers a challenge; `false` when there is nothing to answer it with.
    async fn authenticate(
        &self,
        host: &str,
        scope: Option<&str>,
        challenge: Challenge,
        refused: Option<&str>,
    ) -> Result<bool, TransportError> {
        let _answering = self.answering.lock().await;
        // Another request may have earned what this one needs meanwhile.
        if let Some(current) = self.cached(host, scope) {
            if Some(current.as_str()) != refused {
                return Ok(true);
            }
        }
        let credential = self.credential_for(host)?;
        match challenge {
            Challenge::Basic => match credential {
                Some(Credential::Basic { username, password }) => {
                    let value = token::basic_header(&username, &password);
                    self.cache
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(host.to_string(), value);
                    Ok(true)
                }
                _ => Ok(false),
            },
            Challenge::Bearer {
                realm,
                service,
                scope: challenge_scope,
            } => {
                let scope = scope.map(str::to_string).or(challenge_scope);
                let answer = token::fetch(
                    self.http_for(&realm),
                    &realm,
                    service.as_deref(),
                    scope.as_deref(),
                    credential.as_ref(),
                    false,
                )
                .await?;
                let bearer = answer.bearer().unwrap_or_default();
                let key = format!("{host} {}", scope.as_deref().unwrap_or(""));
                self.cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, format!("Bearer {bearer}"));
                Ok(true)
            }
        }
    }

    /// Checks `credential` against `host` as `docker login` does: the base
    /// endpoint, answering its challenge. Returns the credential to store
    /// (an identity token when the token server hands out refresh tokens).
    pub async fn login(
        &self,
        host: &str,
        credential: Credential,
    ) -> Result<Credential, TransportError> {
        let mut url = format!("{}/v2/", self.base_url(host));
        let response = match self.http_for(&url).get(&url).send().await {
            Ok(response) => Ok(response),
            Err(e) if self.fall_back_to_http(&url, &e) => {
                url = format!("{}/v2/", self.base_url(host));
                self.http_for(&url).get(&url).send().await
            }
            Err(e) => Err(e),
        }
        .map_err(|e| TransportError::Http {
            method: "GET".into(),
            url: url.clone(),
            message: describe(&e),
        })?;
        if response.status().is_success() {
            return Ok(credential); // the registry needs no login; keep it anyway, as docker does
        }
        match challenge::of_response(&response) {
            Some(Challenge::Basic) => {
                let Credential::Basic { username, password } = &credential else {
                    return Ok(credential);
                };
                let checked = self
                    .http_for(&url)
                    .get(&url)
                    .header("authorization", token::basic_header(username, password))
                    .send()
                    .await
                    .map_err(|e| TransportError::Http {
                        method: "GET".into(),
                        url: url.clone(),
                        message: describe(&e),
                    })?;
                if checked.status().is_success() {
                    Ok(credential)
                } else {
                    Err(TransportError::Unauthorized {
                        message: format!("{host} refused the credentials ({})", checked.status()),
                    })
                }
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                let answer = token::fetch(
                    self.http_for(&realm),
                    &realm,
                    service.as_deref(),
                    None,
                    Some(&credential),
                    true,
                )
                .await?;
                match (answer.refresh_token, &credential) {
                    (Some(refresh), Credential::Basic { username, .. }) => {
                        Ok(Credential::IdentityToken {
                            username: username.clone(),
                            token: refresh,
                        })
                    }
                    _ => Ok(credential),
                }
            }
            None => Err(TransportError::Unauthorized {
                message: format!("{host} answered {} without a challenge", response.status()),
            }),
        }
    }
}

/// Whether a request failed in the TLS handshake (a certificate refused,
/// or a server that does not speak TLS): not worth retrying.
fn is_tls_failure(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        // io::Error's source() skips the error it wraps (and those nest): unwrap them.
        let mut inner: Option<&(dyn std::error::Error + 'static)> = Some(cause);
        while let Some(error) = inner {
            if error.downcast_ref::<rustls::Error>().is_some() {
                return true;
            }
            inner = error
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|e| e as &(dyn std::error::Error + 'static));
        }
        source = cause.source();
    }
    false
}

/// The error and its causes on one line (reqwest's top level says little).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// A request that failed without an answer: a connection failure (worth
/// retrying) or not (TLS refused, with a hint).
fn failure(request: &Request, host: &str, error: &reqwest::Error) -> TransportError {
    let (method, url) = (request.method.to_string(), request.url.clone());
    let message = describe(error);
    if is_tls_failure(error) {
        let message = format!(
            "{message} (TLS with {host} failed: for a registry with its own CA use --ca-cert FILE; \
             for plain HTTP or an unverified certificate, --insecure {host})"
        );
        return TransportError::Http {
            method,
            url,
            message,
        };
    }
    if error.is_connect() || error.is_timeout() || error.is_request() || error.is_body() {
        TransportError::Connection {
            method,
            url,
            message,
        }
    } else {
        TransportError::Http {
            method,
            url,
            message,
        }
    }
}

/// A stream of a file's bytes in 256 KiB chunks.
fn tokio_util_stream(
    reader: impl tokio::io::AsyncRead + Send + Unpin + 'static,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(reader, |mut reader| async move {
        let mut buf = vec![0u8; 256 * 1024];
        match tokio::io::AsyncReadExt::read(&mut reader, &mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), reader))
            }
            Err(e) => Some((Err(e), reader)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_by_host() {
        let options = TransportOptions {
            insecure_hosts: ["registry.internal:5000".to_string()].into_iter().collect(),
            ..TransportOptions::default()
        };
        let transport =
            Transport::new(options, CredentialStore::at("/nonexistent/config.json")).unwrap();
        assert_eq!(
            transport.base_url("localhost:5000"),
            "http://localhost:5000"
        );
        assert_eq!(
            transport.base_url("127.0.0.1:5000"),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            transport.base_url("registry.example.com"),
            "https://registry.example.com"
        );
        // Insecure hosts try TLS (unverified) first, and keep HTTP once TLS failed.
        assert_eq!(
            transport.base_url("registry.internal:5000"),
            "https://registry.internal:5000"
        );
        assert!(std::ptr::eq(
            transport.http_for("https://registry.internal:5000/v2/"),
            &transport.unverified
        ));
        assert!(std::ptr::eq(
            transport.http_for("https://registry.example.com/v2/"),
            &transport.http
        ));
        transport
            .plain_http
            .lock()
            .unwrap()
            .insert("registry.internal:5000".into());
        assert_eq!(
            transport.base_url("registry.internal:5000"),
            "http://registry.internal:5000"
        );
        assert_eq!(
            transport.effective_url("https://registry.internal:5000/v2/a/manifests/1"),
            "http://registry.internal:5000/v2/a/manifests/1"
        );
        assert_eq!(
            transport.effective_url("https://registry.example.com/v2/"),
            "https://registry.example.com/v2/"
        );
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "registry.example.com",
            "10.0.0.1:5000",
            "localhost.example:5000",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
