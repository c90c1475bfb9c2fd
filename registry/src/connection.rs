//! One connection's time limits (`http.timeout`), so that a client can
//! hold a connection only while it makes progress:
//!
//! - **header**: a new connection must complete its first request's
//!   headers within this time; on a kept-alive one, the clock starts at
//!   the first byte of the next request.
//! - **idle**: a kept-alive connection with no request in flight and no
//!   byte of a next one is closed after this time.
//! - **body**: within a request, the longest wait for the next piece of
//!   the request body ([`IdleBody`]: the handler sees a body error, which
//!   the upload code treats as a client that went away) or for the client
//!   to take the next piece of the response (the connection is closed).
//!
//! [`Watched`] wraps the socket and notes reads and blocked writes,
//! [`Tracker::track`] counts the requests in flight (from the service call
//! to the end of the response body), and [`Tracker::expired`] resolves
//! when one of the limits is passed; the server then drops the connection.
//! A connection is never closed under a request that is making progress.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// The limits, from `http.timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header: Duration,
    pub idle: Duration,
    pub body: Duration,
}

/// The longest any limit is taken to be, so that no deadline can overflow.
const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);

impl Limits {
    pub fn from_config(timeouts: &rconfig::Timeouts) -> Limits {
        Limits {
            header: timeouts.header.0.min(LONGEST),
            idle: timeouts.idle.0.min(LONGEST),
            body: timeouts.body.0.min(LONGEST),
        }
    }
}

/// Which limit closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Header,
    Idle,
    Body,
}

/// What the connection is doing, shared by its socket, its requests and
/// its watchdog.
#[derive(Debug)]
struct State {
    /// Requests in flight (HTTP/2 may have several).
    active: usize,
    /// Requests started so far.
    served: u64,
    /// When the connection last had no request in flight (accepted, or
    /// the last response ended).
    waiting_since: Instant,
    /// The first byte read while no request was in flight.
    first_byte: Option<Instant>,
    /// Since when a write has been waiting for the client to read.
    write_blocked: Option<Instant>,
}

/// One connection's state and its watchdog.
#[derive(Clone)]
pub struct Tracker {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    limits: Limits,
}

impl Tracker {
    pub fn new(limits: Limits) -> Tracker {
        Tracker {
            state: Arc::new(Mutex::new(State {
                active: 0,
                served: 0,
                waiting_since: Instant::now(),
                first_byte: None,
                write_blocked: None,
            })),
            changed: Arc::new(Notify::new()),
            limits,
        }
    }

    fn update<T>(&self, change: impl FnOnce(&mut State) -> (T, bool)) -> T {
        let (out, wake) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            change(&mut state)
        };
        if wake {
            self.changed.notify_one();
        }
        out
    }

    fn read_some(&self) {
        self.update(|s| {
            let first = s.active == 0 && s.first_byte.is_none();
            if first {
                s.first_byte = Some(Instant::now());
            }
            ((), first)
        });
    }

    fn write_pending(&self) {
        self.update(|s| {
            let first = s.write_blocked.is_none();
            if first {
                s.write_blocked = Some(Instant::now());
            }
            ((), first)
        });
    }

    fn wrote_some(&self) {
        self.update(|s| ((), s.write_blocked.take().is_some()));
    }

    /// Counts a request in flight until the returned guard is dropped
    /// (which [`Tracked`] does when the response body ends).
    pub fn track(&self) -> InFlight {
        self.update(|s| {
            s.active = s.active.saturating_add(1);
            s.served = s.served.saturating_add(1);
            s.first_byte = None;
            ((), true)
        });
        InFlight {
            tracker: self.clone(),
        }
    }

    /// The next moment a limit may pass, and which, as things stand.
    fn deadline(&self) -> Option<(Instant, Expiry)> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let limits = self.limits;
        if let Some(since) = s.write_blocked {
            return Some((since + limits.body, Expiry::Body));
        }
        if s.active > 0 {
            return None;
        }
        let header_start = if s.served == 0 {
            Some(s.waiting_since)
        } else {
            s.first_byte
        };
        Some(match header_start {
            Some(start) => (start + limits.header, Expiry::Header),
            None => (s.waiting_since + limits.idle, Expiry::Idle),
        })
    }

    /// Resolves when the connection has passed one of its limits.
    pub async fn expired(&self) -> Expiry {
        loop {
            match self.deadline() {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// A request in flight; dropping it ends the request.
pub struct InFlight {
    tracker: Tracker,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.tracker.update(|s| {
            s.active = s.active.saturating_sub(1);
            if s.active == 0 {
                s.waiting_since = Instant::now();
            }
            ((), true)
        });
    }
}

/// The socket, with its reads and blocked writes noted in the tracker.
pub struct Watched<T> {
    inner: T,
    tracker: Tracker,
}

impl<T> Watched<T> {
    pub fn new(inner: T, tracker: Tracker) -> Watched<T> {
        Watched { inner, tracker }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.tracker.read_some();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> Watched<T> {
    fn note<R>(&self, result: &Poll<io::Result<R>>) {
        match result {
            Poll::Pending => self.tracker.write_pending(),
            Poll::Ready(_) => self.tracker.wrote_some(),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(&result);
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A response body that ends its request's [`InFlight`] when dropped.
pub struct Tracked<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, in_flight: InFlight) -> Tracked<B> {
        Tracked {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error a request body gives when it stalls.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled for more than {0:?}")]
pub struct BodyStalled(pub Duration);

/// A request body that fails when the handler has waited `limit` for its
/// next piece (the clock runs only while the handler waits, so a slow
/// handler never times its own body out).
pub struct IdleBody<B> {
    inner: B,
    limit: Duration,
    sleep: Pin<Box<Sleep>>,
    waiting: bool,
}

impl<B> IdleBody<B> {
    pub fn new(inner: B, limit: Duration) -> IdleBody<B> {
        let limit = limit.min(LONGEST);
        IdleBody {
            inner,
            limit,
            sleep: Box::pin(tokio::time::sleep(limit)),
            waiting: false,
        }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if !self.waiting {
                    self.waiting = true;
                    let deadline = Instant::now() + self.limit;
                    self.sleep.as_mut().reset(deadline);
                }
                self.poll_stall(cx)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> IdleBody<B> {
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::debug!(limit_s = self.limit.as_secs_f64(), "request body stalled");
                Poll::Ready(Some(Err(Box::new(BodyStalled(self.limit)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    // Real time, short limits: each check waits on the condition and
    // asserts only that a limit never fires early and names the right cause.
    fn limits() -> Limits {
        Limits {
            header: Duration::from_millis(100),
            idle: Duration::from_millis(300),
            body: Duration::from_millis(200),
        }
    }

    #[tokio::test]
    async fn a_new_connection_has_the_header_limit_then_idle_between_requests() {
        let tracker = Tracker::new(limits());
        let started = Instant::now();
        assert_eq!(tracker.expired().await, Expiry::Header);
        assert!(started.elapsed() >= limits().header);

        let tracker = Tracker::new(limits());
        let request = tracker.track();
        drop(request);
        let idle_from = Instant::now();
        assert_eq!(tracker.expired().await, Expiry::Idle);
        assert!(idle_from.elapsed() >= limits().idle);
    }

    #[tokio::test]
    async fn a_request_in_flight_is_never_cut_unless_its_writes_stall() {
        let tracker = Tracker::new(limits());
        let request = tracker.track();
        // Well past every limit, the request is still not cut.
        let waited = tokio::time::timeout(Duration::from_millis(800), tracker.expired()).await;
        assert!(waited.is_err(), "a request in flight was cut");
        tracker.write_pending();
        let blocked = Instant::now();
        assert_eq!(tracker.expired().await, Expiry::Body);
        assert!(blocked.elapsed() >= limits().body);
        drop(request);
    }

    #[tokio::test]
    async fn a_started_header_on_a_kept_alive_connection_has_the_header_limit() {
        let tracker = Tracker::new(limits());
        drop(tracker.track());
        tracker.read_some();
        let first_byte = Instant::now();
        assert_eq!(tracker.expired().await, Expiry::Header);
        assert!(first_byte.elapsed() >= limits().header);
    }

    #[tokio::test]
    async fn a_stalled_body_errors_after_the_body_limit() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, io::Error>>(1);
        let stream = tokio_stream_from(rx);
        let limit = Duration::from_millis(200);
        let mut body = IdleBody::new(StreamBody::new(stream), limit);
        tx.send(Ok(Frame::data(Bytes::from_static(b"abc"))))
            .await
            .unwrap();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "abc");
        let started = Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.is::<BodyStalled>(), "{err}");
        assert!(started.elapsed() >= limit);
        drop(tx);
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures_util::Stream<Item = T> + Unpin {
        Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
