//! Middleware: `async fn(Request, Next) -> Result<Response>`, aiohttp's
//! `@web.middleware`. Middleware run in onion order: the first registered is the
//! outermost, sees the request first and the response last. They run after routing,
//! so [`Request::match_info`] is filled in, and also for 404 and 405 answers.
//!
//! ```
//! use aiox_web::{Application, Next, Request, Response, Result};
//!
//! async fn server_header(req: Request, next: Next) -> Result<Response> {
//!     let mut res = next.run(req).await;
//!     res.headers_mut().insert("server", http::HeaderValue::from_static("aiox"));
//!     Ok(res)
//! }
//!
//! let app = Application::new().middleware(server_header);
//! ```

use std::future::Future;
use std::sync::Arc;

use http::HeaderValue;
use http::header::ALLOW;

use crate::error::HttpError;
use crate::handler::{BoxFuture, DynHandler};
use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// A middleware; implemented for every `async fn(Request, Next) -> impl IntoResponse`
/// (usually `Result<Response>`).
pub trait Middleware: Send + Sync + 'static {
    /// Handles `req`, usually by calling `next.run(req)` and adjusting the response.
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response>;
}

impl<F, Fut, R> Middleware for F
where
    F: Fn(Request, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    fn call(&self, req: Request, next: Next) -> BoxFuture<Response> {
        let fut = self(req, next);
        Box::pin(async move { fut.await.into_response() })
    }
}

pub(crate) type DynMiddleware = Arc<dyn Middleware>;

/// What the route resolved to.
#[derive(Clone)]
pub(crate) enum Endpoint {
    Handler(DynHandler),
    NotFound,
    MethodNotAllowed(HeaderValue),
    Options(HeaderValue),
    BadPath,
}

impl Endpoint {
    pub(crate) fn call(&self, req: Request) -> BoxFuture<Response> {
        let response = match self {
            Endpoint::Handler(handler) => return handler.call(req),
            Endpoint::NotFound => HttpError::not_found().into_response(),
            Endpoint::MethodNotAllowed(allow) => HttpError::method_not_allowed()
                .with_header(ALLOW, allow.clone())
                .into_response(),
            Endpoint::Options(allow) => Response::status_only(http::StatusCode::NO_CONTENT)
                .with_header(ALLOW, allow.clone()),
            Endpoint::BadPath => HttpError::bad_request()
                .with_message("400 Bad Request: invalid percent-encoding in the path")
                .into_response(),
        };
        Box::pin(std::future::ready(response))
    }
}

/// The rest of the chain after a middleware: the inner middleware and the handler.
pub struct Next {
    chain: Arc<[DynMiddleware]>,
    pos: usize,
    endpoint: Endpoint,
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("remaining", &(self.chain.len() - self.pos))
            .finish()
    }
}

impl Next {
    pub(crate) fn new(chain: Arc<[DynMiddleware]>, endpoint: Endpoint) -> Self {
        Self {
            chain,
            pos: 0,
            endpoint,
        }
    }

    /// Runs the rest of the chain for `req` and returns its response (errors have
    /// already become responses with their status).
    pub fn run(mut self, req: Request) -> BoxFuture<Response> {
        match self.chain.get(self.pos).cloned() {
            Some(mw) => {
                self.pos += 1;
                // The middleware function runs here, outside any future: a panic in it
                // is re-raised when the future is polled, where the server answers it
                // with a 500 like a panic in a handler.
                let call =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mw.call(req, self)));
                match call {
                    Ok(fut) => fut,
                    Err(payload) => Box::pin(async move { std::panic::resume_unwind(payload) }),
                }
            }
            None => self.endpoint.call(req),
        }
    }
}
