//! Benchmark peer: the aiox `crawler` example's command line on hyper-util's
//! legacy `Client` with an `HttpConnector` (HTTP/1.1, or h2c by prior
//! knowledge with `--http2-prior-knowledge`). This is the client baseline.
//!
//! Usage: `peer-hyper-client [--concurrency C] [--requests N] ... URL...`
//! (see `crawl.rs` and benches/peers/README.md).

mod crawl;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crawl::{Args, BoxError, Fetch};

#[derive(Clone)]
struct Hyper {
    client: Client<HttpConnector, Empty<Bytes>>,
    urls: Arc<[Uri]>,
    aiox_headers: bool,
}

impl Fetch for Hyper {
    fn get(&self, url: usize) -> impl Future<Output = Result<u16, BoxError>> + Send + '_ {
        async move {
            let resp = if self.aiox_headers {
                let req = hyper::Request::get(self.urls[url].clone())
                    .header("user-agent", "aiox/0.1.0")
                    .header("accept", "*/*")
                    .header("accept-encoding", "gzip, deflate, br, zstd")
                    .body(Empty::new())?;
                self.client.request(req).await?
            } else {
                self.client.get(self.urls[url].clone()).await?
            };
            let status = resp.status().as_u16();
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                frame?;
            }
            Ok(status)
        }
    }
}

fn main() {
    let args = Args::parse();
    let urls: Arc<[Uri]> = args
        .urls
        .iter()
        .map(|u| {
            u.parse::<Uri>().unwrap_or_else(|e| {
                eprintln!("error: bad URL {u:?}: {e}");
                std::process::exit(2)
            })
        })
        .collect();
    let rt = args.runtime();
    rt.block_on(async {
        let mut connector = HttpConnector::new();
        // reqwest and aiohttp set TCP_NODELAY too.
        connector.set_nodelay(true);
        // The same timers reqwest installs on this builder.
        let client = Client::builder(TokioExecutor::new())
            .http2_only(args.http2)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        let aiox_headers = args.aiox_headers;
        crawl::run(
            &args,
            Hyper {
                client,
                urls,
                aiox_headers,
            },
        )
        .await;
    });
    rt.shutdown_background();
}
