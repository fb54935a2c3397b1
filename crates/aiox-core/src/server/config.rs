//! [`ServerConfig`]: every limit and timeout of the server, with its source.

use std::time::Duration;

/// Longest request line (method, target, version) accepted: 8 KiB, answered with 414 past
/// it. Source: nginx `large_client_header_buffers` (8k); aiohttp's `max_line_size` 8190.
pub const DEFAULT_MAX_REQUEST_LINE: usize = 8 * 1024;
/// Longest single header line accepted: 8 KiB, answered with 431 past it.
/// Source: nginx; aiohttp's `max_field_size` 8190.
pub const DEFAULT_MAX_HEADER_LINE: usize = 8 * 1024;
/// Most header fields in one request: 100, answered with 431 past it.
/// Source: hyper's `DEFAULT_MAX_HEADERS`; actix 96; aiohttp 128.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Largest whole request head: 32 KiB, answered with 431 past it.
/// Source: nginx (1k + 4 x 8k); tighter than hyper's ~408 KiB buffer.
pub const DEFAULT_MAX_HEAD_SIZE: usize = 32 * 1024;
/// Time allowed for a request head: 30 s from accept for the first request, and from
/// the first byte of each later one; the connection is closed without a response past it.
/// Source: hyper's `header_read_timeout` 30 s; nginx `client_header_timeout` 60 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle keep-alive connection is kept: 75 s (HTTP/1.1 close; HTTP/2 GOAWAY).
/// Source: nginx `keepalive_timeout`; aiohttp's keepalive_timeout 75 s, longer than a
/// reverse proxy's 60 s upstream idle so requests never race a close.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(75);
/// Longest wait for the next chunk of a request body: 60 s, then the read fails with a
/// timeout (408 from aiox-web). Source: nginx `client_body_timeout` 60 s.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a write may wait on a peer that does not read: 60 s, then the connection is
/// aborted. Source: nginx `send_timeout` 60 s.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most request-body bytes discarded after an early response: 64 KiB. A handler that
/// answers without reading the body (a redirect, a 401, a 413) leaves the client
/// still sending; the server sends the response, stops writing, and reads and drops
/// what follows before closing, so the client's writes do not meet a reset that can
/// destroy the response it has not read yet. Past this many bytes it closes.
/// Source: HARDENING case 27; RUSTSEC-2020-0093; nginx `lingering_close`.
pub const DEFAULT_LINGER_MAX_BYTES: usize = 64 * 1024;
/// Longest wait for the client to finish or stop sending after an early response:
/// 5 s, then the connection is closed. Source: HARDENING case 27; nginx
/// `lingering_timeout` 5 s.
pub const DEFAULT_LINGER_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests served on one connection before it is closed (HTTP/1 `Connection: close`,
/// HTTP/2 GOAWAY): 1,000. Source: nginx `keepalive_requests`.
pub const DEFAULT_MAX_REQUESTS_PER_CONNECTION: u64 = 1000;
/// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: 128. Source: nginx 128; RFC 9113 suggests >= 100.
pub const DEFAULT_H2_MAX_CONCURRENT_STREAMS: u32 = 128;
/// HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE: 32 KiB, the same bound as the HTTP/1 head.
pub const DEFAULT_H2_MAX_HEADER_LIST_SIZE: u32 = 32 * 1024;
/// HTTP/2 streams reset by the peer before the server accepted them: 20, then GOAWAY
/// ENHANCE_YOUR_CALM (Rapid Reset, CVE-2023-44487). Source: h2, RUSTSEC-2023-0034.
pub const DEFAULT_H2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// HTTP/2 streams the server may reset because of peer errors: 1,024, then GOAWAY.
/// Source: h2/hyper, RUSTSEC-2024-0003 ("MadeYouReset", RUSTSEC-2025-0070).
pub const DEFAULT_H2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
/// HTTP/2 initial stream window: 1 MiB. Source: hyper's server default.
pub const DEFAULT_H2_STREAM_WINDOW: u32 = 1024 * 1024;
/// HTTP/2 initial connection window: 1 MiB. Source: hyper's server default.
pub const DEFAULT_H2_CONNECTION_WINDOW: u32 = 1024 * 1024;
/// HTTP/2 per-stream send buffer: 400 KiB. Source: h2/hyper default.
pub const DEFAULT_H2_MAX_SEND_BUF_SIZE: usize = 400 * 1024;
/// Time allowed for a TLS handshake: 10 s; handshakes never block accepting.
/// Source: RUSTSEC-2024-0341 (judgement for the value).
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a resource error from `accept()` (EMFILE, ENFILE, ENOMEM, ENOBUFS): 1 s.
/// Source: axum's `handle_accept_error`; RUSTSEC-2024-0376.
pub const DEFAULT_ACCEPT_ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// Grace period for in-flight requests on graceful shutdown: 10 s, then the remaining
/// connections are closed. Source: the examples' contract (aiohttp's `run_app` uses 60 s).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The limits and timeouts of a server. Every field has a `DEFAULT_*` constant
/// documenting its value and where it comes from; defaults may be tightened in minor
/// releases.
///
/// ```
/// use std::time::Duration;
/// use aiox_core::server::ServerConfig;
///
/// let config = ServerConfig::default()
///     .max_headers(64)
///     .keep_alive_timeout(Duration::from_secs(30))
///     .max_connections(Some(10_000));
/// assert_eq!(config.max_headers, 64);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// See [`DEFAULT_MAX_REQUEST_LINE`].
    pub max_request_line: usize,
    /// See [`DEFAULT_MAX_HEADER_LINE`].
    pub max_header_line: usize,
    /// See [`DEFAULT_MAX_HEADERS`].
    pub max_headers: usize,
    /// See [`DEFAULT_MAX_HEAD_SIZE`]. Values below 8 KiB are raised to 8 KiB (hyper's floor).
    pub max_head_size: usize,
    /// See [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`DEFAULT_KEEP_ALIVE_TIMEOUT`].
    pub keep_alive_timeout: Duration,
    /// See [`DEFAULT_BODY_READ_TIMEOUT`]; `None` disables it.
    pub body_read_timeout: Option<Duration>,
    /// See [`DEFAULT_WRITE_TIMEOUT`].
    pub write_timeout: Duration,
    /// See [`DEFAULT_LINGER_MAX_BYTES`]; 0 closes at once.
    pub linger_max_bytes: usize,
    /// See [`DEFAULT_LINGER_TIMEOUT`].
    pub linger_timeout: Duration,
    /// See [`DEFAULT_MAX_REQUESTS_PER_CONNECTION`].
    pub max_requests_per_connection: u64,
    /// Most connections open at once; at the limit the server stops accepting until one
    /// closes (backpressure). Off by default, as in axum's `limit_connections`.
    pub max_connections: Option<usize>,
    /// See [`DEFAULT_H2_MAX_CONCURRENT_STREAMS`].
    pub h2_max_concurrent_streams: u32,
    /// See [`DEFAULT_H2_MAX_HEADER_LIST_SIZE`].
    pub h2_max_header_list_size: u32,
    /// See [`DEFAULT_H2_MAX_PENDING_ACCEPT_RESET_STREAMS`].
    pub h2_max_pending_accept_reset_streams: usize,
    /// See [`DEFAULT_H2_MAX_LOCAL_ERROR_RESET_STREAMS`].
    pub h2_max_local_error_reset_streams: usize,
    /// See [`DEFAULT_H2_STREAM_WINDOW`].
    pub h2_stream_window: u32,
    /// See [`DEFAULT_H2_CONNECTION_WINDOW`].
    pub h2_connection_window: u32,
    /// See [`DEFAULT_H2_MAX_SEND_BUF_SIZE`].
    pub h2_max_send_buf_size: usize,
    /// See [`DEFAULT_TLS_HANDSHAKE_TIMEOUT`].
    pub tls_handshake_timeout: Duration,
    /// See [`DEFAULT_ACCEPT_ERROR_BACKOFF`].
    pub accept_error_backoff: Duration,
    /// See [`DEFAULT_SHUTDOWN_GRACE`].
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_request_line: DEFAULT_MAX_REQUEST_LINE,
            max_header_line: DEFAULT_MAX_HEADER_LINE,
            max_headers: DEFAULT_MAX_HEADERS,
            max_head_size: DEFAULT_MAX_HEAD_SIZE,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            keep_alive_timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
            body_read_timeout: Some(DEFAULT_BODY_READ_TIMEOUT),
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            linger_max_bytes: DEFAULT_LINGER_MAX_BYTES,
            linger_timeout: DEFAULT_LINGER_TIMEOUT,
            max_requests_per_connection: DEFAULT_MAX_REQUESTS_PER_CONNECTION,
            max_connections: None,
            h2_max_concurrent_streams: DEFAULT_H2_MAX_CONCURRENT_STREAMS,
            h2_max_header_list_size: DEFAULT_H2_MAX_HEADER_LIST_SIZE,
            h2_max_pending_accept_reset_streams: DEFAULT_H2_MAX_PENDING_ACCEPT_RESET_STREAMS,
            h2_max_local_error_reset_streams: DEFAULT_H2_MAX_LOCAL_ERROR_RESET_STREAMS,
            h2_stream_window: DEFAULT_H2_STREAM_WINDOW,
            h2_connection_window: DEFAULT_H2_CONNECTION_WINDOW,
            h2_max_send_buf_size: DEFAULT_H2_MAX_SEND_BUF_SIZE,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            accept_error_backoff: DEFAULT_ACCEPT_ERROR_BACKOFF,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        impl ServerConfig {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$name = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`max_request_line`](Self::max_request_line).
    max_request_line: usize;
    /// Sets [`max_header_line`](Self::max_header_line).
    max_header_line: usize;
    /// Sets [`max_headers`](Self::max_headers).
    max_headers: usize;
    /// Sets [`max_head_size`](Self::max_head_size).
    max_head_size: usize;
    /// Sets [`header_read_timeout`](Self::header_read_timeout).
    header_read_timeout: Duration;
    /// Sets [`keep_alive_timeout`](Self::keep_alive_timeout).
    keep_alive_timeout: Duration;
    /// Sets [`body_read_timeout`](Self::body_read_timeout).
    body_read_timeout: Option<Duration>;
    /// Sets [`write_timeout`](Self::write_timeout).
    write_timeout: Duration;
    /// Sets [`linger_max_bytes`](Self::linger_max_bytes).
    linger_max_bytes: usize;
    /// Sets [`linger_timeout`](Self::linger_timeout).
    linger_timeout: Duration;
    /// Sets [`max_requests_per_connection`](Self::max_requests_per_connection).
    max_requests_per_connection: u64;
    /// Sets [`max_connections`](Self::max_connections).
    max_connections: Option<usize>;
    /// Sets [`h2_max_concurrent_streams`](Self::h2_max_concurrent_streams).
    h2_max_concurrent_streams: u32;
    /// Sets [`h2_max_header_list_size`](Self::h2_max_header_list_size).
    h2_max_header_list_size: u32;
    /// Sets [`h2_max_pending_accept_reset_streams`](Self::h2_max_pending_accept_reset_streams).
    h2_max_pending_accept_reset_streams: usize;
    /// Sets [`h2_max_local_error_reset_streams`](Self::h2_max_local_error_reset_streams).
    h2_max_local_error_reset_streams: usize;
    /// Sets [`h2_stream_window`](Self::h2_stream_window).
    h2_stream_window: u32;
    /// Sets [`h2_connection_window`](Self::h2_connection_window).
    h2_connection_window: u32;
    /// Sets [`h2_max_send_buf_size`](Self::h2_max_send_buf_size).
    h2_max_send_buf_size: usize;
    /// Sets [`tls_handshake_timeout`](Self::tls_handshake_timeout).
    tls_handshake_timeout: Duration;
    /// Sets [`accept_error_backoff`](Self::accept_error_backoff).
    accept_error_backoff: Duration;
    /// Sets [`shutdown_grace`](Self::shutdown_grace).
    shutdown_grace: Duration;
}
