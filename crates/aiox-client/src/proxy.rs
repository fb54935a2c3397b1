//! HTTP proxies: [`Proxy`] names a proxy and the requests it carries, [`NoProxy`] the
//! hosts that bypass it, `EnvProxies` the proxies of the environment (`trust_env`), and
//! [`tunnel`] the `CONNECT` handshake that carries `https://` requests through a proxy.
//!
//! As in aiohttp, plain `http://` requests go to the proxy in absolute form
//! (`GET http://host/path`) and `https://` requests open a `CONNECT host:port` tunnel
//! with TLS inside it. Only `http://` proxies are supported: an `https://` proxy (TLS to
//! the proxy itself) or a SOCKS proxy is a [`Builder`](crate::ErrorKind::Builder) error,
//! and such values in the environment are ignored with a warning, as aiohttp does.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use aiox_core::client::{DEFAULT_MAX_RESPONSE_HEAD, DEFAULT_MAX_RESPONSE_HEADERS};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderValue, StatusCode};
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use url::Url;

use crate::error::{Error, ErrorKind};
use crate::netrc::Netrc;

/// Which request schemes a [`Proxy`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    Http,
    Https,
}

/// A proxy for some or all of a session's (or one request's) requests.
///
/// The proxy's URL is `http://[user:password@]host[:port]`; a value without a scheme,
/// such as `127.0.0.1:3128`, means `http://`, and a missing port means 80 (the `http`
/// default, as aiohttp and Python's urllib use; curl would use 1080). A path, query or
/// fragment in the URL is ignored. Credentials in the URL are percent-decoded and sent as
/// `Proxy-Authorization: Basic`; [`basic_auth`](Proxy::basic_auth) replaces them.
///
/// ```
/// use aiox_client::{NoProxy, Proxy};
///
/// let proxy = Proxy::all("http://user:secret@proxy.internal:3128")?
///     .no_proxy(NoProxy::from_list("localhost, .internal, 10.0.0.0/8"));
/// assert!(!format!("{proxy:?}").contains("secret"));
/// # Ok::<(), aiox_client::Error>(())
/// ```
///
/// Its `Debug` output never shows the credentials.
#[derive(Clone)]
pub struct Proxy {
    scope: Scope,
    url: Url,
    authorization: Option<HeaderValue>,
    no_proxy: Option<NoProxy>,
}

impl Proxy {
    /// A proxy for every request, `http://`, `https://` (tunnelled) and WebSocket alike.
    pub fn all(url: &str) -> crate::Result<Proxy> {
        Self::parse(Scope::All, url)
    }

    /// A proxy for `http://` (and `ws://`) requests only.
    pub fn http(url: &str) -> crate::Result<Proxy> {
        Self::parse(Scope::Http, url)
    }

    /// A proxy for `https://` (and `wss://`) requests only, through `CONNECT` tunnels.
    pub fn https(url: &str) -> crate::Result<Proxy> {
        Self::parse(Scope::Https, url)
    }

    /// Sends `Proxy-Authorization: Basic` with these credentials, replacing any from the
    /// URL.
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.authorization = basic(user.as_bytes(), password.as_bytes());
        self
    }

    /// Requests to hosts matching `no_proxy` go direct instead of through this proxy.
    pub fn no_proxy(mut self, no_proxy: NoProxy) -> Self {
        self.no_proxy = Some(no_proxy);
        self
    }

    fn parse(scope: Scope, raw: &str) -> crate::Result<Proxy> {
        let raw = raw.trim();
        let text: Cow<'_, str> = match has_scheme(raw) {
            true => raw.into(),
            false => format!("http://{raw}").into(),
        };
        // url's ParseError names the problem, never the input, so no credentials leak.
        let mut url =
            Url::parse(&text).map_err(|e| Error::builder("invalid proxy URL").with_source(e))?;
        if url.scheme() != "http" {
            return Err(Error::builder(format!(
                "unsupported proxy scheme {:?}: only http:// proxies are supported",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::builder("invalid proxy URL: no host"));
        }
        let decode = |s: &str| percent_decode_str(s).collect::<Vec<u8>>();
        let authorization = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => basic(&decode(user), &decode(password.unwrap_or(""))),
        };
        // Neither can fail on an http URL with a host; the URL keeps no secrets either way.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_path("");
        url.set_query(None);
        url.set_fragment(None);
        let no_proxy = None;
        Ok(Proxy {
            scope,
            url,
            authorization,
            no_proxy,
        })
    }

    /// True if a request to `url` goes through this proxy: its scheme is in scope and its
    /// host is not excluded by the proxy's [`NoProxy`].
    pub(crate) fn intercepts(&self, url: &Url) -> bool {
        let in_scope = match self.scope {
            Scope::All => true,
            Scope::Http => matches!(url.scheme(), "http" | "ws"),
            Scope::Https => matches!(url.scheme(), "https" | "wss"),
        };
        if !in_scope {
            return false;
        }
        match (&self.no_proxy, url.host_str()) {
            (Some(no_proxy), Some(host)) => match url.port_or_known_default() {
                Some(port) => !no_proxy.matches_port(host, port),
                None => !no_proxy.matches(host),
            },
            _ => true,
        }
    }

    /// The proxy's own URL, `http://host[:port]/` without credentials; the port is
    /// `url().port_or_known_default()` (80 when none was given).
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// The `Proxy-Authorization` value (marked sensitive), from
    /// [`basic_auth`](Proxy::basic_auth) or the URL's `user:password@`.
    pub(crate) fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let authorization = self.authorization.as_ref().map(|_| "<redacted>");
        f.debug_struct("Proxy")
            .field("scope", &self.scope)
            .field("url", &self.url.as_str())
            .field("authorization", &authorization)
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// True if `s` starts with `scheme://`.
fn has_scheme(s: &str) -> bool {
    let Some(end) = s.find("://") else {
        return false;
    };
    let mut bytes = s[..end].bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// `Basic base64(user:password)`, marked sensitive.
fn basic(user: &[u8], password: &[u8]) -> Option<HeaderValue> {
    let mut value = String::from("Basic ");
    STANDARD.encode_string([user, b":", password].concat(), &mut value);
    // Base64 output is always a valid header value.
    let mut value = HeaderValue::try_from(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The hosts that bypass a proxy: `NO_PROXY` rules.
///
/// [`from_list`](NoProxy::from_list) takes entries separated by commas or whitespace:
///
/// - `*` matches every host;
/// - `example.com`, `.example.com` and `*.example.com` all match `example.com` and its
///   subdomains (as curl), but not `badexample.com`; `localhost` is such a name;
/// - an IP address (`10.1.2.3`, `::1` or `[::1]`) matches that address;
/// - a CIDR block (`10.0.0.0/8`, `fe80::/10`) matches the addresses in it;
/// - any of these may end in `:port` (`example.com:8080`, `[::1]:8080`); such an entry
///   matches only requests to that port (as Go's `NO_PROXY`), so
///   [`matches`](NoProxy::matches), which knows no port, skips it.
///
/// Names compare case-insensitively, trailing dots ignored. Entries that cannot be read
/// (a bad port or prefix length) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    pattern: Pattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    /// Lower-case ASCII (IDNA) without leading or trailing dots.
    Domain(String),
    /// A network address (host bits cleared) and its prefix length.
    Net(IpAddr, u8),
}

impl NoProxy {
    /// Rules from a comma- or space-separated list, as in `NO_PROXY`.
    pub fn from_list(list: &str) -> NoProxy {
        let rules = list
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter_map(parse_rule)
            .collect();
        NoProxy { rules }
    }

    /// The rules of `no_proxy` (or, if that is unset, `NO_PROXY`); `None` when neither
    /// is set or the value is blank.
    pub fn from_env() -> Option<NoProxy> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Option<NoProxy> {
        let list = env_value(get, "no_proxy")?;
        (!list.trim().is_empty()).then(|| NoProxy::from_list(&list))
    }

    /// True if `host` (as in `Url::host_str`: IPv6 in brackets) matches a rule without
    /// a port.
    pub fn matches(&self, host: &str) -> bool {
        self.find(host, None)
    }

    /// True if `host` on `port` matches a rule: one without a port, or one with this port.
    pub fn matches_port(&self, host: &str, port: u16) -> bool {
        self.find(host, Some(port))
    }

    fn find(&self, host: &str, port: Option<u16>) -> bool {
        let bare = unbracket(host);
        let ip = bare.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
        let name = bare.trim_end_matches('.').as_bytes();
        self.rules.iter().any(|rule| {
            if rule.port.is_some() && rule.port != port {
                return false;
            }
            match (&rule.pattern, ip) {
                (Pattern::Any, _) => true,
                (Pattern::Net(net, prefix), Some(ip)) => network(ip, *prefix) == Some(*net),
                (Pattern::Domain(domain), None) => domain_matches(name, domain.as_bytes()),
                _ => false,
            }
        })
    }
}

/// True if `name` is `domain` or a subdomain of it.
fn domain_matches(name: &[u8], domain: &[u8]) -> bool {
    match name.len().checked_sub(domain.len()) {
        Some(0) => name.eq_ignore_ascii_case(domain),
        Some(extra) => name[extra - 1] == b'.' && name[extra..].eq_ignore_ascii_case(domain),
        None => false,
    }
}

/// `ip` with all but its first `prefix` bits cleared; `None` if `prefix` is too long.
fn network(ip: IpAddr, prefix: u8) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v4) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Some(IpAddr::from((u32::from(v4) & mask).to_be_bytes()))
        }
        IpAddr::V6(v6) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            Some(IpAddr::from((u128::from(v6) & mask).to_be_bytes()))
        }
        _ => None,
    }
}

fn parse_rule(entry: &str) -> Option<Rule> {
    let entry = entry.trim();
    match entry {
        "" => return None,
        "*" => {
            return Some(Rule {
                pattern: Pattern::Any,
                port: None,
            });
        }
        _ => {}
    }
    let (host, port) = split_port(entry)?;
    let pattern = if let Some((addr, prefix)) = host.split_once('/') {
        let ip = unbracket(addr).parse::<IpAddr>().ok()?.to_canonical();
        let prefix: u8 = prefix.parse().ok()?;
        Pattern::Net(network(ip, prefix)?, prefix)
    } else if let Ok(ip) = unbracket(host).parse::<IpAddr>() {
        let ip = ip.to_canonical();
        Pattern::Net(ip, if ip.is_ipv4() { 32 } else { 128 })
    } else {
        let name = host.strip_prefix("*.").unwrap_or(host);
        let name = name.trim_start_matches('.').trim_end_matches('.');
        if name.is_empty() {
            return None;
        }
        // IDNA, so a Unicode entry matches the punycode that `Url::host_str` gives.
        let name = match url::Host::parse(name) {
            Ok(url::Host::Domain(ascii)) => ascii,
            _ => name.to_ascii_lowercase(),
        };
        Pattern::Domain(name)
    };
    Some(Rule { pattern, port })
}

/// Splits `host:port` or `[v6]:port`; a bare IPv6 address (or `[v6]/bits`) has no
/// port. `None` if the port is not a number.
fn split_port(entry: &str) -> Option<(&str, Option<u16>)> {
    let colon = match entry.find(']') {
        Some(close) if entry.starts_with('[') => {
            Some(close + 1).filter(|&i| entry[i..].starts_with(':'))
        }
        _ if entry.matches(':').count() == 1 => entry.find(':'),
        _ => None,
    };
    match colon {
        Some(i) => Some((&entry[..i], Some(entry[i + 1..].parse().ok()?))),
        None => Some((entry, None)),
    }
}

/// `[v6]` without its brackets; anything else unchanged.
fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// `get(lower)`, else `get(LOWER)`: lower case wins when both are set, as curl and
/// Python's urllib do.
fn env_value(get: &dyn Fn(&str) -> Option<String>, lower: &str) -> Option<String> {
    get(lower).or_else(|| get(&lower.to_ascii_uppercase()))
}

/// The proxies named by the environment, for sessions with `trust_env`.
///
/// `http_proxy` carries `http://` and `ws://` requests, `https_proxy` `https://` and
/// `wss://`, and `all_proxy` either when its own variable is unset or blank; `no_proxy`
/// lists the hosts that go direct. Each is read in lower case, else upper case: unlike
/// curl (which ignores `HTTP_PROXY`) but like aiohttp through urllib, `HTTP_PROXY` counts
/// too, except when `REQUEST_METHOD` is set: in a CGI program it can come from a client's
/// `Proxy:` header (httpoxy, CVE-2016-1000110), so urllib drops it and so do we. Values
/// that are not valid proxies are ignored with a warning.
#[derive(Debug, Clone, Default)]
pub(crate) struct EnvProxies {
    http: Option<Proxy>,
    https: Option<Proxy>,
}

impl EnvProxies {
    /// Reads the process environment.
    pub(crate) fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get` (the environment, or a map in tests).
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let get: &dyn Fn(&str) -> Option<String> = &get;
        let no_proxy = NoProxy::from_lookup(get);
        let cgi = get("REQUEST_METHOD").is_some();
        let http = match get("http_proxy") {
            Some(value) => Some(value),
            None if !cgi => get("HTTP_PROXY"),
            None => None,
        };
        let all = env_value(get, "all_proxy");
        let https = env_value(get, "https_proxy");
        let pick = |own: Option<String>| {
            own.filter(|v| !v.trim().is_empty())
                .or_else(|| all.clone().filter(|v| !v.trim().is_empty()))
        };
        let make = |value: Option<String>, ctor: fn(&str) -> crate::Result<Proxy>, name| {
            let proxy = match ctor(&value?) {
                Ok(proxy) => proxy,
                Err(e) => {
                    let message = "ignoring an invalid proxy from the environment";
                    tracing::warn!(proxy = name, error = %e, "{message}");
                    return None;
                }
            };
            Some(match &no_proxy {
                Some(no_proxy) => proxy.no_proxy(no_proxy.clone()),
                None => proxy,
            })
        };
        EnvProxies {
            http: make(pick(http), Proxy::http, "http_proxy"),
            https: make(pick(https), Proxy::https, "https_proxy"),
        }
    }

    /// Fills in `Proxy-Authorization` from `netrc` for proxies whose URL has no
    /// credentials, as aiohttp does with `trust_env`.
    pub(crate) fn with_netrc(mut self, netrc: &Netrc) -> Self {
        for proxy in [&mut self.http, &mut self.https].into_iter().flatten() {
            if proxy.authorization.is_none() {
                let creds = proxy.url.host_str().and_then(|h| netrc.credentials(h));
                if let Some((login, password)) = creds {
                    proxy.authorization = basic(login.as_bytes(), password.as_bytes());
                }
            }
        }
        self
    }

    /// The proxy for a request to `url`, if any.
    pub(crate) fn for_url(&self, url: &Url) -> Option<&Proxy> {
        let proxy = match url.scheme() {
            "http" | "ws" => self.http.as_ref(),
            "https" | "wss" => self.https.as_ref(),
            _ => None,
        }?;
        proxy.intercepts(url).then_some(proxy)
    }
}

/// Opens a `CONNECT` tunnel to `host:port` through `io`, a connection to the proxy.
///
/// Succeeds on a 2xx answer and leaves every byte after the answer's head unread, so
/// the TLS handshake that follows sees the stream exactly as the origin sent it. The
/// head may be at most `DEFAULT_MAX_RESPONSE_HEAD` bytes and
/// `DEFAULT_MAX_RESPONSE_HEADERS` fields. Any other answer, a malformed one, or the
/// connection closing first is an [`ErrorKind::Proxy`] error.
pub(crate) async fn tunnel<S>(
    io: &mut S,
    host: &str,
    port: u16,
    authorization: Option<&HeaderValue>,
    user_agent: Option<&HeaderValue>,
) -> crate::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let authority = authority(host, port)?;
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
    let headers = [
        ("Proxy-Authorization", authorization),
        ("User-Agent", user_agent),
    ];
    for (name, value) in headers.into_iter().filter_map(|(n, v)| Some((n, v?))) {
        for part in [name.as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
            request.extend_from_slice(part);
        }
    }
    request.extend_from_slice(b"\r\n");
    io.write_all(&request).await.map_err(io_error)?;
    io.flush().await.map_err(io_error)?;

    let head = read_head(io).await?;
    let mut headers = [httparse::EMPTY_HEADER; DEFAULT_MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let code = match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => response.code,
        Ok(httparse::Status::Partial) => None,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(proxy_error(
                "the proxy's answer to CONNECT has over 100 header fields",
            ));
        }
        Err(e) => return Err(malformed().with_source(e)),
    };
    match code {
        Some(code) if (200..300).contains(&code) => Ok(()),
        Some(code) => Err(refused(code, authorization.is_some())),
        None => Err(malformed()),
    }
}

/// `host:port`, IPv6 in brackets; refuses hosts that could smuggle bytes into the head.
fn authority(host: &str, port: u16) -> crate::Result<String> {
    let bad = |b: u8| !b.is_ascii_graphic() || b"/?#@\"<>\\".contains(&b);
    if host.is_empty() || host.bytes().any(bad) {
        return Err(Error::new(
            ErrorKind::InvalidUrl,
            "invalid host for a proxy tunnel",
        ));
    }
    Ok(if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// Reads the answer's head up to and including its blank line, and not one byte more.
async fn read_head<S: AsyncRead + Unpin>(io: &mut S) -> crate::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(128);
    let mut chunk = [0u8; 2];
    loop {
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            return Ok(head);
        }
        if head.len() >= DEFAULT_MAX_RESPONSE_HEAD {
            return Err(proxy_error(
                "the proxy's answer to CONNECT has a head over 64 KiB",
            ));
        }
        // The fewest bytes that could end the head ("\r\n\r\n", or a bare "\n\n"), so a
        // read can never run past it.
        let want = 2 - usize::from(head.ends_with(b"\n") || head.ends_with(b"\r\n\r"));
        let n = io.read(&mut chunk[..want]).await.map_err(io_error)?;
        if n == 0 {
            return Err(proxy_error(
                "the proxy closed the connection before answering CONNECT",
            ));
        }
        head.extend_from_slice(&chunk[..n]);
    }
}

fn refused(code: u16, sent_credentials: bool) -> Error {
    let mut message = format!("the proxy refused the tunnel: {code}");
    if let Some(reason) = StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        message = format!("{message} {reason}");
    }
    if code == 407 {
        message.push_str(if sent_credentials {
            " (proxy authentication required: the credentials were rejected)"
        } else {
            " (proxy authentication required: no credentials were sent)"
        });
    }
    proxy_error(message)
}

fn proxy_error(message: impl Into<Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Proxy, message)
}

fn malformed() -> Error {
    proxy_error("the proxy's answer to CONNECT is not HTTP")
}

fn io_error(e: std::io::Error) -> Error {
    proxy_error("the connection to the proxy failed").with_source(e)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn auth(p: &Proxy) -> &[u8] {
        p.authorization().map_or(b"", HeaderValue::as_bytes)
    }

    #[test]
    fn proxy_url_forms() {
        for (raw, want) in [
            ("127.0.0.1:3128", "http://127.0.0.1:3128/"),
            ("localhost:3128", "http://localhost:3128/"),
            (" HTTP://Proxy.Example/p?q#f ", "http://proxy.example/"),
            ("[::1]:8080", "http://[::1]:8080/"),
        ] {
            let p = Proxy::all(raw).unwrap();
            assert_eq!((p.url().as_str(), auth(&p)), (want, &b""[..]), "{raw}");
        }
        let p = Proxy::all("proxy.example").unwrap();
        assert_eq!(p.url().port_or_known_default(), Some(80));
    }

    #[test]
    fn proxy_url_errors() {
        for bad in ["https://proxy:443", "socks5://proxy:1080", "socks5h://p"] {
            let e = Proxy::all(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Builder, "{bad}");
            assert!(e.to_string().contains("unsupported proxy scheme"), "{e}");
        }
        for bad in ["", "http://", "http://exa mple:80", "proxy:99999"] {
            let e = Proxy::all(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Builder, "{bad}");
        }
    }

    #[test]
    fn userinfo_becomes_basic_auth_and_is_hidden() {
        let p = Proxy::all("http://us%40er:p%3Ass%20w@proxy:3128").unwrap();
        assert_eq!(auth(&p), b"Basic dXNAZXI6cDpzcyB3", "base64(us@er:p:ss w)");
        assert!(p.authorization().unwrap().is_sensitive());
        assert_eq!(p.url().as_str(), "http://proxy:3128/");
        let debug = format!("{p:?}");
        assert!(!debug.contains("dXNA"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");

        let p = Proxy::all("user@proxy").unwrap();
        assert_eq!(auth(&p), b"Basic dXNlcjo=");
        let p = p.basic_auth("Aladdin", "open sesame");
        assert_eq!(auth(&p), b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    /// Which of the space-separated `urls` go through `proxy`.
    fn intercepted(proxy: &Proxy, urls: &str) -> Vec<bool> {
        urls.split(' ').map(|u| proxy.intercepts(&url(u))).collect()
    }

    #[test]
    fn scopes() {
        let urls = "http://a.test/ ws://a.test/ https://a.test/ wss://a.test/";
        let p = Proxy::all("p:1").unwrap();
        assert_eq!(intercepted(&p, urls), [true, true, true, true]);
        let p = Proxy::http("p:1").unwrap();
        assert_eq!(intercepted(&p, urls), [true, true, false, false]);
        let p = Proxy::https("p:1").unwrap();
        assert_eq!(intercepted(&p, urls), [false, false, true, true]);

        let p = Proxy::all("p:1").unwrap();
        let p = p.no_proxy(NoProxy::from_list("a.test:443"));
        let urls = "https://a.test/ http://a.test/ http://a.test:443/";
        assert_eq!(intercepted(&p, urls), [false, true, false]);
    }

    /// Asserts that `np` matches each of the space-separated `hosts`.
    fn yes(np: &NoProxy, hosts: &str) {
        for host in hosts.split_whitespace() {
            assert!(np.matches(host), "{np:?} should match {host}");
        }
    }

    /// Asserts that `np` matches none of the space-separated `hosts`.
    fn no(np: &NoProxy, hosts: &str) {
        for host in hosts.split_whitespace() {
            assert!(!np.matches(host), "{np:?} should not match {host}");
        }
    }

    #[test]
    fn no_proxy_domains() {
        let np = NoProxy::from_list("example.com, .sub.test  *.wild.test,localhost");
        yes(&np, "example.com EXAMPLE.com. a.b.example.com sub.test");
        yes(&np, "x.sub.test wild.test x.wild.test localhost");
        no(&np, "badexample.com example.org com xsub.test");
        no(&np, "localhost2 127.0.0.1");
        yes(&NoProxy::from_list("*"), "anything.at.all [::1]");
        yes(&NoProxy::from_list("a, *"), "b");
        no(&NoProxy::from_list(""), "a");
        no(&NoProxy::from_list(" , ,"), "a");
        let idn = NoProxy::from_list("bücher.example");
        yes(&idn, "xn--bcher-kva.example");
    }

    #[test]
    fn no_proxy_addresses() {
        let np = NoProxy::from_list("10.0.0.0/8,192.168.1.7 ::1 [fe80::]/10 [2001:db8::5]");
        yes(&np, "10.1.2.3 192.168.1.7 [::1] [fe80::1234] [2001:db8::5]");
        yes(&np, "[::ffff:10.9.9.9]");
        no(&np, "11.0.0.1 192.168.1.8 [::2] [2001:db8::6] 10.example");
        let np = NoProxy::from_list("10.0.0.0/33, 1.2.3.4/x, ::/0");
        yes(&np, "[2001:db8::1]");
        no(&np, "10.0.0.1 1.2.3.4");
        yes(&NoProxy::from_list("0.0.0.0/0"), "8.8.8.8");
        no(&NoProxy::from_list("0.0.0.0/0"), "[::2]");
    }

    #[test]
    fn no_proxy_ports() {
        let np = NoProxy::from_list("example.com:8080 [::1]:443 10.0.0.1:80 bad:port");
        assert!(!np.matches("example.com"));
        assert!(np.matches_port("example.com", 8080));
        assert!(np.matches_port("www.example.com", 8080));
        assert!(!np.matches_port("example.com", 80));
        assert!(np.matches_port("[::1]", 443) && !np.matches_port("[::1]", 80));
        assert!(np.matches_port("10.0.0.1", 80) && !np.matches_port("10.0.0.1", 81));
        assert!(!np.matches_port("bad", 80));
        assert!(NoProxy::from_list("example.com").matches_port("example.com", 1));
    }

    /// Environment proxies from space-separated `NAME=value` pairs.
    fn env(vars: &str) -> EnvProxies {
        let map: HashMap<&str, &str> = vars
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .collect();
        EnvProxies::from_lookup(|name| map.get(name).map(|v| v.to_string()))
    }

    /// The proxy's URL for a request to `u`, or "direct".
    fn via(env: &EnvProxies, u: &str) -> String {
        let proxy = env.for_url(&url(u));
        proxy.map_or("direct".into(), |p| p.url().to_string())
    }

    #[test]
    fn env_precedence() {
        let e = env("http_proxy=http://lower:1 HTTP_PROXY=http://upper:1 \
                     HTTPS_PROXY=upper-s:2 NO_PROXY=internal.test");
        assert_eq!(via(&e, "http://a/"), "http://lower:1/");
        assert_eq!(via(&e, "ws://a/"), "http://lower:1/");
        assert_eq!(via(&e, "https://a/"), "http://upper-s:2/");
        assert_eq!(via(&e, "https://x.internal.test/"), "direct");

        let e = env(
            "HTTP_PROXY=http://upper:1 ALL_PROXY=http://all:3 https_proxy= \
                     no_proxy=a NO_PROXY=*",
        );
        assert_eq!(via(&e, "http://b/"), "http://upper:1/");
        assert_eq!(via(&e, "https://b/"), "http://all:3/");
        assert_eq!(via(&e, "https://a/"), "direct");

        // httpoxy: a CGI program ignores HTTP_PROXY but keeps http_proxy.
        let e = env("REQUEST_METHOD=GET HTTP_PROXY=http://evil:1");
        assert_eq!(via(&e, "http://a/"), "direct");
        let e = env("REQUEST_METHOD=GET http_proxy=http://ok:1");
        assert_eq!(via(&e, "http://a/"), "http://ok:1/");
    }

    #[test]
    fn env_invalid_values_are_ignored() {
        let e = env("http_proxy=socks5://s:1080 https_proxy=https://p:443 all_proxy=http://");
        assert_eq!(via(&e, "http://a/"), "direct");
        assert_eq!(via(&e, "https://a/"), "direct");
        assert_eq!(via(&env(""), "http://a/"), "direct");
    }

    #[test]
    fn env_proxy_credentials_from_netrc() {
        let netrc = Netrc::parse("machine p login u password pw\nmachine q login x");
        let e = env("http_proxy=http://p:1 https_proxy=http://me:mine@p:1");
        let e = e.with_netrc(&netrc);
        let proxy = |u| e.for_url(&url(u)).unwrap();
        assert_eq!(auth(proxy("http://a/")), b"Basic dTpwdw==");
        assert_eq!(auth(proxy("https://a/")), b"Basic bWU6bWluZQ==");
    }

    /// Accepts one connection, reads the request head, answers with `answer` in one
    /// write (so anything after the head arrives with it), and returns the request.
    async fn proxy_server(answer: &[u8]) -> (TcpStream, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = answer.to_vec();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && sock.read(&mut byte).await.unwrap() == 1 {
                request.push(byte[0]);
            }
            let _ = sock.write_all(&answer).await;
            request
        });
        (TcpStream::connect(addr).await.unwrap(), server)
    }

    /// The error of a tunnel to `a.test:443` through a proxy that answers `answer`.
    async fn tunnel_error(answer: &[u8], host: &str) -> String {
        let (mut io, _server) = proxy_server(answer).await;
        let e = tunnel(&mut io, host, 443, None, None).await.unwrap_err();
        let injection = host.contains('\n');
        let want = [ErrorKind::Proxy, ErrorKind::InvalidUrl][usize::from(injection)];
        assert_eq!(e.kind(), want, "{e}");
        e.to_string()
    }

    #[tokio::test]
    async fn tunnel_keeps_bytes_after_the_head() {
        let (mut io, server) = proxy_server(b"HTTP/1.1 200 OK\r\nVia: 1.1 p\r\n\r\nHELLO").await;
        let (creds, ua) = (basic(b"u", b"p"), HeaderValue::from_static("aiox/0.1"));
        let result = tunnel(&mut io, "example.com", 443, creds.as_ref(), Some(&ua)).await;
        result.unwrap();
        let mut rest = [0u8; 5];
        io.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"HELLO");
        let request = String::from_utf8(server.await.unwrap()).unwrap();
        let want = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
                    Proxy-Authorization: Basic dTpw\r\nUser-Agent: aiox/0.1\r\n\r\n";
        assert_eq!(request, want);
    }

    #[tokio::test]
    async fn tunnel_brackets_ipv6_and_accepts_bare_lf() {
        let (mut io, server) = proxy_server(b"HTTP/1.0 200 OK\n\nX").await;
        tunnel(&mut io, "::1", 8443, None, None).await.unwrap();
        let mut rest = [0u8; 1];
        io.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"X");
        let want = b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n";
        assert_eq!(server.await.unwrap(), want);
    }

    #[tokio::test]
    async fn tunnel_refused() {
        let answer = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
            Proxy-Authenticate: Basic realm=\"p\"\r\nContent-Length: 0\r\n\r\n";
        let e = tunnel_error(answer, "a.test").await;
        assert!(e.starts_with("the proxy refused the tunnel: 407"), "{e}");
        assert!(e.contains("proxy authentication required"), "{e}");
        let e = tunnel_error(b"HTTP/1.1 502 Bad Gateway\r\n\r\n", "a.test").await;
        assert_eq!(e, "the proxy refused the tunnel: 502 Bad Gateway");
    }

    #[tokio::test]
    async fn tunnel_garbage_eof_and_oversized_heads() {
        let e = tunnel_error(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "a.test").await;
        assert!(e.contains("not HTTP"), "{e}");
        let e = tunnel_error(b"HTTP/1.1 200 OK\r\n", "a.test").await;
        assert!(e.contains("closed the connection"), "{e}");

        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        while big.len() <= DEFAULT_MAX_RESPONSE_HEAD {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        big.extend_from_slice(b"\r\n");
        assert!(tunnel_error(&big, "a.test").await.contains("over 64 KiB"));

        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        many.extend(b"X-A: b\r\n".repeat(DEFAULT_MAX_RESPONSE_HEADERS + 1));
        many.extend_from_slice(b"\r\n");
        let e = tunnel_error(&many, "a.test").await;
        assert!(e.contains("over 100 header fields"), "{e}");

        tunnel_error(b"", "a.test\r\nX: y").await;
    }
}
