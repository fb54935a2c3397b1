//! End-to-end tests of the server's transports: HTTP/2 by prior knowledge on the
//! plaintext port (SETTINGS, concurrency, header-list limit), TLS with ALPN through a
//! `Runner` site (h2 and http/1.1, handshake timeout, plain bytes on the TLS port),
//! Unix domain sockets and IPv6.

mod support {
    pub(crate) mod wire;
}

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiox_web::test::TestClient;
use aiox_web::{Application, Bytes, Request, Runner, ServerConfig, Site, TlsConfig};
use http::{StatusCode, Version};
use rustls::pki_types::{CertificateDer, ServerName};
use support::wire::{SOON, Wire, get};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Describes the connection a request came on, as the handler sees it.
async fn info(req: Request) -> String {
    let alpn = req
        .connection()
        .alpn()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    format!(
        "secure={} alpn={} version={:?}",
        req.is_secure(),
        alpn.as_deref().unwrap_or("-"),
        req.version()
    )
}

/// Echoes the request body with its length.
async fn echo(body: Bytes) -> String {
    format!("{} bytes: {}", body.len(), String::from_utf8_lossy(&body))
}

fn app() -> Application {
    Application::new()
        .get("/", || async { "ok" })
        .get("/info", info)
        .get("/echo", echo)
        .post("/echo", echo)
}

// HTTP/2 client helpers (the `h2` crate, so stream-level outcomes are visible).

type H2Sender = h2::client::SendRequest<Bytes>;

async fn h2_connect<T>(io: T) -> (H2Sender, JoinHandle<Result<(), h2::Error>>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = h2::client::handshake(io).await.expect("h2 handshake");
    (sender, tokio::spawn(conn))
}

/// Sends a GET on a new stream: `Ok((status, body))`, or the stream's error.
async fn h2_get(
    sender: &H2Sender,
    path: &str,
    headers: &[(&str, String)],
) -> Result<(StatusCode, Bytes), h2::Error> {
    let mut req = http::Request::get(format!("http://localhost{path}"));
    for (name, value) in headers {
        req = req.header(*name, value.as_str());
    }
    let req = req.body(()).unwrap();
    let mut sender = sender.clone().ready().await?;
    let (res, _) = sender.send_request(req, true)?;
    read_response(res.await?).await
}

/// The status and whole body of a response, releasing flow-control capacity as it reads.
async fn read_response(
    res: http::Response<h2::RecvStream>,
) -> Result<(StatusCode, Bytes), h2::Error> {
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

/// Sends a POST whose body follows in DATA frames (`chunks`, the last one ending the
/// stream), with `headers`.
async fn h2_post(
    sender: &H2Sender,
    headers: &[(&str, &str)],
    chunks: &[&'static [u8]],
) -> Result<(StatusCode, Bytes), h2::Error> {
    let mut req = http::Request::post("http://localhost/echo");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let mut sender = sender.clone().ready().await?;
    let (res, mut stream) = sender.send_request(req.body(()).unwrap(), false)?;
    for (i, chunk) in chunks.iter().enumerate() {
        stream.send_data(Bytes::from_static(chunk), i + 1 == chunks.len())?;
    }
    read_response(res.await?).await
}

// 9. HTTP/2 by prior knowledge (HARDENING cases 13, 48, 52).

#[tokio::test]
async fn h2c_request_bodies_are_read_whole_and_empty_ones_are_not_waited_for() {
    let client = TestClient::with_config(app(), ServerConfig::default())
        .await
        .unwrap();
    let tcp = TcpStream::connect(client.addr()).await.unwrap();
    let (sender, conn) = h2_connect(tcp).await;
    // A body in several DATA frames, without and with a content-length.
    let (status, body) = h2_post(&sender, &[], &[b"hello ", b"h2"]).await.unwrap();
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"8 bytes: hello h2"[..])
    );
    let (status, body) = h2_post(&sender, &[("content-length", "8")], &[b"hello ", b"h2"])
        .await
        .unwrap();
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"8 bytes: hello h2"[..])
    );
    // Headers that end the stream: an empty body.
    let (status, body) = h2_get(&sender, "/echo", &[]).await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"0 bytes: "[..]));
    // `content-length: 0` with the stream still open: answered as empty, without
    // waiting for the end of the stream.
    let req = http::Request::post("http://localhost/echo")
        .header("content-length", "0")
        .body(())
        .unwrap();
    let mut ready = sender.clone().ready().await.unwrap();
    let (res, mut stream) = ready.send_request(req, false).unwrap();
    let res = tokio::time::timeout(SOON, res)
        .await
        .expect("answered before the stream ended")
        .unwrap();
    let (status, body) = read_response(res).await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"0 bytes: "[..]));
    // The server may have reset the request half already.
    let _ = stream.send_data(Bytes::new(), true);
    drop((stream, ready, sender));
    conn.abort();
    client.close().await.unwrap();
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served_on_the_plaintext_port() {
    let client = TestClient::with_config(app(), ServerConfig::default())
        .await
        .unwrap()
        .http2();
    let res = client.get("/info").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), Version::HTTP_2);
    assert_eq!(res.text(), "secure=false alpn=- version=HTTP/2.0");
    client.close().await.unwrap();
}

#[tokio::test]
async fn h2_advertises_128_streams_and_serves_them_concurrently() {
    const STREAMS: usize = 16;
    let barrier = Arc::new(Barrier::new(STREAMS));
    let app = app().get("/together", move || {
        let barrier = barrier.clone();
        async move {
            // Answers only once all the streams are in flight at the same time.
            barrier.wait().await;
            "together"
        }
    });
    let client = TestClient::with_config(app, ServerConfig::default())
        .await
        .unwrap();
    let tcp = TcpStream::connect(client.addr()).await.unwrap();
    let (sender, conn) = h2_connect(tcp).await;

    // One round trip: the server's SETTINGS precede its first response.
    let (status, body) = h2_get(&sender, "/", &[]).await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
    assert_eq!(sender.current_max_send_streams(), 128);

    let mut streams = Vec::new();
    for _ in 0..STREAMS {
        let sender = sender.clone();
        streams.push(tokio::spawn(async move {
            h2_get(&sender, "/together", &[]).await
        }));
    }
    for stream in streams {
        let res = tokio::time::timeout(SOON, stream)
            .await
            .expect("streams were not served concurrently")
            .unwrap()
            .unwrap();
        assert_eq!((res.0, &res.1[..]), (StatusCode::OK, &b"together"[..]));
    }
    drop(sender);
    conn.abort();
    client.close().await.unwrap();
}

#[tokio::test]
async fn h2_header_list_over_32_kib_is_refused_and_the_connection_survives() {
    let client = TestClient::with_config(app(), ServerConfig::default())
        .await
        .unwrap();
    let tcp = TcpStream::connect(client.addr()).await.unwrap();
    let (sender, conn) = h2_connect(tcp).await;
    assert_eq!(h2_get(&sender, "/", &[]).await.unwrap().0, StatusCode::OK);

    // Five 7 KiB fields: 35 KiB of header list, each field under any per-line limit.
    let big: Vec<(&str, String)> = ["x-a", "x-b", "x-c", "x-d", "x-e"]
        .into_iter()
        .map(|name| (name, "v".repeat(7 * 1024)))
        .collect();
    // h2 answers 431 on the stream (then resets it with REFUSED_STREAM, which the
    // client ignores once the response ended); the handler never runs.
    let (status, _) = h2_get(&sender, "/", &big)
        .await
        .expect("a 431 response, not a stream error");
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    // The same connection serves the next stream.
    let (status, body) = h2_get(&sender, "/", &[]).await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
    assert!(!conn.is_finished(), "the connection was closed");
    drop(sender);
    conn.abort();
    client.close().await.unwrap();
}

// 10. TLS (HARDENING cases 42, 44, 45).

struct TlsServer {
    runner: Runner,
    addr: SocketAddr,
    cert: CertificateDer<'static>,
}

async fn tls_server(config: ServerConfig) -> TlsServer {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let tls = TlsConfig::from_pem(
        generated.cert.pem().as_bytes(),
        generated.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let mut runner = Runner::with_config(app(), config).await.unwrap();
    let addr = runner
        .add_site(Site::Tls(SocketAddr::from(([127, 0, 0, 1], 0)), tls))
        .await
        .unwrap()
        .tcp()
        .unwrap();
    TlsServer {
        runner,
        addr,
        cert: generated.cert.der().clone(),
    }
}

impl TlsServer {
    async fn connect(&self, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake")
    }
}

#[tokio::test]
async fn tls_with_alpn_h2_serves_http2() {
    let server = tls_server(ServerConfig::default()).await;
    let tls = server.connect(&[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, conn) = h2_connect(tls).await;
    let (status, body) = h2_get(&sender, "/info", &[]).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"secure=true alpn=h2 version=HTTP/2.0");
    drop(sender);
    conn.abort();
    server.runner.shutdown().await.unwrap();
}

#[tokio::test]
async fn tls_with_alpn_http_1_1_serves_http1() {
    let server = tls_server(ServerConfig::default()).await;
    let tls = server.connect(&[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut wire = Wire::new(tls);
    wire.send(&get("/info")).await;
    let res = wire.response().await;
    assert_eq!((res.version.as_str(), res.status), ("HTTP/1.1", 200));
    assert_eq!(res.text(), "secure=true alpn=http/1.1 version=HTTP/1.1");
    // Keep-alive works over TLS too.
    wire.send(&get("/")).await;
    assert_eq!(wire.response().await.text(), "ok");

    // Without ALPN the server speaks HTTP/1.1.
    let mut wire = Wire::new(server.connect(&[]).await);
    wire.send(&get("/info")).await;
    assert_eq!(
        wire.response().await.text(),
        "secure=true alpn=- version=HTTP/1.1"
    );
    server.runner.shutdown().await.unwrap();
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_closed_and_tls_keeps_working() {
    let server = tls_server(ServerConfig::default()).await;
    for _ in 0..3 {
        let mut wire = Wire::connect(server.addr).await;
        let _ = wire.try_send(&get("/")).await;
        let (bytes, closed) = wire.read_to_close(SOON).await;
        assert!(
            closed.is_some(),
            "plain HTTP on the TLS port was not closed"
        );
        assert!(
            !bytes.starts_with(b"HTTP/"),
            "answered plain HTTP: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        // Anything sent back is a TLS alert record (content type 21).
        assert!(
            bytes.is_empty() || bytes[0] == 0x15,
            "not a TLS alert: {bytes:?}"
        );
    }
    let mut wire = Wire::new(server.connect(&[b"http/1.1"]).await);
    wire.send(&get("/")).await;
    assert_eq!(wire.response().await.status, 200);
    server.runner.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_tls_client_is_dropped_after_the_handshake_timeout() {
    let config = ServerConfig::default().tls_handshake_timeout(Duration::from_millis(500));
    let server = tls_server(config).await;
    let started = Instant::now();
    let mut silent = Wire::connect(server.addr).await;

    // Handshakes do not block accepting: another client is served meanwhile.
    let mut wire = Wire::new(server.connect(&[b"http/1.1"]).await);
    wire.send(&get("/")).await;
    assert_eq!(wire.response().await.status, 200);

    silent.assert_closed().await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400),
        "dropped before the handshake timeout: {elapsed:?}"
    );
    server.runner.shutdown().await.unwrap();
}

// 12. Unix domain sockets and IPv6.

#[tokio::test]
async fn a_unix_socket_site_serves_http() {
    let path = std::env::temp_dir().join(format!("aiox-server-test-{}.sock", std::process::id()));
    let mut runner = Runner::new(app()).await.unwrap();
    runner.add_site(Site::Unix(path.clone())).await.unwrap();
    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let mut wire = Wire::new(stream);
    wire.send(&get("/info")).await;
    let res = wire.response().await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.text(), "secure=false alpn=- version=HTTP/1.1");
    wire.send(&get("/")).await;
    assert_eq!(wire.response().await.text(), "ok");
    drop(wire);
    runner.shutdown().await.unwrap();
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn an_ipv6_loopback_site_serves_http_when_the_host_has_ipv6() {
    let mut runner = Runner::new(app()).await.unwrap();
    let site = runner.add_site(Site::Tcp("[::1]:0".parse().unwrap())).await;
    let addr = match site {
        Ok(bound) => bound.tcp().unwrap(),
        Err(err) => {
            eprintln!("skipping: cannot bind [::1]:0 (no IPv6 loopback here): {err}");
            runner.shutdown().await.unwrap();
            return;
        }
    };
    assert!(addr.is_ipv6());
    let mut wire = Wire::connect(addr).await;
    wire.send(&get("/")).await;
    let res = wire.response().await;
    assert_eq!((res.status, res.text().as_str()), (200, "ok"));
    drop(wire);
    runner.shutdown().await.unwrap();
}
