//! The part of the client peers that is not the HTTP client: the `crawler`
//! command line, the scheduling of requests over worker tasks, and the summary
//! output. `hyper-client` and `reqwest-client` both include this file (the
//! latter by `#[path]`), so the two differ only in how one request is sent.
//!
//! Command line (the aiox `crawler` example's, see benches/peers/README.md):
//!
//! ```text
//! PROGRAM [--concurrency C] [--limit-per-host H] [--limit L] [--requests N]
//!         [--timeout S] [--http2-prior-knowledge] [--workers W] [--memory] URL...
//! ```
//!
//! Output on stdout, exactly:
//!
//! ```text
//! requests=N ok=K errors=E elapsed_s=T req_per_s=R
//! status 200=K 404=M
//! memory rss_kib=R idle_connections=I        (only with --memory)
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// Boxed error of one failed request.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// In-flight requests when `--concurrency` is not given. EXAMPLES.md names no
/// default; 64 is the concurrency the benchmark uses.
const DEFAULT_CONCURRENCY: usize = 64;
/// Per-request deadline when `--timeout` is not given: aiohttp's
/// `ClientTimeout(total=300)`.
const DEFAULT_TIMEOUT_S: f64 = 300.0;

/// The parsed command line.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    /// Requests in flight at most (`--concurrency`).
    pub(crate) concurrency: usize,
    /// Requests in flight per host at most; 0 = no limit (`--limit-per-host`).
    pub(crate) limit_per_host: usize,
    /// Connections in total at most; 0 = no limit (`--limit`). With one request
    /// per HTTP/1.1 connection this is a second bound on requests in flight.
    pub(crate) limit: usize,
    /// Requests to send in all; URLs are cycled through (`--requests`).
    pub(crate) requests: usize,
    /// Deadline for one request, body included (`--timeout`).
    pub(crate) timeout: Duration,
    /// Speak h2c by prior knowledge (`--http2-prior-knowledge`).
    pub(crate) http2: bool,
    /// Runtime worker threads (`--workers`, default 1).
    pub(crate) workers: usize,
    /// Print the `memory` line after the run (`--memory`).
    pub(crate) memory: bool,
    /// Send the three headers aiox's session sends by default (`User-Agent`,
    /// `Accept: */*`, `Accept-Encoding`), for a like-for-like comparison
    /// (`--aiox-headers`; hyper-client only).
    #[allow(dead_code)]
    pub(crate) aiox_headers: bool,
    /// The URLs, in order.
    pub(crate) urls: Vec<String>,
}

const USAGE: &str = "usage: PROGRAM [--concurrency C] [--limit-per-host H] [--limit L] \
[--requests N] [--timeout S] [--http2-prior-knowledge] [--workers W] [--memory] URL...";

fn usage(why: &str) -> ! {
    eprintln!("{why}\n{USAGE}");
    std::process::exit(2)
}

impl Args {
    /// Parses `std::env::args()`; prints usage and exits 2 on a bad command line.
    pub(crate) fn parse() -> Args {
        let mut concurrency = DEFAULT_CONCURRENCY;
        let mut limit_per_host = 0;
        let mut limit = 0;
        let mut requests = None;
        let mut timeout = DEFAULT_TIMEOUT_S;
        let mut http2 = false;
        let mut workers = 1;
        let mut memory = false;
        let mut aiox_headers = false;
        let mut urls = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            if !arg.starts_with("--") {
                urls.push(arg);
                continue;
            }
            let (key, inline) = match arg.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .unwrap_or_else(|| usage(&format!("{key} needs a value")))
            };
            let count = |v: String, min: usize| -> usize {
                v.parse()
                    .ok()
                    .filter(|&n| n >= min)
                    .unwrap_or_else(|| usage(&format!("bad value {v:?} for {key}")))
            };
            match key.as_str() {
                "--concurrency" => concurrency = count(value(), 1),
                "--limit-per-host" => limit_per_host = count(value(), 0),
                "--limit" => limit = count(value(), 0),
                "--requests" => requests = Some(count(value(), 1)),
                "--workers" => workers = count(value(), 1),
                "--timeout" => {
                    let v = value();
                    timeout = v
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0)
                        .unwrap_or_else(|| usage(&format!("bad value {v:?} for --timeout")))
                }
                "--http2-prior-knowledge" if inline.is_none() => http2 = true,
                "--memory" if inline.is_none() => memory = true,
                "--aiox-headers" if inline.is_none() => aiox_headers = true,
                _ => usage(&format!("unknown option {arg:?}")),
            }
        }
        if urls.is_empty() {
            usage("no URL given");
        }
        Args {
            concurrency,
            limit_per_host,
            limit,
            requests: requests.unwrap_or(urls.len()),
            timeout: Duration::from_secs_f64(timeout),
            http2,
            workers,
            memory,
            aiox_headers,
            urls,
        }
    }

    /// The tokio runtime every client peer uses: multi-thread with `--workers`
    /// worker threads (1 by default), as the aiox `crawler` example.
    pub(crate) fn runtime(&self) -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.workers)
            .enable_all()
            .build()
            .unwrap_or_else(|e| {
                eprintln!("error: cannot start the tokio runtime: {e}");
                std::process::exit(1)
            })
    }
}

/// Sends one request. Implemented by each peer on a cheap-to-clone client
/// handle; every worker task holds its own clone.
pub(crate) trait Fetch: Clone + Send + Sync + 'static {
    /// GETs URL number `url` (an index into `Args::urls`), reads the body to
    /// its end and returns the status code.
    fn get(&self, url: usize) -> impl Future<Output = Result<u16, BoxError>> + Send + '_;
}

/// What one worker task saw.
#[derive(Debug, Default)]
struct Tally {
    /// Responses by status code.
    statuses: BTreeMap<u16, u64>,
    /// Requests that got no response (connect errors, timeouts, bad bodies).
    failed: u64,
    /// The first failure, for stderr.
    first_error: Option<String>,
}

/// Runs the crawl on the current runtime and prints the summary (and the
/// `memory` line) to stdout. Call from inside `Runtime::block_on`; the requests
/// run in spawned worker tasks, so with one worker thread all request work
/// happens on that thread.
pub(crate) async fn run<F: Fetch>(args: &Args, fetch: F) {
    let n = args.requests;
    let mut tasks = args.concurrency.min(n);
    if args.limit > 0 {
        tasks = tasks.min(args.limit);
    }
    // One semaphore per distinct host, and each URL's index into them.
    let (host_of, hosts) = host_limits(&args.urls, args.limit_per_host);
    let urls = args.urls.len();
    let next = Arc::new(AtomicUsize::new(0));
    let timeout = args.timeout;

    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let fetch = fetch.clone();
            let next = Arc::clone(&next);
            let host_of = host_of.clone();
            let hosts = hosts.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break tally;
                    }
                    let url = i % urls;
                    let _permit = match &hosts {
                        Some(hosts) => hosts[host_of[url]].acquire().await.ok(),
                        None => None,
                    };
                    let res = match tokio::time::timeout(timeout, fetch.get(url)).await {
                        Ok(res) => res,
                        Err(_) => Err(format!("timed out after {timeout:?}").into()),
                    };
                    match res {
                        Ok(status) => *tally.statuses.entry(status).or_default() += 1,
                        Err(e) => {
                            tally.failed += 1;
                            tally.first_error.get_or_insert_with(|| error_chain(&*e));
                        }
                    }
                }
            })
        })
        .collect();
    let mut total = Tally::default();
    for h in handles {
        let t = match h.await {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: worker task failed: {e}");
                std::process::exit(1)
            }
        };
        for (status, count) in t.statuses {
            *total.statuses.entry(status).or_default() += count;
        }
        total.failed += t.failed;
        if total.first_error.is_none() {
            total.first_error = t.first_error;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();

    let ok: u64 = total
        .statuses
        .iter()
        .filter(|(s, _)| **s < 400)
        .map(|(_, c)| c)
        .sum();
    let errors = n as u64 - ok;
    let mut out = format!(
        "requests={n} ok={ok} errors={errors} elapsed_s={elapsed:.3} req_per_s={:.1}\nstatus",
        n as f64 / elapsed.max(1e-9)
    );
    for (status, count) in &total.statuses {
        out.push_str(&format!(" {status}={count}"));
    }
    out.push('\n');
    if args.memory {
        let idle = settled_connections().await;
        out.push_str(&format!(
            "memory rss_kib={} idle_connections={idle}\n",
            rss_kib().unwrap_or(0),
        ));
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    if let Some(e) = total.first_error {
        eprintln!("{} request(s) failed; first: {e}", total.failed);
    }
    // `fetch` (and with it the pool and its idle connections) lives until here.
    drop(fetch);
}

/// Per-host semaphores (`None` when `limit` is 0) and each URL's host index.
fn host_limits(urls: &[String], limit: usize) -> (Arc<[usize]>, Option<Arc<[Semaphore]>>) {
    let mut names: Vec<&str> = Vec::new();
    let host_of: Vec<usize> = urls
        .iter()
        .map(|u| {
            let h = authority(u);
            names.iter().position(|n| *n == h).unwrap_or_else(|| {
                names.push(h);
                names.len() - 1
            })
        })
        .collect();
    let hosts = (limit > 0).then(|| names.iter().map(|_| Semaphore::new(limit)).collect());
    (host_of.into(), hosts)
}

/// `scheme://authority` of a URL (what a connection pool keys on).
fn authority(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    &url[..end]
}

/// `error: cause: cause ...` on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// Resident set size from `/proc/self/status`, KiB.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Waits until the pool is at rest and returns the connections in it: at
/// least 100 ms (connections whose last response just ended go back to the
/// pool), then until no connect of this process is still in flight (a burst of
/// connects overflows the server's accept queue, and the dropped SYNs are
/// retried 1 s, 3 s, ... later; a connect that lost the race to an idle
/// connection still ends in the pool), 10 s at most.
async fn settled_connections() -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (established, connecting) = tcp_states();
        if connecting == 0 || Instant::now() >= deadline {
            return established;
        }
    }
}

/// This process's TCP sockets that are (established, still connecting), from
/// `/proc/self/net/tcp*` matched to its socket fds by inode. After the run
/// every established one is a connection idle in the pool.
fn tcp_states() -> (usize, usize) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return (0, 0);
    };
    let inodes: std::collections::HashSet<String> = dir
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let (mut established, mut connecting) = (0, 0);
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Field 3 is the state (01 ESTABLISHED, 02 SYN_SENT), field 9 the inode.
            if f.len() > 9 && inodes.contains(f[9]) {
                match f[3] {
                    "01" => established += 1,
                    "02" => connecting += 1,
                    _ => {}
                }
            }
        }
    }
    (established, connecting)
}
