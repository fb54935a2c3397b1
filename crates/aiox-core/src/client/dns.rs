//! Host name resolution for the client: the system resolver (`getaddrinfo` on
//! tokio's blocking pool, never on the async worker threads) behind a per-host TTL
//! cache, aiohttp's `ttl_dns_cache`.

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

/// A resolver with a TTL cache; cheap to clone (the cache is shared).
#[derive(Debug, Clone)]
pub struct Resolver {
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
    /// A resolver caching answers for `ttl` (`None`: no cache).
    pub fn new(ttl: Option<Duration>) -> Self {
        Self {
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
        let addrs: Arc<[SocketAddr]> = tokio::net::lookup_host((key.0.as_str(), port))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Dns,
                    "could not resolve the host name",
                    Some(Box::new(e)),
                )
            })?
            .collect::<Vec<_>>()
            .into();
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

    /// Forgets every cached answer (aiohttp's `clear_dns_cache`).
    pub fn clear(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
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
}
