//! [`Handler`]: what a route calls. Any `async fn` whose arguments are extractors
//! (the last one may read the body) and whose output is [`IntoResponse`]:
//! `async fn(Request) -> impl IntoResponse` (aiohttp's shape), `async fn() -> &'static str`,
//! `async fn(Path<u32>, State<Db>, Json<Item>) -> Result<Json<Item>>`, ...

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use aiox_core::Body;

use crate::extract::{FromRequest, FromRequestParts};
use crate::recycle::HandlerFuture;
use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// A boxed `Send` future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A request handler; implemented for async functions and closures of up to eight
/// extractor arguments. `Args` is the tuple of argument types (inferred).
pub trait Handler<Args>: Clone + Send + Sync + 'static {
    /// Calls the handler for `req`.
    ///
    /// A panic while the returned future runs becomes a `500` (and closes the
    /// connection); the implementations here run all user code inside the future.
    /// A custom implementation should do the same: a panic in `call` itself is not
    /// answered (see `aiox_core::server::HttpService`).
    fn call(&self, req: Request) -> BoxFuture<Response>;

    /// [`call`](Self::call) with the response as the `http` type the server sends:
    /// what a route without middleware runs. The handlers of this crate override it
    /// to convert inside their own future; the default wraps `call`.
    #[doc(hidden)]
    fn call_http(&self, req: Request) -> HandlerFuture<http::Response<Body>> {
        let fut = self.call(req);
        HandlerFuture::new(async move { fut.await.into_inner() })
    }
}

impl<F, Fut, R> Handler<()> for F
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    fn call(&self, _req: Request) -> BoxFuture<Response> {
        // The function runs inside the future, so a panic in it is answered with a 500.
        let f = self.clone();
        Box::pin(async move { respond(f().await) })
    }

    fn call_http(&self, _req: Request) -> HandlerFuture<http::Response<Body>> {
        let f = self.clone();
        HandlerFuture::new(async move { respond_http(f().await) })
    }
}

/// A handler's answer as the crate's response.
fn respond<R: IntoResponse>(r: R) -> Response {
    r.into_response()
}

/// A handler's answer as the response the server sends.
fn respond_http<R: IntoResponse>(r: R) -> http::Response<Body> {
    r.into_response().into_inner()
}

/// The future of a handler with extractor arguments, answering through `$finish`.
macro_rules! handler_future {
    ($wrap:path, $f:ident, $req:ident, $finish:ident; $($part:ident),*; $last:ident) => {
        $wrap(async move {
            #[allow(unused_mut)]
            let mut req = $req;
            $(
                let $part = match $part::from_request_parts(&mut req).await {
                    Ok(value) => value,
                    Err(rejection) => return $finish(rejection),
                };
            )*
            let $last = match $last::from_request(req).await {
                Ok(value) => value,
                Err(rejection) => return $finish(rejection),
            };
            $finish($f($($part,)* $last).await)
        })
    };
}

macro_rules! impl_handler {
    ($($part:ident),*; $last:ident) => {
        #[allow(non_snake_case)]
        impl<F, Fut, R, $($part,)* $last> Handler<($($part,)* $last,)> for F
        where
            F: Fn($($part,)* $last) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoResponse,
            $($part: FromRequestParts + Send + 'static,)*
            $last: FromRequest + Send + 'static,
        {
            fn call(&self, req: Request) -> BoxFuture<Response> {
                let f = self.clone();
                handler_future!(Box::pin, f, req, respond; $($part),*; $last)
            }

            fn call_http(&self, req: Request) -> HandlerFuture<http::Response<Body>> {
                let f = self.clone();
                handler_future!(HandlerFuture::new, f, req, respond_http; $($part),*; $last)
            }
        }
    };
}

impl_handler!(; T1);
impl_handler!(T1; T2);
impl_handler!(T1, T2; T3);
impl_handler!(T1, T2, T3; T4);
impl_handler!(T1, T2, T3, T4; T5);
impl_handler!(T1, T2, T3, T4, T5; T6);
impl_handler!(T1, T2, T3, T4, T5, T6; T7);
impl_handler!(T1, T2, T3, T4, T5, T6, T7; T8);

/// A handler with its argument types erased, as stored in the router.
pub(crate) trait ErasedHandler: Send + Sync + 'static {
    fn call(&self, req: Request) -> BoxFuture<Response>;
    fn call_http(&self, req: Request) -> HandlerFuture<http::Response<Body>>;
}

struct Erased<H, Args> {
    handler: H,
    _args: PhantomData<fn() -> Args>,
}

impl<H, Args> ErasedHandler for Erased<H, Args>
where
    H: Handler<Args>,
    Args: 'static,
{
    fn call(&self, req: Request) -> BoxFuture<Response> {
        self.handler.call(req)
    }

    fn call_http(&self, req: Request) -> HandlerFuture<http::Response<Body>> {
        self.handler.call_http(req)
    }
}

pub(crate) type DynHandler = Arc<dyn ErasedHandler>;

pub(crate) fn erase<H, Args>(handler: H) -> DynHandler
where
    H: Handler<Args>,
    Args: 'static,
{
    Arc::new(Erased {
        handler,
        _args: PhantomData,
    })
}
