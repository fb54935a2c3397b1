//! [`Response`]: status, headers, the final URL and redirect history, cookies, and
//! the body as text, bytes, JSON or a stream of chunks.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http::header::{self, HeaderMap};
use http::{Extensions, Method, StatusCode, Version};
use serde::de::DeserializeOwned;
use url::Url;

use crate::body::ResponseBody;
use crate::error::{Error, ErrorKind, HistoryEntry, Result};
use crate::request::Request;

/// The cap on what [`Response::bytes`], [`text`](Response::text) and
/// [`json`](Response::json) buffer: 64 MiB (HARDENING section 2, RUSTSEC-2025-0015: a
/// huge or lying `Content-Length` never makes the client allocate it). Streaming with
/// [`chunks`](Response::chunks) has no cap. Set per session or request with
/// `read_limit`.
pub const DEFAULT_READ_LIMIT: usize = 64 * 1024 * 1024;

/// A response. The body is read with one of the async methods; a response dropped
/// before its body was read to the end closes its HTTP/1 connection instead of
/// returning it to the pool.
pub struct Response {
    /// Boxed: a response is moved through every layer of the request future, and a
    /// pointer is cheaper to move than its ~600 bytes (measured with callgrind).
    pub(crate) inner: Box<ResponseInner>,
}

/// What a [`Response`] holds.
pub(crate) struct ResponseInner {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    /// The request of this hop, its body kept when it can be sent again (for a
    /// redirect to follow).
    pub(crate) request: Request,
    pub(crate) history: Vec<HistoryEntry>,
    pub(crate) extensions: Extensions,
    pub(crate) body: ResponseBody,
    pub(crate) read_limit: usize,
    /// The body is decoded: `Content-Length` no longer tells its length.
    pub(crate) decoded: bool,
    /// The head has `Set-Cookie` fields.
    pub(crate) sets_cookies: bool,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.inner.status)
            .field("version", &self.inner.version)
            .field("url", &self.inner.request.url.as_str())
            .field("headers", &self.inner.headers)
            .field("redirects", &self.inner.history.len())
            .finish()
    }
}

impl Response {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The reason phrase: the one the server sent on HTTP/1.1 when it differs from the
    /// standard one, else the standard one (`None` for unknown codes).
    pub fn reason(&self) -> Option<&str> {
        if let Some(reason) = self.inner.extensions.get::<hyper::ext::ReasonPhrase>() {
            // An empty phrase is no phrase (RFC 9112 section 4: it is optional).
            if let Ok(reason) = std::str::from_utf8(reason.as_bytes()).map(str::trim) {
                if !reason.is_empty() {
                    return Some(reason);
                }
            }
        }
        self.inner.status.canonical_reason()
    }

    /// The HTTP version of the response.
    pub fn version(&self) -> Version {
        self.inner.version
    }

    /// The headers, as received (`Content-Encoding` stays even when the body is
    /// decompressed, as aiohttp leaves it).
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The URL of this response: the last one after redirects.
    pub fn url(&self) -> &Url {
        &self.inner.request.url
    }

    /// The method of the request that got this response (after redirects, which may
    /// have changed it to GET).
    pub fn method(&self) -> &Method {
        &self.inner.request.method
    }

    /// The redirects followed to get here, oldest first (aiohttp's `history`).
    pub fn history(&self) -> &[HistoryEntry] {
        &self.inner.history
    }

    /// The cookies this response set (its `Set-Cookie` headers that parse).
    pub fn cookies(&self) -> Vec<cookie::Cookie<'static>> {
        self.inner
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| cookie::Cookie::parse(v.to_owned()).ok())
            .collect()
    }

    /// The body's length from `Content-Length`, when known and the body is not decoded.
    pub fn content_length(&self) -> Option<u64> {
        if self.inner.decoded {
            return None;
        }
        self.inner
            .headers
            .get(header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }

    /// Typed values attached by hyper and by middleware.
    pub fn extensions(&self) -> &Extensions {
        &self.inner.extensions
    }

    /// The extensions, to change.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.inner.extensions
    }

    /// Sets the cap on the buffered helpers for this response ([`DEFAULT_READ_LIMIT`]).
    pub fn set_read_limit(&mut self, limit: usize) {
        self.inner.read_limit = limit;
    }

    /// An error of kind [`ErrorKind::Status`] if the status is 400 or above, else the
    /// response (aiohttp's `raise_for_status()`).
    pub fn error_for_status(self) -> Result<Self> {
        match self.status_error() {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }

    /// [`error_for_status`](Response::error_for_status) without consuming the response.
    pub fn error_for_status_ref(&self) -> Result<&Self> {
        match self.status_error() {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }

    pub(crate) fn status_error(&self) -> Option<Error> {
        if self.inner.status.is_client_error() || self.inner.status.is_server_error() {
            let message = if self.inner.status.is_client_error() {
                "the server answered with a client error status"
            } else {
                "the server answered with a server error status"
            };
            Some(
                Error::new(ErrorKind::Status(self.inner.status), message)
                    .with_request(&self.inner.request.method, &self.inner.request.url)
                    .with_history(self.inner.history.clone()),
            )
        } else {
            None
        }
    }

    /// The next chunk of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        let chunk = std::future::poll_fn(|cx| self.inner.body.poll_chunk(cx)).await;
        match chunk {
            None => Ok(None),
            Some(Ok(bytes)) => Ok(Some(bytes)),
            Some(Err(e)) => {
                Err(e.with_request(&self.inner.request.method, &self.inner.request.url))
            }
        }
    }

    /// The body as a stream of chunks, pulled as the caller reads them (backpressure:
    /// nothing more is read from the socket than the stream's consumer asks for).
    pub fn chunks(self) -> Chunks {
        Chunks { response: self }
    }

    /// The whole body, up to the read limit (a longer body is an error of kind
    /// [`ErrorKind::Body`]).
    pub async fn bytes(mut self) -> Result<Bytes> {
        let limit = self.inner.read_limit;
        let too_large = |resp: &Response| {
            Error::new(
                ErrorKind::Body,
                format!("the response body is longer than the read limit of {limit} bytes"),
            )
            .with_request(&resp.inner.request.method, &resp.inner.request.url)
        };
        if let Some(len) = self.content_length() {
            if len > limit as u64 {
                return Err(too_large(&self));
            }
        }
        let Some(first) = self.chunk().await? else {
            return Ok(Bytes::new());
        };
        if first.len() > limit {
            return Err(too_large(&self));
        }
        // One chunk is the common case: no copy.
        let Some(second) = self.chunk().await? else {
            return Ok(first);
        };
        // Reserve from what arrived, never from Content-Length (it may lie).
        let mut buf = BytesMut::with_capacity(first.len() + second.len());
        buf.extend_from_slice(&first);
        buf.extend_from_slice(&second);
        if buf.len() > limit {
            return Err(too_large(&self));
        }
        while let Some(chunk) = self.chunk().await? {
            if buf.len() + chunk.len() > limit {
                return Err(too_large(&self));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// The body as text: decoded with the charset of `Content-Type`, else by its byte
    /// order mark, else as UTF-8 with invalid bytes replaced.
    pub async fn text(self) -> Result<String> {
        let charset = charset(&self.inner.headers);
        let bytes = self.bytes().await?;
        Ok(decode_text(&bytes, charset.as_deref()))
    }

    /// The body parsed as JSON into `T` (a parse failure is an error of kind
    /// [`ErrorKind::Decode`]).
    pub async fn json<T: DeserializeOwned>(self) -> Result<T> {
        let method = self.inner.request.method.clone();
        let url = self.inner.request.url.clone();
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Decode,
                "the response body is not the expected JSON",
            )
            .with_source(e)
            .with_request(&method, &url)
        })
    }

    /// Reads the rest of the body and drops it, so the connection can be reused.
    pub async fn consume(mut self) -> Result<()> {
        while self.chunk().await?.is_some() {}
        Ok(())
    }

    /// True once the body was read to its end.
    pub fn is_body_done(&self) -> bool {
        self.inner.body.is_done()
    }
}

/// The `charset` parameter of `Content-Type`, if any.
fn charset(headers: &HeaderMap) -> Option<String> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Decodes `bytes` as text: the charset label first, then a BOM, then UTF-8 lossy.
pub(crate) fn decode_text(bytes: &[u8], charset: Option<&str>) -> String {
    if let Some(encoding) = charset.and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes())) {
        let (text, _) = encoding.decode_with_bom_removal(bytes);
        return text.into_owned();
    }
    if let Some((encoding, bom_len)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        return text.into_owned();
    }
    String::from_utf8_lossy(bytes).into_owned()
}

/// A response body as a [`Stream`] of chunks, from [`Response::chunks`].
#[derive(Debug)]
pub struct Chunks {
    response: Response,
}

impl Chunks {
    /// The response the chunks come from (status and headers stay readable).
    pub fn response(&self) -> &Response {
        &self.response
    }
}

impl Stream for Chunks {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.response.inner.body.poll_chunk(cx) {
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.with_request(
                &this.response.inner.request.method,
                &this.response.inner.request.url,
            )))),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_uses_the_charset_then_the_bom_then_utf8() {
        assert_eq!(decode_text(b"caf\xe9", Some("iso-8859-1")), "café");
        assert_eq!(decode_text(b"\xef\xbb\xbfhi", None), "hi");
        assert_eq!(decode_text(b"\xff\xfeh\x00i\x00", None), "hi");
        assert_eq!(decode_text(b"ok \xff", None), "ok \u{fffd}");
        assert_eq!(decode_text(b"ok", Some("no-such-charset")), "ok");
    }

    #[test]
    fn charset_is_read_from_content_type() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "text/html; Charset=\"Shift_JIS\"".parse().unwrap(),
        );
        assert_eq!(charset(&headers).as_deref(), Some("Shift_JIS"));
    }
}
