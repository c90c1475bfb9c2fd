//! A TCP proxy a test puts between a client and a registry: it forwards
//! bytes both ways, at a limited rate if asked (so a transfer lasts long
//! enough to be interrupted), counts them (so a test waits on progress,
//! not on time), and can break the one connection that carries a given
//! number of client bytes, or every connection past a number of its own
//! (a connection dropped mid-upload, once or always). While the
//! registry is down, connections it accepts are closed at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the traffic.
#[derive(Clone, Copy, Default)]
pub struct ProxyOptions {
    /// Bytes per second in each direction of each connection.
    pub rate: Option<u64>,
    /// Break the connection on which the client's bytes (all connections
    /// counted) pass this many, once.
    pub cut_after: Option<u64>,
    /// Break every connection once its client has sent this many bytes on it.
    pub cut_each_after: Option<u64>,
}

#[derive(Default)]
struct Counters {
    up: AtomicU64,
    down: AtomicU64,
    cut: AtomicBool,
}

/// A running proxy; it stops when dropped.
pub struct Proxy {
    pub port: u16,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str, options: ProxyOptions) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let counters = Arc::new(Counters::default());
        let upstream = upstream.to_string();
        let shared = counters.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue; // the registry is down: the client's connection closes
                };
                let counters = shared.clone();
                tokio::spawn(async move { connection(client, server, counters, options).await });
            }
        });
        Proxy {
            port,
            counters,
            task,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Bytes forwarded from clients to the registry so far.
    pub fn up(&self) -> u64 {
        self.counters.up.load(Ordering::SeqCst)
    }

    /// Bytes forwarded from the registry to clients so far.
    pub fn down(&self) -> u64 {
        self.counters.down.load(Ordering::SeqCst)
    }

    /// Whether a connection was broken as asked.
    pub fn was_cut(&self) -> bool {
        self.counters.cut.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connection(
    client: TcpStream,
    server: TcpStream,
    counters: Arc<Counters>,
    options: ProxyOptions,
) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, &counters, true, options);
    let down = pump(server_read, client_write, &counters, false, options);
    // Either side ending (or the cut) ends both: the halves drop, the sockets close.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counters: &Counters,
    upward: bool,
    options: ProxyOptions,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        if upward {
            let before = counters.up.load(Ordering::SeqCst);
            if let Some(limit) = options.cut_after {
                if before + n as u64 > limit && !counters.cut.swap(true, Ordering::SeqCst) {
                    let keep = limit.saturating_sub(before) as usize;
                    let _ = to.write_all(&chunk[..keep]).await;
                    counters.up.fetch_add(keep as u64, Ordering::SeqCst);
                    return; // dropping both halves resets the connection
                }
            }
            if let Some(limit) = options.cut_each_after {
                if sent + n as u64 > limit {
                    let keep = limit.saturating_sub(sent) as usize;
                    let _ = to.write_all(&chunk[..keep]).await;
                    counters.up.fetch_add(keep as u64, Ordering::SeqCst);
                    counters.cut.store(true, Ordering::SeqCst);
                    return;
                }
            }
            sent += n as u64;
        }
        while !chunk.is_empty() {
            // At most 16 KiB at a time, so the rate holds within a read.
            let part = &chunk[..chunk.len().min(16 * 1024)];
            if to.write_all(part).await.is_err() {
                return;
            }
            let counter = if upward { &counters.up } else { &counters.down };
            counter.fetch_add(part.len() as u64, Ordering::SeqCst);
            chunk = &chunk[part.len()..];
            if let Some(rate) = options.rate {
                let secs = part.len() as f64 / rate.max(1) as f64;
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            }
        }
    }
}
