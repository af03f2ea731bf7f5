//! Connections: how many are served at once, how long a client may take to send a request
//! head or leave a kept-alive connection idle, and how one is closed.
//!
//! `axum::serve` sets none of these (a client sending a header a byte a minute held its
//! connection for ever), so the accept loop is here, over hyper's HTTP/1 connection builder:
//!
//! * at most [`Limits::max_connections`] connections at once: past that, new connections
//!   wait in the kernel's backlog until one closes;
//! * hyper's header-read timeout ([`Limits::header_timeout`]): a request head must be
//!   complete within it, counted from when the connection starts waiting for that head (so it
//!   also ends a kept-alive connection that sends nothing);
//! * an idle timeout ([`Limits::idle_timeout`]): a connection with no bytes read or written
//!   for that long (and at most a quarter longer) is closed gracefully, after the response in
//!   flight if there is one;
//! * a lingering close, as nginx's: when hyper is done with a connection, the server sends
//!   its FIN and then reads and discards what the client still sends, up to
//!   [`Limits::linger_bytes`] and [`Limits::linger_time`], before closing. A client that
//!   writes a whole oversized body before reading (Python's `urllib`, many SDKs) is answered
//!   413 before the body is read; closing at once, with its bytes still arriving, would make
//!   the kernel send a reset, and the client would see a broken pipe instead of the 413.

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
use hyper_util::rt::{TokioIo, TokioTimer};
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
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let mut conn = builder.serve_connection(io, service);
    let mut closing = false;
    // The idle timeout, without a clock read per read or write: the stream counts what moves,
    // and one timer looks at the count every quarter of the timeout. Four looks in a row that
    // see no change close the connection: it was idle for at least the timeout, and at most a
    // quarter longer.
    let look = (limits.idle_timeout / 4).max(Duration::from_millis(1));
    let idle = tokio::time::sleep(look);
    tokio::pin!(idle);
    let (mut seen, mut quiet) = (0, 0);
    loop {
        tokio::select! {
            done = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => {
                if let Err(e) = done {
                    // A broken connection (a timeout, a parse error, a reset): nothing to wait for.
                    tracing::debug!(error = %e, "connection ended with an error");
                    return;
                }
                break;
            }
            () = &mut idle, if !closing => {
                let now = moved.load(Ordering::Relaxed);
                quiet = if now == seen { quiet + 1 } else { 0 };
                seen = now;
                if quiet >= 4 {
                    Pin::new(&mut conn).graceful_shutdown();
                    closing = true;
                } else {
                    idle.as_mut().reset(Instant::now() + look);
                }
            }
            changed = stopped.changed(), if !closing => {
                if changed.is_err() || *stopped.borrow() {
                    Pin::new(&mut conn).graceful_shutdown();
                    closing = true;
                }
            }
        }
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
