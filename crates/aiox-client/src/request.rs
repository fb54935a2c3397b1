//! Requests: [`RequestBuilder`] (what `session.get(url)` returns), the built
//! [`Request`] that middleware sees, and [`RequestBody`].

use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use std::future::Future;

use futures_util::future::Either;
use futures_util::{Stream, StreamExt};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Extensions, Method, Version};
use serde::Serialize;
use url::Url;

use crate::error::{BoxError, Error, ErrorKind, Result};
use crate::proxy::Proxy;
use crate::response::Response;
use crate::retry::RetryPolicy;
use crate::session::ClientSession;

type ChunkStream = Pin<Box<dyn Stream<Item = std::result::Result<Bytes, BoxError>> + Send>>;

/// A request body: empty, bytes, a file (read when sent, so it can be sent again on
/// a redirect or retry), or a stream (sent once).
pub struct RequestBody {
    kind: BodyKind,
}

enum BodyKind {
    Empty,
    Bytes(Bytes),
    File(PathBuf),
    Stream(ChunkStream),
    /// A stream that was sent: gone.
    Spent,
}

impl RequestBody {
    /// No body.
    pub const fn empty() -> Self {
        Self {
            kind: BodyKind::Empty,
        }
    }

    /// A body from a stream of chunks; an `Err` item aborts the request with a body
    /// error. Sent with chunked encoding (HTTP/1.1); cannot be replayed.
    pub fn stream<S, E>(stream: S) -> Self
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        Self {
            kind: BodyKind::Stream(Box::pin(stream.map(|r| r.map_err(Into::into)))),
        }
    }

    /// A body read from any [`AsyncRead`](tokio::io::AsyncRead), in chunks as the
    /// connection takes them. Cannot be replayed.
    pub fn reader<R>(reader: R) -> Self
    where
        R: tokio::io::AsyncRead + Send + 'static,
    {
        Self::stream(tokio_util::io::ReaderStream::new(reader))
    }

    /// The contents of the file at `path`, opened and streamed when the request is
    /// sent (with its length as `Content-Length`); replayable, since it is reopened.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            kind: BodyKind::File(path.into()),
        }
    }

    /// True if the body can be sent again (on a 307/308 redirect or a retry).
    pub fn is_replayable(&self) -> bool {
        !matches!(self.kind, BodyKind::Stream(_) | BodyKind::Spent)
    }

    /// What to send: a copy of a replayable body (kept for a redirect or a resend),
    /// else the stream itself, leaving this body spent.
    pub(crate) fn take_for_send(&mut self) -> Self {
        match self.try_clone() {
            Some(copy) => copy,
            None => std::mem::replace(
                self,
                Self {
                    kind: BodyKind::Spent,
                },
            ),
        }
    }

    /// A copy of the body, if it is replayable.
    pub fn try_clone(&self) -> Option<Self> {
        let kind = match &self.kind {
            BodyKind::Empty => BodyKind::Empty,
            BodyKind::Bytes(b) => BodyKind::Bytes(b.clone()),
            BodyKind::File(p) => BodyKind::File(p.clone()),
            BodyKind::Stream(_) | BodyKind::Spent => return None,
        };
        Some(Self { kind })
    }

    /// The bytes of an in-memory body.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.kind {
            BodyKind::Bytes(b) => Some(b),
            BodyKind::Empty => Some(&[]),
            _ => None,
        }
    }

    /// True for [`RequestBody::empty`].
    pub fn is_empty(&self) -> bool {
        matches!(self.kind, BodyKind::Empty)
    }

    /// Turns the body into the engine's body; `Some(len)` is its exact length when
    /// known. `on_chunk` is told the size of every streamed chunk. A file body is
    /// opened by [`open_file`] (async, and boxed by the caller: rare and large).
    pub(crate) fn into_core(self, on_chunk: Option<crate::trace::ChunkHook>) -> Result<CoreBody> {
        match self.kind {
            // Known to be 0: POST, PUT and the like send `Content-Length: 0`.
            BodyKind::Empty => Ok(CoreBody::Ready(aiox_core::Body::empty(), Some(0))),
            BodyKind::Bytes(b) => {
                if let Some(hook) = &on_chunk {
                    hook(b.len());
                }
                let len = b.len() as u64;
                Ok(CoreBody::Ready(aiox_core::Body::full(b), Some(len)))
            }
            BodyKind::File(path) => Ok(CoreBody::File(path, on_chunk)),
            BodyKind::Stream(stream) => Ok(CoreBody::Ready(stream_body(stream, on_chunk), None)),
            BodyKind::Spent => Err(Error::new(
                ErrorKind::Body,
                "the request body was a stream that was already sent",
            )),
        }
    }
}

/// A body ready to send, or a file still to open.
pub(crate) enum CoreBody {
    Ready(aiox_core::Body, Option<u64>),
    File(PathBuf, Option<crate::trace::ChunkHook>),
}

impl CoreBody {
    /// The body and its length, opening a file body.
    pub(crate) async fn ready(self) -> Result<(aiox_core::Body, Option<u64>)> {
        match self {
            CoreBody::Ready(body, len) => Ok((body, len)),
            CoreBody::File(path, on_chunk) => Box::pin(open_file(path, on_chunk)).await,
        }
    }
}

/// Opens a file body, with its length from the file's metadata.
async fn open_file(
    path: PathBuf,
    on_chunk: Option<crate::trace::ChunkHook>,
) -> Result<(aiox_core::Body, Option<u64>)> {
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        Error::new(
            ErrorKind::Body,
            format!("could not open the body file {}", path.display()),
        )
        .with_source(e)
    })?;
    let len = file.metadata().await.ok().map(|m| m.len());
    let stream = tokio_util::io::ReaderStream::new(file);
    Ok((
        stream_body(Box::pin(stream.map(|r| r.map_err(Into::into))), on_chunk),
        len,
    ))
}

fn stream_body(stream: ChunkStream, on_chunk: Option<crate::trace::ChunkHook>) -> aiox_core::Body {
    match on_chunk {
        None => aiox_core::Body::from_stream(stream),
        Some(hook) => aiox_core::Body::from_stream(stream.inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                hook(chunk.len());
            }
        })),
    }
}

impl Default for RequestBody {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BodyKind::Empty => f.write_str("RequestBody::Empty"),
            BodyKind::Bytes(b) => write!(f, "RequestBody::Bytes({} bytes)", b.len()),
            BodyKind::File(p) => write!(f, "RequestBody::File({})", p.display()),
            BodyKind::Stream(_) => f.write_str("RequestBody::Stream"),
            BodyKind::Spent => f.write_str("RequestBody::Spent"),
        }
    }
}

impl From<Bytes> for RequestBody {
    fn from(b: Bytes) -> Self {
        if b.is_empty() {
            return Self::empty();
        }
        Self {
            kind: BodyKind::Bytes(b),
        }
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(v: Vec<u8>) -> Self {
        Bytes::from(v).into()
    }
}

impl From<String> for RequestBody {
    fn from(s: String) -> Self {
        Bytes::from(s).into()
    }
}

impl From<&'static str> for RequestBody {
    fn from(s: &'static str) -> Self {
        Bytes::from_static(s.as_bytes()).into()
    }
}

impl From<&'static [u8]> for RequestBody {
    fn from(s: &'static [u8]) -> Self {
        Bytes::from_static(s).into()
    }
}

impl From<()> for RequestBody {
    fn from((): ()) -> Self {
        Self::empty()
    }
}

/// Which HTTP version a request should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HttpVersionPref {
    /// HTTP/1.1 for `http://`; ALPN (h2 preferred) for `https://`, as curl does.
    #[default]
    Auto,
    /// HTTP/1.1 only (ALPN offers only `http/1.1`).
    Http1Only,
    /// HTTP/2: ALPN `h2` only for `https://`, prior knowledge (h2c) for `http://`.
    Http2Only,
}

/// Per-request settings that override the session's.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) timeout: Option<Duration>,
    pub(crate) proxy: Option<Box<ProxyChoice>>,
    pub(crate) version: Option<HttpVersionPref>,
    pub(crate) follow_redirects: Option<bool>,
    pub(crate) max_redirects: Option<usize>,
    pub(crate) raise_for_status: Option<bool>,
    pub(crate) read_limit: Option<usize>,
    pub(crate) retry: Option<Box<Option<RetryPolicy>>>,
    pub(crate) cookies: Vec<(String, String)>,
    /// A redirect left the first origin: the session's credentials stay behind.
    pub(crate) cross_origin: bool,
    /// Session defaults not to send (aiohttp's `skip_auto_headers`).
    pub(crate) skip_headers: Vec<HeaderName>,
}

impl Options {
    const fn new() -> Self {
        Self {
            timeout: None,
            proxy: None,
            version: None,
            follow_redirects: None,
            max_redirects: None,
            raise_for_status: None,
            read_limit: None,
            retry: None,
            cookies: Vec::new(),
            cross_origin: false,
            skip_headers: Vec::new(),
        }
    }
}

/// A proxy setting for one request.
#[derive(Debug, Clone)]
pub(crate) enum ProxyChoice {
    Use(Proxy),
    Direct,
}

/// A request ready to send, as client middleware sees it: method, URL, headers, body.
pub struct Request {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: RequestBody,
    pub(crate) extensions: Extensions,
    /// Per-request settings; `None` (no allocation) for the common request.
    pub(crate) options: Option<Box<Options>>,
}

static NO_OPTIONS: Options = Options::new();

impl Request {
    pub(crate) fn options(&self) -> &Options {
        self.options.as_deref().unwrap_or(&NO_OPTIONS)
    }

    pub(crate) fn options_mut(&mut self) -> &mut Options {
        self.options.get_or_insert_with(|| Box::new(Options::new()))
    }

    /// A request for `method` and `url` with no headers and no body.
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: RequestBody::empty(),
            extensions: Extensions::new(),
            options: None,
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The method, to change.
    pub fn method_mut(&mut self) -> &mut Method {
        &mut self.method
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL, to change.
    pub fn url_mut(&mut self) -> &mut Url {
        &mut self.url
    }

    /// The request's own headers. The session's defaults (`User-Agent`, `Accept`,
    /// `Accept-Encoding`, auth, `default_header`s) are added beneath them when the
    /// request is written, each only if the request has no header of that name;
    /// `Host`, `Cookie` and `Content-Length` are added then too.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &RequestBody {
        &self.body
    }

    /// The body, to change.
    pub fn body_mut(&mut self) -> &mut RequestBody {
        &mut self.body
    }

    /// Typed values a middleware can attach for a later one.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The extensions, to change.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// A copy to send again, if the body is replayable (extensions included, so a
    /// retry carries what a redirect hop carries).
    pub fn try_clone(&self) -> Option<Self> {
        Some(Self {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: self.body.try_clone()?,
            extensions: self.extensions.clone(),
            options: self.options.clone(),
        })
    }

    /// True for the idempotent methods of RFC 9110 section 9.2.2.
    pub fn is_idempotent(&self) -> bool {
        is_idempotent(&self.method)
    }
}

pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("headers", &self.headers)
            .field("body", &self.body)
            .finish()
    }
}

/// A request being put together: `session.get(url)` returns one; finish with
/// [`send`](RequestBuilder::send). Errors (a bad header, an unserializable JSON body)
/// are kept and reported by `send`, never by a panic.
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    session: ClientSession,
    request: Result<Request>,
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("request", &self.request)
            .finish()
    }
}

impl RequestBuilder {
    pub(crate) fn new(session: ClientSession, request: Result<Request>) -> Self {
        Self { session, request }
    }

    fn update(mut self, f: impl FnOnce(&mut Request) -> Result<()>) -> Self {
        if let Ok(req) = &mut self.request {
            if let Err(e) = f(req) {
                self.request = Err(e);
            }
        }
        self
    }

    /// Adds a header (several values of one name are all sent; any of them replaces
    /// the session's default of that name).
    pub fn header<K, V>(self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        self.update(|req| {
            let name = name
                .try_into()
                .map_err(|e| Error::builder("invalid header name").with_source(e.into()))?;
            let value = value
                .try_into()
                .map_err(|e| Error::builder("invalid header value").with_source(e.into()))?;
            req.headers.append(name, value);
            Ok(())
        })
    }

    /// Sets each of `headers`, replacing earlier values (and the session's defaults)
    /// of the same names.
    pub fn headers(self, headers: HeaderMap) -> Self {
        self.update(|req| {
            replace_headers(&mut req.headers, &headers);
            Ok(())
        })
    }

    /// Appends query parameters from pairs (`&[("q", "rust")]`) or any `Serialize`
    /// struct or map, form-urlencoded.
    pub fn query<T: Serialize + ?Sized>(self, query: &T) -> Self {
        self.update(|req| {
            let encoded = serde_urlencoded::to_string(query)
                .map_err(|e| Error::builder("the query could not be encoded").with_source(e))?;
            if encoded.is_empty() {
                return Ok(());
            }
            let joined = match req.url.query() {
                Some(q) if !q.is_empty() => format!("{q}&{encoded}"),
                _ => encoded,
            };
            req.url.set_query(Some(&joined));
            Ok(())
        })
    }

    /// A JSON body (`Content-Type: application/json` unless set).
    pub fn json<T: Serialize + ?Sized>(self, json: &T) -> Self {
        self.update(|req| {
            let body = serde_json::to_vec(json)
                .map_err(|e| Error::builder("the JSON body could not be encoded").with_source(e))?;
            set_default(
                &mut req.headers,
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            req.body = body.into();
            Ok(())
        })
    }

    /// A form body, `application/x-www-form-urlencoded`, from pairs or a `Serialize`.
    pub fn form<T: Serialize + ?Sized>(self, form: &T) -> Self {
        self.update(|req| {
            let body = serde_urlencoded::to_string(form)
                .map_err(|e| Error::builder("the form body could not be encoded").with_source(e))?;
            set_default(
                &mut req.headers,
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            req.body = body.into();
            Ok(())
        })
    }

    /// A body: bytes, a string, a [`RequestBody::file`], [`RequestBody::stream`] or
    /// [`RequestBody::reader`].
    pub fn body(self, body: impl Into<RequestBody>) -> Self {
        self.update(|req| {
            req.body = body.into();
            Ok(())
        })
    }

    /// Does not send the session's default header `name` (`User-Agent`, `Accept`,
    /// `Accept-Encoding`, ...) with this request, as aiohttp's `skip_auto_headers`.
    pub fn skip_default_header<K>(self, name: K) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
    {
        self.update(|req| {
            let name = name
                .try_into()
                .map_err(|e| Error::builder("invalid header name").with_source(e.into()))?;
            req.options_mut().skip_headers.push(name);
            Ok(())
        })
    }

    /// HTTP basic authentication for this request.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        self.update(|req| {
            let value = basic_auth_value(user, password)?;
            req.headers.insert(header::AUTHORIZATION, value);
            Ok(())
        })
    }

    /// Bearer token authentication for this request.
    pub fn bearer_auth(self, token: &str) -> Self {
        self.update(|req| {
            let value = bearer_auth_value(token)?;
            req.headers.insert(header::AUTHORIZATION, value);
            Ok(())
        })
    }

    /// A cookie sent with this request only (beside the jar's).
    pub fn cookie(self, name: &str, value: &str) -> Self {
        self.update(|req| {
            req.options_mut()
                .cookies
                .push((name.to_owned(), value.to_owned()));
            Ok(())
        })
    }

    /// A total timeout for this request (replaces the session's `total`).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.update(|req| {
            req.options_mut().timeout = Some(timeout);
            Ok(())
        })
    }

    /// Sends this request through `proxy`.
    pub fn proxy(self, proxy: Proxy) -> Self {
        self.update(|req| {
            req.options_mut().proxy = Some(Box::new(ProxyChoice::Use(proxy)));
            Ok(())
        })
    }

    /// Sends this request directly, whatever proxy the session or environment names.
    pub fn no_proxy(self) -> Self {
        self.update(|req| {
            req.options_mut().proxy = Some(Box::new(ProxyChoice::Direct));
            Ok(())
        })
    }

    /// The HTTP version to use: `HTTP_11` for HTTP/1.1 only, `HTTP_2` for HTTP/2 only
    /// (ALPN `h2` on https, prior knowledge on http).
    pub fn version(self, version: Version) -> Self {
        self.update(|req| {
            req.options_mut().version = Some(match version {
                Version::HTTP_2 => HttpVersionPref::Http2Only,
                Version::HTTP_11 | Version::HTTP_10 => HttpVersionPref::Http1Only,
                _ => return Err(Error::builder("only HTTP/1.1 and HTTP/2 are supported")),
            });
            Ok(())
        })
    }

    /// Whether to follow redirects (default: the session's, normally yes).
    pub fn allow_redirects(self, follow: bool) -> Self {
        self.update(|req| {
            req.options_mut().follow_redirects = Some(follow);
            Ok(())
        })
    }

    /// Redirects followed at most for this request.
    pub fn max_redirects(self, max: usize) -> Self {
        self.update(|req| {
            req.options_mut().max_redirects = Some(max);
            Ok(())
        })
    }

    /// Whether a status of 400 or above is an error for this request.
    pub fn raise_for_status(self, raise: bool) -> Self {
        self.update(|req| {
            req.options_mut().raise_for_status = Some(raise);
            Ok(())
        })
    }

    /// The cap on the buffered helpers (`bytes`, `text`, `json`) for this response.
    pub fn read_limit(self, limit: usize) -> Self {
        self.update(|req| {
            req.options_mut().read_limit = Some(limit);
            Ok(())
        })
    }

    /// A retry policy for this request (`None`: no retries, whatever the session's).
    pub fn retry(self, policy: Option<RetryPolicy>) -> Self {
        self.update(|req| {
            req.options_mut().retry = Some(Box::new(policy));
            Ok(())
        })
    }

    /// Attaches a typed value for middleware to read.
    pub fn extension<T: Clone + Send + Sync + 'static>(self, value: T) -> Self {
        self.update(|req| {
            req.extensions.insert(value);
            Ok(())
        })
    }

    /// The request as built, without sending it.
    pub fn build(self) -> Result<Request> {
        self.request
    }

    /// Sends the request: redirects, retries, middleware and cookies as configured.
    /// The future owns everything it needs (`'static`), so it can be spawned.
    pub fn send(self) -> impl Future<Output = Result<Response>> + Send + 'static {
        // Not an `async fn`: that would hold the builder beside the request's future.
        match self.request {
            Ok(request) => Either::Left(self.session.execute(request)),
            Err(e) => Either::Right(std::future::ready(Err(e))),
        }
    }
}

/// Replaces every header of `into` that `from` names by `from`'s values (all of
/// them, in order); other headers of `into` stay.
pub(crate) fn replace_headers(into: &mut HeaderMap, from: &HeaderMap) {
    for name in from.keys() {
        into.remove(name);
    }
    for (name, value) in from {
        into.append(name.clone(), value.clone());
    }
}

fn set_default(headers: &mut HeaderMap, name: HeaderName, value: HeaderValue) {
    if !headers.contains_key(&name) {
        headers.insert(name, value);
    }
}

/// `Basic base64(user:password)`, marked sensitive.
pub(crate) fn basic_auth_value(user: &str, password: &str) -> Result<HeaderValue> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut value = HeaderValue::try_from(format!("Basic {encoded}"))
        .map_err(|e| Error::builder("invalid basic auth credentials").with_source(e))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `Bearer token`, marked sensitive.
pub(crate) fn bearer_auth_value(token: &str) -> Result<HeaderValue> {
    let mut value = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|e| Error::builder("invalid bearer token").with_source(e))?;
    value.set_sensitive(true);
    Ok(value)
}
