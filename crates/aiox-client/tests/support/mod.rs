//! Test servers for the client's end-to-end tests: aiox-web apps on 127.0.0.1:0
//! (plain, TLS with a CA made here, HTTP/2), and raw TCP servers for what a
//! well-behaved server never does.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aiox_web::test::TestClient;
use aiox_web::{Application, Request};

/// A running app and its base URL (`http://127.0.0.1:PORT`).
pub struct Server {
    pub client: TestClient,
}

impl Server {
    pub async fn start(app: Application) -> Self {
        Self {
            client: TestClient::new(app).await.expect("the test server starts"),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.client.addr()
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// `http://localhost:PORT{path}` (cookies are not kept for IP hosts by default).
    pub fn local_url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.addr().port())
    }
}

/// Counts the distinct client connections (remote ports) an app has seen.
#[derive(Clone, Default)]
pub struct ConnCounter {
    seen: Arc<std::sync::Mutex<std::collections::HashSet<SocketAddr>>>,
    pub requests: Arc<AtomicUsize>,
}

impl ConnCounter {
    pub fn record(&self, req: &Request) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(addr) = req.remote_addr() {
            self.seen.lock().unwrap().insert(addr);
        }
    }

    pub fn connections(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// A URL on 127.0.0.1 where nothing listens (a port bound and released), for
/// connection-refused cases.
pub fn refused_url(path: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}{path}")
}

/// A fresh directory under `std::env::temp_dir()`, removed with its contents on drop.
pub struct TempDir {
    pub path: std::path::PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "aiox-client-{tag}-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create the temp dir");
        Self { path }
    }

    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Answers with what it received, as JSON: `method`, `target` (path and query),
/// `body` (lossy UTF-8) and `headers` (lowercase name to the values joined by ", ").
pub async fn echo(mut req: Request) -> aiox_web::Response {
    let body = req.bytes().await.unwrap_or_default();
    let mut headers = serde_json::Map::new();
    for name in req.headers().keys() {
        let values: Vec<&str> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("<binary>"))
            .collect();
        headers.insert(name.as_str().to_owned(), values.join(", ").into());
    }
    aiox_web::Response::json(&serde_json::json!({
        "method": req.method().as_str(),
        "target": req.uri().to_string(),
        "body": String::from_utf8_lossy(&body),
        "headers": headers,
    }))
}

/// One request as a server saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: aiox_web::HeaderMap,
}

/// Records every request an app receives (installed as the outermost middleware).
#[derive(Clone, Default)]
pub struct RequestLog(Arc<std::sync::Mutex<Vec<LoggedRequest>>>);

impl RequestLog {
    pub fn install(&self, app: Application) -> Application {
        let log = self.clone();
        app.middleware(move |req: Request, next: aiox_web::Next| {
            log.0.lock().unwrap().push(LoggedRequest {
                method: req.method().as_str().to_owned(),
                target: req.uri().to_string(),
                headers: req.headers().clone(),
            });
            next.run(req)
        })
    }

    pub fn entries(&self) -> Vec<LoggedRequest> {
        self.0.lock().unwrap().clone()
    }

    /// `"METHOD target"` per request, in arrival order.
    pub fn lines(&self) -> Vec<String> {
        self.entries()
            .iter()
            .map(|r| format!("{} {}", r.method, r.target))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

// Raw TCP servers and a test CA (added for requests/responses/pool/timeouts/TLS/proxy
// tests).

/// A raw TCP server on 127.0.0.1:0: `handle(stream, n)` runs for the n-th accepted
/// connection (counting from 0). The accept loop stops when the server is dropped.
pub struct RawServer {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl RawServer {
    pub async fn start<F, Fut>(handle: F) -> Self
    where
        F: Fn(tokio::net::TcpStream, usize) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the raw server");
        let addr = listener.local_addr().expect("local addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(handle(stream, n));
            }
        });
        Self {
            addr,
            accepted,
            task,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A raw HTTP/1.1 request: its head (request line and header lines) and its body
/// (`Content-Length` bodies only).
pub struct RawRequest {
    pub head: String,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The request line.
    pub fn line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one request from `stream`: `None` if the connection closes first. Reads one
/// byte at a time, so nothing after the request is consumed.
pub async fn read_request<S>(stream: &mut S) -> Option<RawRequest>
where
    S: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head[..head.len() - 4]).into_owned();
    let mut req = RawRequest {
        head,
        body: Vec::new(),
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await.ok()?;
    req.body = body;
    Some(req)
}

/// A CA made for the test, and certificates it signs.
pub struct TestCa {
    pub pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A certificate chain and key, PEM.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    fn sign(&self, names: &[&str], usage: rcgen::ExtendedKeyUsagePurpose) -> TestCert {
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "aiox test leaf");
        params.extended_key_usages = vec![usage];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        TestCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server_cert(&self) -> TestCert {
        self.sign(
            &["localhost", "127.0.0.1"],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate.
    pub fn client_cert(&self) -> TestCert {
        self.sign(&["client.test"], rcgen::ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// An app served over TLS (ALPN h2, http/1.1) on 127.0.0.1:0; shut down when dropped.
pub struct TlsSite {
    pub runner: aiox_web::Runner,
    pub addr: SocketAddr,
}

impl TlsSite {
    pub async fn start(app: Application, tls: aiox_web::TlsConfig) -> Self {
        let mut runner = aiox_web::Runner::new(app).await.expect("the app starts");
        let addr = runner
            .add_site(aiox_web::Site::Tls(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                tls,
            ))
            .await
            .expect("the TLS site binds")
            .tcp()
            .expect("a TCP address");
        Self { runner, addr }
    }

    /// `https://localhost:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn ip_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}
