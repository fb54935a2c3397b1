//! The response body as the client reads it: hyper's incoming body holding the pool
//! lease (given back when the body ends, the connection closed when it is dropped
//! early), optionally decompressed, under the total deadline and the sock_read timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aiox_core::client::Lease;
use bytes::Bytes;
use futures_util::Stream;
use http_body::Body as _;
use tokio::time::{Instant, Sleep};

use crate::error::{Error, ErrorKind, TimeoutPhase};
use crate::trace::Tracer;

/// Chunks of a body as a boxed stream (the decoder's input and output).
pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send + 'static>>;

/// Hyper's body and the lease on its connection.
pub(crate) struct RawBody {
    incoming: hyper::body::Incoming,
    lease: Option<Lease>,
    keep_alive: bool,
}

impl RawBody {
    /// `lease` goes back to the pool when `incoming` ends (and is dropped, closing an
    /// HTTP/1 connection, if it fails or is abandoned).
    pub(crate) fn new(incoming: hyper::body::Incoming, lease: Lease, keep_alive: bool) -> Self {
        let mut body = Self {
            incoming,
            lease: Some(lease),
            keep_alive,
        };
        // HEAD, 204, 304 and empty bodies: nothing to wait for.
        if body.incoming.is_end_stream() {
            body.release();
        }
        body
    }

    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release(self.keep_alive);
        }
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if self.lease.is_none() && self.incoming.is_end_stream() {
            return Poll::Ready(None);
        }
        loop {
            return match Pin::new(&mut self.incoming).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => {
                    self.release();
                    Poll::Ready(None)
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        if self.incoming.is_end_stream() {
                            self.release();
                        }
                        if data.is_empty() {
                            continue;
                        }
                        Poll::Ready(Some(Ok(data)))
                    }
                    // Trailers: not surfaced.
                    Err(_) => continue,
                },
                Poll::Ready(Some(Err(e))) => {
                    // The connection cannot be trusted any more: the lease closes it.
                    self.lease = None;
                    Poll::Ready(Some(Err(Error::new(
                        ErrorKind::Body,
                        "reading the response body failed",
                    )
                    .with_source(e))))
                }
            };
        }
    }
}

impl Stream for RawBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

enum Source {
    Empty,
    Raw(RawBody),
    Decoded(ByteStream),
}

/// A response body with its timers.
pub(crate) struct ResponseBody {
    source: Source,
    deadline: Option<Instant>,
    sock_read: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
    tracer: Option<Arc<Tracer>>,
    done: bool,
}

impl ResponseBody {
    pub(crate) fn new(
        raw: RawBody,
        deadline: Option<Instant>,
        sock_read: Option<Duration>,
        tracer: Option<Arc<Tracer>>,
    ) -> Self {
        Self {
            source: Source::Raw(raw),
            deadline,
            sock_read,
            sleep: None,
            tracer,
            done: false,
        }
    }

    /// Replaces the source by its decoded form, `decode` given the raw stream.
    #[cfg_attr(not(feature = "compression"), allow(dead_code))]
    pub(crate) fn map_source(&mut self, decode: impl FnOnce(ByteStream) -> ByteStream) {
        let source = std::mem::replace(&mut self.source, Source::Empty);
        self.source = match source {
            Source::Raw(raw) => Source::Decoded(decode(Box::pin(raw))),
            other => other,
        };
    }

    /// True once the body has been read to its end (or failed).
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    pub(crate) fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let polled = match &mut self.source {
            Source::Empty => Poll::Ready(None),
            Source::Raw(raw) => raw.poll_chunk(cx),
            Source::Decoded(stream) => stream.as_mut().poll_next(cx),
        };
        match polled {
            Poll::Ready(item) => {
                self.sleep = None;
                match &item {
                    Some(Ok(chunk)) => {
                        if let Some(tracer) = &self.tracer {
                            tracer.chunk_received(chunk.len());
                        }
                    }
                    Some(Err(_)) | None => self.finish(),
                }
                Poll::Ready(item)
            }
            Poll::Pending => self.poll_timers(cx),
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.sleep = None;
        // Drops the lease now (closing an HTTP/1 connection after an error).
        self.source = Source::Empty;
    }

    /// Runs the total deadline and the sock_read timer while the body waits.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if self.deadline.is_none() && self.sock_read.is_none() {
            return Poll::Pending;
        }
        let sleep = match &mut self.sleep {
            Some(sleep) => sleep,
            None => {
                let (at, _) = next_timer(self.deadline, self.sock_read);
                self.sleep.insert(Box::pin(tokio::time::sleep_until(at)))
            }
        };
        match sleep.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                let (_, phase) = next_timer(self.deadline, self.sock_read);
                self.finish();
                Poll::Ready(Some(Err(Error::timeout(phase))))
            }
        }
    }
}

/// Whichever of the deadline and `now + sock_read` comes first, and its phase.
fn next_timer(deadline: Option<Instant>, sock_read: Option<Duration>) -> (Instant, TimeoutPhase) {
    let read = sock_read.map(|d| Instant::now() + d);
    match (deadline, read) {
        (Some(total), Some(read)) if read < total => (read, TimeoutPhase::SockRead),
        (Some(total), _) => (total, TimeoutPhase::Total),
        (None, Some(read)) => (read, TimeoutPhase::SockRead),
        // Not called without a timer.
        (None, None) => (Instant::now(), TimeoutPhase::Total),
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match self.source {
            Source::Empty => "empty",
            Source::Raw(_) => "raw",
            Source::Decoded(_) => "decoded",
        };
        f.debug_struct("ResponseBody")
            .field("source", &source)
            .field("done", &self.done)
            .finish()
    }
}

/// A request body that reports, through the receiver, when it has been read to its
/// end (or dropped): the sock_read timer starts only then, as a slow upload is not a
/// silent server (aiohttp #7149).
pub(crate) fn signal_written(
    body: aiox_core::Body,
) -> (aiox_core::Body, tokio::sync::oneshot::Receiver<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if body.is_end_stream() {
        let _ = tx.send(());
        return (body, rx);
    }
    let body = SignalWritten {
        inner: body,
        tx: Some(tx),
    };
    (aiox_core::Body::wrap(body), rx)
}

struct SignalWritten {
    inner: aiox_core::Body,
    tx: Option<tokio::sync::oneshot::Sender<()>>,
}

impl http_body::Body for SignalWritten {
    type Data = Bytes;
    type Error = aiox_core::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Pending => false,
        };
        if ended {
            if let Some(tx) = this.tx.take() {
                let _ = tx.send(());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
