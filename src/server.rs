//! The HTTP/1.1 server: accepting connections and serving the router on each, within the
//! bounds of `[limits]` (connection cap, header-read and idle timeouts, header size). A
//! client that opens connections and then sends nothing, half a request (slowloris) or stops
//! reading its responses holds a bounded number of descriptors for a bounded time.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower_service::Service;

use crate::state::AppState;

/// Serve until `shutdown` resolves; in-flight requests finish first.
///
/// Every connection is bounded by `[limits]`: at most `max_connections` are served at once
/// (the next ones wait in the kernel's accept queue and hold no descriptor of ours); the
/// request line and headers must arrive within `header_read_timeout_seconds` and fit in
/// `max_header_bytes`; and a connection on which no byte moves for `idle_timeout_seconds`
/// is dropped. hyper starts the header timer whenever it waits for a request, so it also
/// ends keep-alive connections that stay idle that long.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let max_connections = state.config.limits.max_connections;
    let app = crate::http::router(state.clone());
    serve_app(&state, app, max_connections, listener, shutdown).await
}

/// Connections served at once by the metrics listener: a scraper or two, and a bound should
/// the port be reachable by more than it ought to be.
const METRICS_MAX_CONNECTIONS: usize = 16;

/// Serve `/metrics` alone on the `[metrics] bind` listener, within the same `[limits]`.
pub async fn serve_metrics(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = crate::http::metrics_router(state.clone());
    serve_app(&state, app, METRICS_MAX_CONNECTIONS, listener, shutdown).await
}

async fn serve_app(
    state: &AppState,
    app: axum::Router,
    max_connections: usize,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = state.config.limits.clone();
    let metrics = state.core.metrics.clone();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_seconds))
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    let conn = Arc::new(ConnSettings {
        http,
        app,
        idle: Duration::from_secs(limits.idle_timeout_seconds),
        metrics,
    });
    let slots = Arc::new(Semaphore::new(fd_budget(max_connections)));
    // Connections start a graceful shutdown when `stop` is dropped; each holds a `done`
    // receiver, so `done.closed()` resolves when the last one has finished.
    let (stop, stop_rx) = watch::channel(());
    let (done, done_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // The slot is taken before accepting: at the cap, new connections wait in the
        // kernel's backlog instead of each holding a descriptor here.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p?,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let ticket = Ticket {
            _slot: permit,
            stop: stop_rx.clone(),
            _done: done_rx.clone(),
            _open: Open::new(&conn.metrics.connections),
        };
        tokio::spawn(serve_connection(conn.clone(), tcp, peer, ticket));
    }
    // Stop accepting, let every connection finish its request in flight, then return.
    drop(listener);
    drop(stop);
    drop((stop_rx, done_rx));
    done.closed().await;
    Ok(())
}

/// What every connection is served with.
struct ConnSettings {
    http: hyper::server::conn::http1::Builder,
    app: axum::Router,
    idle: Duration,
    metrics: crate::metrics::Metrics,
}

/// Held by a connection task until it ends, however it ends: its slot under
/// `max_connections`, the shutdown signal, its share of the "all done" channel, and its
/// count in the open-connections gauge.
struct Ticket {
    _slot: OwnedSemaphorePermit,
    stop: watch::Receiver<()>,
    _done: watch::Receiver<()>,
    _open: Open,
}

/// Counts a connection in `latchkey_http_connections` while it lives.
struct Open(IntGauge);

impl Open {
    fn new(g: &IntGauge) -> Self {
        g.inc();
        Self(g.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn serve_connection(c: Arc<ConnSettings>, tcp: TcpStream, peer: SocketAddr, mut t: Ticket) {
    // Every answer is small and written at once: waiting to coalesce it (Nagle) could only
    // add latency, never save a packet.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    let io = Watched::new(tcp);
    let (last, epoch) = (io.last.clone(), io.epoch);
    let quiet_since = move || epoch + Duration::from_millis(last.load(Ordering::Relaxed));
    let app = c.app.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        // What `into_make_service_with_connect_info` would add; `ClientIp` reads it.
        req.extensions_mut().insert(ConnectInfo(peer));
        // A Router is always ready (`poll_ready` is a constant `Ready`), so it is called as is.
        app.clone().call(req)
    });
    let conn = c.http.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        let idle_until = quiet_since() + c.idle;
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            _ = t.stop.changed(), if !stopping => {
                conn.as_mut().graceful_shutdown();
                stopping = true;
            }
            () = tokio::time::sleep_until(idle_until) => {
                // Bytes may have moved since the deadline was computed: look again.
                if quiet_since() + c.idle <= tokio::time::Instant::now() {
                    tracing::debug!("closing a connection on which nothing moved");
                    break;
                }
            }
        }
    }
}

/// A failed accept: a connection that died in the queue is skipped; anything else (out of
/// descriptors, out of memory) is logged and retried after a pause rather than spun on.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Descriptors kept free of connections: the database pool, the listener, log and key files.
const FD_RESERVE: u64 = 128;

/// How many connections fit under the open-file limit: the soft limit is raised to the hard
/// one (as Go does at startup), and `max_connections` is lowered, with a warning, if it
/// still would not fit with `FD_RESERVE` to spare. Running out of descriptors stops
/// `accept` and every database connection with it.
fn fd_budget(max_connections: usize) -> usize {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let mut lim = getrlimit(Resource::Nofile);
        if lim.current < lim.maximum {
            let raised = Rlimit {
                current: lim.maximum,
                maximum: lim.maximum,
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                lim = raised;
            }
        }
        if let Some(soft) = lim.current {
            let fit = usize::try_from(soft.saturating_sub(FD_RESERVE).max(1)).unwrap_or(usize::MAX);
            if fit < max_connections {
                tracing::warn!(
                    max_connections,
                    open_file_limit = soft,
                    serving = fit,
                    "limits.max_connections does not fit under the open-file limit (ulimit -n); serving fewer"
                );
                return fit;
            }
        }
    }
    max_connections
}

/// A TCP stream that records when bytes last moved either way (milliseconds since `epoch`),
/// for the idle timeout.
struct Watched {
    inner: TcpStream,
    epoch: tokio::time::Instant,
    last: Arc<AtomicU64>,
}

impl Watched {
    fn new(inner: TcpStream) -> Self {
        Self {
            inner,
            epoch: tokio::time::Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
