//! How a request is sent: the total deadline, retries, the redirect loop (with
//! cookies per hop), the middleware chain, and one hop over a pooled connection
//! (checkout, connect through proxies and TLS, the HTTP exchange, the response).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aiox_core::client::{
    Checkout, ClientStream, ConnectObserver, Lease, PoolKey, QueueObserver, Sender, Target,
};
use futures_util::future::Either;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};
use tokio::time::Instant;
use url::{Position, Url};

use crate::body::{RawBody, ResponseBody};
use crate::error::{Error, ErrorKind, HistoryEntry, Result, TimeoutPhase};
use crate::middleware::Next;
use crate::proxy::Proxy;
use crate::request::{HttpVersionPref, ProxyChoice, Request, RequestBody, is_idempotent};
use crate::response::Response;
use crate::retry::RetryPolicy;
use crate::session::{ClientSession, HopContext, lock};
use crate::trace::RequestInfo;

/// Origins whose routes are cached at most; the cache is emptied when full
/// (judgement: a crawler over many hosts recomputes, one host never does).
const ROUTE_CACHE_ENTRIES: usize = 1024;

/// Bodies of redirects and retried responses up to this size are read so the
/// connection can be reused; larger ones are dropped with their connection.
const DRAIN_SMALL_BODY: u64 = 64 * 1024;

/// How a hop reaches its origin.
#[derive(Debug, Clone)]
enum RouteKind {
    Direct,
    /// `http://` through an HTTP proxy: absolute-form requests.
    Forward(Option<HeaderValue>),
    /// `https://` through an HTTP proxy: a CONNECT tunnel.
    Tunnel(Option<HeaderValue>),
    Unix,
}

/// Everything about reaching one origin that does not change between requests.
#[derive(Debug)]
pub(crate) struct Route {
    key: PoolKey,
    kind: RouteKind,
    target: Target,
    https: bool,
    host: String,
    port: u16,
    host_header: HeaderValue,
    /// For absolute-form targets (HTTP/2, forward proxies).
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    prior_knowledge: bool,
    may_h2: bool,
    pref: HttpVersionPref,
}

/// Routes of recently used origins, for requests without a per-request proxy.
#[derive(Debug, Default)]
pub(crate) struct RouteCache {
    routes: Mutex<HashMap<Box<str>, Arc<Route>, foldhash::fast::RandomState>>,
}

impl ClientSession {
    /// Runs a request to its final response under the total deadline.
    pub(crate) async fn execute(self, mut req: Request) -> Result<Response> {
        let inner = &self.inner;
        let total = req.options().timeout.or(inner.timeout.total);
        let deadline = total.map(|t| Instant::now() + t);
        if let Some(tracer) = &inner.tracer {
            tracer.each(|h| {
                h.on_request_start(&RequestInfo {
                    method: &req.method,
                    url: &req.url,
                    headers: &req.headers,
                    version: Version::HTTP_11,
                })
            });
        }
        if inner.netrc.is_some() && !req.headers.contains_key(header::AUTHORIZATION) {
            self.netrc_auth(&mut req);
        }
        let raise = req
            .options()
            .raise_for_status
            .unwrap_or(inner.raise_for_status);
        // Kept for the error of a deadline that fires mid-request.
        let first = (inner.tracer.is_some() || deadline.is_some())
            .then(|| (req.method.clone(), req.url.clone()));
        let policy = match &req.options().retry {
            Some(policy) => (**policy).clone(),
            None => self.inner.retry.clone(),
        };
        let policy = policy.filter(|p| p.allows_method(req.is_idempotent()));
        // Built straight into the timer (no wrapping async block that would hold
        // the request and the policy beside the future).
        let run = match policy {
            None => Either::Left(self.follow(req, deadline)),
            // Boxed: rare, and keeps the common future small.
            Some(policy) => Either::Right(Box::pin(self.with_retries(req, deadline, policy))),
        };
        let result = match deadline {
            Some(at) => match tokio::time::timeout_at(at, run).await {
                Ok(result) => result,
                Err(_) => {
                    let e = Error::timeout(TimeoutPhase::Total);
                    Err(match &first {
                        Some((method, url)) => e.with_request(method, url),
                        None => e,
                    })
                }
            },
            None => run.await,
        };
        let result = match result {
            Ok(resp) if raise => match resp.status_error() {
                Some(e) => Err(e),
                None => Ok(resp),
            },
            other => other,
        };
        if let (Some(tracer), Some((method, url))) = (&inner.tracer, &first) {
            match &result {
                Ok(resp) => {
                    let info = RequestInfo {
                        method: resp.method(),
                        url: resp.url(),
                        headers: &resp.inner.request.headers,
                        version: resp.version(),
                    };
                    tracer.each(|h| h.on_request_end(&info, resp));
                }
                Err(e) => {
                    let headers = HeaderMap::new();
                    let info = RequestInfo {
                        method: e.method().unwrap_or(method),
                        url: e.url().unwrap_or(url),
                        headers: &headers,
                        version: Version::HTTP_11,
                    };
                    tracer.each(|h| h.on_request_exception(&info, e));
                }
            }
        }
        result
    }

    fn netrc_auth(&self, req: &mut Request) {
        let Some(netrc) = &self.inner.netrc else {
            return;
        };
        let Some(host) = req.url.host_str() else {
            return;
        };
        if let Some((login, password)) = netrc.credentials(host) {
            if let Ok(value) = crate::request::basic_auth_value(login, password) {
                req.headers.insert(header::AUTHORIZATION, value);
            }
        }
    }

    /// The retry policy's loop around [`follow`](Self::follow).
    async fn with_retries(
        &self,
        req: Request,
        deadline: Option<Instant>,
        policy: RetryPolicy,
    ) -> Result<Response> {
        let mut req = req;
        let mut attempt = 1;
        loop {
            let again = if attempt < policy.attempts() {
                req.try_clone()
            } else {
                None
            };
            let result = self.follow(req, deadline).await;
            let Some(next) = again else {
                return result;
            };
            let wait = match &result {
                Ok(resp) if policy.retries_status(resp.status()) => {
                    policy.backoff(attempt, Some(resp.headers()))
                }
                Err(e) if policy.retries_error(e) => policy.backoff(attempt, None),
                _ => return result,
            };
            if deadline.is_some_and(|at| Instant::now() + wait >= at) {
                return result;
            }
            tracing::debug!(attempt, ?wait, "retrying the request");
            if let Ok(resp) = result {
                if has_small_body(&resp) {
                    drain(resp.inner.body).await;
                }
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
            req = next;
        }
    }

    /// Sends `req` and follows its redirects.
    pub(crate) async fn follow(&self, req: Request, deadline: Option<Instant>) -> Result<Response> {
        let hop = HopContext { deadline };
        let resp = self.hop(req, hop).await?;
        // Redirects are the rare path: their loop lives in its own boxed future, so
        // the common one stays small (every byte of it is copied as futures nest).
        if self.redirect_target(&resp).is_none() {
            return Ok(resp);
        }
        Box::pin(self.follow_redirects(resp, hop)).await
    }

    /// One hop through the middleware chain, or straight to the connection.
    pub(crate) async fn hop(&self, req: Request, hop: HopContext) -> Result<Response> {
        let resp = if self.inner.middleware.is_empty() {
            // Boxed: the hop's state stays on the heap instead of being copied into
            // every enclosing future.
            Box::pin(self.send_hop(req, &hop)).await?
        } else {
            let next = Next {
                session: self.clone(),
                index: 0,
                hop,
            };
            Box::pin(next.run(req)).await?
        };
        if resp.inner.sets_cookies {
            if let Some(jar) = &self.inner.cookie_jar {
                jar.store_response(&resp.inner.request.url, &resp.inner.headers);
            }
        }
        Ok(resp)
    }

    /// The `Location` of a redirect this request should follow.
    fn redirect_target(&self, resp: &Response) -> Option<HeaderValue> {
        let follow = resp
            .inner
            .request
            .options()
            .follow_redirects
            .unwrap_or(self.inner.follow_redirects);
        if follow && is_redirect(resp.inner.status) {
            resp.inner.headers.get(header::LOCATION).cloned()
        } else {
            None
        }
    }

    /// Follows the redirects from `resp` on.
    async fn follow_redirects(&self, first: Response, hop: HopContext) -> Result<Response> {
        let inner = &self.inner;
        let max = first
            .inner
            .request
            .options()
            .max_redirects
            .unwrap_or(inner.max_redirects);
        let mut history: Vec<HistoryEntry> = Vec::new();
        let mut loop_start = 0;
        let mut resp = first;
        loop {
            let Some(location) = self.redirect_target(&resp) else {
                resp.inner.history = history;
                return Ok(resp);
            };
            let status = resp.inner.status;
            history.push(entry(&resp));
            let fail = |e: Error, history: Vec<HistoryEntry>, resp: &Response| {
                e.with_request(&resp.inner.request.method, &resp.inner.request.url)
                    .with_history(history)
            };
            let current = &resp.inner.request.url;
            let Some(next_url) = location.to_str().ok().and_then(|l| current.join(l).ok()) else {
                let e = Error::new(
                    ErrorKind::Redirect,
                    "the redirect Location is not a valid URL",
                );
                return Err(fail(e, history, &resp));
            };
            if !matches!(next_url.scheme(), "http" | "https") {
                let e = Error::new(
                    ErrorKind::Redirect,
                    format!(
                        "not following a redirect to the non-HTTP URL scheme {:?}",
                        next_url.scheme()
                    ),
                );
                return Err(fail(e, history, &resp));
            }
            if history.len() > max {
                let e = Error::new(
                    ErrorKind::Redirect,
                    format!("too many redirects (more than {max})"),
                );
                return Err(fail(e, history, &resp));
            }
            // A URL seen before is a loop, unless cookies changed since (a login
            // round trip A -> B sets a cookie -> A is not one).
            if resp.inner.sets_cookies {
                loop_start = history.len() - 1;
            }
            let seen = history[loop_start..history.len() - 1]
                .iter()
                .any(|h| h.url == next_url);
            if seen || (next_url == *current && !resp.inner.sets_cookies) {
                let e = Error::new(ErrorKind::Redirect, "redirect loop");
                return Err(fail(e, history, &resp));
            }
            // 301/302/303: GET without a body (HEAD stays HEAD); 307/308 keep both,
            // which needs a body that can be sent again.
            let to_get =
                matches!(status.as_u16(), 301..=303) && resp.inner.request.method != Method::HEAD;
            if !to_get && !resp.inner.request.body.is_replayable() {
                let e = Error::new(
                    ErrorKind::Redirect,
                    format!(
                        "cannot follow a {status} redirect: the request body was a stream and cannot be sent again"
                    ),
                );
                return Err(fail(e, history, &resp));
            }
            if let Some(tracer) = &inner.tracer {
                let info = RequestInfo {
                    method: &resp.inner.request.method,
                    url: &resp.inner.request.url,
                    headers: &resp.inner.request.headers,
                    version: resp.inner.version,
                };
                tracer.each(|h| h.on_request_redirect(&info, &resp));
            }
            let small_body = has_small_body(&resp);
            let crate::response::ResponseInner {
                request: mut next,
                body,
                ..
            } = *resp.inner;
            if to_get {
                next.method = Method::GET;
                next.body = RequestBody::empty();
                for name in [
                    header::CONTENT_TYPE,
                    header::CONTENT_LENGTH,
                    header::CONTENT_ENCODING,
                    header::TRANSFER_ENCODING,
                ] {
                    next.headers.remove(name);
                }
            }
            let downgrade = next.url.scheme() == "https" && next_url.scheme() == "http";
            if next_url.origin() != next.url.origin() || downgrade {
                // HARDENING case 92: credentials stay with the origin they were for.
                for name in [
                    header::AUTHORIZATION,
                    header::COOKIE,
                    header::PROXY_AUTHORIZATION,
                    header::WWW_AUTHENTICATE,
                ] {
                    next.headers.remove(name);
                }
                next.options_mut().cookies.clear();
                next.options_mut().cross_origin = true;
            }
            next.url = next_url;
            if small_body {
                drain(body).await;
            }
            resp = match self.hop(next, hop).await {
                Ok(resp) => resp,
                Err(e) => return Err(e.with_history(history)),
            };
        }
    }

    /// One request over one connection (HARDENING case 95: an idempotent request
    /// whose reused connection turns out closed is sent once more on another). The
    /// request comes back inside the response, for a redirect to reuse.
    pub(crate) async fn send_hop(&self, mut req: Request, hop: &HopContext) -> Result<Response> {
        let route = match self.route(&req) {
            Ok(route) => route,
            Err(e) => return Err(e.with_request(&req.method, &req.url)),
        };
        let inner = &self.inner;
        let mut retried = false;
        loop {
            let fast = self.inner.pool.try_checkout(&route.key);
            let mut lease = match fast {
                Some(lease) => {
                    if let Some(tracer) = &inner.tracer {
                        tracer.each(|h| h.on_connection_reuseconn());
                    }
                    lease
                }
                // Boxed: queueing and connecting are the slow path.
                None => match Box::pin(self.lease(&route)).await {
                    Ok(lease) => lease,
                    Err(e) => return Err(e.with_request(&req.method, &req.url)),
                },
            };
            let h2 = lease.is_http2();
            let resend = lease.is_reused()
                && !retried
                && is_idempotent(&req.method)
                && req.body.is_replayable();
            let chunk_hook = inner.tracer.as_ref().map(|t| t.chunk_hook());
            let body = match req.body.take_for_send().into_core(chunk_hook) {
                Ok(crate::request::CoreBody::Ready(body, len)) => Ok((body, len)),
                Ok(file) => file.ready().await,
                Err(e) => Err(e),
            };
            let (body, len) = match body {
                Ok(body) => body,
                Err(e) => return Err(e.with_request(&req.method, &req.url)),
            };
            let headers = self.wire_headers(&req, &route, h2, len);
            let version = if h2 {
                Version::HTTP_2
            } else {
                Version::HTTP_11
            };
            let absolute = h2 || matches!(route.kind, RouteKind::Forward(_));
            let uri = match request_uri(&req.url, absolute, &route) {
                Ok(uri) => uri,
                Err(e) => return Err(e.with_request(&req.method, &req.url)),
            };
            // sock_read starts once the body is written (aiohttp #7149).
            let (body, written) = match inner.timeout.sock_read {
                Some(_) => {
                    let (body, written) = crate::body::signal_written(body);
                    (body, Some(written))
                }
                None => (body, None),
            };
            let mut hreq = http::Request::new(body);
            *hreq.method_mut() = req.method.clone();
            *hreq.uri_mut() = uri;
            *hreq.version_mut() = version;
            *hreq.headers_mut() = headers;
            if let Some(tracer) = &inner.tracer {
                let info = RequestInfo {
                    method: &req.method,
                    url: &req.url,
                    headers: hreq.headers(),
                    version,
                };
                tracer.each(|h| h.on_request_headers_sent(&info));
            }
            let sent = lease.send_request(hreq);
            let result = match inner.timeout.sock_read {
                Some(limit) => match Box::pin(read_timeout(limit, sent, written)).await {
                    Ok(result) => result,
                    Err(_) => {
                        return Err(Error::timeout(TimeoutPhase::SockRead)
                            .with_request(&req.method, &req.url));
                    }
                },
                None => sent.await,
            };
            match result {
                Ok(resp) => return self.response(resp, lease, req, hop),
                Err(e)
                    if resend
                        && (e.is_canceled() || e.is_incomplete_message() || e.is_closed()) =>
                {
                    tracing::debug!(error = %e, "pooled connection was closed; sending again");
                    drop(lease);
                    retried = true;
                }
                Err(e) => return Err(exchange_error(e).with_request(&req.method, &req.url)),
            }
        }
    }

    /// The head as written: the session's defaults under the request's own headers
    /// (a request header replaces the defaults of its name), then `Host`, cookies,
    /// `Content-Length` and proxy credentials.
    fn wire_headers(&self, req: &Request, route: &Route, h2: bool, len: Option<u64>) -> HeaderMap {
        let inner = &self.inner;
        let mut headers = inner.headers.clone();
        if !req.headers.is_empty() {
            crate::request::replace_headers(&mut headers, &req.headers);
        }
        for name in &req.options().skip_headers {
            if !req.headers.contains_key(name) {
                headers.remove(name);
            }
        }
        if req.options().cross_origin && !req.headers.contains_key(header::AUTHORIZATION) {
            // The session's credentials are not for the origin a redirect led to.
            headers.remove(header::AUTHORIZATION);
        }
        if !h2 && !req.headers.contains_key(header::HOST) {
            headers.insert(header::HOST, route.host_header.clone());
        }
        self.add_cookies(&mut headers, req);
        if let Some(len) = len {
            // RFC 9110 section 8.6: `Content-Length: 0` only where a body is expected.
            if len > 0 || matches!(req.method, Method::POST | Method::PUT | Method::PATCH) {
                headers
                    .entry(header::CONTENT_LENGTH)
                    .or_insert_with(|| HeaderValue::from(len));
            }
        }
        #[cfg(feature = "compression")]
        if req.headers.contains_key(header::RANGE)
            && headers.get(header::ACCEPT_ENCODING) == Some(&crate::decode::ACCEPT_ENCODING)
        {
            // Ranges of a compressed representation cannot be decoded alone.
            headers.remove(header::ACCEPT_ENCODING);
        }
        if let RouteKind::Forward(Some(auth)) = &route.kind {
            headers.insert(header::PROXY_AUTHORIZATION, auth.clone());
        }
        headers
    }

    /// Adds the jar's cookies for the URL and the request's own cookies to `Cookie`.
    fn add_cookies(&self, headers: &mut HeaderMap, req: &Request) {
        let own = &req.options().cookies;
        let jar = self
            .inner
            .cookie_jar
            .as_ref()
            .filter(|jar| !jar.is_empty())
            .and_then(|jar| jar.header_for(&req.url));
        if jar.is_none() && own.is_empty() {
            return;
        }
        let mut value = String::new();
        if let Some(existing) = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()) {
            value.push_str(existing);
        }
        if let Some(jar) = jar.as_ref().and_then(|v| v.to_str().ok()) {
            if !value.is_empty() {
                value.push_str("; ");
            }
            value.push_str(jar);
        }
        for (name, cookie) in own {
            if !value.is_empty() {
                value.push_str("; ");
            }
            value.push_str(name);
            value.push('=');
            value.push_str(cookie);
        }
        if let Ok(mut v) = HeaderValue::try_from(value) {
            v.set_sensitive(true);
            headers.insert(header::COOKIE, v);
        }
    }

    fn response(
        &self,
        resp: http::Response<hyper::body::Incoming>,
        lease: Lease,
        request: Request,
        hop: &HopContext,
    ) -> Result<Response> {
        let inner = &self.inner;
        let (parts, incoming) = resp.into_parts();
        // One pass over the head for what the client acts on.
        let mut keep_alive = true;
        let mut sets_cookies = false;
        let mut encoded = false;
        let mut head_size = 0;
        for (name, value) in &parts.headers {
            head_size += name.as_str().len() + value.len() + 4;
            if name == header::CONNECTION {
                keep_alive &= !value
                    .to_str()
                    .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
            } else if name == header::SET_COOKIE {
                sets_cookies = true;
            } else if name == header::CONTENT_ENCODING {
                encoded = true;
            }
        }
        if head_size > aiox_core::client::DEFAULT_MAX_RESPONSE_HEAD {
            // HARDENING case 94 (hyper's own limit is on its read buffer, which a
            // head somewhat over 64 KiB can still fit). The lease closes the connection.
            drop(lease);
            return Err(Error::new(
                ErrorKind::Request,
                "the response head is over its limit (64 KiB, 100 fields)",
            )
            .with_request(&request.method, &request.url));
        }
        let raw = RawBody::new(incoming, lease, keep_alive);
        let body = ResponseBody::new(
            raw,
            hop.deadline,
            inner.timeout.sock_read,
            inner.tracer.clone(),
        );
        let read_limit = request.options().read_limit.unwrap_or(inner.read_limit);
        #[allow(unused_mut)]
        let mut response = Response {
            inner: Box::new(crate::response::ResponseInner {
                status: parts.status,
                version: parts.version,
                headers: parts.headers,
                request,
                history: Vec::new(),
                extensions: parts.extensions,
                body,
                read_limit,
                decoded: false,
                sets_cookies,
            }),
        };
        #[cfg(feature = "compression")]
        if encoded
            && inner.decompress
            && response.inner.request.method != Method::HEAD
            // A 206 part of a compressed body cannot be decoded on its own.
            && !matches!(response.inner.status.as_u16(), 204 | 206 | 304)
        {
            if let Some(codings) = crate::decode::codings(&response.inner.headers) {
                let limits = inner.decompression_limits;
                response
                    .inner
                    .body
                    .map_source(|raw| crate::decode::decode(&codings, raw, limits));
                response.inner.decoded = true;
            }
        }
        #[cfg(not(feature = "compression"))]
        let _ = encoded;
        Ok(response)
    }

    /// A connection (or HTTP/2 stream) for `route`, under the connect and pool_wait
    /// timers.
    async fn lease(&self, route: &Route) -> Result<Lease> {
        let timeout = &self.inner.timeout;
        let get = async {
            let observer = self
                .inner
                .tracer
                .as_deref()
                .map(|t| t as &dyn QueueObserver);
            let checkout = self
                .inner
                .pool
                .checkout_observed(&route.key, route.may_h2, observer);
            let checkout = match timeout.pool_wait {
                Some(limit) => tokio::time::timeout(limit, checkout)
                    .await
                    .map_err(|_| Error::timeout(TimeoutPhase::PoolWait))?,
                None => checkout.await,
            };
            match checkout {
                Checkout::Reuse(lease) => {
                    if let Some(tracer) = &self.inner.tracer {
                        tracer.each(|h| h.on_connection_reuseconn());
                    }
                    Ok(lease)
                }
                Checkout::Connect(permit) => {
                    if let Some(tracer) = &self.inner.tracer {
                        tracer.each(|h| h.on_connection_create_start());
                    }
                    // Boxed: the connect future is large and rarely run.
                    let connect = Box::pin(self.connect(route));
                    let sender = match timeout.sock_connect {
                        Some(limit) => tokio::time::timeout(limit, connect)
                            .await
                            .map_err(|_| Error::timeout(TimeoutPhase::SockConnect))??,
                        None => connect.await?,
                    };
                    if let Some(tracer) = &self.inner.tracer {
                        tracer.each(|h| h.on_connection_create_end());
                    }
                    Ok(permit.establish(sender))
                }
            }
        };
        match timeout.connect {
            Some(limit) => tokio::time::timeout(limit, get)
                .await
                .map_err(|_| Error::timeout(TimeoutPhase::Connect))?,
            None => get.await,
        }
    }

    /// Opens a connection for `route`: socket, proxy tunnel, TLS, HTTP handshake.
    async fn connect(&self, route: &Route) -> Result<Sender> {
        let inner = &self.inner;
        let observer = inner.tracer.as_deref().map(|t| t as &dyn ConnectObserver);
        let via_proxy = matches!(route.kind, RouteKind::Forward(_) | RouteKind::Tunnel(_));
        let stream = inner
            .connector
            .connect(&route.target, observer)
            .await
            .map_err(|e| {
                let e = Error::from_core(e, TimeoutPhase::SockConnect);
                if via_proxy && e.kind() != ErrorKind::Timeout(TimeoutPhase::SockConnect) {
                    Error::new(ErrorKind::Proxy, "could not connect to the proxy").with_source(e)
                } else {
                    e
                }
            })?;
        let stream = match (&route.kind, stream) {
            (RouteKind::Tunnel(auth), ClientStream::Tcp(mut tcp)) => {
                crate::proxy::tunnel(
                    &mut tcp,
                    &route.host,
                    route.port,
                    auth.as_ref(),
                    inner.user_agent.as_ref(),
                )
                .await?;
                ClientStream::Tcp(tcp)
            }
            (_, stream) => stream,
        };
        let stream = if route.https {
            self.tls(route, stream).await?
        } else {
            stream
        };
        let h2 = route.prior_knowledge || stream.alpn() == Some(b"h2");
        aiox_core::client::handshake(stream, h2)
            .await
            .map_err(|e| Error::from_core(e, TimeoutPhase::SockConnect))
    }

    #[cfg(feature = "tls")]
    async fn tls(&self, route: &Route, stream: ClientStream) -> Result<ClientStream> {
        let ClientStream::Tcp(tcp) = stream else {
            return Err(Error::builder(
                "https over a Unix domain socket is not supported",
            ));
        };
        let tls = &self.inner.tls;
        let config = match route.pref {
            HttpVersionPref::Auto => tls.auto.clone(),
            HttpVersionPref::Http1Only => tls.http1.clone(),
            HttpVersionPref::Http2Only => tls.http2.clone(),
        };
        aiox_core::client::tls_connect(tcp, &route.host, config)
            .await
            .map_err(|e| Error::from_core(e, TimeoutPhase::SockConnect))
    }

    #[cfg(not(feature = "tls"))]
    async fn tls(&self, _route: &Route, _stream: ClientStream) -> Result<ClientStream> {
        Err(Error::builder("https needs aiox-client's `tls` feature"))
    }

    /// The route of `req`, from the cache when there is no per-request proxy.
    fn route(&self, req: &Request) -> Result<Arc<Route>> {
        let pref = req.options().version.unwrap_or(self.inner.version);
        match req.options().proxy.as_deref() {
            Some(ProxyChoice::Direct) => {
                return self.make_route(&req.url, pref, None).map(Arc::new);
            }
            Some(ProxyChoice::Use(proxy)) => {
                return self.make_route(&req.url, pref, Some(proxy)).map(Arc::new);
            }
            None => {}
        }
        let cacheable = req.url.username().is_empty() && req.url.password().is_none();
        let key = &req.url[..Position::AfterPort];
        if cacheable {
            let routes = lock(&self.inner.route_cache.routes);
            if let Some(route) = routes.get(key).filter(|r| r.pref == pref) {
                return Ok(route.clone());
            }
        }
        let proxy = self
            .inner
            .proxy
            .as_ref()
            .filter(|p| p.intercepts(&req.url))
            .or_else(|| {
                self.inner
                    .env_proxies
                    .as_ref()
                    .and_then(|env| env.for_url(&req.url))
            });
        let route = Arc::new(self.make_route(&req.url, pref, proxy)?);
        if cacheable {
            let mut routes = lock(&self.inner.route_cache.routes);
            if routes.len() >= ROUTE_CACHE_ENTRIES {
                routes.clear();
            }
            routes.insert(key.into(), route.clone());
        }
        Ok(route)
    }

    fn make_route(&self, url: &Url, pref: HttpVersionPref, proxy: Option<&Proxy>) -> Result<Route> {
        crate::session::check_url(url)?;
        let https = url.scheme() == "https";
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Error::new(ErrorKind::InvalidUrl, "the URL has no port"))?;
        let host_header = HeaderValue::try_from(&url[Position::BeforeHost..Position::AfterPort])
            .map_err(|e| Error::new(ErrorKind::InvalidUrl, "invalid host").with_source(e))?;
        let origin = format!("{}://{}:{}", url.scheme(), host, port);
        let scheme = if https {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        };
        let authority =
            http::uri::Authority::try_from(&url[Position::BeforeHost..Position::AfterPort])
                .map_err(|e| Error::new(ErrorKind::InvalidUrl, "invalid host").with_source(e))?;
        let pref_tag = match pref {
            HttpVersionPref::Auto => "auto",
            HttpVersionPref::Http1Only => "h1",
            HttpVersionPref::Http2Only => "h2",
        };
        let (kind, target, route_tag) = if let Some(path) = &self.inner.unix_socket {
            (
                RouteKind::Unix,
                Target::Unix(path.clone()),
                format!("{pref_tag} unix:{}", path.display()),
            )
        } else if let Some(proxy) = proxy {
            let purl = proxy.url();
            let target = Target::Host {
                host: purl.host_str().unwrap_or_default().to_owned(),
                port: purl.port_or_known_default().unwrap_or(80),
            };
            let auth = proxy.authorization().cloned();
            let tag = format!("{pref_tag} proxy:{}", &purl[..Position::AfterPort]);
            if https {
                (RouteKind::Tunnel(auth), target, tag)
            } else {
                (RouteKind::Forward(auth), target, tag)
            }
        } else {
            (
                RouteKind::Direct,
                Target::Host {
                    host: host.clone(),
                    port,
                },
                pref_tag.to_owned(),
            )
        };
        // Absolute-form requests to a forward proxy stay HTTP/1.1.
        let forward = matches!(kind, RouteKind::Forward(_));
        let prior_knowledge = !https && !forward && pref == HttpVersionPref::Http2Only;
        let may_h2 = (https && pref != HttpVersionPref::Http1Only) || prior_knowledge;
        // A forward proxy's connections serve every http origin.
        let key = if forward {
            PoolKey::new(
                &format!("http://{}", &target_origin(&target)),
                Some(&route_tag),
            )
        } else {
            PoolKey::new(&origin, Some(&route_tag))
        };
        Ok(Route {
            key,
            kind,
            target,
            https,
            host,
            port,
            host_header,
            scheme,
            authority,
            prior_knowledge,
            may_h2,
            pref,
        })
    }
}

fn target_origin(target: &Target) -> String {
    match target {
        Target::Host { host, port } => format!("{host}:{port}"),
        Target::Unix(path) => path.display().to_string(),
    }
}

/// The request target: origin-form (`/path?q`) on a direct HTTP/1.1 connection,
/// absolute-form for HTTP/2 (hyper takes `:scheme` and `:authority` from it) and
/// forward proxies.
fn request_uri(url: &Url, absolute: bool, route: &Route) -> Result<http::Uri> {
    let invalid = |e: http::Error| {
        Error::new(
            ErrorKind::InvalidUrl,
            "the URL is not a valid request target",
        )
        .with_source(e)
    };
    let path = &url[Position::BeforePath..Position::AfterQuery];
    let path = if path.is_empty() { "/" } else { path };
    if !absolute {
        return http::Uri::try_from(path).map_err(|e| invalid(e.into()));
    }
    // The scheme and authority were parsed once for the route.
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(route.scheme.clone());
    parts.authority = Some(route.authority.clone());
    parts.path_and_query =
        Some(http::uri::PathAndQuery::try_from(path).map_err(|e| invalid(e.into()))?);
    http::Uri::from_parts(parts).map_err(|e| invalid(e.into()))
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn entry(resp: &Response) -> HistoryEntry {
    HistoryEntry {
        url: resp.inner.request.url.clone(),
        status: resp.inner.status,
        headers: resp.inner.headers.clone(),
    }
}

/// A body small enough to read and drop so its connection goes back to the pool.
fn has_small_body(resp: &Response) -> bool {
    resp.content_length()
        .is_some_and(|len| len <= DRAIN_SMALL_BODY)
}

/// Reads a body to its end and drops it, so its connection goes back to the pool.
async fn drain(mut body: ResponseBody) {
    while let Some(Ok(_)) = std::future::poll_fn(|cx| body.poll_chunk(cx)).await {}
}

/// `sent` under the sock_read timer, started once `written` reports the request body
/// written (or `sent` finished first: an early answer).
async fn read_timeout<F: std::future::Future>(
    limit: std::time::Duration,
    sent: F,
    written: Option<tokio::sync::oneshot::Receiver<()>>,
) -> std::result::Result<F::Output, tokio::time::error::Elapsed> {
    let mut sent = std::pin::pin!(sent);
    if let Some(written) = written {
        tokio::select! {
            out = &mut sent => return Ok(out),
            _ = written => {}
        }
    }
    tokio::time::timeout(limit, sent).await
}

/// Classifies a failed exchange on an established connection.
fn exchange_error(e: hyper::Error) -> Error {
    let message = if e.is_parse_too_large() {
        "the response head is over its limit (64 KiB, 100 fields)"
    } else if e.is_parse() {
        "the response is not valid HTTP"
    } else if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        "the connection closed before a response arrived"
    } else if e.is_user() {
        "the request could not be sent"
    } else {
        "the HTTP exchange failed"
    };
    // A client certificate refused under TLS 1.3 arrives as an alert after the
    // handshake, so it surfaces here.
    if crate::error::is_certificate_error(&e) {
        return Error::new(
            ErrorKind::Certificate,
            "the server refused the TLS handshake's certificate",
        )
        .with_source(e);
    }
    let kind = if e.is_body_write_aborted() || e.is_user() {
        ErrorKind::Body
    } else {
        ErrorKind::Request
    };
    Error::new(kind, message).with_source(e)
}
