//! The client engine end to end against aiox-core's own server on 127.0.0.1:0: pool
//! reuse, the total limit under 1,000 concurrent requests, a waiter that gives up,
//! a half-read response, and HTTP/2 multiplexing on one connection.
#![cfg(feature = "client")]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aiox_core::Body;
use aiox_core::client::{Checkout, Connector, Lease, Pool, PoolConfig, PoolKey, Target, handshake};
use aiox_core::server::{Listener, Server, ServerConfig, service_fn};
use bytes::Bytes;
use http_body_util::BodyExt;

/// A server that answers `/` with "ok", `/big` with 1 MiB, and records each
/// connection's remote address.
async fn serve() -> (SocketAddr, Arc<Mutex<HashSet<SocketAddr>>>) {
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let record = seen.clone();
    let service = service_fn(move |req, conn| {
        if let Some(remote) = conn.remote_addr() {
            record.lock().unwrap().insert(remote);
        }
        async move {
            let body = match req.uri().path() {
                "/big" => Body::from(vec![b'x'; 1 << 20]),
                _ => Body::from("ok"),
            };
            http::Response::new(body)
        }
    });
    let server = Server::new(service, ServerConfig::default());
    let listener = Listener::bind_tcp("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().tcp().unwrap();
    tokio::spawn(async move { server.serve(listener).await });
    (addr, seen)
}

/// Checks out a connection for `addr` (opening one if the pool says so) and sends
/// `GET path`.
async fn lease_and_send(
    pool: &Pool,
    addr: SocketAddr,
    path: &str,
    http2: bool,
) -> (Lease, http::Response<hyper::body::Incoming>) {
    let key = PoolKey::new(&format!("http://{addr}"), None);
    let mut lease = match pool.checkout(&key, http2).await {
        Checkout::Reuse(lease) => lease,
        Checkout::Connect(permit) => {
            let target = Target::Host {
                host: addr.ip().to_string(),
                port: addr.port(),
            };
            let stream = Connector::default().connect(&target, None).await.unwrap();
            permit.establish(handshake(stream, http2).await.unwrap())
        }
    };
    let req = http::Request::builder()
        .uri(format!("http://{addr}{path}"))
        .version(if http2 {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        })
        .header(http::header::HOST, addr.to_string())
        .body(Body::empty())
        .unwrap();
    let res = lease.send_request(req).await.unwrap();
    (lease, res)
}

async fn get(pool: &Pool, addr: SocketAddr, path: &str, http2: bool) -> (Bytes, bool) {
    let (lease, res) = lease_and_send(pool, addr, path, http2).await;
    let reused = lease.is_reused();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    lease.release(true);
    (body, reused)
}

#[tokio::test]
async fn a_released_connection_is_reused() {
    let (addr, seen) = serve().await;
    let pool = Pool::default();
    let (body, reused) = get(&pool, addr, "/", false).await;
    assert_eq!((&body[..], reused), (&b"ok"[..], false));
    let stats = pool.stats();
    assert_eq!((stats.open, stats.hosts[0].idle), (1, 1), "{stats:?}");
    let (_, reused) = get(&pool, addr, "/", false).await;
    assert!(reused);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_limit_holds_under_1000_concurrent_requests() {
    let (addr, seen) = serve().await;
    let pool = Pool::new(PoolConfig {
        limit: 8,
        ..PoolConfig::default()
    });
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { get(&pool, addr, "/", false).await.0 })
        })
        .collect();
    for task in tasks {
        assert_eq!(&task.await.unwrap()[..], b"ok");
    }
    // Every connection the server saw came from the pool, and none was closed and
    // replaced, so the distinct connections bound the open ones at any moment.
    let connections = seen.lock().unwrap().len();
    assert!(
        connections <= 8,
        "{connections} connections for a limit of 8"
    );
    let stats = pool.stats();
    assert_eq!((stats.open, stats.waiting), (connections, 0), "{stats:?}");
}

#[tokio::test]
async fn a_waiter_that_gives_up_leaves_the_queue() {
    let (addr, _) = serve().await;
    let pool = Pool::new(PoolConfig {
        limit: 1,
        ..PoolConfig::default()
    });
    let (held, res) = lease_and_send(&pool, addr, "/", false).await;
    let key = PoolKey::new(&format!("http://{addr}"), None);
    let waited = tokio::time::timeout(Duration::from_millis(50), pool.checkout(&key, false)).await;
    assert!(
        waited.is_err(),
        "the limit of 1 let a second connection through"
    );
    assert_eq!(pool.stats().waiting, 0, "the waiter stayed queued");

    // The held connection comes back and goes to the next caller at once.
    res.into_body().collect().await.unwrap();
    held.release(true);
    let (_, reused) = tokio::time::timeout(Duration::from_secs(5), get(&pool, addr, "/", false))
        .await
        .expect("the freed connection was handed out");
    assert!(reused);
}

#[tokio::test]
async fn a_half_read_response_is_not_reused() {
    let (addr, seen) = serve().await;
    let pool = Pool::default();
    let (lease, res) = lease_and_send(&pool, addr, "/big", false).await;
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);
    drop(lease);
    assert_eq!(pool.stats().open, 0, "{:?}", pool.stats());
    let (body, reused) = get(&pool, addr, "/", false).await;
    assert_eq!((&body[..], reused), (&b"ok"[..], false));
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_requests_share_one_connection() {
    let (addr, seen) = serve().await;
    let pool = Pool::default();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { get(&pool, addr, "/", true).await.0 })
        })
        .collect();
    for task in tasks {
        assert_eq!(&task.await.unwrap()[..], b"ok");
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "HTTP/2 opened more than one connection"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.open, stats.hosts[0].http2_connections),
        (1, 1),
        "{stats:?}"
    );
}
