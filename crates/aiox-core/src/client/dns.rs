//! Host name resolution for the client: the system resolver (`getaddrinfo` on
//! tokio's blocking pool, never on the async worker threads) or, with the `hickory`
//! feature, hickory-resolver's async stub resolver, behind a per-host TTL cache,
//! aiohttp's `ttl_dns_cache`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, ErrorKind};

/// How long a resolved host stays in the cache: 10 s, aiohttp's `ttl_dns_cache`
/// default. `None` on the connector turns the cache off.
pub const DEFAULT_DNS_CACHE_TTL: Duration = Duration::from_secs(10);

/// Hosts kept in the cache at most; the oldest entries are dropped beyond it (a crawler
/// visiting millions of hosts must not grow the cache without bound). Judgement: far
/// above the hosts a pool of 100 connections talks to at once.
pub const DEFAULT_DNS_CACHE_HOSTS: usize = 10_000;

/// Whether a lookup was answered from the cache (reported to tracing hooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Answered from the cache.
    Hit,
    /// Resolved now (and cached if the cache is on).
    Miss,
    /// The host is an IP literal: nothing to resolve.
    Literal,
}

#[derive(Debug)]
struct Entry {
    addrs: Arc<[SocketAddr]>,
    expires: Instant,
}

/// Who answers the lookups the cache misses.
#[derive(Debug, Clone)]
enum Backend {
    /// `getaddrinfo` on tokio's blocking pool.
    System,
    /// hickory-resolver on the async threads (boxed behind an `Arc`: its options are
    /// large and the resolver is cloned with every connector).
    #[cfg(feature = "hickory")]
    Hickory(Arc<hickory_resolver::TokioResolver>),
}

/// A resolver with a TTL cache; cheap to clone (the cache is shared).
#[derive(Debug, Clone)]
pub struct Resolver {
    backend: Backend,
    ttl: Option<Duration>,
    max_hosts: usize,
    cache: Arc<Mutex<HashMap<(String, u16), Entry>>>,
}

impl Default for Resolver {
    fn default() -> Self {
        Self::new(Some(DEFAULT_DNS_CACHE_TTL))
    }
}

impl Resolver {
    /// A resolver asking the system (`getaddrinfo` on tokio's blocking pool) and
    /// caching answers for `ttl` (`None`: no cache).
    pub fn new(ttl: Option<Duration>) -> Self {
        Self::with_backend(Backend::System, ttl)
    }

    /// A resolver asking hickory-resolver instead of `getaddrinfo`, caching answers
    /// for `ttl` (`None`: no cache). Its name servers, search domains and options come
    /// from `/etc/resolv.conf` (the registry on Windows), and `/etc/hosts` is read
    /// first; A and AAAA are asked for together so happy eyeballs gets both families.
    ///
    /// When the system configuration cannot be read this is an error of kind
    /// [`ErrorKind::Config`](crate::ErrorKind::Config), rather than a silent switch to
    /// hickory's built-in public name servers.
    ///
    /// Reads two small files synchronously; make the resolver once, not per request.
    #[cfg(feature = "hickory")]
    pub fn hickory(ttl: Option<Duration>) -> Result<Self, Error> {
        // No silent fallback: hickory's default configuration is a public resolver,
        // and sending a program's lookups there unasked is not ours to decide.
        let (config, options) = hickory_resolver::system_conf::read_system_conf().map_err(|e| {
            Error::config(
                "could not read the system DNS configuration (/etc/resolv.conf) for hickory",
                Some(Box::new(e)),
            )
        })?;
        Ok(Self::with_hickory(config, options, ttl))
    }

    #[cfg(feature = "hickory")]
    fn with_hickory(
        config: hickory_resolver::config::ResolverConfig,
        mut options: hickory_resolver::config::ResolverOpts,
        ttl: Option<Duration>,
    ) -> Self {
        // getaddrinfo answers with both families; hickory's default asks for AAAA
        // only when A fails, which would leave happy eyeballs one family.
        options.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
        let resolver = hickory_resolver::TokioResolver::builder_with_config(
            config,
            hickory_resolver::name_server::TokioConnectionProvider::default(),
        )
        .with_options(options)
        .build();
        Self::with_backend(Backend::Hickory(Arc::new(resolver)), ttl)
    }

    fn with_backend(backend: Backend, ttl: Option<Duration>) -> Self {
        Self {
            backend,
            ttl: ttl.filter(|ttl| !ttl.is_zero()),
            max_hosts: DEFAULT_DNS_CACHE_HOSTS,
            cache: Arc::default(),
        }
    }

    /// Resolves `host:port` to its addresses in the resolver's order, with where the
    /// answer came from. IP literals (IPv6 with or without brackets) are not looked up.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Result<(Arc<[SocketAddr]>, CacheOutcome), Error> {
        let bare = bare_host(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok((
                Arc::from([SocketAddr::new(ip, port)]),
                CacheOutcome::Literal,
            ));
        }
        let key = (bare.to_ascii_lowercase(), port);
        if self.ttl.is_some() {
            let now = Instant::now();
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = cache.get(&key).filter(|e| e.expires > now) {
                return Ok((entry.addrs.clone(), CacheOutcome::Hit));
            }
        }
        let addrs = self.lookup(&key.0, port).await?;
        if addrs.is_empty() {
            return Err(Error::new(
                ErrorKind::Dns,
                "the host name resolved to no address",
                None,
            ));
        }
        if let Some(ttl) = self.ttl {
            let now = Instant::now();
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= self.max_hosts {
                cache.retain(|_, e| e.expires > now);
                if cache.len() >= self.max_hosts {
                    // Still full of live entries: drop the one closest to expiry.
                    if let Some(oldest) = cache
                        .iter()
                        .min_by_key(|(_, e)| e.expires)
                        .map(|(k, _)| k.clone())
                    {
                        cache.remove(&oldest);
                    }
                }
            }
            cache.insert(
                key,
                Entry {
                    addrs: addrs.clone(),
                    expires: now + ttl,
                },
            );
        }
        Ok((addrs, CacheOutcome::Miss))
    }

    /// Asks the backend, bypassing the cache.
    async fn lookup(&self, host: &str, port: u16) -> Result<Arc<[SocketAddr]>, Error> {
        match &self.backend {
            Backend::System => tokio::net::lookup_host((host, port))
                .await
                .map(Iterator::collect)
                .map_err(lookup_error),
            #[cfg(feature = "hickory")]
            Backend::Hickory(resolver) => resolver
                .lookup_ip(host)
                .await
                .map(|ips| ips.iter().map(|ip| SocketAddr::new(ip, port)).collect())
                .map_err(lookup_error),
        }
    }

    /// Forgets every cached answer (aiohttp's `clear_dns_cache`), hickory's own
    /// record cache included.
    pub fn clear(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
        #[cfg(feature = "hickory")]
        if let Backend::Hickory(resolver) = &self.backend {
            resolver.clear_cache();
        }
    }
}

fn lookup_error(e: impl Into<crate::error::BoxError>) -> Error {
    Error::new(
        ErrorKind::Dns,
        "could not resolve the host name",
        Some(e.into()),
    )
}

/// `host` without the brackets of an IPv6 literal (`[::1]` -> `::1`).
pub(crate) fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Orders addresses for happy eyeballs (RFC 8305 section 4): alternate families,
/// starting with the family of the resolver's first answer.
pub(crate) fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let first_v6 = first.is_ipv6();
    let (mut preferred, mut other): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.iter().partition(|a| a.is_ipv6() == first_v6);
    preferred.reverse();
    other.reverse();
    let mut out = Vec::with_capacity(addrs.len());
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_families_starting_with_the_first_answer() {
        let v6 = |n: u16| SocketAddr::new("::1".parse().unwrap(), n);
        let v4 = |n: u16| SocketAddr::new("127.0.0.1".parse().unwrap(), n);
        let out = interleave(&[v6(1), v6(2), v6(3), v4(4)]);
        assert_eq!(out, vec![v6(1), v4(4), v6(2), v6(3)]);
        let out = interleave(&[v4(1), v4(2), v6(3), v6(4)]);
        assert_eq!(out, vec![v4(1), v6(3), v4(2), v6(4)]);
        assert!(interleave(&[]).is_empty());
    }

    #[tokio::test]
    async fn literals_are_not_looked_up_and_names_are_cached() {
        let resolver = Resolver::default();
        let (addrs, outcome) = resolver.resolve("[::1]", 80).await.unwrap();
        assert_eq!((addrs[0].port(), outcome), (80, CacheOutcome::Literal));
        let (_, outcome) = resolver.resolve("127.0.0.1", 1).await.unwrap();
        assert_eq!(outcome, CacheOutcome::Literal);
        let (first, outcome) = resolver.resolve("localhost", 8080).await.unwrap();
        assert_eq!(outcome, CacheOutcome::Miss);
        assert!(
            first
                .iter()
                .all(|a| a.port() == 8080 && a.ip().is_loopback())
        );
        let (_, outcome) = resolver.resolve("LOCALHOST", 8080).await.unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
        resolver.clear();
        let (_, outcome) = resolver.resolve("localhost", 8080).await.unwrap();
        assert_eq!(outcome, CacheOutcome::Miss);
    }

    #[tokio::test]
    async fn an_unresolvable_name_is_a_dns_error() {
        let err = Resolver::new(None)
            .resolve("no-such-host.invalid", 80)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dns);
    }

    /// A hickory resolver that can never reach the network: no name servers, no
    /// search domains, and a short timeout should hickory try anyway.
    #[cfg(feature = "hickory")]
    fn offline_hickory(ttl: Option<Duration>) -> Resolver {
        let mut options = hickory_resolver::config::ResolverOpts::default();
        options.timeout = Duration::from_millis(200);
        options.attempts = 0;
        Resolver::with_hickory(
            hickory_resolver::config::ResolverConfig::new(),
            options,
            ttl,
        )
    }

    /// Far above what any of these lookups needs; only a hang reaches it.
    #[cfg(feature = "hickory")]
    const HANG: Duration = Duration::from_secs(30);

    #[cfg(feature = "hickory")]
    #[tokio::test]
    async fn hickory_resolves_localhost_and_caches_it() {
        let resolver = Resolver::hickory(Some(DEFAULT_DNS_CACHE_TTL)).unwrap();
        let (addrs, outcome) = tokio::time::timeout(HANG, resolver.resolve("localhost", 8080))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome, CacheOutcome::Miss);
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 8080 && a.ip().is_loopback())
        );
        let (_, outcome) = resolver.resolve("LOCALHOST", 8080).await.unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
        let (_, outcome) = resolver.resolve("[::1]", 8080).await.unwrap();
        assert_eq!(outcome, CacheOutcome::Literal);
    }

    #[cfg(feature = "hickory")]
    #[tokio::test]
    async fn hickory_reads_localhost_without_any_name_server() {
        let resolver = offline_hickory(None);
        let (addrs, outcome) = tokio::time::timeout(HANG, resolver.resolve("localhost", 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome, CacheOutcome::Miss);
        assert!(addrs.iter().all(|a| a.port() == 1 && a.ip().is_loopback()));
    }

    #[cfg(feature = "hickory")]
    #[tokio::test]
    async fn hickory_failures_are_dns_errors_and_do_not_hang() {
        let resolver = offline_hickory(Some(DEFAULT_DNS_CACHE_TTL));
        for host in ["no-such-host.invalid", "no-such-host.example"] {
            let err = tokio::time::timeout(HANG, resolver.resolve(host, 80))
                .await
                .unwrap()
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Dns, "{host}");
            assert!(std::error::Error::source(&err).is_some(), "{host}");
        }
        // Failures are not cached.
        assert!(resolver.cache.lock().unwrap().is_empty());
    }
}
