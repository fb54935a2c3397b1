//! One connection: the hyper service adapter (limits, request counting, panic
//! isolation) and the task that drives the connection to its end.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, watch};

use super::io::TimedIo;
use super::{ConnectionInfo, HttpService, Phase, ServerInner};
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
    requests: AtomicU64,
    active: AtomicUsize,
    close_requested: AtomicBool,
    close: Notify,
}

impl ConnShared {
    fn new() -> Self {
        Self {
            state: AtomicU8::new(STATE_HEAD),
            requests: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            close_requested: AtomicBool::new(false),
            close: Notify::new(),
        }
    }

    /// Asks the driver to close the connection gracefully (HTTP/2 GOAWAY).
    fn request_close(&self) {
        if !self.close_requested.swap(true, Ordering::Relaxed) {
            self.close.notify_one();
        }
    }
}

/// Lives as long as a response body: marks the request finished when dropped.
struct RequestGuard {
    shared: Arc<ConnShared>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.shared.active.fetch_sub(1, Ordering::Relaxed);
        // Only an HTTP/1 connection moves back to idle; compare_exchange leaves H2 alone.
        let _ = self.shared.state.compare_exchange(
            STATE_BUSY,
            STATE_IDLE,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
}

/// The response body handed to hyper: the service's body plus the request guard.
pub(crate) struct ResponseBody {
    body: Body,
    _guard: Option<RequestGuard>,
}

impl http_body::Body for ResponseBody {
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
}

impl<S> Clone for ConnService<S> {
    fn clone(&self) -> Self {
        Self {
            server: self.server.clone(),
            info: self.info.clone(),
            shared: self.shared.clone(),
        }
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
    /// header line (hyper bounds only the whole head), and the field count on HTTP/2.
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
        for (name, value) in headers {
            // name ": " value CRLF
            if name.as_str().len() + value.len() + 4 > max_line {
                return Some(plain(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "431 Header line too long\n",
                ));
            }
        }
        None
    }
}

impl<S: HttpService> hyper::service::Service<Request<hyper::body::Incoming>> for ConnService<S> {
    type Response = Response<ResponseBody>;
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
                kind: Kind::Ready(Some(early)),
                guard: Some(guard),
                close: true,
                h2,
            };
        }
        let (parts, body) = req.into_parts();
        let body = Body::incoming(body, self.server.config.body_read_timeout);
        let req = Request::from_parts(parts, body);
        let fut = self.server.service.call(req, &self.info);
        ResponseFuture {
            kind: Kind::Call(AssertUnwindSafe(fut).catch_unwind()),
            guard: Some(guard),
            close: last,
            h2,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of one response: the service's future, with panics caught.
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
        Ready { res: Option<Response<Body>> },
        Call { #[pin] fut: CatchUnwind<AssertUnwindSafe<F>> },
    }
}

#[allow(non_snake_case)]
impl<F> Kind<F> {
    fn Ready(res: Option<Response<Body>>) -> Self {
        Kind::Ready { res }
    }
    fn Call(fut: CatchUnwind<AssertUnwindSafe<F>>) -> Self {
        Kind::Call { fut }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Response<Body>>,
{
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = match this.kind.project() {
            KindProj::Ready { res } => match res.take() {
                Some(res) => res,
                None => plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "500 Internal Server Error\n",
                ),
            },
            KindProj::Call { fut } => match fut.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(res)) => res,
                Poll::Ready(Err(payload)) => {
                    tracing::error!(
                        panic = panic_message(&*payload),
                        "request handler panicked; answered 500 and closing the connection"
                    );
                    *this.close = true;
                    plain(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "500 Internal Server Error\n",
                    )
                }
            },
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
        Poll::Ready(Ok(res.map(|body| ResponseBody {
            body,
            _guard: guard,
        })))
    }
}

/// Serves one accepted connection until it ends, the server shuts down or the grace
/// period runs out.
pub(crate) async fn serve_connection<I, S>(
    io: I,
    info: ConnectionInfo,
    server: Arc<ServerInner<S>>,
    mut phase: watch::Receiver<Phase>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    let shared = Arc::new(ConnShared::new());
    let config = &server.config;
    let io = TimedIo::new(
        io,
        shared.clone(),
        config.header_read_timeout,
        config.write_timeout,
    );
    let service = ConnService {
        server: server.clone(),
        info: Arc::new(info),
        shared: shared.clone(),
    };
    let conn = server
        .builder
        .serve_connection_with_upgrades(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);

    // HTTP/2 has no idle timer in hyper: check every quarter of the keep-alive timeout
    // and send GOAWAY once the connection has had no stream for four checks in a row.
    let tick = config.keep_alive_timeout / 4;
    let mut idle_checks = 0u32;
    let mut last_seen = 0u64;
    let mut closing = false;
    if *phase.borrow() != Phase::Running {
        conn.as_mut().graceful_shutdown();
        closing = true;
    }
    loop {
        tokio::select! {
            biased;
            res = conn.as_mut() => {
                if let Err(err) = res {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            changed = phase.changed() => {
                let now = if changed.is_ok() { *phase.borrow() } else { Phase::Force };
                match now {
                    Phase::Running => {}
                    Phase::Graceful if !closing => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    Phase::Graceful => {}
                    Phase::Force => return,
                }
            }
            () = shared.close.notified(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep(tick), if !closing => {
                let served = shared.requests.load(Ordering::Relaxed);
                let h2 = shared.state.load(Ordering::Relaxed) == STATE_H2;
                if h2 && shared.active.load(Ordering::Relaxed) == 0 && served == last_seen {
                    idle_checks += 1;
                    if idle_checks >= 4 {
                        tracing::debug!("idle HTTP/2 connection, sending GOAWAY");
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                } else {
                    idle_checks = 0;
                }
                last_seen = served;
            }
        }
    }
}
