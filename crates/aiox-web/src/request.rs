//! [`Request`]: everything about an incoming request, aiohttp's `web.Request`.

use std::borrow::Cow;
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri, Version};

use aiox_core::Body;
use aiox_core::server::ConnectionInfo;

use crate::app::AppShared;
use crate::cookie::Cookies;
use crate::error::HttpError;
use crate::query::QueryMap;

/// The URL parameters a route matched: aiohttp's `request.match_info`.
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    pub(crate) params: Vec<(Arc<str>, String)>,
    pub(crate) route: Option<Arc<str>>,
}

impl MatchInfo {
    /// The percent-decoded value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every (name, value) pair, in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(n, v)| (&**n, v.as_str()))
    }

    /// The pattern of the route that matched (`/users/{id}`), if one did.
    pub fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }

    /// How many parameters matched.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// True if the route has no parameters.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }
}

enum BodyState {
    Unread(Body),
    Buffered(Bytes),
    Taken,
}

/// An incoming HTTP request.
///
/// Body readers ([`bytes`](Self::bytes), [`text`](Self::text), [`json`](Self::json),
/// [`form`](Self::form)) buffer the body once, up to the application's
/// `client_max_size` (1 MiB by default, aiohttp's), and may be called again after;
/// a body over the limit is a 413 before any handler sees part of it.
/// [`take_body`](Self::take_body) streams it instead, without a size limit.
pub struct Request {
    /// Inline: a box would cost an allocation per request. `ManuallyDrop`: `Drop`
    /// moves it out, to hand its header map on (see there).
    head: ManuallyDrop<http::request::Parts>,
    body: BodyState,
    conn: Arc<ConnectionInfo>,
    pub(crate) app: Arc<AppShared>,
    pub(crate) match_info: MatchInfo,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.head.method)
            .field("uri", &self.head.uri)
            .field("version", &self.head.version)
            .field("headers", &self.head.headers)
            .field("remote", &self.conn.remote_addr())
            .finish_non_exhaustive()
    }
}

/// Decodes `%XX` escapes; `None` if an escape is malformed or the result is not UTF-8.
pub(crate) fn percent_decode(raw: &str) -> Option<Cow<'_, str>> {
    decode_escapes(raw, |_| false)
}

/// Decodes `%XX` escapes except those of the bytes `keep` accepts, which stay encoded
/// (as `%` and two uppercase hex digits); `None` if an escape is malformed or the
/// result is not UTF-8.
pub(crate) fn decode_escapes(raw: &str, keep: impl Fn(u8) -> bool) -> Option<Cow<'_, str>> {
    if !raw.contains('%') {
        return Some(Cow::Borrowed(raw));
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            let byte = (hi * 16 + lo) as u8;
            if keep(byte) {
                out.extend_from_slice(&[
                    b'%',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 15)],
                ]);
            } else {
                out.push(byte);
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

impl Request {
    pub(crate) fn new(
        head: http::request::Parts,
        body: Body,
        conn: Arc<ConnectionInfo>,
        app: Arc<AppShared>,
        match_info: MatchInfo,
    ) -> Self {
        Self {
            head: ManuallyDrop::new(head),
            body: BodyState::Unread(body),
            conn,
            app,
            match_info,
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.head.method
    }

    /// The request target as sent.
    pub fn uri(&self) -> &Uri {
        &self.head.uri
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The path, percent-decoded (aiohttp's `request.path`); the raw path if it does not
    /// decode (the router answers such requests with 400 before any handler runs).
    pub fn path(&self) -> Cow<'_, str> {
        let raw = self.head.uri.path();
        percent_decode(raw).unwrap_or(Cow::Borrowed(raw))
    }

    /// The path as sent, still percent-encoded (aiohttp's `request.raw_path`, without the query).
    pub fn raw_path(&self) -> &str {
        self.head.uri.path()
    }

    /// The query string as sent, without `?` (empty if there is none).
    pub fn query_string(&self) -> &str {
        self.head.uri.query().unwrap_or("")
    }

    /// The query parameters, decoded and multi-valued (aiohttp's `request.query`).
    pub fn query(&self) -> QueryMap {
        QueryMap::parse(self.query_string().as_bytes())
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The headers, to change them (e.g. in a middleware).
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.head.headers
    }

    /// The value of header `name` if it is present and visible ASCII.
    pub fn header(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.head.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The cookies sent with the request.
    pub fn cookies(&self) -> Cookies {
        Cookies::parse(&self.head.headers)
    }

    /// The URL parameters of the matched route.
    pub fn match_info(&self) -> &MatchInfo {
        &self.match_info
    }

    /// The peer's address (`None` on a Unix socket): aiohttp's `request.remote`.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.conn.remote_addr()
    }

    /// The connection the request arrived on.
    pub fn connection(&self) -> &ConnectionInfo {
        &self.conn
    }

    /// True if the request came over TLS.
    pub fn is_secure(&self) -> bool {
        self.conn.is_tls()
    }

    /// Typed per-request values set by middleware (aiohttp's `request["user"]`).
    pub fn extensions(&self) -> &http::Extensions {
        &self.head.extensions
    }

    /// Typed per-request values, to change them.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.head.extensions
    }

    /// The per-request value of type `T`, if a middleware stored one.
    pub fn ext<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.head.extensions.get::<T>()
    }

    /// Stores a per-request value of type `T`, returning the previous one.
    pub fn set_ext<T: Clone + Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        self.head.extensions.insert(value)
    }

    /// The application state of type `T` (see `Application::state`).
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.app.state().get::<T>()
    }

    /// The media type of the body without parameters, lower-cased
    /// (`application/json`); empty if there is no `Content-Type`.
    pub fn content_type(&self) -> String {
        self.header(http::header::CONTENT_TYPE)
            .and_then(|ct| ct.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// The `charset` parameter of the `Content-Type`, if any.
    pub fn charset(&self) -> Option<String> {
        let ct = self.header(http::header::CONTENT_TYPE)?;
        ct.split(';').skip(1).find_map(|param| {
            let (k, v) = param.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
        })
    }

    /// The `Content-Length`, if the request declares one.
    pub fn content_length(&self) -> Option<u64> {
        self.header(http::header::CONTENT_LENGTH)?.parse().ok()
    }

    /// The limit on buffered bodies for this request.
    pub fn client_max_size(&self) -> u64 {
        self.app.client_max_size
    }

    /// The whole body, read once and kept (aiohttp's `read()`); 413 past `client_max_size`.
    pub async fn bytes(&mut self) -> Result<Bytes, HttpError> {
        match std::mem::replace(&mut self.body, BodyState::Taken) {
            BodyState::Buffered(bytes) => {
                self.body = BodyState::Buffered(bytes.clone());
                Ok(bytes)
            }
            BodyState::Taken => Err(HttpError::internal_server_error()
                .with_source("the request body was already taken as a stream")),
            BodyState::Unread(body) => {
                let bytes = body
                    .to_bytes_limited(self.app.client_max_size)
                    .await
                    .map_err(HttpError::from_core)?;
                self.body = BodyState::Buffered(bytes.clone());
                Ok(bytes)
            }
        }
    }

    /// The body as text, decoded with the `charset` of the `Content-Type` (UTF-8 if
    /// none); 400 if it does not decode.
    pub async fn text(&mut self) -> Result<String, HttpError> {
        let charset = self.charset();
        let bytes = self.bytes().await?;
        decode_text(&bytes, charset.as_deref())
    }

    /// The body parsed as JSON: 400 for malformed JSON, 422 for JSON of the wrong shape.
    pub async fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, HttpError> {
        let bytes = self.bytes().await?;
        crate::extract::parse_json(&bytes)
    }

    /// The body parsed as `application/x-www-form-urlencoded` into `T`; 422 if it does
    /// not fit `T`.
    pub async fn form<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, HttpError> {
        let bytes = self.bytes().await?;
        crate::extract::parse_form(&bytes)
    }

    /// The url-encoded form fields of the body, multi-valued (aiohttp's `post()`).
    pub async fn post(&mut self) -> Result<QueryMap, HttpError> {
        let bytes = self.bytes().await?;
        Ok(QueryMap::parse(&bytes))
    }

    /// Takes the body to stream it (aiohttp's `request.content`), without a size limit.
    /// Returns an empty body if it was already read or taken.
    pub fn take_body(&mut self) -> Body {
        match std::mem::replace(&mut self.body, BodyState::Taken) {
            BodyState::Unread(body) => body,
            BodyState::Buffered(bytes) => {
                self.body = BodyState::Buffered(bytes.clone());
                Body::from(bytes)
            }
            BodyState::Taken => Body::empty(),
        }
    }

    /// The request head (method, URI, version, headers, extensions).
    pub fn head(&self) -> &http::request::Parts {
        &self.head
    }

    /// Splits the request into its `http` parts and body.
    pub fn into_parts(mut self) -> (http::request::Parts, Body) {
        let body = self.take_body();
        let (empty, ()) = http::Request::new(()).into_parts();
        (std::mem::replace(&mut *self.head, empty), body)
    }
}

// The one `unsafe` outside `recycle`: moving the head out in `drop` (a measured hot
// path, STYLE.md) saves ~50 instructions a request over swapping each field for an
// empty value.
#[allow(unsafe_code)]
impl Drop for Request {
    fn drop(&mut self) {
        // SAFETY: `head` is not used again: this is `drop`, and the `ManuallyDrop`
        // wrapper keeps the field from being dropped a second time.
        let head = unsafe { ManuallyDrop::take(&mut self.head) };
        // The next response built on this thread gets the map (see `spare`); the
        // method, URI and extensions are dropped here.
        crate::spare::put(head.headers);
    }
}

/// Decodes `bytes` with the WHATWG encoding `charset` (UTF-8 if `None`).
pub(crate) fn decode_text(bytes: &Bytes, charset: Option<&str>) -> Result<String, HttpError> {
    let encoding = match charset {
        None => encoding_rs::UTF_8,
        Some(label) => encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
            HttpError::unsupported_media_type().with_message(format!(
                "415 Unsupported Media Type: unknown charset {:?}",
                truncate(label, 40)
            ))
        })?,
    };
    let invalid = || {
        HttpError::bad_request().with_message(format!(
            "400 Bad Request: the body is not valid {}",
            encoding.name()
        ))
    };
    if encoding == encoding_rs::UTF_8 {
        return std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| invalid());
    }
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(Cow::into_owned)
        .ok_or_else(invalid)
}

/// Cuts `text` to at most `max` characters for use in an error message.
pub(crate) fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((idx, _)) => Cow::Owned(format!("{}...", &text[..idx])),
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_rejects_malformed_escapes_and_bad_utf8() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/plain").as_deref(), Some("/plain"));
        assert!(percent_decode("/a%zz").is_none());
        assert!(percent_decode("/a%2").is_none());
        assert!(percent_decode("/a%ff").is_none());
        assert_eq!(percent_decode("/%E2%9C%93").as_deref(), Some("/\u{2713}"));
    }

    #[test]
    fn text_decodes_with_the_charset() {
        let latin1 = Bytes::from_static(b"caf\xe9");
        assert_eq!(
            decode_text(&latin1, Some("iso-8859-1")).unwrap(),
            "caf\u{e9}"
        );
        assert_eq!(decode_text(&latin1, None).unwrap_err().status(), 400);
        assert_eq!(
            decode_text(&latin1, Some("klingon")).unwrap_err().status(),
            415
        );
    }

    #[test]
    fn truncate_keeps_short_text_and_cuts_long_text() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc...");
    }
}
