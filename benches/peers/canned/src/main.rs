//! Benchmark peer: a canned responder that does no HTTP parsing at all. It
//! reads whatever arrives, counts request terminators (`\r\n\r\n`, also across
//! read boundaries) and writes one fixed HTTP/1.1 200 response per request.
//! It ignores the path (so `/json` also gets the plain-text body) and bodies,
//! and speaks no h2c: it is the floor of what tokio I/O costs per request.
//!
//! Usage: `peer-canned --bind 127.0.0.1:0 [--workers N]`

use std::io::Write;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const TERMINATOR: &[u8; 4] = b"\r\n\r\n";

/// Counts complete `\r\n\r\n` terminators in `data`; `matched` carries how many
/// bytes of a terminator were already seen at the end of the previous read.
fn count_terminators(data: &[u8], matched: &mut usize) -> usize {
    let mut count = 0;
    for &b in data {
        if b == TERMINATOR[*matched] {
            *matched += 1;
            if *matched == TERMINATOR.len() {
                count += 1;
                *matched = 0;
            }
        } else {
            *matched = usize::from(b == b'\r');
        }
    }
    count
}

async fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::new();
    let mut matched = 0;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        match count_terminators(&buf[..n], &mut matched) {
            0 => {}
            1 => stream.write_all(RESPONSE).await?,
            k => {
                out.clear();
                for _ in 0..k {
                    out.extend_from_slice(RESPONSE);
                }
                stream.write_all(&out).await?;
            }
        }
    }
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
    eprintln!("bad argument {bad:?}\nusage: peer-canned [--bind ADDR] [--workers N]");
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
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = serve(stream).await;
                });
            }
            Err(err) => eprintln!("accept error: {err}"),
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
        let listener = TcpListener::bind(args.bind).await.expect("bind");
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

#[cfg(test)]
mod tests {
    use super::count_terminators;

    #[test]
    fn counts_across_reads() {
        let mut m = 0;
        assert_eq!(count_terminators(b"GET / HTTP/1.1\r\n\r", &mut m), 0);
        assert_eq!(count_terminators(b"\nGET / HTTP/1.1\r\n\r\nGET", &mut m), 2);
        assert_eq!(count_terminators(b"\r\r\n\r\n", &mut m), 1);
    }
}
