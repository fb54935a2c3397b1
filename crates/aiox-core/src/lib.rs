//! The HTTP engine of [aiox](https://docs.rs/aiox): the [`Body`] type, the one
//! [`Error`], TLS configuration and the hardened server connection driver that
//! aiox-web builds on.
//!
//! Most users want `aiox-web` (servers) or the `aiox` facade; this crate is for
//! serving a plain [`HttpService`](server::HttpService) with aiox's limits,
//! timeouts and graceful shutdown.
//!
//! ```no_run
//! use aiox_core::Body;
//! use aiox_core::server::{Listener, Server, ServerConfig, service_fn, shutdown_signal};
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let service = service_fn(|req, _conn| async move {
//!         let text = format!("you asked for {}", req.uri().path());
//!         http::Response::new(Body::from(text))
//!     });
//!     let server = Server::new(service, ServerConfig::default());
//!     let listener = Listener::bind_tcp("127.0.0.1:8080".parse().unwrap()).await?;
//!     println!("listening on http://{}", listener.local_addr());
//!     server.serve_until(listener, shutdown_signal()).await
//! }
//! ```
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tls` | yes | [`tls::TlsConfig`] and `Server::serve_tls` (rustls, ALPN `h2`/`http/1.1`) |
//! | `client` | no | the client engine: DNS cache, connector, connection pool (`client`) |
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod body;
#[cfg(feature = "client")]
pub mod client;
mod error;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;

pub use body::{Body, Limited};
pub use error::{BoxError, Error, ErrorKind};

pub use bytes::Bytes;
pub use http;
