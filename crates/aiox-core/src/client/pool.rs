//! The client connection pool: aiohttp's `TCPConnector` semantics (a total and a
//! per-host limit on open connections, a fair FIFO queue of waiters, keep-alive reuse
//! with an idle timeout) plus HTTP/2 multiplexing (one connection per origin, a second
//! only when the first has no stream to spare).
//!
//! Resources are handed off, never left for the fastest caller: a connection coming
//! back to the pool goes to the first waiter for its origin, a freed slot to the first
//! waiter the per-host limit allows, so a waiter is never overtaken by a newcomer. A
//! waiter that gives up (its future dropped, e.g. by a timeout) leaves the queue at
//! once, and anything already handed to it goes back to the pool.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::Body;

/// Open connections at most, all origins together: 100, aiohttp's `limit`.
pub const DEFAULT_POOL_LIMIT: usize = 100;
/// Open connections per origin at most: 0 (no limit), aiohttp's `limit_per_host`.
pub const DEFAULT_POOL_LIMIT_PER_HOST: usize = 0;
/// How long an idle keep-alive connection is kept: 15 s, aiohttp's
/// `keepalive_timeout`; shorter than most servers' idle timeouts (nginx 75 s).
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// The pool's limits.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Open connections at most, 0 for no limit ([`DEFAULT_POOL_LIMIT`]).
    pub limit: usize,
    /// Open connections per origin at most, 0 for no limit
    /// ([`DEFAULT_POOL_LIMIT_PER_HOST`]).
    pub limit_per_host: usize,
    /// Idle time after which a keep-alive connection is closed
    /// ([`DEFAULT_POOL_IDLE_TIMEOUT`]).
    pub idle_timeout: Duration,
    /// Close every HTTP/1 connection after its response instead of keeping it
    /// (aiohttp's `force_close`).
    pub force_close: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            limit: DEFAULT_POOL_LIMIT,
            limit_per_host: DEFAULT_POOL_LIMIT_PER_HOST,
            idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            force_close: false,
        }
    }
}

/// What connections are pooled by: the origin (`scheme://host:port`) and anything
/// else that makes a connection unfit for another request (a proxy, a Unix socket,
/// TLS settings), which the client encodes in `route`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    origin: Arc<str>,
    route: Option<Arc<str>>,
}

impl PoolKey {
    /// A key for `origin` reached through `route` (`None`: directly).
    pub fn new(origin: &str, route: Option<&str>) -> Self {
        Self {
            origin: origin.into(),
            route: route.map(Into::into),
        }
    }

    /// The origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// What the pool holds for one origin, for a user to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStats {
    /// The origin.
    pub origin: String,
    /// Idle keep-alive HTTP/1 connections.
    pub idle: usize,
    /// Requests holding a connection (HTTP/1) or a stream (HTTP/2).
    pub in_use: usize,
    /// Connections being established.
    pub connecting: usize,
    /// Open HTTP/2 connections.
    pub http2_connections: usize,
    /// Requests queued for a connection.
    pub waiting: usize,
}

/// A snapshot of the pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections (idle, in use and being established).
    pub open: usize,
    /// Requests queued for a connection, all origins.
    pub waiting: usize,
    /// Per origin, in no particular order.
    pub hosts: Vec<HostStats>,
}

/// A new connection's request sender, from [`handshake`](super::handshake).
#[derive(Debug)]
pub struct Sender(pub(crate) SenderKind);

#[derive(Debug)]
pub(crate) enum SenderKind {
    Http1(http1::SendRequest<Body>),
    /// With the server's SETTINGS_MAX_CONCURRENT_STREAMS, kept current by the
    /// connection's task.
    Http2(http2::SendRequest<Body>, Arc<AtomicUsize>),
}

impl Sender {
    /// True for an HTTP/2 connection.
    pub fn is_http2(&self) -> bool {
        matches!(self.0, SenderKind::Http2(..))
    }
}

enum Grant {
    Idle(http1::SendRequest<Body>),
    Stream(http2::SendRequest<Body>, u64),
    Permit,
    Retry,
}

struct Waiter {
    id: u64,
    key: PoolKey,
    tx: oneshot::Sender<Grant>,
}

struct Idle {
    sender: http1::SendRequest<Body>,
    since: Instant,
}

impl Idle {
    /// Still open and idle for less than `timeout`.
    fn usable(&self, now: Instant, timeout: Duration) -> bool {
        !self.sender.is_closed() && now.duration_since(self.since) < timeout
    }
}

struct H2Conn {
    id: u64,
    sender: http2::SendRequest<Body>,
    max_streams: Arc<AtomicUsize>,
    streams: usize,
}

impl H2Conn {
    fn has_capacity(&self) -> bool {
        // The server's SETTINGS_MAX_CONCURRENT_STREAMS as h2 last saw it.
        !self.sender.is_closed() && self.streams < self.max_streams.load(Ordering::Relaxed).max(1)
    }
}

#[derive(Default)]
struct Host {
    idle: Vec<Idle>,
    h2: Vec<H2Conn>,
    /// Connections counted against the limits: idle, in use, HTTP/2 and connecting.
    open: usize,
    connecting: usize,
    /// Connecting attempts that may turn out HTTP/2: later requests wait for them.
    connecting_may_h2: usize,
    /// The last possibly-HTTP/2 attempt failed: until one succeeds, requests connect
    /// in parallel instead of queueing behind each attempt in turn (else N waiters
    /// on a hanging origin would time out one after another).
    h2_attempt_failed: bool,
    in_use: usize,
}

impl Host {
    /// A stream on an HTTP/2 connection with room, else the most recently used idle
    /// HTTP/1 connection, counted as in use; also how many closed or expired idle
    /// connections were dropped on the way (their slots are the caller's to free).
    /// With `ready_only`, an idle connection still finishing its last exchange stays
    /// in the pool and nothing is taken.
    fn take_pooled(
        &mut self,
        idle_timeout: Duration,
        ready_only: bool,
    ) -> (Option<LeaseConn>, usize) {
        let mut found = None;
        let mut freed = 0;
        if let Some(conn) = self.h2.iter_mut().find(|c| c.has_capacity()) {
            conn.streams += 1;
            found = Some(LeaseConn::H2(conn.sender.clone(), conn.id));
        } else if !self.idle.is_empty() {
            let now = Instant::now();
            while let Some(idle) = self.idle.pop() {
                if !idle.usable(now, idle_timeout) {
                    freed += 1;
                    continue;
                }
                if ready_only && !idle.sender.is_ready() {
                    self.idle.push(idle);
                } else {
                    found = Some(LeaseConn::H1(idle.sender));
                }
                break;
            }
        }
        if found.is_some() {
            self.in_use += 1;
        }
        (found, freed)
    }
}

#[derive(Default)]
struct State {
    open: usize,
    hosts: HashMap<PoolKey, Host, foldhash::fast::RandomState>,
    waiters: VecDeque<Waiter>,
    next_id: u64,
    reaper: bool,
}

struct Shared {
    config: PoolConfig,
    state: Mutex<State>,
}

/// A connection pool; cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Told when a checkout starts and stops waiting for a slot.
pub trait QueueObserver: Send + Sync {
    /// The request joined the queue (the limits are reached).
    fn queued_start(&self) {}
    /// The request left the queue: it got a connection or a slot, or gave up.
    fn queued_end(&self) {}
}

/// Reports the queued span once, ending it on drop (a dropped checkout included).
struct QueuedSpan<'a> {
    observer: Option<&'a (dyn QueueObserver + 'a)>,
    started: bool,
}

impl QueuedSpan<'_> {
    fn start(&mut self) {
        if let (Some(observer), false) = (self.observer, self.started) {
            self.started = true;
            observer.queued_start();
        }
    }
}

impl Drop for QueuedSpan<'_> {
    fn drop(&mut self) {
        if let (Some(observer), true) = (self.observer, self.started) {
            observer.queued_end();
        }
    }
}

/// The result of [`Pool::checkout`].
#[derive(Debug)]
pub enum Checkout {
    /// A pooled connection (or an HTTP/2 stream on one) to send on.
    Reuse(Lease),
    /// A slot to open a new connection in; establish it, or drop the permit.
    Connect(ConnectPermit),
}

/// The right to open one connection for an origin: the slot is counted against the
/// limits until the permit is turned into a [`Lease`] or dropped.
#[must_use = "dropping the permit gives the slot back"]
pub struct ConnectPermit {
    shared: Arc<Shared>,
    key: PoolKey,
    may_h2: bool,
    done: bool,
}

impl std::fmt::Debug for ConnectPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectPermit")
            .field("key", &self.key)
            .finish()
    }
}

/// One request's hold on a connection (HTTP/1) or a stream (HTTP/2). Call
/// [`release`](Lease::release) once the response body was read to its end; a lease
/// dropped otherwise closes its HTTP/1 connection, since unread bytes may remain on it.
pub struct Lease {
    shared: Arc<Shared>,
    key: PoolKey,
    conn: Option<LeaseConn>,
    reused: bool,
}

enum LeaseConn {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>, u64),
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .field("http2", &self.is_http2())
            .field("reused", &self.reused)
            .finish()
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Default for Pool {
    fn default() -> Self {
        Self::new(PoolConfig::default())
    }
}

impl Pool {
    /// An empty pool with `config`'s limits.
    pub fn new(config: PoolConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The limits.
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// A pooled connection for `key`, or the right to open one, waiting in line when
    /// the limits are reached. `may_h2` says a new connection may speak HTTP/2 (TLS
    /// with ALPN `h2`, or prior knowledge): while one is being opened, later requests
    /// wait for it instead of opening more. Cancel-safe: dropping the future leaves
    /// the queue.
    pub async fn checkout(&self, key: &PoolKey, may_h2: bool) -> Checkout {
        self.checkout_observed(key, may_h2, None).await
    }

    /// [`checkout`](Pool::checkout), telling `observer` when the request starts and
    /// stops waiting in the queue (the client's queued-start/end tracing hooks).
    pub async fn checkout_observed(
        &self,
        key: &PoolKey,
        may_h2: bool,
        observer: Option<&(dyn QueueObserver + '_)>,
    ) -> Checkout {
        let mut queued = QueuedSpan {
            observer,
            started: false,
        };
        loop {
            let acquired = {
                let mut state = lock(&self.shared);
                match self.try_acquire(&mut state, key, may_h2) {
                    Ok(checkout) => Ok(checkout),
                    Err(()) => {
                        let (tx, rx) = oneshot::channel();
                        let id = state.next_id;
                        state.next_id += 1;
                        state.waiters.push_back(Waiter {
                            id,
                            key: key.clone(),
                            tx,
                        });
                        Err((id, rx))
                    }
                }
            };
            let mut guard = match acquired {
                Ok(Checkout::Reuse(lease)) => match lease.ready().await {
                    Some(lease) => return Checkout::Reuse(lease),
                    None => continue,
                },
                Ok(connect) => return connect,
                Err((id, rx)) => {
                    queued.start();
                    WaitGuard {
                        shared: &self.shared,
                        key,
                        id,
                        rx: Some(rx),
                    }
                }
            };
            let grant = match guard.rx.as_mut() {
                Some(receiver) => receiver.await,
                None => continue,
            };
            // Received: nothing left for the guard to undo.
            guard.rx = None;
            drop(guard);
            match grant {
                Ok(Grant::Idle(sender)) => {
                    let lease = self.lease(key, LeaseConn::H1(sender), true);
                    if let Some(lease) = lease.ready().await {
                        return Checkout::Reuse(lease);
                    }
                }
                Ok(Grant::Stream(sender, id)) => {
                    return Checkout::Reuse(self.lease(key, LeaseConn::H2(sender, id), true));
                }
                Ok(Grant::Permit) => {
                    if may_h2 {
                        let mut state = lock(&self.shared);
                        state
                            .hosts
                            .entry(key.clone())
                            .or_default()
                            .connecting_may_h2 += 1;
                    }
                    return Checkout::Connect(ConnectPermit {
                        shared: self.shared.clone(),
                        key: key.clone(),
                        may_h2,
                        done: false,
                    });
                }
                // What we waited for changed (an HTTP/2 attempt ended): look again.
                Ok(Grant::Retry) | Err(_) => {}
            }
        }
    }

    /// A pooled connection (or HTTP/2 stream) that can take a request right now, or
    /// `None` (then call [`checkout`](Pool::checkout)). The fast path of a busy
    /// client: no future, no queue; requests already waiting for the origin go first.
    pub fn try_checkout(&self, key: &PoolKey) -> Option<Lease> {
        let mut state = lock(&self.shared);
        if !state.waiters.is_empty() && state.waiters.iter().any(|w| &w.key == key) {
            return None;
        }
        let idle_timeout = self.shared.config.idle_timeout;
        let host = state.hosts.get_mut(key)?;
        // A connection not ready yet is left for `checkout`, which waits for it.
        let (found, freed) = host.take_pooled(idle_timeout, true);
        if freed > 0 {
            free_slots(&self.shared, &mut state, key, freed);
        }
        drop(state);
        found.map(|conn| self.lease(key, conn, true))
    }

    #[inline]
    fn lease(&self, key: &PoolKey, conn: LeaseConn, reused: bool) -> Lease {
        Lease {
            shared: self.shared.clone(),
            key: key.clone(),
            conn: Some(conn),
            reused,
        }
    }

    /// Takes what is available now, or `Err` to wait. Called with the lock held.
    fn try_acquire(&self, state: &mut State, key: &PoolKey, may_h2: bool) -> Result<Checkout, ()> {
        let config = &self.shared.config;
        // Waiters for this origin go first.
        if state.waiters.iter().any(|w| &w.key == key) {
            return Err(());
        }
        let host = state.hosts.entry(key.clone()).or_default();
        // Connections found closed or expired on the way free their slots.
        let before = host.h2.len();
        host.h2.retain(|c| !c.sender.is_closed());
        let closed = before - host.h2.len();
        // `checkout` checks an idle connection is ready before handing it out.
        let (found, freed) = host.take_pooled(config.idle_timeout, false);
        let freed = freed + closed;
        free_slots(&self.shared, state, key, freed);
        if let Some(conn) = found {
            return Ok(Checkout::Reuse(self.lease(key, conn, true)));
        }
        let host = state.hosts.get_mut(key).expect("inserted above");
        // A connection that may be HTTP/2 is being opened: wait for it.
        if may_h2 && host.connecting_may_h2 > 0 && !host.h2_attempt_failed {
            return Err(());
        }
        // A new connection, if the limits allow (evicting another origin's idle
        // connection when only the total limit is in the way).
        if config.limit_per_host != 0 && host.open >= config.limit_per_host {
            return Err(());
        }
        if config.limit != 0 && state.open >= config.limit && !evict_idle(state, key) {
            return Err(());
        }
        let host = state.hosts.get_mut(key).expect("inserted above");
        host.open += 1;
        host.connecting += 1;
        if may_h2 {
            host.connecting_may_h2 += 1;
        }
        state.open += 1;
        Ok(Checkout::Connect(ConnectPermit {
            shared: self.shared.clone(),
            key: key.clone(),
            may_h2,
            done: false,
        }))
    }

    /// What the pool holds now.
    pub fn stats(&self) -> PoolStats {
        let state = lock(&self.shared);
        let mut waiting: HashMap<&PoolKey, usize> = HashMap::new();
        for w in &state.waiters {
            *waiting.entry(&w.key).or_default() += 1;
        }
        PoolStats {
            open: state.open,
            waiting: state.waiters.len(),
            hosts: state
                .hosts
                .iter()
                .filter(|(key, h)| h.open > 0 || waiting.contains_key(key))
                .map(|(key, h)| HostStats {
                    origin: key.origin.to_string(),
                    idle: h.idle.len(),
                    in_use: h.in_use,
                    connecting: h.connecting,
                    http2_connections: h.h2.len(),
                    waiting: waiting.get(key).copied().unwrap_or(0),
                })
                .collect(),
        }
    }

    /// Closes every idle connection now (aiohttp's `connector.close()` for idle ones).
    pub fn close_idle(&self) {
        let mut state = lock(&self.shared);
        let mut freed = 0;
        for host in state.hosts.values_mut() {
            freed += host.idle.len();
            host.open -= host.idle.len();
            host.idle.clear();
        }
        state.open -= freed;
        for _ in 0..freed {
            dispatch_slot(&self.shared, &mut state);
        }
    }
}

/// Closes the oldest idle connection of another origin to make room; false if none.
fn evict_idle(state: &mut State, except: &PoolKey) -> bool {
    let oldest = state
        .hosts
        .iter()
        .filter(|(key, _)| *key != except)
        .filter_map(|(key, h)| h.idle.first().map(|i| (i.since, key.clone())))
        .min_by_key(|(since, _)| *since);
    let Some((_, key)) = oldest else {
        return false;
    };
    let host = state.hosts.get_mut(&key).expect("found above");
    host.idle.remove(0);
    host.open -= 1;
    state.open -= 1;
    true
}

/// `n` connections of `key` closed (or slots reserved for it were given back): the
/// slots go to the first waiters they can serve.
fn free_slots(shared: &Arc<Shared>, state: &mut State, key: &PoolKey, n: usize) {
    if n == 0 {
        return;
    }
    if let Some(host) = state.hosts.get_mut(key) {
        host.open -= n;
    }
    state.open -= n;
    for _ in 0..n {
        dispatch_slot(shared, state);
    }
}

/// Gives a freed slot to the first waiter the per-host limit allows; the slot is
/// counted for it before it wakes. With no such waiter the slot just stays free.
fn dispatch_slot(shared: &Arc<Shared>, state: &mut State) {
    let config = &shared.config;
    let mut i = 0;
    while i < state.waiters.len() {
        let eligible = {
            let key = &state.waiters[i].key;
            let host = state.hosts.get(key);
            let per_host_ok =
                config.limit_per_host == 0 || host.is_none_or(|h| h.open < config.limit_per_host);
            let h2_pending = host.is_some_and(|h| h.connecting_may_h2 > 0 && !h.h2_attempt_failed);
            per_host_ok && !h2_pending
        };
        if !eligible {
            i += 1;
            continue;
        }
        if config.limit != 0 && state.open >= config.limit {
            return;
        }
        let waiter = state.waiters.remove(i).expect("index in range");
        let host = state.hosts.entry(waiter.key.clone()).or_default();
        host.open += 1;
        host.connecting += 1;
        state.open += 1;
        match waiter.tx.send(Grant::Permit) {
            Ok(()) => return,
            Err(_) => {
                // The waiter left just now: undo and try the next.
                let host = state.hosts.get_mut(&waiter.key).expect("inserted above");
                host.open -= 1;
                host.connecting -= 1;
                state.open -= 1;
            }
        }
    }
}

/// Wakes every waiter for `key` to look again (an HTTP/2 attempt ended).
fn retry_waiters(state: &mut State, key: &PoolKey) {
    let waiters = std::mem::take(&mut state.waiters);
    for waiter in waiters {
        if &waiter.key == key {
            let _ = waiter.tx.send(Grant::Retry);
        } else {
            state.waiters.push_back(waiter);
        }
    }
}

/// Removes a waiter from the queue when its future is dropped, and gives back
/// anything handed to it meanwhile.
struct WaitGuard<'a> {
    shared: &'a Arc<Shared>,
    key: &'a PoolKey,
    id: u64,
    rx: Option<oneshot::Receiver<Grant>>,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        {
            let mut state = lock(self.shared);
            state.waiters.retain(|w| w.id != self.id);
        }
        rx.close();
        if let Ok(grant) = rx.try_recv() {
            give_back(self.shared, self.key, grant);
        }
    }
}

/// Returns a grant its waiter left before taking.
fn give_back(shared: &Arc<Shared>, key: &PoolKey, grant: Grant) {
    let mut state = lock(shared);
    match grant {
        Grant::Idle(sender) => {
            if let Some(host) = state.hosts.get_mut(key) {
                host.in_use -= 1;
            }
            release_h1(shared, &mut state, key, sender);
        }
        Grant::Stream(_, id) => end_stream(shared, &mut state, key, id),
        Grant::Permit => {
            if let Some(host) = state.hosts.get_mut(key) {
                host.connecting -= 1;
            }
            free_slots(shared, &mut state, key, 1);
        }
        Grant::Retry => {}
    }
}

impl ConnectPermit {
    fn finish<'s>(&mut self, state: &'s mut State) -> &'s mut Host {
        self.done = true;
        let host = state.hosts.entry(self.key.clone()).or_default();
        host.connecting -= 1;
        if self.may_h2 {
            host.connecting_may_h2 -= 1;
            // Whether it failed: `establish` and `drop` correct this below.
            host.h2_attempt_failed = false;
        }
        host
    }

    /// The new connection is up: turns the permit into a lease on it (an HTTP/2
    /// connection also serves the requests that waited for it).
    pub fn establish(mut self, sender: Sender) -> Lease {
        let shared = self.shared.clone();
        let key = self.key.clone();
        let mut state = lock(&shared);
        let was_may_h2 = self.may_h2;
        let conn = match sender.0 {
            SenderKind::Http1(sender) => {
                let host = self.finish(&mut state);
                host.in_use += 1;
                if was_may_h2 {
                    retry_waiters(&mut state, &key);
                }
                LeaseConn::H1(sender)
            }
            SenderKind::Http2(sender, max_streams) => {
                let id = state.next_id;
                state.next_id += 1;
                let host = self.finish(&mut state);
                host.in_use += 1;
                host.h2.push(H2Conn {
                    id,
                    sender: sender.clone(),
                    max_streams,
                    streams: 1,
                });
                hand_out_streams(&mut state, &key);
                retry_waiters(&mut state, &key);
                LeaseConn::H2(sender, id)
            }
        };
        drop(state);
        Lease {
            shared,
            key,
            conn: Some(conn),
            reused: false,
        }
    }
}

impl Drop for ConnectPermit {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let shared = self.shared.clone();
        let key = self.key.clone();
        let mut state = lock(&shared);
        let host = self.finish(&mut state);
        if self.may_h2 {
            host.h2_attempt_failed = true;
            retry_waiters(&mut state, &key);
        }
        free_slots(&shared, &mut state, &key, 1);
    }
}

/// Hands free streams of `key`'s HTTP/2 connections to its waiters, in order.
fn hand_out_streams(state: &mut State, key: &PoolKey) {
    loop {
        let Some(pos) = state.waiters.iter().position(|w| &w.key == key) else {
            return;
        };
        let Some(host) = state.hosts.get_mut(key) else {
            return;
        };
        let Some(conn) = host.h2.iter_mut().find(|c| c.has_capacity()) else {
            return;
        };
        conn.streams += 1;
        host.in_use += 1;
        let grant = Grant::Stream(conn.sender.clone(), conn.id);
        let id = conn.id;
        let waiter = state.waiters.remove(pos).expect("found above");
        if waiter.tx.send(grant).is_err() {
            let host = state.hosts.get_mut(key).expect("found above");
            host.in_use -= 1;
            if let Some(conn) = host.h2.iter_mut().find(|c| c.id == id) {
                conn.streams -= 1;
            }
        }
    }
}

impl Lease {
    /// Waits until a reused HTTP/1 connection can take a request; `None` (and the
    /// slot freed) if the server closed it meanwhile.
    async fn ready(mut self) -> Option<Self> {
        match self.conn.as_mut() {
            Some(LeaseConn::H1(sender)) => sender.ready().await.ok().map(|()| self),
            _ => Some(self),
        }
    }

    /// True if this is an HTTP/2 stream.
    pub fn is_http2(&self) -> bool {
        matches!(self.conn, Some(LeaseConn::H2(..)))
    }

    /// True if the connection served an earlier request.
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// Sends `req` on the connection.
    pub fn send_request(
        &mut self,
        req: Request<Body>,
    ) -> impl std::future::Future<Output = hyper::Result<Response<Incoming>>> + Send + 'static {
        use futures_util::FutureExt;
        match self.conn.as_mut() {
            Some(LeaseConn::H1(sender)) => sender.send_request(req).left_future(),
            Some(LeaseConn::H2(sender, _)) => sender.send_request(req).right_future(),
            None => unreachable!("a lease always holds a connection until it is consumed"),
        }
    }

    /// The response was read to its end: the connection (or stream) goes back to the
    /// pool. With `keep_alive` false (the response said `Connection: close`) an
    /// HTTP/1 connection is closed instead.
    pub fn release(mut self, keep_alive: bool) {
        let conn = self.conn.take();
        let shared = self.shared.clone();
        let mut state = lock(&shared);
        match conn {
            Some(LeaseConn::H1(sender)) => {
                let reusable = keep_alive && !shared.config.force_close && !sender.is_closed();
                let host = state.hosts.entry(self.key.clone()).or_default();
                host.in_use -= 1;
                if !reusable {
                    drop(sender);
                    free_slots(&shared, &mut state, &self.key, 1);
                    return;
                }
                release_h1(&shared, &mut state, &self.key, sender);
            }
            Some(LeaseConn::H2(_, id)) => end_stream(&shared, &mut state, &self.key, id),
            None => {}
        }
    }
}

/// An HTTP/1 connection back from a request: to the first waiter for its origin, or
/// closed for a waiter of another origin blocked on the total limit, or kept idle.
fn release_h1(
    shared: &Arc<Shared>,
    state: &mut State,
    key: &PoolKey,
    mut sender: http1::SendRequest<Body>,
) {
    while let Some(pos) = state.waiters.iter().position(|w| &w.key == key) {
        let waiter = state.waiters.remove(pos).expect("found above");
        let host = state.hosts.entry(key.clone()).or_default();
        host.in_use += 1;
        match waiter.tx.send(Grant::Idle(sender)) {
            Ok(()) => return,
            Err(Grant::Idle(back)) => {
                let host = state.hosts.get_mut(key).expect("inserted above");
                host.in_use -= 1;
                sender = back;
            }
            Err(_) => return,
        }
    }
    let other_waits =
        shared.config.limit != 0 && state.open >= shared.config.limit && !state.waiters.is_empty();
    if other_waits {
        drop(sender);
        free_slots(shared, state, key, 1);
        return;
    }
    let host = state.hosts.entry(key.clone()).or_default();
    host.idle.push(Idle {
        sender,
        since: Instant::now(),
    });
    start_reaper(shared, state);
}

/// A stream of an HTTP/2 connection ended: to the next waiter for the origin; a
/// connection found closed frees its slot.
fn end_stream(shared: &Arc<Shared>, state: &mut State, key: &PoolKey, id: u64) {
    let mut closed = 0;
    if let Some(host) = state.hosts.get_mut(key) {
        host.in_use -= 1;
        if let Some(pos) = host.h2.iter().position(|c| c.id == id) {
            let conn = &mut host.h2[pos];
            conn.streams -= 1;
            if conn.sender.is_closed() {
                host.h2.remove(pos);
                closed = 1;
            }
        }
    }
    free_slots(shared, state, key, closed);
    hand_out_streams(state, key);
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let shared = self.shared.clone();
        let mut state = lock(&shared);
        match conn {
            LeaseConn::H1(sender) => {
                // Not released: the response may not have been read to its end, so the
                // connection cannot carry another request.
                drop(sender);
                if let Some(host) = state.hosts.get_mut(&self.key) {
                    host.in_use -= 1;
                }
                free_slots(&shared, &mut state, &self.key, 1);
            }
            LeaseConn::H2(_, id) => end_stream(&shared, &mut state, &self.key, id),
        }
    }
}

/// Closes idle connections past the idle timeout in the background, while there are
/// any; holds the pool weakly, so a dropped pool ends it.
fn start_reaper(shared: &Arc<Shared>, state: &mut State) {
    if state.reaper {
        return;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    state.reaper = true;
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let period = (shared.config.idle_timeout / 2).max(Duration::from_millis(100));
    handle.spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            let Some(shared) = weak.upgrade() else {
                return;
            };
            let mut state = lock(&shared);
            let now = Instant::now();
            let timeout = shared.config.idle_timeout;
            let mut freed = 0;
            let mut any_idle = false;
            for host in state.hosts.values_mut() {
                let before = host.idle.len();
                host.idle.retain(|i| i.usable(now, timeout));
                let gone = before - host.idle.len();
                host.open -= gone;
                freed += gone;
                any_idle |= !host.idle.is_empty();
            }
            state.open -= freed;
            for _ in 0..freed {
                dispatch_slot(&shared, &mut state);
            }
            state.hosts.retain(|_, h| h.open > 0);
            if !any_idle {
                state.reaper = false;
                return;
            }
        }
    });
}
