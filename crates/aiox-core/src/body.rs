//! [`Body`]: the one body type of requests and responses, and [`Limited`].
//!
//! A body is empty, a full buffer, the incoming body of a hyper connection, or
//! any stream of [`Bytes`] chunks. The first three are stored inline, so
//! serving `Hello, World!` allocates nothing for the body.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use http_body::{Body as _, Frame, SizeHint};

use crate::error::{BoxError, Error};

type BoxBody = Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send + 'static>>;

/// The body of a request or response.
///
/// ```
/// use aiox_core::Body;
/// use http_body::Body as _;
///
/// let body = Body::from("Hello, World!");
/// assert_eq!(body.size_hint().exact(), Some(13));
/// assert!(Body::empty().is_end_stream());
/// ```
pub struct Body {
    inner: Inner,
}

enum Inner {
    Empty,
    Full(Bytes),
    Incoming(Box<Incoming>),
    Boxed(BoxBody),
}

/// A hyper body with an idle timer: no frame for `timeout` while the reader waits
/// ends the body with a timeout error (nginx's `client_body_timeout`).
struct Incoming {
    body: hyper::body::Incoming,
    timeout: Option<std::time::Duration>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The HTTP/1 connection to tell if this body is dropped unfinished, so it
    /// discards the rest before closing (see `server::io`).
    conn: Option<std::sync::Arc<crate::server::conn::ConnShared>>,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(conn) = &self.conn {
            if !self.body.is_end_stream() {
                conn.mark_unread_body();
            }
        }
    }
}

impl Incoming {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(item) => {
                self.sleep = None;
                Poll::Ready(item.map(|r| {
                    r.map_err(|e| {
                        if e.is_timeout() {
                            Error::timeout("body read timeout")
                        } else {
                            Error::body(e)
                        }
                    })
                }))
            }
            Poll::Pending => {
                let Some(timeout) = self.timeout else {
                    return Poll::Pending;
                };
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.timeout = None;
                        Poll::Ready(Some(Err(Error::timeout("body read timeout"))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl Body {
    /// A body with no bytes.
    pub const fn empty() -> Self {
        Self {
            inner: Inner::Empty,
        }
    }

    /// A body made of one buffer.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Self::empty();
        }
        Self {
            inner: Inner::Full(bytes),
        }
    }

    /// A body read from a stream of chunks; an `Err` item ends the body with that error.
    pub fn from_stream<S, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        Self::wrap(StreamBody { stream })
    }

    /// Wraps any [`http_body::Body`] of [`Bytes`].
    pub fn wrap<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self {
            inner: Inner::Boxed(Box::pin(MapErr { body })),
        }
    }

    /// True if the whole body is in memory (empty or one buffer): nothing is left to
    /// wait for once it is handed over.
    pub(crate) fn is_in_memory(&self) -> bool {
        matches!(self.inner, Inner::Empty | Inner::Full(_))
    }

    /// The body of an incoming hyper message; with `idle_timeout`, a read that waits
    /// longer than it for the next frame fails with a timeout error.
    pub fn incoming(
        body: hyper::body::Incoming,
        idle_timeout: Option<std::time::Duration>,
    ) -> Self {
        // A known length of zero rather than `is_end_stream`: the same answer for a
        // request without a body (hyper sets an HTTP/2 stream's length to zero once the
        // client has ended it), without locking the HTTP/2 connection's stream state.
        // An HTTP/2 request that announces `content-length: 0` and keeps its stream
        // open is also empty here: trailers it might send are not read.
        if http_body::Body::size_hint(&body).exact() == Some(0) {
            return Self::empty();
        }
        Self {
            inner: Inner::Incoming(Box::new(Incoming {
                body,
                timeout: idle_timeout,
                sleep: None,
                conn: None,
            })),
        }
    }

    /// [`incoming`](Self::incoming) for a request on an HTTP/1 connection, which is
    /// told if the body is dropped before its end.
    pub(crate) fn incoming_on(
        body: hyper::body::Incoming,
        idle_timeout: Option<std::time::Duration>,
        conn: &std::sync::Arc<crate::server::conn::ConnShared>,
    ) -> Self {
        let mut this = Self::incoming(body, idle_timeout);
        if let Inner::Incoming(incoming) = &mut this.inner {
            incoming.conn = Some(conn.clone());
        }
        this
    }

    /// Limits this body to `limit` bytes: reading past it yields an error whose kind is
    /// [`ErrorKind::PayloadTooLarge`](crate::ErrorKind::PayloadTooLarge).
    ///
    /// A body that announces more than `limit` bytes (through `Content-Length`) fails on
    /// the first read, before any byte is buffered.
    pub fn limited(self, limit: u64) -> Limited<Self> {
        Limited::new(self, limit)
    }

    /// Reads the whole body into one buffer, failing with
    /// [`ErrorKind::PayloadTooLarge`](crate::ErrorKind::PayloadTooLarge) past `limit` bytes.
    pub async fn to_bytes_limited(self, limit: u64) -> Result<Bytes, Error> {
        if let Inner::Full(bytes) = &self.inner {
            if bytes.len() as u64 > limit {
                return Err(Error::payload_too_large(limit));
            }
            return Ok(bytes.clone());
        }
        collect(Limited::new(self, limit)).await
    }

    /// Reads the next chunk of data, skipping trailers; `None` at the end.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, Error>> {
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut *self).poll_frame(cx)).await?;
            match frame {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(data));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

async fn collect<B>(body: B) -> Result<Bytes, Error>
where
    B: http_body::Body<Data = Bytes, Error = Error> + Unpin,
{
    let mut body = body;
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        match (&mut first, &mut rest) {
            (None, _) => first = Some(data),
            (Some(head), None) => {
                let mut buf = BytesMut::with_capacity(head.len() + data.len());
                buf.extend_from_slice(head);
                buf.extend_from_slice(&data);
                rest = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    Ok(match (first, rest) {
        (_, Some(buf)) => buf.freeze(),
        (Some(head), None) => head,
        (None, None) => Bytes::new(),
    })
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner {
            Inner::Empty => "empty",
            Inner::Full(_) => "full",
            Inner::Incoming(_) => "incoming",
            Inner::Boxed(_) => "stream",
        };
        f.debug_struct("Body").field("kind", &kind).finish()
    }
}

impl From<hyper::body::Incoming> for Body {
    fn from(incoming: hyper::body::Incoming) -> Self {
        Self::incoming(incoming, None)
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self::full(bytes)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Self::full(bytes)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Self::full(text)
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Self::full(Bytes::from_static(text.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Self::full(Bytes::from_static(bytes))
    }
}

impl From<()> for Body {
    fn from((): ()) -> Self {
        Self::empty()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        match &mut this.inner {
            Inner::Empty => Poll::Ready(None),
            Inner::Full(_) => {
                let Inner::Full(bytes) = std::mem::replace(&mut this.inner, Inner::Empty) else {
                    return Poll::Ready(None);
                };
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            _ => this.poll_streamed_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Empty => true,
            Inner::Full(_) => false,
            Inner::Incoming(incoming) => incoming.body.is_end_stream(),
            Inner::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Empty => SizeHint::with_exact(0),
            Inner::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Inner::Incoming(incoming) => incoming.body.size_hint(),
            Inner::Boxed(body) => body.size_hint(),
        }
    }
}

impl Body {
    /// `poll_frame` of a body read from a connection or a stream: out of line, so the
    /// in-memory case stays small where hyper inlines it.
    #[inline(never)]
    fn poll_streamed_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match &mut self.inner {
            Inner::Empty | Inner::Full(_) => Pin::new(self).poll_frame(cx),
            Inner::Incoming(incoming) => incoming.poll_frame(cx),
            Inner::Boxed(body) => body.as_mut().poll_frame(cx).map_err(box_to_error),
        }
    }
}

fn box_to_error(err: BoxError) -> Error {
    match err.downcast::<Error>() {
        Ok(err) => *err,
        Err(err) => Error::body(err),
    }
}

pin_project_lite::pin_project! {
    struct MapErr<B> {
        #[pin]
        body: B,
    }
}

impl<B> http_body::Body for MapErr<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().body.poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

pin_project_lite::pin_project! {
    struct StreamBody<S> {
        #[pin]
        stream: S,
    }
}

impl<S, E> http_body::Body for StreamBody<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match ready!(self.project().stream.poll_next(cx)) {
            Some(Ok(bytes)) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            None => Poll::Ready(None),
        }
    }
}

pin_project_lite::pin_project! {
    /// A body cut off at a byte limit: reading past it fails with
    /// [`ErrorKind::PayloadTooLarge`](crate::ErrorKind::PayloadTooLarge).
    ///
    /// Made by [`Body::limited`]. A body whose size hint already exceeds the limit
    /// fails on the first poll without reading.
    #[derive(Debug)]
    pub struct Limited<B> {
        #[pin]
        body: B,
        remaining: u64,
        limit: u64,
    }
}

impl<B> Limited<B> {
    /// Limits `body` to `limit` bytes.
    pub fn new(body: B, limit: u64) -> Self {
        Self {
            body,
            remaining: limit,
            limit,
        }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

impl<B> http_body::Body for Limited<B>
where
    B: http_body::Body<Data = Bytes, Error = Error>,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.project();
        if this.body.size_hint().lower() > *this.remaining {
            return Poll::Ready(Some(Err(Error::payload_too_large(*this.limit))));
        }
        match ready!(this.body.poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.remaining() as u64;
                    if len > *this.remaining {
                        *this.remaining = 0;
                        return Poll::Ready(Some(Err(Error::payload_too_large(*this.limit))));
                    }
                    *this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.body.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().min(self.remaining));
        hint.set_upper(
            inner
                .upper()
                .map_or(self.remaining, |u| u.min(self.remaining)),
        );
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_body_reads_once_and_reports_its_size() {
        let mut body = Body::from("abc");
        assert_eq!(body.size_hint().exact(), Some(3));
        assert_eq!(
            body.chunk().await.map(|r| r.ok()),
            Some(Some(Bytes::from("abc")))
        );
        assert!(body.chunk().await.is_none());
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn stream_body_joins_chunks_and_passes_errors() {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            vec![Ok(Bytes::from("ab")), Ok(Bytes::from("cd"))];
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        assert_eq!(
            body.to_bytes_limited(10).await.ok(),
            Some(Bytes::from("abcd"))
        );

        let chunks: Vec<Result<Bytes, std::io::Error>> =
            vec![Ok(Bytes::from("ab")), Err(std::io::Error::other("reset"))];
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let err = body.to_bytes_limited(10).await.err();
        assert_eq!(err.map(|e| e.kind()), Some(crate::ErrorKind::Body));
    }

    #[tokio::test]
    async fn limit_is_enforced_on_streams_and_on_announced_sizes() {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            vec![Ok(Bytes::from("abc")), Ok(Bytes::from("def"))];
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let err = body.to_bytes_limited(5).await.err();
        assert!(err.is_some_and(|e| e.is_payload_too_large()));

        let err = Body::from("too long").to_bytes_limited(3).await.err();
        assert!(err.is_some_and(|e| e.is_payload_too_large()));

        let exact = Body::from("12345").to_bytes_limited(5).await.ok();
        assert_eq!(exact, Some(Bytes::from("12345")));
    }

    #[tokio::test]
    async fn limited_fails_before_reading_when_the_size_hint_is_over() {
        let body = Body::from("0123456789");
        let mut limited = std::pin::pin!(body.limited(4));
        let first = std::future::poll_fn(|cx| limited.as_mut().poll_frame(cx)).await;
        assert!(matches!(first, Some(Err(e)) if e.is_payload_too_large()));
    }
}
