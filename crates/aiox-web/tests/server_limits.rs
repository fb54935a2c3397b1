//! End-to-end tests of the HTTP/1 server's hardening (HARDENING.md section 1): bad
//! request heads, head size limits, smuggling-prone framing, timeouts, panics,
//! keep-alive, pipelining and the connection cap, over real sockets with raw bytes.

mod support {
    pub(crate) mod wire;
}

use std::time::{Duration, Instant};

use aiox_web::test::TestClient;
use aiox_web::{Application, Bytes, ServerConfig};
use support::wire::{Closed, SOON, Wire, get, one_shot_then_close};

/// The routes every test here uses.
fn app() -> Application {
    Application::new()
        .get("/", || async { "ok" })
        .get("/a", || async { "response a" })
        .get("/b", || async { "response b" })
        .post("/echo", |body: Bytes| async move { body })
}

async fn serve(config: ServerConfig) -> TestClient {
    TestClient::with_config(app(), config)
        .await
        .expect("start the test server")
}

/// Asserts `res` is the automatic answer to a rejected head: `status`, and the server
/// says it closes the connection.
fn assert_rejected(res: &support::wire::Response, status: u16, what: &str) {
    assert_eq!(res.version, "HTTP/1.1", "{what}: {res:?}");
    assert_eq!(res.status, status, "{what}: {res:?}");
    assert!(
        res.says_close(),
        "{what}: no `Connection: close` in {res:?}"
    );
}

// 1. Malformed request lines (HARDENING cases 9, 10).

#[tokio::test]
async fn malformed_request_lines_are_400_and_close() {
    let client = serve(ServerConfig::default()).await;
    let cases: &[(&str, &[u8])] = &[
        ("method only", b"GET\r\n\r\n"),
        ("HTTP/0.9 style line without a version", b"GET /\r\n\r\n"),
        (
            "extension method without Host",
            b"GARBAGE / HTTP/1.1\r\n\r\n",
        ),
        (
            "invalid method token",
            b"G(T / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ),
        (
            "garbled version",
            b"GET / HTTX/1.1\r\nHost: localhost\r\n\r\n",
        ),
        (
            "junk after the version",
            b"GET / HTTP/1.1 junk\r\nHost: localhost\r\n\r\n",
        ),
        ("binary garbage", b"\x00\x01\x02\x03\xff\r\n\r\n"),
    ];
    for (what, request) in cases {
        let res = one_shot_then_close(client.addr(), request).await;
        assert_rejected(&res, 400, what);
    }
    // A well-formed extension method is not a parse error: the router answers it.
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(b"GARBAGE / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let res = wire.response().await;
    assert_eq!(res.status, 405, "{res:?}");
    client.close().await.unwrap();
}

// 2. Head size limits (HARDENING cases 1-4, section 2 defaults).

#[tokio::test]
async fn request_line_over_8_kib_is_414_and_close() {
    let client = serve(ServerConfig::default()).await;
    // `GET /xxx HTTP/1.1`: 9 KiB, well under the 32 KiB head limit.
    let long = format!("/{}", "x".repeat(9 * 1024));
    let res = one_shot_then_close(client.addr(), &get(&long)).await;
    assert_rejected(&res, 414, "9 KiB request line");

    // Just under the limit is served (404: no such route), on a kept-alive connection.
    let near = format!("/{}", "x".repeat(8 * 1024 - 100));
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(&get(&near)).await;
    let res = wire.response().await;
    assert_eq!(res.status, 404, "{res:?}");
    assert!(!res.says_close(), "{res:?}");
    client.close().await.unwrap();
}

fn request_with_headers(extra: &[(String, String)]) -> Vec<u8> {
    let mut req = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in extra {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

#[tokio::test]
async fn header_line_over_8_kib_is_431_and_close() {
    let client = serve(ServerConfig::default()).await;
    let big = vec![("X-Big".to_owned(), "v".repeat(9 * 1024))];
    let res = one_shot_then_close(client.addr(), &request_with_headers(&big)).await;
    assert_rejected(&res, 431, "9 KiB header line");

    let near = vec![("X-Big".to_owned(), "v".repeat(8 * 1024 - 100))];
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(&request_with_headers(&near)).await;
    let res = wire.response().await;
    assert_eq!(res.status, 200, "{res:?}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn more_than_100_header_fields_is_431_and_close() {
    let client = serve(ServerConfig::default()).await;
    let fields = |n: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("X-H{i}"), "v".to_owned()))
            .collect()
    };
    // Host plus 100 more: 101 fields.
    let res = one_shot_then_close(client.addr(), &request_with_headers(&fields(100))).await;
    assert_rejected(&res, 431, "101 header fields");

    // Host plus 99: exactly 100 fields is allowed.
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(&request_with_headers(&fields(99))).await;
    let res = wire.response().await;
    assert_eq!(res.status, 200, "{res:?}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn whole_head_over_32_kib_is_431_and_close() {
    let client = serve(ServerConfig::default()).await;
    let fields = |n: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("X-H{i}"), "v".repeat(7 * 1024)))
            .collect()
    };
    // Five 7 KiB lines: each line is fine, the head (35 KiB) is not.
    let res = one_shot_then_close(client.addr(), &request_with_headers(&fields(5))).await;
    assert_rejected(&res, 431, "35 KiB head");

    // Four (28 KiB) is under the limit.
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(&request_with_headers(&fields(4))).await;
    let res = wire.response().await;
    assert_eq!(res.status, 200, "{res:?}");
    client.close().await.unwrap();
}

// 3. Header syntax and message framing (HARDENING cases 6, 7, 15, 16, 19).

#[tokio::test]
async fn bad_header_syntax_is_400_and_close() {
    let client = serve(ServerConfig::default()).await;
    let cases: &[(&str, &[u8])] = &[
        (
            "whitespace before the colon",
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Foo : bar\r\n\r\n",
        ),
        (
            "obs-fold continuation line",
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Foo: bar\r\n baz\r\n\r\n",
        ),
        (
            "obs-fold with a tab",
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Foo: bar\r\n\tbaz\r\n\r\n",
        ),
        (
            "NUL in a value",
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Foo: b\x00r\r\n\r\n",
        ),
    ];
    for (what, request) in cases {
        let res = one_shot_then_close(client.addr(), request).await;
        assert_rejected(&res, 400, what);
    }
    client.close().await.unwrap();
}

/// HARDENING case 15. RFC 9112 §6.3 lets a server either reject a request with both
/// `Content-Length` and `Transfer-Encoding` or frame it by `Transfer-Encoding` and
/// close the connection after the response. aiox keeps hyper's choice, the second:
/// rejecting would need a second HTTP/1 parser in front of hyper's (measured at ~1,500
/// instructions per request, 20% of serving `GET /`). Either way no byte after the
/// chunked body is ever read as a request, which is what stops smuggling.
#[tokio::test]
async fn content_length_with_transfer_encoding_is_framed_as_chunked_then_closed() {
    let client = serve(ServerConfig::default()).await;
    let cases: &[(&str, &[u8])] = &[
        (
            "CL before TE",
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\
              Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "TE before CL",
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\
              Content-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
    ];
    for (what, request) in cases {
        // One response framed by the chunked body, then the close.
        let res = one_shot_then_close(client.addr(), request).await;
        assert_eq!((res.status, res.text().as_str()), (200, "hello"), "{what}");
        assert!(res.says_close(), "{what}: {res:?}");
    }

    // The classic smuggling shape: read by Content-Length, the body would hold a second
    // request. Exactly one answer (for the empty chunked body) comes back, then the
    // close; `/a` is never answered.
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 40\r\n\
          Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /a HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    let res = wire.response().await;
    assert_eq!((res.status, res.text().as_str()), (200, ""));
    assert!(res.says_close(), "{res:?}");
    wire.assert_closed().await;

    // Plain chunked and sized requests keep the connection alive.
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    let res = wire.response().await;
    assert_eq!((res.status, res.text().as_str()), (200, "hello"));
    wire.send(
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nworld\r\n0\r\n\r\n",
    )
    .await;
    let res = wire.response().await;
    assert_eq!((res.status, res.text().as_str()), (200, "world"));
    assert!(!res.says_close(), "{res:?}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn conflicting_content_lengths_are_400_and_close() {
    let client = serve(ServerConfig::default()).await;
    let cases: &[(&str, &[u8])] = &[
        (
            "two lines with different values",
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\
              Content-Length: 6\r\n\r\nhello!",
        ),
        (
            "a list in one line",
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 6\r\n\r\nhello!",
        ),
        (
            "a sign",
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: +5\r\n\r\nhello",
        ),
    ];
    for (what, request) in cases {
        let res = one_shot_then_close(client.addr(), request).await;
        assert_rejected(&res, 400, what);
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn transfer_coding_not_ending_in_chunked_is_rejected_and_close() {
    let client = serve(ServerConfig::default()).await;
    let cases: &[(&str, &[u8])] = &[
        (
            "gzip alone",
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\nxyz",
        ),
        (
            "chunked, gzip",
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, gzip\r\n\r\nxyz",
        ),
    ];
    for (what, request) in cases {
        let res = one_shot_then_close(client.addr(), request).await;
        assert!(
            res.status == 400 || res.status == 501,
            "{what}: expected 400 or 501, got {res:?}"
        );
        assert!(res.says_close(), "{what}: {res:?}");
    }
    client.close().await.unwrap();
}

// 4. Host (HARDENING case 11).

#[tokio::test]
async fn http_1_1_without_exactly_one_host_is_400() {
    let client = serve(ServerConfig::default()).await;
    let res = one_shot_then_close(client.addr(), b"GET / HTTP/1.1\r\n\r\n").await;
    assert_rejected(&res, 400, "HTTP/1.1 without Host");

    let res = one_shot_then_close(
        client.addr(),
        b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
    )
    .await;
    assert_rejected(&res, 400, "two Host lines");

    for host in ["user@example.com", "exa mple.com", "example.com:80:80"] {
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let res = one_shot_then_close(client.addr(), request.as_bytes()).await;
        assert_rejected(&res, 400, host);
    }

    // HTTP/1.0 does not require Host.
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(b"GET / HTTP/1.0\r\n\r\n").await;
    let res = wire.response().await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.version, "HTTP/1.0");
    assert_eq!(res.text(), "ok");
    client.close().await.unwrap();
}

// 5. Header-read deadline versus keep-alive idle timeout (HARDENING cases 5, 34).

#[tokio::test]
async fn slowloris_head_is_cut_off_by_the_header_read_timeout() {
    let config = ServerConfig::default().header_read_timeout(Duration::from_secs(1));
    let client = serve(config).await;
    let request = get("/");
    let started = Instant::now();
    let mut wire = Wire::connect(client.addr()).await;
    // One byte every 200 ms: the head would take ~7 s, far past the 1 s deadline.
    let mut sent = 0;
    let ended = loop {
        if sent < request.len() && wire.try_send(&request[sent..=sent]).await.is_ok() {
            sent += 1;
        }
        if !wire.quiet_for(Duration::from_millis(200)).await {
            break wire.read_to_close(SOON).await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "slow head not cut off after {sent} bytes"
        );
    };
    let elapsed = started.elapsed();
    let (bytes, closed) = ended;
    assert!(closed.is_some(), "connection still open");
    assert!(
        !bytes.starts_with(b"HTTP/1.1 2"),
        "a slow head must not be served: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(
        bytes.is_empty() || bytes.starts_with(b"HTTP/1.1 408"),
        "closed without a response (or 408): {:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(
        sent < request.len(),
        "the whole head went out: {sent} bytes"
    );
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed before the deadline: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(6), "closed late: {elapsed:?}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn idle_keep_alive_outlives_the_head_deadline_then_closes_at_the_idle_timeout() {
    let config = ServerConfig::default()
        .header_read_timeout(Duration::from_millis(500))
        .keep_alive_timeout(Duration::from_secs(3));
    let client = serve(config).await;
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(&get("/")).await;
    let res = wire.response().await;
    assert_eq!(res.status, 200, "{res:?}");
    assert!(!res.says_close(), "{res:?}");

    // Idle three times the head deadline, well under the keep-alive timeout.
    assert!(
        wire.quiet_for(Duration::from_millis(1500)).await,
        "idle connection closed by the head deadline"
    );
    wire.send(&get("/a")).await;
    let res = wire.response().await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.text(), "response a");
    let idle_since = Instant::now();

    // Now idle past the keep-alive timeout: closed quietly.
    let closed = wire
        .closed_within(Duration::from_secs(3) + SOON)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(closed, Closed::Eof);
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(2400),
        "closed before the keep-alive timeout: {idle:?}"
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_second_request_head_gets_its_own_deadline_from_its_first_byte() {
    let config = ServerConfig::default()
        .header_read_timeout(Duration::from_millis(500))
        .keep_alive_timeout(Duration::from_secs(10));
    let client = serve(config).await;
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(&get("/")).await;
    assert_eq!(wire.response().await.status, 200);
    // Start the next head but never finish it.
    wire.send(b"GET / HTTP/1.1\r\nHost: loc").await;
    let started = Instant::now();
    let (bytes, closed) = wire.read_to_close(SOON).await;
    let elapsed = started.elapsed();
    assert!(closed.is_some(), "half-sent head not cut off");
    assert!(
        bytes.is_empty() || bytes.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(
        elapsed >= Duration::from_millis(400),
        "closed before the head deadline: {elapsed:?}"
    );
    client.close().await.unwrap();
}

// 6. Handler panics (HARDENING case 39).

async fn panics_in_the_future() -> &'static str {
    panic!("secret panic detail 4711");
}

/// A handler that panics when called, before it returns its future.
fn panics_before_the_future() -> std::future::Ready<&'static str> {
    panic!("secret panic detail 4712");
}

/// A middleware that panics when called for `/panic-middleware`, before it returns
/// its future.
fn panicking_middleware(
    req: aiox_web::Request,
    next: aiox_web::Next,
) -> aiox_web::BoxFuture<aiox_web::Response> {
    if req.path() == "/panic-middleware" {
        panic!("secret panic detail 4713");
    }
    next.run(req)
}

#[tokio::test]
async fn handler_panic_is_500_with_close_and_the_server_keeps_serving() {
    let app = app()
        .get("/panic", panics_in_the_future)
        .get("/panic-sync", panics_before_the_future)
        .middleware(panicking_middleware);
    let client = TestClient::with_config(app, ServerConfig::default())
        .await
        .unwrap();
    for path in ["/panic", "/panic-sync", "/panic-middleware"] {
        let mut wire = Wire::connect(client.addr()).await;
        wire.send(&get(path)).await;
        let res = wire.response().await;
        assert_eq!(res.status, 500, "{path}: {res:?}");
        assert!(res.says_close(), "{path}: {res:?}");
        assert!(
            !res.text().contains("secret") && !res.text().contains("4711"),
            "{path}: the panic message leaked: {:?}",
            res.text()
        );
        wire.assert_closed().await;

        let mut wire = Wire::connect(client.addr()).await;
        wire.send(&get("/")).await;
        let res = wire.response().await;
        assert_eq!(res.status, 200, "after {path}: {res:?}");
        assert_eq!(res.text(), "ok");
    }
    client.close().await.unwrap();
}

// 7. Keep-alive, pipelining and the per-connection request cap (cases 29, 35).

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let client = serve(ServerConfig::default()).await;
    let mut wire = Wire::connect(client.addr()).await;
    let mut both = get("/a");
    both.extend_from_slice(&get("/b"));
    wire.send(&both).await;
    let first = wire.response().await;
    let second = wire.response().await;
    assert_eq!((first.status, first.text().as_str()), (200, "response a"));
    assert_eq!((second.status, second.text().as_str()), (200, "response b"));
    assert!(!first.says_close() && !second.says_close());
    // The connection stays usable.
    wire.send(&get("/")).await;
    assert_eq!(wire.response().await.text(), "ok");
    client.close().await.unwrap();
}

#[tokio::test]
async fn the_last_request_allowed_on_a_connection_says_close() {
    let client = serve(ServerConfig::default().max_requests_per_connection(3)).await;
    let mut wire = Wire::connect(client.addr()).await;
    for i in 1..=3 {
        wire.send(&get("/")).await;
        let res = wire.response().await;
        assert_eq!(res.status, 200, "request {i}: {res:?}");
        assert_eq!(res.says_close(), i == 3, "request {i}: {res:?}");
    }
    assert_eq!(wire.assert_closed().await, Closed::Eof);
    client.close().await.unwrap();
}

// 8. Connection cap (HARDENING case 38).

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let client = serve(ServerConfig::default().max_connections(Some(2))).await;
    let addr = client.addr();
    let mut first = Wire::connect(addr).await;
    let mut second = Wire::connect(addr).await;
    for wire in [&mut first, &mut second] {
        wire.send(&get("/")).await;
        assert_eq!(wire.response().await.status, 200);
    }
    // The kernel completes the handshake (backlog), but the server does not accept.
    let mut third = Wire::connect(addr).await;
    third.send(&get("/a")).await;
    assert!(
        third.quiet_for(Duration::from_millis(500)).await,
        "a third connection was served while two were open"
    );
    // The open ones still work.
    first.send(&get("/b")).await;
    assert_eq!(first.response().await.text(), "response b");

    drop(second);
    let res = third.response().await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.text(), "response a");
    client.close().await.unwrap();
}

// 13. Body read idle timeout (HARDENING case 32).

#[tokio::test]
async fn a_stalled_body_is_408_with_close() {
    let config = ServerConfig::default().body_read_timeout(Some(Duration::from_millis(500)));
    let client = serve(config).await;
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc")
        .await;
    let started = Instant::now();
    let res = wire.response().await;
    let elapsed = started.elapsed();
    assert_eq!(res.status, 408, "{res:?}");
    assert!(res.says_close(), "{res:?}");
    assert!(
        elapsed >= Duration::from_millis(400),
        "408 before the body timeout: {elapsed:?}"
    );
    wire.assert_closed().await;
    client.close().await.unwrap();
}

// 14. Early 413 for `Expect: 100-continue` (HARDENING case 28).

#[tokio::test]
async fn expect_continue_over_the_limit_is_413_without_100() {
    let client = TestClient::with_config(app().client_max_size(1024), ServerConfig::default())
        .await
        .unwrap();
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4096\r\n\
          Expect: 100-continue\r\n\r\n",
    )
    .await;
    let res = wire.response().await;
    assert_eq!(
        res.status, 413,
        "the first response must be the 413: {res:?}"
    );
    assert!(res.says_close(), "{res:?}");
    wire.assert_closed().await;

    // Control: under the limit the server does send `100 Continue`, then the answer.
    let mut wire = Wire::connect(client.addr()).await;
    wire.send(
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\
          Expect: 100-continue\r\n\r\n",
    )
    .await;
    let res = wire.response().await;
    assert_eq!(res.status, 100, "{res:?}");
    wire.send(b"hello").await;
    let res = wire.response().await;
    assert_eq!((res.status, res.text().as_str()), (200, "hello"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn the_server_survives_all_of_the_above_on_one_listener() {
    // A smoke check that rejected connections do not leak the connection count.
    let client = serve(ServerConfig::default()).await;
    for _ in 0..3 {
        let _ = one_shot_then_close(client.addr(), b"GET\r\n\r\n").await;
    }
    let deadline = Instant::now() + SOON;
    while client.runner().server().connections() != 0 {
        assert!(Instant::now() < deadline, "connections never drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.close().await.unwrap();
}
