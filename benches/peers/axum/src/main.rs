//! Benchmark peer: axum 0.8 with its default features (plus `http2`, so
//! `axum::serve` also speaks h2c by prior knowledge).
//!
//! Usage: `peer-axum --bind 127.0.0.1:0 [--workers N]`

use std::io::Write;
use std::net::SocketAddr;

use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use tokio::net::TcpListener;

#[derive(serde::Serialize)]
struct Message {
    message: &'static str,
}

async fn plaintext() -> &'static str {
    "Hello, World!"
}

async fn json() -> Json<Message> {
    Json(Message {
        message: "Hello, World!",
    })
}

struct Args {
    bind: SocketAddr,
    workers: usize,
}

fn parse_args() -> Args {
    let mut bind: SocketAddr = "127.0.0.1:8080".parse().expect("default addr");
    let mut workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .unwrap_or_else(|| usage(&key))
        };
        match key.as_str() {
            "--bind" => bind = value().parse().unwrap_or_else(|_| usage("--bind")),
            "--workers" => {
                workers = value()
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage("--workers"))
            }
            _ => usage(&arg),
        }
    }
    Args { bind, workers }
}

fn usage(bad: &str) -> ! {
    eprintln!("bad argument {bad:?}\nusage: peer-axum [--bind ADDR] [--workers N]");
    std::process::exit(2)
}

/// Installs SIGINT/SIGTERM handlers now; the returned future completes on either.
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let app = Router::new()
            .route("/", get(plaintext))
            .route("/json", get(json));
        let listener = TcpListener::bind(args.bind).await.expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let shutdown = shutdown_signal();
        // Run the accept loop on a worker so `--workers 1` means one busy thread.
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("serve error: {err}");
            }
        });
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}").expect("stdout");
        out.flush().expect("stdout");
        drop(out);
        shutdown.await;
    });
    rt.shutdown_background();
}
