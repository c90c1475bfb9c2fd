//! Serving: opens the store, binds the listener (plain TCP or TLS), serves
//! HTTP/1.1 and HTTP/2 connections, runs the upload purge on its schedule,
//! and on shutdown stops accepting and lets in-flight requests finish,
//! bounded by the drain timeout. Connections are limited in number
//! (`http.maxconnections`) and in time ([`crate::connection`]).

use crate::auth::{Auth, AuthError};
use crate::connection::{IdleBody, Limits, Tracked, Tracker, Watched};
use crate::http::{router, App, ClientAddr};
use crate::storage::StorageError;
use crate::store::{Options, Registry};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rconfig::Config;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open storage: {0}")]
    Storage(#[from] StorageError),
    #[error("http.addr: {0}")]
    Address(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("http.tls: {0}")]
    Tls(String),
    #[error("http.headers: {0}")]
    Header(String),
    #[error("auth: {0}")]
    Auth(#[from] AuthError),
}

/// A bound, ready server. Split from [`Server::run`] so the caller learns
/// the address (port 0 binds a free port) before serving starts.
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
    config: Config,
}

impl Server {
    /// Opens storage and binds the listener as `config` says.
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        let registry = Registry::open(
            crate::storage::open(&config)?,
            Options::from_config(&config),
        )
        .await?;
        let app = Arc::new(App {
            registry,
            extra_headers: extra_headers(&config)?,
            read_only: config.storage.maintenance.readonly.enabled,
            access_log: !config.log.accesslog.disabled,
            auth: Auth::from_config(&config.auth)?,
        });
        let addr = rconfig::load::listen_addr(&config.http.addr).map_err(ServeError::Address)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let tls = match &config.http.tls {
            Some(tls) => Some(tls_acceptor(&tls.certificate, &tls.key)?),
            None => None,
        };
        Ok(Server {
            listener,
            tls,
            app,
            config,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains.
    ///
    /// At most `http.maxconnections` connections are served at once: at
    /// the limit, the next connection waits in the listen queue until one
    /// closes. Each connection runs under the limits of
    /// [`crate::connection`] (`http.timeout`), so a held connection frees
    /// its slot after the header, idle or body timeout.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            listener,
            tls,
            app,
            config,
        } = self;
        let purge = spawn_purge(&app.registry, &config);
        let service = TowerToHyperService::new(router(app));
        let builder = Builder::new(TokioExecutor::new());
        let graceful = GracefulShutdown::new();
        let limits = Limits::from_config(&config.http.timeout);
        let slots = Arc::new(Semaphore::new(config.http.maxconnections));
        tokio::pin!(shutdown);
        loop {
            if slots.available_permits() == 0 {
                tracing::debug!(
                    limit = config.http.maxconnections,
                    "connection limit reached; new connections wait"
                );
            }
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
                _ = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let tracker = Tracker::new(limits);
            let connection = Connection {
                builder: builder.clone(),
                service: service.clone(),
                tracker: tracker.clone(),
                limits,
                peer,
            };
            let watcher = graceful.watcher();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let io = Watched::new(stream, tracker.clone());
                let serve = connection.serve(io, tls, watcher);
                let result = tokio::select! {
                    result = serve => result,
                    expiry = tracker.expired() => {
                        tracing::debug!(%peer, ?expiry, "connection timed out; closing it");
                        Ok(())
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        if let Some(purge) = purge {
            purge.abort();
        }
        let drain = config.http.draintimeout.0;
        tracing::info!(
            timeout_s = drain.as_secs_f64(),
            "shutting down: draining in-flight requests"
        );
        tokio::select! {
            _ = graceful.shutdown() => tracing::info!("drained"),
            _ = tokio::time::sleep(drain) => tracing::warn!("drain timeout reached; closing remaining connections"),
        }
    }
}

/// What one connection's task needs to serve it.
struct Connection {
    builder: Builder<TokioExecutor>,
    service: TowerToHyperService<axum::Router>,
    tracker: Tracker,
    limits: Limits,
    peer: SocketAddr,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Connection {
    /// Serves HTTP/1.1 or HTTP/2 on `io` (after the TLS handshake, when
    /// there is TLS) until the client closes or the server drains.
    async fn serve(
        self,
        io: Watched<TcpStream>,
        tls: Option<TlsAcceptor>,
        watcher: Watcher,
    ) -> Result<(), BoxError> {
        let Connection {
            builder,
            service,
            tracker,
            limits,
            peer,
        } = self;
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ClientAddr(peer));
            let in_flight = tracker.track();
            let request = request.map(|body| IdleBody::new(body, limits.body));
            let response = hyper::service::Service::call(&service, request);
            async move {
                let response = response.await?;
                Ok::<_, std::convert::Infallible>(
                    response.map(|body| Tracked::new(body, in_flight)),
                )
            }
        });
        match tls {
            Some(tls) => {
                let stream = match tls.accept(io).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return Ok(());
                    }
                };
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                watcher.watch(conn.into_owned()).await
            }
            None => {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                watcher.watch(conn.into_owned()).await
            }
        }
    }
}

fn extra_headers(config: &Config) -> Result<HeaderMap, ServeError> {
    let mut headers = HeaderMap::new();
    for (name, values) in &config.http.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| ServeError::Header(format!("{name}: {e}")))?;
        for value in values {
            let value = HeaderValue::from_str(value)
                .map_err(|e| ServeError::Header(format!("{name}: {e}")))?;
            headers.append(name.clone(), value);
        }
    }
    Ok(headers)
}

fn tls_acceptor(certificate: &Path, key: &Path) -> Result<TlsAcceptor, ServeError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .and_then(|iter| iter.collect::<Result<_, _>>())
        .map_err(|e| ServeError::Tls(format!("certificate {}: {e}", certificate.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!(
            "certificate {}: no certificate found",
            certificate.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServeError::Tls(format!("key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Runs the upload purge shortly after start and then every interval.
fn spawn_purge(registry: &Registry, config: &Config) -> Option<tokio::task::JoinHandle<()>> {
    let purging = config.storage.maintenance.uploadpurging.clone();
    if !purging.enabled {
        return None;
    }
    let registry = registry.clone();
    Some(tokio::spawn(async move {
        let mut first = true;
        loop {
            let wait = if first {
                purging.interval.0.min(Duration::from_secs(5))
            } else {
                purging.interval.0
            };
            first = false;
            tokio::time::sleep(wait).await;
            match registry.purge_uploads(purging.age.0, purging.dryrun).await {
                Ok(ids) if ids.is_empty() => tracing::debug!("upload purge: nothing to remove"),
                Ok(ids) => tracing::info!(
                    count = ids.len(),
                    dry_run = purging.dryrun,
                    ?ids,
                    "upload purge"
                ),
                Err(e) => tracing::warn!(error = %e, "upload purge failed"),
            }
        }
    }))
}
