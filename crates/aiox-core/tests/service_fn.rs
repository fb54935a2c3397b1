//! A `service_fn` service over a real socket: panics raised while the closure builds
//! its future, and while the future runs, are both answered with a 500 and close the
//! connection, and the server keeps serving.

use std::time::Duration;

use aiox_core::Body;
use aiox_core::server::{Listener, Server, ServerConfig, service_fn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one request for `path` and reads until the server closes the connection or
/// a full response with `Content-Length` arrived.
async fn exchange(addr: std::net::SocketAddr, path: &str, close: bool) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let connection = if close { "close" } else { "keep-alive" };
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut text = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut text))
        .await
        .expect("the server closed the connection")
        .unwrap();
    String::from_utf8(text).unwrap()
}

#[tokio::test]
async fn panics_in_and_before_the_future_are_500_and_the_server_keeps_serving() {
    let service = service_fn(|req, _conn| {
        if req.uri().path() == "/sync-panic" {
            panic!("secret detail 5150");
        }
        async move {
            if req.uri().path() == "/async-panic" {
                panic!("secret detail 5151");
            }
            http::Response::new(Body::from("fine"))
        }
    });
    let server = Server::new(service, ServerConfig::default());
    let listener = Listener::bind_tcp("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().tcp().unwrap();
    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.serve(listener).await }
    });

    for path in ["/sync-panic", "/async-panic"] {
        // Keep-alive asked for, yet the connection is closed after the 500.
        let text = exchange(addr, path, false).await;
        assert!(text.starts_with("HTTP/1.1 500 "), "{path}: {text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{path}: {text}"
        );
        assert!(
            !text.contains("secret"),
            "{path}: the panic message leaked: {text}"
        );

        let text = exchange(addr, "/", true).await;
        assert!(text.starts_with("HTTP/1.1 200 "), "after {path}: {text}");
        assert!(text.ends_with("fine"), "after {path}: {text}");
    }
    assert!(server.shutdown().await);
    serving.await.unwrap().unwrap();
}
