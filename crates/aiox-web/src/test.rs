//! [`TestClient`]: an application served on `127.0.0.1:0` in-process, and a client
//! that sends it real HTTP/1.1 or HTTP/2 requests over real sockets (aiohttp's
//! `aiohttp_client` fixture).
//!
//! ```
//! use aiox_web::{Application, test::TestClient};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), aiox_web::BoxError> {
//! let app = Application::new().get("/", || async { "Hello, World!" });
//! let client = TestClient::new(app).await?;
//! let res = client.get("/").send().await?;
//! assert_eq!(res.status(), 200);
//! assert_eq!(res.text(), "Hello, World!");
//! client.close().await?;
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use aiox_core::server::ServerConfig;

use crate::app::Application;
use crate::error::{BoxError, Error};
use crate::run::{Runner, Site};

/// How long [`TestClient::raw`] waits for the server to finish answering: 10 s.
pub const RAW_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// An application served on a free local port, with a client for it.
#[derive(Debug)]
pub struct TestClient {
    runner: Runner,
    addr: SocketAddr,
    http2: bool,
}

impl TestClient {
    /// Starts `app` (running its startup hooks) on `127.0.0.1:0`.
    pub async fn new(app: Application) -> Result<Self, Error> {
        Self::with_config(app, ServerConfig::default()).await
    }

    /// Starts `app` with a server configuration (limits, timeouts).
    pub async fn with_config(app: Application, config: ServerConfig) -> Result<Self, Error> {
        let mut runner = Runner::with_config(app, config).await?;
        let site = runner
            .add_site(Site::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))))
            .await
            .and_then(|bound| {
                bound.tcp().ok_or_else(|| {
                    Error::from(std::io::Error::other("the test site has no TCP address"))
                })
            });
        let addr = match site {
            Ok(addr) => addr,
            Err(err) => {
                // The app started: clean it up before reporting the error.
                if let Err(cleanup) = runner.shutdown().await {
                    tracing::error!(error = %cleanup, "cleanup after a failed bind failed too");
                }
                return Err(err);
            }
        };
        Ok(Self {
            runner,
            addr,
            http2: false,
        })
    }

    /// Sends the following requests over HTTP/2 by prior knowledge (h2c).
    #[must_use]
    pub fn http2(mut self) -> Self {
        self.http2 = true;
        self
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The absolute URL of `path` on the server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The running server (to read its open connection count, say).
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// A request with `method` to `path` (which may include a query string).
    pub fn request(&self, method: Method, path: &str) -> TestRequest<'_> {
        TestRequest {
            client: self,
            method,
            path: path.to_owned(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            error: None,
        }
    }

    /// A `GET` request to `path`.
    pub fn get(&self, path: &str) -> TestRequest<'_> {
        self.request(Method::GET, path)
    }

    /// A `POST` request to `path`.
    pub fn post(&self, path: &str) -> TestRequest<'_> {
        self.request(Method::POST, path)
    }

    /// A `PUT` request to `path`.
    pub fn put(&self, path: &str) -> TestRequest<'_> {
        self.request(Method::PUT, path)
    }

    /// A `DELETE` request to `path`.
    pub fn delete(&self, path: &str) -> TestRequest<'_> {
        self.request(Method::DELETE, path)
    }

    /// A `HEAD` request to `path`.
    pub fn head(&self, path: &str) -> TestRequest<'_> {
        self.request(Method::HEAD, path)
    }

    /// Writes `bytes` on a new connection and returns everything the server sends back
    /// until it closes the connection (or [`RAW_READ_TIMEOUT`] passes): for requests no
    /// well-behaved client would send.
    pub async fn raw(&self, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(self.addr).await?;
        stream.write_all(bytes).await?;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(RAW_READ_TIMEOUT, stream.read_to_end(&mut out)).await;
        Ok(out)
    }

    /// Shuts the server down gracefully and runs the shutdown and cleanup hooks.
    pub async fn close(self) -> Result<(), Error> {
        self.runner.shutdown().await
    }
}

/// A request being built by a [`TestClient`].
#[derive(Debug)]
pub struct TestRequest<'a> {
    client: &'a TestClient,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
    error: Option<String>,
}

impl TestRequest<'_> {
    /// Adds a header (an invalid name or value fails the `send`).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            _ => self.error = Some(format!("invalid header {name}: {value}")),
        }
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    #[must_use]
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(bytes) => {
                self.body = bytes.into();
                self.headers
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Err(err) => self.error = Some(err.to_string()),
        }
        self
    }

    /// Sets an url-encoded form body and its `Content-Type`.
    #[must_use]
    pub fn form<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_urlencoded::to_string(value) {
            Ok(text) => {
                self.body = text.into();
                self.headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
            }
            Err(err) => self.error = Some(err.to_string()),
        }
        self
    }

    /// Sends the request on a new connection and reads the whole response.
    pub async fn send(self) -> Result<TestResponse, BoxError> {
        if let Some(err) = self.error {
            return Err(err.into());
        }
        let client = self.client;
        let stream = TcpStream::connect(client.addr).await?;
        let mut builder = http::Request::builder().method(self.method);
        if client.http2 {
            builder = builder.uri(client.url(&self.path)).version(Version::HTTP_2);
        } else {
            builder = builder.uri(self.path.as_str());
        }
        let mut req = builder.body(Full::new(self.body))?;
        *req.headers_mut() = self.headers;
        if !client.http2 && !req.headers().contains_key(HOST) {
            let host = HeaderValue::from_str(&client.addr.to_string())?;
            req.headers_mut().insert(HOST, host);
        }
        let res = if client.http2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await?;
            tokio::spawn(conn);
            sender.send_request(req).await?
        } else {
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            sender.send_request(req).await?
        };
        let (head, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(TestResponse {
            status: head.status,
            version: head.version,
            headers: head.headers,
            body,
        })
    }
}

/// A response received by a [`TestClient`], body included.
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

impl TestResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version the server answered with.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The value of header `name`, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}
