//! Tracing hooks: aiohttp's `TraceConfig` signals as a trait with no-op defaults.
//! A session without hooks pays one `Option` check per signal site.

use std::sync::Arc;

use aiox_core::client::{CacheOutcome, ConnectObserver, QueueObserver};
use http::{HeaderMap, Method, Version};
use url::Url;

use crate::error::Error;
use crate::response::Response;

/// A request as the hooks see it.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URL of this hop.
    pub url: &'a Url,
    /// The headers (for `on_request_headers_sent`, as written to the connection,
    /// `Host` and `Cookie` included).
    pub headers: &'a HeaderMap,
    /// The HTTP version the request goes out with (for `on_request_headers_sent`;
    /// otherwise HTTP/1.1 as a placeholder).
    pub version: Version,
}

/// Hooks called as requests run, one per aiohttp `TraceConfig` signal; implement the
/// ones you need. They are called synchronously on the request's task, so keep them
/// short. Add them with
/// [`ClientSessionBuilder::trace`](crate::ClientSessionBuilder::trace).
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use aiox_client::{RequestInfo, TraceHooks};
///
/// #[derive(Default)]
/// struct CountReuse(AtomicUsize);
///
/// impl TraceHooks for CountReuse {
///     fn on_connection_reuseconn(&self) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// ```
#[allow(unused_variables)]
pub trait TraceHooks: Send + Sync + 'static {
    /// `send()` was called (once per request, before redirects and retries).
    fn on_request_start(&self, request: &RequestInfo<'_>) {}
    /// A request head was written (once per hop).
    fn on_request_headers_sent(&self, request: &RequestInfo<'_>) {}
    /// A chunk of the request body of `size` bytes was handed to the connection.
    fn on_request_chunk_sent(&self, size: usize) {}
    /// A redirect response arrived and will be followed.
    fn on_request_redirect(&self, request: &RequestInfo<'_>, response: &Response) {}
    /// The final response head arrived.
    fn on_request_end(&self, request: &RequestInfo<'_>, response: &Response) {}
    /// The request failed.
    fn on_request_exception(&self, request: &RequestInfo<'_>, error: &Error) {}
    /// A chunk of a response body of `size` bytes was read.
    fn on_response_chunk_received(&self, size: usize) {}
    /// The request waits in the pool's queue.
    fn on_connection_queued_start(&self) {}
    /// The request left the pool's queue.
    fn on_connection_queued_end(&self) {}
    /// A new connection is being opened.
    fn on_connection_create_start(&self) {}
    /// The new connection is ready (TLS and HTTP handshakes done).
    fn on_connection_create_end(&self) {}
    /// A pooled connection (or HTTP/2 stream on one) is reused.
    fn on_connection_reuseconn(&self) {}
    /// A host name lookup starts.
    fn on_dns_resolvehost_start(&self, host: &str) {}
    /// A host name lookup ended.
    fn on_dns_resolvehost_end(&self, host: &str) {}
    /// The lookup was answered from the DNS cache.
    fn on_dns_cache_hit(&self, host: &str) {}
    /// The lookup was not in the cache.
    fn on_dns_cache_miss(&self, host: &str) {}
}

/// A callback told the size of each body chunk.
pub(crate) type ChunkHook = Arc<dyn Fn(usize) + Send + Sync>;

/// The session's hooks, called in the order they were added.
pub(crate) struct Tracer {
    hooks: Vec<Arc<dyn TraceHooks>>,
}

impl Tracer {
    pub(crate) fn new(hooks: Vec<Arc<dyn TraceHooks>>) -> Option<Arc<Self>> {
        (!hooks.is_empty()).then(|| Arc::new(Self { hooks }))
    }

    pub(crate) fn each(&self, f: impl Fn(&dyn TraceHooks)) {
        for hook in &self.hooks {
            f(hook.as_ref());
        }
    }

    pub(crate) fn chunk_received(&self, size: usize) {
        self.each(|h| h.on_response_chunk_received(size));
    }

    pub(crate) fn chunk_hook(self: &Arc<Self>) -> ChunkHook {
        let tracer = self.clone();
        Arc::new(move |size| tracer.each(|h| h.on_request_chunk_sent(size)))
    }
}

impl ConnectObserver for Tracer {
    fn dns_start(&self, host: &str) {
        self.each(|h| h.on_dns_resolvehost_start(host));
    }

    fn dns_end(&self, host: &str, outcome: CacheOutcome) {
        match outcome {
            // `dns_start` was reported: end it, so start and end always pair up.
            CacheOutcome::Hit => {
                self.each(|h| h.on_dns_cache_hit(host));
                self.each(|h| h.on_dns_resolvehost_end(host));
            }
            CacheOutcome::Miss => {
                self.each(|h| h.on_dns_cache_miss(host));
                self.each(|h| h.on_dns_resolvehost_end(host));
            }
            CacheOutcome::Literal => self.each(|h| h.on_dns_resolvehost_end(host)),
        }
    }
}

impl QueueObserver for Tracer {
    fn queued_start(&self) {
        self.each(|h| h.on_connection_queued_start());
    }

    fn queued_end(&self) {
        self.each(|h| h.on_connection_queued_end());
    }
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("hooks", &self.hooks.len())
            .finish()
    }
}
