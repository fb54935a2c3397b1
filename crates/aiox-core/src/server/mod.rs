//! The server engine: accept loop, per-connection driver on hyper-util's
//! `server::conn::auto` (HTTP/1.1 with keep-alive and pipelining, HTTP/2 by prior
//! knowledge on the same port, TLS with ALPN), hardened limits and graceful shutdown.
//!
//! ```no_run
//! use aiox_core::Body;
//! use aiox_core::server::{Listener, Server, ServerConfig, service_fn, shutdown_signal};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let service = service_fn(|_req, _conn| async { http::Response::new(Body::from("hi")) });
//! let server = Server::new(service, ServerConfig::default());
//! let listener = Listener::bind_tcp("127.0.0.1:8080".parse().unwrap()).await?;
//! server.serve_until(listener, shutdown_signal()).await
//! # }
//! ```

mod config;
pub(crate) mod conn;
mod io;
mod listener;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::{Notify, Semaphore, watch};

pub use config::*;
pub use listener::{DEFAULT_BACKLOG, ListenAddr, Listener};

use crate::Body;
use listener::{Accepted, accept_error_pause};

/// What a server calls for every request: aiox-web's `Application` implements it, and
/// [`service_fn`] turns a closure into one.
///
/// The request body is an [`Body`] reading from the connection. The returned future
/// must be `'static` because HTTP/2 streams are served on their own tasks.
///
/// # Panics
///
/// A panic while the returned future is polled is caught: the client gets a `500`,
/// the panic is logged once (`tracing`, ERROR) and the connection is closed after that
/// response. `call` itself should only build the future; [`service_fn`] and aiox-web's
/// application defer a panic raised there to the future's first poll, so it is handled
/// the same way. A custom service whose `call` panics loses that connection (without
/// a response); the server keeps serving the others. Catching in `call` would cost
/// every request ~100 instructions for a case the two shipped services rule out.
pub trait HttpService: Send + Sync + 'static {
    /// The future of one response.
    type Future: Future<Output = Response<Body>> + Send + 'static;

    /// Handles one request, its head and body, that arrived on the connection
    /// described by `conn`. (The head and body come apart so that a service which
    /// keeps them in its own request type does not move the head twice.)
    fn call(
        &self,
        head: http::request::Parts,
        body: Body,
        conn: &Arc<ConnectionInfo>,
    ) -> Self::Future;
}

pin_project_lite::pin_project! {
    /// The future of a [`ServiceFn`]: the closure's future, or a panic raised while
    /// the closure built it, re-raised on the first poll (where the server catches it).
    pub struct ServiceFnFuture<Fut> {
        #[pin]
        inner: FnFuture<Fut>,
    }
}

pin_project_lite::pin_project! {
    #[project = FnFutureProj]
    enum FnFuture<Fut> {
        Call { #[pin] fut: Fut },
        Panicked { payload: Option<Box<dyn std::any::Any + Send>> },
    }
}

impl<Fut> std::fmt::Debug for ServiceFnFuture<Fut> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceFnFuture").finish_non_exhaustive()
    }
}

impl<Fut: Future> Future for ServiceFnFuture<Fut> {
    type Output = Fut::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Fut::Output> {
        match self.project().inner.project() {
            FnFutureProj::Call { fut } => fut.poll(cx),
            FnFutureProj::Panicked { payload } => match payload.take() {
                Some(payload) => std::panic::resume_unwind(payload),
                None => std::task::Poll::Pending,
            },
        }
    }
}

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone, Default)]
pub struct ConnectionInfo {
    remote_addr: Option<SocketAddr>,
    local_addr: Option<SocketAddr>,
    tls: bool,
    alpn: Option<Vec<u8>>,
}

impl ConnectionInfo {
    /// Describes a connection (used by servers and by tests that call a service directly).
    pub fn new(remote_addr: Option<SocketAddr>, local_addr: Option<SocketAddr>) -> Self {
        Self {
            remote_addr,
            local_addr,
            tls: false,
            alpn: None,
        }
    }

    /// The peer's address; `None` on a Unix domain socket.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The local address the connection was accepted on; `None` on a Unix domain socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// True if the connection is TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The ALPN protocol agreed in the TLS handshake (`b"h2"`, `b"http/1.1"`), if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }
}

/// A [`HttpService`] made from a closure; see [`service_fn`].
pub struct ServiceFn<F> {
    f: F,
}

impl<F> std::fmt::Debug for ServiceFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceFn").finish_non_exhaustive()
    }
}

/// Makes a [`HttpService`] from `async |request, connection| response`.
pub fn service_fn<F, Fut>(f: F) -> ServiceFn<F>
where
    F: Fn(Request<Body>, &Arc<ConnectionInfo>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    ServiceFn { f }
}

impl<F, Fut> HttpService for ServiceFn<F>
where
    F: Fn(Request<Body>, &Arc<ConnectionInfo>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    type Future = ServiceFnFuture<Fut>;

    fn call(
        &self,
        head: http::request::Parts,
        body: Body,
        conn: &Arc<ConnectionInfo>,
    ) -> ServiceFnFuture<Fut> {
        let req = Request::from_parts(head, body);
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.f)(req, conn)));
        let inner = match call {
            Ok(fut) => FnFuture::Call { fut },
            Err(payload) => FnFuture::Panicked {
                payload: Some(payload),
            },
        };
        ServiceFnFuture { inner }
    }
}

impl<S: HttpService> HttpService for Arc<S> {
    type Future = S::Future;

    fn call(
        &self,
        head: http::request::Parts,
        body: Body,
        conn: &Arc<ConnectionInfo>,
    ) -> S::Future {
        (**self).call(head, body, conn)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    Graceful,
    Force,
}

pub(crate) struct ServerInner<S> {
    service: S,
    config: ServerConfig,
    builder: auto::Builder<TokioExecutor>,
    phase: watch::Sender<Phase>,
    connections: AtomicUsize,
    drained: Notify,
    limit: Option<Arc<Semaphore>>,
    /// Open connections' shared state, so shutdown can signal each one.
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    open: HashMap<u64, Arc<conn::ConnShared>>,
}

/// Removes a connection from the registry when it ends.
pub(crate) struct Registration<'a, S> {
    server: &'a ServerInner<S>,
    id: u64,
}

impl<S> Drop for Registration<'_, S> {
    fn drop(&mut self) {
        if let Ok(mut registry) = self.server.registry.lock() {
            registry.open.remove(&self.id);
        }
    }
}

impl<S> ServerInner<S> {
    /// Adds a connection to the registry; one that arrives during a shutdown is told
    /// to close at once.
    pub(crate) fn register(&self, shared: &Arc<conn::ConnShared>) -> Registration<'_, S> {
        let id = match self.registry.lock() {
            Ok(mut registry) => {
                let id = registry.next;
                registry.next += 1;
                registry.open.insert(id, shared.clone());
                id
            }
            Err(_) => u64::MAX,
        };
        match *self.phase.borrow() {
            Phase::Running => {}
            Phase::Graceful => {
                shared.signal(conn::CONTROL_GRACEFUL);
            }
            Phase::Force => {
                shared.signal(conn::CONTROL_FORCE);
            }
        }
        Registration { server: self, id }
    }

    /// Moves to `phase` and signals every open connection.
    fn enter(&self, phase: Phase) {
        self.phase.send_replace(phase);
        let bits = match phase {
            Phase::Running => return,
            Phase::Graceful => conn::CONTROL_GRACEFUL,
            Phase::Force => conn::CONTROL_FORCE,
        };
        let open: Vec<_> = match self.registry.lock() {
            Ok(registry) => registry.open.values().cloned().collect(),
            Err(_) => Vec::new(),
        };
        for shared in open {
            shared.signal(bits);
        }
    }
}

/// A server: one service, one configuration, any number of listeners, and one
/// graceful shutdown for all of them. Cloning gives another handle to the same server.
pub struct Server<S> {
    inner: Arc<ServerInner<S>>,
}

impl<S> Clone for Server<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.inner.config)
            .field(
                "connections",
                &self.inner.connections.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

fn hyper_builder(config: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .half_close(false)
        .max_headers(config.max_headers)
        .max_buf_size(config.max_head_size.max(8 * 1024))
        // hyper's head timer also runs while a keep-alive connection is idle and
        // allocates per request; `io::TimedIo` enforces both deadlines instead.
        .header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.h2_max_concurrent_streams)
        .max_header_list_size(config.h2_max_header_list_size)
        .max_pending_accept_reset_streams(config.h2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(config.h2_max_local_error_reset_streams)
        .initial_stream_window_size(config.h2_stream_window)
        .initial_connection_window_size(config.h2_connection_window)
        .max_send_buf_size(config.h2_max_send_buf_size)
        .enable_connect_protocol();
    builder
}

struct ConnectionCount<S> {
    server: Arc<ServerInner<S>>,
}

impl<S> Drop for ConnectionCount<S> {
    fn drop(&mut self) {
        if self.server.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.server.drained.notify_waiters();
        }
    }
}

impl<S: HttpService> Server<S> {
    /// A server for `service` with `config`.
    pub fn new(service: S, config: ServerConfig) -> Self {
        let builder = hyper_builder(&config);
        let limit = config.max_connections.map(|n| Arc::new(Semaphore::new(n)));
        let (phase, _) = watch::channel(Phase::Running);
        Self {
            inner: Arc::new(ServerInner {
                service,
                config,
                builder,
                phase,
                connections: AtomicUsize::new(0),
                drained: Notify::new(),
                limit,
                registry: Mutex::new(Registry::default()),
            }),
        }
    }

    /// The server's configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The service requests are handed to.
    pub fn service(&self) -> &S {
        &self.inner.service
    }

    /// Connections open right now.
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// Accepts connections on `listener` until [`shutdown`](Self::shutdown) is called.
    /// Accept errors never end the loop: resource errors (EMFILE, ...) pause it for
    /// [`ServerConfig::accept_error_backoff`], others are skipped.
    pub async fn serve(&self, listener: Listener) -> std::io::Result<()> {
        self.accept_loop(listener, None).await
    }

    /// Accepts TLS connections on `listener` until [`shutdown`](Self::shutdown) is
    /// called. Handshakes run on the connection's own task with
    /// [`ServerConfig::tls_handshake_timeout`], so a slow client never blocks accepting.
    #[cfg(feature = "tls")]
    pub async fn serve_tls(
        &self,
        listener: Listener,
        tls: crate::tls::TlsConfig,
    ) -> std::io::Result<()> {
        self.accept_loop(listener, Some(tls.acceptor())).await
    }

    /// Serves `listener` until `signal` completes, then shuts down gracefully
    /// (see [`shutdown`](Self::shutdown)).
    pub async fn serve_until(
        &self,
        listener: Listener,
        signal: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let serve = self.serve(listener);
        tokio::select! {
            res = serve => res?,
            () = signal => {}
        }
        self.shutdown().await;
        Ok(())
    }

    /// Starts a graceful shutdown and waits for it: every accept loop stops, HTTP/1
    /// connections answer their in-flight request with `Connection: close` and idle ones
    /// close now, HTTP/2 connections get GOAWAY; connections still open after
    /// [`ServerConfig::shutdown_grace`] are closed. Returns true if every connection
    /// finished within the grace period.
    pub async fn shutdown(&self) -> bool {
        let inner = &self.inner;
        inner.enter(Phase::Graceful);
        let drained = async {
            loop {
                let notified = inner.drained.notified();
                if inner.connections.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let clean = tokio::time::timeout(inner.config.shutdown_grace, drained)
            .await
            .is_ok();
        if !clean {
            tracing::warn!(
                open = inner.connections.load(Ordering::Relaxed),
                "shutdown grace period over, closing the remaining connections"
            );
            inner.enter(Phase::Force);
        }
        clean
    }

    /// Starts a graceful shutdown without waiting for it.
    pub fn start_shutdown(&self) {
        self.inner.enter(Phase::Graceful);
    }

    async fn accept_loop(
        &self,
        listener: Listener,
        #[cfg(feature = "tls")] tls: Option<tokio_rustls::TlsAcceptor>,
        #[cfg(not(feature = "tls"))] _tls: Option<()>,
    ) -> std::io::Result<()> {
        let inner = &self.inner;
        let mut phase = inner.phase.subscribe();
        let stopped = |p: &Phase| *p != Phase::Running;
        if stopped(&phase.borrow()) {
            return Ok(());
        }
        loop {
            let permit = match &inner.limit {
                Some(limit) => tokio::select! {
                    permit = limit.clone().acquire_owned() => permit.ok(),
                    _ = phase.wait_for(stopped) => return Ok(()),
                },
                None => None,
            };
            let accepted = tokio::select! {
                biased;
                _ = phase.wait_for(stopped) => return Ok(()),
                res = listener.accept() => res,
            };
            let accepted = match accepted {
                Ok(a) => a,
                Err(err) => {
                    if let Some(pause) = accept_error_pause(&err, inner.config.accept_error_backoff)
                    {
                        tracing::error!(error = %err, ?pause, "accept failed, pausing");
                        tokio::select! {
                            () = tokio::time::sleep(pause) => {}
                            _ = phase.wait_for(stopped) => return Ok(()),
                        }
                    } else {
                        tracing::debug!(error = %err, "accept failed for one connection");
                    }
                    continue;
                }
            };
            inner.connections.fetch_add(1, Ordering::AcqRel);
            let count = ConnectionCount {
                server: inner.clone(),
            };
            let server = inner.clone();
            #[cfg(feature = "tls")]
            let tls = tls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let _count = count;
                match accepted {
                    Accepted::Tcp(stream, remote, local) => {
                        let info = ConnectionInfo::new(remote, local);
                        #[cfg(feature = "tls")]
                        if let Some(tls) = tls {
                            let timeout = server.config.tls_handshake_timeout;
                            match tokio::time::timeout(timeout, tls.accept(stream)).await {
                                Ok(Ok(stream)) => {
                                    let mut info = info;
                                    info.tls = true;
                                    info.alpn =
                                        stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                                    conn::serve_connection(stream, info, server).await;
                                }
                                Ok(Err(err)) => {
                                    tracing::debug!(error = %err, ?remote, "TLS handshake failed");
                                }
                                Err(_) => {
                                    tracing::debug!(?remote, "TLS handshake timed out");
                                }
                            }
                            return;
                        }
                        conn::serve_connection(stream, info, server).await;
                    }
                    Accepted::Unix(stream) => {
                        let info = ConnectionInfo::new(None, None);
                        conn::serve_connection(stream, info, server).await;
                    }
                }
            });
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM: the usual trigger of a graceful shutdown.
///
/// The signal handlers are installed when this function is called, not when the future
/// is first polled, so call it before announcing that the server is ready: a signal
/// sent right after the announcement is then never lost. Must be called within a
/// tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(s) => Some(s),
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for {name}");
            None
        }
    };
    let interrupt = listen(SignalKind::interrupt(), "SIGINT");
    let terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {}
            () = wait(terminate) => {}
        }
    }
}
