//! The `fetch` example (and so aiox-client) against servers nobody here wrote, all on
//! 127.0.0.1:
//!
//! * PyPI's `httpbin` (0.10, the maintained fork that runs on Flask 3 and Python 3.11)
//!   under `gunicorn`: methods, form and JSON bodies, cookies through a redirect,
//!   redirect limits, basic auth, `--fail`, gzip/deflate/brotli decoding, streaming;
//! * `hypercorn` serving a small ASGI app over TLS with a CA and leaf made by `trustme`:
//!   ALPN picks HTTP/2 (the app echoes the `http_version` it saw), `--cacert` trusts
//!   the CA, no `--cacert` is exit 60;
//! * `tinyproxy` (Debian) as a forward proxy and a CONNECT tunnel, named by `-x` and by
//!   `HTTP_PROXY`/`HTTPS_PROXY`;
//! * the typed errors and their exit codes: refused (7), unresolvable (6), untrusted
//!   certificate (60), timeout (28), too many redirects (47).
//!
//! Each check prints one `PASS name` or `FAIL name: why` line on stdout; any failure
//! fails the task. Every server is started here and stopped by its own PID.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{self, Proc, Result, Tool};

/// The servers' Python packages, pinned so the combination stays one that works.
const PYTHON_PACKAGES: &[&str] = &[
    "httpbin==0.10.4",
    "flask==3.1.3",
    "werkzeug==3.1.9",
    "gunicorn==27.0.1",
    "hypercorn==0.18.0",
    "trustme==1.2.1",
];

const TOOLS: &[Tool] = &[Tool {
    bin: "tinyproxy",
    package: "tinyproxy",
}];

/// Writes `ca.pem`, `leaf.pem` (chain) and `leaf.key` for `localhost` and 127.0.0.1
/// into the directory given as argv[1].
const MAKE_CERTS: &str = r#"
import sys, trustme
out = sys.argv[1]
ca = trustme.CA()
leaf = ca.issue_cert("localhost", "127.0.0.1")
ca.cert_pem.write_to_path(out + "/ca.pem")
leaf.private_key_pem.write_to_path(out + "/leaf.key")
with open(out + "/leaf.pem", "wb") as f:
    for blob in leaf.cert_chain_pems:
        f.write(blob.bytes())
"#;

/// An ASGI app that answers `http_version=<scope's http_version>`.
const ASGI_APP: &str = r#"
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = ("http_version=" + scope["http_version"]).encode()
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain")],
    })
    await send({"type": "http.response.body", "body": body})
"#;

/// How long one `fetch` run may take before it counts as hung.
const FETCH_LIMIT: Duration = Duration::from_secs(30);

/// Runs the client checks; `out` is the interop scratch directory.
pub(super) fn run(out: &Path) -> Result<()> {
    util::ensure_tools(TOOLS)?;
    let venv = util::ensure_venv(
        &util::target_dir().join("xtask").join("client-interop-venv"),
        PYTHON_PACKAGES,
    )?;
    util::note("building the fetch example (release)");
    util::check(
        util::cargo().args(["build", "--quiet", "--release", "--example", "fetch"]),
        Duration::from_secs(30 * 60),
    )?;
    let fetch = Fetch {
        bin: util::target_dir()
            .join("release")
            .join("examples")
            .join("fetch"),
        dir: out.to_path_buf(),
    };
    let dir = out.join("client");
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();

    let mut checks = Checks::default();
    let httpbin = Server::httpbin(&venv, &dir)?;
    let hb = format!("http://127.0.0.1:{}", httpbin.port);
    httpbin_checks(&fetch, &hb, &mut checks);

    run_python(&venv, MAKE_CERTS, &[&path_str(&dir)?])?;
    let ca = path_str(&dir.join("ca.pem"))?;
    let hypercorn = Server::hypercorn(&venv, &dir)?;
    let tls = format!("https://localhost:{}/", hypercorn.port);
    tls_checks(&fetch, &tls, &ca, &mut checks);

    let proxy = Server::tinyproxy(&dir, hypercorn.port)?;
    let px = format!("http://127.0.0.1:{}", proxy.port);
    proxy_checks(&fetch, &px, &hb, &tls, &ca, &mut checks);

    error_checks(&fetch, &hb, &tls, &mut checks);

    for server in [proxy, hypercorn, httpbin] {
        server.stop();
    }
    util::note(format!(
        "client interop: {} checks in {:.1} s",
        checks.total,
        started.elapsed().as_secs_f64()
    ));
    checks.finish()
}

/// The outcome of every check so far.
#[derive(Debug, Default)]
struct Checks {
    total: usize,
    failed: Vec<String>,
}

impl Checks {
    /// Prints `PASS name` or `FAIL name: why` and remembers failures.
    fn check(&mut self, name: &str, outcome: std::result::Result<(), String>) {
        self.total += 1;
        match outcome {
            Ok(()) => println!("PASS {name}"),
            Err(why) => {
                println!("FAIL {name}: {why}");
                self.failed.push(name.to_owned());
            }
        }
    }

    fn finish(self) -> Result<()> {
        if self.failed.is_empty() {
            println!("client interop: all {} checks passed", self.total);
            Ok(())
        } else {
            Err(format!(
                "{} of {} client checks failed: {}",
                self.failed.len(),
                self.total,
                self.failed.join(", ")
            )
            .into())
        }
    }
}

/// The `fetch` binary, run with the environment's proxies removed.
struct Fetch {
    bin: PathBuf,
    dir: PathBuf,
}

/// What one `fetch` run did.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// Exit code `want`, else an explanation with what the run said.
    fn exits(&self, want: i32) -> std::result::Result<(), String> {
        if self.code == Some(want) {
            Ok(())
        } else {
            Err(format!(
                "exit {:?}, want {want}; stderr {:?}; stdout {:?}",
                self.code,
                self.stderr.trim(),
                clip(&self.stdout)
            ))
        }
    }

    /// Exit 0 and every one of `needles` in stdout.
    fn has(&self, needles: &[&str]) -> std::result::Result<(), String> {
        self.exits(0)?;
        self.contains(needles)
    }

    /// Every one of `needles` in stdout, whatever the exit code.
    fn contains(&self, needles: &[&str]) -> std::result::Result<(), String> {
        match needles.iter().find(|n| !self.stdout.contains(**n)) {
            None => Ok(()),
            Some(missing) => Err(format!(
                "{missing:?} not in stdout {:?}",
                clip(&self.stdout)
            )),
        }
    }
}

/// The first 300 characters of `text`, for failure messages.
fn clip(text: &str) -> String {
    let mut clipped: String = text.chars().take(300).collect();
    if clipped.len() < text.len() {
        clipped.push_str("...");
    }
    clipped
}

impl Fetch {
    fn run(&self, args: &[&str]) -> Ran {
        self.run_env(args, &[])
    }

    /// Runs `fetch ARGS` with `env` set and every proxy variable of ours removed.
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).current_dir(&self.dir);
        for var in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied());
        match util::run_with_timeout(&mut cmd, FETCH_LIMIT) {
            Ok(out) => Ran {
                code: if out.timed_out {
                    None
                } else {
                    out.status.code()
                },
                stdout: out.stdout_str(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Err(e) => Ran {
                code: None,
                stdout: String::new(),
                stderr: e.to_string(),
            },
        }
    }
}

fn httpbin_checks(fetch: &Fetch, hb: &str, checks: &mut Checks) {
    let url = |path: &str| format!("{hb}{path}");
    checks.check(
        "httpbin GET /get",
        fetch
            .run(&[&url("/get")])
            .has(&[&format!(r#""url": "{hb}/get""#), r#""User-Agent": "aiox/"#]),
    );
    for (method, path) in [("PUT", "/put"), ("PATCH", "/patch"), ("DELETE", "/delete")] {
        checks.check(
            &format!("httpbin -X {method} {path} with -d"),
            fetch
                .run(&["-X", method, "-d", "k=v", &url(path)])
                .has(&[&format!(r#""url": "{hb}{path}""#), r#""k": "v""#]),
        );
    }
    checks.check(
        "httpbin POST -d form",
        fetch
            .run(&["-d", "a=1", "-d", "b=two", &url("/post")])
            .has(&[
                r#""a": "1""#,
                r#""b": "two""#,
                r#""Content-Type": "application/x-www-form-urlencoded""#,
            ]),
    );
    checks.check(
        "httpbin POST --json",
        fetch
            .run(&["--json", r#"{"n": 42, "s": "x"}"#, &url("/post")])
            .has(&[
                r#""n": 42"#,
                r#""s": "x""#,
                r#""Content-Type": "application/json""#,
                r#""Accept": "application/json""#,
            ]),
    );
    checks.check(
        "httpbin -H custom header",
        fetch
            .run(&["-H", "X-Interop: yes", &url("/headers")])
            .has(&[r#""X-Interop": "yes""#]),
    );
    checks.check(
        "httpbin cookies set through a redirect",
        fetch
            .run(&[&url("/cookies/set?k=v&k2=v2")])
            .has(&[r#""k": "v""#, r#""k2": "v2""#]),
    );
    checks.check(
        "httpbin -b cookies",
        fetch
            .run(&["-b", "a=1; b=2", &url("/cookies")])
            .has(&[r#""a": "1""#, r#""b": "2""#]),
    );
    checks.check(
        "httpbin /redirect/3 followed",
        fetch
            .run(&[&url("/redirect/3")])
            .has(&[&format!(r#""url": "{hb}/get""#)]),
    );
    checks.check(
        "httpbin /absolute-redirect/2 followed",
        fetch
            .run(&[&url("/absolute-redirect/2")])
            .has(&[&format!(r#""url": "{hb}/get""#)]),
    );
    checks.check(
        "httpbin --max-redirs 2 /redirect/3 exits 47",
        fetch
            .run(&["--max-redirs", "2", &url("/redirect/3")])
            .exits(47),
    );
    checks.check(
        "httpbin /redirect/11 exits 47 (default limit 10)",
        fetch.run(&[&url("/redirect/11")]).exits(47),
    );
    checks.check(
        "httpbin --no-follow -i shows the 302",
        fetch
            .run(&["--no-follow", "-i", &url("/redirect/1")])
            .has(&["HTTP/1.1 302 FOUND\r\n", "location: /get\r\n"]),
    );
    checks.check(
        "httpbin basic auth accepted",
        fetch
            .run(&["-u", "u:p", &url("/basic-auth/u/p")])
            .has(&[r#""authenticated": true"#, r#""user": "u""#]),
    );
    checks.check(
        "httpbin basic auth refused is 401",
        fetch
            .run(&["-i", "-u", "u:wrong", &url("/basic-auth/u/p")])
            .has(&["HTTP/1.1 401 UNAUTHORIZED\r\n"]),
    );
    checks.check(
        "httpbin basic auth refused with -f exits 22",
        (|| {
            let ran = fetch.run(&["-f", "-u", "u:wrong", &url("/basic-auth/u/p")]);
            ran.exits(22)?;
            match ran.stdout.is_empty() {
                true => Ok(()),
                false => Err(format!("stdout not empty: {:?}", clip(&ran.stdout))),
            }
        })(),
    );
    for (path, flag) in [
        ("/gzip", r#""gzipped": true"#),
        ("/deflate", r#""deflated": true"#),
        ("/brotli", r#""brotli": true"#),
    ] {
        checks.check(
            &format!("httpbin {path} decoded"),
            fetch.run(&[&url(path)]).has(&[flag]),
        );
    }
    checks.check(
        "httpbin -I /get",
        (|| {
            let ran = fetch.run(&["-I", &url("/get")]);
            ran.has(&["HTTP/1.1 200 OK\r\n", "content-type: application/json\r\n"])?;
            match ran.stdout.ends_with("\r\n\r\n") {
                true => Ok(()),
                false => Err(format!("a body after the head: {:?}", clip(&ran.stdout))),
            }
        })(),
    );
    checks.check(
        "httpbin /stream/20 (chunked) has 20 lines",
        (|| {
            let ran = fetch.run(&[&url("/stream/20")]);
            ran.exits(0)?;
            match ran.stdout.lines().filter(|l| l.starts_with('{')).count() {
                20 => Ok(()),
                n => Err(format!("{n} lines")),
            }
        })(),
    );
    checks.check(
        "httpbin -o file /bytes/100000",
        (|| {
            let file = fetch.dir.join("client").join("bytes.bin");
            let path = file.to_string_lossy().into_owned();
            let ran = fetch.run(&["-o", &path, &url("/bytes/100000")]);
            ran.exits(0)?;
            let len = std::fs::metadata(&file).map_err(|e| e.to_string())?.len();
            match (len, ran.stdout.is_empty()) {
                (100_000, true) => Ok(()),
                other => Err(format!("(file length, stdout empty) = {other:?}")),
            }
        })(),
    );
    checks.check(
        "httpbin /status/503 with --retry 2 -f exits 22",
        fetch
            .run(&["--retry", "2", "-f", &url("/status/503")])
            .exits(22),
    );
}

fn tls_checks(fetch: &Fetch, tls: &str, ca: &str, checks: &mut Checks) {
    checks.check(
        "hypercorn TLS --cacert speaks HTTP/2 (ALPN)",
        fetch.run(&["--cacert", ca, tls]).has(&["http_version=2"]),
    );
    checks.check(
        "hypercorn TLS -i shows HTTP/2 200",
        fetch
            .run(&["--cacert", ca, "-i", tls])
            .has(&["HTTP/2 200\r\n"]),
    );
    checks.check(
        "hypercorn TLS --http1.1",
        fetch
            .run(&["--cacert", ca, "--http1.1", tls])
            .has(&["http_version=1.1"]),
    );
    checks.check(
        "hypercorn TLS -k",
        fetch.run(&["-k", tls]).has(&["http_version=2"]),
    );
}

fn proxy_checks(fetch: &Fetch, px: &str, hb: &str, tls: &str, ca: &str, checks: &mut Checks) {
    // httpbin hides Via unless asked with show_env.
    let get = format!("{hb}/get?show_env=1");
    let via = r#""Via": "1.1 "#;
    checks.check(
        "tinyproxy -x forward proxy adds Via",
        fetch.run(&["-x", px, &get]).has(&[via, "tinyproxy"]),
    );
    checks.check(
        "tinyproxy HTTP_PROXY from the environment",
        fetch
            .run_env(&[&get], &[("HTTP_PROXY", px)])
            .has(&[via, "tinyproxy"]),
    );
    checks.check(
        "tinyproxy NO_PROXY bypasses it",
        (|| {
            let ran = fetch.run_env(&[&get], &[("HTTP_PROXY", px), ("NO_PROXY", "127.0.0.1")]);
            ran.exits(0)?;
            match ran.stdout.contains("tinyproxy") {
                false => Ok(()),
                true => Err("went through the proxy".to_owned()),
            }
        })(),
    );
    checks.check(
        "tinyproxy -x CONNECT tunnel to hypercorn TLS",
        fetch
            .run(&["-x", px, "--cacert", ca, tls])
            .has(&["http_version=2"]),
    );
    checks.check(
        "tinyproxy HTTPS_PROXY CONNECT tunnel",
        fetch
            .run_env(&["--cacert", ca, tls], &[("HTTPS_PROXY", px)])
            .has(&["http_version=2"]),
    );
}

fn error_checks(fetch: &Fetch, hb: &str, tls: &str, checks: &mut Checks) {
    let closed = match free_port() {
        Ok(port) => port,
        Err(e) => {
            checks.check("a free port for the refused check", Err(e.to_string()));
            return;
        }
    };
    let refused = format!("http://127.0.0.1:{closed}/");
    checks.check("refused port exits 7", fetch.run(&[&refused]).exits(7));
    checks.check(
        "refused proxy exits 7",
        fetch
            .run(&["-x", &format!("127.0.0.1:{closed}"), &format!("{hb}/get")])
            .exits(7),
    );
    checks.check(
        "nonexistent.invalid exits 6",
        fetch.run(&["http://nonexistent.invalid/"]).exits(6),
    );
    checks.check(
        "untrusted certificate exits 60",
        fetch.run(&[tls]).exits(60),
    );
    checks.check(
        "-m 1 against /delay/5 exits 28",
        (|| {
            let started = Instant::now();
            let ran = fetch.run(&["-m", "1", &format!("{hb}/delay/5")]);
            ran.exits(28)?;
            match started.elapsed() < Duration::from_secs(4) {
                true => Ok(()),
                false => Err(format!("took {:?}", started.elapsed())),
            }
        })(),
    );
    checks.check(
        "unknown option exits 2",
        fetch.run(&["--no-such-option", hb]).exits(2),
    );
}

/// A server started for the checks, stopped by its PID.
struct Server {
    proc: Proc,
    port: u16,
    name: &'static str,
}

impl Server {
    fn httpbin(venv: &Path, dir: &Path) -> Result<Server> {
        let port = free_port()?;
        let mut cmd = Command::new(venv.join("gunicorn"));
        // Threads, so `/delay/5` does not hold up the other checks.
        cmd.args(["--no-control-socket", "-k", "gthread", "--threads", "8"])
            .args(["-w", "1", "-b", &format!("127.0.0.1:{port}"), "httpbin:app"])
            .current_dir(dir);
        Self::start(
            "httpbin (gunicorn)",
            &mut cmd,
            port,
            &dir.join("gunicorn.log"),
        )
    }

    fn hypercorn(venv: &Path, dir: &Path) -> Result<Server> {
        std::fs::write(dir.join("fetch_asgi.py"), ASGI_APP)?;
        let port = free_port()?;
        let mut cmd = Command::new(venv.join("hypercorn"));
        cmd.args(["--bind", &format!("127.0.0.1:{port}")])
            .args(["--certfile", "leaf.pem", "--keyfile", "leaf.key"])
            .arg("fetch_asgi:app")
            .current_dir(dir);
        Self::start("hypercorn", &mut cmd, port, &dir.join("hypercorn.log"))
    }

    /// tinyproxy in the foreground as the current user, on 127.0.0.1, allowing CONNECT
    /// to `tunnel_port` only.
    fn tinyproxy(dir: &Path, tunnel_port: u16) -> Result<Server> {
        let port = free_port()?;
        let mut config = String::new();
        writeln!(config, "Port {port}")?;
        writeln!(config, "Listen 127.0.0.1")?;
        writeln!(config, "Timeout 30")?;
        writeln!(config, "Allow 127.0.0.1")?;
        writeln!(config, "ConnectPort {tunnel_port}")?;
        writeln!(config, "MaxClients 20")?;
        writeln!(config, "LogLevel Info")?;
        let path = dir.join("tinyproxy.conf");
        std::fs::write(&path, config)?;
        let mut cmd = Command::new("tinyproxy");
        cmd.arg("-d").arg("-c").arg(&path).current_dir(dir);
        Self::start("tinyproxy", &mut cmd, port, &dir.join("tinyproxy.log"))
    }

    /// Spawns `cmd` and waits up to 30 s until `port` accepts connections.
    fn start(name: &'static str, cmd: &mut Command, port: u16, log: &Path) -> Result<Server> {
        util::note(format!("starting {name} on 127.0.0.1:{port}"));
        let mut proc = Proc::spawn(cmd, log)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(Server { proc, port, name });
            }
            // Fails if the process exited; a line of stdout is not expected.
            match proc.wait_for_line(Duration::from_millis(100), |_| None::<()>) {
                Err(e) if !e.to_string().starts_with("no expected output line") => {
                    return Err(format!(
                        "{name} did not start ({e}); see {}: {}",
                        log.display(),
                        util::tail(&std::fs::read(log).unwrap_or_default(), 5)
                    )
                    .into());
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(format!("{name} did not listen on {addr} within 30 s").into());
            }
        }
    }

    fn stop(self) {
        let pid = self.proc.pid();
        if let Err(e) = self.proc.stop(Duration::from_secs(5)) {
            util::note(format!("stopping {} (pid {pid}): {e}", self.name));
        }
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn run_python(venv: &Path, script: &str, args: &[&str]) -> Result<()> {
    let out = util::run_with_timeout(
        Command::new(venv.join("python"))
            .arg("-c")
            .arg(script)
            .args(args),
        Duration::from_secs(60),
    )?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("python failed: {}", util::tail(&out.stderr, 5)).into())
    }
}

fn path_str(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("path is not UTF-8: {}", path.display()).into())
}
