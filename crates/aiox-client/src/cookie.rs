//! The client cookie jar: keeps the cookies that responses set and sends the matching
//! `Cookie` header with each request, following RFC 6265 (aiohttp's `CookieJar`).
//!
//! On top of RFC 6265 section 5 come the hardening rules of RFC 6265bis: `Secure`
//! cookies are neither set from nor sent to plain `http://`, an insecure origin cannot
//! overwrite a `Secure` cookie, the `__Secure-` and `__Host-` prefixes are enforced, and
//! no cookie lives longer than [`CookieJar::MAX_LIFETIME`].
//!
//! There is no public-suffix list: a single-label `Domain` (`com`, `localhost`) is
//! refused unless it is the request host itself, but `Domain=co.uk` set by `a.co.uk` is
//! accepted and then sent to every `*.co.uk` host. Use one jar per trust domain when
//! that matters.
//!
//! ```
//! # use aiox_client::CookieJar;
//! let jar = CookieJar::new();
//! let url = url::Url::parse("https://example.com/app/login").unwrap();
//! assert!(jar.add("session", "abc", &url));
//! assert_eq!(jar.header_for(&url).unwrap(), "session=abc");
//! ```

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::cookie::time::OffsetDateTime;
use ::cookie::{Cookie, SameSite};
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// A cookie jar (RFC 6265) for a client session: stores `Set-Cookie` from responses and
/// builds the `Cookie` header for requests.
///
/// Cloning is cheap and shares the same jar (an `Arc` inside); the jar is `Send + Sync`.
/// [`CookieJar::new`] ignores cookies of IP-address hosts, like aiohttp's `CookieJar()`;
/// [`CookieJar::new_unsafe`] accepts them, like `CookieJar(unsafe=True)`.
///
/// When a domain or the jar is full, expired cookies go first, then the least recently
/// sent (RFC 6265 section 5.3). `Debug` shows the count, never cookie values.
#[derive(Clone, Default)]
pub struct CookieJar {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    store: RwLock<Store>,
    /// `store.total` mirrored for the lock-free [`CookieJar::is_empty`].
    len: AtomicUsize,
    /// Logical clock for creation and last-access order.
    clock: AtomicU64,
    allow_ip_hosts: bool,
}

/// Cookies by domain: the lowercase ASCII host or `Domain`, IPv6 hosts in brackets.
#[derive(Default)]
struct Store {
    domains: HashMap<String, Vec<Entry>>,
    /// Entries in `domains`, expired ones included until purged.
    total: usize,
}

struct Entry {
    c: Saved,
    /// Clock tick of creation, kept when the cookie is replaced (RFC 6265 5.3 step 11).
    created: u64,
    /// Clock tick of the last send, for least-recently-used eviction.
    last_access: AtomicU64,
}

/// One cookie as stored, and as written by [`CookieJar::save`].
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Saved {
    name: String,
    value: String,
    domain: String,
    path: String,
    host_only: bool,
    secure: bool,
    http_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    same_site: Option<String>,
    /// Unix seconds; `None` for a session cookie.
    expires: Option<i64>,
}

/// The file format of [`CookieJar::save`].
#[derive(Serialize, Deserialize)]
struct SavedJar {
    version: u32,
    #[serde(default)]
    allow_ip_hosts: bool,
    cookies: Vec<Saved>,
}

/// The parts of a request URL that cookie matching needs.
struct Target<'a> {
    host: &'a str,
    is_ip: bool,
    secure: bool,
    path: &'a str,
}

const LIFETIME_SECS: i64 = 400 * 24 * 60 * 60;

impl CookieJar {
    /// Most cookies kept for one domain: 50, the per-domain minimum of RFC 6265
    /// section 6.1 (without a public-suffix list, "domain" is the cookie's domain).
    pub const MAX_PER_DOMAIN: usize = 50;
    /// Most cookies kept in the whole jar: 3,000, the total minimum of RFC 6265
    /// section 6.1.
    pub const MAX_TOTAL: usize = 3000;
    /// Largest name plus value in bytes: 4,096, the per-cookie minimum of RFC 6265
    /// section 6.1. Larger cookies are refused, as browsers do.
    pub const MAX_COOKIE_SIZE: usize = 4096;
    /// Longest lifetime a cookie gets: 400 days (RFC 6265bis section 5.5). A later
    /// `Expires` or a larger `Max-Age` is clamped to it.
    pub const MAX_LIFETIME: Duration = Duration::from_secs(LIFETIME_SECS as u64);

    /// An empty jar that ignores cookies of IP-address hosts (aiohttp's `CookieJar()`).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty jar that also keeps and sends cookies of IP-address hosts, IPv4 and IPv6
    /// (aiohttp's `CookieJar(unsafe=True)`).
    pub fn new_unsafe() -> Self {
        Self::with_mode(true)
    }

    fn with_mode(allow_ip_hosts: bool) -> Self {
        let inner = Inner {
            allow_ip_hosts,
            ..Inner::default()
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// True if this jar accepts cookies of IP-address hosts ([`CookieJar::new_unsafe`]).
    pub fn allows_ip_hosts(&self) -> bool {
        self.inner.allow_ip_hosts
    }

    /// The number of live cookies; purges expired ones first.
    pub fn len(&self) -> usize {
        let now = unix_now();
        self.update(|s| {
            s.purge_expired(now);
            s.total
        })
    }

    /// True if the jar holds no cookie: one atomic read, for the per-request fast path.
    ///
    /// Cookies that expired but are not purged yet still count, until the next change,
    /// [`len`](Self::len), or a request that meets them.
    pub fn is_empty(&self) -> bool {
        self.inner.len.load(Ordering::Acquire) == 0
    }

    /// Stores every `Set-Cookie` of the response to `url`. Headers that are not UTF-8,
    /// do not parse, or break the rules are skipped silently.
    pub fn store_response(&self, url: &Url, headers: &HeaderMap) {
        let now = unix_now();
        for value in headers.get_all(SET_COOKIE) {
            let text = std::str::from_utf8(value.as_bytes());
            if let Some(cookie) = text.ok().and_then(|t| Cookie::parse(t).ok()) {
                self.store_at(&cookie, url, now);
            }
        }
    }

    /// The `Cookie` header for a request to `url` (`"a=1; b=2"`), in RFC 6265 section
    /// 5.4 order: longer paths first, then earlier creation. `None` if nothing matches.
    pub fn header_for(&self, url: &Url) -> Option<HeaderValue> {
        self.with_matching(url, unix_now(), |found| {
            let mut header = String::new();
            for (i, e) in found.iter().enumerate() {
                let sep = if i == 0 { "" } else { "; " };
                header.extend([sep, &e.c.name, "=", &e.c.value]);
            }
            HeaderValue::try_from(header).ok()
        })
        .flatten()
    }

    /// The `(name, value)` pairs that [`header_for`](Self::header_for) would send.
    pub fn cookies_for(&self, url: &Url) -> Vec<(String, String)> {
        self.with_matching(url, unix_now(), |found| {
            let pair = |e: &&Entry| (e.c.name.clone(), e.c.value.clone());
            found.iter().map(pair).collect()
        })
        .unwrap_or_default()
    }

    /// Stores `cookie` as if the response to `url` had set it. Returns false if it was
    /// refused (bad domain, `Secure` over `http://`, IP host in a safe jar, too large,
    /// ...); an already expired cookie deletes its namesake and counts as accepted.
    pub fn insert(&self, cookie: Cookie<'static>, url: &Url) -> bool {
        self.store_at(&cookie, url, unix_now())
    }

    /// Stores a host-only session cookie `name=value` for `url`'s host and default path
    /// (aiohttp's `update_cookies` with a plain pair). Returns false if refused, for
    /// example when `value` holds `;` or control characters.
    pub fn add(&self, name: &str, value: &str, url: &Url) -> bool {
        self.store_at(&Cookie::new(name, value), url, unix_now())
    }

    /// Every live cookie, oldest first, with domain, path, secure, http-only and expiry
    /// filled in (a host-only cookie carries its host as domain).
    pub fn all(&self) -> Vec<Cookie<'static>> {
        let store = self.read();
        store
            .live(unix_now())
            .into_iter()
            .map(Entry::to_cookie)
            .collect()
    }

    /// Removes every cookie (aiohttp's `clear()`).
    pub fn clear(&self) {
        self.update(|s| *s = Store::default());
    }

    /// Removes the cookies of `domain` and of its subdomains (aiohttp's
    /// `clear_domain`); a leading dot and letter case are ignored.
    pub fn clear_domain(&self, domain: &str) {
        let domain = domain.trim_start_matches('.').to_ascii_lowercase();
        self.update(|s| {
            s.domains
                .retain(|key, _| !(*key == domain || is_subdomain(key, &domain)));
            s.total = s.domains.values().map(Vec::len).sum();
        });
    }

    /// Writes the unexpired cookies, session cookies included (as aiohttp's `save`
    /// does), as JSON.
    pub fn save(&self, mut w: impl Write) -> io::Result<()> {
        let cookies = (self.read().live(unix_now()).into_iter())
            .map(|e| e.c.clone())
            .collect();
        let allow_ip_hosts = self.inner.allow_ip_hosts;
        serde_json::to_writer(
            &mut w,
            &SavedJar {
                version: 1,
                allow_ip_hosts,
                cookies,
            },
        )?;
        w.flush()
    }

    /// Reads a jar written by [`save`](Self::save), in the mode it was saved from
    /// ([`new`](Self::new) or [`new_unsafe`](Self::new_unsafe)). Malformed JSON is an
    /// [`InvalidData`](io::ErrorKind::InvalidData) error; entries that break the rules
    /// or have expired are skipped.
    pub fn load(r: impl Read) -> io::Result<Self> {
        let invalid = |e| io::Error::new(io::ErrorKind::InvalidData, e);
        let saved: SavedJar = serde_json::from_reader(BufReader::new(r))
            .map_err(|e| if e.is_io() { e.into() } else { invalid(e) })?;
        if saved.version != 1 {
            let e = serde::de::Error::custom("unknown cookie jar file version");
            return Err(invalid(e));
        }
        let jar = Self::with_mode(saved.allow_ip_hosts);
        let now = unix_now();
        jar.update(|s| {
            for c in saved.cookies {
                if let Some(entry) = jar.entry_from_saved(c, now) {
                    s.put(entry, now);
                }
            }
        });
        Ok(jar)
    }

    /// [`save`](Self::save) to a file, created or truncated.
    pub fn save_file(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.save(BufWriter::new(File::create(path)?))
    }

    /// [`load`](Self::load) from a file.
    pub fn load_file(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::load(File::open(path)?)
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.inner
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn update<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut store = self
            .inner
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let result = f(&mut store);
        self.inner.len.store(store.total, Ordering::Release);
        result
    }

    fn entry(&self, c: Saved) -> Entry {
        let tick = self.inner.clock.fetch_add(1, Ordering::Relaxed);
        Entry {
            c,
            created: tick,
            last_access: AtomicU64::new(tick),
        }
    }

    /// RFC 6265 section 5.3 (with 6265bis hardening) for a cookie set by `url` at `now`.
    fn store_at(&self, c: &Cookie<'_>, url: &Url, now: i64) -> bool {
        let Some(t) = Target::of(url) else {
            return false;
        };
        let (name, value) = (c.name(), c.value());
        let secure = c.secure() == Some(true);
        if (t.is_ip && !self.inner.allow_ip_hosts)
            || !valid_pair(name, value)
            || (secure && !t.secure)
        {
            return false;
        }
        let (domain, host_only) = match c.domain().filter(|d| !d.is_empty()) {
            None => (t.host.to_owned(), true),
            Some(attr) => match cookie_domain(attr, &t) {
                Some(found) => found,
                None => return false,
            },
        };
        let path = match c.path() {
            Some(p) if p.starts_with('/') => p,
            _ => default_path(t.path),
        };
        if !prefix_allows(name, secure, host_only, path) {
            return false;
        }
        let entry = self.entry(Saved {
            name: name.to_owned(),
            value: value.to_owned(),
            domain,
            path: path.to_owned(),
            host_only,
            secure,
            http_only: c.http_only() == Some(true),
            same_site: c.same_site().map(|s| s.to_string()),
            expires: expiry(c, now),
        });
        self.update(|s| {
            if !t.secure && s.shadows_secure(&entry.c, t.is_ip, now) {
                return false;
            }
            if entry.is_expired(now) {
                s.remove(&entry.c);
            } else {
                s.put(entry, now);
            }
            true
        })
    }

    /// Runs `f` on the cookies to send to `url`, sorted; `None` if there are none.
    fn with_matching<R>(&self, url: &Url, now: i64, f: impl FnOnce(&[&Entry]) -> R) -> Option<R> {
        if self.is_empty() {
            return None;
        }
        let t = Target::of(url)?;
        if t.is_ip && !self.inner.allow_ip_hosts {
            return None;
        }
        let mut saw_expired = false;
        let result = {
            let store = self.read();
            let mut found: Vec<&Entry> = Vec::new();
            for (domain, exact) in domain_chain(t.host, t.is_ip) {
                for e in store.domains.get(domain).into_iter().flatten() {
                    if e.is_expired(now) {
                        saw_expired = true;
                    } else if (exact || !e.c.host_only)
                        && (t.secure || !e.c.secure)
                        && path_match(t.path, &e.c.path)
                    {
                        found.push(e);
                    }
                }
            }
            found.sort_by_key(|e| (std::cmp::Reverse(e.c.path.len()), e.created));
            let tick = self.inner.clock.fetch_add(1, Ordering::Relaxed);
            for e in &found {
                e.last_access.store(tick, Ordering::Relaxed);
            }
            (!found.is_empty()).then(|| f(&found))
        };
        if saw_expired {
            self.update(|s| s.purge_expired(now));
        }
        result
    }

    /// Checks a cookie read from a file as strictly as one from the network.
    fn entry_from_saved(&self, mut c: Saved, now: i64) -> Option<Entry> {
        c.domain.make_ascii_lowercase();
        let domain_ok = !c.domain.is_empty()
            && (c.domain.bytes()).all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b))
            && (self.inner.allow_ip_hosts || !is_ip_key(&c.domain));
        c.expires = c.expires.map(|t| t.min(now.saturating_add(LIFETIME_SECS)));
        let ok = domain_ok && c.path.starts_with('/') && valid_pair(&c.name, &c.value);
        let entry = self.entry(c);
        (ok && !entry.is_expired(now)).then_some(entry)
    }
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieJar")
            .field("len", &self.inner.len.load(Ordering::Relaxed))
            .field("allow_ip_hosts", &self.inner.allow_ip_hosts)
            .finish()
    }
}

impl Store {
    /// Adds or replaces (same name, domain and path) a cookie, then enforces the caps.
    fn put(&mut self, entry: Entry, now: i64) {
        let bucket = self.domains.entry(entry.c.domain.clone()).or_default();
        if let Some(old) = bucket.iter_mut().find(|e| e.c.same_key(&entry.c)) {
            *old = Entry {
                created: old.created,
                ..entry
            };
            return;
        }
        let before = bucket.len();
        if before >= CookieJar::MAX_PER_DOMAIN {
            bucket.retain(|e| !e.is_expired(now));
            let full = bucket.len() >= CookieJar::MAX_PER_DOMAIN;
            if let Some(i) = lru_index(bucket).filter(|_| full) {
                bucket.remove(i);
            }
        }
        bucket.push(entry);
        self.total = self.total + bucket.len() - before;
        if self.total > CookieJar::MAX_TOTAL {
            self.purge_expired(now);
        }
        while self.total > CookieJar::MAX_TOTAL {
            let oldest = (self.domains.iter())
                .filter_map(|(d, b)| lru_index(b).map(|i| (b[i].last_access(), d, i)))
                .min_by_key(|(access, _, _)| *access)
                .map(|(_, d, i)| (d.clone(), i));
            let Some((domain, i)) = oldest else { break };
            self.remove_at(&domain, |j, _| j == i);
        }
    }

    fn remove(&mut self, c: &Saved) {
        self.remove_at(&c.domain, |_, e| e.c.same_key(c));
    }

    fn remove_at(&mut self, domain: &str, doomed: impl Fn(usize, &Entry) -> bool) {
        if let Some(bucket) = self.domains.get_mut(domain) {
            let before = bucket.len();
            let mut i = 0;
            bucket.retain(|e| {
                i += 1;
                !doomed(i - 1, e)
            });
            self.total -= before - bucket.len();
            if bucket.is_empty() {
                self.domains.remove(domain);
            }
        }
    }

    fn purge_expired(&mut self, now: i64) {
        self.domains.retain(|_, bucket| {
            bucket.retain(|e| !e.is_expired(now));
            !bucket.is_empty()
        });
        self.total = self.domains.values().map(Vec::len).sum();
    }

    /// RFC 6265bis section 5.7 step 16: an insecure origin may not set a cookie that
    /// would overwrite or shadow a live `Secure` one.
    fn shadows_secure(&self, new: &Saved, is_ip: bool, now: i64) -> bool {
        (domain_chain(&new.domain, is_ip))
            .filter_map(|(d, _)| self.domains.get(d))
            .flatten()
            .any(|e| {
                e.c.secure
                    && e.c.name == new.name
                    && !e.is_expired(now)
                    && path_match(&new.path, &e.c.path)
            })
    }

    /// The unexpired cookies, oldest first.
    fn live(&self, now: i64) -> Vec<&Entry> {
        let mut live: Vec<&Entry> = self
            .domains
            .values()
            .flatten()
            .filter(|e| !e.is_expired(now))
            .collect();
        live.sort_by_key(|e| e.created);
        live
    }
}

impl Entry {
    fn is_expired(&self, now: i64) -> bool {
        self.c.expires.is_some_and(|t| t <= now)
    }

    fn last_access(&self) -> u64 {
        self.last_access.load(Ordering::Relaxed)
    }

    fn to_cookie(&self) -> Cookie<'static> {
        let s = &self.c;
        let mut c = Cookie::new(s.name.clone(), s.value.clone());
        c.set_domain(s.domain.clone());
        c.set_path(s.path.clone());
        c.set_secure(s.secure);
        c.set_http_only(s.http_only);
        c.set_same_site(match s.same_site.as_deref().map(str::to_ascii_lowercase) {
            Some(v) if v == "strict" => Some(SameSite::Strict),
            Some(v) if v == "lax" => Some(SameSite::Lax),
            Some(v) if v == "none" => Some(SameSite::None),
            _ => None,
        });
        if let Some(at) = s
            .expires
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        {
            c.set_expires(at);
        }
        c
    }
}

impl Saved {
    /// RFC 6265 identity: same name, domain and path.
    fn same_key(&self, other: &Saved) -> bool {
        self.name == other.name && self.domain == other.domain && self.path == other.path
    }
}

impl<'a> Target<'a> {
    fn of(url: &'a Url) -> Option<Self> {
        let secure = match url.scheme() {
            "https" | "wss" => true,
            "http" | "ws" => false,
            _ => return None,
        };
        let is_ip = !matches!(url.host()?, Host::Domain(_));
        Some(Self {
            host: url.host_str()?,
            is_ip,
            secure,
            path: url.path(),
        })
    }
}

fn unix_now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The expiry in unix seconds (`None`: session cookie). Max-Age wins over Expires, both
/// are clamped to [`CookieJar::MAX_LIFETIME`], and Max-Age <= 0 means already expired.
fn expiry(c: &Cookie<'_>, now: i64) -> Option<i64> {
    let cap = now.saturating_add(LIFETIME_SECS);
    match c.max_age().map(|age| age.whole_seconds()) {
        Some(secs) if secs <= 0 => Some(i64::MIN),
        Some(secs) => Some(now.saturating_add(secs).min(cap)),
        None => c.expires_datetime().map(|at| at.unix_timestamp().min(cap)),
    }
}

/// Name and value must fit in [`CookieJar::MAX_COOKIE_SIZE`] and in a header.
fn valid_pair(name: &str, value: &str) -> bool {
    let bad = |c: char| c.is_control() || c == ';';
    !name.is_empty()
        && name.len() + value.len() <= CookieJar::MAX_COOKIE_SIZE
        && !name.contains(|c| bad(c) || c == '=')
        && !value.contains(bad)
}

/// The stored domain and host-only flag for a `Domain` attribute (leading dot already
/// stripped by the parser), or `None` to refuse the cookie (RFC 6265 5.3 steps 4-6).
fn cookie_domain(attr: &str, t: &Target<'_>) -> Option<(String, bool)> {
    if t.is_ip {
        // An IP host only domain-matches itself (RFC 6265 section 5.1.3).
        let ip = |s: &str| {
            s.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
        };
        let same = ip(attr).is_ok_and(|a| ip(t.host).is_ok_and(|h| a == h));
        return same.then(|| (t.host.to_owned(), true));
    }
    let Ok(Host::Domain(domain)) = Host::parse(attr.trim_start_matches('.')) else {
        return None;
    };
    // A single label stands in for a public suffix: only its own host may use it.
    let single_label = !domain.contains('.');
    if domain == t.host {
        Some((domain, single_label))
    } else {
        (!single_label && is_subdomain(t.host, &domain)).then_some((domain, false))
    }
}

/// True if `host` is a subdomain of `domain` (never for IP addresses).
fn is_subdomain(host: &str, domain: &str) -> bool {
    !is_ip_key(host)
        && host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

fn is_ip_key(key: &str) -> bool {
    key.starts_with('[') || key.parse::<Ipv4Addr>().is_ok()
}

/// RFC 6265bis section 4.1.3: `__Secure-` needs `Secure`; `__Host-` needs `Secure`,
/// no `Domain` and `Path=/`.
fn prefix_allows(name: &str, secure: bool, host_only: bool, path: &str) -> bool {
    let has = |p: &str| {
        name.get(..p.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(p))
    };
    if has("__Host-") {
        secure && host_only && path == "/"
    } else {
        !has("__Secure-") || secure
    }
}

/// RFC 6265 section 5.1.4 default-path: the request path up to its last `/`.
fn default_path(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) if i > 0 && path.starts_with('/') => &path[..i],
        _ => "/",
    }
}

/// RFC 6265 section 5.1.4 path-match.
fn path_match(request: &str, cookie: &str) -> bool {
    (request.strip_prefix(cookie))
        .is_some_and(|rest| rest.is_empty() || cookie.ends_with('/') || rest.starts_with('/'))
}

/// `host` (exact: true) followed by its parent domains; only `host` for an IP.
fn domain_chain(host: &str, is_ip: bool) -> impl Iterator<Item = (&str, bool)> {
    let dots = host.match_indices('.').filter(move |_| !is_ip);
    std::iter::once((host, true)).chain(dots.map(move |(i, _)| (&host[i + 1..], false)))
}

fn lru_index(entries: &[Entry]) -> Option<usize> {
    (entries.iter().enumerate())
        .min_by_key(|(_, e)| e.last_access())
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "http://h.test/";

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn set(jar: &CookieJar, u: &str, lines: &[&str]) {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(SET_COOKIE, HeaderValue::from_str(line).unwrap());
        }
        jar.store_response(&url(u), &headers);
    }

    fn sent(jar: &CookieJar, u: &str) -> String {
        let header = jar.header_for(&url(u)).map(|v| v.as_bytes().to_vec());
        String::from_utf8(header.unwrap_or_default()).unwrap()
    }

    fn jar_with(u: &str, lines: &[&str]) -> CookieJar {
        let jar = CookieJar::new();
        set(&jar, u, lines);
        jar
    }

    #[test]
    fn empty_and_shared() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<CookieJar>();
        let jar = CookieJar::new();
        assert!(jar.is_empty());
        assert_eq!(jar.len(), 0);
        assert!(jar.header_for(&url(H)).is_none() && jar.cookies_for(&url(H)).is_empty());
        set(&jar.clone(), H, &["a=1"]);
        assert_eq!(sent(&jar, H), "a=1");
        let debug = format!("{jar:?}");
        assert_eq!(debug, "CookieJar { len: 1, allow_ip_hosts: false }");
    }

    #[test]
    fn host_only_and_domain_cookies() {
        let jar = jar_with(
            "http://WWW.Example.COM/",
            &["a=1", "b=2; Domain=.EXAMPLE.com"],
        );
        assert_eq!(sent(&jar, "http://www.example.com/x"), "a=1; b=2");
        assert_eq!(sent(&jar, "http://x.y.example.com/"), "b=2");
        assert_eq!(sent(&jar, "http://Example.com/"), "b=2");
        assert_eq!(sent(&jar, "http://notexample.com/"), "");
        assert_eq!(sent(&jar, "http://a.www.example.com/"), "b=2");
    }

    #[test]
    fn foreign_or_single_label_domain_is_refused() {
        let lines = ["a=1; Domain=other.com", "b=2; Domain=sub.www.example.com"];
        let jar = jar_with("http://www.example.com/", &lines);
        let lines = [
            "c=3; Domain=com",
            "d=4; Domain=ample.com",
            "e=5; Domain=127.0.0.1",
        ];
        set(&jar, "http://www.example.com/", &lines);
        assert!(jar.is_empty());
        // A single label is fine for the host that has it, as a host-only cookie.
        set(&jar, "http://localhost/", &["f=6; Domain=localhost"]);
        assert_eq!(sent(&jar, "http://localhost/"), "f=6");
        assert_eq!(sent(&jar, "http://a.localhost/"), "");
    }

    #[test]
    fn default_path_and_path_match() {
        let cases = [
            ("/a/b/c", "/a/b"),
            ("/a", "/"),
            ("/", "/"),
            ("", "/"),
            ("a/b", "/"),
        ];
        for (path, default) in cases {
            assert_eq!(default_path(path), default, "{path}");
        }
        assert!(path_match("/a/b", "/a/b") && path_match("/a/b/c", "/a/b"));
        assert!(path_match("/a/b/c", "/a/"));
        assert!(!path_match("/a/bc", "/a/b") && !path_match("/a", "/a/b"));
        let jar = jar_with("http://h.test/a/b/c?q=1", &["a=1", "b=2; Path=relative"]);
        assert_eq!(sent(&jar, "http://h.test/a/b"), "a=1; b=2");
        assert_eq!(sent(&jar, "http://h.test/a/b/x/y"), "a=1; b=2");
        assert_eq!(
            sent(&jar, "http://h.test/a/bc") + &sent(&jar, "http://h.test/a"),
            ""
        );
    }

    #[test]
    fn longer_paths_first_then_older_and_replacing_keeps_age() {
        let jar = jar_with(H, &["z=1; Path=/", "y=2; Path=/a/b", "x=3; Path=/a", "w=4"]);
        assert_eq!(sent(&jar, "http://h.test/a/b/c"), "y=2; x=3; z=1; w=4");
        set(&jar, H, &["z=5", "x=6; Path=/a/"]);
        assert_eq!(sent(&jar, "http://h.test/a/b/c"), "y=2; x=6; x=3; z=5; w=4");
        let pairs = jar.cookies_for(&url("http://h.test/a"));
        assert_eq!(
            pairs,
            [
                ("x".into(), "3".into()),
                ("z".into(), "5".into()),
                ("w".into(), "4".into())
            ]
        );
    }

    #[test]
    fn secure_cookies_need_https() {
        let jar = jar_with(H, &["a=1; Secure"]);
        assert!(jar.is_empty());
        set(&jar, "https://h.test/", &["a=1; Secure; HttpOnly", "b=2"]);
        assert_eq!(sent(&jar, "https://h.test/"), "a=1; b=2");
        assert_eq!(sent(&jar, "wss://h.test/"), "a=1; b=2");
        assert_eq!(sent(&jar, H), "b=2");
        assert!(jar.all().iter().any(|c| c.http_only() == Some(true)));
        // Plain http may not overwrite or shadow the Secure cookie.
        set(&jar, H, &["a=evil", "a=evil; Path=/x"]);
        assert_eq!(sent(&jar, "https://h.test/x"), "a=1; b=2");
    }

    #[test]
    fn cookie_prefixes_are_enforced() {
        let u = "https://www.h.test/";
        let bad = [
            "__Secure-a=1",
            "__Host-b=2; Secure; Domain=h.test",
            "__host-d=4",
        ];
        let jar = jar_with(u, &bad);
        set(&jar, u, &["__Host-c=3; Secure; Path=/x"]);
        assert!(jar.is_empty());
        set(
            &jar,
            u,
            &[
                "__Secure-a=1; Secure; Domain=h.test",
                "__Host-b=2; Secure; Path=/",
            ],
        );
        assert_eq!(sent(&jar, u), "__Secure-a=1; __Host-b=2");
    }

    #[test]
    fn max_age_wins_and_deletes() {
        let (past, future) = (
            "Thu, 01 Jan 1970 00:00:01 GMT",
            "Wed, 01 Jan 2200 00:00:00 GMT",
        );
        let jar = jar_with(H, &[&format!("a=1; Max-Age=100; Expires={past}")]);
        assert_eq!(sent(&jar, H), "a=1");
        set(&jar, H, &[&format!("a=1; Max-Age=0; Expires={future}")]);
        assert!(jar.is_empty());
        set(
            &jar,
            H,
            &[
                "b=1",
                "c=1",
                "b=2; Max-Age=-5",
                &format!("c=; Expires={past}"),
            ],
        );
        assert!(jar.is_empty());
    }

    #[test]
    fn absurd_lifetimes_are_clamped() {
        let jar = jar_with(
            H,
            &[
                "a=1; Max-Age=99999999999999999999",
                "b=2; Expires=Fri, 31 Dec 9999 23:59:59 GMT",
                "c=3; Expires=Mon, 01 Jan 0001 00:00:00 GMT",
                "d=4; Max-Age=-99999999999999999999",
                "e=5; Expires=Fri, 31 Dec 99999 23:59:59 GMT",
            ],
        );
        let limit = unix_now() + LIFETIME_SECS + 5;
        let all = jar.all();
        let names: Vec<&str> = all.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["a", "b", "e"]);
        for c in &all[..2] {
            assert!(c.expires_datetime().unwrap().unix_timestamp() <= limit);
        }
        assert!(
            all[2].expires_datetime().is_none(),
            "unparsed Expires: session"
        );
    }

    #[test]
    fn expired_cookies_are_never_sent_and_purged() {
        let (jar, u, now) = (CookieJar::new(), url(H), unix_now());
        assert!(jar.store_at(&Cookie::parse("a=1; Max-Age=10").unwrap(), &u, now));
        assert!(jar.store_at(&Cookie::parse("b=2").unwrap(), &u, now));
        let count = |at| jar.with_matching(&u, at, |f| f.len()).unwrap_or(0);
        assert_eq!((count(now), count(now + 10)), (2, 1));
        assert_eq!(jar.read().total, 1, "purged when met");
    }

    #[test]
    fn ip_hosts_need_an_unsafe_jar() {
        let safe = jar_with("http://127.0.0.1/", &["a=1"]);
        set(&safe, "http://[::1]/", &["a=1"]);
        assert!(safe.is_empty() && !safe.add("a", "1", &url("http://10.0.0.1/")));

        let jar = CookieJar::new_unsafe();
        assert!(jar.allows_ip_hosts());
        set(
            &jar,
            "http://127.0.0.1:8080/",
            &["a=1", "b=2; Domain=0.0.1"],
        );
        set(
            &jar,
            "http://[::1]/",
            &["c=3; Domain=::1", "d=4; Domain=[::1]"],
        );
        set(&jar, "http://[::1]/", &["e=5; Domain=example.com"]);
        assert_eq!(sent(&jar, "http://127.0.0.1/"), "a=1");
        assert_eq!(sent(&jar, "http://[0:0::1]/"), "c=3; d=4");
        assert_eq!(sent(&jar, "http://1.127.0.0.1.example/"), "");
        assert_eq!(jar.len(), 3);
    }

    #[test]
    fn per_domain_and_total_caps() {
        let jar = jar_with(H, &["c0=v"]);
        for i in 1..50 {
            set(&jar, H, &[&format!("c{i}=v; Path=/a")]);
        }
        // c0 alone is sent, so c1.. are the least recently used.
        assert_eq!(sent(&jar, H), "c0=v");
        for i in 50..60 {
            set(&jar, H, &[&format!("c{i}=v")]);
        }
        assert_eq!(jar.len(), CookieJar::MAX_PER_DOMAIN);
        let all = jar.all();
        assert_eq!((all[0].name(), all[1].name()), ("c0", "c11"));
        for d in 0..61 {
            for i in 0..50 {
                jar.add(&format!("c{i}"), "v", &url(&format!("http://d{d}.test/")));
            }
        }
        assert_eq!(jar.len(), CookieJar::MAX_TOTAL);
        assert_eq!(sent(&jar, H), "", "the least recently used went first");
        assert_eq!(jar.cookies_for(&url("http://d60.test/")).len(), 50);
    }

    #[test]
    fn values_are_kept_as_sent_and_bad_ones_skipped() {
        let jar = jar_with(H, &["a=\"x y\"", "b=p q", "c=%41=", "d=é"]);
        assert_eq!(sent(&jar, H), "a=\"x y\"; b=p q; c=%41=; d=é");
        jar.clear();
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, HeaderValue::from_bytes(b"a=\xff\xfe").unwrap());
        for line in ["novalue", "=x", "", ";;", "b=1"] {
            headers.append(SET_COOKIE, HeaderValue::from_str(line).unwrap());
        }
        jar.store_response(&url(H), &headers);
        assert_eq!(sent(&jar, H), "b=1");
        set(
            &jar,
            H,
            &[&format!("c={}", "x".repeat(CookieJar::MAX_COOKIE_SIZE))],
        );
        for (name, value) in [("d", "x;y"), ("e", "x\ny"), ("a=b", "x")] {
            assert!(!jar.add(name, value, &url(H)), "{name}");
        }
        assert!(!jar.add("a", "x", &url("file:///tmp/x")));
        assert_eq!(jar.len(), 1);
    }

    #[test]
    fn add_insert_and_all() {
        let (jar, u) = (CookieJar::new(), url("https://h.test/dir/page"));
        assert!(jar.add("a", "1", &u));
        let c = Cookie::build(("b", "2"))
            .domain("h.test")
            .path("/")
            .secure(true);
        assert!(jar.insert(c.build(), &u));
        let c = Cookie::build(("c", "3")).domain("h.test");
        assert!(!jar.insert(c.build(), &url("http://evil.test/")));
        assert_eq!(sent(&jar, "https://h.test/dir/x"), "a=1; b=2");
        assert_eq!(sent(&jar, "https://www.h.test/"), "b=2");
        let all = jar.all();
        assert_eq!(
            (all[0].path(), all[0].domain()),
            (Some("/dir"), Some("h.test"))
        );
        assert_eq!(all[1].secure(), Some(true));
    }

    #[test]
    fn clear_domain_takes_subdomains() {
        let jar = jar_with("http://example.com/", &["a=1"]);
        set(&jar, "http://sub.example.com/", &["b=2"]);
        set(&jar, "http://notexample.com/", &["c=3"]);
        jar.clear_domain(".Example.com");
        assert_eq!(
            (jar.len(), sent(&jar, "http://notexample.com/")),
            (1, "c=3".into())
        );
        jar.clear();
        assert!(jar.is_empty());
    }

    #[test]
    fn save_and_load_round_trip() {
        let jar = CookieJar::new_unsafe();
        let lax = "p=2; Max-Age=3600; Secure; HttpOnly; SameSite=Lax; Path=/";
        set(&jar, "https://h.test/p/q", &["s=1", lax, "x=3; Max-Age=0"]);
        set(&jar, "http://127.0.0.1/", &["ip=4"]);
        let mut buf = Vec::new();
        jar.save(&mut buf).unwrap();
        let loaded = CookieJar::load(buf.as_slice()).unwrap();
        assert!(loaded.allows_ip_hosts() && loaded.len() == 3);
        assert_eq!(sent(&loaded, "https://h.test/p/"), "s=1; p=2");
        assert_eq!(
            sent(&loaded, "http://h.test/p/") + &sent(&loaded, "http://127.0.0.1/"),
            "s=1ip=4"
        );
        let p = loaded.all().into_iter().find(|c| c.name() == "p").unwrap();
        assert_eq!(
            (p.same_site(), p.http_only()),
            (Some(SameSite::Lax), Some(true))
        );

        let path = std::env::temp_dir().join(format!("aiox-jar-{}.json", std::process::id()));
        loaded.save_file(&path).unwrap();
        let again = CookieJar::load_file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(sent(&again, "https://h.test/p/"), "s=1; p=2");
    }

    #[test]
    fn load_rejects_garbage_and_skips_bad_entries() {
        for bad in ["", "{", "[]", r#"{"version":2,"cookies":[]}"#] {
            let err = CookieJar::load(bad.as_bytes()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{bad:?}");
        }
        let json = r#"{"version":1,"cookies":[
            {"name":"ok","value":"1","domain":"H.test","path":"/","host_only":true},
            {"name":"","value":"1","domain":"h.test","path":"/"},
            {"name":"a","value":"1\n","domain":"h.test","path":"/"},
            {"name":"b","value":"1","domain":"h test","path":"/"},
            {"name":"c","value":"1","domain":"h.test","path":"x"},
            {"name":"d","value":"1","domain":"h.test","path":"/","expires":5},
            {"name":"e","value":"1","domain":"127.0.0.1","path":"/"},
            {"name":"f","value":"1","domain":"h.test","path":"/","expires":9223372036854775807}
        ]}"#;
        let jar = CookieJar::load(json.as_bytes()).unwrap();
        assert_eq!(sent(&jar, H), "ok=1; f=1");
        let f = jar.all().into_iter().find(|c| c.name() == "f").unwrap();
        let limit = unix_now() + LIFETIME_SECS + 5;
        assert!(f.expires_datetime().unwrap().unix_timestamp() <= limit);
    }
}
