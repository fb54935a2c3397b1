//! `cargo xtask interop`: the examples against real clients nobody here wrote.
//!
//! Installs what it needs (curl, h2load, openssl from Debian; aiohttp and httpx in a
//! venv under `target/xtask/interop-venv`), builds the examples, and checks over
//! real sockets on 127.0.0.1:
//!
//! * `hello` with curl over HTTP/1.1 and h2c (prior knowledge), h2load over h2c,
//!   Python aiohttp (HTTP/1.1) and httpx (HTTP/1.1 and h2c);
//! * `hello` with TLS (a certificate made by openssl for the run): curl and httpx
//!   negotiate `h2` by ALPN, curl `--http1.1` gets HTTP/1.1;
//! * a request line over 8 KiB is answered 414 to curl;
//! * SIGTERM makes the server exit 0;
//! * the `fetch` example against httpbin, hypercorn and tinyproxy ([`client`]).
//!
//! `cargo xtask interop server` runs only the server checks, `cargo xtask interop
//! client` only the client ones.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::{self, Proc, Result, Tool};

mod client;

const TOOLS: &[Tool] = &[
    Tool {
        bin: "curl",
        package: "curl",
    },
    Tool {
        bin: "h2load",
        package: "nghttp2-client",
    },
    Tool {
        bin: "openssl",
        package: "openssl",
    },
];

const PYTHON_PACKAGES: &[&str] = &["aiohttp==3.13.2", "httpx[http2]==0.28.1"];

/// The Python client checks: argv is `URL [CAFILE]`; exits non-zero on the first
/// mismatch, printing what it saw.
const PY_CLIENTS: &str = r#"
import asyncio, json, ssl, sys
import aiohttp, httpx

url = sys.argv[1]
cafile = sys.argv[2] if len(sys.argv) > 2 else None

def expect(what, got, want):
    if got != want:
        sys.exit(f"{what}: got {got!r}, want {want!r}")

async def with_aiohttp():
    ctx = ssl.create_default_context(cafile=cafile) if cafile else None
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/", ssl=ctx) as r:
            expect("aiohttp GET / status", r.status, 200)
            expect("aiohttp GET / body", await r.text(), "Hello, World!")
            expect("aiohttp GET / type", r.content_type, "text/plain")
        async with s.get(url + "/json", ssl=ctx) as r:
            expect("aiohttp GET /json", await r.json(), {"message": "Hello, World!"})
        async with s.post(url + "/", ssl=ctx) as r:
            expect("aiohttp POST / status", r.status, 405)
            expect("aiohttp POST / Allow", r.headers.get("Allow"), "GET, HEAD, OPTIONS")

asyncio.run(with_aiohttp())

verify = cafile if cafile else True
with httpx.Client(verify=verify) as c:
    r = c.get(url + "/json")
    expect("httpx h1 /json", r.json(), {"message": "Hello, World!"})
    expect("httpx h1 version", r.http_version, "HTTP/1.1")
if cafile:
    with httpx.Client(verify=verify, http2=True) as c:
        r = c.get(url + "/")
        expect("httpx ALPN h2 version", r.http_version, "HTTP/2")
        expect("httpx ALPN h2 body", r.text, "Hello, World!")
else:
    with httpx.Client(http1=False, http2=True) as c:
        r = c.get(url + "/json")
        expect("httpx h2c version", r.http_version, "HTTP/2")
        expect("httpx h2c /json", r.json(), {"message": "Hello, World!"})
print("python clients ok")
"#;

/// Runs every interop check; see the module docs.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let (server, client) = match args {
        [] => (true, true),
        [arg] if arg == "server" => (true, false),
        [arg] if arg == "client" => (false, true),
        [arg] if arg == "--help" || arg == "-h" => {
            println!(
                "cargo xtask interop [server|client]: run the examples against curl, h2load, \
                 aiohttp and httpx (server), and fetch against httpbin, hypercorn and \
                 tinyproxy (client)"
            );
            return Ok(());
        }
        _ => return Err(format!("unknown interop arguments {args:?}").into()),
    };
    let out = util::target_dir().join("xtask").join("interop");
    std::fs::create_dir_all(&out)?;
    if server {
        servers(&out)?;
    }
    if client {
        client::run(&out)?;
    }
    println!("interop: all checks passed");
    Ok(())
}

/// The server examples against real clients.
fn servers(out: &Path) -> Result<()> {
    util::ensure_tools(TOOLS)?;
    let venv = util::ensure_venv(
        &util::target_dir().join("xtask").join("interop-venv"),
        PYTHON_PACKAGES,
    )?;

    util::note("building the hello example");
    util::check(
        util::cargo().args(["build", "--quiet", "--example", "hello"]),
        Duration::from_secs(20 * 60),
    )?;
    let hello = util::target_dir()
        .join("debug")
        .join("examples")
        .join("hello");

    plain(&hello, out, &venv)?;
    tls(&hello, out, &venv)
}

/// Starts `hello` with `args` and returns it with its base URL.
fn start_hello(hello: &Path, args: &[&str], log: &Path) -> Result<(Proc, String)> {
    let mut cmd = Command::new(hello);
    cmd.args(["--bind", "127.0.0.1:0"]).args(args);
    let mut proc = Proc::spawn(&mut cmd, log)?;
    let url = proc.wait_for_line(Duration::from_secs(30), |line| {
        line.strip_prefix("listening on ").map(str::to_owned)
    })?;
    Ok((proc, url))
}

/// Runs `cmd` (bounded to 60 s) and returns its stdout, failing on a non-zero exit.
fn output(cmd: &mut Command) -> Result<String> {
    let out = util::run_with_timeout(cmd, Duration::from_secs(60))?;
    out.ensure_success(cmd)?;
    Ok(out.stdout_str())
}

fn expect(what: &str, got: &str, want: &str) -> Result<()> {
    if got == want {
        util::note(format!("ok: {what}"));
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}").into())
    }
}

fn curl(args: &[&str]) -> Result<String> {
    output(
        Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(args),
    )
}

fn stop_expect_zero(proc: Proc) -> Result<()> {
    let status = proc.stop(Duration::from_secs(15))?;
    if status.success() {
        util::note("ok: server exited 0 on SIGINT/SIGTERM");
        Ok(())
    } else {
        Err(format!("server exited with {status} on SIGINT/SIGTERM, want 0").into())
    }
}

fn plain(hello: &Path, out: &Path, venv: &Path) -> Result<()> {
    let (proc, url) = start_hello(hello, &[], &out.join("hello-plain.log"))?;
    expect(
        "curl HTTP/1.1 GET /",
        &curl(&[&format!("{url}/")])?,
        "Hello, World!",
    )?;
    expect(
        "curl h2c GET /json",
        &curl(&[
            "--http2-prior-knowledge",
            "-w",
            " %{http_version}",
            &format!("{url}/json"),
        ])?,
        r#"{"message":"Hello, World!"} 2"#,
    )?;
    let long = format!("{url}/{}", "a".repeat(9000));
    expect(
        "curl 9 KB request line",
        &curl(&["-o", "/dev/null", "-w", "%{http_code}", &long])?,
        "414",
    )?;
    let h2load = output(Command::new("h2load").args([
        "-n",
        "200",
        "-c",
        "2",
        "-m",
        "8",
        &format!("{url}/"),
    ]))?;
    if !h2load.contains("200 succeeded") {
        return Err(format!("h2load h2c: {}", util::tail(h2load.as_bytes(), 4)).into());
    }
    util::note("ok: h2load h2c 200 requests");
    python(venv, &[&url])?;

    // SIGTERM (the usual service-manager signal) must also end in exit 0.
    let pid = proc.pid();
    util::send_signal(pid, "TERM")?;
    stop_expect_zero(proc)
}

fn tls(hello: &Path, out: &Path, venv: &Path) -> Result<()> {
    let cert = out.join("cert.pem");
    let key = out.join("key.pem");
    output(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    )?;
    let (cert_s, key_s) = (path_str(&cert)?, path_str(&key)?);
    let (proc, url) = start_hello(
        hello,
        &["--tls-cert", &cert_s, "--tls-key", &key_s],
        &out.join("hello-tls.log"),
    )?;
    if !url.starts_with("https://") {
        return Err(format!("TLS hello announced {url:?}, want https://").into());
    }
    expect(
        "curl TLS ALPN h2",
        &curl(&[
            "--cacert",
            &cert_s,
            "--http2",
            "-w",
            " %{http_version}",
            &format!("{url}/"),
        ])?,
        "Hello, World! 2",
    )?;
    expect(
        "curl TLS http/1.1",
        &curl(&[
            "--cacert",
            &cert_s,
            "--http1.1",
            "-w",
            " %{http_version}",
            &format!("{url}/json"),
        ])?,
        r#"{"message":"Hello, World!"} 1.1"#,
    )?;
    python(venv, &[&url, &cert_s])?;
    stop_expect_zero(proc)
}

fn python(venv: &Path, args: &[&str]) -> Result<()> {
    let said = output(
        Command::new(venv.join("python"))
            .arg("-c")
            .arg(PY_CLIENTS)
            .args(args),
    )?;
    expect("python aiohttp + httpx", said.trim(), "python clients ok")
}

fn path_str(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("path is not UTF-8: {}", path.display()).into())
}
