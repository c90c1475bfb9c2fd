//! Fronts run inside a test, in front of a real rregistry, for what the
//! registry cannot be made to do itself:
//!
//! - [`TokenFront`]: a token server that is not rregistry's own, so
//!   clients are checked against a second implementation: a docker-spec
//!   token endpoint and a front that demands its
//!   Bearer tokens. `GET /token` takes Basic credentials (and, with
//!   `offline_token=true`, also hands out a refresh token); `POST /token`
//!   takes `grant_type=refresh_token`. Tokens name the scopes they grant;
//!   the front answers 401 with the exact challenge clients need when a
//!   request's token lacks its repository or action, and forwards the rest.
//! - [`FlakyFront`]: answers the first blob downloads with 429
//!   (`Retry-After: 1`) and then 503, as an overloaded registry does, then
//!   forwards.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::TryStreamExt;
use std::sync::{Arc, Mutex};

/// What a front does with a request before (or instead of) forwarding it.
enum Gate {
    Token,
    /// Faults answered to blob GETs, last first, before they are forwarded.
    Faults(Mutex<Vec<(u16, Option<&'static str>)>>),
}

struct Front {
    gate: Gate,
    upstream: String,
    user: String,
    password: String,
    realm: String,
    /// Every scope list a token was asked for, in order.
    token_requests: Mutex<Vec<String>>,
    http: reqwest::Client,
}

/// A running front; stops when dropped.
pub struct TokenFront {
    pub port: u16,
    state: Arc<Front>,
    task: tokio::task::JoinHandle<()>,
}

async fn spawn(upstream: &str, user: &str, password: &str, gate: Gate) -> TokenFront {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind front");
    let port = listener.local_addr().expect("addr").port();
    let state = Arc::new(Front {
        gate,
        upstream: upstream.to_string(),
        user: user.to_string(),
        password: password.to_string(),
        realm: format!("http://127.0.0.1:{port}/token"),
        token_requests: Mutex::new(Vec::new()),
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
    });
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(state.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TokenFront { port, state, task }
}

impl TokenFront {
    pub async fn start(upstream: &str, user: &str, password: &str) -> TokenFront {
        spawn(upstream, user, password, Gate::Token).await
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn token_requests(&self) -> Vec<String> {
        self.state.token_requests.lock().unwrap().clone()
    }
}

impl Drop for TokenFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn query_values(query: &str, key: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| decode(v))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or(""), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The repository and whether the request writes, from a `/v2/` path.
fn needs(method: &axum::http::Method, path: &str) -> Option<(String, bool)> {
    let rest = path.strip_prefix("/v2/")?;
    let cut = ["/blobs/", "/manifests/", "/tags/"]
        .iter()
        .filter_map(|m| rest.rfind(m))
        .max()?;
    let write = !matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD);
    Some((rest[..cut].to_string(), write))
}

async fn handle(State(front): State<Arc<Front>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    if let Gate::Faults(faults) = &front.gate {
        if request.method() == axum::http::Method::GET && path.contains("/blobs/sha256:") {
            let fault = faults.lock().unwrap().pop();
            if let Some((status, retry_after)) = fault {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let mut response = (status, "busy").into_response();
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", seconds.parse().unwrap());
                }
                return response;
            }
        }
        return forward(&front, request, &path, &query).await;
    }
    if path == "/token" {
        return token(
            &front,
            request.method().clone(),
            request.headers().clone(),
            &query,
            request,
        )
        .await;
    }
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    let granted = token
        .strip_prefix("tok:")
        .map(|s| s.split(' ').map(str::to_string).collect::<Vec<_>>());
    let need = needs(request.method(), &path);
    let allowed = match (&granted, &need) {
        (None, _) => false,
        (Some(_), None) => true, // /v2/ and the catalog: any valid token
        (Some(scopes), Some((repo, write))) => scopes.iter().any(|s| {
            s.strip_prefix(&format!("repository:{repo}:"))
                .is_some_and(|actions| {
                    actions
                        .split(',')
                        .any(|a| a == if *write { "push" } else { "pull" })
                })
        }),
    };
    if !allowed {
        let mut challenge = format!("Bearer realm=\"{}\",service=\"front\"", front.realm);
        if let Some((repo, write)) = &need {
            challenge.push_str(&format!(
                ",scope=\"repository:{repo}:{}\"",
                if *write { "pull,push" } else { "pull" }
            ));
        }
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", challenge)],
            "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"token required\"}]}",
        )
            .into_response();
    }
    forward(&front, request, &path, &query).await
}

async fn token(
    front: &Front,
    method: axum::http::Method,
    headers: HeaderMap,
    query: &str,
    request: Request,
) -> Response {
    let (scopes, authorized, offline) = if method == axum::http::Method::POST {
        let body = axum::body::to_bytes(request.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        let form = String::from_utf8_lossy(&body).into_owned();
        let refresh = query_values(&form, "refresh_token");
        let ok = query_values(&form, "grant_type") == ["refresh_token"]
            && refresh == [format!("refresh-{}", front.user)];
        (query_values(&form, "scope").join(" "), ok, false)
    } else {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", front.user, front.password))
        );
        let ok =
            headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
        (
            query_values(query, "scope").join(" "),
            ok,
            query_values(query, "offline_token") == ["true"],
        )
    };
    front.token_requests.lock().unwrap().push(scopes.clone());
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            "{\"details\":\"bad credentials\"}",
        )
            .into_response();
    }
    let mut body = serde_json::json!({ "token": format!("tok:{scopes}"), "expires_in": 300 });
    if offline {
        body["refresh_token"] = serde_json::json!(format!("refresh-{}", front.user));
    }
    ([("content-type", "application/json")], body.to_string()).into_response()
}

async fn forward(front: &Front, request: Request, path: &str, query: &str) -> Response {
    let url = if query.is_empty() {
        format!("{}{path}", front.upstream)
    } else {
        format!("{}{path}?{query}", front.upstream)
    };
    let method = request.method().clone();
    let mut outgoing = front.http.request(method, url);
    for (name, value) in request.headers() {
        if name != "host" && name != "authorization" {
            outgoing = outgoing.header(name, value);
        }
    }
    let body = request
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let response = match outgoing.body(reqwest::Body::wrap_stream(body)).send().await {
        Ok(response) => response,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut builder = Response::builder().status(response.status().as_u16());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    builder
        .body(Body::from_stream(response.bytes_stream()))
        .unwrap_or_else(|e| (StatusCode::BAD_GATEWAY, e.to_string()).into_response())
}

/// A front that answers the first blob downloads with faults.
pub struct FlakyFront(TokenFront);

impl FlakyFront {
    /// Answers the first blob GET with 429 (`Retry-After: 1`) and the
    /// second with 503, then forwards everything.
    pub async fn start(upstream: &str) -> FlakyFront {
        let faults = vec![(503, None), (429, Some("1"))];
        FlakyFront(spawn(upstream, "", "", Gate::Faults(Mutex::new(faults))).await)
    }

    pub fn host(&self) -> String {
        self.0.host()
    }

    /// How many faults are still to be served.
    pub fn faults_left(&self) -> usize {
        match &self.0.state.gate {
            Gate::Faults(faults) => faults.lock().unwrap().len(),
            Gate::Token => 0,
        }
    }
}
