//! The timeouts that need a peer that stops cooperating: a client that stops reading
//! a response (write idle timeout, HARDENING case 33) and an HTTP/2 connection with no
//! streams (idle GOAWAY, HARDENING section 2, "idle connection (no streams) → GOAWAY").

use std::time::{Duration, Instant};

use aiox_web::test::TestClient;
use aiox_web::{Application, Body, Bytes, Response, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far more than the socket buffers on both sides hold, so the server's writes stall.
const HUGE: usize = 256 * 1024 * 1024;

fn huge_response() -> Response {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let chunks = HUGE / chunk.len();
    let stream = futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    Response::stream(Body::from_stream(stream))
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_by_the_write_timeout() {
    let app = Application::new().get("/huge", || async { huge_response() });
    let config = ServerConfig::default().write_timeout(Duration::from_millis(500));
    let client = TestClient::with_config(app, config).await.unwrap();

    let mut stream = TcpStream::connect(client.addr()).await.unwrap();
    stream
        .write_all(b"GET /huge HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // Read a little, then stop reading: the server's writes fill the buffers and stall.
    let mut first = vec![0u8; 1024];
    let n = stream.read(&mut first).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    let stalled_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        client.runner().server().connections(),
        0,
        "connection still open"
    );
    // Draining now ends well before the whole body: the server gave up.
    let mut total = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the connection was not closed");
    assert!(
        total < HUGE / 2,
        "read {total} bytes: the server never stopped"
    );
    assert!(stalled_at.elapsed() < Duration::from_secs(12));
    client.close().await.unwrap();
}

#[tokio::test]
async fn an_http2_connection_without_streams_gets_goaway_after_the_idle_timeout() {
    let app = Application::new().get("/", || async { "ok" });
    let config = ServerConfig::default().keep_alive_timeout(Duration::from_millis(600));
    let client = TestClient::with_config(app, config).await.unwrap();

    let tcp = TcpStream::connect(client.addr()).await.unwrap();
    let (mut sender, conn) = h2::client::handshake(tcp).await.unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get(client.url("/")).body(()).unwrap();
    let (res, _) = sender.send_request(req, true).unwrap();
    assert_eq!(res.await.unwrap().status(), 200);

    // No stream now: the server sends GOAWAY and the connection ends cleanly, not
    // before the idle timeout and well within a few of them.
    let idle_from = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), conn).await;
    let idle = idle_from.elapsed();
    let result = ended.expect("connection still open after 10 s").unwrap();
    assert!(result.is_ok(), "connection ended with an error: {result:?}");
    assert!(
        idle >= Duration::from_millis(500),
        "closed after only {idle:?}"
    );
    drop(sender);
    client.close().await.unwrap();
}
