//! The cookie jar end to end: cookies a server sets come back on later requests, within
//! the RFC 6265 rules (hosts, domains, paths, `Secure`, expiry), through redirects, and
//! across sessions sharing, saving and loading a jar.

mod support;

use std::time::Duration;

use aiox_client::{ClientSession, CookieJar, TlsRoots};
use aiox_web::http::header::{COOKIE, LOCATION, SET_COOKIE};
use aiox_web::{Application, HeaderValue, Request, Response, StatusCode, TlsConfig};
use support::{RequestLog, Server, TempDir, TestCa, TlsSite};

/// `?c=SET-COOKIE` (repeatable) sets each verbatim; `&to=URL` makes it a 302 there.
async fn set(req: Request) -> Response {
    let query = req.query();
    let mut resp = match query.get("to") {
        Some(to) => Response::empty()
            .with_status(StatusCode::FOUND)
            .with_header(LOCATION, HeaderValue::from_str(to).unwrap()),
        None => Response::text("set"),
    };
    for c in query.get_all("c") {
        resp.headers_mut()
            .append(SET_COOKIE, HeaderValue::from_str(c).unwrap());
    }
    resp
}

/// The `Cookie` header received, or "".
async fn show(req: Request) -> String {
    req.header(COOKIE).unwrap_or("").to_owned()
}

fn app() -> Application {
    let mut app = Application::new()
        .any("/set", set)
        .any("/app/set", set)
        .get("/del", |req: Request| async move {
            let mut resp = Response::text("deleted");
            resp.del_cookie(req.query().get("name").unwrap());
            resp
        })
        .get("/login", |req: Request| async move {
            if req.cookies().get("auth") == Some("1") {
                Response::text("welcome")
            } else {
                let mut resp = Response::empty()
                    .with_status(StatusCode::FOUND)
                    .with_header(LOCATION, HeaderValue::from_static("/login"));
                resp.headers_mut()
                    .append(SET_COOKIE, HeaderValue::from_static("auth=1; Path=/"));
                resp
            }
        });
    for path in [
        "/show",
        "/app/show",
        "/app/sub/show",
        "/apps/show",
        "/other/show",
    ] {
        app = app.get(path, show);
    }
    app
}

async fn start() -> (Server, RequestLog) {
    let log = RequestLog::default();
    let server = Server::start(log.install(app())).await;
    (server, log)
}

/// Sets the `Set-Cookie` values `cookies` through `url` (a `/set` URL).
async fn set_cookies(
    session: &ClientSession,
    url: &str,
    cookies: &[&str],
) -> aiox_client::Response {
    let pairs: Vec<(&str, &str)> = cookies.iter().map(|c| ("c", *c)).collect();
    let resp = session.get(url).query(&pairs).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp
}

async fn shown(session: &ClientSession, url: &str) -> String {
    let resp = session.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    resp.text().await.unwrap()
}

#[tokio::test]
async fn cookies_a_response_sets_are_sent_on_the_next_request() {
    let (server, _) = start().await;
    let session = ClientSession::new();
    assert_eq!(shown(&session, &server.local_url("/show")).await, "");
    let resp = set_cookies(
        &session,
        &server.local_url("/set"),
        &["sid=abc; Path=/", "theme=dark"],
    )
    .await;
    let names: Vec<String> = resp.cookies().iter().map(|c| c.name().to_owned()).collect();
    assert_eq!(names, ["sid", "theme"]);
    assert_eq!(session.cookie_jar().unwrap().len(), 2);
    assert_eq!(
        shown(&session, &server.local_url("/show")).await,
        "sid=abc; theme=dark"
    );
    // A later value replaces the earlier one.
    set_cookies(&session, &server.local_url("/set"), &["sid=xyz; Path=/"]).await;
    assert_eq!(
        shown(&session, &server.local_url("/show")).await,
        "sid=xyz; theme=dark"
    );
}

#[tokio::test]
async fn the_default_jar_ignores_ip_hosts() {
    let (server, _) = start().await;
    let session = ClientSession::new();
    set_cookies(&session, &server.url("/set"), &["sid=abc"]).await;
    assert!(session.cookie_jar().unwrap().is_empty());
    assert_eq!(shown(&session, &server.url("/show")).await, "");
}

#[tokio::test]
async fn an_unsafe_jar_keeps_ip_host_cookies_for_that_host_only() {
    let (server, _) = start().await;
    let session = ClientSession::builder()
        .cookie_jar(Some(CookieJar::new_unsafe()))
        .build()
        .unwrap();
    set_cookies(&session, &server.url("/set"), &["sid=abc"]).await;
    assert_eq!(shown(&session, &server.url("/show")).await, "sid=abc");
    // Host-only: the same server under another name does not get it.
    assert_eq!(shown(&session, &server.local_url("/show")).await, "");
}

#[tokio::test]
async fn host_only_and_domain_cookies() {
    let (server, _) = start().await;
    let session = ClientSession::builder()
        .cookie_jar(Some(CookieJar::new_unsafe()))
        .build()
        .unwrap();
    set_cookies(
        &session,
        &server.local_url("/set"),
        &[
            "host=1",
            // Another domain: refused.
            "other=1; Domain=example.com",
            // The request host itself: accepted, not host-only.
            "dom=1; Domain=localhost",
        ],
    )
    .await;
    let jar = session.cookie_jar().unwrap();
    let mut names: Vec<String> = jar.all().iter().map(|c| c.name().to_owned()).collect();
    names.sort();
    assert_eq!(names, ["dom", "host"]);
    assert_eq!(
        shown(&session, &server.local_url("/show")).await,
        "host=1; dom=1"
    );
    assert_eq!(shown(&session, &server.url("/show")).await, "");
}

#[tokio::test]
async fn cookies_are_scoped_by_path() {
    let (server, _) = start().await;
    let session = ClientSession::new();
    set_cookies(&session, &server.local_url("/set"), &["p=1; Path=/app"]).await;
    // No Path: the default path of /app/set is /app.
    set_cookies(&session, &server.local_url("/app/set"), &["q=2"]).await;
    // A longer path is sent first.
    set_cookies(&session, &server.local_url("/set"), &["r=3; Path=/app/sub"]).await;
    for (path, expected) in [
        ("/app/show", "p=1; q=2"),
        ("/app/sub/show", "r=3; p=1; q=2"),
        ("/show", ""),
        ("/apps/show", ""),
        ("/other/show", ""),
    ] {
        assert_eq!(
            shown(&session, &server.local_url(path)).await,
            expected,
            "{path}"
        );
    }
}

#[tokio::test]
async fn secure_cookies_are_neither_set_nor_sent_over_http() {
    let (server, _) = start().await;
    let session = ClientSession::new();
    set_cookies(&session, &server.local_url("/set"), &["s=1; Secure"]).await;
    let jar = session.cookie_jar().unwrap();
    assert!(jar.is_empty());
    // One set over https stays on https.
    let https = url::Url::parse(&format!("https://localhost:{}/", server.addr().port())).unwrap();
    let cookie = cookie::Cookie::build(("s", "1"))
        .secure(true)
        .path("/")
        .build();
    assert!(jar.insert(cookie, &https));
    assert!(jar.add("plain", "1", &https));
    assert_eq!(shown(&session, &server.local_url("/show")).await, "plain=1");
}

#[tokio::test]
async fn max_age_zero_deletes_a_cookie() {
    let (server, _) = start().await;
    let session = ClientSession::new();
    let jar = session.cookie_jar().unwrap();
    set_cookies(
        &session,
        &server.local_url("/set"),
        &["m=1; Path=/", "n=1; Path=/"],
    )
    .await;
    assert_eq!(
        shown(&session, &server.local_url("/show")).await,
        "m=1; n=1"
    );
    set_cookies(
        &session,
        &server.local_url("/set"),
        &["m=; Path=/; Max-Age=0"],
    )
    .await;
    assert_eq!(shown(&session, &server.local_url("/show")).await, "n=1");
    assert_eq!(jar.len(), 1);
    // aiox-web's del_cookie (Max-Age=0 and a past Expires).
    let resp = session
        .get(&server.local_url("/del?name=n"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "deleted");
    assert_eq!(shown(&session, &server.local_url("/show")).await, "");
    assert_eq!(jar.len(), 0);
}

#[tokio::test]
async fn a_per_request_cookie_goes_only_to_the_original_origin() {
    let (a, log_a) = start().await;
    let (b, log_b) = start().await;
    let session = ClientSession::new();

    // Same origin: every hop has it.
    let resp = session
        .get(&a.local_url("/set"))
        .query(&[("to", "/show")])
        .cookie("k", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.history().len(), 1);
    assert_eq!(resp.text().await.unwrap(), "k=v");

    // Another origin: only the first hop.
    let resp = session
        .get(&a.local_url("/set"))
        .query(&[("to", b.local_url("/show"))])
        .cookie("k", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.url().as_str(), b.local_url("/show"));
    assert_eq!(resp.text().await.unwrap(), "");
    let seen: Vec<Option<String>> = log_a
        .entries()
        .iter()
        .chain(log_b.entries().iter())
        .map(|r| {
            r.headers
                .get(COOKIE)
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        seen,
        [
            Some("k=v".to_owned()),
            Some("k=v".to_owned()),
            Some("k=v".to_owned()),
            None
        ]
    );

    // It was not stored, and it goes beside the jar's cookies.
    assert_eq!(shown(&session, &a.local_url("/show")).await, "");
    set_cookies(&session, &a.local_url("/set"), &["sid=abc"]).await;
    let resp = session
        .get(&a.local_url("/show"))
        .cookie("k", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "sid=abc; k=v");
}

#[tokio::test]
async fn a_jar_is_shared_between_sessions() {
    let (server, _) = start().await;
    let jar = CookieJar::new();
    let first = ClientSession::builder()
        .cookie_jar(Some(jar.clone()))
        .build()
        .unwrap();
    let second = ClientSession::builder()
        .cookie_jar(Some(jar.clone()))
        .build()
        .unwrap();
    set_cookies(&first, &server.local_url("/set"), &["sid=abc"]).await;
    assert_eq!(jar.len(), 1);
    assert_eq!(shown(&second, &server.local_url("/show")).await, "sid=abc");
    jar.clear();
    assert_eq!(shown(&first, &server.local_url("/show")).await, "");
}

#[tokio::test]
async fn a_saved_jar_loads_into_a_new_session() {
    let (server, _) = start().await;
    let dir = TempDir::new("cookie-jar");
    let path = dir.join("jar.json");
    let session = ClientSession::new();
    set_cookies(
        &session,
        &server.local_url("/set"),
        &[
            "sid=abc; Max-Age=3600; Path=/",
            "tmp=1; Path=/",
            "gone=1; Max-Age=0",
        ],
    )
    .await;
    session.cookie_jar().unwrap().save_file(&path).unwrap();

    let loaded = CookieJar::load_file(&path).unwrap();
    assert_eq!(loaded.len(), 2);
    assert!(!loaded.allows_ip_hosts());
    let restored = ClientSession::builder()
        .cookie_jar(Some(loaded))
        .build()
        .unwrap();
    assert_eq!(
        shown(&restored, &server.local_url("/show")).await,
        "sid=abc; tmp=1"
    );
}

#[tokio::test]
async fn without_a_jar_nothing_is_stored_or_sent() {
    let (server, _) = start().await;
    let session = ClientSession::builder().cookie_jar(None).build().unwrap();
    assert!(session.cookie_jar().is_none());
    let resp = set_cookies(&session, &server.local_url("/set"), &["sid=abc"]).await;
    // The response still reports what it set.
    assert_eq!(resp.cookies().len(), 1);
    assert_eq!(shown(&session, &server.local_url("/show")).await, "");
    // A redirect that sets a cookie does not carry it on.
    let resp = session
        .get(&server.local_url("/set"))
        .query(&[("c", "sid=abc"), ("to", "/show")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "");
    // Per-request cookies still go out.
    let resp = session
        .get(&server.local_url("/show"))
        .cookie("k", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "k=v");
}

#[tokio::test]
async fn response_cookies_lists_the_set_cookie_headers() {
    let (server, _) = start().await;
    let resp = set_cookies(
        &ClientSession::new(),
        &server.local_url("/set"),
        &[
            "a=1; Path=/; Max-Age=60; HttpOnly",
            "b=2; Secure; SameSite=Strict",
            // No name: skipped.
            "=bad",
        ],
    )
    .await;
    let cookies = resp.cookies();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert_eq!((cookies[0].name(), cookies[0].value()), ("a", "1"));
    assert_eq!(cookies[0].path(), Some("/"));
    assert_eq!(
        cookies[0].max_age(),
        Some(cookie::time::Duration::seconds(60))
    );
    assert_eq!(cookies[0].http_only(), Some(true));
    assert_eq!((cookies[1].name(), cookies[1].value()), ("b", "2"));
    assert_eq!(cookies[1].secure(), Some(true));
    assert_eq!(cookies[1].same_site(), Some(cookie::SameSite::Strict));
}

#[tokio::test]
async fn cookies_set_on_a_redirect_are_sent_on_the_next_hop() {
    let (server, log) = start().await;
    let session = ClientSession::new();
    // httpbin's /cookies/set?k=v: a 302 that sets the cookie, to a page showing it.
    let resp = session
        .get(&server.local_url("/set"))
        .query(&[("c", "k=v; Path=/"), ("to", "/show")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.history().len(), 1);
    assert_eq!(resp.history()[0].headers[SET_COOKIE], "k=v; Path=/");
    assert!(resp.cookies().is_empty());
    assert_eq!(resp.text().await.unwrap(), "k=v");

    // A redirect to itself that sets a cookie is not a loop.
    let resp = session
        .get(&server.local_url("/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.history().len(), 1);
    assert_eq!(resp.text().await.unwrap(), "welcome");
    assert_eq!(log.len(), 4);
}

#[tokio::test]
async fn jar_cookies_are_chosen_again_for_each_hop() {
    let (a, _) = start().await;
    let (b, log_b) = start().await;
    let session = ClientSession::builder()
        .cookie_jar(Some(CookieJar::new_unsafe()))
        .timeout(aiox_client::ClientTimeout::default().total(Duration::from_secs(10)))
        .build()
        .unwrap();
    // Set for 127.0.0.1, then redirected to localhost: not sent there.
    let resp = session
        .get(&a.url("/set"))
        .query(&[("c", "ip=1; Path=/"), ("to", b.local_url("/show").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "");
    // Set for localhost (ports do not matter to cookies), then redirected to localhost
    // on another port: sent.
    let resp = session
        .get(&a.local_url("/set"))
        .query(&[
            ("c", "name=1; Path=/"),
            ("to", b.local_url("/show").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "name=1");
    assert_eq!(log_b.len(), 2);
}

#[tokio::test]
async fn a_secure_cookie_set_over_https_is_not_sent_after_a_redirect_to_http() {
    let ca = TestCa::new("aiox cookie test CA");
    let cert = ca.server_cert();
    let tls = TlsConfig::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap();
    let site = TlsSite::start(app(), tls).await;
    let (plain, _) = start().await;
    let session = ClientSession::builder()
        .tls_roots(TlsRoots::None)
        .add_root_certificate_pem(ca.pem.as_bytes())
        .build()
        .unwrap();
    // Both set by https://localhost; the redirect goes to http://localhost.
    let resp = session
        .get(&site.url("/set"))
        .query(&[
            ("c", "sec=1; Secure; Path=/"),
            ("c", "plain=1; Path=/"),
            ("to", plain.local_url("/show").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "plain=1");
    assert_eq!(session.cookie_jar().unwrap().len(), 2);
    // Over https both go out.
    assert_eq!(shown(&session, &site.url("/show")).await, "sec=1; plain=1");
}
