//! The client side of the engine: host name resolution with a TTL cache, connecting
//! (happy eyeballs, Unix sockets, TLS with ALPN), the HTTP/1.1 and HTTP/2 handshakes,
//! and the connection pool. aiox-client's `ClientSession` is built on it.

mod connect;
mod dns;
mod pool;

#[cfg(feature = "tls")]
pub use connect::tls_connect;
pub use connect::{ClientStream, ConnectObserver, Connector, DEFAULT_HAPPY_EYEBALLS_DELAY, Target};
pub use dns::{CacheOutcome, DEFAULT_DNS_CACHE_HOSTS, DEFAULT_DNS_CACHE_TTL, Resolver};
pub use pool::{
    Checkout, ConnectPermit, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_POOL_LIMIT,
    DEFAULT_POOL_LIMIT_PER_HOST, HostStats, Lease, Pool, PoolConfig, PoolKey, PoolStats,
    QueueObserver, Sender,
};

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper_util::rt::{TokioIo, TokioTimer};

use crate::Body;
use crate::error::{Error, ErrorKind};

/// Response heads larger than this fail (HARDENING case 94): 64 KiB, twice the
/// server's head limit.
pub const DEFAULT_MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Response header fields at most (HARDENING case 94): hyper's 100.
pub const DEFAULT_MAX_RESPONSE_HEADERS: usize = 100;

/// Runs the HTTP/1.1 (`http2` false) or HTTP/2 handshake over `io` and spawns the
/// connection's task on the current tokio runtime; returns its request sender.
pub async fn handshake(io: ClientStream, http2: bool) -> Result<Sender, Error> {
    let io = TokioIo::new(io);
    let failed = |e: hyper::Error| {
        Error::new(
            ErrorKind::Connect,
            "the HTTP handshake failed",
            Some(Box::new(e)),
        )
    };
    if http2 {
        let (sender, conn) = hyper::client::conn::http2::Builder::new(BoxingExecutor)
            .timer(TokioTimer::new())
            .max_header_list_size(DEFAULT_MAX_RESPONSE_HEAD as u32)
            .handshake(io)
            .await
            .map_err(failed)?;
        // h2 learns the server's stream limit while the connection runs; the task
        // publishes it for the pool after every poll.
        let max_streams = Arc::new(AtomicUsize::new(conn.current_max_send_streams()));
        let published = max_streams.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let result = std::future::poll_fn(|cx| {
                let poll = conn.as_mut().poll(cx);
                published.store(conn.current_max_send_streams(), Ordering::Relaxed);
                poll
            })
            .await;
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTP/2 client connection ended with an error");
            }
        });
        Ok(Sender(pool::SenderKind::Http2(sender, max_streams)))
    } else {
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_headers(DEFAULT_MAX_RESPONSE_HEADERS)
            .max_buf_size(DEFAULT_MAX_RESPONSE_HEAD)
            .handshake::<_, Body>(io)
            .await
            .map_err(failed)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "HTTP/1 client connection ended with an error");
            }
        });
        Ok(Sender(pool::SenderKind::Http1(sender)))
    }
}

/// Spawns hyper's HTTP/2 tasks (one per request) boxed: the future is several KiB,
/// and tokio's spawn path would otherwise copy it whole several times (measured
/// with callgrind: ~1,500 instructions per h2 request).
#[derive(Clone, Copy, Debug)]
struct BoxingExecutor;

impl<F> hyper::rt::Executor<F> for BoxingExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(Box::pin(fut));
    }
}
