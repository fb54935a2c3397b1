//! `cargo xtask bench`: throughput, latency, CPU time and instruction counts
//! per request for aiox's `hello` example against peer servers (raw hyper,
//! axum, actix-web, and a canned no-parsing responder) in `benches/peers/`.
//!
//! Every server is run as `PROGRAM --bind 127.0.0.1:0 --workers 1`, pinned to
//! CPU 0, and must print `listening on http://ADDR`. The load generator runs
//! pinned to CPU 1. Phases:
//!
//! 1. Build `hello` (`cargo build --release --example hello`) and each peer
//!    (its own workspace and target dir, `target/peers/NAME`).
//! 2. Throughput: interleaved rounds (`for round { for server { loads } }`);
//!    HTTP/1.1 with `wrk -t1 -c64 --latency` on `/` and `/json`, h2c with
//!    `h2load -c16 -m32 -D` on `/`. Server CPU time comes from
//!    `/proc/PID/stat`. Medians over rounds are reported.
//! 3. Instructions: each server under callgrind, driven by `h2load` with an
//!    exact request count N and again with 1 request; `(Ir_N - Ir_1) / (N - 1)`.
//! 4. Report: text tables on stdout, and Markdown (also written to
//!    `target/bench/latest.md`) for `docs/benchmarks.md`.
//!
//! The client section (`client.rs`) then measures aiox's `crawler` example
//! against client peers (hyper-util's legacy client, reqwest, Python aiohttp)
//! driving the raw hyper server, and appends its tables to the same report.

mod client;
mod parse;
mod report;

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{self, Proc, Result, Tool, note};

/// glibc tunables that keep memcpy/memset off `rep movsb`/`rep stosb`, which
/// callgrind counts as one instruction per iteration.
const GLIBC_TUNABLES: &str = "glibc.cpu.x86_rep_movsb_threshold=0xffffffffffffffff:glibc.cpu.x86_rep_stosb_threshold=0xffffffffffffffff";

/// The server every ratio is relative to.
const BASELINE: &str = "hyper";

/// Tools the benchmark needs, and their Debian packages.
const TOOLS: &[Tool] = &[
    Tool {
        bin: "wrk",
        package: "wrk",
    },
    Tool {
        bin: "h2load",
        package: "nghttp2-client",
    },
    Tool {
        bin: "taskset",
        package: "util-linux",
    },
];
const VALGRIND: Tool = Tool {
    bin: "valgrind",
    package: "valgrind",
};

/// Usage text for `cargo xtask bench`.
pub(crate) const USAGE: &str = "\
cargo xtask bench [OPTIONS]

Servers: benchmarks aiox's `hello` example against the peer servers in
benches/peers (hyper = baseline, axum, actix, canned). Each server runs with
--workers 1 pinned to CPU 0; wrk/h2load run pinned to CPU 1.

Clients: runs aiox's `crawler` example and the client peers (hyper-client =
baseline, reqwest-client, aiohttp-client) pinned to CPU 1 against the raw
hyper server on CPU 0: req/s and CPU per request (HTTP/1.1 and h2c),
callgrind instructions per request, and RSS with 10,000 idle connections.

Missing tools (wrk, h2load, valgrind, taskset, prlimit) are installed with
apt-get; aiohttp is installed with pip into target/bench/venv.

Options:
  --quick            smoke test: 1 round of 3 s, callgrind with 2,000 requests,
                     20,000 requests per client run
  --only NAMES       comma-separated subset of the servers hello,hyper,axum,
                     actix,canned and the clients crawler,hyper-client,
                     reqwest-client,aiohttp-client; `client` = every client
                     (default: all of them)
  --rounds N         interleaved throughput rounds (default 3)
  --duration SECS    seconds per server throughput run (default 10)
  --requests N       requests per callgrind run (default 20000)
  --client-requests N  requests per client throughput run (default 100000)
  --no-callgrind     skip the instructions-per-request phases
  --no-build         use the binaries already built
  -h, --help         this text

Set CARGO_BUILD_JOBS=1 to keep the builds to one core.
Output: tables on stdout; Markdown also in target/bench/latest.md;
logs in target/bench/logs; callgrind files in target/bench/callgrind.";

/// A server the benchmark knows how to build and run.
#[derive(Debug)]
struct ServerSpec {
    name: &'static str,
    /// Speaks h2c (HTTP/2 by prior knowledge) on the same port.
    h2c: bool,
    /// Answers every request with the same canned response (skip `/json` checks).
    canned: bool,
    /// Extra arguments for this server only.
    extra_args: &'static [&'static str],
    about: &'static str,
}

const SERVERS: &[ServerSpec] = &[
    ServerSpec {
        name: "hello",
        h2c: true,
        canned: false,
        // aiox closes a connection after 1,000 requests (nginx's keepalive_requests);
        // h2load does not reconnect after a GOAWAY, and the peers have no such limit.
        extra_args: &["--max-requests-per-connection", "0"],
        about: "aiox `examples/hello.rs`",
    },
    ServerSpec {
        name: "hyper",
        h2c: true,
        canned: false,
        extra_args: &[],
        about: "raw hyper 1.x + hyper-util `auto` (`service_fn`, no tracing): the baseline",
    },
    ServerSpec {
        name: "axum",
        h2c: true,
        canned: false,
        extra_args: &[],
        about: "axum 0.8 (default features + `http2`), `axum::serve`",
    },
    ServerSpec {
        name: "actix",
        h2c: true,
        canned: false,
        extra_args: &[],
        about: "actix-web 4 (`bind_auto_h2c`)",
    },
    ServerSpec {
        name: "canned",
        h2c: false,
        canned: true,
        extra_args: &[],
        about: "tokio, no HTTP parsing, one fixed response per `\\r\\n\\r\\n` (the floor; HTTP/1.1 only)",
    },
];

/// The loads each server is measured under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    H1Plain,
    H1Json,
    H2cPlain,
}

impl Load {
    const ALL: [Load; 3] = [Load::H1Plain, Load::H1Json, Load::H2cPlain];

    fn index(self) -> usize {
        self as usize
    }

    fn path(self) -> &'static str {
        match self {
            Load::H1Plain | Load::H2cPlain => "/",
            Load::H1Json => "/json",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Load::H1Plain => "h1-plain",
            Load::H1Json => "h1-json",
            Load::H2cPlain => "h2c-plain",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Load::H1Plain => "HTTP/1.1 GET /",
            Load::H1Json => "HTTP/1.1 GET /json",
            Load::H2cPlain => "h2c GET /",
        }
    }

    fn h2c(self) -> bool {
        self == Load::H2cPlain
    }

    fn applies_to(self, spec: &ServerSpec) -> bool {
        !self.h2c() || spec.h2c
    }
}

#[derive(Debug, Clone)]
struct Options {
    quick: bool,
    /// Servers named in `--only` (`None`: all servers).
    only: Option<Vec<String>>,
    /// Clients to run (from `--only`; all of them without `--only`).
    clients: Vec<&'static client::ClientSpec>,
    rounds: u32,
    duration: u32,
    requests: u64,
    /// Requests per client throughput run.
    client_requests: u64,
    callgrind: bool,
    build: bool,
    /// The arguments as given, for the report.
    raw: Vec<String>,
}

fn parse_options(args: &[String]) -> Result<Option<Options>> {
    let mut quick = false;
    let mut only: Option<Vec<String>> = None;
    let mut clients: Option<Vec<&'static client::ClientSpec>> = None;
    let (mut rounds, mut duration, mut requests) = (None, None, None);
    let mut client_requests = None;
    let (mut callgrind, mut build) = (true, true);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{key} needs a value"))
        };
        match key {
            "--quick" => quick = true,
            "--only" => {
                let list = only.get_or_insert_with(Vec::new);
                let picked = clients.get_or_insert_with(Vec::new);
                for name in value()?.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if SERVERS.iter().any(|s| s.name == name) {
                        list.push(name.to_owned());
                    } else if name == "client" {
                        picked.extend(client::CLIENTS);
                    } else if let Some(c) = client::CLIENTS.iter().find(|c| c.name == name) {
                        picked.push(c);
                    } else {
                        return Err(format!(
                            "unknown name {name:?} in --only (known: {},client,{})",
                            SERVERS.iter().map(|s| s.name).collect::<Vec<_>>().join(","),
                            client::CLIENTS
                                .iter()
                                .map(|c| c.name)
                                .collect::<Vec<_>>()
                                .join(",")
                        )
                        .into());
                    }
                }
            }
            "--rounds" => rounds = Some(positive(key, &value()?)?),
            "--duration" => duration = Some(positive(key, &value()?)?),
            "--requests" => {
                let n = positive(key, &value()?)?;
                if n < 2 {
                    return Err("--requests must be at least 2".into());
                }
                requests = Some(u64::from(n));
            }
            "--client-requests" => client_requests = Some(u64::from(positive(key, &value()?)?)),
            "--no-callgrind" => callgrind = false,
            "--no-build" => build = false,
            "-h" | "--help" => return Ok(None),
            _ => return Err(format!("unknown bench option {arg:?}\n\n{USAGE}").into()),
        }
    }
    // Each client once, in the table order, however often it was named.
    let clients = match clients {
        Some(picked) => client::CLIENTS
            .iter()
            .filter(|c| picked.iter().any(|p| p.name == c.name))
            .collect(),
        None => client::CLIENTS.iter().collect(),
    };
    Ok(Some(Options {
        quick,
        only,
        clients,
        rounds: rounds.unwrap_or(if quick { 1 } else { 3 }),
        duration: duration.unwrap_or(if quick { 3 } else { 10 }),
        requests: requests.unwrap_or(if quick { 2_000 } else { 20_000 }),
        client_requests: client_requests.unwrap_or(if quick { 20_000 } else { 100_000 }),
        callgrind,
        build,
        raw: args.to_vec(),
    }))
}

fn positive(key: &str, v: &str) -> Result<u32> {
    v.parse::<u32>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{key} needs a positive integer, got {v:?}").into())
}

/// A built server ready to run.
#[derive(Debug)]
struct Target {
    spec: &'static ServerSpec,
    bin: PathBuf,
}

/// A server left out of the run: (name, reason).
type Skipped = (String, String);

/// CPUs to pin the server and the load generator to.
#[derive(Debug, Clone, Copy)]
struct Cpus {
    server: &'static str,
    load: &'static str,
}

/// One throughput measurement.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rps: f64,
    p99_us: Option<f64>,
    cpu_us: Option<f64>,
    /// Failed requests and socket errors (tolerated up to 1% of requests).
    errors: u64,
}

/// Everything measured for one server under one load.
#[derive(Debug, Default)]
struct Cell {
    samples: Vec<Sample>,
    failures: Vec<String>,
    instr: Option<Result<f64, String>>,
}

/// Shared state of one benchmark run.
#[derive(Debug)]
struct Bench {
    opts: Options,
    cpus: Cpus,
    clk_tck: f64,
    out_dir: PathBuf,
    targets: Vec<Target>,
    skipped: Vec<Skipped>,
    /// `cells[target][load]`.
    cells: Vec<[Cell; 3]>,
    warnings: Vec<String>,
}

/// Entry point of `cargo xtask bench ARGS`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let Some(opts) = parse_options(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    let started = Instant::now();

    let selected: Vec<&'static ServerSpec> = SERVERS
        .iter()
        .filter(|s| {
            opts.only
                .as_ref()
                .is_none_or(|o| o.iter().any(|n| n == s.name))
        })
        .collect();
    let mut tools = Vec::new();
    if !selected.is_empty() {
        tools.extend_from_slice(TOOLS);
    }
    if !opts.clients.is_empty() {
        tools.extend_from_slice(client::TOOLS);
    }
    if opts.callgrind {
        tools.push(VALGRIND);
    }
    util::ensure_tools(&tools)?;

    let cpus = match std::thread::available_parallelism().map_or(1, |n| n.get()) {
        n if n >= 2 => Cpus {
            server: "0",
            load: "1",
        },
        n => {
            note(format!(
                "only {n} CPU available: server and load generator share CPU 0"
            ));
            Cpus {
                server: "0",
                load: "0",
            }
        }
    };
    let clk_tck = util::capture("getconf", &["CLK_TCK"])
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0);

    let out_dir = util::target_dir().join("bench");
    fs::create_dir_all(out_dir.join("logs"))?;
    fs::create_dir_all(out_dir.join("callgrind"))?;

    let mut md = header_markdown(&opts, !selected.is_empty());
    let mut text = String::new();
    if !selected.is_empty() {
        let (targets, skipped) = build_all(&selected, &opts, &out_dir)?;
        if targets.is_empty() && opts.clients.is_empty() {
            return Err("no server could be built; nothing to benchmark".into());
        }
        let mut bench = Bench {
            cells: targets.iter().map(|_| Default::default()).collect(),
            opts: opts.clone(),
            cpus,
            clk_tck,
            out_dir: out_dir.clone(),
            targets,
            skipped,
            warnings: Vec::new(),
        };
        bench.throughput();
        if bench.opts.callgrind {
            bench.instructions();
        }
        md.push_str(&bench.markdown());
        for t in bench.tables() {
            let _ = writeln!(text, "{}", report::text(&t));
        }
        for (name, why) in &bench.skipped {
            let _ = writeln!(text, "skipped {name}: {why}");
        }
        for w in &bench.warnings {
            let _ = writeln!(text, "warning: {w}");
        }
    }
    if !opts.clients.is_empty() {
        let clients = client::run(&opts, cpus, clk_tck, &out_dir);
        if !selected.is_empty() {
            md.push('\n');
        }
        md.push_str(&clients.markdown());
        text.push_str(&clients.text());
    }

    let elapsed = started.elapsed();
    println!("{text}");
    let md_path = out_dir.join("latest.md");
    fs::write(&md_path, &md)?;
    println!(
        "\n----- Markdown for docs/benchmarks.md (also in {}) -----\n",
        md_path.display()
    );
    println!("{md}");
    note(format!("bench finished in {}", human(elapsed)));
    Ok(())
}

/// Instructions per request: `run(n)` minus `run(1)` (start-up and shutdown cancel
/// out), divided by `n - 1`; `run(k)` returns the callgrind `Ir` total of a run
/// with `k` requests.
fn instr_per_request(
    n: u64,
    mut run: impl FnMut(u64) -> Result<u64>,
) -> std::result::Result<f64, String> {
    let ir_n = run(n).map_err(|e| e.to_string())?;
    let ir_1 = run(1).map_err(|e| e.to_string())?;
    if ir_n <= ir_1 {
        Err(format!("Ir of {n} requests ({ir_n}) <= Ir of 1 ({ir_1})"))
    } else {
        Ok((ir_n - ir_1) as f64 / (n - 1) as f64)
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}

/// Builds `hello` and the selected peers; a server that fails to build is
/// skipped (with the reason), not fatal.
fn build_all(
    selected: &[&'static ServerSpec],
    opts: &Options,
    out_dir: &Path,
) -> Result<(Vec<Target>, Vec<Skipped>)> {
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    for &spec in selected {
        let (mut cmd, bin) = if spec.name == "hello" {
            example_build("hello")
        } else {
            peer_build(spec.name)
        };
        match build(spec.name, &mut cmd, bin, opts, out_dir)? {
            Ok(bin) => targets.push(Target { spec, bin }),
            Err(why) => skipped.push((spec.name.to_owned(), why)),
        }
    }
    Ok((targets, skipped))
}

/// `cargo build --release --example NAME` in the main workspace, and the binary it makes.
fn example_build(name: &str) -> (Command, PathBuf) {
    let mut cmd = util::cargo();
    cmd.current_dir(util::workspace_root())
        .args(["build", "--release", "--example", name]);
    (cmd, util::target_dir().join("release/examples").join(name))
}

/// The build of peer `benches/peers/NAME` (its own workspace, `--locked`, target
/// dir `target/peers/NAME`), and the binary `peer-NAME` it makes.
fn peer_build(name: &str) -> (Command, PathBuf) {
    let root = util::workspace_root();
    let dir = util::target_dir().join("peers").join(name);
    let mut cmd = util::cargo();
    cmd.current_dir(&root)
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(root.join("benches/peers").join(name).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&dir);
    (cmd, dir.join("release").join(format!("peer-{name}")))
}

/// Runs `cmd` (unless `--no-build`), logging to `logs/build-NAME.log`, and
/// returns `bin`, or why `name` has to be skipped.
fn build(
    name: &str,
    cmd: &mut Command,
    bin: PathBuf,
    opts: &Options,
    out_dir: &Path,
) -> Result<Result<PathBuf, String>> {
    if opts.build {
        note(format!("building {name}: {}", util::display_cmd(cmd)));
        let log = out_dir.join("logs").join(format!("build-{name}.log"));
        let out = util::run_with_timeout(cmd, Duration::from_secs(60 * 60))?;
        fs::write(
            &log,
            [out.stdout.as_slice(), out.stderr.as_slice()].concat(),
        )?;
        if !out.status.success() {
            let why = format!(
                "build failed ({}{}); see {}: {}",
                out.status,
                if out.timed_out { ", timed out" } else { "" },
                log.display(),
                util::tail(&out.stderr, 3)
            );
            note(format!("SKIPPING {name}: {why}"));
            return Ok(Err(why));
        }
    }
    if !bin.is_file() {
        let why = format!("binary {} not found", bin.display());
        note(format!("SKIPPING {name}: {why}"));
        return Ok(Err(why));
    }
    Ok(Ok(bin))
}

/// `taskset -c CPU PROGRAM`.
fn pinned(cpu: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", cpu]).arg(program);
    cmd
}

fn server_args(cmd: &mut Command, spec: &ServerSpec) {
    cmd.args(["--bind", "127.0.0.1:0", "--workers", "1"]);
    cmd.args(spec.extra_args);
}

/// Starts a server and waits for its `listening on` line.
fn start(mut cmd: Command, log: &Path, ready: Duration) -> Result<(Proc, SocketAddr)> {
    let mut proc = Proc::spawn(&mut cmd, log)?;
    match proc.wait_for_line(ready, parse::listening) {
        Ok(addr) => Ok((proc, addr)),
        Err(e) => Err(format!(
            "server did not become ready: {e} (log: {})",
            proc.log().display()
        )
        .into()),
    }
}

/// `utime + stime` of `pid` in seconds.
fn cpu_seconds(pid: u32, clk_tck: f64) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(parse::proc_stat_cpu_ticks(&stat)? as f64 / clk_tck)
}

impl Bench {
    fn throughput(&mut self) {
        let rounds = self.opts.rounds;
        let runs: usize = self
            .targets
            .iter()
            .map(|t| Load::ALL.iter().filter(|l| l.applies_to(t.spec)).count())
            .sum();
        note(format!(
            "throughput: {rounds} round(s) x {runs} runs x {} s ≈ {}",
            self.opts.duration,
            human(Duration::from_secs(
                u64::from(rounds) * runs as u64 * (u64::from(self.opts.duration) + 2)
            ))
        ));
        for round in 1..=rounds {
            for ti in 0..self.targets.len() {
                let results = self.throughput_run(ti, round);
                for (load, res) in results {
                    let cell = &mut self.cells[ti][load.index()];
                    match res {
                        Ok(s) => cell.samples.push(s),
                        Err(e) => {
                            note(format!(
                                "round {round} {} {}: FAILED: {e}",
                                self.targets[ti].spec.name,
                                load.title()
                            ));
                            cell.failures.push(format!("round {round}: {e}"));
                        }
                    }
                }
            }
        }
    }

    /// One server, one round: start it, check it answers, run every load, stop it.
    fn throughput_run(&mut self, ti: usize, round: u32) -> Vec<(Load, Result<Sample, String>)> {
        let t = &self.targets[ti];
        let loads: Vec<Load> = Load::ALL
            .into_iter()
            .filter(|l| l.applies_to(t.spec))
            .collect();
        let log = self
            .out_dir
            .join("logs")
            .join(format!("{}-round{round}.log", t.spec.name));
        let _ = fs::remove_file(&log);
        let mut cmd = pinned(self.cpus.server, &t.bin);
        server_args(&mut cmd, t.spec);
        let (proc, addr) = match start(cmd, &log, Duration::from_secs(30)) {
            Ok(v) => v,
            Err(e) => return loads.into_iter().map(|l| (l, Err(e.to_string()))).collect(),
        };
        if let Err(e) = smoke_check(addr, t.spec) {
            let e = format!("wrong response: {e}");
            return loads.into_iter().map(|l| (l, Err(e.clone()))).collect();
        }
        let mut results = Vec::new();
        let mut errors = Vec::new();
        for load in loads {
            let res = self
                .load_run(t.spec.name, &proc, addr, load, round)
                .map_err(|e| e.to_string());
            if let Ok(s) = &res {
                note(format!(
                    "round {round}/{} {:<6} {:<18} {:>9} req/s  p99 {:>9}  CPU {} µs/req",
                    self.opts.rounds,
                    t.spec.name,
                    load.title(),
                    report::thousands(s.rps.round() as u64),
                    s.p99_us.map_or("—".into(), report::latency),
                    s.cpu_us.map_or("—".into(), |v| format!("{v:.2}")),
                ));
                if s.errors > 0 {
                    errors.push(format!(
                        "{} {} round {round}: {} failed requests/socket errors",
                        t.spec.name,
                        load.title(),
                        s.errors
                    ));
                }
            }
            results.push((load, res));
        }
        let name = t.spec.name;
        self.warnings.extend(errors);
        match proc.stop(Duration::from_secs(10)) {
            Ok(status) if status.success() => {}
            Ok(status) => self.warnings.push(format!(
                "{name} exited with {status} after SIGINT (round {round}); expected 0"
            )),
            Err(e) => self.warnings.push(format!("{name}: stopping failed: {e}")),
        }
        results
    }

    fn load_run(
        &self,
        name: &str,
        proc: &Proc,
        addr: SocketAddr,
        load: Load,
        round: u32,
    ) -> Result<Sample> {
        let url = format!("http://{addr}{}", load.path());
        let d = self.opts.duration;
        let h2_log = self
            .out_dir
            .join("logs")
            .join(format!("h2load-requests-{}.tsv", std::process::id()));
        let mut cmd;
        if load.h2c() {
            cmd = pinned(self.cpus.load, "h2load");
            cmd.args(["-c16", "-m32", "-D", &d.to_string()])
                .arg(format!("--log-file={}", h2_log.display()))
                .arg(&url);
        } else {
            cmd = pinned(self.cpus.load, "wrk");
            cmd.args(["-t1", "-c64", &format!("-d{d}s"), "--latency", &url]);
        }
        let limit = Duration::from_secs(u64::from(d) + 60);
        let pid = proc.pid();
        let before = cpu_seconds(pid, self.clk_tck);
        let out = util::run_with_timeout(&mut cmd, limit)?;
        let after = cpu_seconds(pid, self.clk_tck);
        let text = out.stdout_str();
        let log = self
            .out_dir
            .join("logs")
            .join(format!("loadgen-{name}-{}-round{round}.log", load.key()));
        let _ = fs::write(
            &log,
            [out.stdout.as_slice(), out.stderr.as_slice()].concat(),
        );
        if out.timed_out {
            return Err(format!("load generator timed out after {limit:?}").into());
        }
        out.ensure_success(&cmd)?;
        let (rps, requests, p99_us, errors) = if load.h2c() {
            let h = parse::h2load(&text)?;
            if h.protocol.as_deref() != Some("h2c") {
                return Err(format!("h2load negotiated {:?}, not h2c", h.protocol).into());
            }
            let p99 = fs::read_to_string(&h2_log)
                .ok()
                .and_then(|l| parse::h2load_log_quantile(&l, 0.99));
            let _ = fs::remove_file(&h2_log);
            (h.rps, h.succeeded, p99, h.failures)
        } else {
            let w = parse::wrk(&text)?;
            (w.rps, w.requests, w.p99_us, w.errors)
        };
        if requests == 0 {
            return Err("no request succeeded".into());
        }
        if errors > requests / 100 {
            return Err(format!(
                "{errors} failed requests/socket errors (see {})",
                log.display()
            )
            .into());
        }
        let cpu_us = match (before, after) {
            (Some(b), Some(a)) => Some((a - b) * 1e6 / requests as f64),
            _ => None,
        };
        Ok(Sample {
            rps,
            p99_us,
            cpu_us,
            errors,
        })
    }
}

/// Callgrind phase and reporting.
impl Bench {
    fn instructions(&mut self) {
        let n = self.opts.requests;
        note(format!(
            "instructions: callgrind runs with {n} and 1 request(s) per server and load (slow)"
        ));
        for ti in 0..self.targets.len() {
            for load in Load::ALL {
                if !load.applies_to(self.targets[ti].spec) {
                    continue;
                }
                let name = self.targets[ti].spec.name;
                let t0 = Instant::now();
                let res = instr_per_request(n, |requests| self.callgrind_run(ti, load, requests));
                match &res {
                    Ok(v) => note(format!(
                        "callgrind {name:<6} {:<18} {:>9} instr/req  ({})",
                        load.title(),
                        report::thousands(v.round() as u64),
                        human(t0.elapsed())
                    )),
                    Err(e) => note(format!("callgrind {name} {}: FAILED: {e}", load.title())),
                }
                self.cells[ti][load.index()].instr = Some(res);
            }
        }
    }

    /// Runs the server under callgrind, sends it exactly `n` requests, stops it
    /// and returns the whole-process `Ir` total.
    fn callgrind_run(&self, ti: usize, load: Load, n: u64) -> Result<u64> {
        let t = &self.targets[ti];
        let stem = format!("{}-{}-n{n}", t.spec.name, load.key());
        let out_file = self
            .out_dir
            .join("callgrind")
            .join(format!("{stem}.callgrind"));
        let log = self
            .out_dir
            .join("logs")
            .join(format!("callgrind-{stem}.log"));
        let _ = fs::remove_file(&out_file);
        let _ = fs::remove_file(&log);
        let mut cmd = pinned(self.cpus.server, "valgrind");
        cmd.arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out_file.display()))
            .arg(&t.bin)
            .env("GLIBC_TUNABLES", GLIBC_TUNABLES);
        server_args(&mut cmd, t.spec);
        let (proc, addr) = start(cmd, &log, Duration::from_secs(180))?;

        let url = format!("http://{addr}{}", load.path());
        let mut loadgen = pinned(self.cpus.load, "h2load");
        let conns = if n == 1 {
            ["-c", "1", "-m", "1"]
        } else if load.h2c() {
            ["-c", "4", "-m", "16"]
        } else {
            ["-c", "16", "-m", "1"]
        };
        if !load.h2c() {
            loadgen.arg("--h1");
        }
        loadgen.args(["-n", &n.to_string()]).args(conns).arg(&url);
        let limit = Duration::from_secs(900);
        let out = util::run_with_timeout(&mut loadgen, limit)?;
        let gen_log = self
            .out_dir
            .join("logs")
            .join(format!("callgrind-{stem}-h2load.log"));
        let _ = fs::write(
            &gen_log,
            [out.stdout.as_slice(), out.stderr.as_slice()].concat(),
        );
        let h = if out.timed_out {
            Err(format!("h2load timed out after {limit:?}").into())
        } else {
            parse::h2load(&out.stdout_str())
        };
        let status = proc.stop(Duration::from_secs(120))?;
        let h = h?;
        if h.succeeded != n || h.failures != 0 {
            return Err(format!(
                "h2load: {} of {n} requests succeeded, {} failed (see {})",
                h.succeeded,
                h.failures,
                gen_log.display()
            )
            .into());
        }
        let want_proto = if load.h2c() { "h2c" } else { "http/1.1" };
        if h.protocol.as_deref() != Some(want_proto) {
            return Err(format!("h2load negotiated {:?}, not {want_proto}", h.protocol).into());
        }
        if !status.success() {
            return Err(format!(
                "server under valgrind exited with {status} after SIGINT (see {})",
                log.display()
            )
            .into());
        }
        let text = util::read_to_string(&out_file)?;
        parse::callgrind_ir(&text)
            .ok_or_else(|| format!("no totals/summary line in {}", out_file.display()).into())
    }

    fn tables(&self) -> Vec<report::Table> {
        let base = self.targets.iter().position(|t| t.spec.name == BASELINE);
        Load::ALL
            .into_iter()
            .map(|load| {
                let summary = |ti: usize| -> (Option<f64>, Option<f64>, Option<f64>, Option<f64>) {
                    let c = &self.cells[ti][load.index()];
                    let col = |f: fn(&Sample) -> Option<f64>| {
                        median(c.samples.iter().filter_map(f).collect())
                    };
                    let instr = c.instr.as_ref().and_then(|r| r.as_ref().ok().copied());
                    (
                        col(|s| Some(s.rps)),
                        col(|s| s.p99_us),
                        col(|s| s.cpu_us),
                        instr,
                    )
                };
                let base = base.map(summary);
                let ratio = |v: Option<f64>, b: Option<f64>| match (v, b) {
                    (Some(v), Some(b)) if b > 0.0 => Some(v / b),
                    _ => None,
                };
                let rows = self
                    .targets
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| load.applies_to(t.spec))
                    .map(|(ti, t)| {
                        let (rps, p99_us, cpu_us, instr) = summary(ti);
                        let c = &self.cells[ti][load.index()];
                        let mut notes = Vec::new();
                        if !c.failures.is_empty() {
                            notes.push(format!(
                                "{}/{} rounds failed",
                                c.failures.len(),
                                self.opts.rounds
                            ));
                        }
                        let errors: u64 = c.samples.iter().map(|s| s.errors).sum();
                        if errors > 0 {
                            notes.push(format!("{errors} failed requests"));
                        }
                        if let Some(Err(_)) = &c.instr {
                            notes.push("callgrind failed".to_owned());
                        }
                        report::Row {
                            server: t.spec.name.to_owned(),
                            rps,
                            p99_us,
                            cpu_us,
                            instr,
                            rps_ratio: ratio(rps, base.and_then(|b| b.0)),
                            instr_ratio: ratio(instr, base.and_then(|b| b.3)),
                            notes: notes.join("; "),
                        }
                    })
                    .collect();
                report::Table {
                    title: load.title().to_owned(),
                    method: self.method(load),
                    rows,
                }
            })
            .collect()
    }

    /// How `load` was generated, for table headings.
    fn method(&self, load: Load) -> String {
        let d = self.opts.duration;
        let n = self.opts.requests;
        let mut s = if load.h2c() {
            format!("`h2load -c16 -m32 -D {d}`")
        } else {
            format!("`wrk -t1 -c64 -d{d}s --latency`")
        };
        if self.opts.callgrind {
            if load.h2c() {
                let _ = write!(s, "; callgrind: `h2load -n {n} -c 4 -m 16`");
            } else {
                let _ = write!(s, "; callgrind: `h2load --h1 -n {n} -c 16`");
            }
        }
        s
    }

    /// The server section of the report (below [`header_markdown`]).
    fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "Each server runs as `--workers 1` pinned to CPU {} (`taskset`); the load generator is pinned to CPU {}. \
             {} interleaved round(s) of {} s per load; req/s, p99 and CPU time are medians over rounds. \
             CPU µs/req = the server's utime+stime (`/proc/PID/stat`) over the run / requests answered. \
             instr/req = callgrind `Ir` (user space) of a run with N = {} requests minus that of a 1-request run, \
             divided by N − 1, with `GLIBC_TUNABLES` forcing non-`rep movsb/stosb` memcpy/memset. \
             Ratios are relative to `{BASELINE}`.\n",
            self.cpus.server,
            self.cpus.load,
            self.opts.rounds,
            self.opts.duration,
            self.opts.requests,
        );
        for t in self.tables() {
            md.push_str(&report::markdown(&t));
            md.push('\n');
        }
        let _ = writeln!(md, "Servers:\n");
        for t in &self.targets {
            let _ = writeln!(md, "- `{}`: {}", t.spec.name, t.spec.about);
        }
        for (name, why) in &self.skipped {
            let _ = writeln!(md, "- `{name}`: skipped ({why})");
        }
        let mut notes: Vec<String> = self.warnings.clone();
        for (ti, t) in self.targets.iter().enumerate() {
            for load in Load::ALL {
                let c = &self.cells[ti][load.index()];
                for f in &c.failures {
                    notes.push(format!("{} {}: {f}", t.spec.name, load.title()));
                }
                if let Some(Err(e)) = &c.instr {
                    notes.push(format!("{} {} callgrind: {e}", t.spec.name, load.title()));
                }
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

/// The top of the report: date, command, machine and tool versions.
fn header_markdown(opts: &Options, servers: bool) -> String {
    let date = util::capture("date", &["-u", "+%F"]).unwrap_or_else(|| "unknown date".into());
    let mut cmd = "cargo xtask bench".to_owned();
    for a in &opts.raw {
        cmd.push(' ');
        cmd.push_str(a);
    }
    let cpu_model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                Some(
                    l.strip_prefix("model name")?
                        .split_once(':')?
                        .1
                        .trim()
                        .to_owned(),
                )
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = util::capture("uname", &["-r"]).unwrap_or_default();
    let rustc = util::capture("rustc", &["-V"]).unwrap_or_default();
    let first_line = |s: Option<String>| {
        s.and_then(|s| s.lines().next().map(str::to_owned))
            .unwrap_or_default()
    };
    let mut tools = Vec::new();
    if servers {
        // `wrk -v` prints its version but exits non-zero.
        let wrk = util::run_with_timeout(Command::new("wrk").arg("-v"), Duration::from_secs(10))
            .ok()
            .map(|o| {
                o.stdout_str()
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        tools.push(wrk);
        tools.push(first_line(util::capture("h2load", &["--version"])));
    }
    if opts.callgrind {
        tools.push(first_line(util::capture("valgrind", &["--version"])));
    }
    tools.retain(|t| !t.is_empty());

    let mut md = String::new();
    let _ = writeln!(md, "### Results {date}\n");
    let _ = writeln!(md, "Command: `{cmd}`\n");
    if opts.quick {
        let _ = writeln!(
            md,
            "**Quick smoke run** (1 round of 3 s, callgrind with {} requests, {} requests per client run): \
             not for comparison.\n",
            opts.requests, opts.client_requests
        );
    }
    let tools = if tools.is_empty() {
        String::new()
    } else {
        format!("; {}", tools.join(", "))
    };
    let _ = writeln!(
        md,
        "Machine: {cpu_model}, {ncpu} CPUs, Linux {kernel}; {rustc}{tools}.\n"
    );
    md
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// Minimal HTTP/1.1 GET over a std `TcpStream`: returns (status, content-type, body).
fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String, Vec<u8>)> {
    let timeout = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err("connection closed before the response head".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("bad status line")?;
    let mut content_type = String::new();
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = value.to_owned(),
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    let mut body = buf[head_end..].to_vec();
    let mut fill = |body: &mut Vec<u8>, want: usize| -> Result<()> {
        while body.len() < want {
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Err("connection closed mid-body".into());
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    };
    if chunked {
        // Read until the terminating zero-size chunk, then decode.
        while !body.windows(5).any(|w| w == b"0\r\n\r\n") {
            let before = body.len();
            fill(&mut body, before + 1)?;
        }
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        loop {
            let i = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("bad chunk")?;
            let size_str = String::from_utf8_lossy(&rest[..i]);
            let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| "bad chunk size")?;
            rest = &rest[i + 2..];
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(rest.get(..size).ok_or("short chunk")?);
            rest = rest.get(size + 2..).ok_or("short chunk")?;
        }
        body = decoded;
    } else {
        let len = length.ok_or("response has neither content-length nor chunked body")?;
        fill(&mut body, len)?;
        body.truncate(len);
    }
    Ok((status, content_type, body))
}

/// Checks that the server answers `GET /` (and `GET /json`) as the contract says.
fn smoke_check(addr: SocketAddr, spec: &ServerSpec) -> Result<()> {
    let mut checks = vec![("/", "text/plain", &b"Hello, World!"[..])];
    if !spec.canned {
        checks.push((
            "/json",
            "application/json",
            &br#"{"message":"Hello, World!"}"#[..],
        ));
    }
    for (path, ctype, want) in checks {
        let (status, ct, body) = http_get(addr, path).map_err(|e| format!("GET {path}: {e}"))?;
        if status != 200 || !ct.starts_with(ctype) || body != want {
            return Err(format!(
                "GET {path}: got {status} {ct:?} {:?}, want 200 {ctype:?} {:?}",
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(want)
            )
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn options() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let o = parse_options(&args("--quick --only hyper,axum --only=canned --rounds 2"))
            .unwrap()
            .unwrap();
        assert_eq!((o.rounds, o.duration, o.requests), (2, 3, 2_000));
        assert_eq!(o.client_requests, 20_000);
        assert_eq!(o.only.unwrap(), ["hyper", "axum", "canned"]);
        assert!(o.clients.is_empty(), "naming only servers runs no client");
        let o = parse_options(&[]).unwrap().unwrap();
        assert_eq!((o.rounds, o.duration, o.requests), (3, 10, 20_000));
        assert_eq!(o.client_requests, 100_000);
        assert!(o.only.is_none());
        assert_eq!(o.clients.len(), client::CLIENTS.len());

        let names = |o: &Options| o.clients.iter().map(|c| c.name).collect::<Vec<_>>();
        let o = parse_options(&args("--only client --client-requests=5000"))
            .unwrap()
            .unwrap();
        assert_eq!(
            o.only.as_deref(),
            Some(&[][..]),
            "naming only clients runs no server"
        );
        assert_eq!(
            names(&o),
            [
                "crawler",
                "hyper-client",
                "reqwest-client",
                "aiohttp-client"
            ]
        );
        assert_eq!(o.client_requests, 5_000);
        let o = parse_options(&args(
            "--only reqwest-client,hyper,hyper-client,reqwest-client",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(names(&o), ["hyper-client", "reqwest-client"]);
        assert_eq!(o.only.unwrap(), ["hyper"]);

        assert!(parse_options(&args("--only nginx")).is_err());
        assert!(parse_options(&args("--client-requests 0")).is_err());
        assert!(parse_options(&args("--requests 1")).is_err());
        assert!(parse_options(&args("--help")).unwrap().is_none());
    }
}
