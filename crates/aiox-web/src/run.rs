//! Running an application: [`run_app`] for the common case, and [`Runner`] with any
//! number of [`Site`]s (TCP, Unix, TLS) for the rest, aiohttp's `AppRunner` and sites.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use aiox_core::server::{ListenAddr, Listener, Server, ServerConfig, shutdown_signal};
use tokio::task::JoinHandle;

use crate::app::{AppService, Application};
use crate::error::{Error, ErrorKind};
use crate::hooks;

/// The grace period [`run_app`] gives in-flight requests on shutdown: 60 s, aiohttp's
/// `run_app(shutdown_timeout=60.0)`.
pub const RUN_APP_SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

/// Where a [`Runner`] accepts connections.
#[derive(Debug)]
#[non_exhaustive]
pub enum Site {
    /// A TCP address (port 0 picks a free port), aiohttp's `TCPSite`.
    Tcp(SocketAddr),
    /// A Unix domain socket path, aiohttp's `UnixSite`.
    Unix(PathBuf),
    /// HTTPS on a TCP address with ALPN `h2`/`http/1.1`.
    #[cfg(feature = "tls")]
    Tls(SocketAddr, aiox_core::tls::TlsConfig),
    /// An already bound listener (plain HTTP).
    Listener(Listener),
}

/// Runs an application's lifecycle and its sites: startup hooks, serving, graceful
/// shutdown and cleanup.
///
/// ```no_run
/// use aiox_web::{Application, Runner, Site};
/// # async fn demo() -> Result<(), aiox_web::Error> {
/// let app = Application::new().get("/", || async { "hi" });
/// let mut runner = Runner::new(app).await?;
/// let addr = runner.add_site(Site::Tcp("127.0.0.1:0".parse().unwrap())).await?;
/// runner.add_site(Site::Unix("/tmp/app.sock".into())).await?;
/// println!("listening on http://{addr}");
/// runner.run_until(aiox_web::shutdown_signal()).await
/// # }
/// ```
pub struct Runner {
    service: AppService,
    server: Server<AppService>,
    sites: Vec<JoinHandle<std::io::Result<()>>>,
    addrs: Vec<ListenAddr>,
    cleaned: bool,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("sites", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// Builds `app` and runs its startup with the default server configuration.
    pub async fn new(app: Application) -> Result<Self, Error> {
        Self::with_config(app, ServerConfig::default()).await
    }

    /// Builds `app` and runs its startup (cleanup contexts, then `on_startup` hooks);
    /// if the startup fails, the app is cleaned up and the error returned.
    pub async fn with_config(app: Application, config: ServerConfig) -> Result<Self, Error> {
        let service = app.build()?;
        if let Err(err) = hooks::startup(&service.shared).await {
            if let Err(cleanup) = hooks::cleanup(&service.shared).await {
                tracing::error!(error = %cleanup, "cleanup after a failed startup failed too");
            }
            return Err(err);
        }
        let server = Server::new(service.clone(), config);
        Ok(Self {
            service,
            server,
            sites: Vec::new(),
            addrs: Vec::new(),
            cleaned: false,
        })
    }

    /// Binds `site` and starts accepting on it; returns the bound address (with the
    /// real port when port 0 was asked for).
    pub async fn add_site(&mut self, site: Site) -> Result<ListenAddr, Error> {
        let server = self.server.clone();
        let plain = |listener: Listener| {
            let addr = listener.local_addr();
            (
                addr,
                tokio::spawn(async move { server.serve(listener).await }),
            )
        };
        let (addr, task) = match site {
            Site::Tcp(addr) => plain(Listener::bind_tcp(addr).await?),
            Site::Unix(path) => plain(Listener::bind_unix(path)?),
            Site::Listener(listener) => plain(listener),
            #[cfg(feature = "tls")]
            Site::Tls(addr, tls) => {
                let listener = Listener::bind_tcp(addr).await?;
                let addr = listener.local_addr();
                let server = self.server.clone();
                (
                    addr,
                    tokio::spawn(async move { server.serve_tls(listener, tls).await }),
                )
            }
        };
        self.sites.push(task);
        self.addrs.push(addr.clone());
        Ok(addr)
    }

    /// The addresses of the sites, in the order added.
    pub fn addrs(&self) -> &[ListenAddr] {
        &self.addrs
    }

    /// The running application service.
    pub fn service(&self) -> &AppService {
        &self.service
    }

    /// The underlying server (configuration, open connections).
    pub fn server(&self) -> &Server<AppService> {
        &self.server
    }

    /// Serves until `signal` completes, then shuts down (see [`shutdown`](Self::shutdown)).
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), Error> {
        signal.await;
        self.shutdown().await
    }

    /// Shuts down gracefully: the sites stop accepting, the `on_shutdown` hooks run,
    /// in-flight requests get the configured grace period (HTTP/1 answers with
    /// `Connection: close`, HTTP/2 gets GOAWAY), the remaining connections are closed,
    /// then the app is cleaned up.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.server.start_shutdown();
        for site in self.sites.drain(..) {
            match site.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::error!(error = %err, "site failed"),
                Err(err) => tracing::error!(error = %err, "site task failed"),
            }
        }
        let shutdown = hooks::shutdown(&self.service.shared).await;
        self.server.shutdown().await;
        self.cleaned = true;
        let cleanup = hooks::cleanup(&self.service.shared).await;
        shutdown.and(cleanup)
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if !self.cleaned {
            self.server.start_shutdown();
        }
    }
}

/// Serves `app` on `addr` until SIGINT or SIGTERM, then shuts down gracefully with
/// aiohttp's 60 s grace period: aiohttp's `web.run_app`.
///
/// ```no_run
/// use aiox_web::{Application, run_app};
/// #[tokio::main]
/// async fn main() -> Result<(), aiox_web::Error> {
///     let app = Application::new().get("/", || async { "Hello, World!" });
///     run_app(app, "127.0.0.1:8080").await
/// }
/// ```
pub async fn run_app(app: Application, addr: &str) -> Result<(), Error> {
    let addr: SocketAddr = addr.parse().map_err(|err| {
        Error::new(
            ErrorKind::Io,
            format!("invalid address {addr:?}: {err}"),
            Some(Box::new(err)),
        )
    })?;
    let signal = shutdown_signal();
    let config = ServerConfig::default().shutdown_grace(RUN_APP_SHUTDOWN_GRACE);
    let mut runner = Runner::with_config(app, config).await?;
    let bound = match runner.add_site(Site::Tcp(addr)).await {
        Ok(bound) => bound,
        Err(err) => {
            // The app started: shut it down and clean it up, as aiohttp's run_app does.
            if let Err(cleanup) = runner.shutdown().await {
                tracing::error!(error = %cleanup, "cleanup after a failed bind failed too");
            }
            return Err(err);
        }
    };
    tracing::info!(address = %bound, "serving on http://{bound}");
    runner.run_until(signal).await
}
