//! End-to-end tests of the `fetch` example: the built binary against aiox-web servers
//! on 127.0.0.1, checking its stdout, stderr and exit codes (../shared/EXAMPLES.md).
//!
//! The binary is the one `cargo test` builds beside the test executables
//! (`target/<profile>/examples/fetch`); `cargo test --test fetch_cli` alone does not
//! build examples, so build it first with `cargo build --example fetch`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use aiox_web::http::header::{self, HeaderValue};
use aiox_web::test::TestClient;
use aiox_web::{Application, Request, Response, StatusCode};

/// The `fetch` example next to this test's executable.
fn fetch_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let bin = profile_dir.join("examples").join("fetch");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --example fetch` (cargo test builds it)",
        bin.display()
    );
    bin
}

/// What one run of `fetch` did.
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("code", &self.code)
            .field("stdout", &self.stdout())
            .field("stderr", &self.stderr)
            .finish()
    }
}

/// Runs `fetch ARGS` without the environment's proxies, off the runtime's thread so
/// the in-process server keeps serving.
async fn fetch(args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let bin = fetch_bin();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(bin);
        cmd.args(&args);
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
        let started = Instant::now();
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().expect("fetch runs");
        Run {
            code: status.code(),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    })
    .await
    .expect("the fetch thread does not panic")
}

/// Echoes what a body-carrying request looked like, as JSON.
async fn echo(mut req: Request) -> Response {
    let header =
        |req: &Request, name: header::HeaderName| req.header(name).unwrap_or("").to_owned();
    let (method, content_type, accept) = (
        req.method().to_string(),
        header(&req, header::CONTENT_TYPE),
        header(&req, header::ACCEPT),
    );
    let body = req.text().await.unwrap_or_default();
    Response::json(&serde_json::json!({
        "method": method,
        "content_type": content_type,
        "accept": accept,
        "body": body,
    }))
}

fn app() -> Application {
    Application::new()
        .get("/", || async { "Hello, World!" })
        .post("/echo", echo)
        .put("/echo", echo)
        .get("/status/{code}", |req: Request| async move {
            let code = req
                .match_info()
                .get("code")
                .and_then(|c| c.parse().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_REQUEST);
            Response::text("status body").with_status(code)
        })
        .get("/redirect/{n}", |req: Request| async move {
            let n: u32 = req
                .match_info()
                .get("n")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if n == 0 {
                return Response::text("done");
            }
            let to = format!("/redirect/{}", n - 1);
            Response::text("moved")
                .with_status(StatusCode::FOUND)
                .with_header(header::LOCATION, HeaderValue::from_str(&to).unwrap())
        })
        .get("/slow", || async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        })
        .get("/cookies", |req: Request| async move {
            req.header(header::COOKIE).unwrap_or("").to_owned()
        })
        .get("/set-cookie", || async {
            Response::text("")
                .with_status(StatusCode::FOUND)
                .with_header(header::LOCATION, HeaderValue::from_static("/cookies"))
                .with_header(
                    header::SET_COOKIE,
                    HeaderValue::from_static("jar=1; Path=/"),
                )
        })
        .get("/head-of", |req: Request| async move {
            // How many values of each header of interest arrived.
            let count = |name| req.headers().get_all(name).iter().count();
            format!(
                "user-agent={} accept={}:{}",
                count(header::USER_AGENT),
                count(header::ACCEPT),
                req.header(header::ACCEPT).unwrap_or("")
            )
        })
        .get("/auth", |req: Request| async move {
            req.header(header::AUTHORIZATION).unwrap_or("").to_owned()
        })
}

async fn server() -> (TestClient, String) {
    let server = TestClient::new(app())
        .await
        .expect("the test server starts");
    let base = format!("http://{}", server.addr());
    (server, base)
}

#[tokio::test]
async fn body_goes_to_stdout() {
    let (_server, base) = server().await;
    let run = fetch(&[&format!("{base}/")]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout(), "Hello, World!");
    assert_eq!(run.stderr, "");
}

#[tokio::test]
async fn include_writes_the_status_line_and_headers_first() {
    let (_server, base) = server().await;
    let run = fetch(&["-i", &format!("{base}/")]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let out = run.stdout();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out:?}");
    assert!(out.contains("\r\ncontent-type: text/plain"), "{out:?}");
    assert!(out.ends_with("\r\n\r\nHello, World!"), "{out:?}");
}

#[tokio::test]
async fn head_writes_only_the_head() {
    let (_server, base) = server().await;
    let run = fetch(&["-I", &format!("{base}/")]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let out = run.stdout();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out:?}");
    assert!(out.ends_with("\r\n\r\n"), "{out:?}");
    assert!(!out.contains("Hello"), "{out:?}");
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

#[tokio::test]
async fn data_and_json_bodies_are_sent() {
    let (_server, base) = server().await;
    let url = format!("{base}/echo");
    let run = fetch(&["-d", "a=1", "-d", "b=two", &url]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let v = json(&run);
    assert_eq!(v["method"], "POST");
    assert_eq!(v["content_type"], "application/x-www-form-urlencoded");
    assert_eq!(v["body"], "a=1&b=two");

    let dir = std::env::temp_dir().join(format!("fetch-cli-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("form.txt");
    std::fs::write(&file, "x=1\r\n&y=2\n").unwrap();
    let at = format!("@{}", file.display());
    let run = fetch(&["-X", "PUT", "--data", &at, &url]).await;
    let v = json(&run);
    assert_eq!(v["method"], "PUT", "{run:?}");
    assert_eq!(
        v["body"], "x=1&y=2",
        "newlines are dropped, as curl -d does"
    );

    let run = fetch(&["--json", r#"{"k": [1, 2]}"#, &url]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let v = json(&run);
    assert_eq!(v["method"], "POST");
    assert_eq!(v["content_type"], "application/json");
    assert_eq!(v["accept"], "application/json");
    assert_eq!(v["body"], r#"{"k": [1, 2]}"#);

    let run = fetch(&["-H", "Content-Type: text/x-mine", "-d", "raw", &url]).await;
    assert_eq!(
        json(&run)["content_type"],
        "text/x-mine",
        "-H replaces the default"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn output_file_gets_the_body_and_stdout_stays_empty() {
    let (_server, base) = server().await;
    let dir = std::env::temp_dir().join(format!("fetch-cli-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("body.txt");
    let path = file.to_str().unwrap();
    let run = fetch(&["-o", path, &format!("{base}/")]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "Hello, World!");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn fail_exits_22_without_the_body() {
    let (_server, base) = server().await;
    let url = format!("{base}/status/404");
    let run = fetch(&["-f", &url]).await;
    assert_eq!(run.code, Some(22), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(run.stderr.starts_with("error: "), "{run:?}");
    assert!(run.stderr.contains("404"), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");

    let run = fetch(&[&url]).await;
    assert_eq!(run.code, Some(0), "without -f a 404 is a success: {run:?}");
    assert_eq!(run.stdout(), "status body");
}

#[tokio::test]
async fn redirects_are_followed_up_to_max_redirs() {
    let (_server, base) = server().await;
    let run = fetch(&[&format!("{base}/redirect/3")]).await;
    assert_eq!(
        (run.code, run.stdout().as_str()),
        (Some(0), "done"),
        "{run:?}"
    );

    let run = fetch(&["--max-redirs", "2", &format!("{base}/redirect/3")]).await;
    assert_eq!(run.code, Some(47), "{run:?}");
    assert!(run.stderr.contains("too many redirects"), "{run:?}");

    let run = fetch(&["--no-follow", "-i", &format!("{base}/redirect/3")]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let out = run.stdout();
    assert!(out.starts_with("HTTP/1.1 302 Found\r\n"), "{out:?}");
    assert!(out.contains("\r\nlocation: /redirect/2\r\n"), "{out:?}");
}

#[tokio::test]
async fn cookies_auth_and_headers_are_sent() {
    let (_server, base) = server().await;
    let run = fetch(&["-b", "a=1; b=2", &format!("{base}/cookies")]).await;
    assert_eq!(run.stdout(), "a=1; b=2", "{run:?}");
    // The cookie set on the first hop (an IP host, as curl keeps) goes on the next.
    let run = fetch(&[&format!("{base}/set-cookie")]).await;
    assert_eq!(run.stdout(), "jar=1", "{run:?}");
    let run = fetch(&[
        "-H",
        "User-Agent:",
        "-H",
        "Accept: text/x-one",
        &format!("{base}/head-of"),
    ])
    .await;
    assert_eq!(
        run.stdout(),
        "user-agent=0 accept=1:text/x-one",
        "'Name:' drops a default and 'Name: v' replaces one: {run:?}"
    );
    let run = fetch(&["-u", "user:pa:ss", &format!("{base}/auth")]).await;
    // base64("user:pa:ss")
    assert_eq!(run.stdout(), "Basic dXNlcjpwYTpzcw==", "{run:?}");
}

#[tokio::test]
async fn refused_connection_exits_7() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let run = fetch(&[&format!("http://127.0.0.1:{port}/")]).await;
    assert_eq!(run.code, Some(7), "{run:?}");
    assert!(
        run.stderr.starts_with("error: could not connect"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("refused"),
        "the cause is chained: {run:?}"
    );
}

#[tokio::test]
async fn unresolvable_host_exits_6() {
    let run = fetch(&["http://nonexistent.invalid/"]).await;
    assert_eq!(run.code, Some(6), "{run:?}");
}

#[tokio::test]
async fn max_time_exits_28() {
    let (_server, base) = server().await;
    let run = fetch(&["-m", "0.5", &format!("{base}/slow")]).await;
    assert_eq!(run.code, Some(28), "{run:?}");
    assert!(run.elapsed < Duration::from_secs(4), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[tokio::test]
async fn usage_errors_exit_2() {
    for args in [
        &["--no-such-option", "http://127.0.0.1:9/"][..],
        &[],
        &["-m", "soon", "http://127.0.0.1:9/"],
        &["-H", "no colon", "http://127.0.0.1:9/"],
        &["ftp://127.0.0.1/"],
        &["http://127.0.0.1:9/", "http://127.0.0.1:9/again"],
    ] {
        let run = fetch(args).await;
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.starts_with("error: "), "{args:?}: {run:?}");
    }
    let run = fetch(&["-F", "a=b", "http://127.0.0.1:9/"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(
        run.stderr,
        "error: -F needs the multipart feature (not yet available)\n"
    );
    let run = fetch(&["--help"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout().starts_with("usage: fetch"), "{run:?}");
}

#[tokio::test]
async fn verbose_shows_each_hop_on_stderr() {
    let (_server, base) = server().await;
    let run = fetch(&["-v", &format!("{base}/redirect/1")]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout(), "done");
    let err = &run.stderr;
    assert!(err.contains("> GET /redirect/1 HTTP/1.1\n"), "{err}");
    assert!(err.contains("< HTTP/1.1 302 Found\n"), "{err}");
    assert!(err.contains("> GET /redirect/0 HTTP/1.1\n"), "{err}");
    assert!(err.contains("< HTTP/1.1 200 OK\n"), "{err}");
    assert!(err.contains("> user-agent: aiox/"), "{err}");
    let request = err.find("> GET /redirect/0").unwrap();
    let redirect = err.find("< HTTP/1.1 302").unwrap();
    assert!(redirect < request, "the hops come in order: {err}");
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;

    use std::sync::Arc;

    use aiox_web::{Runner, Site};
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    use rustls::server::WebPkiClientVerifier;
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;

    /// A CA (PEM) and an HTTPS server for `localhost` whose certificate it signed;
    /// with `client_auth`, the server asks for a client certificate from the same CA
    /// and `client.pem`/`client.key` hold one.
    struct TlsServer {
        runner: Option<Runner>,
        addr: SocketAddr,
        dir: PathBuf,
    }

    impl TlsServer {
        async fn start(client_auth: bool) -> Self {
            let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params
                .distinguished_name
                .push(DnType::CommonName, "fetch test CA");
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
            let leaf_key = KeyPair::generate().unwrap();
            let leaf = CertificateParams::new(vec!["localhost".to_owned()])
                .unwrap()
                .signed_by(&leaf_key, &ca)
                .unwrap();
            let dir = std::env::temp_dir().join(format!(
                "fetch-cli-tls-{}-{client_auth}",
                std::process::id(),
            ));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
            let tls = if client_auth {
                let client_key = KeyPair::generate().unwrap();
                let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
                client_params
                    .distinguished_name
                    .push(DnType::CommonName, "fetch test client");
                let client = client_params.signed_by(&client_key, &ca).unwrap();
                std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
                std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.der().clone()).unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .unwrap();
                let key =
                    PrivateKeyDer::from_pem_slice(leaf_key.serialize_pem().as_bytes()).unwrap();
                let config = rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_client_cert_verifier(verifier)
                    .with_single_cert(vec![leaf.der().clone()], key)
                    .unwrap();
                aiox_core::tls::TlsConfig::from_rustls(config)
            } else {
                aiox_core::tls::TlsConfig::from_pem(
                    leaf.pem().as_bytes(),
                    leaf_key.serialize_pem().as_bytes(),
                )
                .unwrap()
            };
            let mut runner = Runner::new(app()).await.unwrap();
            let bound = runner
                .add_site(Site::Tls(SocketAddr::from(([127, 0, 0, 1], 0)), tls))
                .await
                .unwrap();
            let addr = bound.tcp().unwrap();
            Self {
                runner: Some(runner),
                addr,
                dir,
            }
        }

        fn url(&self, path: &str) -> String {
            format!("https://localhost:{}{path}", self.addr.port())
        }

        /// The path of `name` in the server's scratch directory.
        fn file(&self, name: &str) -> String {
            self.dir.join(name).display().to_string()
        }

        fn ca(&self) -> String {
            self.file("ca.pem")
        }

        async fn stop(mut self) {
            if let Some(runner) = self.runner.take() {
                runner.shutdown().await.unwrap();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[tokio::test]
    async fn untrusted_certificate_exits_60_unless_trusted_or_insecure() {
        let server = TlsServer::start(false).await;
        let url = server.url("/");
        let run = fetch(&[&url]).await;
        assert_eq!(run.code, Some(60), "{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");

        let run = fetch(&["-k", &url]).await;
        assert_eq!(
            (run.code, run.stdout().as_str()),
            (Some(0), "Hello, World!"),
            "{run:?}"
        );

        let run = fetch(&["--cacert", &server.ca(), "-i", &url]).await;
        assert_eq!(run.code, Some(0), "{run:?}");
        let out = run.stdout();
        assert!(out.starts_with("HTTP/2 200\r\n"), "ALPN picks h2: {out:?}");
        assert!(out.ends_with("\r\n\r\nHello, World!"), "{out:?}");

        let run = fetch(&["--cacert", &server.ca(), "--http1.1", "-i", &url]).await;
        assert!(run.stdout().starts_with("HTTP/1.1 200 OK\r\n"), "{run:?}");

        let run = fetch(&["--cacert", &server.ca(), "-v", &url]).await;
        assert!(run.stderr.contains("> GET / HTTP/2\n"), "{run:?}");
        assert!(run.stderr.contains("< HTTP/2 200\n"), "{run:?}");
        server.stop().await;
    }

    #[tokio::test]
    async fn client_certificate_is_presented_with_cert_and_key() {
        let server = TlsServer::start(true).await;
        let url = server.url("/");
        let (ca, cert, key) = (
            server.ca(),
            server.file("client.pem"),
            server.file("client.key"),
        );
        let run = fetch(&["--cacert", &ca, "--cert", &cert, "--key", &key, &url]).await;
        assert_eq!(
            (run.code, run.stdout().as_str()),
            (Some(0), "Hello, World!"),
            "{run:?}"
        );
        // curl's habit: --cert alone reads the key from the same file.
        let both = server.file("both.pem");
        let mut pem = std::fs::read(&cert).unwrap();
        pem.extend(std::fs::read(&key).unwrap());
        std::fs::write(&both, pem).unwrap();
        let run = fetch(&["--cacert", &ca, "--cert", &both, &url]).await;
        assert_eq!(run.code, Some(0), "{run:?}");

        let run = fetch(&["--cacert", &ca, &url]).await;
        assert_ne!(run.code, Some(0), "the server wants a certificate: {run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");

        let run = fetch(&["--cacert", &ca, "--cert", &ca, &url]).await;
        assert_eq!(run.code, Some(2), "a PEM without a key: {run:?}");
        let run = fetch(&["--cacert", &server.file("missing.pem"), &url]).await;
        assert_eq!(run.code, Some(2), "an unreadable file: {run:?}");
        server.stop().await;
    }
}
