//! A handler that answers before reading the request body (HARDENING case 27): the
//! server sends the response, then discards what the client still sends (at most
//! `linger_max_bytes` or `linger_timeout`) before closing, so the client's remaining
//! writes do not meet a reset that can destroy the response it has not read yet; the
//! leftover body is never parsed as a request.

use std::time::{Duration, Instant};

use aiox_web::test::TestClient;
use aiox_web::{Application, Response, ServerConfig, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Answers 307 without reading the body, as a redirecting or refusing handler does.
fn app() -> Application {
    Application::new().post("/upload", || async {
        Response::status_only(StatusCode::TEMPORARY_REDIRECT).with_header(
            http::header::LOCATION,
            http::HeaderValue::from_static("/elsewhere"),
        )
    })
}

/// Sends a head announcing `length` body bytes and the first `first` of them.
async fn start_upload(addr: std::net::SocketAddr, length: usize, first: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head =
        format!("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: {length}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![b'a'; first]).await.unwrap();
    stream
}

/// Reads up to the end of the response head.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while !data.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the response head");
        data.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&data).into_owned()
}

/// Writes `total` more body bytes in chunks with pauses; the first error, if any.
async fn send_rest(stream: &mut TcpStream, total: usize, chunk: usize) -> std::io::Result<()> {
    let mut sent = 0;
    while sent < total {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let n = chunk.min(total - sent);
        stream.write_all(&vec![b'a'; n]).await?;
        sent += n;
    }
    Ok(())
}

#[tokio::test]
async fn the_rest_of_an_unread_upload_is_discarded_after_an_early_response() {
    let client = TestClient::new(app()).await.unwrap();
    // 40,000 bytes announced, 8,000 sent before the answer, 32,000 after it.
    let mut stream = start_upload(client.addr(), 40_000, 8_000).await;
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 307"), "{head}");
    // The server has answered and is closing; the client finishes its upload the way
    // a client that writes the whole body before reading does. Every write lands.
    send_rest(&mut stream, 32_000, 8_000)
        .await
        .expect("the server reset the connection while the client was still sending");
    stream.shutdown().await.unwrap();
    // Then the connection ends cleanly, and no second response (the leftover body
    // parsed as a request) ever comes.
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    assert!(matches!(end, Ok(Ok(_))), "{end:?}");
    assert!(
        !String::from_utf8_lossy(&rest).contains("HTTP/1.1"),
        "leftover body answered as a request"
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn discarding_stops_at_the_byte_limit() {
    let config = ServerConfig::default().linger_max_bytes(16 * 1024);
    let client = TestClient::with_config(app(), config).await.unwrap();
    let mut stream = start_upload(client.addr(), 10_000_000, 1_000).await;
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 307"), "{head}");
    // Far more than the limit: the server stops discarding and closes, so the client's
    // writes fail well before the announced length.
    let started = Instant::now();
    let result = send_rest(&mut stream, 10_000_000, 64 * 1024).await;
    assert!(result.is_err(), "the server kept discarding past its limit");
    assert!(started.elapsed() < Duration::from_secs(10));
    client.close().await.unwrap();
}

#[tokio::test]
async fn discarding_stops_at_the_time_limit() {
    let config = ServerConfig::default().linger_timeout(Duration::from_millis(300));
    let client = TestClient::with_config(app(), config).await.unwrap();
    let mut stream = start_upload(client.addr(), 40_000, 1_000).await;
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 307"), "{head}");
    // A client that neither sends nor closes: the server closes after the linger
    // timeout (EOF here), not after the 5 s default or never.
    let started = Instant::now();
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    assert!(end.is_ok(), "connection still open after 10 s");
    assert!(client.runner().server().connections() <= 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        client.runner().server().connections(),
        0,
        "connection not closed {:?} after the response",
        started.elapsed()
    );
    client.close().await.unwrap();
}
