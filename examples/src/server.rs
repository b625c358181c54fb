//! The web process's HTTP server: hyper's HTTP/1 connections with a header-read timeout and
//! an idle timeout, and the graceful shutdown.
//!
//! `axum::serve` sets neither timeout, so a client that opens a connection and never
//! finishes its headers holds it (and a file descriptor) for as long as it likes; a few
//! thousand such clients exhaust the process. This loop accepts connections itself:
//! - [`ServeConfig::header_read_timeout`] bounds the time from the moment a connection can
//!   take a request (when it opens, or when the previous response is written) to the end of
//!   the request's headers. It also closes keep-alive connections that stay idle that long.
//! - [`ServeConfig::idle_timeout`] bounds the time a connection may make no progress while
//!   the server waits on the client: a request body that stops coming, or a response the
//!   client stops reading. It is longer than [`queue_web::REQUEST_TIMEOUT`], so a handler
//!   that is still working (a long poll) is never cut short by it.
//!
//! HTTP/1.1 only: the platform's router speaks HTTP/1.1 to dynos.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// Default time a client has to send a request's headers (also the keep-alive idle limit).
///
/// Long enough for a slow mobile client to send a few hundred bytes of headers; far below
/// the 70 s a half-open connection used to last.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a connection may make no progress while the server waits on the client.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the web process waits for open requests after SIGTERM before it exits anyway.
///
/// Every request already ends within [`queue_web::REQUEST_TIMEOUT`] (long polls included),
/// so this only guards against the unexpected; it stays under the platform's 30 s SIGKILL.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(27);
/// Pause after a failed `accept` (out of file descriptors, say), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

const _: () = assert!(DRAIN_TIMEOUT.as_secs() > queue_web::REQUEST_TIMEOUT.as_secs());
const _: () = assert!(DRAIN_TIMEOUT.as_secs() < 30);
// A handler may make no I/O progress for up to the request timeout (a long poll).
const _: () = assert!(IDLE_TIMEOUT.as_secs() > queue_web::REQUEST_TIMEOUT.as_secs());

/// The server's connection timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeConfig {
    /// From "ready for a request" to the end of its headers; see the module docs.
    pub header_read_timeout: Duration,
    /// Longest stretch without progress while waiting on the client; see the module docs.
    pub idle_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// [`serve_with`] the default [`ServeConfig`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, app, ServeConfig::default(), shutdown).await
}

/// Serves `app` on `listener` until `shutdown` completes, then drains open requests.
///
/// Each request carries the peer address as `ConnectInfo<SocketAddr>` (the rate limit keys
/// on it). After the signal no new connection is accepted and idle ones are closed;
/// requests in flight finish (each within `REQUEST_TIMEOUT`), bounded by [`DRAIN_TIMEOUT`].
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let io = TokioIo::new(IdleTimeout::new(stream, config.idle_timeout));
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            // Timeouts and resets end here: the client's trouble, not the server's.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, draining open requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("web stopped"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!(?DRAIN_TIMEOUT, "requests still open at the drain timeout; exiting");
        }
    }
    Ok(())
}

/// A connection that fails with `TimedOut` once a read or write has waited `idle` without
/// any progress. Only a pending read or write arms the check: while the handler works and
/// hyper waits on neither, nothing is timed here.
struct IdleTimeout<T> {
    inner: T,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<T> IdleTimeout<T> {
    fn new(inner: T, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    /// Something moved: the idle time starts again.
    fn progressed(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// Nothing moved: pending until the deadline, then `TimedOut`.
    fn waiting<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn track<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.waiting(cx),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.track(cx, polled)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.track(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.track(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.track(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
