//! Opening client connections: TCP with happy eyeballs (RFC 8305), Unix domain
//! sockets, and TLS through rustls with ALPN.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

#[cfg(feature = "tls")]
use super::dns::bare_host;
use super::dns::{CacheOutcome, Resolver, interleave};
use crate::error::{Error, ErrorKind};

/// How long happy eyeballs waits for one connection attempt before starting the next
/// address in parallel: RFC 8305 section 5's recommended 250 ms.
pub const DEFAULT_HAPPY_EYEBALLS_DELAY: Duration = Duration::from_millis(250);

/// A connected client socket: TCP, TLS over TCP, or a Unix domain socket.
#[derive(Debug)]
pub enum ClientStream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// A Unix domain socket.
    Unix(UnixStream),
}

impl ClientStream {
    /// The protocol agreed by ALPN, if TLS negotiated one.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            #[cfg(feature = "tls")]
            ClientStream::Tls(tls) => tls.get_ref().1.alpn_protocol(),
            _ => None,
        }
    }

    /// The peer's address for TCP and TLS streams.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            ClientStream::Tcp(tcp) => tcp.peer_addr().ok(),
            #[cfg(feature = "tls")]
            ClientStream::Tls(tls) => tls.get_ref().0.peer_addr().ok(),
            ClientStream::Unix(_) => None,
        }
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            ClientStream::Tcp($s) => $e,
            #[cfg(feature = "tls")]
            ClientStream::Tls($s) => $e,
            ClientStream::Unix($s) => $e,
        }
    };
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Tcp(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            ClientStream::Tls(s) => s.is_write_vectored(),
            ClientStream::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

/// Where a connection goes: the origin's host and port, or a Unix socket that serves
/// the origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A host name or IP literal and a port.
    Host {
        /// The host (IPv6 literals with or without brackets).
        host: String,
        /// The port.
        port: u16,
    },
    /// A Unix domain socket path (every origin is served through it).
    Unix(PathBuf),
}

/// Events of one connect, reported to an observer (the client's tracing hooks).
pub trait ConnectObserver: Send + Sync {
    /// A host name lookup starts.
    fn dns_start(&self, _host: &str) {}
    /// A host name lookup ended.
    fn dns_end(&self, _host: &str, _outcome: CacheOutcome) {}
}

/// Opens TCP (happy eyeballs) and Unix connections; TLS is layered by [`tls_connect`].
#[derive(Debug, Clone)]
pub struct Connector {
    resolver: Resolver,
    happy_eyeballs_delay: Duration,
    connect_timeout: Option<Duration>,
    nodelay: bool,
}

impl Default for Connector {
    fn default() -> Self {
        Self::new(Resolver::default())
    }
}

impl Connector {
    /// A connector resolving through `resolver`, with TCP_NODELAY, the RFC 8305 delay
    /// and no connect timeout of its own.
    pub fn new(resolver: Resolver) -> Self {
        Self {
            resolver,
            happy_eyeballs_delay: DEFAULT_HAPPY_EYEBALLS_DELAY,
            connect_timeout: None,
            nodelay: true,
        }
    }

    /// The delay before the next address is tried in parallel.
    pub fn happy_eyeballs_delay(mut self, delay: Duration) -> Self {
        self.happy_eyeballs_delay = delay;
        self
    }

    /// A limit on establishing the socket (every attempt together), aiohttp's
    /// `sock_connect`.
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The resolver.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// Connects to `target`.
    pub async fn connect(
        &self,
        target: &Target,
        observer: Option<&dyn ConnectObserver>,
    ) -> Result<ClientStream, Error> {
        let connect = async {
            match target {
                Target::Unix(path) => UnixStream::connect(path)
                    .await
                    .map(ClientStream::Unix)
                    .map_err(|e| connect_error("could not connect to the Unix socket", e)),
                Target::Host { host, port } => {
                    if let Some(observer) = observer {
                        observer.dns_start(host);
                    }
                    let (addrs, outcome) = self.resolver.resolve(host, *port).await?;
                    if let Some(observer) = observer {
                        observer.dns_end(host, outcome);
                    }
                    let tcp = happy_eyeballs(&addrs, self.happy_eyeballs_delay).await?;
                    if self.nodelay {
                        let _ = tcp.set_nodelay(true);
                    }
                    Ok(ClientStream::Tcp(tcp))
                }
            }
        };
        match self.connect_timeout {
            Some(limit) => tokio::time::timeout(limit, connect)
                .await
                .unwrap_or_else(|_| Err(Error::timeout("connect timeout"))),
            None => connect.await,
        }
    }
}

fn connect_error(message: &'static str, e: io::Error) -> Error {
    Error::new(ErrorKind::Connect, message, Some(Box::new(e)))
}

/// RFC 8305: tries the addresses in interleaved family order, starting the next one
/// when the current has not connected within `delay` or has failed; the first
/// connection wins and the other attempts are dropped.
async fn happy_eyeballs(addrs: &[SocketAddr], delay: Duration) -> Result<TcpStream, Error> {
    let order = interleave(addrs);
    let mut next = order.into_iter();
    let mut attempts = FuturesUnordered::new();
    let mut last_error = None;
    loop {
        if attempts.is_empty() {
            match next.next() {
                Some(addr) => attempts.push(TcpStream::connect(addr)),
                None => {
                    let e = last_error.unwrap_or_else(|| io::Error::other("no address to try"));
                    return Err(connect_error("could not connect to the host", e));
                }
            }
        }
        tokio::select! {
            result = attempts.next() => match result {
                Some(Ok(tcp)) => return Ok(tcp),
                Some(Err(e)) => {
                    last_error = Some(e);
                    // Start the next address at once (RFC 8305 section 5).
                    if let Some(addr) = next.next() {
                        attempts.push(TcpStream::connect(addr));
                    }
                }
                None => {}
            },
            () = tokio::time::sleep(delay), if next.len() > 0 => {
                if let Some(addr) = next.next() {
                    attempts.push(TcpStream::connect(addr));
                }
            }
        }
    }
}

/// Runs a TLS handshake over `tcp` for `server_name` with `config` (whose ALPN list
/// decides between HTTP/2 and HTTP/1.1).
#[cfg(feature = "tls")]
pub async fn tls_connect(
    tcp: TcpStream,
    server_name: &str,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> Result<ClientStream, Error> {
    let name =
        rustls_pki_types::ServerName::try_from(bare_host(server_name).to_owned()).map_err(|e| {
            Error::new(
                ErrorKind::Tls,
                "the host is not a valid TLS server name",
                Some(Box::new(e)),
            )
        })?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| Error::tls("TLS handshake failed", Some(Box::new(e))))?;
    Ok(ClientStream::Tls(Box::new(tls)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_is_a_connect_error_and_a_live_port_connects() {
        // Bind, learn the port, close: nothing listens there any more.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let connector = Connector::default();
        let target = Target::Host {
            host: "127.0.0.1".into(),
            port,
        };
        let err = connector.connect(&target, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect, "{err}");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = Target::Host {
            host: "localhost".into(),
            port: listener.local_addr().unwrap().port(),
        };
        let stream = connector.connect(&target, None).await.unwrap();
        assert!(stream.peer_addr().unwrap().ip().is_loopback());
    }

    #[tokio::test]
    async fn a_refused_first_address_falls_back_to_the_next() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = closed.local_addr().unwrap();
        drop(closed);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good = listener.local_addr().unwrap();
        // A long delay: the fallback must come from the failure, not the timer.
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            happy_eyeballs(&[refused, good], Duration::from_secs(3600)),
        )
        .await
        .expect("fell back in time")
        .unwrap();
        assert_eq!(tcp.peer_addr().unwrap(), good);
    }
}
