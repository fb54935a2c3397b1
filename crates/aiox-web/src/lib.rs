//! aiox-web: an [aiohttp](https://docs.aiohttp.org/)-style web framework for Rust,
//! on tokio and hyper, with HTTP/2, typed extractors and hardened defaults.
//!
//! ```no_run
//! use aiox_web::{Application, Json, Path, Request, Result, run_app};
//!
//! async fn hello(req: Request) -> String {
//!     let name = req.match_info().get("name").unwrap_or("World");
//!     format!("Hello, {name}!")
//! }
//!
//! async fn user(Path(id): Path<u64>) -> Result<Json<serde_json::Value>> {
//!     Ok(Json(serde_json::json!({ "id": id })))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), aiox_web::Error> {
//!     let app = Application::new()
//!         .get("/", hello)
//!         .get("/hello/{name}", hello)
//!         .get("/users/{id:\\d+}", user);
//!     run_app(app, "127.0.0.1:8080").await
//! }
//! ```
//!
//! | aiohttp | aiox-web |
//! |---|---|
//! | `web.Application()` | [`Application::new`] |
//! | `app.router.add_get(path, h)` | [`Application::get`], [`Application::route`] with [`router::get`] |
//! | `request.match_info`, `.query`, `.json()` | [`Request::match_info`], [`Request::query`], [`Request::json`], extractors |
//! | `web.Response(text=...)`, `json_response` | [`Response::text`], [`Response::json`], [`Json`] |
//! | `raise web.HTTPNotFound()` | `Err(HttpError::not_found())` |
//! | `@web.middleware` | [`Application::middleware`] with `async fn(Request, Next) -> Result<Response>` |
//! | `app[key]`, `on_startup`, `cleanup_ctx` | [`Application::state`], [`Application::on_startup`], [`Application::cleanup_ctx`] |
//! | `web.run_app`, `AppRunner` + sites | [`run_app`], [`Runner`] + [`Site`] |
//! | `aiohttp_client` | [`test::TestClient`] |
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tls` | yes | [`Site::Tls`]: HTTPS through rustls with ALPN `h2`/`http/1.1` |
#![deny(missing_docs)]

mod app;
pub mod cookie;
mod error;
pub mod extract;
mod handler;
mod hooks;
pub mod middleware;
mod query;
mod recycle;
mod request;
mod response;
pub mod router;
mod run;
mod spare;
pub mod test;

pub use app::{ACCESS_LOG_TARGET, AppFuture, AppService, Application, DEFAULT_CLIENT_MAX_SIZE};
pub use error::{BoxError, Error, ErrorKind, HttpError, Result};
pub use extract::{Form, FromRequest, FromRequestParts, Json, Path, Query, State};
pub use handler::{BoxFuture, Handler};
pub use hooks::AppContext;
pub use middleware::{Middleware, Next};
pub use query::QueryMap;
#[doc(hidden)]
pub use recycle::HandlerFuture;
pub use request::{MatchInfo, Request};
pub use response::{Html, IntoResponse, Response};
pub use run::{RUN_APP_SHUTDOWN_GRACE, Runner, Site, run_app};

pub use aiox_core::server::{ConnectionInfo, ListenAddr, ServerConfig, shutdown_signal};
#[cfg(feature = "tls")]
pub use aiox_core::tls::TlsConfig;
pub use aiox_core::{Body, Bytes};
pub use http::{self, HeaderMap, HeaderValue, Method, StatusCode};
