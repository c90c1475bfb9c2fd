//! Load generation: many keep-alive connections sending one prepared
//! request for a fixed time (the manifest and listing scenarios), and a
//! pool of clients working through a list of items (the small blobs).
//! Every request's latency is kept, in microseconds.

use crate::http::{BodyMode, Conn};
use crate::stats::percentile_ms;
use crate::Result;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Threads the load generator runs on (as `wrk -t2`).
const THREADS: usize = 2;

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .build()?)
}

/// What a load run did.
#[derive(Debug, Default)]
pub struct LoadResult {
    pub requests: u64,
    pub seconds: f64,
    pub latencies_us: Vec<u32>,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }

    pub fn p50_p99_ms(&mut self) -> (f64, f64) {
        (
            percentile_ms(&mut self.latencies_us, 50.0),
            percentile_ms(&mut self.latencies_us, 99.0),
        )
    }
}

fn micros(since: Instant) -> u32 {
    since.elapsed().as_micros().min(u32::MAX as u128) as u32
}

/// Sends `request` (a whole prepared request) on `connections` connections
/// to `addr` for `duration`; every answer must have status `expect`.
pub fn constant(
    addr: &str,
    connections: usize,
    duration: Duration,
    request: &str,
    head: bool,
    expect: u16,
) -> Result<LoadResult> {
    let request = Arc::new(request.as_bytes().to_vec());
    let addr = addr.to_string();
    runtime()?.block_on(async move {
        let started = Instant::now();
        let deadline = started + duration;
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (request, addr) = (request.clone(), addr.clone());
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::connect(&addr).await?;
                let mut latencies = Vec::with_capacity(1 << 16);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    conn.send_raw(&request).await?;
                    let response = conn.read_response(head, BodyMode::Discard).await?;
                    if response.status != expect {
                        return Err(format!("expected {expect}, got {}", response.status).into());
                    }
                    latencies.push(micros(sent));
                }
                Ok::<_, crate::Error>(latencies)
            }));
        }
        let mut result = LoadResult::default();
        for task in tasks {
            let latencies = task.await??;
            result.latencies_us.extend(latencies);
        }
        result.seconds = started.elapsed().as_secs_f64();
        result.requests = result.latencies_us.len() as u64;
        Ok(result)
    })
}

/// Runs `work(conn, item)` for every item in `0..items` on `clients`
/// connections at once; `work` returns the latencies of the requests it
/// made.
pub fn pool<F, Fut>(addr: &str, clients: usize, items: usize, work: F) -> Result<LoadResult>
where
    F: Fn(Conn, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(Conn, Vec<u32>)>> + Send,
{
    let addr = addr.to_string();
    let work = Arc::new(work);
    runtime()?.block_on(async move {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (addr, work, next) = (addr.clone(), work.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::connect(&addr).await?;
                let mut latencies = Vec::new();
                loop {
                    let item = next.fetch_add(1, Ordering::Relaxed);
                    if item >= items {
                        return Ok::<_, crate::Error>(latencies);
                    }
                    let (back, mut times) = work(conn, item).await?;
                    conn = back;
                    latencies.append(&mut times);
                }
            }));
        }
        let mut result = LoadResult::default();
        for task in tasks {
            result.latencies_us.extend(task.await??);
        }
        result.seconds = started.elapsed().as_secs_f64();
        result.requests = result.latencies_us.len() as u64;
        Ok(result)
    })
}

/// Times one request future, in microseconds.
pub async fn timed<T>(future: impl Future<Output = Result<T>>) -> Result<(T, u32)> {
    let sent = Instant::now();
    let value = future.await?;
    Ok((value, micros(sent)))
}
