//! [`HttpError`], the error a handler returns to answer with any status (aiohttp's
//! `HTTPException` family), and [`Error`], the error of building and running an app.

use std::fmt;

use http::header::{HeaderName, HeaderValue, LOCATION};
use http::{HeaderMap, StatusCode};

use crate::response::{IntoResponse, Response};

/// A `Result` whose error is an [`HttpError`]: what handlers and middleware return.
pub type Result<T, E = HttpError> = std::result::Result<T, E>;

/// A boxed error, as carried by hooks and [`HttpError::source`].
pub type BoxError = aiox_core::BoxError;

/// An HTTP error response: a status, a short text body and optional headers.
///
/// Any error type converts into one with `?`: aiox-core errors keep their meaning
/// (payload too large is 413, a body timeout 408, a broken body 400) and anything else
/// is a 500 whose body never shows the cause (the cause is logged).
///
/// ```
/// use aiox_web::{HttpError, Result};
///
/// fn find(id: u32) -> Result<&'static str> {
///     match id {
///         1 => Ok("one"),
///         _ => Err(HttpError::not_found().with_message("no such item")),
///     }
/// }
/// assert_eq!(find(2).unwrap_err().status(), http::StatusCode::NOT_FOUND);
/// let redirect = HttpError::found("/login");
/// assert_eq!(redirect.headers()["location"], "/login");
/// ```
pub struct HttpError {
    inner: Box<Inner>,
}

struct Inner {
    status: StatusCode,
    message: Option<String>,
    headers: HeaderMap,
    source: Option<BoxError>,
    close: bool,
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $status:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name() -> Self {
                Self::new(StatusCode::$status)
            }
        )*
    };
}

macro_rules! redirects {
    ($($(#[$doc:meta])* $name:ident => $status:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(location: &str) -> Self {
                Self::redirect(StatusCode::$status, location)
            }
        )*
    };
}

impl HttpError {
    /// An error answered with `status` and the status's reason as body.
    pub fn new(status: StatusCode) -> Self {
        Self {
            inner: Box::new(Inner {
                status,
                message: None,
                headers: HeaderMap::new(),
                source: None,
                close: false,
            }),
        }
    }

    /// An error answered with `status`, or 500 if `status` is not a valid status code.
    pub fn from_u16(status: u16) -> Self {
        Self::new(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
    }

    /// A redirect with status `status` to `location` (a `Location` that is not a valid
    /// header value becomes a 500, never a panic).
    pub fn redirect(status: StatusCode, location: &str) -> Self {
        match HeaderValue::from_str(location) {
            Ok(value) => Self::new(status).with_header(LOCATION, value),
            Err(_) => Self::internal_server_error(),
        }
    }

    constructors! {
        /// 400 Bad Request.
        bad_request => BAD_REQUEST;
        /// 401 Unauthorized.
        unauthorized => UNAUTHORIZED;
        /// 403 Forbidden.
        forbidden => FORBIDDEN;
        /// 404 Not Found.
        not_found => NOT_FOUND;
        /// 405 Method Not Allowed (add an `Allow` header with [`with_header`](Self::with_header)).
        method_not_allowed => METHOD_NOT_ALLOWED;
        /// 406 Not Acceptable.
        not_acceptable => NOT_ACCEPTABLE;
        /// 408 Request Timeout.
        request_timeout => REQUEST_TIMEOUT;
        /// 409 Conflict.
        conflict => CONFLICT;
        /// 410 Gone.
        gone => GONE;
        /// 411 Length Required.
        length_required => LENGTH_REQUIRED;
        /// 413 Payload Too Large.
        payload_too_large => PAYLOAD_TOO_LARGE;
        /// 415 Unsupported Media Type.
        unsupported_media_type => UNSUPPORTED_MEDIA_TYPE;
        /// 422 Unprocessable Entity.
        unprocessable_entity => UNPROCESSABLE_ENTITY;
        /// 429 Too Many Requests.
        too_many_requests => TOO_MANY_REQUESTS;
        /// 500 Internal Server Error.
        internal_server_error => INTERNAL_SERVER_ERROR;
        /// 501 Not Implemented.
        not_implemented => NOT_IMPLEMENTED;
        /// 502 Bad Gateway.
        bad_gateway => BAD_GATEWAY;
        /// 503 Service Unavailable.
        service_unavailable => SERVICE_UNAVAILABLE;
        /// 504 Gateway Timeout.
        gateway_timeout => GATEWAY_TIMEOUT;
    }

    redirects! {
        /// 301 Moved Permanently to `location`.
        moved_permanently => MOVED_PERMANENTLY;
        /// 302 Found: a temporary redirect to `location`.
        found => FOUND;
        /// 303 See Other: redirect to `location`, to be fetched with GET.
        see_other => SEE_OTHER;
        /// 307 Temporary Redirect to `location`, keeping method and body.
        temporary_redirect => TEMPORARY_REDIRECT;
        /// 308 Permanent Redirect to `location`, keeping method and body.
        permanent_redirect => PERMANENT_REDIRECT;
    }

    /// Replaces the body text (default: the status and its reason, e.g. `404 Not Found`).
    /// Keep it short and never echo large input back.
    #[must_use]
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.inner.message = Some(message.into());
        self
    }

    /// Adds a response header.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.inner.headers.append(name, value);
        self
    }

    /// Records the cause (logged for 5xx, never sent to the client).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Closes the connection after this response (used when a request body was left
    /// unread, e.g. after a 413).
    #[must_use]
    pub fn with_close(mut self) -> Self {
        self.inner.close = true;
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The body text, if one was set.
    pub fn message(&self) -> Option<&str> {
        self.inner.message.as_deref()
    }

    /// The extra response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The cause, if one was recorded.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.inner.source.as_deref()
    }

    /// True if the connection will be closed after this response.
    pub fn closes_connection(&self) -> bool {
        self.inner.close
    }

    /// Maps an aiox-core error (a body read) to its HTTP meaning.
    pub(crate) fn from_core(err: aiox_core::Error) -> Self {
        match err.kind() {
            aiox_core::ErrorKind::PayloadTooLarge { limit } => Self::payload_too_large()
                .with_message(format!(
                    "413 Payload Too Large: the body is over the {limit}-byte limit\n"
                ))
                .with_close(),
            aiox_core::ErrorKind::Timeout => Self::request_timeout()
                .with_message("408 Request Timeout: the body did not arrive in time\n")
                .with_close(),
            aiox_core::ErrorKind::Body => Self::bad_request()
                .with_message("400 Bad Request: the request body could not be read\n")
                .with_source(err)
                .with_close(),
            _ => Self::internal_server_error().with_source(err),
        }
    }
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("HttpError");
        d.field("status", &self.inner.status);
        if let Some(m) = &self.inner.message {
            d.field("message", m);
        }
        if let Some(s) = &self.inner.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.message {
            Some(m) => f.write_str(m.trim_end()),
            None => write!(f, "{}", self.inner.status),
        }
    }
}

impl<E> From<E> for HttpError
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(err: E) -> Self {
        let boxed: BoxError = Box::new(err);
        match boxed.downcast::<aiox_core::Error>() {
            Ok(core) => Self::from_core(*core),
            Err(other) => Self::internal_server_error().with_source(other),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let Inner {
            status,
            message,
            headers,
            source,
            close,
        } = *self.inner;
        if status.is_server_error() {
            match &source {
                Some(source) => tracing::error!(%status, error = %source, "request failed"),
                None => tracing::debug!(%status, "request failed"),
            }
        }
        let text = match message {
            Some(mut m) => {
                if !m.ends_with('\n') {
                    m.push('\n');
                }
                m
            }
            None => format!(
                "{} {}\n",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
        };
        let mut res = Response::text(text).with_status(status);
        res.headers_mut().extend(headers);
        if close {
            res.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }
}

/// The error of building or running an application: an invalid route, a failed
/// startup hook, a socket that cannot be bound, a TLS setup error.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<BoxError>,
}

/// What kind of [`Error`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A route pattern was invalid or registered twice.
    Route,
    /// A startup hook failed.
    Startup,
    /// One or more cleanup or shutdown hooks failed (all of them ran).
    Cleanup,
    /// Binding or serving a socket failed.
    Io,
    /// TLS setup failed.
    Tls,
}

impl Error {
    pub(crate) fn new(
        kind: ErrorKind,
        message: impl Into<String>,
        source: Option<BoxError>,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source,
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("aiox_web::Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| &**e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Self::new(
            ErrorKind::Io,
            format!("I/O error: {err}"),
            Some(Box::new(err)),
        )
    }
}
