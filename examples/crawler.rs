//! `crawler`: many requests at once over one shared session and connection pool;
//! the client benchmark. Contract: ../shared/EXAMPLES.md.
//!
//! ```text
//! cargo run --release --example crawler -- --concurrency 64 --requests 100000 http://127.0.0.1:8080/
//! ```
//!
//! Prints `requests=N ok=K errors=E elapsed_s=T req_per_s=R`, then
//! `status 200=K 404=M ...`. Beyond the contract: `--http2-prior-knowledge` (h2c),
//! `--limit N` (pool size, default 100 or the concurrency if larger), `--workers N`
//! (runtime threads, default 1), `--memory` (one more line, `memory rss_kib=R
//! idle_connections=I`, read while the connections sit idle in the pool).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aiox::client::{ClientSession, ClientTimeout};

struct Options {
    concurrency: usize,
    limit_per_host: usize,
    limit: Option<usize>,
    requests: Option<usize>,
    timeout: Option<Duration>,
    http2: bool,
    workers: usize,
    memory: bool,
    urls: Vec<String>,
}

const USAGE: &str = "usage: crawler [--concurrency C] [--limit-per-host H] [--requests N] \
[--timeout S] [--http2-prior-knowledge] [--limit N] [--workers N] [--memory] URL...";

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        concurrency: 64,
        limit_per_host: 0,
        limit: None,
        requests: None,
        timeout: None,
        http2: false,
        workers: 1,
        memory: false,
        urls: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--concurrency" | "-c" => opts.concurrency = number(&value(&arg)?, &arg)?,
            "--limit-per-host" => opts.limit_per_host = number(&value(&arg)?, &arg)?,
            "--limit" => opts.limit = Some(number(&value(&arg)?, &arg)?),
            "--requests" | "-n" => opts.requests = Some(number(&value(&arg)?, &arg)?),
            "--workers" => opts.workers = number(&value(&arg)?, &arg)?,
            "--timeout" => {
                let secs: f64 = value(&arg)?
                    .parse()
                    .map_err(|_| "--timeout needs a number of seconds".to_owned())?;
                if !secs.is_finite() || secs <= 0.0 {
                    return Err("--timeout must be positive".to_owned());
                }
                opts.timeout = Some(Duration::from_secs_f64(secs));
            }
            "--http2-prior-knowledge" => opts.http2 = true,
            "--memory" => opts.memory = true,
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            url => opts.urls.push(url.to_owned()),
        }
    }
    if opts.urls.is_empty() {
        return Err("no URL given".to_owned());
    }
    if opts.concurrency == 0 || opts.workers == 0 {
        return Err("--concurrency and --workers must be at least 1".to_owned());
    }
    Ok(opts)
}

fn number(text: &str, flag: &str) -> Result<usize, String> {
    text.parse()
        .map_err(|_| format!("{flag} needs a whole number, got {text:?}"))
}

/// What one task saw.
#[derive(Default)]
struct Tally {
    ok: usize,
    errors: usize,
    statuses: BTreeMap<u16, usize>,
    first_error: Option<String>,
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.workers)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(opts))
}

async fn run(opts: Options) -> ExitCode {
    let mut timeout = ClientTimeout::default();
    if let Some(limit) = opts.timeout {
        timeout = timeout.total(limit);
    }
    let mut builder = ClientSession::builder()
        .timeout(timeout)
        .pool_limit(opts.limit.unwrap_or(opts.concurrency.max(100)))
        .pool_limit_per_host(opts.limit_per_host);
    if opts.http2 {
        builder = builder.http2_prior_knowledge();
    }
    if opts.memory {
        // The connections must still be idle in the pool when memory is read, however
        // long the connects of a 10,000-connection burst took.
        builder = builder.pool_idle_timeout(Duration::from_secs(600));
    }
    let session = match builder.build() {
        Ok(session) => session,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let total = opts.requests.unwrap_or(opts.urls.len());
    let urls: Arc<[String]> = opts.urls.into();
    let next = Arc::new(AtomicUsize::new(0));
    let tasks_n = opts.concurrency.min(total.max(1));
    // With --memory every task holds its first response until all have one, so the
    // pool opens as many connections as there are tasks (otherwise early tasks finish
    // and later ones reuse their connections).
    let barrier = opts
        .memory
        .then(|| Arc::new(tokio::sync::Barrier::new(tasks_n)));
    let started = Instant::now();
    let tasks: Vec<_> = (0..tasks_n)
        .map(|_| {
            let session = session.clone();
            let urls = urls.clone();
            let next = next.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                if let Some(barrier) = barrier {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i < total {
                        let url = &urls[i % urls.len()];
                        fetch_held(&session, url, &barrier, &mut tally).await;
                    }
                }
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return tally;
                    }
                    fetch(&session, &urls[i % urls.len()], &mut tally).await;
                }
            })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        match task.await {
            Ok(t) => {
                tally.ok += t.ok;
                tally.errors += t.errors;
                for (status, n) in t.statuses {
                    *tally.statuses.entry(status).or_default() += n;
                }
                if tally.first_error.is_none() {
                    tally.first_error = t.first_error;
                }
            }
            Err(e) => {
                eprintln!("error: a crawler task failed: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(e) = &tally.first_error {
        eprintln!("error: {e} (first of {} errors)", tally.errors);
    }
    let rate = if elapsed > 0.0 {
        total as f64 / elapsed
    } else {
        0.0
    };
    println!(
        "requests={total} ok={} errors={} elapsed_s={elapsed:.3} req_per_s={rate:.1}",
        tally.ok, tally.errors
    );
    let histogram: Vec<String> = tally
        .statuses
        .iter()
        .map(|(status, n)| format!("{status}={n}"))
        .collect();
    println!("status {}", histogram.join(" "));
    if opts.memory {
        let idle: usize = session.pool_stats().hosts.iter().map(|h| h.idle).sum();
        println!("memory rss_kib={} idle_connections={idle}", rss_kib());
    }
    ExitCode::SUCCESS
}

async fn fetch(session: &ClientSession, url: &str, tally: &mut Tally) {
    let result = async {
        let mut resp = session.get(url).send().await?;
        let status = resp.status().as_u16();
        while resp.chunk().await?.is_some() {}
        Ok::<u16, aiox::client::Error>(status)
    }
    .await;
    record(result, tally);
}

/// One request whose body is read only once every task has its response head.
async fn fetch_held(
    session: &ClientSession,
    url: &str,
    barrier: &tokio::sync::Barrier,
    tally: &mut Tally,
) {
    let resp = session.get(url).send().await;
    barrier.wait().await;
    let result = async {
        let mut resp = resp?;
        let status = resp.status().as_u16();
        while resp.chunk().await?.is_some() {}
        Ok::<u16, aiox::client::Error>(status)
    }
    .await;
    record(result, tally);
}

fn record(result: Result<u16, aiox::client::Error>, tally: &mut Tally) {
    match result {
        Ok(status) => {
            *tally.statuses.entry(status).or_default() += 1;
            if status < 400 {
                tally.ok += 1;
            } else {
                tally.errors += 1;
            }
        }
        Err(e) => {
            tally.errors += 1;
            if tally.first_error.is_none() {
                tally.first_error = Some(error_chain(&e));
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The process's resident set size from /proc (0 where there is none).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmRSS:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}
