//! [`Response`], [`IntoResponse`] and the response wrappers [`Json`](crate::Json) and [`Html`].

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, SET_COOKIE};
use http::{HeaderMap, StatusCode, Version};

use aiox_core::Body;

use crate::cookie::Cookie;

const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const TEXT_HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");

/// An HTTP response: aiohttp's `web.Response`, `json_response` and friends.
///
/// ```
/// use aiox_web::{Response, cookie::Cookie};
/// use http::StatusCode;
///
/// let res = Response::text("created")
///     .with_status(StatusCode::CREATED)
///     .with_header(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
/// assert_eq!(res.status(), 201);
///
/// let mut res = Response::json(&serde_json::json!({"ok": true}));
/// res.set_cookie(Cookie::build(("session", "abc")).http_only(true).path("/").build());
/// res.del_cookie("old");
/// assert_eq!(res.headers().get_all("set-cookie").iter().count(), 2);
/// ```
#[derive(Debug)]
pub struct Response {
    inner: http::Response<Body>,
}

impl Default for Response {
    fn default() -> Self {
        Self::empty()
    }
}

impl Response {
    /// A response with `body`, status 200 and no headers.
    pub fn new(body: impl Into<Body>) -> Self {
        let mut inner = http::Response::new(body.into());
        // The map of a finished request, if the thread has one (see `spare`).
        crate::spare::take(inner.headers_mut());
        Self { inner }
    }

    /// An empty 200 response.
    pub fn empty() -> Self {
        Self::new(Body::empty())
    }

    /// An empty response with `status`.
    pub fn status_only(status: StatusCode) -> Self {
        Self::empty().with_status(status)
    }

    fn typed(body: Body, content_type: HeaderValue) -> Self {
        // Built in place rather than through `new`: the response is not copied.
        let mut inner = http::Response::new(body);
        crate::spare::take(inner.headers_mut());
        inner.headers_mut().insert(CONTENT_TYPE, content_type);
        Self { inner }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(text: impl Into<String>) -> Self {
        Self::typed(Body::from(text.into()), TEXT_PLAIN)
    }

    /// A `text/plain; charset=utf-8` response from a static string (no copy).
    pub fn static_text(text: &'static str) -> Self {
        Self::typed(Body::from(text), TEXT_PLAIN)
    }

    /// A `text/html; charset=utf-8` response.
    pub fn html(html: impl Into<String>) -> Self {
        Self::typed(Body::from(html.into()), TEXT_HTML)
    }

    /// An `application/json` response; a value that cannot be serialized gives a 500
    /// (and is logged), never a panic.
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(bytes) => Self::typed(Body::from(bytes), APPLICATION_JSON),
            Err(err) => crate::HttpError::internal_server_error()
                .with_source(err)
                .into_response(),
        }
    }

    /// An `application/octet-stream` response.
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Self::typed(Body::from(bytes.into()), OCTET_STREAM)
    }

    /// A response streaming `body` (set a content type with [`with_header`](Self::with_header)).
    pub fn stream(body: Body) -> Self {
        Self::new(body)
    }

    /// Sets the status.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        *self.inner.status_mut() = status;
        self
    }

    /// Sets (replaces) a header.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.inner.headers_mut().insert(name, value);
        self
    }

    /// Sets the `Content-Type`.
    #[must_use]
    pub fn with_content_type(self, content_type: HeaderValue) -> Self {
        self.with_header(CONTENT_TYPE, content_type)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// Sets the status.
    pub fn set_status(&mut self, status: StatusCode) {
        *self.inner.status_mut() = status;
    }

    /// The HTTP version of the response.
    pub fn version(&self) -> Version {
        self.inner.version()
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The headers, to change them.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.inner.headers_mut()
    }

    /// Typed extensions of the response.
    pub fn extensions(&self) -> &http::Extensions {
        self.inner.extensions()
    }

    /// Typed extensions of the response, to change them.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        self.inner.extensions_mut()
    }

    /// The body.
    pub fn body(&self) -> &Body {
        self.inner.body()
    }

    /// The body, to replace it.
    pub fn body_mut(&mut self) -> &mut Body {
        self.inner.body_mut()
    }

    /// Adds a `Set-Cookie` header for `cookie`, with every attribute it carries
    /// (`Expires`, `Max-Age`, `Domain`, `Path`, `Secure`, `HttpOnly`, `SameSite`,
    /// `Partitioned`). Values are percent-encoded as needed.
    pub fn set_cookie(&mut self, cookie: Cookie<'_>) {
        let text = cookie.encoded().to_string();
        // An encoded cookie contains only visible ASCII; if a name still manages to be
        // invalid, skip it (and log) rather than panic.
        match HeaderValue::from_str(&text) {
            Ok(value) => {
                self.inner.headers_mut().append(SET_COOKIE, value);
            }
            Err(_) => tracing::warn!(cookie = %cookie.name(), "cookie is not a valid header value"),
        }
    }

    /// Asks the client to delete cookie `name` (on path `/`): an empty value that
    /// expired in the past with `Max-Age=0`, as aiohttp's `del_cookie` sends.
    pub fn del_cookie(&mut self, name: &str) {
        self.del_cookie_with(name, Some("/"), None);
    }

    /// Asks the client to delete cookie `name` set for `path` and `domain`.
    pub fn del_cookie_with(&mut self, name: &str, path: Option<&str>, domain: Option<&str>) {
        let mut cookie = Cookie::new(name.to_owned(), "");
        cookie.make_removal();
        if let Some(path) = path {
            cookie.set_path(path.to_owned());
        }
        if let Some(domain) = domain {
            cookie.set_domain(domain.to_owned());
        }
        self.set_cookie(cookie);
    }

    /// The underlying `http::Response`.
    pub fn into_inner(self) -> http::Response<Body> {
        self.inner
    }

    /// Splits into head and body.
    pub fn into_parts(self) -> (http::response::Parts, Body) {
        self.inner.into_parts()
    }
}

impl From<http::Response<Body>> for Response {
    fn from(inner: http::Response<Body>) -> Self {
        Self { inner }
    }
}

impl From<Response> for http::Response<Body> {
    fn from(res: Response) -> Self {
        res.inner
    }
}

/// Anything a handler may return.
///
/// Implemented for [`Response`], strings (`text/plain`), [`Bytes`] and `Vec<u8>`
/// (`application/octet-stream`), [`Json`](crate::Json), [`Html`], `()` (empty 200),
/// [`StatusCode`], `(StatusCode, T)`, [`HttpError`](crate::HttpError) and `Result`s of these.
pub trait IntoResponse {
    /// Converts into a response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for http::Response<Body> {
    fn into_response(self) -> Response {
        Response { inner: self }
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::static_text(self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        Response::bytes(self)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Response::bytes(self)
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::empty()
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        Response::status_only(self)
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        self.1.into_response().with_status(self.0)
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(v) => v.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for crate::Json<T> {
    fn into_response(self) -> Response {
        Response::json(&self.0)
    }
}

/// A `text/html; charset=utf-8` response from a handler: `Html("<h1>hi</h1>")`.
#[derive(Debug, Clone)]
pub struct Html<T>(pub T);

impl<T: Into<String>> IntoResponse for Html<T> {
    fn into_response(self) -> Response {
        Response::html(self.0)
    }
}
