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

/// Opens a connection to `client` and sends `GET path` on it.
async fn send_get(client: &TestClient, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(client.addr()).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

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

    let mut stream = send_get(&client, "/huge").await;
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

/// Reads a whole HTTP/1.1 response from `stream` in small reads with `pause` between
/// them; returns (head, body length).
async fn read_slowly(stream: &mut TcpStream, pause: Duration) -> (String, usize) {
    let mut data = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let head_end = loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before the head");
        data.extend_from_slice(&buf[..n]);
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(usize::MAX);
    let mut body = data.len() - head_end;
    while body < length {
        tokio::time::sleep(pause).await;
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body += n,
        }
    }
    (head, body)
}

#[tokio::test]
async fn a_slow_reader_of_a_large_response_outlasts_the_keep_alive_timeout() {
    // 8 MiB in memory, read 256 KiB at a time every 50 ms: ~1.6 s, four times the
    // idle timeout. Each write makes progress, so neither timeout applies.
    const SIZE: usize = 8 * 1024 * 1024;
    let app = Application::new().get("/big", || async {
        Response::bytes(Bytes::from(vec![b'x'; SIZE]))
    });
    let config = ServerConfig::default()
        .keep_alive_timeout(Duration::from_millis(400))
        .write_timeout(Duration::from_secs(5));
    let client = TestClient::with_config(app, config).await.unwrap();
    let mut stream = send_get(&client, "/big").await;
    let started = Instant::now();
    let (head, body) = read_slowly(&mut stream, Duration::from_millis(50)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, SIZE, "body cut short after {:?}", started.elapsed());
    // The idle period starts once the response is out: the connection then closes
    // after the keep-alive timeout, not never.
    let mut rest = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "idle connection not closed: {closed:?}"
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_slow_streamed_response_outlasts_the_keep_alive_timeout() {
    // Ten chunks 150 ms apart: 1.5 s of streaming, nearly four idle timeouts.
    let app = Application::new().get("/slow", || async {
        let stream = futures_util::stream::unfold(0u32, |i| async move {
            if i == 10 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            Some((
                Ok::<_, std::io::Error>(Bytes::from_static(b"0123456789")),
                i + 1,
            ))
        });
        Response::stream(Body::from_stream(stream)).with_header(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("100"),
        )
    });
    let config = ServerConfig::default().keep_alive_timeout(Duration::from_millis(400));
    let client = TestClient::with_config(app, config).await.unwrap();
    let mut stream = send_get(&client, "/slow").await;
    let (head, body) = read_slowly(&mut stream, Duration::ZERO).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, 100);
    client.close().await.unwrap();
}
