//! Benchmark peer: the aiox `crawler` example's command line on reqwest
//! (HTTP/1.1, or h2c by prior knowledge with `--http2-prior-knowledge`).
//!
//! Usage: `peer-reqwest-client [--concurrency C] [--requests N] ... URL...`
//! (see `crawl.rs` and benches/peers/README.md).

// The command line, scheduling and output are shared with hyper-client.
#[path = "../../hyper-client/src/crawl.rs"]
mod crawl;

use std::future::Future;
use std::sync::Arc;

use reqwest::{Client, Url};

use crawl::{Args, BoxError, Fetch};

#[derive(Clone)]
struct Reqwest {
    client: Client,
    urls: Arc<[Url]>,
}

impl Fetch for Reqwest {
    fn get(&self, url: usize) -> impl Future<Output = Result<u16, BoxError>> + Send + '_ {
        async move {
            let mut resp = self.client.get(self.urls[url].clone()).send().await?;
            let status = resp.status().as_u16();
            while resp.chunk().await?.is_some() {}
            Ok(status)
        }
    }
}

fn main() {
    let args = Args::parse();
    let urls: Arc<[Url]> = args
        .urls
        .iter()
        .map(|u| {
            u.parse::<Url>().unwrap_or_else(|e| {
                eprintln!("error: bad URL {u:?}: {e}");
                std::process::exit(2)
            })
        })
        .collect();
    // reqwest's defaults (environment proxies included: xtask runs it with
    // no proxy variables set). The per-request deadline is the driver's, as in
    // hyper-client, not reqwest's own `timeout`.
    let mut builder = Client::builder();
    if args.http2 {
        builder = builder.http2_prior_knowledge();
    }
    let client = builder.build().unwrap_or_else(|e| {
        eprintln!("error: cannot build the client: {e}");
        std::process::exit(1)
    });
    let rt = args.runtime();
    rt.block_on(crawl::run(&args, Reqwest { client, urls }));
    rt.shutdown_background();
}
