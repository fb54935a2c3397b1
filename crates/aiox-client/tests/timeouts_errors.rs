//! Timeouts and connection errors end to end: refused connections, unknown hosts,
//! the total, sock_read, pool_wait and connect timers (each error naming the
//! request), oversized response heads and truncated bodies.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aiox_client::{ClientSession, ClientTimeout, ErrorKind, Method, TimeoutPhase};
use aiox_web::{Application, Body, Bytes, Response};
use support::{RawServer, Server, read_request};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc};

/// Far longer than any timer a test sets, far shorter than the bounds it asserts.
const SHORT: Duration = Duration::from_millis(200);
/// What "quickly" means: generous, so a loaded machine does not fail the test.
const BOUND: Duration = Duration::from_secs(4);

/// `/sleep` answers after 5 s; `/stall` sends one chunk then nothing;
/// `/fast` answers at once.
fn app() -> Application {
    Application::new()
        .any("/sleep", || async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        })
        .get("/stall", || async {
            let first = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(
                b"first chunk",
            ))]);
            let stream = futures_util::StreamExt::chain(first, futures_util::stream::pending());
            Response::stream(Body::from_stream(stream))
        })
        .get("/fast", || async { "fast" })
}

fn assert_request(err: &aiox_client::Error, method: &Method, url: &str) {
    assert_eq!(err.method(), Some(method), "{err:?}");
    assert_eq!(err.url().map(|u| u.as_str()), Some(url), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.contains(method.as_str()) && shown.contains(url),
        "{shown}"
    );
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let session = ClientSession::new();
    let url = support::refused_url("/x");
    let err = session.get(&url).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    assert!(err.is_connect());
    assert!(!err.is_timeout());
    assert_request(&err, &Method::GET, &url);
    assert_eq!(session.pool_stats().open, 0);
}

#[tokio::test]
async fn an_unknown_host_is_a_dns_error() {
    let session = ClientSession::new();
    let url = "http://nonexistent.invalid/";
    let err = session.get(url).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Dns, "{err:?}");
    assert!(err.is_connect());
    assert_request(&err, &Method::GET, url);
}

#[tokio::test]
async fn the_total_timeout_ends_a_slow_request_quickly() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder()
        .timeout(ClientTimeout::default().total(SHORT))
        .build()
        .unwrap();
    let url = server.url("/sleep");
    let started = Instant::now();
    let err = session.get(&url).send().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::Total),
        "{err:?}"
    );
    assert!(err.is_timeout());
    assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Total));
    assert!(started.elapsed() < BOUND, "{:?}", started.elapsed());
    assert_request(&err, &Method::GET, &url);

    // It also covers the body.
    let url = server.url("/stall");
    let resp = session.get(&url).send().await.unwrap();
    let err = resp.bytes().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::Total),
        "{err:?}"
    );
    assert_request(&err, &Method::GET, &url);

    // A fast request is unaffected.
    let text = session.get(&server.url("/fast")).send().await.unwrap();
    assert_eq!(text.text().await.unwrap(), "fast");
}

#[tokio::test]
async fn a_per_request_timeout_replaces_the_total() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder()
        .timeout(ClientTimeout::none())
        .build()
        .unwrap();
    let url = server.url("/sleep");
    let started = Instant::now();
    let err = session.post(&url).timeout(SHORT).send().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::Total),
        "{err:?}"
    );
    assert!(started.elapsed() < BOUND);
    assert_request(&err, &Method::POST, &url);

    // And a longer per-request timeout beats a short session one.
    let session = ClientSession::builder()
        .timeout(ClientTimeout::default().total(Duration::from_millis(1)))
        .build()
        .unwrap();
    let resp = session
        .get(&server.url("/fast"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "fast");
}

#[tokio::test]
async fn sock_read_fires_on_a_slow_head() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder()
        .timeout(ClientTimeout::none().sock_read(SHORT))
        .build()
        .unwrap();
    let url = server.url("/sleep");
    let started = Instant::now();
    let err = session.get(&url).send().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::SockRead),
        "{err:?}"
    );
    assert!(started.elapsed() < BOUND);
    assert_request(&err, &Method::GET, &url);
}

#[tokio::test]
async fn sock_read_fires_on_a_body_that_stalls() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder()
        .timeout(ClientTimeout::none().sock_read(SHORT))
        .build()
        .unwrap();
    let url = server.url("/stall");
    let mut resp = session.get(&url).send().await.unwrap();
    assert_eq!(
        resp.chunk().await.unwrap().as_deref(),
        Some(&b"first chunk"[..])
    );
    let started = Instant::now();
    let err = resp.chunk().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::SockRead),
        "{err:?}"
    );
    assert!(started.elapsed() < BOUND);
    assert_request(&err, &Method::GET, &url);
    // The body is over after the error.
    assert_eq!(resp.chunk().await.unwrap(), None);
    drop(resp);

    let err = session
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::SockRead),
        "{err:?}"
    );
    // The stalled connections were not kept.
    assert_eq!(session.pool_stats().open, 0);
}

/// A server whose `/hold` handler waits for the gate (telling `entered` first).
fn gated() -> (Application, Arc<Semaphore>, mpsc::UnboundedReceiver<()>) {
    let gate = Arc::new(Semaphore::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let g = gate.clone();
    let app = app().get("/hold", move || {
        let (gate, tx) = (g.clone(), tx.clone());
        async move {
            let _ = tx.send(());
            // Each permit lets one request through, once.
            if let Ok(permit) = gate.acquire().await {
                permit.forget();
            }
            "released"
        }
    });
    (app, gate, rx)
}

#[tokio::test]
async fn pool_wait_and_connect_fire_while_the_only_connection_is_busy() {
    let (app, gate, mut entered) = gated();
    let server = Server::start(app).await;
    for (timeout, phase) in [
        (
            ClientTimeout::none().pool_wait(SHORT),
            TimeoutPhase::PoolWait,
        ),
        (ClientTimeout::none().connect(SHORT), TimeoutPhase::Connect),
    ] {
        let session = ClientSession::builder()
            .pool_limit(1)
            .timeout(timeout)
            .build()
            .unwrap();
        let holder = tokio::spawn({
            let (session, url) = (session.clone(), server.url("/hold"));
            async move { session.get(&url).send().await?.text().await }
        });
        entered.recv().await.unwrap();
        let url = server.url("/fast");
        let started = Instant::now();
        let err = session.get(&url).send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout(phase), "{err:?}");
        assert!(started.elapsed() < BOUND);
        assert_request(&err, &Method::GET, &url);
        assert_eq!(session.pool_stats().waiting, 0, "the waiter left the queue");

        gate.add_permits(1);
        assert_eq!(holder.await.unwrap().unwrap(), "released");
        // The connection serves the next request.
        let resp = session.get(&url).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "fast");
        assert_eq!(session.pool_stats().open, 1);
    }
}

#[tokio::test]
async fn a_response_head_over_its_limits_is_a_request_error() {
    let server = RawServer::start(|mut stream, n| async move {
        if read_request(&mut stream).await.is_none() {
            return;
        }
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        if n == 0 {
            // One 200 KiB field.
            head.extend_from_slice(b"X-Big: ");
            head.extend(std::iter::repeat_n(b'a', 200 * 1024));
            head.extend_from_slice(b"\r\n");
        } else {
            // 150 small fields.
            for i in 0..150 {
                head.extend_from_slice(format!("X-Field-{i}: v\r\n").as_bytes());
            }
        }
        head.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
        let _ = stream.write_all(&head).await;
        let _ = stream.shutdown().await;
    })
    .await;
    let session = ClientSession::new();
    for what in ["a 200 KiB head", "150 fields"] {
        let url = server.url("/");
        let err = session.get(&url).send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Request, "{what}: {err:?}");
        assert_request(&err, &Method::GET, &url);
    }
    assert_eq!(session.pool_stats().open, 0);
}

#[tokio::test]
async fn truncated_bodies_are_body_errors() {
    let server = RawServer::start(|mut stream, n| async move {
        if read_request(&mut stream).await.is_none() {
            return;
        }
        let answer: &[u8] = if n == 0 {
            // A chunked body cut inside a chunk.
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nonly part"
        } else {
            // A Content-Length body cut short.
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"
        };
        let _ = stream.write_all(answer).await;
    })
    .await;
    let session = ClientSession::new();
    for what in ["chunked", "content-length"] {
        let url = server.url("/");
        let err = session
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Body, "{what}: {err:?}");
        assert!(err.is_body());
        assert_request(&err, &Method::GET, &url);
    }
}

/// A server that accepts connections and never sends a byte (nor closes them while
/// the test runs).
async fn silent_server() -> RawServer {
    RawServer::start(|stream, _| async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(stream);
    })
    .await
}

#[tokio::test]
async fn a_tls_handshake_that_never_answers_hits_sock_connect() {
    let server = silent_server().await;
    let url = format!("https://{}/", server.addr);
    let session = ClientSession::builder()
        .pool_limit(1)
        .timeout(ClientTimeout::default().sock_connect(SHORT))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = session.get(&url).send().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::SockConnect),
        "{err:?}"
    );
    assert!(started.elapsed() < BOUND);
    assert_request(&err, &Method::GET, &url);
    // The slot came back: the only one of a pool of 1.
    assert_eq!(session.pool_stats().open, 0);
    let fast = Server::start(app()).await;
    let resp = session.get(&fast.url("/fast")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "fast");

    // `connect` covers the handshake too.
    let session = ClientSession::builder()
        .timeout(ClientTimeout::none().connect(SHORT))
        .build()
        .unwrap();
    let err = session.get(&url).send().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::Connect),
        "{err:?}"
    );
}

/// A body of 10 chunks, 50 ms apart: longer in all than `SHORT * 2`, with no gap
/// near it.
fn slow_upload() -> aiox_client::RequestBody {
    let chunks = futures_util::stream::unfold(0, |i| async move {
        if i == 10 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        Some((
            Ok::<_, std::io::Error>(Bytes::from_static(b"0123456789")),
            i + 1,
        ))
    });
    aiox_client::RequestBody::stream(chunks)
}

#[tokio::test]
async fn sock_read_starts_once_the_request_body_is_written() {
    let app = Application::new()
        .post("/upload", |mut req: aiox_web::Request| async move {
            let body = req.bytes().await.unwrap_or_default();
            body.len().to_string()
        })
        .post(
            "/upload-then-sleep",
            |mut req: aiox_web::Request| async move {
                let body = req.bytes().await.unwrap_or_default();
                tokio::time::sleep(Duration::from_secs(5)).await;
                body.len().to_string()
            },
        );
    let server = Server::start(app).await;
    let session = ClientSession::builder()
        .timeout(ClientTimeout::none().sock_read(SHORT * 2))
        .build()
        .unwrap();
    // A slow upload is not a silent server (aiohttp #7149).
    let resp = session
        .post(&server.url("/upload"))
        .body(slow_upload())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "100");
    // Once it is written, the server's silence counts.
    let url = server.url("/upload-then-sleep");
    let started = Instant::now();
    let err = session
        .post(&url)
        .body(slow_upload())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::SockRead),
        "{err:?}"
    );
    assert!(started.elapsed() < BOUND);
    assert_request(&err, &Method::POST, &url);
}
