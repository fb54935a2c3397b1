//! aiox-client: aiohttp's `ClientSession` for Rust.
//!
//! A [`ClientSession`] owns a connection pool (aiohttp's `TCPConnector`: 100
//! connections, unlimited per host, 15 s keep-alive, a 10 s DNS cache, happy
//! eyeballs), a cookie jar, default headers and timeouts. Requests speak HTTP/1.1 or
//! HTTP/2 (ALPN over TLS, or prior knowledge), follow redirects, decode gzip,
//! deflate, br and zstd with decompression-bomb limits, go through proxies, and can
//! be retried, wrapped in middleware and traced.
//!
//! ```no_run
//! use aiox_client::{ClientSession, ClientTimeout};
//! use std::time::Duration;
//!
//! #[derive(serde::Deserialize)]
//! struct Ip {
//!     origin: String,
//! }
//!
//! # async fn demo() -> aiox_client::Result<()> {
//! let session = ClientSession::builder()
//!     .base_url("https://httpbin.org")
//!     .timeout(ClientTimeout::default().total(Duration::from_secs(10)))
//!     .build()?;
//!
//! let ip: Ip = session.get("/ip").send().await?.error_for_status()?.json().await?;
//! println!("my address: {}", ip.origin);
//!
//! let resp = session
//!     .post("/post")
//!     .query(&[("page", "1")])
//!     .json(&serde_json::json!({"name": "aiox"}))
//!     .send()
//!     .await?;
//! println!("{} {}", resp.status(), resp.text().await?);
//! # Ok(()) }
//! ```
//!
//! | aiohttp | aiox-client |
//! | --- | --- |
//! | `ClientSession(base_url, headers, cookie_jar, timeout, auth, raise_for_status, trust_env)` | [`ClientSession::builder`] |
//! | `TCPConnector(limit, limit_per_host, ttl_dns_cache, keepalive_timeout, force_close)` | the same knobs on the builder |
//! | `ClientTimeout(total, connect, sock_connect, sock_read)` | [`ClientTimeout`] (plus `pool_wait`) |
//! | `session.get(url, params=, headers=, json=, data=, proxy=)` | `session.get(url).query(..).header(..).json(..).form(..).body(..).proxy(..).send()` |
//! | `resp.status / headers / cookies / history / text() / read() / json()` | [`Response::status`], [`headers`](Response::headers), [`cookies`](Response::cookies), [`history`](Response::history), [`text`](Response::text), [`bytes`](Response::bytes), [`json`](Response::json) |
//! | `resp.content.iter_chunked()` | [`Response::chunks`] |
//! | `resp.raise_for_status()` | [`Response::error_for_status`] |
//! | `TraceConfig` | [`TraceHooks`] |
//! | `middlewares=` (3.12), `DigestAuthMiddleware` | [`Middleware`], [`DigestAuth`] |
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `tls` | yes | `https://` through rustls, webpki or system roots, client certificates |
//! | `compression` | yes | transparent gzip, deflate, br and zstd decoding |
//! | `hickory` | no | `ClientSessionBuilder::hickory_dns`: DNS through hickory-resolver instead of `getaddrinfo` |

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod body;
mod cookie;
#[cfg(feature = "compression")]
mod decode;
mod digest;
mod error;
mod middleware;
mod netrc;
mod proxy;
mod request;
mod response;
mod retry;
mod send;
mod session;
#[cfg(feature = "tls")]
mod tls;
mod trace;

pub use cookie::CookieJar;
#[cfg(feature = "compression")]
pub use decode::{
    DEFAULT_DECOMPRESSION_RATIO_AFTER, DEFAULT_MAX_DECOMPRESSION_RATIO, DecompressionLimits,
};
pub use digest::DigestAuth;
pub use error::{BoxError, Error, ErrorKind, HistoryEntry, Result, TimeoutPhase};
pub use middleware::{BoxFuture, Middleware, Next};
pub use proxy::{NoProxy, Proxy};
pub use request::{HttpVersionPref, Request, RequestBody, RequestBuilder};
pub use response::{Chunks, DEFAULT_READ_LIMIT, Response};
pub use retry::{
    DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_INITIAL_BACKOFF, DEFAULT_RETRY_MAX_BACKOFF, RetryPolicy,
};
pub use session::{
    ClientSession, ClientSessionBuilder, ClientTimeout, DEFAULT_MAX_REDIRECTS,
    DEFAULT_SOCK_CONNECT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT, DEFAULT_USER_AGENT,
};
#[cfg(feature = "tls")]
pub use tls::TlsRoots;
pub use trace::{RequestInfo, TraceHooks};

pub use aiox_core::client::{HostStats, PoolStats};
pub use http::{self, HeaderMap, Method, StatusCode, Version};
pub use url::{self, Url};
