//! Proxies end to end, through a small proxy written here: absolute-form requests
//! with `Proxy-Authorization`, CONNECT tunnels to a TLS site, a refused tunnel,
//! `NoProxy`, per-request `proxy()` and `no_proxy()`, and an unreachable proxy.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aiox_client::{ClientSession, ErrorKind, NoProxy, Proxy, TlsRoots, Version};
use aiox_web::{Application, TlsConfig};
use support::{RawServer, Server, TestCa, TlsSite, read_request};
use tokio::io::AsyncWriteExt;

/// What the proxy saw of one request: its request line and `Proxy-Authorization`.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    line: String,
    auth: Option<String>,
    host: Option<String>,
}

/// A proxy: answers absolute-form requests itself ("proxied <request line>") and
/// tunnels CONNECT to its target, or refuses CONNECT with 407 if `refuse` is set.
struct TestProxy {
    server: RawServer,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestProxy {
    async fn start(refuse: bool) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let server = RawServer::start(move |mut stream, _| {
            let log = log.clone();
            async move {
                while let Some(req) = read_request(&mut stream).await {
                    let line = req.line().to_owned();
                    log.lock().unwrap().push(Seen {
                        line: line.clone(),
                        auth: req.header("proxy-authorization").map(str::to_owned),
                        host: req.header("host").map(str::to_owned),
                    });
                    if let Some(target) = line.strip_prefix("CONNECT ") {
                        if refuse {
                            let _ = stream
                                .write_all(
                                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                                      Proxy-Authenticate: Basic realm=\"test\"\r\n\
                                      Content-Length: 0\r\n\r\n",
                                )
                                .await;
                            continue;
                        }
                        let target = target.split(' ').next().unwrap_or_default().to_owned();
                        let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                            let _ = stream
                                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                                .await;
                            return;
                        };
                        let _ = stream
                            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                            .await;
                        let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
                        return;
                    }
                    let body = format!("proxied {line}");
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                }
            }
        })
        .await;
        Self { server, seen }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// `http://127.0.0.1:PORT`.
    fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn direct_app() -> Application {
    Application::new().get("/", || async { "direct" })
}

async fn text(builder: aiox_client::RequestBuilder) -> String {
    let resp = builder.send().await.expect("the request succeeds");
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

#[tokio::test]
async fn http_requests_go_in_absolute_form_with_proxy_authorization() {
    let proxy = TestProxy::start(false).await;
    let session = ClientSession::builder()
        .proxy(
            Proxy::http(&proxy.url())
                .unwrap()
                .basic_auth("user", "pass"),
        )
        .build()
        .unwrap();
    // The origin's name is never resolved by the client: the proxy gets it as is.
    let body = text(session.get("http://origin.invalid/path?q=1")).await;
    assert_eq!(body, "proxied GET http://origin.invalid/path?q=1 HTTP/1.1");
    let body = text(session.post("http://other.invalid:8080/").body("x")).await;
    assert_eq!(body, "proxied POST http://other.invalid:8080/ HTTP/1.1");
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].auth.as_deref(), Some("Basic dXNlcjpwYXNz"));
    assert_eq!(seen[0].host.as_deref(), Some("origin.invalid"));
    assert_eq!(seen[1].host.as_deref(), Some("other.invalid:8080"));
    // Both origins shared one connection to the proxy.
    assert_eq!(proxy.server.accepted(), 1);
}

#[tokio::test]
async fn credentials_in_the_proxy_url_become_proxy_authorization() {
    let proxy = TestProxy::start(false).await;
    let url = format!("http://alice:s%40cret@{}", proxy.addr());
    let session = ClientSession::builder()
        .proxy(Proxy::http(&url).unwrap())
        .build()
        .unwrap();
    text(session.get("http://origin.invalid/")).await;
    // base64("alice:s@cret")
    assert_eq!(
        proxy.seen()[0].auth.as_deref(),
        Some("Basic YWxpY2U6c0BjcmV0")
    );

    // Without credentials, no header.
    let proxy = TestProxy::start(false).await;
    let session = ClientSession::builder()
        .proxy(Proxy::all(&proxy.url()).unwrap())
        .build()
        .unwrap();
    text(session.get("http://origin.invalid/")).await;
    assert_eq!(proxy.seen()[0].auth, None);
}

async fn tls_site(ca: &TestCa) -> TlsSite {
    let cert = ca.server_cert();
    let tls = TlsConfig::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap();
    TlsSite::start(
        Application::new().get("/", || async { "secret over tls" }),
        tls,
    )
    .await
}

#[tokio::test]
async fn https_requests_tunnel_with_connect() {
    let ca = TestCa::new("aiox proxy test CA");
    let site = tls_site(&ca).await;
    let proxy = TestProxy::start(false).await;
    let session = ClientSession::builder()
        .tls_roots(TlsRoots::None)
        .add_root_certificate_pem(ca.pem.as_bytes())
        .proxy(Proxy::all(&proxy.url()).unwrap().basic_auth("tunnel", "pw"))
        .build()
        .unwrap();
    for _ in 0..3 {
        let resp = session.get(&site.url("/")).send().await.unwrap();
        assert_eq!(resp.version(), Version::HTTP_2);
        assert_eq!(resp.text().await.unwrap(), "secret over tls");
    }
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "one tunnel, reused: {seen:?}");
    let port = site.addr.port();
    assert_eq!(seen[0].line, format!("CONNECT localhost:{port} HTTP/1.1"));
    assert_eq!(seen[0].host, Some(format!("localhost:{port}")));
    // base64("tunnel:pw")
    assert_eq!(seen[0].auth.as_deref(), Some("Basic dHVubmVsOnB3"));

    // HTTP/1.1 inside a tunnel as well.
    let resp = session
        .get(&site.ip_url("/"))
        .version(Version::HTTP_11)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_11);
    assert_eq!(resp.text().await.unwrap(), "secret over tls");
    assert_eq!(
        proxy.seen()[1].line,
        format!("CONNECT 127.0.0.1:{port} HTTP/1.1")
    );
}

#[tokio::test]
async fn a_refused_tunnel_is_a_proxy_error() {
    let ca = TestCa::new("aiox proxy test CA");
    let site = tls_site(&ca).await;
    let proxy = TestProxy::start(true).await;
    let session = ClientSession::builder()
        .tls_roots(TlsRoots::None)
        .add_root_certificate_pem(ca.pem.as_bytes())
        .proxy(Proxy::https(&proxy.url()).unwrap())
        .build()
        .unwrap();
    let url = site.url("/");
    let err = session.get(&url).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Proxy, "{err:?}");
    assert!(err.is_connect());
    assert_eq!(err.url().map(|u| u.as_str()), Some(url.as_str()));
    assert!(err.to_string().contains("407"), "{err}");
    assert_eq!(session.pool_stats().open, 0);
}

#[tokio::test]
async fn no_proxy_hosts_go_direct() {
    let server = Server::start(direct_app()).await;
    let proxy = TestProxy::start(false).await;
    let session = ClientSession::builder()
        .proxy(
            Proxy::all(&proxy.url())
                .unwrap()
                .no_proxy(NoProxy::from_list("localhost, 127.0.0.0/8")),
        )
        .build()
        .unwrap();
    assert_eq!(text(session.get(&server.url("/"))).await, "direct");
    assert_eq!(text(session.get(&server.local_url("/"))).await, "direct");
    assert_eq!(
        text(session.get("http://elsewhere.invalid/")).await,
        "proxied GET http://elsewhere.invalid/ HTTP/1.1"
    );
    assert_eq!(proxy.seen().len(), 1);

    // A proxy for https only leaves http alone.
    let session = ClientSession::builder()
        .proxy(Proxy::https(&proxy.url()).unwrap())
        .build()
        .unwrap();
    assert_eq!(text(session.get(&server.url("/"))).await, "direct");
    assert_eq!(proxy.seen().len(), 1);
}

#[tokio::test]
async fn per_request_proxy_and_no_proxy() {
    let server = Server::start(direct_app()).await;
    let proxy = TestProxy::start(false).await;

    let session = ClientSession::new();
    let body = text(
        session
            .get(&server.url("/"))
            .proxy(Proxy::http(&proxy.url()).unwrap()),
    )
    .await;
    assert_eq!(body, format!("proxied GET {} HTTP/1.1", server.url("/")));
    assert_eq!(text(session.get(&server.url("/"))).await, "direct");

    let session = ClientSession::builder()
        .proxy(Proxy::all(&proxy.url()).unwrap())
        .build()
        .unwrap();
    assert_eq!(
        text(session.get(&server.url("/")).no_proxy()).await,
        "direct"
    );
    // The session's proxy still applies to the next request.
    let body = text(session.get(&server.url("/"))).await;
    assert!(body.starts_with("proxied GET"), "{body}");
    assert_eq!(proxy.seen().len(), 2);
}

#[tokio::test]
async fn an_unreachable_proxy_is_a_proxy_error() {
    let refused = support::refused_url("");
    for target in ["http://origin.invalid/", "https://origin.invalid/"] {
        let session = ClientSession::builder()
            .proxy(Proxy::all(&refused).unwrap())
            .build()
            .unwrap();
        let err = session.get(target).send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Proxy, "{target}: {err:?}");
        assert_eq!(err.url().map(|u| u.as_str()), Some(target));
    }
    // An unsupported proxy scheme is a builder error.
    let err = Proxy::all("socks5://127.0.0.1:1080").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder, "{err:?}");
}
