//! The connection's I/O wrapper: the header-read deadline, the keep-alive idle
//! timeout, the write timeout and the lingering close.
//!
//! hyper runs its own `header_read_timeout` while a keep-alive connection sits idle,
//! so with hyper alone the idle timeout and the head deadline are one number
//! (hyperium/hyper#3828), and it allocates a new timer for every request. aiox turns
//! hyper's timer off and enforces both here with one reusable timer per connection:
//! the head deadline (30 s) from accept for the first request and from the first
//! byte of each later request, so slowloris clients are cut off at 30 s, and the idle
//! timeout (75 s) between requests, so keep-alive connections behind a proxy live
//! for 75 s. The timer is only reset when it fires before the deadline in force, so
//! a connection reads the clock once per idle period, when it starts waiting.
//!
//! While a write waits for a slow reader the idle deadline does not run (the write
//! timeout does); the idle period starts when the response is out. When hyper shuts
//! the connection down after a request body was left unread (the handler answered
//! early), the write side is shut first and what the client still sends is read and
//! dropped, up to `linger_max_bytes` or `linger_timeout`, so the client can read the
//! response instead of meeting a reset (HARDENING case 27).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::conn::{ConnShared, STATE_BUSY, STATE_HEAD, STATE_IDLE};

pub(crate) struct TimedIo<I> {
    io: I,
    shared: Arc<ConnShared>,
    head_timeout: Duration,
    /// When the head being read must be complete; set when a read of it first waits.
    head_deadline: Option<Instant>,
    idle_timeout: Duration,
    /// When the current idle period ends, and the `idle_gen` it was computed for.
    idle_deadline: Instant,
    idle_gen: u64,
    timer: Option<Pin<Box<Sleep>>>,
    /// True once `timer` has been polled since it was last armed: the connection runs
    /// on one task, so the registered waker stays right and need not be polled again.
    timer_polled: bool,
    write_timeout: Duration,
    write_timer: Option<Pin<Box<Sleep>>>,
    write_waiting: bool,
    linger_max_bytes: usize,
    linger_timeout: Duration,
    linger: Linger,
}

/// Where the lingering close after an unread request body is (HARDENING case 27).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Linger {
    /// Not started: decided when hyper shuts the connection down.
    Idle,
    /// The write side is shut; reading and dropping what the client still sends.
    Draining { discarded: usize, until: Instant },
    /// Finished (or not needed): shutdown goes straight to the inner I/O.
    Done,
}

impl<I> TimedIo<I> {
    pub(crate) fn new(
        io: I,
        shared: Arc<ConnShared>,
        head_timeout: Duration,
        idle_timeout: Duration,
        write_timeout: Duration,
        linger_max_bytes: usize,
        linger_timeout: Duration,
    ) -> Self {
        let now = Instant::now();
        Self {
            io,
            shared,
            head_timeout,
            head_deadline: Some(now + head_timeout),
            idle_timeout,
            idle_deadline: now + idle_timeout,
            idle_gen: 0,
            timer: None,
            timer_polled: false,
            write_timeout,
            write_timer: None,
            write_waiting: false,
            linger_max_bytes,
            linger_timeout,
            linger: Linger::Idle,
        }
    }

    /// Polls the connection timer for `deadline`; ready once the deadline has passed.
    fn poll_deadline(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let timer = match &mut self.timer {
            Some(timer) => {
                if timer.deadline() > deadline {
                    timer.as_mut().reset(deadline);
                    self.timer_polled = false;
                }
                timer
            }
            None => {
                self.timer_polled = false;
                self.timer
                    .insert(Box::pin(tokio::time::sleep_until(deadline)))
            }
        };
        loop {
            if timer.is_elapsed() {
                if Instant::now() >= deadline {
                    return Poll::Ready(());
                }
                // Fired for an earlier deadline that no longer holds: wait for this one.
                timer.as_mut().reset(deadline);
                self.timer_polled = false;
            }
            if self.timer_polled {
                return Poll::Pending;
            }
            self.timer_polled = true;
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// Keeps the timer armed while a request is served, no later than the earliest
    /// idle deadline (now + timeout): hyper may not read again when the request ends,
    /// so the idle deadline is checked when this timer wakes the read. It is re-armed
    /// only once it has fired, so a busy connection pays no clock read here.
    fn arm_while_busy(&mut self, cx: &mut Context<'_>) {
        let idle_timeout = self.idle_timeout;
        let timer = match &mut self.timer {
            Some(timer) => timer,
            None => {
                self.timer_polled = false;
                self.timer
                    .insert(Box::pin(tokio::time::sleep(idle_timeout)))
            }
        };
        loop {
            if timer.is_elapsed() {
                timer.as_mut().reset(Instant::now() + idle_timeout);
                self.timer_polled = false;
            }
            if self.timer_polled {
                return;
            }
            self.timer_polled = true;
            if timer.as_mut().poll(cx).is_pending() {
                return;
            }
        }
    }
}

fn timed_out(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what)
}

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
                    // The first byte of the next request head: its deadline starts now
                    // (read from the clock only if the head does not arrive at once).
                    this.shared.state.store(STATE_HEAD, Ordering::Relaxed);
                    this.head_deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if state == STATE_HEAD => {
                let head_timeout = this.head_timeout;
                let deadline = *this
                    .head_deadline
                    .get_or_insert_with(|| Instant::now() + head_timeout);
                match this.poll_deadline(deadline, cx) {
                    Poll::Ready(()) => {
                        tracing::debug!("request head not complete in time, closing");
                        Poll::Ready(Err(timed_out("header read timeout")))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            Poll::Pending if state == STATE_BUSY => {
                this.arm_while_busy(cx);
                Poll::Pending
            }
            // A response still being written (the socket is full) is not idleness:
            // the write timeout covers it, and the idle period starts when the write
            // gets through (see `on_write`).
            Poll::Pending if this.write_waiting => Poll::Pending,
            Poll::Pending if this.shared.no_request_in(state) => {
                let idle_gen = this.shared.idle_gen.load(Ordering::Relaxed);
                if idle_gen != this.idle_gen {
                    // The first wait since the last request ended: the idle period
                    // starts now.
                    this.idle_gen = idle_gen;
                    this.idle_deadline = Instant::now() + this.idle_timeout;
                }
                let deadline = this.idle_deadline;
                match this.poll_deadline(deadline, cx) {
                    Poll::Ready(()) if state == STATE_IDLE => {
                        tracing::debug!("keep-alive connection idle too long, closing");
                        Poll::Ready(Err(timed_out("keep-alive idle timeout")))
                    }
                    Poll::Ready(()) => {
                        // No stream for the idle timeout: send GOAWAY (once).
                        if this.shared.request_close() {
                            tracing::debug!("idle HTTP/2 connection, sending GOAWAY");
                        }
                        Poll::Pending
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
                if self.write_waiting {
                    self.write_waiting = false;
                    self.write_unblocked(cx);
                }
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

impl<I> TimedIo<I> {
    /// A write that waited for the peer got through. If no request is in flight, the
    /// idle period starts now: reads skip the idle deadline while a write waits, and
    /// hyper may not read again before the connection would sit idle untimed.
    #[cold]
    fn write_unblocked(&mut self, cx: &mut Context<'_>) {
        if self
            .shared
            .no_request_in(self.shared.state.load(Ordering::Relaxed))
        {
            self.idle_gen = self.shared.idle_gen.load(Ordering::Relaxed);
            self.idle_deadline = Instant::now() + self.idle_timeout;
            // The deadline is in the future: this registers the wake-up.
            let _ = self.poll_deadline(self.idle_deadline, cx);
        }
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> TimedIo<I> {
    /// Reads and drops what the client still sends until it closes, the byte limit
    /// or the deadline; ready when the connection may close.
    fn poll_linger(
        &mut self,
        mut discarded: usize,
        until: Instant,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let mut scratch = [0u8; 4096];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {
                    discarded += buf.filled().len();
                    if discarded > self.linger_max_bytes {
                        tracing::debug!(discarded, "unread request body over the linger limit");
                        return Poll::Ready(());
                    }
                    self.linger = Linger::Draining { discarded, until };
                }
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => {
                    return match self.poll_deadline(until, cx) {
                        Poll::Ready(()) => {
                            tracing::debug!("client still sending after the linger timeout");
                            Poll::Ready(())
                        }
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TimedIo<I> {
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
        let this = self.get_mut();
        if this.linger == Linger::Idle {
            this.linger = if this.shared.has_unread_body() && this.linger_max_bytes > 0 {
                // Send FIN first: the response is complete, the client may stop.
                ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
                Linger::Draining {
                    discarded: 0,
                    until: Instant::now() + this.linger_timeout,
                }
            } else {
                Linger::Done
            };
        }
        if let Linger::Draining { discarded, until } = this.linger {
            ready!(this.poll_linger(discarded, until, cx));
            this.linger = Linger::Done;
            // The write side is already shut.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
