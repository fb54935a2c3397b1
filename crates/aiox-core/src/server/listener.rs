//! [`Listener`]: TCP (IPv4 and IPv6) and Unix domain socket listeners, and the accept
//! loop's error policy.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// Backlog of pending connections passed to `listen(2)`: 1,024 (nginx's default on Linux
/// is 511; tokio's `TcpListener::bind` uses 1,024).
pub const DEFAULT_BACKLOG: u32 = 1024;

/// A bound socket that a server accepts connections on.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use aiox_core::server::Listener;
/// let listener = Listener::bind_tcp("127.0.0.1:0".parse().unwrap()).await?;
/// println!("listening on http://{}", listener.local_addr());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix domain socket listener.
    Unix(UnixListener),
}

/// Where a listener is bound, as a user would write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address with the real port (port 0 resolved).
    Tcp(SocketAddr),
    /// A Unix socket path, if it has one.
    Unix(Option<PathBuf>),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            ListenAddr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

impl ListenAddr {
    /// The TCP address, if this is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Tcp(addr) => Some(*addr),
            ListenAddr::Unix(_) => None,
        }
    }
}

impl Listener {
    /// Binds a TCP listener with `SO_REUSEADDR` (so a restart does not wait for
    /// TIME_WAIT) and a backlog of [`DEFAULT_BACKLOG`]. An IPv6 address such as `[::]:80`
    /// also accepts IPv4 where the system allows dual-stack sockets.
    pub async fn bind_tcp(addr: SocketAddr) -> io::Result<Self> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(DEFAULT_BACKLOG as i32)?;
        Ok(Listener::Tcp(TcpListener::from_std(socket.into())?))
    }

    /// Binds a Unix domain socket at `path`. A stale socket file left by an earlier
    /// process is removed first; any other kind of file there is an error.
    pub fn bind_unix(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if meta.file_type().is_socket() {
                std::fs::remove_file(path)?;
            }
        }
        Ok(Listener::Unix(UnixListener::bind(path)?))
    }

    /// The address this listener is bound to, with the real port.
    pub fn local_addr(&self) -> ListenAddr {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(ListenAddr::Tcp)
                .unwrap_or(ListenAddr::Unix(None)),
            Listener::Unix(l) => ListenAddr::Unix(
                l.local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(Path::to_path_buf)),
            ),
        }
    }

    pub(crate) async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => {
                let (stream, remote) = l.accept().await?;
                // Small responses must not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().ok();
                Ok(Accepted::Tcp(stream, Some(remote), local))
            }
            Listener::Unix(l) => {
                let (stream, _) = l.accept().await?;
                Ok(Accepted::Unix(stream))
            }
        }
    }
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener::Tcp(l)
    }
}

impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Self {
        Listener::Unix(l)
    }
}

pub(crate) enum Accepted {
    Tcp(TcpStream, Option<SocketAddr>, Option<SocketAddr>),
    Unix(UnixStream),
}

/// What the accept loop does after an `accept()` error.
pub(crate) fn accept_error_pause(err: &io::Error, backoff: Duration) -> Option<Duration> {
    // Errors about one connection (it was reset or aborted before we took it) do not
    // concern the listener: accept the next one at once. Running out of descriptors or
    // memory will not fix itself in a microsecond: pause, then try again, never give up.
    match err.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionRefused
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock => None,
        _ => Some(backoff),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_errors_back_off_and_connection_errors_do_not() {
        let backoff = Duration::from_secs(1);
        let emfile = io::Error::from_raw_os_error(24);
        assert_eq!(accept_error_pause(&emfile, backoff), Some(backoff));
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(accept_error_pause(&aborted, backoff), None);
    }

    #[tokio::test]
    async fn port_zero_reports_the_real_port_on_v4_and_v6() {
        let v4 = Listener::bind_tcp("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        assert_ne!(v4.local_addr().tcp().map(|a| a.port()), Some(0));
        if let Ok(v6) = Listener::bind_tcp("[::1]:0".parse().unwrap()).await {
            let addr = v6.local_addr().tcp().unwrap();
            assert!(addr.is_ipv6());
            assert_ne!(addr.port(), 0);
        }
    }
}
