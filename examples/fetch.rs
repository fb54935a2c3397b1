//! A curl-like client on `aiox::client`.
//!
//! ```text
//! cargo run --release --example fetch -- [OPTIONS] URL
//! ```
//!
//! Writes the response body to stdout (or `-o FILE`) and errors to stderr as one line
//! `error: ...`. Options follow curl's spelling; `fetch --help` lists them. Unlike curl,
//! redirects are followed by default (as aiohttp does; `--no-follow` stops that) and
//! responses are decompressed without `--compressed`. `HTTP_PROXY`, `HTTPS_PROXY` and
//! `NO_PROXY` are honoured (the session's `trust_env`), and cookies set along a redirect
//! chain are sent on its later hops, IP-address hosts included, as curl does.
//!
//! Exit codes, as curl's: 0 success, 2 usage (an unknown option, a missing URL, a bad
//! value, an unreadable file named by an option), 6 host not resolved, 7 connection
//! refused (to the server or the proxy), 22 HTTP status of 400 or above with `--fail`,
//! 28 timeout, 35 TLS handshake failure, 47 too many redirects, 60 certificate not
//! trusted, 1 anything else.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aiox::client::http::header::{self, HeaderName, HeaderValue};
use aiox::client::url::Position;
use aiox::client::{
    ClientSession, ClientTimeout, CookieJar, ErrorKind, Method, NoProxy, Proxy, Request,
    RequestInfo, Response, RetryPolicy, TraceHooks, Url, Version,
};

const USAGE: &str = "\
usage: fetch [OPTIONS] URL

  -X, --request METHOD     the request method (default GET; POST with -d or --json)
  -H, --header 'NAME: V'   a request header, repeatable ('NAME:' removes a default
                           header, 'NAME;' sends it empty)
  -d, --data DATA          a form-urlencoded body as given (@FILE reads a file, @- stdin;
                           repeated values are joined with '&')
      --json JSON          a JSON body (@FILE, @- too), with Accept: application/json
  -F, --form NAME=VALUE    a multipart body (not yet available)
  -i, --include            write the status line and headers before the body
  -I, --head               a HEAD request; write the status line and headers
  -o, --output FILE        write the body to FILE instead of stdout
  -u, --user USER:PASS     HTTP basic authentication
  -b, --cookie 'K=V; K2=V2'  cookies to send
  -k, --insecure           accept any server certificate
      --cacert FILE        trust the CA certificates in FILE (PEM) instead of the
                           built-in roots
      --cert FILE          a client certificate (PEM; with the key too unless --key)
      --key FILE           the client certificate's private key (PEM)
  -x, --proxy URL          an HTTP proxy (CONNECT tunnels for https://)
      --http1.1            speak HTTP/1.1 only
      --http2              offer h2 by ALPN over TLS (the default for https://)
      --http2-prior-knowledge  speak HTTP/2 without negotiation (h2c on http://)
  -m, --max-time SECS      the whole transfer's time limit (fractions allowed)
      --connect-timeout SECS  the time limit for getting a connection
      --max-redirs N       redirects followed at most (default 10, -1 for no limit)
      --no-follow          do not follow redirects
  -L, --location           follow redirects (the default)
      --retry N            retry transient failures N times with exponential backoff
  -f, --fail               exit 22 without writing the body when the status is >= 400
  -s, --silent             no error message (unless -S)
  -S, --show-error         error messages even with -s
  -v, --verbose            request and response heads to stderr
  -h, --help               this text";

/// What a `-d` or `--json` option asked to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Form,
    Json,
}

/// Which HTTP version the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VersionChoice {
    Auto,
    Http1,
    Http2PriorKnowledge,
}

/// The parsed command line.
#[derive(Debug)]
struct Args {
    url: Url,
    method: Option<Method>,
    headers: Vec<(HeaderName, Option<HeaderValue>)>,
    body: Option<(BodyKind, Vec<u8>)>,
    include: bool,
    head: bool,
    output: Option<PathBuf>,
    user: Option<(String, String)>,
    cookies: Vec<(String, String)>,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    insecure: bool,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    cacert: Option<Vec<u8>>,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    identity: Option<(Vec<u8>, Vec<u8>)>,
    proxy: Option<String>,
    version: VersionChoice,
    max_time: Option<Duration>,
    connect_timeout: Option<Duration>,
    max_redirs: Option<usize>,
    follow: bool,
    retry: u32,
    fail: bool,
    verbose: bool,
    silent: bool,
    show_error: bool,
}

/// Why `fetch` stops early.
#[derive(Debug)]
enum Exit {
    /// `--help`: the usage text on stdout, exit 0.
    Help,
    /// A usage error: the message on stderr, exit 2.
    Usage(String),
}

fn usage(message: impl Into<String>) -> Exit {
    Exit::Usage(message.into())
}

/// The options that take a value, by every spelling.
fn takes_value(option: &str) -> bool {
    matches!(
        option,
        "-X" | "--request"
            | "-H"
            | "--header"
            | "-d"
            | "--data"
            | "--json"
            | "-F"
            | "--form"
            | "-o"
            | "--output"
            | "-u"
            | "--user"
            | "-b"
            | "--cookie"
            | "--cacert"
            | "--cert"
            | "--key"
            | "-x"
            | "--proxy"
            | "-m"
            | "--max-time"
            | "--connect-timeout"
            | "--max-redirs"
            | "--retry"
    )
}

/// Splits curl-style short options: `-XPOST` into `-X POST`, `-ifk` into `-i -f -k`.
fn expand(mut raw: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut options_done = false;
    while let Some(arg) = raw.next() {
        if options_done || arg == "-" || !arg.starts_with('-') || arg.starts_with("--") {
            if arg == "--" {
                options_done = true;
            }
            let needs_value = !options_done && takes_value(&arg);
            out.push(arg);
            if needs_value {
                // The value is taken as it is, even when it starts with '-'.
                if let Some(value) = raw.next() {
                    out.push(value);
                }
            }
            continue;
        }
        // A cluster of short options; the first one that takes a value takes the rest
        // of the cluster, or the next argument.
        let chars: Vec<char> = arg.chars().skip(1).collect();
        for (i, c) in chars.iter().enumerate() {
            let option = format!("-{c}");
            if takes_value(&option) {
                out.push(option);
                let rest: String = chars[i + 1..].iter().collect();
                if !rest.is_empty() {
                    out.push(rest);
                } else if let Some(value) = raw.next() {
                    out.push(value);
                }
                break;
            }
            out.push(option);
        }
    }
    out
}

fn parse_args(raw: impl Iterator<Item = String>) -> Result<Args, Exit> {
    let mut url = None;
    let mut method = None;
    let mut headers = Vec::new();
    let mut body: Option<(BodyKind, Vec<u8>)> = None;
    let (mut include, mut head, mut insecure, mut fail, mut verbose) =
        (false, false, false, false, false);
    let (mut silent, mut show_error) = (false, false);
    let mut output = None;
    let mut user = None;
    let mut cookies = Vec::new();
    let mut cacert = None;
    let (mut cert, mut key): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    let mut proxy = None;
    let mut version = VersionChoice::Auto;
    let (mut max_time, mut connect_timeout) = (None, None);
    let mut max_redirs = None;
    let mut follow = true;
    let mut retry = 0;
    let mut options_done = false;

    let mut args = expand(raw).into_iter();
    while let Some(arg) = args.next() {
        if options_done || !arg.starts_with('-') || arg == "-" {
            if url.is_some() {
                return Err(usage(format!("only one URL is supported: {arg}")));
            }
            url = Some(parse_url(&arg)?);
            continue;
        }
        let mut value = || {
            args.next()
                .ok_or_else(|| usage(format!("option {arg} needs a value")))
        };
        match arg.as_str() {
            "--" => options_done = true,
            "-X" | "--request" => {
                let v = value()?;
                let m = Method::from_bytes(v.as_bytes())
                    .map_err(|_| usage(format!("invalid method {v:?}")))?;
                method = Some(m);
            }
            "-H" | "--header" => headers.push(parse_header(&value()?)?),
            "-d" | "--data" => add_body(&mut body, BodyKind::Form, &value()?)?,
            "--json" => add_body(&mut body, BodyKind::Json, &value()?)?,
            "-F" | "--form" => {
                return Err(usage("-F needs the multipart feature (not yet available)"));
            }
            "-i" | "--include" => include = true,
            "-I" | "--head" => head = true,
            "-o" | "--output" => output = Some(PathBuf::from(value()?)),
            "-u" | "--user" => {
                let v = value()?;
                let (name, password) = v.split_once(':').unwrap_or((v.as_str(), ""));
                user = Some((name.to_owned(), password.to_owned()));
            }
            "-b" | "--cookie" => cookies.extend(parse_cookies(&value()?)?),
            "-k" | "--insecure" => insecure = true,
            "--cacert" => cacert = Some(read_file("--cacert", &value()?)?),
            "--cert" => cert = Some(read_file("--cert", &value()?)?),
            "--key" => key = Some(read_file("--key", &value()?)?),
            "-x" | "--proxy" => proxy = Some(value()?),
            "--http1.1" => version = VersionChoice::Http1,
            "--http2" => version = VersionChoice::Auto,
            "--http2-prior-knowledge" => version = VersionChoice::Http2PriorKnowledge,
            "-m" | "--max-time" => max_time = parse_seconds(&arg, &value()?)?,
            "--connect-timeout" => connect_timeout = parse_seconds(&arg, &value()?)?,
            "--max-redirs" => {
                let v = value()?;
                max_redirs = Some(match v.parse::<i64>() {
                    Ok(-1) => usize::MAX,
                    Ok(n) => usize::try_from(n)
                        .map_err(|_| usage(format!("invalid --max-redirs {v:?}")))?,
                    Err(_) => return Err(usage(format!("invalid --max-redirs {v:?}"))),
                });
            }
            "--no-follow" => follow = false,
            "-L" | "--location" => follow = true,
            "--retry" => {
                let v = value()?;
                retry = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n < u32::MAX)
                    .ok_or_else(|| usage(format!("invalid --retry {v:?}")))?;
            }
            "-f" | "--fail" => fail = true,
            "-v" | "--verbose" => verbose = true,
            "-s" | "--silent" => silent = true,
            "-S" | "--show-error" => show_error = true,
            "-h" | "--help" => return Err(Exit::Help),
            other => return Err(usage(format!("unknown option {other}"))),
        }
    }
    let Some(url) = url else {
        return Err(usage("no URL given (fetch --help lists the options)"));
    };
    if !cfg!(feature = "tls") && (insecure || cacert.is_some() || cert.is_some()) {
        return Err(usage("-k, --cacert and --cert need the `tls` feature"));
    }
    if head && body.is_some() {
        return Err(usage("-I and -d/--json cannot be combined"));
    }
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        // curl reads the key from the certificate's file when --key is not given.
        (Some(cert), None) => Some((cert.clone(), cert)),
        (None, Some(_)) => return Err(usage("--key needs --cert")),
        (None, None) => None,
    };
    Ok(Args {
        url,
        method,
        headers,
        body,
        include,
        head,
        output,
        user,
        cookies,
        insecure,
        cacert,
        identity,
        proxy,
        version,
        max_time,
        connect_timeout,
        max_redirs,
        follow,
        retry,
        fail,
        verbose,
        silent,
        show_error,
    })
}

fn parse_url(raw: &str) -> Result<Url, Exit> {
    // curl's habit: a URL without a scheme means http://.
    let text = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let url = Url::parse(&text).map_err(|e| usage(format!("invalid URL {raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(usage(format!(
            "unsupported URL scheme {:?} (only http and https)",
            url.scheme()
        )));
    }
    Ok(url)
}

/// `Name: value` (a header), `Name:` (remove a default header), `Name;` (empty value).
fn parse_header(raw: &str) -> Result<(HeaderName, Option<HeaderValue>), Exit> {
    let bad = || usage(format!("invalid header {raw:?} (want 'Name: value')"));
    let (name, value) = match raw.split_once(':') {
        Some((name, value)) => {
            let value = value.trim();
            (name, (!value.is_empty()).then_some(value))
        }
        None => match raw.strip_suffix(';') {
            Some(name) => (name, Some("")),
            None => return Err(bad()),
        },
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
    let value = value
        .map(HeaderValue::from_str)
        .transpose()
        .map_err(|_| bad())?;
    Ok((name, value))
}

/// `k=v; k2=v2` into pairs.
fn parse_cookies(raw: &str) -> Result<Vec<(String, String)>, Exit> {
    if !raw.contains('=') {
        return Err(usage(format!(
            "-b {raw:?}: reading cookies from a file is not supported (want 'k=v; k2=v2')"
        )));
    }
    raw.split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
            _ => Err(usage(format!("invalid cookie {pair:?} in -b (want k=v)"))),
        })
        .collect()
}

/// Adds a `-d` or `--json` value to the body: `@FILE` reads a file and `@-` stdin;
/// repeated values are joined with `&` (forms) or concatenated (JSON), as curl does.
fn add_body(body: &mut Option<(BodyKind, Vec<u8>)>, kind: BodyKind, raw: &str) -> Result<(), Exit> {
    let mut bytes = match raw.strip_prefix('@') {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| usage(format!("cannot read the body from stdin: {e}")))?;
            buf
        }
        Some(path) => read_file(
            if kind == BodyKind::Form {
                "-d"
            } else {
                "--json"
            },
            path,
        )?,
        None => raw.as_bytes().to_vec(),
    };
    if kind == BodyKind::Form && raw.starts_with('@') {
        // curl's -d drops carriage returns and newlines from a file's contents.
        bytes.retain(|b| *b != b'\r' && *b != b'\n');
    }
    match body {
        None => *body = Some((kind, bytes)),
        Some((existing, _)) if *existing != kind => {
            return Err(usage("-d and --json cannot be combined"));
        }
        Some((_, buf)) => {
            if kind == BodyKind::Form {
                buf.push(b'&');
            }
            buf.extend_from_slice(&bytes);
        }
    }
    Ok(())
}

fn read_file(option: &str, path: &str) -> Result<Vec<u8>, Exit> {
    std::fs::read(path).map_err(|e| usage(format!("{option}: cannot read {path}: {e}")))
}

/// Seconds as curl takes them (`2`, `0.5`); 0 means no limit.
fn parse_seconds(option: &str, raw: &str) -> Result<Option<Duration>, Exit> {
    let secs: f64 = raw
        .parse()
        .map_err(|_| usage(format!("invalid {option} {raw:?} (want seconds)")))?;
    if secs == 0.0 {
        return Ok(None);
    }
    Duration::try_from_secs_f64(secs)
        .map(Some)
        .map_err(|_| usage(format!("invalid {option} {raw:?} (want seconds)")))
}

/// `-v`: request and response heads on stderr, one block per hop, in curl's shape.
#[derive(Debug)]
struct Verbose;

fn version_text(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// The status line as curl writes it: `HTTP/1.1 200 OK`, `HTTP/2 200`.
fn status_line(resp: &Response) -> String {
    let version = version_text(resp.version());
    let code = resp.status().as_u16();
    match resp.reason() {
        Some(reason) if resp.version() < Version::HTTP_2 => format!("{version} {code} {reason}"),
        _ => format!("{version} {code}"),
    }
}

impl Verbose {
    fn response(&self, resp: &Response) {
        let mut err = std::io::stderr().lock();
        let mut text = format!("< {}\n", status_line(resp));
        for (name, value) in resp.headers() {
            text.push_str(&format!(
                "< {name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        text.push_str("<\n");
        let _ = err.write_all(text.as_bytes());
    }
}

impl TraceHooks for Verbose {
    fn on_request_headers_sent(&self, request: &RequestInfo<'_>) {
        let target = &request.url[Position::BeforePath..Position::AfterQuery];
        let mut text = format!(
            "> {} {} {}\n",
            request.method,
            if target.is_empty() { "/" } else { target },
            version_text(request.version)
        );
        for (name, value) in request.headers {
            text.push_str(&format!(
                "> {name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        text.push_str(">\n");
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    fn on_request_redirect(&self, _request: &RequestInfo<'_>, response: &Response) {
        self.response(response);
    }

    fn on_request_end(&self, _request: &RequestInfo<'_>, response: &Response) {
        self.response(response);
    }
}

/// A failure after the arguments were accepted: what to print and the exit code.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The message of `err` followed by its sources, joined by ": ".
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let next = e.to_string();
        // Some layers repeat their cause's text; say it once.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

/// curl's exit code for a client error.
fn exit_code(err: &aiox::client::Error) -> u8 {
    match err.kind() {
        ErrorKind::Builder => 2,
        ErrorKind::Dns => 6,
        ErrorKind::Connect => 7,
        ErrorKind::Proxy if proxy_unreachable(err) => 7,
        ErrorKind::Status(_) => 22,
        ErrorKind::Timeout(_) => 28,
        ErrorKind::Tls => 35,
        ErrorKind::Redirect if err.to_string().contains("too many redirects") => 47,
        ErrorKind::Certificate => 60,
        _ => 1,
    }
}

/// True if the proxy error is a failure to reach the proxy (resolve or connect).
fn proxy_unreachable(err: &aiox::client::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(inner) = e.downcast_ref::<aiox::client::Error>() {
            if matches!(inner.kind(), ErrorKind::Connect | ErrorKind::Dns) {
                return true;
            }
        }
        source = e.source();
    }
    false
}

fn client_failure(err: &aiox::client::Error) -> Failure {
    Failure::new(exit_code(err), chain(err))
}

fn write_failure(err: &std::io::Error, what: &str) -> Failure {
    Failure::new(1, format!("cannot write {what}: {err}"))
}

fn session(args: &Args) -> Result<ClientSession, aiox::client::Error> {
    let timeout = ClientTimeout::default()
        // curl has no overall limit unless -m is given.
        .total(args.max_time)
        .connect(args.connect_timeout);
    let mut builder = ClientSession::builder()
        .timeout(timeout)
        .trust_env(true)
        // curl keeps cookies of IP-address hosts too.
        .cookie_jar(Some(CookieJar::new_unsafe()))
        .follow_redirects(args.follow);
    if let Some(max) = args.max_redirs {
        builder = builder.max_redirects(max);
    }
    if args.retry > 0 {
        // curl retries whatever the method: the user asked for it.
        builder = builder.retry(RetryPolicy::new(args.retry + 1).non_idempotent(true));
    }
    builder = match args.version {
        VersionChoice::Auto => builder,
        VersionChoice::Http1 => builder.http1_only(),
        VersionChoice::Http2PriorKnowledge => builder.http2_prior_knowledge(),
    };
    if let Some(url) = &args.proxy {
        let mut proxy = Proxy::all(url)?;
        if let Some(no_proxy) = NoProxy::from_env() {
            proxy = proxy.no_proxy(no_proxy);
        }
        builder = builder.proxy(proxy);
    }
    if let Some((user, password)) = &args.user {
        builder = builder.basic_auth(user, password);
    }
    if args.verbose {
        builder = builder.trace(Verbose);
    }
    builder = tls(builder, args)?;
    builder.build()
}

#[cfg(feature = "tls")]
fn tls(
    mut builder: aiox::client::ClientSessionBuilder,
    args: &Args,
) -> Result<aiox::client::ClientSessionBuilder, aiox::client::Error> {
    if let Some(pem) = &args.cacert {
        // As curl's --cacert: these CAs instead of the built-in bundle.
        builder = builder
            .tls_roots(aiox::client::TlsRoots::None)
            .add_root_certificate_pem(pem);
    }
    if let Some((cert, key)) = &args.identity {
        builder = builder.identity_pem(cert, key);
    }
    Ok(builder.danger_accept_invalid_certs(args.insecure))
}

#[cfg(not(feature = "tls"))]
fn tls(
    builder: aiox::client::ClientSessionBuilder,
    _args: &Args,
) -> Result<aiox::client::ClientSessionBuilder, aiox::client::Error> {
    Ok(builder)
}

/// The request as the options describe it; the user's `-H` headers replace the
/// defaults of the same names.
fn request(session: &ClientSession, args: &Args) -> Result<Request, aiox::client::Error> {
    let method = match (&args.method, &args.body) {
        (Some(method), _) => method.clone(),
        (None, _) if args.head => Method::HEAD,
        (None, Some(_)) => Method::POST,
        (None, None) => Method::GET,
    };
    let mut builder = session.request(method, args.url.as_str());
    for (name, value) in &args.cookies {
        builder = builder.cookie(name, value);
    }
    for (name, value) in &args.headers {
        if value.is_none() {
            // `-H 'Name:'`: the session's default of that name is not sent either.
            builder = builder.skip_default_header(name.clone());
        }
    }
    let mut req = builder.build()?;
    if let Some((kind, bytes)) = &args.body {
        let headers = req.headers_mut();
        match kind {
            BodyKind::Form => {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
            }
            BodyKind::Json => {
                let json = HeaderValue::from_static("application/json");
                headers.insert(header::CONTENT_TYPE, json.clone());
                headers.insert(header::ACCEPT, json);
            }
        }
        *req.body_mut() = bytes.clone().into();
    }
    let mut replaced = Vec::new();
    for (name, value) in &args.headers {
        if !replaced.contains(name) {
            req.headers_mut().remove(name);
            replaced.push(name.clone());
        }
        if let Some(value) = value {
            req.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(req)
}

/// Where the head (`-i`, `-I`) and the body go.
fn open_output(args: &Args) -> Result<Box<dyn Write>, Failure> {
    Ok(match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| Failure::new(1, format!("cannot create {}: {e}", path.display())))?;
            Box::new(std::io::BufWriter::new(file))
        }
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

fn write_head(out: &mut dyn Write, resp: &Response) -> std::io::Result<()> {
    write!(out, "{}\r\n", status_line(resp))?;
    for (name, value) in resp.headers() {
        out.write_all(name.as_str().as_bytes())?;
        out.write_all(b": ")?;
        out.write_all(value.as_bytes())?;
        out.write_all(b"\r\n")?;
    }
    out.write_all(b"\r\n")
}

async fn fetch(args: Args) -> Result<(), Failure> {
    let session = session(&args).map_err(|e| client_failure(&e))?;
    let req = request(&session, &args).map_err(|e| client_failure(&e))?;
    let mut resp = session.send(req).await.map_err(|e| client_failure(&e))?;
    if args.fail {
        if let Err(e) = resp.error_for_status_ref() {
            return Err(client_failure(&e));
        }
    }
    let what = match &args.output {
        Some(path) => path.display().to_string(),
        None => "to stdout".to_owned(),
    };
    let mut out = open_output(&args)?;
    if args.include || args.head {
        write_head(&mut out, &resp).map_err(|e| write_failure(&e, &what))?;
    }
    if !args.head {
        while let Some(chunk) = resp.chunk().await.map_err(|e| client_failure(&e))? {
            out.write_all(&chunk)
                .map_err(|e| write_failure(&e, &what))?;
        }
    }
    out.flush().map_err(|e| write_failure(&e, &what))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(Exit::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(Exit::Usage(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let quiet = args.silent && !args.show_error;
    match runtime.block_on(fetch(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !quiet {
                eprintln!("error: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}
