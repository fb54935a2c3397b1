//! The one error type of aiox-client.

use std::borrow::Cow;
use std::fmt;

use http::{HeaderMap, Method, StatusCode};
use url::Url;

/// A boxed error from any source, as carried in [`Error::source`](std::error::Error::source).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which timer ran out, for [`ErrorKind::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// [`ClientTimeout::total`](crate::ClientTimeout::total) (or a per-request timeout):
    /// the whole request, redirects and the body read included.
    Total,
    /// [`ClientTimeout::connect`](crate::ClientTimeout::connect): getting a
    /// connection, time queued for a pool slot included (aiohttp's `connect`).
    Connect,
    /// [`ClientTimeout::pool_wait`](crate::ClientTimeout::pool_wait): time queued for a
    /// pool slot alone.
    PoolWait,
    /// [`ClientTimeout::sock_connect`](crate::ClientTimeout::sock_connect): opening the
    /// socket and the TLS handshake.
    SockConnect,
    /// [`ClientTimeout::sock_read`](crate::ClientTimeout::sock_read): the wait for the
    /// response head or for the next body chunk.
    SockRead,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Total => "total",
            TimeoutPhase::Connect => "connect",
            TimeoutPhase::PoolWait => "pool_wait",
            TimeoutPhase::SockConnect => "sock_connect",
            TimeoutPhase::SockRead => "sock_read",
        })
    }
}

/// What went wrong, for a program to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The session or request was configured wrongly (a bad header value, an unreadable
    /// certificate file, ...). Reported by `build()` or `send()`, never by a panic.
    Builder,
    /// The URL could not be parsed, or is not `http`/`https`.
    InvalidUrl,
    /// The host name could not be resolved.
    Dns,
    /// The connection could not be established (refused, unreachable, reset), or
    /// broke before a response arrived.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// The server's certificate is not trusted (expired, unknown issuer, wrong host).
    Certificate,
    /// A timer ran out.
    Timeout(TimeoutPhase),
    /// The proxy refused the tunnel or the request, or could not be reached.
    Proxy,
    /// Too many redirects, a redirect loop, a redirect to a non-HTTP scheme, or a
    /// 307/308 whose body cannot be sent again; [`Error::history`] has the hops.
    Redirect,
    /// The response status is 400 or above (from
    /// [`Response::error_for_status`](crate::Response::error_for_status) or
    /// `raise_for_status`).
    Status(StatusCode),
    /// The response body could not be decoded: bad JSON, corrupt compressed data, or a
    /// decompression bomb (output over 100 times the input after the first MiB).
    Decode,
    /// Sending or reading a body failed, or a body was longer than its read limit.
    Body,
    /// The HTTP exchange failed after the connection was made (protocol error, reset
    /// stream, response head over its limits).
    Request,
    /// A client middleware failed on its own account ([`Error::middleware`]).
    Middleware,
}

/// One redirect hop: the response that redirected, as
/// [`Response::history`](crate::Response::history) and [`Error::history`] report it.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// The URL that was requested.
    pub url: Url,
    /// The redirect status.
    pub status: StatusCode,
    /// The response headers (`Location` among them).
    pub headers: HeaderMap,
}

/// The error type of aiox-client: a [`kind`](Error::kind), what failed, the request's
/// method and URL, and the cause in [`source`](std::error::Error::source).
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: Cow<'static, str>,
    method: Option<Method>,
    url: Option<Url>,
    history: Vec<HistoryEntry>,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                method: None,
                url: None,
                history: Vec::new(),
                source: None,
            }),
        }
    }

    pub(crate) fn builder(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Builder, message)
    }

    pub(crate) fn timeout(phase: TimeoutPhase) -> Self {
        let message = match phase {
            TimeoutPhase::Total => "the request did not complete within its total timeout",
            TimeoutPhase::Connect => "no connection within the connect timeout",
            TimeoutPhase::PoolWait => "no pool slot within the pool_wait timeout",
            TimeoutPhase::SockConnect => "the socket did not connect within sock_connect",
            TimeoutPhase::SockRead => "the server sent nothing within sock_read",
        };
        Self::new(ErrorKind::Timeout(phase), message)
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Attaches the request's method and URL unless an earlier layer already did.
    pub(crate) fn with_request(mut self, method: &Method, url: &Url) -> Self {
        if self.inner.url.is_none() {
            self.inner.method = Some(method.clone());
            self.inner.url = Some(url.clone());
        }
        self
    }

    pub(crate) fn with_history(mut self, history: Vec<HistoryEntry>) -> Self {
        self.inner.history = history;
        self
    }

    /// Classifies an aiox-core error (connect, DNS, TLS, timeouts) at the boundary.
    pub(crate) fn from_core(e: aiox_core::Error, timeout_phase: TimeoutPhase) -> Self {
        use aiox_core::ErrorKind as K;
        let (kind, message): (ErrorKind, &'static str) = match e.kind() {
            K::Dns => (ErrorKind::Dns, "could not resolve the host"),
            K::Connect => (ErrorKind::Connect, "could not connect"),
            K::Tls => {
                if is_certificate_error(&e) {
                    (
                        ErrorKind::Certificate,
                        "the server's certificate is not trusted",
                    )
                } else {
                    (ErrorKind::Tls, "the TLS handshake failed")
                }
            }
            K::Timeout => (ErrorKind::Timeout(timeout_phase), "timed out"),
            K::PayloadTooLarge { .. } => (ErrorKind::Body, "a body exceeded its limit"),
            K::Body => (ErrorKind::Body, "a body failed"),
            K::Io => (ErrorKind::Connect, "an I/O operation failed"),
            _ => (ErrorKind::Request, "the request failed"),
        };
        Self::new(kind, message).with_source(e)
    }

    /// An error a client middleware raises itself (a policy refusing a request, a
    /// token that could not be refreshed), with its cause if any.
    pub fn middleware(message: impl Into<Cow<'static, str>>, source: Option<BoxError>) -> Self {
        let mut e = Self::new(ErrorKind::Middleware, message);
        e.inner.source = source;
        e
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The request's method, when the error belongs to a request.
    pub fn method(&self) -> Option<&Method> {
        self.inner.method.as_ref()
    }

    /// The request's URL (the hop that failed, after redirects), when the error belongs
    /// to a request.
    pub fn url(&self) -> Option<&Url> {
        self.inner.url.as_ref()
    }

    /// The redirects followed before the error (empty if none).
    pub fn history(&self) -> &[HistoryEntry] {
        &self.inner.history
    }

    /// The response status for [`ErrorKind::Status`].
    pub fn status(&self) -> Option<StatusCode> {
        match self.inner.kind {
            ErrorKind::Status(status) => Some(status),
            _ => None,
        }
    }

    /// True for any timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Timeout(_))
    }

    /// The timeout's phase, for [`ErrorKind::Timeout`].
    pub fn timeout_phase(&self) -> Option<TimeoutPhase> {
        match self.inner.kind {
            ErrorKind::Timeout(phase) => Some(phase),
            _ => None,
        }
    }

    /// True if no connection could be made (DNS, connect, TLS, certificate, proxy).
    pub fn is_connect(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::Dns
                | ErrorKind::Connect
                | ErrorKind::Tls
                | ErrorKind::Certificate
                | ErrorKind::Proxy
        )
    }

    /// True for [`ErrorKind::Redirect`].
    pub fn is_redirect(&self) -> bool {
        self.inner.kind == ErrorKind::Redirect
    }

    /// True for [`ErrorKind::Status`].
    pub fn is_status(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Status(_))
    }

    /// True for [`ErrorKind::Decode`].
    pub fn is_decode(&self) -> bool {
        self.inner.kind == ErrorKind::Decode
    }

    /// True for [`ErrorKind::Body`].
    pub fn is_body(&self) -> bool {
        self.inner.kind == ErrorKind::Body
    }

    /// True for [`ErrorKind::Builder`] and [`ErrorKind::InvalidUrl`].
    pub fn is_builder(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Builder | ErrorKind::InvalidUrl)
    }
}

/// True if a rustls error in `err`'s chain is about the certificate rather than the
/// handshake itself.
#[cfg(feature = "tls")]
pub(crate) fn is_certificate_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        // tokio-rustls hands the rustls error over inside an io::Error, whose
        // `source()` skips it: look inside with `get_ref()`.
        let tls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return matches!(
                tls,
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate)
                    | rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA)
            );
        }
        cur = e.source();
    }
    false
}

#[cfg(not(feature = "tls"))]
pub(crate) fn is_certificate_error(_err: &(dyn std::error::Error + 'static)) -> bool {
    false
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("aiox_client::Error");
        d.field("kind", &self.inner.kind);
        d.field("message", &self.inner.message);
        if let Some(method) = &self.inner.method {
            d.field("method", method);
        }
        if let Some(url) = &self.inner.url {
            d.field("url", &url.as_str());
        }
        if !self.inner.history.is_empty() {
            d.field("redirects", &self.inner.history.len());
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)?;
        if let ErrorKind::Status(status) = self.inner.kind {
            write!(f, " ({status})")?;
        }
        if let (Some(method), Some(url)) = (&self.inner.method, &self.inner.url) {
            write!(f, " for {method} {url}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|e| &**e as &(dyn std::error::Error + 'static))
    }
}

/// A shorthand for `Result<T, aiox_client::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
