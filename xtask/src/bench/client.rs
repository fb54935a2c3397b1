//! The client section of `cargo xtask bench`: aiox's `crawler` example against
//! client peers (`benches/peers/hyper-client` = the baseline,
//! `reqwest-client`, `aiohttp-client`), all with the `crawler` command line,
//! each driving the raw hyper server peer (`--workers 1`, CPU 0) from CPU 1.
//!
//! Phases:
//!
//! 1. Build the hyper server peer and the Rust clients (peers in their own
//!    workspaces and target dirs; `crawler` with
//!    `cargo build --release --example crawler`, skipped while
//!    `examples/crawler.rs` does not exist) and make the aiohttp venv
//!    (`target/bench/venv`).
//! 2. Throughput: interleaved rounds (`for round { one server; for client {
//!    HTTP/1.1, h2c } }`), each run `--requests N --concurrency 64`. req/s is
//!    the client's own figure; CPU time per request is the client process's
//!    utime + stime, read from this process's `cutime`/`cstime` across the
//!    child's run and reaping (what `wait4` reports).
//! 3. Instructions: each Rust client under callgrind (the server runs
//!    natively), `(Ir(--requests N) - Ir(--requests 1)) / (N - 1)`.
//! 4. Memory: `--requests 10000 --concurrency 10000 --limit 10000 --memory`,
//!    client and server under `prlimit --nofile=65536:65536` (or the hard
//!    limit, if lower); the client
//!    reports its RSS and idle connections after the run.

mod summary;
mod table;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::parse;
use super::report::thousands;
use super::{Cpus, GLIBC_TUNABLES, Options, SERVERS, ServerSpec, human, instr_per_request, median};
use crate::util::{self, Proc, Result, Tool, note};
use table::{Table, opt};

/// Tools the client section needs (valgrind is added for callgrind).
pub(super) const TOOLS: &[Tool] = &[
    Tool {
        bin: "taskset",
        package: "util-linux",
    },
    Tool {
        bin: "prlimit",
        package: "util-linux",
    },
];

/// The client every ratio is relative to.
const BASELINE: &str = "hyper-client";
/// The server peer every client talks to.
const SERVER: &str = "hyper";
/// Requests in flight in the throughput and callgrind runs.
const CONCURRENCY: u64 = 64;
/// Connections (and requests, and in-flight limit) of the memory run.
const MEMORY_CONNECTIONS: u64 = 10_000;
/// Open-files limit wanted for both sides of the memory run; capped at the
/// hard limit xtask runs under (raising that needs `CAP_SYS_RESOURCE`).
const NOFILE: u64 = 65_536;

/// How a client is built and started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// aiox's `crawler` example, built in the main workspace.
    Crawler,
    /// A Rust peer in `benches/peers/NAME`.
    Peer,
    /// `benches/peers/aiohttp-client/crawler.py` in the venv.
    Python,
}

/// A client the benchmark knows how to build and run.
#[derive(Debug)]
pub(super) struct ClientSpec {
    /// Name in `--only` and in the tables.
    pub(super) name: &'static str,
    kind: Kind,
    about: &'static str,
}

impl ClientSpec {
    /// A Rust program (takes `--workers`, runs under callgrind, speaks h2c).
    fn rust(&self) -> bool {
        self.kind != Kind::Python
    }
}

/// Every client, in table order.
pub(super) const CLIENTS: &[ClientSpec] = &[
    ClientSpec {
        name: "crawler",
        kind: Kind::Crawler,
        about: "aiox `examples/crawler.rs` (aiox-client)",
    },
    ClientSpec {
        name: "hyper-client",
        kind: Kind::Peer,
        about: "hyper-util's legacy `Client` + `HttpConnector`: the baseline",
    },
    ClientSpec {
        name: "reqwest-client",
        kind: Kind::Peer,
        about: "reqwest (default features but TLS; `http2`)",
    },
    ClientSpec {
        name: "aiohttp-client",
        kind: Kind::Python,
        about: "Python aiohttp `ClientSession` + `TCPConnector`, plain asyncio loop (no HTTP/2)",
    },
];

/// The protocols each client is measured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    H1,
    H2c,
}

impl Proto {
    const ALL: [Proto; 2] = [Proto::H1, Proto::H2c];

    fn index(self) -> usize {
        self as usize
    }

    fn key(self) -> &'static str {
        match self {
            Proto::H1 => "h1",
            Proto::H2c => "h2c",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Proto::H1 => "HTTP/1.1 GET /",
            Proto::H2c => "h2c GET /",
        }
    }

    fn applies_to(self, spec: &ClientSpec) -> bool {
        self == Proto::H1 || spec.rust()
    }
}

/// A built client: `program pre_args... ARGS`.
#[derive(Debug)]
struct Client {
    spec: &'static ClientSpec,
    program: PathBuf,
    pre_args: Vec<OsString>,
}

impl Client {
    /// The client's arguments for `requests` requests to `url`.
    fn args(&self, requests: u64, concurrency: u64, proto: Proto, url: &str) -> Vec<OsString> {
        let mut args = self.pre_args.clone();
        if self.spec.rust() {
            args.extend(["--workers".into(), "1".into()]);
        }
        args.extend([
            "--requests".into(),
            requests.to_string().into(),
            "--concurrency".into(),
            concurrency.to_string().into(),
        ]);
        if proto == Proto::H2c {
            args.push("--http2-prior-knowledge".into());
        }
        args.push(url.into());
        args
    }
}

/// The open-files limit the memory run asks for: [`NOFILE`], or the hard
/// limit of this process if that is lower.
fn nofile() -> u64 {
    let hard = fs::read_to_string("/proc/self/limits").ok().and_then(|t| {
        let line = t.lines().find(|l| l.starts_with("Max open files"))?;
        // "Max open files  SOFT  HARD  files"; "unlimited" parses as None.
        line.split_whitespace().nth(4)?.parse::<u64>().ok()
    });
    hard.map_or(NOFILE, |h| h.min(NOFILE))
}

/// Proxy variables removed from every client's environment, so that all
/// traffic goes straight to 127.0.0.1 (reqwest honours them by default).
const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
];

/// `[prlimit --nofile=N:N] taskset -c CPU PROGRAM` (N from [`nofile`]), with
/// no proxy variables in its environment.
fn launch(cpu: &str, raise_nofile: bool, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd;
    if raise_nofile {
        let n = nofile();
        cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={n}:{n}")).arg("taskset");
    } else {
        cmd = Command::new("taskset");
    }
    cmd.args(["-c", cpu]).arg(program);
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// One throughput measurement.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rps: f64,
    /// The client's CPU time per request.
    cpu_us: Option<f64>,
    /// The server's CPU time per request over the same run: near 1 s per
    /// second means the server, not the client, set the pace.
    server_cpu_us: Option<f64>,
}

/// Everything measured for one client under one protocol.
#[derive(Debug, Default)]
struct Cell {
    samples: Vec<Sample>,
    failures: Vec<String>,
    instr: Option<Result<f64, String>>,
}

/// The outcome of one memory run.
#[derive(Debug, Clone, Copy)]
struct MemoryRun {
    /// What the client reported.
    memory: summary::Memory,
    /// SYNs the kernel dropped on full accept queues during the run
    /// (`ListenOverflows`, machine-wide): each is a connect retried 1 s, 3 s,
    /// ... later, which the idle count depends on.
    overflows: Option<u64>,
}

/// `TcpExt: ListenOverflows` from `/proc/net/netstat`.
fn listen_overflows() -> Option<u64> {
    summary::netstat_counter(
        &fs::read_to_string("/proc/net/netstat").ok()?,
        "TcpExt",
        "ListenOverflows",
    )
}

/// Shared state of the client section; its report once finished.
#[derive(Debug)]
pub(super) struct ClientBench {
    opts: Options,
    cpus: Cpus,
    clk_tck: f64,
    out_dir: PathBuf,
    server: Option<PathBuf>,
    clients: Vec<Client>,
    skipped: Vec<(String, String)>,
    /// `cells[client][proto]`.
    cells: Vec<[Cell; 2]>,
    memory: Vec<Option<Result<MemoryRun, String>>>,
    /// Library and interpreter versions, for the report.
    versions: Vec<String>,
    warnings: Vec<String>,
}

/// Runs the client section for `opts.clients`. Failures are recorded in the
/// report rather than returned, so they never cost the server section.
pub(super) fn run(opts: &Options, cpus: Cpus, clk_tck: f64, out_dir: &Path) -> ClientBench {
    let mut bench = ClientBench {
        opts: opts.clone(),
        cpus,
        clk_tck,
        out_dir: out_dir.to_path_buf(),
        server: None,
        clients: Vec::new(),
        skipped: Vec::new(),
        cells: Vec::new(),
        memory: Vec::new(),
        versions: Vec::new(),
        warnings: Vec::new(),
    };
    let t0 = Instant::now();
    bench.build();
    bench.cells = bench.clients.iter().map(|_| Default::default()).collect();
    bench.memory = bench.clients.iter().map(|_| None).collect();
    if bench.server.is_none() || bench.clients.is_empty() {
        return bench;
    }
    bench.throughput();
    if bench.opts.callgrind {
        bench.instructions();
    }
    bench.memory();
    note(format!(
        "client section finished in {}",
        human(t0.elapsed())
    ));
    bench
}

fn hyper_spec() -> &'static ServerSpec {
    SERVERS
        .iter()
        .find(|s| s.name == SERVER)
        .expect("the hyper server peer is in SERVERS")
}

/// Whether the main workspace has a `crawler` example yet.
fn crawler_exists(root: &Path) -> bool {
    root.join("examples/crawler.rs").is_file()
        || root.join("examples/crawler/main.rs").is_file()
        || fs::read_to_string(root.join("Cargo.toml"))
            .is_ok_and(|t| t.lines().any(|l| l.trim() == "name = \"crawler\""))
}

/// Build phase.
impl ClientBench {
    fn build(&mut self) {
        let root = util::workspace_root();
        let (mut cmd, bin) = super::peer_build(SERVER);
        match super::build(SERVER, &mut cmd, bin, &self.opts, &self.out_dir) {
            Ok(Ok(bin)) => self.server = Some(bin),
            Ok(Err(why)) => self.skipped.push((format!("server {SERVER}"), why)),
            Err(e) => self
                .skipped
                .push((format!("server {SERVER}"), e.to_string())),
        }
        for &spec in &self.opts.clients {
            let built = match spec.kind {
                Kind::Crawler if !crawler_exists(&root) => {
                    note(
                        "SKIPPING crawler: crawler example not built yet (no examples/crawler.rs)",
                    );
                    Err("crawler example not built yet (no `examples/crawler.rs`)".to_owned())
                }
                Kind::Crawler | Kind::Peer => {
                    let (mut cmd, bin) = if spec.kind == Kind::Crawler {
                        super::example_build("crawler")
                    } else {
                        super::peer_build(spec.name)
                    };
                    super::build(spec.name, &mut cmd, bin, &self.opts, &self.out_dir)
                        .unwrap_or_else(|e| Err(e.to_string()))
                        .map(|bin| (bin, Vec::new()))
                }
                Kind::Python => {
                    let venv = self.out_dir.join("venv");
                    match util::ensure_venv(&venv, &["aiohttp"]) {
                        Ok(bin) => {
                            let script = root.join("benches/peers/aiohttp-client/crawler.py");
                            Ok((bin.join("python"), vec![script.into_os_string()]))
                        }
                        Err(e) => {
                            let why = format!("cannot set up the aiohttp venv: {e}");
                            note(format!("SKIPPING {}: {why}", spec.name));
                            Err(why)
                        }
                    }
                }
            };
            match built {
                Ok((program, pre_args)) => self.clients.push(Client {
                    spec,
                    program,
                    pre_args,
                }),
                Err(why) => self.skipped.push((spec.name.to_owned(), why)),
            }
        }
        self.versions = self.versions();
    }

    /// `reqwest 0.13.5, hyper 1.12.0, ...` for the clients that run.
    fn versions(&self) -> Vec<String> {
        let root = util::workspace_root();
        let mut v = Vec::new();
        let lock = |peer: &str| {
            fs::read_to_string(root.join("benches/peers").join(peer).join("Cargo.lock"))
        };
        for c in &self.clients {
            match c.spec.name {
                "hyper-client" => {
                    if let Ok(l) = lock("hyper-client") {
                        for name in ["hyper", "hyper-util", "tokio"] {
                            if let Some(ver) = summary::lock_version(&l, name) {
                                v.push(format!("{name} {ver}"));
                            }
                        }
                    }
                }
                "reqwest-client" => {
                    if let Some(ver) = lock("reqwest-client")
                        .ok()
                        .and_then(|l| summary::lock_version(&l, "reqwest"))
                    {
                        v.push(format!("reqwest {ver}"));
                    }
                }
                "aiohttp-client" => {
                    let script = "import sys, aiohttp; \
                        print(f'Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}')";
                    if let Some(s) = util::capture(&c.program.to_string_lossy(), &["-c", script]) {
                        v.push(s);
                    }
                }
                _ => {}
            }
        }
        v
    }

    /// Starts the hyper server peer on the server CPU and checks it answers.
    fn start_server(&self, tag: &str, raise_nofile: bool) -> Result<(Proc, SocketAddr)> {
        let bin = self.server.as_ref().ok_or("no server binary")?;
        let log = self
            .out_dir
            .join("logs")
            .join(format!("client-server-{tag}.log"));
        let _ = fs::remove_file(&log);
        let mut cmd = launch(self.cpus.server, raise_nofile, bin);
        super::server_args(&mut cmd, hyper_spec());
        let (proc, addr) = super::start(cmd, &log, Duration::from_secs(30))?;
        super::smoke_check(addr, hyper_spec()).map_err(|e| format!("wrong response: {e}"))?;
        Ok((proc, addr))
    }

    /// Stops a server started by [`Self::start_server`], noting a bad exit.
    fn stop_server(&mut self, proc: Proc, tag: &str) {
        match proc.stop(Duration::from_secs(10)) {
            Ok(status) if status.success() => {}
            Ok(status) => self.warnings.push(format!(
                "server {SERVER} exited with {status} after SIGINT ({tag}); expected 0"
            )),
            Err(e) => self
                .warnings
                .push(format!("server {SERVER}: stopping failed ({tag}): {e}")),
        }
    }

    /// Runs `cmd` (a client), writes its output to `log`, and returns the
    /// parsed summary after checking that all `n` requests got a 2xx/3xx.
    fn run_client(
        &self,
        cmd: &mut Command,
        n: u64,
        limit: Duration,
        log: &Path,
    ) -> Result<summary::Summary> {
        let out = util::run_with_timeout(cmd, limit)?;
        let _ = fs::write(log, [out.stdout.as_slice(), out.stderr.as_slice()].concat());
        if out.timed_out {
            return Err(format!("timed out after {limit:?} (see {})", log.display()).into());
        }
        out.ensure_success(cmd)?;
        let s = summary::parse(&out.stdout_str())
            .map_err(|e| format!("{e} (see {})", log.display()))?;
        if s.requests != n || s.ok != n {
            return Err(format!(
                "{} of {n} requests ok, {} errors: {} (see {})",
                s.ok,
                s.errors,
                util::tail(&out.stderr, 1),
                log.display()
            )
            .into());
        }
        Ok(s)
    }
}

/// `cutime + cstime` of this process, in seconds.
fn children_cpu_seconds(clk_tck: f64) -> Option<f64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    Some(summary::children_cpu_ticks(&stat)? as f64 / clk_tck)
}

/// Throughput phase.
impl ClientBench {
    fn throughput(&mut self) {
        let rounds = self.opts.rounds;
        let n = self.opts.client_requests;
        let runs: usize = self
            .clients
            .iter()
            .map(|c| Proto::ALL.iter().filter(|p| p.applies_to(c.spec)).count())
            .sum();
        note(format!(
            "client throughput: {rounds} round(s) x {runs} runs of {} requests",
            thousands(n)
        ));
        for round in 1..=rounds {
            let tag = format!("round{round}");
            let (proc, addr) = match self.start_server(&tag, false) {
                Ok(v) => v,
                Err(e) => {
                    let e = format!("round {round}: server: {e}");
                    note(format!("client {e}"));
                    for (ci, c) in self.clients.iter().enumerate() {
                        for p in Proto::ALL.into_iter().filter(|p| p.applies_to(c.spec)) {
                            self.cells[ci][p.index()].failures.push(e.clone());
                        }
                    }
                    continue;
                }
            };
            for ci in 0..self.clients.len() {
                for proto in Proto::ALL {
                    if !proto.applies_to(self.clients[ci].spec) {
                        continue;
                    }
                    let name = self.clients[ci].spec.name;
                    match self.throughput_run(ci, proto, (proc.pid(), addr), round) {
                        Ok(s) => {
                            let us = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.2}"));
                            note(format!(
                                "round {round}/{rounds} {name:<14} {:<15} {:>9} req/s  CPU {} µs/req  \
                                 server CPU {} µs/req",
                                proto.title(),
                                thousands(s.rps.round() as u64),
                                us(s.cpu_us),
                                us(s.server_cpu_us),
                            ));
                            self.cells[ci][proto.index()].samples.push(s);
                        }
                        Err(e) => {
                            note(format!(
                                "round {round} {name} {}: FAILED: {e}",
                                proto.title()
                            ));
                            self.cells[ci][proto.index()]
                                .failures
                                .push(format!("round {round}: {e}"));
                        }
                    }
                }
            }
            self.stop_server(proc, &tag);
        }
    }

    /// One client run against the server `(pid, addr)`.
    fn throughput_run(
        &self,
        ci: usize,
        proto: Proto,
        (server_pid, addr): (u32, SocketAddr),
        round: u32,
    ) -> Result<Sample> {
        let c = &self.clients[ci];
        let n = self.opts.client_requests;
        let url = format!("http://{addr}/");
        let mut cmd = launch(self.cpus.load, false, &c.program);
        cmd.args(c.args(n, CONCURRENCY, proto, &url));
        let log = self.out_dir.join("logs").join(format!(
            "client-{}-{}-round{round}.log",
            c.spec.name,
            proto.key()
        ));
        // Generous: 500 req/s at the least.
        let limit = Duration::from_secs(60 + n / 500);
        let per_request = |before: Option<f64>, after: Option<f64>| match (before, after) {
            (Some(b), Some(a)) => Some((a - b) * 1e6 / n as f64),
            _ => None,
        };
        let before = children_cpu_seconds(self.clk_tck);
        let server_before = super::cpu_seconds(server_pid, self.clk_tck);
        let s = self.run_client(&mut cmd, n, limit, &log)?;
        let after = children_cpu_seconds(self.clk_tck);
        let server_after = super::cpu_seconds(server_pid, self.clk_tck);
        Ok(Sample {
            rps: s.rps,
            cpu_us: per_request(before, after),
            server_cpu_us: per_request(server_before, server_after),
        })
    }
}

/// Callgrind phase.
impl ClientBench {
    fn instructions(&mut self) {
        let n = self.opts.requests;
        note(format!(
            "client instructions: callgrind runs with {n} and 1 request(s) \
             per Rust client and protocol (slow)"
        ));
        for ci in 0..self.clients.len() {
            if !self.clients[ci].spec.rust() {
                continue;
            }
            let name = self.clients[ci].spec.name;
            let tag = format!("callgrind-{name}");
            let (proc, addr) = match self.start_server(&tag, false) {
                Ok(v) => v,
                Err(e) => {
                    for p in Proto::ALL {
                        self.cells[ci][p.index()].instr = Some(Err(format!("server: {e}")));
                    }
                    continue;
                }
            };
            for proto in Proto::ALL {
                let t0 = Instant::now();
                let res =
                    instr_per_request(n, |requests| self.callgrind_run(ci, proto, addr, requests));
                match &res {
                    Ok(v) => note(format!(
                        "callgrind {name:<14} {:<15} {:>9} instr/req  ({})",
                        proto.title(),
                        thousands(v.round() as u64),
                        human(t0.elapsed())
                    )),
                    Err(e) => note(format!("callgrind {name} {}: FAILED: {e}", proto.title())),
                }
                self.cells[ci][proto.index()].instr = Some(res);
            }
            self.stop_server(proc, &tag);
        }
    }

    /// Runs client `ci` under callgrind for exactly `n` requests and returns
    /// the whole-process `Ir` total.
    fn callgrind_run(&self, ci: usize, proto: Proto, addr: SocketAddr, n: u64) -> Result<u64> {
        let c = &self.clients[ci];
        let stem = format!("client-{}-{}-n{n}", c.spec.name, proto.key());
        let out_file = self
            .out_dir
            .join("callgrind")
            .join(format!("{stem}.callgrind"));
        let log = self
            .out_dir
            .join("logs")
            .join(format!("callgrind-{stem}.log"));
        let _ = fs::remove_file(&out_file);
        let mut cmd = launch(self.cpus.load, false, "valgrind");
        cmd.arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out_file.display()))
            .arg(&c.program)
            .args(c.args(n, CONCURRENCY, proto, &format!("http://{addr}/")))
            .env("GLIBC_TUNABLES", GLIBC_TUNABLES);
        self.run_client(&mut cmd, n, Duration::from_secs(900), &log)?;
        let text = util::read_to_string(&out_file)?;
        parse::callgrind_ir(&text)
            .ok_or_else(|| format!("no totals/summary line in {}", out_file.display()).into())
    }
}

/// Memory phase.
impl ClientBench {
    fn memory(&mut self) {
        note(format!(
            "client memory: {} connections per client, then RSS with them idle",
            thousands(MEMORY_CONNECTIONS)
        ));
        let n = nofile();
        if n < MEMORY_CONNECTIONS + 100 {
            self.warnings.push(format!(
                "the open-files hard limit ({n}) is too low for {MEMORY_CONNECTIONS} connections"
            ));
        }
        for ci in 0..self.clients.len() {
            let name = self.clients[ci].spec.name;
            let res = self.memory_run(ci).map_err(|e| e.to_string());
            match &res {
                Ok(m) => note(format!(
                    "memory {name:<14} RSS {} KiB, {} idle connections, {} SYNs dropped",
                    thousands(m.memory.rss_kib),
                    thousands(m.memory.idle),
                    m.overflows.map_or("?".into(), thousands),
                )),
                Err(e) => note(format!("memory {name}: FAILED: {e}")),
            }
            self.memory[ci] = Some(res);
        }
    }

    fn memory_run(&mut self, ci: usize) -> Result<MemoryRun> {
        let c = &self.clients[ci];
        let name = c.spec.name;
        let tag = format!("memory-{name}");
        let n = MEMORY_CONNECTIONS;
        let (proc, addr) = self.start_server(&tag, true)?;
        let server_log = proc.log().to_path_buf();
        let mut cmd = launch(self.cpus.load, true, &c.program);
        let mut args = c.args(n, n, Proto::H1, &format!("http://{addr}/"));
        let url = args.pop();
        args.extend(["--limit".into(), n.to_string().into(), "--memory".into()]);
        args.extend(url);
        cmd.args(args);
        let log = self
            .out_dir
            .join("logs")
            .join(format!("client-{name}-memory.log"));
        let overflows_before = listen_overflows();
        let res = self.run_client(&mut cmd, n, Duration::from_secs(300), &log);
        let overflows = listen_overflows()
            .zip(overflows_before)
            .map(|(a, b)| a.saturating_sub(b));
        self.stop_server(proc, &tag);
        // The peer logs `accept error` (EMFILE and the like) and carries on.
        let accept_errors = fs::read_to_string(&server_log)
            .map(|t| t.lines().filter(|l| l.contains("accept error")).count())
            .unwrap_or(0);
        if accept_errors > 0 {
            self.warnings.push(format!(
                "memory {name}: the server logged {accept_errors} accept errors (see {})",
                server_log.display()
            ));
        }
        let memory = res?
            .memory
            .ok_or_else(|| format!("no `memory` line in the output (see {})", log.display()))?;
        Ok(MemoryRun { memory, overflows })
    }
}

/// Reporting.
impl ClientBench {
    fn ratio(v: Option<f64>, base: Option<f64>) -> Option<f64> {
        match (v, base) {
            (Some(v), Some(b)) if b > 0.0 => Some(v / b),
            _ => None,
        }
    }

    /// (req/s, CPU µs/req, server CPU µs/req, instr/req) of client `ci` under `proto`.
    fn summary(&self, ci: usize, proto: Proto) -> [Option<f64>; 4] {
        let c = &self.cells[ci][proto.index()];
        let rps = median(c.samples.iter().map(|s| s.rps).collect());
        let cpu = median(c.samples.iter().filter_map(|s| s.cpu_us).collect());
        let server = median(c.samples.iter().filter_map(|s| s.server_cpu_us).collect());
        let instr = c.instr.as_ref().and_then(|r| r.as_ref().ok().copied());
        [rps, cpu, server, instr]
    }

    fn tables(&self) -> Vec<Table> {
        let base = self.clients.iter().position(|c| c.spec.name == BASELINE);
        let vs = |what: &str| format!("{what} vs {BASELINE}");
        let x = |v: f64| format!("{v:.2}x");
        let mut tables: Vec<Table> = Proto::ALL
            .into_iter()
            .map(|proto| {
                let b = base.map(|b| self.summary(b, proto));
                let rows = self
                    .clients
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| proto.applies_to(c.spec))
                    .map(|(ci, c)| {
                        let [rps, cpu, server, instr] = self.summary(ci, proto);
                        let cell = &self.cells[ci][proto.index()];
                        let mut notes = Vec::new();
                        if !cell.failures.is_empty() {
                            notes.push(format!(
                                "{}/{} rounds failed",
                                cell.failures.len(),
                                self.opts.rounds
                            ));
                        }
                        if let Some(Err(_)) = &cell.instr {
                            notes.push("callgrind failed".to_owned());
                        }
                        let busy = rps.zip(server).map(|(r, s)| r * s / 1e6);
                        if let Some(busy) = busy.filter(|&b| b >= 0.9) {
                            notes.push(format!("server-bound (server CPU {:.0}%)", busy * 100.0));
                        }
                        vec![
                            c.spec.name.to_owned(),
                            opt(rps, |v| thousands(v.round() as u64)),
                            opt(cpu, |v| format!("{v:.2}")),
                            opt(server, |v| format!("{v:.2}")),
                            opt(instr, |v| thousands(v.round() as u64)),
                            opt(Self::ratio(rps, b.and_then(|b| b[0])), x),
                            opt(Self::ratio(cpu, b.and_then(|b| b[1])), x),
                            opt(Self::ratio(instr, b.and_then(|b| b[3])), x),
                            notes.join("; "),
                        ]
                    })
                    .collect();
                Table {
                    title: format!("Client {}", proto.title()),
                    method: self.method(proto),
                    headers: vec![
                        "client".into(),
                        "req/s".into(),
                        "CPU µs/req".into(),
                        "server CPU µs/req".into(),
                        "instr/req".into(),
                        vs("req/s"),
                        vs("CPU"),
                        vs("instr"),
                        "notes".into(),
                    ],
                    rows,
                }
            })
            .collect();

        let run = |ci: usize| match &self.memory[ci] {
            Some(Ok(m)) => Some(*m),
            _ => None,
        };
        let rss = |ci: usize| run(ci).map(|m| m.memory.rss_kib as f64);
        let base_rss = base.and_then(rss);
        let rows = self
            .clients
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                let idle = run(ci).map(|m| m.memory.idle as f64);
                let dropped = run(ci).and_then(|m| m.overflows).map(|o| o as f64);
                let mut notes = String::new();
                if let Some(Err(_)) = &self.memory[ci] {
                    notes.push_str("failed");
                } else if idle.is_some_and(|i| i < MEMORY_CONNECTIONS as f64) {
                    notes.push_str("fewer idle connections than requests");
                }
                vec![
                    c.spec.name.to_owned(),
                    opt(rss(ci), |v| format!("{:.1} MiB", v / 1024.0)),
                    opt(idle, |v| thousands(v as u64)),
                    // Per connection, the process's base RSS included: an upper bound.
                    opt(
                        rss(ci)
                            .zip(idle)
                            .filter(|(_, i)| *i > 0.0)
                            .map(|(r, i)| r / i),
                        |v| format!("{v:.1}"),
                    ),
                    opt(Self::ratio(rss(ci), base_rss), x),
                    opt(dropped, |v| thousands(v as u64)),
                    notes,
                ]
            })
            .collect();
        tables.push(Table {
            title: format!(
                "Client memory, {} idle HTTP/1.1 connections",
                thousands(MEMORY_CONNECTIONS)
            ),
            method: format!(
                "`CLIENT --requests {n} --concurrency {n} --limit {n} --memory URL` \
                 (client and server under `prlimit --nofile={f}:{f}`)",
                n = MEMORY_CONNECTIONS,
                f = nofile(),
            ),
            headers: vec![
                "client".into(),
                "RSS".into(),
                "idle connections".into(),
                "RSS KiB / connection".into(),
                vs("RSS"),
                "SYNs dropped".into(),
                "notes".into(),
            ],
            rows,
        });
        tables
    }

    /// How the numbers of `proto`'s table were made, for its heading.
    fn method(&self, proto: Proto) -> String {
        let h2 = if proto == Proto::H2c {
            " --http2-prior-knowledge"
        } else {
            ""
        };
        let mut s = format!(
            "`CLIENT --requests {} --concurrency {CONCURRENCY}{h2} URL`",
            self.opts.client_requests
        );
        if self.opts.callgrind {
            let _ = write!(
                s,
                "; callgrind: `--requests {}` minus `--requests 1`",
                self.opts.requests
            );
        }
        s
    }

    /// The section as plain text, for stdout.
    pub(super) fn text(&self) -> String {
        let mut out = String::new();
        if !self.clients.is_empty() && self.server.is_some() {
            for t in self.tables() {
                let _ = writeln!(out, "{}", table::text(&t));
            }
        }
        for (name, why) in &self.skipped {
            let _ = writeln!(out, "skipped {name}: {why}");
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }

    /// The section as Markdown, appended to `target/bench/latest.md`.
    pub(super) fn markdown(&self) -> String {
        let mut md = String::from("#### Clients\n\n");
        let _ = writeln!(
            md,
            "Each client runs pinned to CPU {} (`taskset`) against the raw `{SERVER}` server peer \
             (`--workers 1`, pinned to CPU {}), `GET http://127.0.0.1:PORT/` (`Hello, World!`); the Rust \
             clients run with `--workers 1` (a one-worker multi-thread tokio runtime). \
             {} interleaved round(s) (one server per round, every client in turn); req/s (the client's own \
             `req_per_s`: requests / time from the first request to the last body) and CPU time are medians \
             over rounds. CPU µs/req = the client process's utime+stime (whole process, start-up included; \
             `cutime`/`cstime` of the parent across the run, as `wait4` reports it) / requests; \
             server CPU µs/req = the server's over the same run (`/proc/PID/stat`); where it adds up to \
             90% of a CPU or more the server, not the client, set the req/s (noted as server-bound). \
             instr/req = callgrind `Ir` of the client (the server runs natively) with `--requests {}` minus \
             that with `--requests 1`, divided by N − 1, with the same `GLIBC_TUNABLES` as above. \
             Ratios are relative to `{BASELINE}`. Memory: RSS and idle connections as the client reports \
             them once its pool is at rest; SYNs dropped = the kernel's `ListenOverflows` over the run \
             (machine-wide; the server peer listens with a backlog of 4,096 so the burst of 10,000 \
             connects is not dropped); `crawler --memory` holds every first response until all have \
             arrived, so its pool opens one connection per request.{}\n",
            self.cpus.load,
            self.cpus.server,
            self.opts.rounds,
            self.opts.requests,
            if self.versions.is_empty() {
                String::new()
            } else {
                format!(" Versions: {}.", self.versions.join(", "))
            },
        );
        if !self.clients.is_empty() && self.server.is_some() {
            for t in self.tables() {
                md.push_str(&table::markdown(&t));
                md.push('\n');
            }
        }
        let _ = writeln!(md, "Clients:\n");
        for c in &self.clients {
            let _ = writeln!(md, "- `{}`: {}", c.spec.name, c.spec.about);
        }
        for (name, why) in &self.skipped {
            let _ = writeln!(md, "- `{name}`: skipped ({why})");
        }
        let mut notes = self.warnings.clone();
        for (ci, c) in self.clients.iter().enumerate() {
            for proto in Proto::ALL {
                let cell = &self.cells[ci][proto.index()];
                for f in &cell.failures {
                    notes.push(format!("{} {}: {f}", c.spec.name, proto.title()));
                }
                if let Some(Err(e)) = &cell.instr {
                    notes.push(format!("{} {} callgrind: {e}", c.spec.name, proto.title()));
                }
            }
            if let Some(Err(e)) = &self.memory[ci] {
                notes.push(format!("{} memory: {e}", c.spec.name));
            }
        }
        if !notes.is_empty() {
            let _ = writeln!(md, "\nNotes:\n");
            for n in notes {
                let _ = writeln!(md, "- {n}");
            }
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_crawler_example() {
        let root = std::env::temp_dir().join(format!("xtask-crawler-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("examples")).unwrap();
        fs::write(root.join("Cargo.toml"), "[package]\nname = \"aiox\"\n").unwrap();
        assert!(!crawler_exists(&root));
        fs::write(root.join("examples/crawler.rs"), "fn main() {}\n").unwrap();
        assert!(crawler_exists(&root));
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn client_arguments() {
        let args = |spec: &'static ClientSpec, proto| {
            let c = Client {
                spec,
                program: "prog".into(),
                pre_args: vec!["script.py".into()],
            };
            c.args(20_000, 64, proto, "http://127.0.0.1:1/")
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            args(&CLIENTS[0], Proto::H2c),
            "script.py --workers 1 --requests 20000 --concurrency 64 \
             --http2-prior-knowledge http://127.0.0.1:1/"
        );
        assert_eq!(
            args(&CLIENTS[3], Proto::H1),
            "script.py --requests 20000 --concurrency 64 http://127.0.0.1:1/"
        );
        assert!(!Proto::H2c.applies_to(&CLIENTS[3]));
        assert!(CLIENTS.iter().any(|c| c.name == BASELINE));
    }
}
