//! The HTTP layer, kept thin: every request is parsed into an [`Action`],
//! handed to the handler of its concept, and answered with the spec's
//! headers. Handlers translate between HTTP and [`Registry`] calls only.
//!
//! - [`blobs`], [`uploads`], [`manifests`], [`listing`]: one handler module per concept.
//! - [`query`]: query strings and percent-decoding; [`ranges`]: `Range`
//!   and `Content-Range`.
//! - [`strict`]: framing refused before routing (`Transfer-Encoding`, `Host`).
//! - [`token`]: the built-in token endpoint.
//!
//! Before any handler runs, [`crate::auth`] checks the caller may do what
//! the action needs.

pub mod blobs;
pub mod listing;
pub mod manifests;
pub mod query;
pub mod ranges;
pub mod strict;
pub mod token;
pub mod uploads;

use crate::action::Action;
use crate::auth::scope::{Need, Verb};
use crate::auth::{Auth, Caller};
use crate::error::{Code, RegistryError, Result};
use crate::storage::ByteStream;
use crate::store::Registry;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::TryStreamExt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// What every handler shares.
pub struct App {
    pub registry: Registry,
    /// Headers added to every response (`http.headers`).
    pub extra_headers: HeaderMap,
    /// Refuse every write (`storage.maintenance.readonly`).
    pub read_only: bool,
    /// Log one line per request.
    pub access_log: bool,
    pub auth: Auth,
}

/// The peer address of a request's connection (a request extension set by
/// the server; absent in tests that call the router directly).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The router: one entry point, since the action is parsed from the path.
pub fn router(app: Arc<App>) -> Router {
    Router::new().fallback(dispatch).with_state(app)
}

async fn dispatch(State(app): State<Arc<App>>, request: Request) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let client = request
        .extensions()
        .get::<ClientAddr>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let result = if let Some(refused) = strict::check(request.version(), request.headers()) {
        Err(refused)
    } else if app.auth.token_path() == Some(path.as_str()) {
        let (parts, body) = request.into_parts();
        token::serve(
            &app.auth,
            &method,
            parts.uri.query(),
            &parts.headers,
            body,
            client,
        )
        .await
    } else {
        match Action::parse(&method, &path) {
            Ok(action) => match app.auth.check(&action, request.headers(), client).await {
                Ok(caller) if is_write(&action) => {
                    // A write runs to its end even when the client hangs up
                    // (hyper drops a request's future then): a delete cut
                    // short between its steps, or a temp file abandoned
                    // mid-publish, would be left half done.
                    let app = app.clone();
                    let task =
                        tokio::spawn(async move { handle(&app, action, &caller, request).await });
                    match task.await {
                        Ok(result) => result,
                        Err(e) => Err(RegistryError::new(
                            Code::Unknown,
                            format!("the request's task failed: {e}"),
                        )),
                    }
                }
                Ok(caller) => handle(&app, action, &caller, request).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    };
    let mut response = match result {
        Ok(response) => response,
        Err(e) => {
            // 501 is a client's framing we do not take, not our failure.
            if e.status.is_server_error() && e.status != StatusCode::NOT_IMPLEMENTED {
                tracing::error!(%method, %path, error = %e, "request failed");
            }
            e.into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("docker-distribution-api-version"),
        HeaderValue::from_static("registry/2.0"),
    );
    for (name, value) in app.extra_headers.iter() {
        headers.append(name.clone(), value.clone());
    }
    if app.access_log {
        tracing::info!(
            target: "access",
            %method,
            %path,
            status = response.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
        );
    }
    response
}

fn is_write(action: &Action) -> bool {
    matches!(
        action,
        Action::PutManifest { .. }
            | Action::DeleteManifest { .. }
            | Action::DeleteBlob { .. }
            | Action::StartUpload { .. }
            | Action::PatchUpload { .. }
            | Action::PutUpload { .. }
            | Action::CancelUpload { .. }
    )
}

async fn handle(app: &App, action: Action, caller: &Caller, request: Request) -> Result<Response> {
    if app.read_only && is_write(&action) {
        return Err(RegistryError::new(
            Code::Unsupported,
            "the registry is in read-only mode",
        ));
    }
    let registry = &app.registry;
    let (parts, body) = request.into_parts();
    let mut incoming = Incoming {
        query: query::Query::parse(parts.uri.query()),
        headers: parts.headers,
        body,
    };
    if matches!(action, Action::StartUpload { .. }) {
        // A mount from a repository the caller may not pull from becomes
        // a plain upload (as Distribution does), revealing nothing.
        if let Some(from) = incoming.query.get("from") {
            let pull = Need::Repository {
                name: from.to_string(),
                verb: Verb::Pull,
            };
            if !app.auth.may(caller, &pull) {
                incoming.query.remove("mount");
            }
        }
    }
    let (query, headers) = (&incoming.query, &incoming.headers);
    match action {
        Action::Base => {
            Ok((StatusCode::OK, [("content-type", "application/json")], "{}").into_response())
        }
        Action::Catalog => listing::catalog(registry, query).await,
        Action::ListTags { name } => listing::tags(registry, &name, query).await,
        Action::Referrers { name, digest } => {
            listing::referrers(registry, &name, &digest, query).await
        }
        Action::GetBlob { name, digest, head } => {
            blobs::get(registry, &name, &digest, head, headers).await
        }
        Action::DeleteBlob { name, digest } => blobs::delete(registry, &name, &digest).await,
        Action::GetManifest {
            name,
            reference,
            head,
        } => manifests::get(registry, &name, &reference, head, headers).await,
        Action::PutManifest { name, reference } => {
            manifests::put(registry, &name, &reference, incoming).await
        }
        Action::DeleteManifest { name, reference } => {
            manifests::delete(registry, &name, &reference).await
        }
        Action::StartUpload { name } => uploads::start(registry, &name, incoming).await,
        Action::GetUpload { name, id } => uploads::status(registry, &name, &id).await,
        Action::PatchUpload { name, id } => uploads::patch(registry, &name, &id, incoming).await,
        Action::PutUpload { name, id } => uploads::complete(registry, &name, &id, incoming).await,
        Action::CancelUpload { name, id } => uploads::cancel(registry, &name, &id).await,
    }
}

/// What a write handler takes of a request: its query, headers and body,
/// moved out of it once (not copied).
pub struct Incoming {
    pub query: query::Query,
    pub headers: HeaderMap,
    pub body: Body,
}

/// A request body as a stream of bytes.
pub(crate) fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// A header's value as text, when present and readable.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The declared `Content-Length`, when present and numeric.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    header(headers, "content-length").and_then(|v| v.trim().parse().ok())
}

/// A response with no body and the given headers.
pub(crate) fn empty(status: StatusCode, headers: &[(&'static str, String)]) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}
