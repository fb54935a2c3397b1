//! Redirects end to end: method and body rewriting per status, sensitive headers
//! across origins, limits, loops, unsafe schemes and the reported history.

mod support;

use aiox_client::{ClientSession, ErrorKind, Method, RequestBody, StatusCode, TlsRoots};
use aiox_web::http::header::LOCATION;
use aiox_web::{Application, HeaderValue, Request, Response, TlsConfig};
use bytes::Bytes;
use serde_json::Value;
use support::{RequestLog, Server, TempDir, TestCa, TlsSite, echo};

/// A `status` redirect to `location`.
fn redirect(status: u16, location: &str) -> Response {
    Response::empty()
        .with_status(StatusCode::from_u16(status).unwrap())
        .with_header(LOCATION, HeaderValue::from_str(location).unwrap())
}

/// `/r/{code}?to=LOCATION` answers `code` with that `Location`; `/chain/{n}` takes n
/// redirects to reach 200; `/loop/a` and `/loop/b` point at each other.
fn app() -> Application {
    Application::new()
        .any("/echo", echo)
        .any("/r/{code}", |req: Request| async move {
            // Answers without reading an upload: the server discards the rest of it
            // (HARDENING case 27), so the client gets the redirect, not a broken pipe.
            let code: u16 = req.match_info().get("code").unwrap().parse().unwrap();
            let to = req.query().get("to").unwrap_or("/echo").to_owned();
            redirect(code, &to)
        })
        .get("/chain/{n}", |req: Request| async move {
            let n: u32 = req.match_info().get("n").unwrap().parse().unwrap();
            if n == 0 {
                Response::text("done")
            } else {
                redirect(302, &format!("/chain/{}", n - 1))
            }
        })
        .get("/loop/a", || async { redirect(302, "/loop/b") })
        .get("/loop/b", || async { redirect(302, "/loop/a") })
        .get("/self", || async { redirect(302, "/self") })
        .get("/dir/rel", || async { redirect(302, "../echo?x=1") })
        .any("/h1", |mut req: Request| async move {
            let _ = req.bytes().await;
            redirect(301, "/h2")
        })
        .any("/h2", |mut req: Request| async move {
            let _ = req.bytes().await;
            redirect(308, "/h3")
        })
        .any("/h3", |mut req: Request| async move {
            let _ = req.bytes().await;
            redirect(303, "/echo")
        })
}

async fn start() -> (Server, RequestLog) {
    let log = RequestLog::default();
    let server = Server::start(log.install(app())).await;
    (server, log)
}

async fn json(resp: aiox_client::Response) -> Value {
    assert_eq!(resp.status(), 200, "final response of {}", resp.url());
    resp.json().await.unwrap()
}

#[tokio::test]
async fn post_becomes_get_without_body_after_301_302_303() {
    let (server, log) = start().await;
    let session = ClientSession::new();
    for code in [301, 302, 303] {
        let resp = session
            .post(&server.url(&format!("/r/{code}?to=/echo")))
            .header("content-type", "text/plain")
            .header("content-encoding", "identity")
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.method(), Method::GET, "after {code}");
        assert_eq!(resp.url().as_str(), server.url("/echo"));
        assert_eq!(resp.history().len(), 1);
        assert_eq!(resp.history()[0].status, code);
        let v = json(resp).await;
        assert_eq!(v["method"], "GET", "after {code}: {v}");
        assert_eq!(v["body"], "", "after {code}: {v}");
        for gone in [
            "content-type",
            "content-length",
            "content-encoding",
            "transfer-encoding",
        ] {
            assert!(v["headers"].get(gone).is_none(), "{gone} after {code}: {v}");
        }
    }
    assert_eq!(
        log.lines(),
        [
            "POST /r/301?to=/echo",
            "GET /echo",
            "POST /r/302?to=/echo",
            "GET /echo",
            "POST /r/303?to=/echo",
            "GET /echo",
        ]
    );
}

#[tokio::test]
async fn head_stays_head_after_303() {
    let (server, log) = start().await;
    let session = ClientSession::new();
    let resp = session
        .head(&server.url("/r/303?to=/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.method(), Method::HEAD);
    assert_eq!(resp.history().len(), 1);
    assert_eq!(log.lines(), ["HEAD /r/303?to=/echo", "HEAD /echo"]);
}

#[tokio::test]
async fn put_after_303_becomes_get() {
    let (server, log) = start().await;
    let resp = ClientSession::new()
        .put(&server.url("/r/303?to=/echo"))
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.method(), Method::GET);
    let v = json(resp).await;
    assert_eq!(v["body"], "");
    assert_eq!(log.lines(), ["PUT /r/303?to=/echo", "GET /echo"]);
}

#[tokio::test]
async fn bytes_body_and_method_survive_307_and_308() {
    let (server, _log) = start().await;
    let session = ClientSession::new();
    for code in [307, 308] {
        for method in [Method::POST, Method::PUT, Method::PATCH] {
            let resp = session
                .request(method.clone(), &server.url(&format!("/r/{code}?to=/echo")))
                .header("content-type", "text/plain")
                .body("payload")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.method(), method);
            assert_eq!(resp.history().len(), 1);
            let v = json(resp).await;
            assert_eq!(v["method"], method.as_str(), "{code}: {v}");
            assert_eq!(v["body"], "payload", "{code}: {v}");
            assert_eq!(v["headers"]["content-type"], "text/plain", "{code}: {v}");
            assert_eq!(v["headers"]["content-length"], "7", "{code}: {v}");
        }
    }
}

#[tokio::test]
async fn file_body_is_sent_again_on_307_and_308() {
    let (server, log) = start().await;
    let dir = TempDir::new("redirect-file");
    let path = dir.join("body.txt");
    let contents = "file body ".repeat(1000);
    std::fs::write(&path, &contents).unwrap();
    let session = ClientSession::new();
    for code in [307, 308] {
        let resp = session
            .put(&server.url(&format!("/r/{code}?to=/echo")))
            .body(RequestBody::file(&path))
            .send()
            .await
            .unwrap();
        let v = json(resp).await;
        assert_eq!(v["method"], "PUT");
        assert_eq!(v["body"], contents.as_str());
        assert_eq!(v["headers"]["content-length"], contents.len().to_string());
    }
    assert_eq!(log.len(), 4);
}

#[tokio::test]
async fn streamed_body_cannot_follow_307() {
    let (server, log) = start().await;
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        vec![Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"cd"))];
    let err = ClientSession::new()
        .post(&server.url("/r/307?to=/echo"))
        .body(RequestBody::stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect, "{err:?}");
    assert_eq!(err.history().len(), 1);
    assert_eq!(err.history()[0].status, 307);
    assert_eq!(err.url().unwrap().as_str(), server.url("/r/307?to=/echo"));
    assert_eq!(log.lines(), ["POST /r/307?to=/echo"]);
}

#[tokio::test]
async fn streamed_body_follows_303_as_get() {
    let (server, log) = start().await;
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::from_static(b"ab"))];
    let resp = ClientSession::new()
        .post(&server.url("/r/303?to=/echo"))
        .body(RequestBody::stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.method(), Method::GET);
    let v = json(resp).await;
    assert_eq!(v["body"], "");
    assert_eq!(log.lines(), ["POST /r/303?to=/echo", "GET /echo"]);
}

#[tokio::test]
async fn credentials_are_dropped_on_a_redirect_to_another_origin() {
    let (a, log_a) = start().await;
    let (b, log_b) = start().await;
    let session = ClientSession::new();
    // Another host name and port, then the same host on another port.
    for target in [b.local_url("/echo"), b.url("/echo")] {
        let resp = session
            .get(&a.url(&format!("/r/302?to={target}")))
            .header("authorization", "Bearer secret")
            .header("cookie", "sid=secret")
            .header("proxy-authorization", "Basic c2VjcmV0")
            .header("x-other", "kept")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.url().as_str(), target);
        let v = json(resp).await;
        for gone in ["authorization", "cookie", "proxy-authorization"] {
            assert!(v["headers"].get(gone).is_none(), "{gone} to {target}: {v}");
        }
        assert_eq!(v["headers"]["x-other"], "kept");
    }
    // The first hop had them.
    for first in log_a.entries() {
        assert_eq!(first.headers["authorization"], "Bearer secret");
        assert_eq!(first.headers["cookie"], "sid=secret");
    }
    assert_eq!(log_a.len(), 2);
    assert_eq!(log_b.len(), 2);
}

#[tokio::test]
async fn session_basic_auth_is_dropped_on_a_redirect_to_another_origin() {
    let (a, _) = start().await;
    let (b, _) = start().await;
    let session = ClientSession::builder()
        .basic_auth("user", "pass")
        .build()
        .unwrap();
    let v = json(
        session
            .get(&a.url(&format!("/r/307?to={}", b.url("/echo"))))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(v["headers"].get("authorization").is_none(), "{v}");
}

#[tokio::test]
async fn credentials_are_kept_on_a_same_origin_redirect() {
    let (server, _) = start().await;
    let session = ClientSession::builder().cookie_jar(None).build().unwrap();
    let absolute = server.url("/echo");
    for to in ["/echo", absolute.as_str()] {
        let v = json(
            session
                .get(&server.url(&format!("/r/302?to={to}")))
                .header("authorization", "Bearer secret")
                .header("cookie", "sid=secret")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(v["headers"]["authorization"], "Bearer secret", "{v}");
        assert_eq!(v["headers"]["cookie"], "sid=secret", "{v}");
    }
}

#[tokio::test]
async fn relative_locations_are_resolved_against_the_request_url() {
    let (server, log) = start().await;
    let resp = ClientSession::new()
        .get(&server.url("/dir/rel"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.url().as_str(), server.url("/echo?x=1"));
    let v = json(resp).await;
    assert_eq!(v["target"], "/echo?x=1");
    assert_eq!(log.lines(), ["GET /dir/rel", "GET /echo?x=1"]);
}

#[tokio::test]
async fn ten_redirects_are_followed_and_the_eleventh_is_an_error() {
    let (server, log) = start().await;
    let session = ClientSession::new();
    assert_eq!(aiox_client::DEFAULT_MAX_REDIRECTS, 10);

    let resp = session.get(&server.url("/chain/10")).send().await.unwrap();
    assert_eq!(resp.history().len(), 10);
    assert_eq!(resp.url().as_str(), server.url("/chain/0"));
    assert_eq!(resp.text().await.unwrap(), "done");
    assert_eq!(log.len(), 11);

    let err = session
        .get(&server.url("/chain/11"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect, "{err:?}");
    assert!(err.to_string().contains("too many redirects"), "{err}");
    assert_eq!(err.history().len(), 11);
    assert_eq!(err.history()[0].url.as_str(), server.url("/chain/11"));
    assert_eq!(err.history()[10].url.as_str(), server.url("/chain/1"));
    // The eleventh Location (/chain/0) was not requested.
    assert_eq!(log.len(), 11 + 11);
    assert!(!log.lines()[11..].contains(&"GET /chain/0".to_owned()));
}

#[tokio::test]
async fn max_redirects_per_request_and_per_session() {
    let (server, log) = start().await;
    let session = ClientSession::new();
    let resp = session
        .get(&server.url("/chain/2"))
        .max_redirects(2)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.history().len(), 2);
    assert_eq!(log.len(), 3);

    let err = session
        .get(&server.url("/chain/3"))
        .max_redirects(2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert_eq!(err.history().len(), 3);
    assert_eq!(log.len(), 3 + 3);

    let err = session
        .get(&server.url("/chain/1"))
        .max_redirects(0)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert_eq!(err.history().len(), 1);

    let strict = ClientSession::builder().max_redirects(1).build().unwrap();
    assert_eq!(
        strict
            .get(&server.url("/chain/1"))
            .send()
            .await
            .unwrap()
            .history()
            .len(),
        1
    );
    let err = strict
        .get(&server.url("/chain/2"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert_eq!(err.history().len(), 2);
}

#[tokio::test]
async fn a_redirect_loop_is_an_error() {
    let (server, log) = start().await;
    let session = ClientSession::new();
    let err = session
        .get(&server.url("/loop/a"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert!(err.to_string().contains("redirect loop"), "{err}");
    let urls: Vec<&str> = err.history().iter().map(|h| h.url.as_str()).collect();
    assert_eq!(urls, [server.url("/loop/a"), server.url("/loop/b")]);
    assert_eq!(log.lines(), ["GET /loop/a", "GET /loop/b"]);

    let err = session.get(&server.url("/self")).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert!(err.to_string().contains("redirect loop"), "{err}");
    assert_eq!(err.history().len(), 1);
}

#[tokio::test]
async fn non_http_locations_are_not_followed() {
    let (server, log) = start().await;
    let session = ClientSession::new();
    for to in [
        "ftp://127.0.0.1/file",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "data:text/plain,hi",
    ] {
        let err = session
            .get(&server.url("/r/302"))
            .query(&[("to", to)])
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Redirect, "{to}: {err:?}");
        assert_eq!(err.history().len(), 1, "{to}");
        assert_eq!(err.history()[0].headers[LOCATION], to);
    }
    // Nothing but the redirects themselves reached the server.
    assert_eq!(log.len(), 4);
}

#[tokio::test]
async fn an_unparsable_location_is_an_error() {
    let (server, _) = start().await;
    let err = ClientSession::new()
        .get(&server.url("/r/302"))
        .query(&[("to", "http://[::1")])
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect, "{err:?}");
}

#[tokio::test]
async fn redirects_can_be_switched_off() {
    let (server, log) = start().await;
    let resp = ClientSession::new()
        .post(&server.url("/r/302?to=/echo"))
        .body("x")
        .allow_redirects(false)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()[LOCATION], "/echo");
    assert_eq!(resp.method(), Method::POST);
    assert!(resp.history().is_empty());
    assert_eq!(resp.url().as_str(), server.url("/r/302?to=/echo"));

    let session = ClientSession::builder()
        .follow_redirects(false)
        .build()
        .unwrap();
    let resp = session.get(&server.url("/chain/1")).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    // A request can turn them back on.
    let resp = session
        .get(&server.url("/chain/1"))
        .allow_redirects(true)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(log.len(), 1 + 1 + 2);
}

#[tokio::test]
async fn history_lists_every_hop_and_url_is_the_final_one() {
    let (server, log) = start().await;
    let resp = ClientSession::new()
        .post(&server.url("/h1"))
        .body("payload")
        .send()
        .await
        .unwrap();
    let hops: Vec<(String, u16, String)> = resp
        .history()
        .iter()
        .map(|h| {
            (
                h.url.to_string(),
                h.status.as_u16(),
                h.headers[LOCATION].to_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        hops,
        [
            (server.url("/h1"), 301, "/h2".to_owned()),
            (server.url("/h2"), 308, "/h3".to_owned()),
            (server.url("/h3"), 303, "/echo".to_owned()),
        ]
    );
    assert_eq!(resp.url().as_str(), server.url("/echo"));
    assert_eq!(resp.method(), Method::GET);
    // 301 turned the POST into a GET; 308 kept the GET; 303 kept it a GET.
    assert_eq!(log.lines(), ["POST /h1", "GET /h2", "GET /h3", "GET /echo"]);
}

#[tokio::test]
async fn redirect_connections_are_reused() {
    let (server, _) = start().await;
    let session = ClientSession::new();
    let resp = session.get(&server.url("/chain/5")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "done");
    let stats = session.pool_stats();
    assert_eq!(stats.open, 1, "{stats:?}");
}

#[tokio::test]
async fn credentials_stay_on_https_and_are_dropped_on_a_downgrade_to_http() {
    let ca = TestCa::new("aiox redirect test CA");
    let cert = ca.server_cert();
    let tls = TlsConfig::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap();
    let site = TlsSite::start(app(), tls).await;
    let (plain, _) = start().await;
    let session = ClientSession::builder()
        .tls_roots(TlsRoots::None)
        .add_root_certificate_pem(ca.pem.as_bytes())
        .build()
        .unwrap();
    // Same origin over https (HTTP/2 through ALPN): kept.
    let v = json(
        session
            .get(&site.url("/r/302?to=/echo"))
            .header("authorization", "Bearer secret")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["headers"]["authorization"], "Bearer secret", "{v}");
    // https to http, same host name: dropped.
    let target = plain.local_url("/echo");
    let resp = session
        .get(&site.url(&format!("/r/307?to={target}")))
        .header("authorization", "Bearer secret")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.url().as_str(), target);
    assert_eq!(resp.history()[0].url.scheme(), "https");
    let v = json(resp).await;
    assert!(v["headers"].get("authorization").is_none(), "{v}");
    assert!(v["headers"].get("proxy-authorization").is_none(), "{v}");
}
