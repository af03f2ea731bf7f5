//! Connections: how many are served at once, how long a client may take to send a request
//! head or leave a kept-alive connection idle, and how one is closed.
//!
//! `axum::serve` sets none of these (a client sending a header a byte a minute held its
//! connection for ever), so the accept loop is here, over hyper's HTTP/1 connection builder:
//!
//! * at most [`Limits::max_connections`] connections at once: past that, new connections
//!   wait in the kernel's backlog until one closes;
//! * hyper's header-read timeout ([`Limits::header_timeout`]): a request head must be
//!   complete within it (and at most half of it longer), counted from when the connection
//!   starts waiting for that head (so it also ends a kept-alive connection that sends
//!   nothing);
//! * an idle timeout ([`Limits::idle_timeout`]): a connection with no bytes read or written
//!   for that long (and at most a quarter longer) is closed gracefully, after the response in
//!   flight if there is one;
//! * a lingering close, as nginx's: when hyper is done with a connection, the server sends
//!   its FIN and then reads and discards what the client still sends, up to
//!   [`Limits::linger_bytes`] and [`Limits::linger_time`], before closing. A client that
//!   writes a whole oversized body before reading (Python's `urllib`, many SDKs) is answered
//!   413 before the body is read; closing at once, with its bytes still arriving, would make
//!   the kernel send a reset, and the client would see a broken pipe instead of the 413.
//!
//! The two timeouts are kept by one timer per connection, which looks at the connection every quarter of
//! the shorter timeout ([`Looks`]): a request reads no clock and arms no timer of its own.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// What a connection serves: the application as `crate::app` makes it.
pub(crate) trait App:
    tower::Service<http::Request<Body>, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Unpin
    + 'static
{
}

impl<A> App for A where
    A: tower::Service<http::Request<Body>, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Unpin
        + 'static
{
}

/// The limits on connections; `Config` holds the values, with the defaults of `rebuff serve`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) linger_time: Duration,
    pub(crate) linger_bytes: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then closes idle connections, lets
/// requests in flight finish, and returns once every connection is closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: impl App,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // A semaphore of zero permits would never accept anything.
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // The permit comes first: past the cap, connections wait in the kernel's backlog
        // instead of being accepted and then starved.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most often: wait rather than spin.
                    tracing::error!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (app, stopped) = (app.clone(), stopped.clone());
        tokio::spawn(async move {
            connection(tcp, peer, app, limits, stopped).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every permit back: every connection has closed.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    Ok(())
}

/// Errors of one connection that the listener survives (axum's `serve` skips the same).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection to its end.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: impl App,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let moved = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Tracked { inner: tcp, moved: moved.clone() });
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        // Boxed: hyper polls a connection without shutting it down (for the lingering close)
        // only when the service's future is `Unpin`.
        Box::pin(app.clone().oneshot(req))
    });
    // One timer for both timeouts: it looks every quarter of the shorter one.
    let look = (limits.header_timeout.min(limits.idle_timeout) / 4).max(Duration::from_millis(1));
    let looks = Looks::new(look);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(looks.clone()).header_read_timeout(limits.header_timeout);
    let mut conn = builder.serve_connection(io, service);
    let mut closing = false;
    // The idle timeout, without a clock read per read or write: the stream counts what moves,
    // and the looks compare the count. As many looks in a row as make the timeout, all seeing
    // no change, close the connection: it was idle for at least the timeout, and at most one
    // look (a quarter of the timeout, or less) longer.
    let quiet_looks = limits.idle_timeout.as_nanos().div_ceil(look.as_nanos()).max(1);
    let timer = tokio::time::sleep(look);
    tokio::pin!(timer);
    let stop = stopped.wait_for(|stop| *stop);
    tokio::pin!(stop);
    let (mut seen, mut quiet) = (0, 0u128);
    // Polled by hand rather than through `select!`: the connection first, as it is nearly
    // always what woke the task, and no branch made again on each turn.
    let done = std::future::poll_fn(|cx| {
        loop {
            if let Poll::Ready(done) = conn.poll_without_shutdown(cx) {
                return Poll::Ready(done);
            }
            if timer.as_mut().poll(cx).is_ready() {
                let now = Instant::now();
                looks.looked(now.into_std());
                let count = moved.load(Ordering::Relaxed);
                quiet = if count == seen { quiet + 1 } else { 0 };
                seen = count;
                if quiet >= quiet_looks && !closing {
                    Pin::new(&mut conn).graceful_shutdown();
                    closing = true;
                }
                // Looks go on while the connection closes: a request head still coming in has
                // its deadline.
                timer.as_mut().reset(now + look);
                // Round again: hyper compares its header deadline with the new look.
                continue;
            }
            // Once ready, the shutdown's future is not polled again.
            if !closing && stop.as_mut().poll(cx).is_ready() {
                Pin::new(&mut conn).graceful_shutdown();
                closing = true;
                continue;
            }
            return Poll::Pending;
        }
    })
    .await;
    if let Err(e) = done {
        // A broken connection (a timeout, a parse error, a reset): nothing to wait for.
        tracing::debug!(error = %e, "connection ended with an error");
        return;
    }
    let tcp = conn.into_parts().io.into_inner().inner;
    linger(tcp, limits).await;
}

/// Sends FIN, then reads and discards what the client still sends, within the bounds, so that
/// the response already written is not lost to a reset.
async fn linger(mut tcp: TcpStream, limits: Limits) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if limits.linger_bytes == 0 || tcp.shutdown().await.is_err() {
        return;
    }
    let deadline = Instant::now() + limits.linger_time;
    let mut left = limits.linger_bytes;
    let mut buf = vec![0u8; 16 * 1024];
    while left > 0 {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => return,
            Ok(Ok(n)) => left = left.saturating_sub(n),
        }
    }
}

/// The connection's clock for hyper's header-read timeout, as hyper's [`Timer`]: the time of
/// the connection's last look, rather than a clock read per request head, and deadlines that
/// the looks check, rather than a sleep registered with tokio's timer wheel (and removed
/// again) for every head.
///
/// A [`LookSleep`] registers no waker: the connection's own timer wakes its task at each look,
/// and the task then polls the connection, whose pending head read polls the sleep again. So a
/// head's deadline passes at the first look at or after it plus one look: at least the
/// timeout after hyper started waiting for the head (the time it read lags the real time by
/// at most a look), and at most two looks (half the timeout) more.
///
/// [`Timer`]: hyper::rt::Timer
#[derive(Clone)]
struct Looks(Arc<LookClock>);

struct LookClock {
    /// When the connection started.
    start: std::time::Instant,
    /// The time between looks.
    look: Duration,
    /// When the last look was, in nanoseconds since `start`.
    last: AtomicU64,
}

impl Looks {
    fn new(look: Duration) -> Self {
        Looks(Arc::new(LookClock { start: std::time::Instant::now(), look, last: AtomicU64::new(0) }))
    }

    /// A look, at `now`.
    fn looked(&self, now: std::time::Instant) {
        let since = u64::try_from(now.saturating_duration_since(self.0.start).as_nanos()).unwrap_or(u64::MAX);
        self.0.last.store(since, Ordering::Relaxed);
    }
}

impl LookClock {
    fn last(&self) -> std::time::Instant {
        self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }
}

impl hyper::rt::Timer for Looks {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(LookSleep { clock: self.0.clone(), until: deadline + self.0.look })
    }

    fn now(&self) -> std::time::Instant {
        self.0.last()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: std::time::Instant) {
        match sleep.as_mut().downcast_mut_pin::<LookSleep>() {
            Some(mut sleep) => sleep.until = new_deadline + self.0.look,
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// A deadline on a connection's [`Looks`]: ready once a look is at or past it.
struct LookSleep {
    clock: Arc<LookClock>,
    until: std::time::Instant,
}

impl Future for LookSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.clock.last() >= self.until { Poll::Ready(()) } else { Poll::Pending }
    }
}

impl hyper::rt::Sleep for LookSleep {}

/// A TCP stream that counts its reads and writes that moved a byte: the connection's idle
/// timer looks at the count.
struct Tracked {
    inner: TcpStream,
    moved: Arc<AtomicU64>,
}

impl Tracked {
    fn touch(&self) {
        // Written by this stream alone, read by its connection's timer: a plain store.
        self.moved.store(self.moved.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
