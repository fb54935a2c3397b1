//! Benchmark peer: raw hyper 1.x with hyper-util's `server::conn::auto`
//! (HTTP/1.1 and h2c by prior knowledge), no tracing. This is the baseline.
//!
//! Usage: `peer-hyper --bind 127.0.0.1:0 [--workers N]`

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

#[derive(serde::Serialize)]
struct Message {
    message: &'static str,
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let resp = match req.uri().path() {
        "/" => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            r
        }
        "/json" => {
            let body = serde_json::to_vec(&Message {
                message: "Hello, World!",
            })
            .expect("serialize");
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        _ => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    };
    Ok(resp)
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
    eprintln!("bad argument {bad:?}\nusage: peer-hyper [--bind ADDR] [--workers N]");
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

async fn accept_loop(listener: TcpListener) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                eprintln!("accept error: {err}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        tokio::spawn(async move {
            let _ = builder
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
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
        // A deep accept queue: the client memory run opens 10,000 connections at once,
        // and tokio's default backlog (1024) drops SYNs that the kernel retries seconds
        // later.
        let socket = if args.bind.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket.bind(args.bind).expect("bind");
        let listener = socket.listen(4096).expect("listen");
        let addr = listener.local_addr().expect("local_addr");
        let shutdown = shutdown_signal();
        // Run the accept loop on a worker so `--workers 1` means one busy thread.
        tokio::spawn(accept_loop(listener));
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}").expect("stdout");
        out.flush().expect("stdout");
        drop(out);
        shutdown.await;
    });
    rt.shutdown_background();
}
