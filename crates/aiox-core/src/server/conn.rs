//! One connection: the hyper service adapter (limits, request counting, panic
//! isolation) and the task that drives the connection to its end.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::Waker;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::io::TimedIo;
use super::{ConnectionInfo, HttpService, ServerInner};
use crate::Body;

/// Connection is between requests (HTTP/1): no head deadline runs.
pub(crate) const STATE_IDLE: u8 = 0;
/// Reading a request head (HTTP/1): the head deadline runs.
pub(crate) const STATE_HEAD: u8 = 1;
/// A request is being served (HTTP/1).
pub(crate) const STATE_BUSY: u8 = 2;
/// The connection speaks HTTP/2: head deadlines do not apply.
pub(crate) const STATE_H2: u8 = 3;

/// State shared by a connection's I/O wrapper, its service and its driver task.
pub(crate) struct ConnShared {
    pub(crate) state: AtomicU8,
    pub(crate) requests: AtomicU64,
    pub(crate) active: AtomicUsize,
    /// Bumped by the request guard when the last in-flight request finishes: the
    /// I/O wrapper starts the idle timeout when it next sees a new value. Reading the
    /// clock there, once per idle period, rather than in the guard keeps a busy
    /// pipelined connection free of clock reads.
    pub(crate) idle_gen: AtomicU64,
    /// `CONTROL_*` bits set by the server or the service, read by the driver.
    control: AtomicU8,
    /// An HTTP/1 request body was dropped before its end: if the connection closes
    /// before another request starts, the client may still be sending it.
    unread_body: AtomicBool,
    /// The driver task's waker, stored once: the connection runs on one task.
    waker: Mutex<Option<Waker>>,
}

/// Close gracefully: `Connection: close` / GOAWAY, finish in-flight requests.
pub(crate) const CONTROL_GRACEFUL: u8 = 1;
/// Close now.
pub(crate) const CONTROL_FORCE: u8 = 2;

impl ConnShared {
    fn new() -> Self {
        Self {
            state: AtomicU8::new(STATE_HEAD),
            requests: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            idle_gen: AtomicU64::new(0),
            control: AtomicU8::new(0),
            unread_body: AtomicBool::new(false),
            waker: Mutex::new(None),
        }
    }

    /// Sets `bits` in the control word and wakes the driver if they are new; true if
    /// they were.
    pub(crate) fn signal(&self, bits: u8) -> bool {
        let before = self.control.fetch_or(bits, Ordering::AcqRel);
        if before & bits == bits {
            return false;
        }
        let waker = match self.waker.lock() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Records that a request body was dropped unfinished (HTTP/1).
    pub(crate) fn mark_unread_body(&self) {
        self.unread_body.store(true, Ordering::Relaxed);
    }

    /// True if the last request's body was dropped unfinished.
    pub(crate) fn has_unread_body(&self) -> bool {
        self.unread_body.load(Ordering::Relaxed)
    }

    /// A new request started: hyper drained the previous body, if it was unread.
    /// Stores only when the flag is set, so a busy connection does not write it.
    fn clear_unread_body(&self) {
        if self.has_unread_body() {
            self.unread_body.store(false, Ordering::Relaxed);
        }
    }

    /// True if no request is in flight in connection state `state`: an HTTP/1
    /// connection between requests, or an HTTP/2 connection without streams. The
    /// idle timeout runs only then.
    pub(crate) fn no_request_in(&self, state: u8) -> bool {
        state == STATE_IDLE || (state == STATE_H2 && self.active.load(Ordering::Relaxed) == 0)
    }

    /// Asks the driver to close the connection gracefully (HTTP/2 GOAWAY); true if this
    /// is the first request to close.
    pub(crate) fn request_close(&self) -> bool {
        self.signal(CONTROL_GRACEFUL)
    }
}

/// Lives as long as a response body: marks the request finished when dropped.
struct RequestGuard {
    shared: Arc<ConnShared>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let shared = &self.shared;
        let last = shared.active.fetch_sub(1, Ordering::Relaxed) == 1;
        // Only an HTTP/1 connection moves back to idle; compare_exchange leaves H2 alone.
        let _ = shared.state.compare_exchange(
            STATE_BUSY,
            STATE_IDLE,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if last {
            shared.idle_gen.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A streamed response body with its request guard: the request counts as in flight
/// until the body has been sent. A body already in memory needs no guard (see
/// [`ResponseFuture`]), so the common response passes to hyper unwrapped.
struct GuardedBody {
    body: Body,
    _guard: RequestGuard,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = crate::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, crate::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The per-connection hyper service.
pub(crate) struct ConnService<S> {
    server: Arc<ServerInner<S>>,
    info: Arc<ConnectionInfo>,
    shared: Arc<ConnShared>,
    /// The last `Host` value found valid on this connection: a keep-alive client
    /// sends the same one on every request, and comparing it is cheaper than
    /// validating it again.
    last_host: Cell<HostCache>,
}

/// A copy of a short valid `Host` value (`len == 0`: none yet).
#[derive(Clone, Copy)]
struct HostCache {
    len: u8,
    bytes: [u8; HOST_CACHE_LEN],
}

/// Longest `Host` value [`HostCache`] keeps; longer ones are validated every time.
const HOST_CACHE_LEN: usize = 31;

impl HostCache {
    const EMPTY: Self = Self {
        len: 0,
        bytes: [0; HOST_CACHE_LEN],
    };

    fn matches(&self, host: &[u8]) -> bool {
        self.len != 0 && host.len() == usize::from(self.len) && &self.bytes[..host.len()] == host
    }

    fn remember(host: &[u8]) -> Self {
        let mut cache = Self::EMPTY;
        if !host.is_empty() && host.len() <= HOST_CACHE_LEN {
            cache.bytes[..host.len()].copy_from_slice(host);
            cache.len = host.len() as u8;
        }
        cache
    }
}

impl<S> Clone for ConnService<S> {
    fn clone(&self) -> Self {
        Self {
            server: self.server.clone(),
            info: self.info.clone(),
            shared: self.shared.clone(),
            last_host: self.last_host.clone(),
        }
    }
}

/// Bytes allowed in an RFC 3986 `reg-name`: unreserved, `%` and sub-delims.
const REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        b += 1;
    }
    table
};

/// RFC 3986 `host [ ":" port ]`, empty allowed (RFC 9112 §3.2); no userinfo. A byte
/// loop rather than `http::uri::Authority`'s parser, which costs ~10x as much on
/// every request.
fn valid_authority(host: &[u8]) -> bool {
    let port = if let Some(inner) = host.strip_prefix(b"[") {
        let Some(end) = inner.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &inner[..end];
        let literal_ok = !literal.is_empty()
            && literal.iter().all(|&b| {
                b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'%' | b'-' | b'_' | b'~')
            });
        if !literal_ok {
            return false;
        }
        &inner[end + 1..]
    } else {
        // Reg-name bytes up to the first byte that is not one (':' is not): what
        // follows must be the port.
        let end = host
            .iter()
            .position(|&b| !REG_NAME[usize::from(b)])
            .unwrap_or(host.len());
        &host[end..]
    };
    match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut res = Response::new(Body::from(text));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

impl<S: HttpService> ConnService<S> {
    /// Checks the limits hyper does not enforce by itself: the request line and each
    /// header line (hyper bounds only the whole head), and the field count on HTTP/2;
    /// and, on HTTP/1.1, the `Host` rule hyper is lenient about.
    fn check_head(&self, req: &Request<hyper::body::Incoming>) -> Option<Response<Body>> {
        let config = &self.server.config;
        let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len())
            + req.uri().authority().map_or(0, |a| a.as_str().len());
        // method SP target SP HTTP/1.1 CRLF
        if req.method().as_str().len() + target + 12 > config.max_request_line {
            return Some(plain(StatusCode::URI_TOO_LONG, "414 URI Too Long\n"));
        }
        let headers = req.headers();
        if headers.len() > config.max_headers {
            return Some(plain(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "431 Too many header fields\n",
            ));
        }
        let max_line = config.max_header_line;
        // One pass over the fields checks the line lengths and finds the Host lines (a
        // map lookup for Host would cost as much again).
        let mut hosts = 0u32;
        let mut host_ok = true;
        for (name, value) in headers {
            // name ": " value CRLF
            if name.as_str().len() + value.len() + 4 > max_line {
                return Some(plain(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "431 Header line too long\n",
                ));
            }
            if name == http::header::HOST {
                hosts += 1;
                let host = value.as_bytes();
                let cache = self.last_host.get();
                host_ok = cache.matches(host) || {
                    let ok = valid_authority(host);
                    if ok {
                        self.last_host.set(HostCache::remember(host));
                    }
                    ok
                };
            }
        }
        // RFC 9112 §3.2: an HTTP/1.1 request without exactly one valid Host is a 400.
        if req.version() == Version::HTTP_11 && !(hosts == 1 && host_ok) {
            return Some(plain(
                StatusCode::BAD_REQUEST,
                "400 Bad Request: HTTP/1.1 needs exactly one valid Host header\n",
            ));
        }
        None
    }
}

impl<S: HttpService> hyper::service::Service<Request<hyper::body::Incoming>> for ConnService<S> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn call(&self, req: Request<hyper::body::Incoming>) -> Self::Future {
        let shared = &self.shared;
        let h2 = req.version() == Version::HTTP_2;
        if h2 {
            shared.state.store(STATE_H2, Ordering::Relaxed);
        } else {
            shared.state.store(STATE_BUSY, Ordering::Relaxed);
        }
        shared.active.fetch_add(1, Ordering::Relaxed);
        let guard = RequestGuard {
            shared: shared.clone(),
        };
        let served = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let last = served >= self.server.config.max_requests_per_connection;

        if let Some(early) = self.check_head(&req) {
            return ResponseFuture {
                kind: Kind::Ready(Box::new(early)),
                guard: Some(guard),
                close: true,
                h2,
            };
        }
        let (head, body) = req.into_parts();
        let timeout = self.server.config.body_read_timeout;
        let body = if h2 {
            Body::incoming(body, timeout)
        } else {
            shared.clear_unread_body();
            Body::incoming_on(body, timeout, shared)
        };
        let fut = self.server.service.call(head, body, &self.info);
        ResponseFuture {
            kind: Kind::Call(fut),
            guard: Some(guard),
            close: last,
            h2,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of one response: the service's future, with panics caught (see
    /// [`HttpService`]'s panic contract: `call` itself is not wrapped).
    pub(crate) struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
        guard: Option<RequestGuard>,
        close: bool,
        h2: bool,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        // Boxed: an early answer is rare, and a small future is cheaper to move.
        Ready { res: Option<Box<Response<Body>>> },
        Call { #[pin] fut: F },
    }
}

#[allow(non_snake_case)]
impl<F> Kind<F> {
    fn Ready(res: Box<Response<Body>>) -> Self {
        Kind::Ready { res: Some(res) }
    }
    fn Call(fut: F) -> Self {
        Kind::Call { fut }
    }
}

/// True if the request is done once hyper has `body`: it is in memory and, over
/// HTTP/2, fits in the default flow-control window, so no peer window update is
/// awaited (a large body keeps the stream, and the connection, busy until sent).
/// An HTTP/1 body in memory goes to the socket at once; the write timeout covers a
/// slow reader.
fn guard_done_with(body: &Body, h2: bool) -> bool {
    body.is_in_memory()
        && (!h2 || http_body::Body::size_hint(body).exact() <= Some(H2_DEFAULT_WINDOW))
}

/// HTTP/2's initial flow-control window (RFC 9113 §6.9.2).
const H2_DEFAULT_WINDOW: u64 = 65_535;

/// Logs a caught handler panic, once.
fn log_panic(payload: &(dyn std::any::Any + Send)) {
    let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    };
    tracing::error!(
        panic = message,
        "request handler panicked; answered 500 and closing the connection"
    );
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Response<Body>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = match this.kind.project() {
            KindProj::Ready { res } => match res.take() {
                Some(res) => *res,
                None => plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "500 Internal Server Error\n",
                ),
            },
            KindProj::Call { fut } => {
                // The response is stored from inside the closure rather than returned
                // through `catch_unwind`, which would copy it once more.
                let mut out = None;
                let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    if let Poll::Ready(res) = fut.poll(cx) {
                        out = Some(res);
                    }
                }));
                if let Err(payload) = caught {
                    log_panic(&*payload);
                    *this.close = true;
                    plain(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "500 Internal Server Error\n",
                    )
                } else {
                    match out {
                        Some(res) => res,
                        None => return Poll::Pending,
                    }
                }
            }
        };
        let guard = this.guard.take();
        if *this.close {
            if *this.h2 {
                if let Some(g) = &guard {
                    g.shared.request_close();
                }
            } else {
                res.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
        }
        // A streamed body keeps the guard until it has been sent; see `guard_done_with`.
        if let Some(guard) = guard {
            if !guard_done_with(res.body(), *this.h2) {
                let body = std::mem::take(res.body_mut());
                *res.body_mut() = Body::wrap(GuardedBody {
                    body,
                    _guard: guard,
                });
            }
        }
        Poll::Ready(Ok(res))
    }
}

/// Serves one accepted connection until it ends, the server shuts down or the grace
/// period runs out.
pub(crate) async fn serve_connection<I, S>(io: I, info: ConnectionInfo, server: Arc<ServerInner<S>>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    let shared = Arc::new(ConnShared::new());
    let registration = server.register(&shared);
    let config = &server.config;
    let io = TimedIo::new(
        io,
        shared.clone(),
        config.header_read_timeout,
        config.keep_alive_timeout,
        config.write_timeout,
        config.linger_max_bytes,
        config.linger_timeout,
    );
    let service = ConnService {
        server: server.clone(),
        info: Arc::new(info),
        shared: shared.clone(),
        last_host: Cell::new(HostCache::EMPTY),
    };
    let conn = server
        .builder
        .serve_connection_with_upgrades(TokioIo::new(io), service);
    let conn = std::pin::pin!(conn);
    Drive::new(conn, |conn| conn.graceful_shutdown(), &shared).await;
    drop(registration);
    if let Ok(mut waker) = shared.waker.lock() {
        waker.take();
    }
}

/// Polls a connection and applies the control bits. Shutdown and close requests reach
/// it through the waker stored once in [`ConnShared`], so a busy connection pays two
/// atomic loads per wake-up, not a channel poll.
struct Drive<'a, C, G> {
    conn: Pin<&'a mut C>,
    /// Starts the connection's graceful shutdown (hyper-util's bounds are not nameable
    /// here, so the caller passes the call in).
    graceful: G,
    shared: &'a ConnShared,
    closing: bool,
    registered: bool,
}

impl<'a, C, G> Drive<'a, C, G>
where
    G: FnMut(Pin<&mut C>),
{
    fn new(conn: Pin<&'a mut C>, graceful: G, shared: &'a ConnShared) -> Self {
        Self {
            conn,
            graceful,
            shared,
            closing: false,
            registered: false,
        }
    }
}

impl<C, G, E> Future for Drive<'_, C, G>
where
    C: Future<Output = Result<(), E>>,
    G: FnMut(Pin<&mut C>) + Unpin,
    E: std::fmt::Display,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if !this.registered {
            if let Ok(mut slot) = this.shared.waker.lock() {
                *slot = Some(cx.waker().clone());
            }
            this.registered = true;
        }
        let control = this.shared.control.load(Ordering::Acquire);
        if control & CONTROL_FORCE != 0 {
            return Poll::Ready(());
        }
        if control & CONTROL_GRACEFUL != 0 && !this.closing {
            this.closing = true;
            (this.graceful)(this.conn.as_mut());
        }
        match this.conn.as_mut().poll(cx) {
            Poll::Ready(Err(err)) => {
                tracing::debug!(error = %err, "connection ended with an error");
                Poll::Ready(())
            }
            Poll::Ready(Ok(())) => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_authority;

    #[test]
    fn host_values() {
        for ok in [
            &b""[..],
            b"localhost",
            b"localhost:8080",
            b"127.0.0.1:80",
            b"[::1]:443",
            b"[fe80::1%25eth0]",
            b"example.com:",
            b"a-b.c_d~e",
        ] {
            assert!(valid_authority(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"user@host"[..],
            b"host:80:80",
            b"host/path",
            b"[::1",
            b"[]",
            b"host:port",
            b"host:123456",
            b"ho st",
            b"host?x",
            b"[::1]x",
        ] {
            assert!(!valid_authority(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
