//! The HTTP listener: an accept loop over hyper's HTTP/1 connection
//! builder, so that clients that connect and then stall cannot exhaust the
//! daemon (docs/operations.md, "Connections").
//!
//! - Each request head must arrive within the header-read timeout
//!   (`HEADER_READ_TIMEOUT`, 10 s by default). hyper starts that clock
//!   whenever it waits for a head, so it also closes a kept-alive
//!   connection that sends nothing more: the idle keep-alive timeout.
//! - A connection on which no byte moves either way for the idle timeout
//!   (`IDLE_TIMEOUT`) is closed: a stalled upload, a client that
//!   stopped reading its download. The default outlasts the longest
//!   `?wait=`, which sends nothing until the export ends.
//! - At most `MAX_CONNECTIONS` connections are served at once. Past
//!   that a connection still gets an answer while descriptors last: 200 for
//!   `GET /healthz` (liveness must not depend on load) and 503 with
//!   `Retry-After` for anything else, then it is closed. Only beyond a
//!   second, small allowance is a connection closed unanswered.
//! - Running out of descriptors (`EMFILE`) pauses accepting briefly
//!   instead of spinning or stopping.
//!
//! Every shed connection is counted in `export_host_connections_shed`.

use crate::config::Guards;
use crate::server::metrics::Metrics;
use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Sleep;

/// Connections past the cap that still get an answer at once.
const SHED_ANSWERS: usize = 256;
/// How long a connection past the cap may take to send its head.
const SHED_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Descriptors kept back from connections for the database, files and
/// plugins when the cap is derived from `RLIMIT_NOFILE`.
const DESCRIPTOR_RESERVE: u64 = 256;
/// The largest cap derived from `RLIMIT_NOFILE`.
const MAX_DERIVED_CONNECTIONS: u64 = 16_384;
/// How long accepting pauses when the process is out of descriptors.
const DESCRIPTOR_PAUSE: Duration = Duration::from_millis(50);

/// The listener's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerSettings {
    /// Time to receive a request head; also the idle keep-alive limit.
    pub header_read_timeout: Duration,
    /// Time without a byte moving either way.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl ListenerSettings {
    /// The listener's part of the settings; an unset `MAX_CONNECTIONS` is
    /// derived from the descriptor limit.
    pub fn from_guards(guards: &Guards) -> ListenerSettings {
        ListenerSettings {
            header_read_timeout: guards.header_read_timeout,
            idle_timeout: guards.idle_timeout,
            max_connections: guards
                .max_connections
                .unwrap_or_else(derived_max_connections),
        }
    }
}

/// Raises the soft descriptor limit to the hard one (at most 65,536): the
/// soft default of 1,024 is far below what a daemon serving many clients
/// needs, and the hard limit is what the administrator allowed.
pub fn raise_descriptor_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let want = hard.min(65_536);
    if want > soft {
        match setrlimit(Resource::RLIMIT_NOFILE, want, hard) {
            Ok(()) => tracing::info!(from = soft, to = want, "raised the open-file limit"),
            Err(err) => tracing::warn!(error = %err, soft, "cannot raise the open-file limit"),
        }
    }
}

/// The cap when none is set: the descriptor limit less a reserve.
fn derived_max_connections() -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    let cap = soft
        .saturating_sub(DESCRIPTOR_RESERVE)
        .clamp(16, MAX_DERIVED_CONNECTIONS);
    usize::try_from(cap).unwrap_or(16)
}

/// Serves `app` on `listener` until `stop` turns true, then stops accepting
/// and lets open connections finish their current request.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: ListenerSettings,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let shed = Arc::new(Semaphore::new(SHED_ANSWERS));
    let mut last_exhaustion_log: Option<Instant> = None;
    tracing::info!(
        max_connections = settings.max_connections,
        header_read_timeout = ?settings.header_read_timeout,
        idle_timeout = ?settings.idle_timeout,
        "accepting connections"
    );
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) if out_of_descriptors(&err) => {
                metrics.connection_shed("descriptors");
                if last_exhaustion_log.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                    tracing::error!(error = %err, "out of file descriptors: new connections wait in the backlog (raise LimitNOFILE, or lower MAX_CONNECTIONS)");
                    last_exhaustion_log = Some(Instant::now());
                }
                tokio::time::sleep(DESCRIPTOR_PAUSE).await;
                continue;
            }
            Err(err) => {
                // A connection reset before it was accepted, and the like.
                tracing::debug!(error = %err, "accept failed");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            let io = TokioIo::new(IdleIo::new(stream, settings.idle_timeout));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(settings.header_read_timeout)
                .serve_connection(io, TowerToHyperService::new(app.clone()));
            let connection = graceful.watch(connection);
            let metrics = metrics.clone();
            tokio::spawn(async move {
                metrics.connections_open().inc();
                if let Err(err) = connection.await {
                    if err.is_timeout() {
                        metrics.connection_shed("header_timeout");
                    }
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                metrics.connections_open().dec();
                drop(permit);
            });
            continue;
        }
        metrics.connection_shed("limit");
        let Ok(permit) = shed.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let max = settings.max_connections;
        let io = TokioIo::new(stream);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(SHED_HEADER_TIMEOUT.min(settings.header_read_timeout))
            .keep_alive(false)
            .serve_connection(
                io,
                hyper::service::service_fn(move |request| async move {
                    Ok::<_, std::convert::Infallible>(over_capacity(&request, max))
                }),
            );
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The answer to a connection past the cap.
fn over_capacity<B>(request: &Request<B>, max: usize) -> Response<Body> {
    let (status, body) = if request.uri().path() == "/healthz" {
        (StatusCode::OK, r#"{"status":"ok"}"#.to_owned())
    } else {
        let message = format!(
            "the daemon is serving its most connections at once ({max}); retry in a moment"
        );
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": {"code": "unavailable", "message": message}}).to_string(),
        )
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    if status != StatusCode::OK {
        headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

fn out_of_descriptors(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// A TCP stream that fails once no byte has moved either way for
/// `timeout` while the server waits on it.
struct IdleIo {
    inner: TcpStream,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl IdleIo {
    fn new(inner: TcpStream, timeout: Duration) -> IdleIo {
        IdleIo {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn moved(&mut self) {
        let next = tokio::time::Instant::now() + self.timeout;
        self.deadline.as_mut().reset(next);
    }

    /// A write's poll, passed on: bytes written restart the idle clock, and
    /// a write that waits is failed once the clock runs out.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => self.expired(cx),
        }
    }

    fn expired<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match std::future::Future::poll(self.deadline.as_mut(), cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no byte moved on the connection for the idle timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for IdleIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => this.expired(cx),
        }
    }
}

impl AsyncWrite for IdleIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
