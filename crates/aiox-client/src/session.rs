//! [`ClientSession`] and its builder: aiohttp's `ClientSession(...)` plus the
//! `TCPConnector(...)` knobs, with the same defaults.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aiox_core::client::{Connector, Pool, PoolConfig, PoolStats, Resolver};
use http::Method;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;
use url::Url;

use crate::cookie::CookieJar;
use crate::error::{Error, ErrorKind, Result};
use crate::middleware::Middleware;
use crate::netrc::Netrc;
use crate::proxy::{EnvProxies, Proxy};
use crate::request::{
    HttpVersionPref, Request, RequestBuilder, basic_auth_value, bearer_auth_value,
};
use crate::response::DEFAULT_READ_LIMIT;
use crate::retry::RetryPolicy;
use crate::trace::{TraceHooks, Tracer};

/// The `User-Agent` sent unless another is set: `aiox/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("aiox/", env!("CARGO_PKG_VERSION"));
/// Redirects followed at most: 10, aiohttp's `max_redirects` (reqwest's
/// `Policy::limited(10)`); HARDENING case 91.
pub const DEFAULT_MAX_REDIRECTS: usize = 10;
/// The whole request's time limit: 300 s, aiohttp's `ClientTimeout.total`.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(300);
/// Opening a socket (and its TLS handshake) at most: 30 s, aiohttp's
/// `ClientTimeout.sock_connect` default.
pub const DEFAULT_SOCK_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// aiohttp's `ClientTimeout`, plus `pool_wait`. `None` switches a timer off.
///
/// ```
/// use std::time::Duration;
/// use aiox_client::ClientTimeout;
///
/// let timeout = ClientTimeout::default()
///     .total(Duration::from_secs(10))
///     .pool_wait(Duration::from_secs(2));
/// assert_eq!(timeout.sock_connect, Some(Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientTimeout {
    /// The whole request: queueing, connecting, redirects, retries and reading the
    /// body ([`DEFAULT_TOTAL_TIMEOUT`]).
    pub total: Option<Duration>,
    /// Getting a connection, time queued for a pool slot included, as aiohttp
    /// counts it (none).
    pub connect: Option<Duration>,
    /// Opening a new socket and its TLS handshake ([`DEFAULT_SOCK_CONNECT_TIMEOUT`]).
    pub sock_connect: Option<Duration>,
    /// The wait for the response head, and then for each body chunk (none).
    pub sock_read: Option<Duration>,
    /// Time queued for a pool slot alone (none): what aiohttp users ask for when
    /// `connect` fires because the pool is busy rather than the server slow.
    pub pool_wait: Option<Duration>,
}

impl Default for ClientTimeout {
    fn default() -> Self {
        Self {
            total: Some(DEFAULT_TOTAL_TIMEOUT),
            connect: None,
            sock_connect: Some(DEFAULT_SOCK_CONNECT_TIMEOUT),
            sock_read: None,
            pool_wait: None,
        }
    }
}

impl ClientTimeout {
    /// No timers at all.
    pub fn none() -> Self {
        Self {
            total: None,
            connect: None,
            sock_connect: None,
            sock_read: None,
            pool_wait: None,
        }
    }

    /// Sets [`total`](ClientTimeout::total).
    pub fn total(mut self, limit: impl Into<Option<Duration>>) -> Self {
        self.total = limit.into();
        self
    }

    /// Sets [`connect`](ClientTimeout::connect).
    pub fn connect(mut self, limit: impl Into<Option<Duration>>) -> Self {
        self.connect = limit.into();
        self
    }

    /// Sets [`sock_connect`](ClientTimeout::sock_connect).
    pub fn sock_connect(mut self, limit: impl Into<Option<Duration>>) -> Self {
        self.sock_connect = limit.into();
        self
    }

    /// Sets [`sock_read`](ClientTimeout::sock_read).
    pub fn sock_read(mut self, limit: impl Into<Option<Duration>>) -> Self {
        self.sock_read = limit.into();
        self
    }

    /// Sets [`pool_wait`](ClientTimeout::pool_wait).
    pub fn pool_wait(mut self, limit: impl Into<Option<Duration>>) -> Self {
        self.pool_wait = limit.into();
        self
    }
}

/// What a session is made of; shared by its clones.
pub(crate) struct SessionInner {
    pub(crate) base_url: Option<Url>,
    pub(crate) headers: HeaderMap,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) cookie_jar: Option<CookieJar>,
    pub(crate) timeout: ClientTimeout,
    pub(crate) raise_for_status: bool,
    pub(crate) follow_redirects: bool,
    pub(crate) max_redirects: usize,
    pub(crate) read_limit: usize,
    #[cfg_attr(not(feature = "compression"), allow(dead_code))]
    pub(crate) decompress: bool,
    #[cfg(feature = "compression")]
    pub(crate) decompression_limits: crate::decode::DecompressionLimits,
    pub(crate) proxy: Option<Proxy>,
    pub(crate) env_proxies: Option<EnvProxies>,
    pub(crate) netrc: Option<Netrc>,
    pub(crate) version: HttpVersionPref,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) middleware: Vec<Arc<dyn Middleware>>,
    pub(crate) tracer: Option<Arc<Tracer>>,
    pub(crate) unix_socket: Option<PathBuf>,
    pub(crate) pool: Pool,
    pub(crate) connector: Connector,
    #[cfg(feature = "tls")]
    pub(crate) tls: crate::tls::TlsConfigs,
    pub(crate) route_cache: crate::send::RouteCache,
    pub(crate) url_cache: UrlCache,
}

/// An HTTP client session: a connection pool, default headers, a cookie jar,
/// timeouts and policies shared by every request made through it. Cheap to clone
/// (clones share everything); make one per application, not one per request.
///
/// ```no_run
/// # async fn demo() -> aiox_client::Result<()> {
/// let session = aiox_client::ClientSession::new();
/// let body = session.get("https://example.com/").send().await?.text().await?;
/// println!("{body}");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientSession {
    pub(crate) inner: Arc<SessionInner>,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("base_url", &self.inner.base_url.as_ref().map(Url::as_str))
            .field("timeout", &self.inner.timeout)
            .field("pool", &self.inner.pool)
            .finish()
    }
}

impl Default for ClientSession {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! method_shortcuts {
    ($($name:ident => $method:ident),* $(,)?) => {$(
        #[doc = concat!("A `", stringify!($method), "` request to `url` (absolute, or relative to the base URL).")]
        pub fn $name(&self, url: &str) -> RequestBuilder {
            self.request(Method::$method, url)
        }
    )*};
}

impl ClientSession {
    /// A session with every default (aiohttp's `ClientSession()`).
    pub fn new() -> Self {
        ClientSessionBuilder::new()
            .build()
            .expect("the default session configuration is valid")
    }

    /// A builder for a configured session.
    pub fn builder() -> ClientSessionBuilder {
        ClientSessionBuilder::new()
    }

    method_shortcuts! {
        get => GET,
        post => POST,
        put => PUT,
        patch => PATCH,
        delete => DELETE,
        head => HEAD,
        options => OPTIONS,
    }

    /// A request with any method (`Method::from_bytes(b"PURGE")` included).
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let request = self.resolve_url(url).map(|url| Request::new(method, url));
        RequestBuilder::new(self.clone(), request)
    }

    /// Sends an already built request (from [`RequestBuilder::build`] or
    /// [`Request::new`]), with the session's redirects, retries and middleware.
    pub fn send(
        &self,
        request: Request,
    ) -> impl std::future::Future<Output = Result<crate::Response>> + Send + 'static {
        self.clone().execute(request)
    }

    fn resolve_url(&self, url: &str) -> Result<Url> {
        // A crawler asks for the same URLs again and again: parsing (IDNA, IPv4
        // forms, re-serialising) costs more than the request's own pool work.
        let cache = &self.inner.url_cache;
        if let Some(hit) = lock(cache).get(url) {
            return Ok(hit.clone());
        }
        let parsed = self.parse_url(url)?;
        let mut cache = lock(cache);
        if cache.len() >= URL_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(url.into(), parsed.clone());
        Ok(parsed)
    }

    fn parse_url(&self, url: &str) -> Result<Url> {
        let invalid = |e: url::ParseError| {
            Error::new(ErrorKind::InvalidUrl, format!("invalid URL {url:?}")).with_source(e)
        };
        let parsed = match Url::parse(url) {
            Ok(parsed) => parsed,
            Err(url::ParseError::RelativeUrlWithoutBase) => match &self.inner.base_url {
                Some(base) => base.join(url).map_err(invalid)?,
                None => return Err(invalid(url::ParseError::RelativeUrlWithoutBase)),
            },
            Err(e) => return Err(invalid(e)),
        };
        check_url(&parsed)?;
        Ok(parsed)
    }

    /// A snapshot of the connection pool: per origin, idle, in use and waiting.
    pub fn pool_stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    /// The session's cookie jar, if it has one.
    pub fn cookie_jar(&self) -> Option<&CookieJar> {
        self.inner.cookie_jar.as_ref()
    }

    /// The session's timeouts.
    pub fn timeout(&self) -> &ClientTimeout {
        &self.inner.timeout
    }

    /// Closes the idle pooled connections (requests in flight finish normally).
    pub fn close_idle(&self) {
        self.inner.pool.close_idle();
    }

    /// Forgets the cached DNS answers (aiohttp's `connector.clear_dns_cache()`).
    pub fn clear_dns_cache(&self) {
        self.inner.connector.resolver().clear();
    }
}

/// Request URLs whose parse is remembered per session at most; the cache is emptied
/// when full (judgement: a crawler's working set of URLs, a few KiB of memory).
const URL_CACHE_ENTRIES: usize = 256;

type UrlCache =
    std::sync::Mutex<std::collections::HashMap<Box<str>, Url, foldhash::fast::RandomState>>;

pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Only `http` and `https` URLs with a host are requested.
pub(crate) fn check_url(url: &Url) -> Result<()> {
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!("unsupported URL scheme {other:?} (only http and https)"),
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::new(ErrorKind::InvalidUrl, "the URL has no host"));
    }
    Ok(())
}

/// Builds a [`ClientSession`]; every setter is optional and nothing panics: an
/// invalid value is reported by [`build`](ClientSessionBuilder::build).
#[must_use]
pub struct ClientSessionBuilder {
    error: Option<Error>,
    base_url: Option<Url>,
    headers: HeaderMap,
    user_agent: Option<HeaderValue>,
    cookie_jar: Option<CookieJar>,
    auth: Option<HeaderValue>,
    timeout: ClientTimeout,
    raise_for_status: bool,
    trust_env: bool,
    follow_redirects: bool,
    max_redirects: usize,
    read_limit: usize,
    decompress: bool,
    #[cfg(feature = "compression")]
    decompression_limits: crate::decode::DecompressionLimits,
    proxy: Option<Proxy>,
    version: HttpVersionPref,
    retry: Option<RetryPolicy>,
    middleware: Vec<Arc<dyn Middleware>>,
    hooks: Vec<Arc<dyn TraceHooks>>,
    unix_socket: Option<PathBuf>,
    pool: PoolConfig,
    dns_ttl: Option<Duration>,
    #[cfg(feature = "hickory")]
    hickory_dns: bool,
    happy_eyeballs_delay: Duration,
    #[cfg(feature = "tls")]
    tls: crate::tls::TlsSettings,
}

impl std::fmt::Debug for ClientSessionBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSessionBuilder")
            .field("base_url", &self.base_url.as_ref().map(Url::as_str))
            .field("timeout", &self.timeout)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Default for ClientSessionBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientSessionBuilder {
    /// Every default: no base URL, `User-Agent: aiox/<version>`, a cookie jar, total
    /// timeout 300 s, 10 redirects, decompression on, pool of 100, DNS cache 10 s.
    pub fn new() -> Self {
        Self {
            error: None,
            base_url: None,
            headers: HeaderMap::new(),
            user_agent: Some(HeaderValue::from_static(DEFAULT_USER_AGENT)),
            cookie_jar: Some(CookieJar::new()),
            auth: None,
            timeout: ClientTimeout::default(),
            raise_for_status: false,
            trust_env: false,
            follow_redirects: true,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            read_limit: DEFAULT_READ_LIMIT,
            decompress: cfg!(feature = "compression"),
            #[cfg(feature = "compression")]
            decompression_limits: crate::decode::DecompressionLimits::default(),
            proxy: None,
            version: HttpVersionPref::Auto,
            retry: None,
            middleware: Vec::new(),
            hooks: Vec::new(),
            unix_socket: None,
            pool: PoolConfig::default(),
            dns_ttl: Some(aiox_core::client::DEFAULT_DNS_CACHE_TTL),
            #[cfg(feature = "hickory")]
            hickory_dns: false,
            happy_eyeballs_delay: aiox_core::client::DEFAULT_HAPPY_EYEBALLS_DELAY,
            #[cfg(feature = "tls")]
            tls: crate::tls::TlsSettings::default(),
        }
    }

    fn fail(mut self, e: Error) -> Self {
        if self.error.is_none() {
            self.error = Some(e);
        }
        self
    }

    /// Relative request URLs are joined to this one (aiohttp's `base_url`).
    pub fn base_url(self, url: &str) -> Self {
        match Url::parse(url) {
            Ok(url) => match check_url(&url) {
                Ok(()) => Self {
                    base_url: Some(url),
                    ..self
                },
                Err(e) => self.fail(e),
            },
            Err(e) => self.fail(
                Error::new(ErrorKind::InvalidUrl, format!("invalid base URL {url:?}"))
                    .with_source(e),
            ),
        }
    }

    /// A header sent with every request (a request's own header of the same name
    /// replaces it when set with `headers`, or is added beside it with `header`).
    pub fn default_header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        match (name.try_into(), value.try_into()) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
                self
            }
            (Err(e), _) => self.fail(Error::builder("invalid header name").with_source(e.into())),
            (_, Err(e)) => self.fail(Error::builder("invalid header value").with_source(e.into())),
        }
    }

    /// Headers sent with every request.
    pub fn default_headers(mut self, headers: HeaderMap) -> Self {
        self.headers.extend(headers);
        self
    }

    /// The `User-Agent` ([`DEFAULT_USER_AGENT`]); `None` sends none.
    pub fn user_agent(mut self, user_agent: Option<&str>) -> Self {
        match user_agent.map(HeaderValue::try_from).transpose() {
            Ok(value) => {
                self.user_agent = value;
                self
            }
            Err(e) => self.fail(Error::builder("invalid user agent").with_source(e)),
        }
    }

    /// The cookie jar, shared with whoever else holds a clone of it (a fresh safe
    /// jar by default; `None` for no cookie handling at all, aiohttp's `DummyCookieJar`).
    pub fn cookie_jar(mut self, jar: Option<CookieJar>) -> Self {
        self.cookie_jar = jar;
        self
    }

    /// HTTP basic authentication for every request (dropped on a redirect to another
    /// origin).
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        match basic_auth_value(user, password) {
            Ok(value) => Self {
                auth: Some(value),
                ..self
            },
            Err(e) => self.fail(e),
        }
    }

    /// Bearer token authentication for every request.
    pub fn bearer_auth(self, token: &str) -> Self {
        match bearer_auth_value(token) {
            Ok(value) => Self {
                auth: Some(value),
                ..self
            },
            Err(e) => self.fail(e),
        }
    }

    /// The timeouts ([`ClientTimeout::default`]).
    pub fn timeout(mut self, timeout: ClientTimeout) -> Self {
        self.timeout = timeout;
        self
    }

    /// Makes a status of 400 or above an error of kind
    /// [`ErrorKind::Status`](crate::ErrorKind::Status) (aiohttp's `raise_for_status=True`).
    pub fn raise_for_status(mut self, raise: bool) -> Self {
        self.raise_for_status = raise;
        self
    }

    /// Reads proxies from `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY`, and
    /// basic credentials from `~/.netrc` (or `$NETRC`), as aiohttp's `trust_env=True`.
    pub fn trust_env(mut self, trust: bool) -> Self {
        self.trust_env = trust;
        self
    }

    /// Whether redirects are followed (yes, as aiohttp does).
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.follow_redirects = follow;
        self
    }

    /// Redirects followed at most ([`DEFAULT_MAX_REDIRECTS`]).
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    /// The cap on `bytes()`, `text()` and `json()`
    /// ([`DEFAULT_READ_LIMIT`](crate::DEFAULT_READ_LIMIT)).
    pub fn read_limit(mut self, limit: usize) -> Self {
        self.read_limit = limit;
        self
    }

    /// Whether gzip, deflate, br and zstd responses are decoded transparently
    /// (`Accept-Encoding` sent); on with the `compression` feature.
    pub fn decompress(mut self, decompress: bool) -> Self {
        self.decompress = decompress && cfg!(feature = "compression");
        self
    }

    /// The decompression bomb limits ([`DecompressionLimits::default`](crate::DecompressionLimits)).
    #[cfg(feature = "compression")]
    pub fn decompression_limits(mut self, limits: crate::decode::DecompressionLimits) -> Self {
        self.decompression_limits = limits;
        self
    }

    /// A proxy for the session's requests (a request can override it).
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Speak HTTP/2 by prior knowledge (h2c) to `http://` origins, and offer only `h2`
    /// over TLS.
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.version = HttpVersionPref::Http2Only;
        self
    }

    /// Speak only HTTP/1.1.
    pub fn http1_only(mut self) -> Self {
        self.version = HttpVersionPref::Http1Only;
        self
    }

    /// A retry policy for every request (none by default).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Adds a middleware (the first added is the outermost).
    pub fn middleware(mut self, middleware: impl Middleware) -> Self {
        self.middleware.push(Arc::new(middleware));
        self
    }

    /// Adds tracing hooks (several may be added; each is called in order).
    pub fn trace(mut self, hooks: impl TraceHooks) -> Self {
        self.hooks.push(Arc::new(hooks));
        self
    }

    /// Sends every request over this Unix domain socket (aiohttp's `UnixConnector`);
    /// the URL still gives the `Host` header and path.
    pub fn unix_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.unix_socket = Some(path.into());
        self
    }

    /// Open connections at most, 0 for no limit (100, aiohttp's `limit`).
    pub fn pool_limit(mut self, limit: usize) -> Self {
        self.pool.limit = limit;
        self
    }

    /// Open connections per origin at most, 0 for no limit (0, aiohttp's
    /// `limit_per_host`).
    pub fn pool_limit_per_host(mut self, limit: usize) -> Self {
        self.pool.limit_per_host = limit;
        self
    }

    /// How long an idle connection is kept (15 s, aiohttp's `keepalive_timeout`).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool.idle_timeout = timeout;
        self
    }

    /// Close each HTTP/1 connection after its response (aiohttp's `force_close`).
    pub fn force_close(mut self, force: bool) -> Self {
        self.pool.force_close = force;
        self
    }

    /// How long resolved addresses are cached, `None` for no cache (10 s, aiohttp's
    /// `ttl_dns_cache`).
    pub fn dns_cache_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.dns_ttl = ttl;
        self
    }

    /// Resolves host names with hickory-resolver (async, reading `/etc/resolv.conf`
    /// and `/etc/hosts`) instead of `getaddrinfo` on tokio's blocking pool (off by
    /// default). The [`dns_cache_ttl`](Self::dns_cache_ttl) cache stays in front.
    #[cfg(feature = "hickory")]
    pub fn hickory_dns(mut self, enabled: bool) -> Self {
        self.hickory_dns = enabled;
        self
    }

    /// The happy eyeballs delay between connection attempts (250 ms, RFC 8305).
    pub fn happy_eyeballs_delay(mut self, delay: Duration) -> Self {
        self.happy_eyeballs_delay = delay;
        self
    }

    /// Which built-in root certificates to trust (webpki's by default).
    #[cfg(feature = "tls")]
    pub fn tls_roots(mut self, roots: crate::tls::TlsRoots) -> Self {
        self.tls.roots = roots;
        self
    }

    /// Also trusts the CA certificates in `pem` (one or more `CERTIFICATE` blocks).
    #[cfg(feature = "tls")]
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Self {
        match crate::tls::add_pem_roots(&mut self.tls, pem) {
            Ok(()) => self,
            Err(e) => self.fail(e),
        }
    }

    /// Presents this client certificate chain and key (PEM) when a server asks.
    #[cfg(feature = "tls")]
    pub fn identity_pem(mut self, cert_pem: &[u8], key_pem: &[u8]) -> Self {
        match crate::tls::Identity::from_pem(cert_pem, key_pem) {
            Ok(identity) => {
                self.tls.identity = Some(identity);
                self
            }
            Err(e) => self.fail(e),
        }
    }

    /// Accepts any server certificate, expired, self-signed or for another name.
    /// Only for tests against servers you control: it removes TLS's protection
    /// against impostors (curl's `-k`).
    #[cfg(feature = "tls")]
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.tls.insecure = accept;
        self
    }

    /// The session, or the first configuration error.
    pub fn build(self) -> Result<ClientSession> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        if let Some(ua) = &self.user_agent {
            headers.insert(header::USER_AGENT, ua.clone());
        }
        #[cfg(feature = "compression")]
        if self.decompress {
            headers.insert(header::ACCEPT_ENCODING, crate::decode::ACCEPT_ENCODING);
        }
        if let Some(auth) = self.auth {
            headers.insert(header::AUTHORIZATION, auth);
        }
        // The user's defaults replace ours.
        crate::request::replace_headers(&mut headers, &self.headers);
        let (env_proxies, netrc) = if self.trust_env {
            let netrc = Netrc::from_env();
            let proxies = EnvProxies::from_env();
            let proxies = match &netrc {
                Some(netrc) => proxies.with_netrc(netrc),
                None => proxies,
            };
            (Some(proxies), netrc)
        } else {
            (None, None)
        };
        #[cfg(feature = "hickory")]
        let resolver = if self.hickory_dns {
            Resolver::hickory(self.dns_ttl).map_err(|e| {
                Error::builder("could not set up the hickory DNS resolver").with_source(e)
            })?
        } else {
            Resolver::new(self.dns_ttl)
        };
        #[cfg(not(feature = "hickory"))]
        let resolver = Resolver::new(self.dns_ttl);
        let connector = Connector::new(resolver).happy_eyeballs_delay(self.happy_eyeballs_delay);
        #[cfg(feature = "tls")]
        let tls = self.tls.build()?;
        Ok(ClientSession {
            inner: Arc::new(SessionInner {
                base_url: self.base_url,
                user_agent: self.user_agent,
                headers,
                cookie_jar: self.cookie_jar,
                timeout: self.timeout,
                raise_for_status: self.raise_for_status,
                follow_redirects: self.follow_redirects,
                max_redirects: self.max_redirects,
                read_limit: self.read_limit,
                decompress: self.decompress,
                #[cfg(feature = "compression")]
                decompression_limits: self.decompression_limits,
                proxy: self.proxy,
                env_proxies,
                netrc,
                version: self.version,
                retry: self.retry,
                middleware: self.middleware,
                tracer: Tracer::new(self.hooks),
                unix_socket: self.unix_socket,
                pool: Pool::new(self.pool),
                connector,
                #[cfg(feature = "tls")]
                tls,
                route_cache: crate::send::RouteCache::default(),
                url_cache: UrlCache::default(),
            }),
        })
    }
}

/// What every hop of one request shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HopContext {
    /// When the total timeout runs out.
    pub(crate) deadline: Option<Instant>,
}

#[cfg(all(test, feature = "hickory"))]
mod hickory_tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_hickory_session_reaches_localhost() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0; 1024];
            while !head.ends_with(b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert_ne!(n, 0, "the client hung up before its request head");
                head.extend_from_slice(&buf[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await
                .unwrap();
        });
        let session = ClientSession::builder().hickory_dns(true).build().unwrap();
        let request = session.get(&format!("http://localhost:{port}/")).send();
        let body = tokio::time::timeout(Duration::from_secs(30), async {
            request.await.unwrap().text().await.unwrap()
        })
        .await
        .unwrap();
        assert_eq!(body, "ok");
        server.await.unwrap();
    }
}
