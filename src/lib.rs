//! # aiox: aiohttp for Rust
//!
//! One toolkit for asynchronous HTTP on tokio, shaped after Python's
//! [aiohttp](https://docs.aiohttp.org/): a web server framework and a pooled client
//! today, with WebSockets and multipart on the way. HTTP/1.1 and HTTP/2 on both
//! sides, typed extractors, hardened defaults.
//!
//! ```no_run
//! use aiox::web::{Application, Request, run_app};
//!
//! async fn hello(req: Request) -> String {
//!     format!("Hello, {}!", req.match_info().get("name").unwrap_or("World"))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), aiox::web::Error> {
//!     let app = Application::new().get("/", hello).get("/{name}", hello);
//!     run_app(app, "127.0.0.1:8080").await
//! }
//! ```
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `web` | yes | [`web`]: the server framework (aiox-web) |
//! | `client` | yes | [`client`]: the HTTP client (aiox-client) |
//! | `tls` | yes | HTTPS sites and `https://` requests through rustls with ALPN `h2`/`http/1.1` |
//! | `compression` | yes | transparent gzip, deflate, br and zstd decoding of client responses |
//! | `hickory` | no | the client may resolve names with hickory-resolver instead of `getaddrinfo` (`ClientSessionBuilder::hickory_dns`) |
//!
//! The `ws` and `multipart` features arrive with their crates.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

/// The HTTP engine: bodies, errors, TLS and the server connection driver (aiox-core).
pub use aiox_core as core;

/// The web server framework (aiox-web): `Application`, routing, middleware,
/// extractors, `run_app` and the `TestClient`.
#[cfg(feature = "web")]
pub use aiox_web as web;

/// The HTTP client (aiox-client): `ClientSession`, requests and responses, cookies,
/// redirects, retries, proxies, middleware and tracing hooks.
#[cfg(feature = "client")]
pub use aiox_client as client;

/// The README's examples, compiled as doc tests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
