//! [`Application`]: routes, middleware, state, hooks and limits; and the service that
//! dispatches requests to them.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use aiox_core::Body;
use aiox_core::server::{ConnectionInfo, HttpService};
use http::Method;

use crate::error::{Error, ErrorKind};
use crate::handler::{BoxFuture, DynHandler, Handler};
use crate::hooks::Hooks;
use crate::middleware::{DynMiddleware, Endpoint, Middleware, Next};
use crate::recycle::HandlerFuture;
use crate::request::{MatchInfo, Request};
use crate::response::Response;
use crate::router::{
    MethodRouter, PathTree, Resolved, Route, param_names, param_value, routing_path,
};

/// Largest request body the buffered readers accept: 1 MiB, answered with 413 past it.
/// Source: aiohttp's `client_max_size`; nginx's `client_max_body_size` 1m.
pub const DEFAULT_CLIENT_MAX_SIZE: u64 = 1024 * 1024;

/// A web application: aiohttp's `web.Application`.
///
/// ```
/// use aiox_web::{Application, Json, Path, Request, Result, State, router::get};
///
/// #[derive(Clone)]
/// struct Greeting(&'static str);
///
/// async fn hello(req: Request) -> String {
///     format!("Hello, {}!", req.match_info().get("name").unwrap_or("World"))
/// }
///
/// async fn item(Path(id): Path<u32>, State(g): State<Greeting>) -> Result<Json<serde_json::Value>> {
///     Ok(Json(serde_json::json!({ "id": id, "greeting": g.0 })))
/// }
///
/// let app = Application::new()
///     .state(Greeting("hi"))
///     .get("/", hello)
///     .get("/hello/{name}", hello)
///     .route("/items/{id:\\d+}", get(item));
/// ```
pub struct Application {
    router: PathTree<Route>,
    middlewares: Vec<DynMiddleware>,
    state: http::Extensions,
    hooks: Hooks,
    client_max_size: u64,
    errors: Vec<String>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("routes", &self.router.len())
            .field("middlewares", &self.middlewares.len())
            .field("client_max_size", &self.client_max_size)
            .finish_non_exhaustive()
    }
}

impl Default for Application {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! method_shortcuts {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $name<H: Handler<Args>, Args: 'static>(self, path: &str, handler: H) -> Self {
                self.route(path, crate::router::$name(handler))
            }
        )*
    };
}

impl Application {
    /// An application with no routes.
    pub fn new() -> Self {
        Self {
            router: PathTree::new(),
            middlewares: Vec::new(),
            state: http::Extensions::new(),
            hooks: Hooks::default(),
            client_max_size: DEFAULT_CLIENT_MAX_SIZE,
            errors: Vec::new(),
        }
    }

    /// Routes `path` to the handlers in `methods`; routing the same path again adds
    /// methods to it. An invalid pattern is reported when the app is started.
    #[must_use]
    pub fn route(mut self, path: &str, methods: MethodRouter) -> Self {
        if let Some(route) = self.router.get_mut(path) {
            route.methods.merge(methods);
            return self;
        }
        let route = Route {
            pattern: Arc::from(path),
            names: param_names(path),
            methods,
        };
        if let Err(err) = self.router.insert(path, route) {
            self.errors.push(err.to_string());
        }
        self
    }

    method_shortcuts! {
        /// Routes `GET` (and `HEAD`) on `path` to `handler`: aiohttp's `router.add_get`.
        get;
        /// Routes `POST` on `path` to `handler`.
        post;
        /// Routes `PUT` on `path` to `handler`.
        put;
        /// Routes `PATCH` on `path` to `handler`.
        patch;
        /// Routes `DELETE` on `path` to `handler`.
        delete;
        /// Routes every method on `path` to `handler`.
        any;
    }

    /// Adds a middleware; the first added is the outermost (see [`crate::middleware`]).
    #[must_use]
    pub fn middleware<M: Middleware>(mut self, middleware: M) -> Self {
        self.middlewares.push(Arc::new(middleware));
        self
    }

    /// Stores application state of type `T` (one value per type), read by handlers with
    /// [`State<T>`](crate::State) or [`Request::state`]: aiohttp's `app[key] = value`.
    #[must_use]
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Sets the largest body the buffered readers accept (default
    /// [`DEFAULT_CLIENT_MAX_SIZE`]); larger bodies are answered with 413.
    #[must_use]
    pub fn client_max_size(mut self, bytes: u64) -> Self {
        self.client_max_size = bytes;
        self
    }

    /// Runs `hook` at startup, after the cleanup contexts were entered (aiohttp's
    /// order). A failing hook stops the startup; the app is then cleaned up.
    #[must_use]
    pub fn on_startup<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(crate::AppContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), crate::BoxError>> + Send + 'static,
    {
        self.hooks.on_startup.push(crate::hooks::boxed(hook));
        self
    }

    /// Runs `hook` when shutting down, after accepting stopped and before open
    /// connections are drained. Every hook runs; failures are logged and reported.
    #[must_use]
    pub fn on_shutdown<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(crate::AppContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), crate::BoxError>> + Send + 'static,
    {
        self.hooks.on_shutdown.push(crate::hooks::boxed(hook));
        self
    }

    /// Runs `hook` at cleanup, after the connections closed and after the cleanup
    /// contexts were exited. Every hook runs even if one fails.
    #[must_use]
    pub fn on_cleanup<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(crate::AppContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), crate::BoxError>> + Send + 'static,
    {
        self.hooks.on_cleanup.push(crate::hooks::boxed(hook));
        self
    }

    /// Adds a cleanup context (aiohttp's `cleanup_ctx`): `setup` runs at startup and
    /// returns the future that tears it down at cleanup. Contexts are entered in order
    /// before the `on_startup` hooks and exited in reverse order; only contexts whose
    /// setup succeeded are exited.
    ///
    /// ```
    /// use aiox_web::Application;
    /// let app = Application::new().cleanup_ctx(|ctx| async move {
    ///     ctx.insert_state(std::sync::Arc::new("db pool".to_string()));
    ///     Ok(async move {
    ///         // close the pool
    ///         Ok(())
    ///     })
    /// });
    /// ```
    #[must_use]
    pub fn cleanup_ctx<F, Fut, T>(mut self, setup: F) -> Self
    where
        F: Fn(crate::AppContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, crate::BoxError>> + Send + 'static,
        T: Future<Output = Result<(), crate::BoxError>> + Send + 'static,
    {
        self.hooks.cleanup_ctx.push(crate::hooks::boxed_ctx(setup));
        self
    }

    /// Checks the routes and freezes the application into a service.
    pub fn build(self) -> Result<AppService, Error> {
        if !self.errors.is_empty() {
            return Err(Error::new(
                ErrorKind::Route,
                format!("invalid routes: {}", self.errors.join("; ")),
                None,
            ));
        }
        Ok(AppService {
            shared: Arc::new(AppShared {
                router: self.router,
                middlewares: self.middlewares.into(),
                state: OnceLock::new(),
                pending_state: Mutex::new(Some(self.state)),
                client_max_size: self.client_max_size,
                hooks: Mutex::new(self.hooks),
            }),
        })
    }
}

/// What requests share: the frozen application.
pub(crate) struct AppShared {
    router: PathTree<Route>,
    middlewares: Arc<[DynMiddleware]>,
    state: OnceLock<http::Extensions>,
    pending_state: Mutex<Option<http::Extensions>>,
    pub(crate) client_max_size: u64,
    pub(crate) hooks: Mutex<Hooks>,
}

impl AppShared {
    /// The state; the first call freezes it (startup hooks may add state until then).
    pub(crate) fn state(&self) -> &http::Extensions {
        self.state.get_or_init(|| {
            self.pending_state
                .lock()
                .map(|mut s| s.take().unwrap_or_default())
                .unwrap_or_default()
        })
    }

    /// Adds state before the freeze; false (and the value dropped) after it.
    pub(crate) fn insert_state<T: Clone + Send + Sync + 'static>(&self, value: T) -> bool {
        if self.state.get().is_some() {
            return false;
        }
        match self.pending_state.lock() {
            Ok(mut pending) => match pending.as_mut() {
                Some(ext) => {
                    ext.insert(value);
                    true
                }
                None => false,
            },
            Err(_) => false,
        }
    }

    /// A clone of the state of type `T`, before or after the freeze.
    pub(crate) fn get_state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        if let Some(state) = self.state.get() {
            return state.get::<T>().cloned();
        }
        let pending = self.pending_state.lock().ok()?;
        pending.as_ref()?.get::<T>().cloned()
    }
}

/// A built [`Application`], ready to serve: implements aiox-core's
/// [`HttpService`]. Cloning is cheap.
#[derive(Clone)]
pub struct AppService {
    pub(crate) shared: Arc<AppShared>,
}

impl std::fmt::Debug for AppService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppService").finish_non_exhaustive()
    }
}

impl AppService {
    /// Handles one request (what the server calls; also usable directly in tests).
    pub fn handle(&self, req: http::Request<Body>, conn: &Arc<ConnectionInfo>) -> AppFuture {
        let (head, body) = req.into_parts();
        self.handle_parts(head, body, conn)
    }

    fn handle_parts(
        &self,
        head: http::request::Parts,
        body: Body,
        conn: &Arc<ConnectionInfo>,
    ) -> AppFuture {
        let log = AccessLog::start(&head, conn);
        let strip_body = head.method == Method::HEAD && head.version == http::Version::HTTP_2;
        let shared = &self.shared;
        let no_middleware = shared.middlewares.is_empty();
        let (target, match_info) = self.route(&head);
        // Built where it is passed, so the request is not copied once more.
        let request = move || Request::new(head, body, conn.clone(), shared.clone(), match_info);
        let endpoint = match target {
            // The common case: call the handler, its future yields the response.
            Target::Handler(handler) if no_middleware && log.is_none() && !strip_body => {
                return AppFuture {
                    kind: AppKind::Direct(handler.call_http(request())),
                };
            }
            Target::Handler(handler) if no_middleware => {
                return AppFuture::full(handler.call(request()), log, strip_body);
            }
            Target::Handler(handler) => Endpoint::Handler(handler.clone()),
            Target::Endpoint(endpoint) => endpoint,
        };
        let fut = if no_middleware {
            endpoint.call(request())
        } else {
            Next::new(shared.middlewares.clone(), endpoint).run(request())
        };
        AppFuture::full(fut, log, strip_body)
    }

    /// Finds what answers `head`: a route's handler (with the route's match info) or
    /// an automatic answer.
    fn route(&self, head: &http::request::Parts) -> (Target<'_>, MatchInfo) {
        let mut match_info = MatchInfo::default();
        let target = match routing_path(head.uri.path()) {
            None => Target::Endpoint(Endpoint::BadPath),
            Some(path) => match self.shared.router.find(&path) {
                None => Target::Endpoint(Endpoint::NotFound),
                Some(found) => {
                    let route = found.value;
                    if !route.names.is_empty() {
                        let mut params = Vec::with_capacity(route.names.len());
                        for (name, raw) in found.params.iter() {
                            let name = route
                                .names
                                .iter()
                                .find(|n| &***n == name)
                                .cloned()
                                .unwrap_or_else(|| Arc::from(name));
                            params.push((name, param_value(raw)));
                        }
                        match_info.params = params;
                    }
                    match_info.route = Some(route.pattern.clone());
                    match route.methods.resolve(&head.method) {
                        Resolved::Handler(handler) => Target::Handler(handler),
                        Resolved::Options(allow) => Target::Endpoint(Endpoint::Options(allow)),
                        Resolved::NotAllowed(allow) => {
                            Target::Endpoint(Endpoint::MethodNotAllowed(allow))
                        }
                    }
                }
            },
        };
        (target, match_info)
    }
}

/// What answers a request: a route's handler, or an automatic answer.
enum Target<'a> {
    Handler(&'a DynHandler),
    Endpoint(Endpoint),
}

impl HttpService for AppService {
    type Future = AppFuture;

    fn call(
        &self,
        head: http::request::Parts,
        body: Body,
        conn: &Arc<ConnectionInfo>,
    ) -> AppFuture {
        self.handle_parts(head, body, conn)
    }
}

/// `AppService` is a `tower::Service`, so it can be served by any hyper server, wrapped
/// in tower layers, or tested with `ServiceExt::oneshot`. The connection facts come
/// from an `Arc<ConnectionInfo>` request extension if one is present.
impl<B> tower_service::Service<http::Request<B>> for AppService
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<aiox_core::BoxError>,
{
    type Response = http::Response<Body>;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::Map<
        AppFuture,
        fn(http::Response<Body>) -> Result<http::Response<Body>, std::convert::Infallible>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        use futures_util::FutureExt;
        let conn = req
            .extensions()
            .get::<Arc<ConnectionInfo>>()
            .cloned()
            .unwrap_or_default();
        self.handle(req.map(Body::wrap), &conn).map(Ok)
    }
}

/// The access-log record of a request, kept only when the access log is enabled.
struct AccessLog {
    start: Instant,
    method: Method,
    path: String,
    remote: Option<std::net::SocketAddr>,
}

/// The `tracing` target of the access log (INFO level): one event per request with
/// remote address, method, path, status, bytes and duration.
pub const ACCESS_LOG_TARGET: &str = "aiox_web::access";

impl AccessLog {
    fn start(head: &http::request::Parts, conn: &ConnectionInfo) -> Option<Box<Self>> {
        if !tracing::enabled!(target: "aiox_web::access", tracing::Level::INFO) {
            return None;
        }
        Some(Box::new(Self {
            start: Instant::now(),
            method: head.method.clone(),
            path: head
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            remote: conn.remote_addr(),
        }))
    }

    fn finish(self, res: &http::Response<Body>) {
        let bytes = http_body::Body::size_hint(res.body()).exact();
        let remote = self
            .remote
            .map_or_else(|| "-".to_owned(), |a| a.ip().to_string());
        tracing::info!(
            target: "aiox_web::access",
            remote = %remote,
            method = %self.method,
            path = %self.path,
            status = res.status().as_u16(),
            bytes = bytes,
            duration_us = self.start.elapsed().as_micros() as u64,
            "request"
        );
    }
}

/// The future of one response from an [`AppService`].
pub struct AppFuture {
    kind: AppKind,
}

enum AppKind {
    /// A route's handler alone: its future yields what the server sends, so polling
    /// it copies the response once less.
    Direct(HandlerFuture<http::Response<Body>>),
    /// Middleware, automatic answers (404, 405, OPTIONS), the access log or an
    /// HTTP/2 `HEAD`.
    Full {
        fut: BoxFuture<Response>,
        log: Option<Box<AccessLog>>,
        /// An HTTP/2 `HEAD`: send the head only (see the `strip_body` function).
        strip_body: bool,
    },
}

/// Drops the body of a response to an HTTP/2 `HEAD` request, keeping the
/// `Content-Length` a `GET` would have had. hyper's HTTP/1 server does this itself,
/// its HTTP/2 server does not: it would send DATA frames, which clients reject with a
/// stream reset (RFC 9110 section 9.3.2).
fn strip_body(res: &mut http::Response<Body>) {
    let body = res.body();
    if !http_body::Body::is_end_stream(body) {
        if let Some(len) = http_body::Body::size_hint(body).exact() {
            res.headers_mut()
                .entry(http::header::CONTENT_LENGTH)
                .or_insert_with(|| http::HeaderValue::from(len));
        }
    }
    *res.body_mut() = Body::empty();
}

impl std::fmt::Debug for AppFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppFuture").finish_non_exhaustive()
    }
}

impl Future for AppFuture {
    type Output = http::Response<Body>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().kind {
            AppKind::Direct(fut) => Pin::new(fut).poll(cx),
            AppKind::Full {
                fut,
                log,
                strip_body: strip,
            } => match fut.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(res) => {
                    let mut res = res.into_inner();
                    if *strip {
                        strip_body(&mut res);
                    }
                    if let Some(log) = log.take() {
                        log.finish(&res);
                    }
                    Poll::Ready(res)
                }
            },
        }
    }
}

impl AppFuture {
    fn full(fut: BoxFuture<Response>, log: Option<Box<AccessLog>>, strip_body: bool) -> Self {
        Self {
            kind: AppKind::Full {
                fut,
                log,
                strip_body,
            },
        }
    }
}
