//! The connection's I/O wrapper: the header-read deadline and the write timeout.
//!
//! hyper runs its own `header_read_timeout` while a keep-alive connection sits idle,
//! so with hyper alone the idle timeout and the head deadline are one number
//! (hyperium/hyper#3828). aiox gives hyper the idle value (75 s) and enforces the
//! 30 s head deadline here, from accept for the first request and from the first byte
//! of each later request, so slowloris clients are cut off at 30 s while idle
//! keep-alive connections behind a proxy live for 75 s.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::conn::{ConnShared, STATE_HEAD, STATE_IDLE};

pub(crate) struct TimedIo<I> {
    io: I,
    shared: Arc<ConnShared>,
    head_timeout: Duration,
    head_deadline: Instant,
    head_timer: Option<Pin<Box<Sleep>>>,
    write_timeout: Duration,
    write_timer: Option<Pin<Box<Sleep>>>,
    write_waiting: bool,
}

impl<I> TimedIo<I> {
    pub(crate) fn new(
        io: I,
        shared: Arc<ConnShared>,
        head_timeout: Duration,
        write_timeout: Duration,
    ) -> Self {
        Self {
            io,
            shared,
            head_timeout,
            head_deadline: Instant::now() + head_timeout,
            head_timer: None,
            write_timeout,
            write_timer: None,
            write_waiting: false,
        }
    }
}

fn timed_out(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what)
}

fn poll_deadline(
    timer: &mut Option<Pin<Box<Sleep>>>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let timer = match timer {
        Some(t) => {
            if t.deadline() != deadline {
                t.as_mut().reset(deadline);
            }
            t
        }
        None => timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
    };
    timer.as_mut().poll(cx)
}

use std::future::Future;

impl<I: AsyncRead + Unpin> AsyncRead for TimedIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.io).poll_read(cx, buf);
        let state = this.shared.state.load(Ordering::Relaxed);
        match res {
            Poll::Ready(Ok(())) => {
                if state == STATE_IDLE && buf.filled().len() > before {
                    // The first byte of the next request head: its deadline starts now.
                    this.shared.state.store(STATE_HEAD, Ordering::Relaxed);
                    this.head_deadline = Instant::now() + this.head_timeout;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if state == STATE_HEAD => {
                match poll_deadline(&mut this.head_timer, this.head_deadline, cx) {
                    Poll::Ready(()) => {
                        tracing::debug!("request head not complete in time, closing");
                        Poll::Ready(Err(timed_out("header read timeout")))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> TimedIo<I> {
    fn on_write<T>(
        &mut self,
        res: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match res {
            Poll::Ready(r) => {
                self.write_waiting = false;
                Poll::Ready(r)
            }
            Poll::Pending => {
                if !self.write_waiting {
                    self.write_waiting = true;
                    let deadline = Instant::now() + self.write_timeout;
                    match &mut self.write_timer {
                        Some(t) => t.as_mut().reset(deadline),
                        None => {
                            self.write_timer = Some(Box::pin(tokio::time::sleep_until(deadline)))
                        }
                    }
                }
                match self.write_timer.as_mut().map(|t| t.as_mut().poll(cx)) {
                    Some(Poll::Ready(())) => {
                        tracing::debug!("peer stopped reading, closing");
                        Poll::Ready(Err(timed_out("write timeout")))
                    }
                    _ => Poll::Pending,
                }
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for TimedIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.io).poll_write(cx, buf);
        this.on_write(res, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.on_write(res, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.io).poll_flush(cx);
        this.on_write(res, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
