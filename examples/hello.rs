//! The smallest aiox server, and the benchmark server.
//!
//! ```text
//! cargo run --release --example hello -- [--bind ADDR] [--workers N]
//!     [--tls-cert FILE --tls-key FILE] [--max-requests-per-connection N]
//! ```
//!
//! `GET /` answers `Hello, World!` (text/plain) and `GET /json` answers
//! `{"message":"Hello, World!"}`, over HTTP/1.1 and HTTP/2 (h2c by prior knowledge, or
//! ALPN with TLS). Prints `listening on http://ADDR` once accepting; SIGINT or SIGTERM
//! finishes in-flight requests (10 s grace) and exits 0. `RUST_LOG=info` shows the
//! access log. `--max-requests-per-connection` changes the 1,000-request cap per
//! connection (0 = none; the benchmark uses 0 because h2load does not reconnect).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use aiox::web::{Application, Json, Runner, ServerConfig, Site, shutdown_signal};

const USAGE: &str = "usage: hello [--bind ADDR] [--workers N] [--tls-cert FILE --tls-key FILE] [--max-requests-per-connection N]";

#[derive(serde::Serialize)]
struct Message {
    message: &'static str,
}

async fn hello() -> &'static str {
    "Hello, World!"
}

async fn json() -> Json<Message> {
    Json(Message {
        message: "Hello, World!",
    })
}

struct Args {
    bind: SocketAddr,
    workers: Option<usize>,
    tls: Option<(String, String)>,
    /// 0 = no limit.
    max_requests: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut bind: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut workers = None;
    let mut max_requests = None;
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--bind" => {
                let v = value("--bind")?;
                bind = v
                    .parse()
                    .map_err(|_| format!("invalid --bind address: {v}"))?;
            }
            "--workers" => {
                let v = value("--workers")?;
                let n: usize = v.parse().map_err(|_| format!("invalid --workers: {v}"))?;
                if n == 0 {
                    return Err("--workers must be at least 1".into());
                }
                workers = Some(n);
            }
            "--max-requests-per-connection" => {
                let v = value("--max-requests-per-connection")?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("invalid --max-requests-per-connection: {v}"))?;
                max_requests = Some(n);
            }
            "--tls-cert" => cert = Some(value("--tls-cert")?),
            "--tls-key" => key = Some(value("--tls-key")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    let tls = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    Ok(Args {
        bind,
        workers,
        tls,
        max_requests,
    })
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Listen for SIGINT/SIGTERM before announcing readiness, so no signal is lost.
    let signal = shutdown_signal();
    let app = Application::new().get("/", hello).get("/json", json);
    let mut config = ServerConfig::default().shutdown_grace(Duration::from_secs(10));
    match args.max_requests {
        Some(0) => config = config.max_requests_per_connection(u64::MAX),
        Some(n) => config = config.max_requests_per_connection(n),
        None => {}
    }
    let mut runner = Runner::with_config(app, config).await?;
    let (site, scheme) = match args.tls {
        Some((cert, key)) => (
            Site::Tls(args.bind, aiox::web::TlsConfig::from_pem_files(cert, key)?),
            "https",
        ),
        None => (Site::Tcp(args.bind), "http"),
    };
    let addr = runner.add_site(site).await?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {scheme}://{addr}")?;
        out.flush()?;
    }
    runner.run_until(signal).await?;
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
