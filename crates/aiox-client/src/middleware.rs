//! Client middleware, aiohttp 3.12's `middlewares=`: `async fn(Request, Next) ->
//! Result<Response>` around every request hop (each redirect is a hop), in the order
//! added, the first one outermost.

use std::future::Future;
use std::pin::Pin;

use crate::error::Result;
use crate::request::Request;
use crate::response::Response;
use crate::session::{ClientSession, HopContext};

/// The future a middleware returns.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A client middleware. Any `Fn(Request, Next) -> impl Future<Output =
/// Result<Response>>` is one:
///
/// ```
/// use aiox_client::{ClientSession, Next, Request};
///
/// # fn build() -> aiox_client::Result<ClientSession> {
/// let session = ClientSession::builder()
///     .middleware(|mut req: Request, next: Next| async move {
///         req.headers_mut().insert("x-request-id", "42".parse().unwrap());
///         let response = next.run(req).await?;
///         tracing::info!(status = %response.status(), "done");
///         Ok(response)
///     })
///     .build()?;
/// # Ok(session) }
/// ```
pub trait Middleware: Send + Sync + 'static {
    /// Handles `request`, normally by calling [`Next::run`] (once, or more to retry).
    fn call(&self, request: Request, next: Next) -> BoxFuture<Result<Response>>;
}

impl<F, Fut> Middleware for F
where
    F: Fn(Request, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response>> + Send + 'static,
{
    fn call(&self, request: Request, next: Next) -> BoxFuture<Result<Response>> {
        Box::pin(self(request, next))
    }
}

/// The rest of the chain: the next middleware, or the connection itself.
pub struct Next {
    pub(crate) session: ClientSession,
    pub(crate) index: usize,
    pub(crate) hop: HopContext,
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next").field("index", &self.index).finish()
    }
}

impl Next {
    /// Sends `request` through the rest of the chain. May be called again with a new
    /// request from the same middleware (to retry, or to answer an auth challenge).
    pub async fn run(&self, request: Request) -> Result<Response> {
        let middleware = self.session.inner.middleware.get(self.index).cloned();
        match middleware {
            Some(middleware) => {
                let next = Next {
                    session: self.session.clone(),
                    index: self.index + 1,
                    hop: self.hop,
                };
                middleware.call(request, next).await
            }
            None => Box::pin(self.session.send_hop(request, &self.hop)).await,
        }
    }
}
