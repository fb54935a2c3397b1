//! End-to-end tests of graceful shutdown (HARDENING case 41): accepting stops, the
//! in-flight request finishes with `Connection: close` (HTTP/1) or under GOAWAY
//! (HTTP/2), idle connections close at once, and the grace period bounds the wait.

mod support {
    pub(crate) mod wire;
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use aiox_web::test::TestClient;
use aiox_web::{Application, BoxError, Bytes, ServerConfig};
use http::StatusCode;
use support::wire::{SOON, Wire, get};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::timeout;

/// Signals between the test and a slow handler, and from the shutdown hook.
#[derive(Clone, Default)]
struct Signals {
    /// The slow handler is running.
    started: Arc<Notify>,
    /// Lets the slow handler finish.
    release: Arc<Notify>,
    /// The `on_shutdown` hook ran: every site has stopped accepting.
    stopped: Arc<Notify>,
}

/// `/slow` waits for `release`; `/stuck` never finishes.
fn app(signals: &Signals) -> Application {
    let slow = signals.clone();
    let stuck = signals.clone();
    let hook = signals.clone();
    Application::new()
        .get("/", || async { "ok" })
        .get("/slow", move || {
            let s = slow.clone();
            async move {
                s.started.notify_one();
                s.release.notified().await;
                "slow done"
            }
        })
        .get("/stuck", move || {
            let s = stuck.clone();
            async move {
                s.started.notify_one();
                std::future::pending::<&'static str>().await
            }
        })
        .on_shutdown(move |_ctx| {
            let stopped = hook.stopped.clone();
            async move {
                stopped.notify_one();
                Ok::<(), BoxError>(())
            }
        })
}

async fn wait(notify: &Notify, what: &str) {
    timeout(SOON, notify.notified())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// Asserts that a new connection to `addr` is refused, or closed without a response.
async fn assert_not_served(addr: std::net::SocketAddr) {
    match TcpStream::connect(addr).await {
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused),
        Ok(stream) => {
            let mut wire = Wire::new(stream);
            let _ = wire.try_send(&get("/")).await;
            let (bytes, closed) = wire.read_to_close(SOON).await;
            assert!(closed.is_some(), "a connection after shutdown stayed open");
            assert!(
                bytes.is_empty(),
                "a connection after shutdown was answered: {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

#[tokio::test]
async fn shutdown_lets_the_in_flight_request_finish_with_connection_close() {
    let signals = Signals::default();
    let config = ServerConfig::default().shutdown_grace(Duration::from_secs(30));
    let client = TestClient::with_config(app(&signals), config)
        .await
        .unwrap();
    let addr = client.addr();
    let mut wire = Wire::connect(addr).await;
    wire.send(&get("/slow")).await;
    wait(&signals.started, "the slow handler runs").await;

    let closing = tokio::spawn(client.close());
    wait(&signals.stopped, "the sites stopped").await;
    assert_not_served(addr).await;
    assert!(
        !closing.is_finished(),
        "shutdown returned with a request in flight"
    );

    signals.release.notify_one();
    let res = wire.response().await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.text(), "slow done");
    assert!(res.says_close(), "no `Connection: close`: {res:?}");
    wire.assert_closed().await;
    timeout(SOON, closing)
        .await
        .expect("shutdown did not return after the last request")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_returns_after_the_grace_period_when_a_handler_never_finishes() {
    let signals = Signals::default();
    let config = ServerConfig::default().shutdown_grace(Duration::from_millis(500));
    let client = TestClient::with_config(app(&signals), config)
        .await
        .unwrap();
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(&get("/stuck")).await;
    wait(&signals.started, "the stuck handler runs").await;

    let started = Instant::now();
    timeout(SOON, client.close())
        .await
        .expect("shutdown did not return after the grace period")
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400),
        "shutdown returned before the grace period: {elapsed:?}"
    );
    // The connection was closed without a response.
    wire.assert_closed().await;
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_at_once() {
    let signals = Signals::default();
    let config = ServerConfig::default().shutdown_grace(Duration::from_secs(30));
    let client = TestClient::with_config(app(&signals), config)
        .await
        .unwrap();
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut wire = Wire::connect(client.addr()).await;
        wire.send(&get("/")).await;
        let res = wire.response().await;
        assert_eq!(res.status, 200);
        assert!(!res.says_close());
        idle.push(wire);
    }
    // With a 30 s grace, returning within 5 s means nothing waited for the idle ones.
    timeout(SOON, client.close())
        .await
        .expect("shutdown waited for idle connections")
        .unwrap();
    for wire in &mut idle {
        wire.assert_closed().await;
    }
}

#[tokio::test]
async fn http2_shutdown_sends_goaway_and_finishes_the_in_flight_stream() {
    let signals = Signals::default();
    let config = ServerConfig::default().shutdown_grace(Duration::from_secs(30));
    let client = TestClient::with_config(app(&signals), config)
        .await
        .unwrap();
    let tcp = TcpStream::connect(client.addr()).await.unwrap();
    let (sender, conn) = h2::client::handshake(tcp).await.unwrap();
    let conn = tokio::spawn(conn);

    let slow = {
        let sender = sender.clone();
        tokio::spawn(async move { h2_get(sender, "/slow").await })
    };
    wait(&signals.started, "the slow handler runs").await;

    let closing = tokio::spawn(client.close());
    wait(&signals.stopped, "the sites stopped").await;

    // Streams opened before the client has the final GOAWAY may still be served;
    // after it, new streams are refused.
    let refused = timeout(SOON, async {
        loop {
            match h2_get(sender.clone(), "/").await {
                Ok((status, _)) => {
                    assert_eq!(status, StatusCode::OK);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(err) => break err,
            }
        }
    })
    .await
    .expect("new streams still served after GOAWAY");
    assert!(
        refused.is_go_away() || refused.reason() == Some(h2::Reason::REFUSED_STREAM),
        "expected a GOAWAY refusal, got {refused:?}"
    );
    assert!(!slow.is_finished(), "the in-flight stream ended early");
    assert!(
        !closing.is_finished(),
        "shutdown returned with a stream in flight"
    );

    signals.release.notify_one();
    let (status, body) = timeout(SOON, slow).await.unwrap().unwrap().unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"slow done"[..]));
    let ended = timeout(SOON, conn)
        .await
        .expect("the HTTP/2 connection stayed open after GOAWAY")
        .unwrap();
    assert!(ended.is_ok(), "connection ended with {ended:?}");
    timeout(SOON, closing)
        .await
        .expect("shutdown did not return after the last stream")
        .unwrap()
        .unwrap();
}

async fn h2_get(
    sender: h2::client::SendRequest<Bytes>,
    path: &str,
) -> Result<(StatusCode, Bytes), h2::Error> {
    let req = http::Request::get(format!("http://localhost{path}"))
        .body(())
        .unwrap();
    let mut sender = sender.ready().await?;
    let (res, _) = sender.send_request(req, true)?;
    let res = res.await?;
    let status = res.status();
    let mut body = res.into_body();
    let mut out = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    Ok((status, Bytes::from(out)))
}
