//! Benchmark peer: actix-web 4 with the two routes. HTTP/1.1, plus h2c by
//! prior knowledge through `HttpServer::bind_auto_h2c` (actix-web >= 4.9).
//!
//! Usage: `peer-actix --bind 127.0.0.1:0 [--workers N]`

use std::io::Write;
use std::net::SocketAddr;

use actix_web::{App, HttpResponse, HttpServer, web};

#[derive(serde::Serialize)]
struct Message {
    message: &'static str,
}

async fn plaintext() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body("Hello, World!")
}

async fn json() -> web::Json<Message> {
    web::Json(Message {
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
    eprintln!("bad argument {bad:?}\nusage: peer-actix [--bind ADDR] [--workers N]");
    std::process::exit(2)
}

fn main() -> std::io::Result<()> {
    let args = parse_args();
    actix_web::rt::System::new().block_on(async move {
        // actix-server installs its own SIGINT/SIGTERM handlers and stops gracefully.
        let server = HttpServer::new(|| {
            App::new()
                .route("/", web::get().to(plaintext))
                .route("/json", web::get().to(json))
        })
        .workers(args.workers)
        .tcp_nodelay(true)
        .shutdown_timeout(1)
        .bind_auto_h2c(args.bind)?;
        let addr = server.addrs()[0];
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
        drop(out);
        server.run().await
    })
}
