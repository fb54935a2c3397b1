//! TLS and HTTP/2 end to end: a CA and leaf made here, HTTP/2 through ALPN with many
//! requests on one connection, HTTP/1.1 on request, untrusted certificates, the
//! insecure opt-out, client certificates, h2c by prior knowledge and Unix sockets.

mod support;

use std::sync::Arc;

use aiox_client::{ClientSession, ErrorKind, TlsRoots, Version};
use aiox_web::{Application, Request, Runner, Site, TlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use support::{ConnCounter, Server, TempDir, TestCa, TestCert, TlsSite};
use tokio::task::JoinSet;

/// `/info` describes the connection; every request is counted.
fn app(counter: &ConnCounter) -> Application {
    let c = counter.clone();
    Application::new().get("/info", move |req: Request| {
        let c = c.clone();
        async move {
            c.record(&req);
            format!("secure={} version={:?}", req.is_secure(), req.version())
        }
    })
}

fn server_tls(cert: &TestCert) -> TlsConfig {
    TlsConfig::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap()
}

/// A session trusting only `ca`.
fn trusting(ca: &TestCa) -> aiox_client::ClientSessionBuilder {
    ClientSession::builder()
        .tls_roots(TlsRoots::None)
        .add_root_certificate_pem(ca.pem.as_bytes())
}

async fn get_text(session: &ClientSession, url: &str) -> (Version, String) {
    let resp = session.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let version = resp.version();
    (version, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_negotiates_http2_on_one_connection() {
    let ca = TestCa::new("aiox test CA");
    let counter = ConnCounter::default();
    let site = TlsSite::start(app(&counter), server_tls(&ca.server_cert())).await;
    let session = trusting(&ca).build().unwrap();

    let (version, text) = get_text(&session, &site.url("/info")).await;
    assert_eq!(version, Version::HTTP_2);
    assert_eq!(text, "secure=true version=HTTP/2.0");

    let mut tasks = JoinSet::new();
    for _ in 0..50 {
        let (session, url) = (session.clone(), site.url("/info"));
        tasks.spawn(async move {
            let resp = session.get(&url).send().await?;
            let version = resp.version();
            resp.text().await.map(|t| (version, t))
        });
    }
    while let Some(result) = tasks.join_next().await {
        let (version, text) = result.unwrap().unwrap();
        assert_eq!(version, Version::HTTP_2);
        assert_eq!(text, "secure=true version=HTTP/2.0");
    }
    let stats = session.pool_stats();
    assert_eq!(stats.open, 1, "{stats:?}");
    assert_eq!(stats.hosts.len(), 1, "{stats:?}");
    assert_eq!(stats.hosts[0].http2_connections, 1, "{stats:?}");
    assert_eq!(stats.hosts[0].in_use, 0, "{stats:?}");
    assert_eq!(counter.connections(), 1);

    // The IP address is in the certificate too.
    let (version, _) = get_text(&session, &site.ip_url("/info")).await;
    assert_eq!(version, Version::HTTP_2);
}

#[tokio::test]
async fn http1_only_and_a_per_request_version() {
    let ca = TestCa::new("aiox test CA");
    let counter = ConnCounter::default();
    let site = TlsSite::start(app(&counter), server_tls(&ca.server_cert())).await;

    let session = trusting(&ca).http1_only().build().unwrap();
    let (version, text) = get_text(&session, &site.url("/info")).await;
    assert_eq!(version, Version::HTTP_11);
    assert_eq!(text, "secure=true version=HTTP/1.1");

    let session = trusting(&ca).build().unwrap();
    let resp = session
        .get(&site.url("/info"))
        .version(Version::HTTP_11)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_11);
    assert_eq!(resp.text().await.unwrap(), "secure=true version=HTTP/1.1");
    // The next request without a preference still gets HTTP/2, on its own connection.
    let (version, _) = get_text(&session, &site.url("/info")).await;
    assert_eq!(version, Version::HTTP_2);
    // And HTTP/2 asked for on an http1_only session.
    let session = trusting(&ca).http1_only().build().unwrap();
    let resp = session
        .get(&site.url("/info"))
        .version(Version::HTTP_2)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    // HTTP/3 and HTTP/0.9 are refused, not panicked on.
    let err = session
        .get(&site.url("/info"))
        .version(Version::HTTP_3)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder, "{err:?}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_certificate_error() {
    let ca = TestCa::new("aiox test CA");
    let counter = ConnCounter::default();
    let site = TlsSite::start(app(&counter), server_tls(&ca.server_cert())).await;

    // The default roots do not know our CA.
    let err = ClientSession::new()
        .get(&site.url("/info"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Certificate, "{err:?}");
    assert!(err.is_connect());
    assert_eq!(
        err.url().map(|u| u.as_str()),
        Some(site.url("/info").as_str())
    );

    // Another CA is no better.
    let other = TestCa::new("another CA");
    let err = trusting(&other)
        .build()
        .unwrap()
        .get(&site.url("/info"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Certificate, "{err:?}");

    // The right CA but a certificate for another name.
    let elsewhere = TlsSite::start(app(&counter), {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["elsewhere.test".to_string()]).unwrap();
        let issuer = rcgen::Issuer::new(
            rcgen::CertificateParams::default(),
            rcgen::KeyPair::generate().unwrap(),
        );
        let cert = params.signed_by(&key, &issuer).unwrap();
        TlsConfig::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap()
    })
    .await;
    let err = trusting(&ca)
        .build()
        .unwrap()
        .get(&elsewhere.url("/info"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Certificate, "{err:?}");
    assert_eq!(counter.connections(), 0);

    // An invalid PEM is a builder error.
    let err = ClientSession::builder()
        .add_root_certificate_pem(b"not a certificate")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder, "{err:?}");
}

#[tokio::test]
async fn danger_accept_invalid_certs_accepts_any_certificate() {
    let ca = TestCa::new("aiox test CA");
    let counter = ConnCounter::default();
    let site = TlsSite::start(app(&counter), server_tls(&ca.server_cert())).await;
    let session = ClientSession::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let (version, text) = get_text(&session, &site.url("/info")).await;
    assert_eq!(version, Version::HTTP_2);
    assert_eq!(text, "secure=true version=HTTP/2.0");
}

/// A TLS config asking for a client certificate signed by `client_ca`.
fn mutual_tls(server: &TestCert, client_ca: &TestCa) -> TlsConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(client_ca.pem.as_bytes()).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let certs = CertificateDer::pem_slice_iter(server.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    TlsConfig::from_rustls(config)
}

#[tokio::test]
async fn a_client_certificate_the_server_requires() {
    let ca = TestCa::new("aiox test CA");
    let client_ca = TestCa::new("aiox client CA");
    let counter = ConnCounter::default();
    let site = TlsSite::start(app(&counter), mutual_tls(&ca.server_cert(), &client_ca)).await;

    let client = client_ca.client_cert();
    let session = trusting(&ca)
        .identity_pem(client.cert_pem.as_bytes(), client.key_pem.as_bytes())
        .build()
        .unwrap();
    let (version, text) = get_text(&session, &site.url("/info")).await;
    assert_eq!(version, Version::HTTP_2);
    assert_eq!(text, "secure=true version=HTTP/2.0");

    // Without one: refused.
    let err = trusting(&ca)
        .build()
        .unwrap()
        .get(&site.url("/info"))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Certificate | ErrorKind::Tls | ErrorKind::Connect | ErrorKind::Request
        ),
        "{err:?}"
    );
    // With one from a CA the server does not trust: refused.
    let stranger = TestCa::new("stranger CA").client_cert();
    let err = trusting(&ca)
        .identity_pem(stranger.cert_pem.as_bytes(), stranger.key_pem.as_bytes())
        .build()
        .unwrap()
        .get(&site.url("/info"))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Certificate | ErrorKind::Tls | ErrorKind::Connect | ErrorKind::Request
        ),
        "{err:?}"
    );
    assert_eq!(
        counter.requests.load(std::sync::atomic::Ordering::SeqCst),
        1
    );

    // A bad identity is a builder error.
    let err = ClientSession::builder()
        .identity_pem(b"nope", client.key_pem.as_bytes())
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder, "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_by_prior_knowledge() {
    let counter = ConnCounter::default();
    let server = Server::start(app(&counter)).await;
    let session = ClientSession::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let (session, url) = (session.clone(), server.url("/info"));
        tasks.spawn(async move {
            let resp = session.get(&url).send().await?;
            let version = resp.version();
            resp.text().await.map(|t| (version, t))
        });
    }
    while let Some(result) = tasks.join_next().await {
        let (version, text) = result.unwrap().unwrap();
        assert_eq!(version, Version::HTTP_2);
        assert_eq!(text, "secure=false version=HTTP/2.0");
    }
    assert_eq!(counter.connections(), 1);
    assert_eq!(session.pool_stats().hosts[0].http2_connections, 1);

    // Per request, on a default session; plain http stays HTTP/1.1 otherwise.
    let session = ClientSession::new();
    let resp = session
        .get(&server.url("/info"))
        .version(Version::HTTP_2)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    let (version, text) = get_text(&session, &server.url("/info")).await;
    assert_eq!(version, Version::HTTP_11);
    assert_eq!(text, "secure=false version=HTTP/1.1");
}

#[tokio::test]
async fn a_unix_socket_session() {
    let dir = TempDir::new("unix");
    let path = dir.join("app.sock");
    let counter = ConnCounter::default();
    let mut runner = Runner::new(app(&counter)).await.unwrap();
    runner.add_site(Site::Unix(path.clone())).await.unwrap();

    let session = ClientSession::builder().unix_socket(&path).build().unwrap();
    for _ in 0..3 {
        let (version, text) = get_text(&session, "http://localhost/info").await;
        assert_eq!(version, Version::HTTP_11);
        assert_eq!(text, "secure=false version=HTTP/1.1");
    }
    assert_eq!(
        counter.requests.load(std::sync::atomic::Ordering::SeqCst),
        3
    );
    assert_eq!(session.pool_stats().open, 1);

    // A missing socket is a connect error.
    let session = ClientSession::builder()
        .unix_socket(dir.join("missing.sock"))
        .build()
        .unwrap();
    let err = session
        .get("http://localhost/info")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    runner.shutdown().await.unwrap();
}
