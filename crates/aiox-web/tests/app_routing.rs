//! End-to-end routing tests: patterns, methods, automatic HEAD/OPTIONS, 404/405,
//! percent-decoding of the path and invalid route patterns, all over real sockets.

mod support {
    pub(crate) mod app;
}

use std::collections::BTreeSet;

use aiox_web::router::{get, post};
use aiox_web::test::{TestClient, TestResponse};
use aiox_web::{Application, ErrorKind, Method, Request};

use support::app::parse_response;

async fn echo_match_info(req: Request) -> String {
    let pairs: Vec<String> = req
        .match_info()
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    pairs.join("|")
}

fn allow_set(res: &TestResponse) -> BTreeSet<String> {
    res.header("allow")
        .unwrap_or_else(|| panic!("no Allow header in {res:?}"))
        .split(',')
        .map(|m| m.trim().to_owned())
        .collect()
}

fn set(methods: &[&str]) -> BTreeSet<String> {
    methods.iter().map(|m| (*m).to_owned()).collect()
}

#[tokio::test]
async fn static_routes_match_exactly() {
    let app = Application::new()
        .get("/", || async { "root" })
        .get("/about", || async { "about" })
        .get("/about/team", || async { "team" });
    let client = TestClient::new(app).await.unwrap();

    for (path, body) in [("/", "root"), ("/about", "about"), ("/about/team", "team")] {
        let res = client.get(path).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.text(), body, "{path}");
        assert_eq!(
            res.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{path}"
        );
        assert_eq!(
            res.header("content-length"),
            Some(body.len().to_string().as_str())
        );
    }
    // Static segments are case-sensitive and matched whole.
    for path in ["/About", "/abou", "/aboutx", "/about/team/x"] {
        let res = client.get(path).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn name_segment_matches_exactly_one_non_empty_segment() {
    let app = Application::new().get("/hello/{name}", echo_match_info);
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/hello/alice").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "name=alice");

    // The query string is not part of the match.
    let res = client.get("/hello/bob?x=1").send().await.unwrap();
    assert_eq!(res.text(), "name=bob");

    for path in ["/hello/", "/hello", "/hello/a/b"] {
        let res = client.get(path).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(res.text(), "404 Not Found\n", "{path}");
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn regex_segment_only_matches_its_regex() {
    let app = Application::new().get(r"/users/{id:\d+}", echo_match_info);
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/users/42").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "id=42");

    for path in ["/users/abc", "/users/42a", "/users/", "/users/4/2"] {
        let res = client.get(path).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn regex_param_spans_segments() {
    let app = Application::new()
        .get("/static/{filename:.+}", echo_match_info)
        .get("/dl/{dir}/{rest:.+}", echo_match_info);
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/static/css/site.css").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "filename=css/site.css");

    let res = client.get("/static/a").send().await.unwrap();
    assert_eq!(res.text(), "filename=a");

    let res = client.get("/dl/pub/x/y/z.tar.gz").send().await.unwrap();
    assert_eq!(res.text(), "dir=pub|rest=x/y/z.tar.gz");

    // `.+` needs at least one character.
    let res = client.get("/static/").send().await.unwrap();
    assert_eq!(res.status(), 404);
    client.close().await.unwrap();
}

#[tokio::test]
async fn mixed_segments_combine_literals_and_params() {
    let app = Application::new()
        .get("/files/{stem}.{ext}", echo_match_info)
        .get(r"/v{version:\d+}/items", echo_match_info)
        .get("/archive/{name}.tar.gz", echo_match_info);
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/files/report.pdf").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "stem=report|ext=pdf");

    // `{stem}` is greedy within the segment, as in aiohttp.
    let res = client.get("/files/a.b.pdf").send().await.unwrap();
    assert_eq!(res.text(), "stem=a.b|ext=pdf");

    let res = client.get("/v2/items").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "version=2");

    let res = client.get("/archive/src-1.0.tar.gz").send().await.unwrap();
    assert_eq!(res.text(), "name=src-1.0");

    for path in ["/files/report", "/v/items", "/vx/items", "/archive/x.zip"] {
        let res = client.get(path).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn static_route_wins_over_param_and_matching_backtracks() {
    let app = Application::new()
        .get("/users/new", || async { "new-form" })
        .get("/users/{id}", echo_match_info)
        .get("/users/{id}/edit", echo_match_info);
    let client = TestClient::new(app).await.unwrap();

    assert_eq!(
        client.get("/users/new").send().await.unwrap().text(),
        "new-form"
    );
    assert_eq!(client.get("/users/7").send().await.unwrap().text(), "id=7");
    assert_eq!(
        client.get("/users/new/edit").send().await.unwrap().text(),
        "id=new"
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn per_method_routes() {
    let app = Application::new()
        .route(
            "/items",
            get(|| async { "list" }).post(|| async { "create" }),
        )
        .get("/things", || async { "get thing" })
        .post("/things", || async { "post thing" })
        .put("/things", || async { "put thing" })
        .delete("/things", || async { "delete thing" })
        .patch("/things", || async { "patch thing" });
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/items").send().await.unwrap();
    assert_eq!((res.status().as_u16(), res.text().as_str()), (200, "list"));
    let res = client.post("/items").send().await.unwrap();
    assert_eq!(
        (res.status().as_u16(), res.text().as_str()),
        (200, "create")
    );

    for (method, body) in [
        (Method::GET, "get thing"),
        (Method::POST, "post thing"),
        (Method::PUT, "put thing"),
        (Method::DELETE, "delete thing"),
        (Method::PATCH, "patch thing"),
    ] {
        let res = client
            .request(method.clone(), "/things")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{method}");
        assert_eq!(res.text(), body, "{method}");
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn any_route_takes_every_method_but_explicit_methods_win() {
    let app = Application::new()
        .any("/anything", |req: Request| async move {
            format!("any {}", req.method())
        })
        .route(
            "/mixed",
            post(|| async { "post" }).any(|| async { "fallback" }),
        );
    let client = TestClient::new(app).await.unwrap();

    for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
        let res = client
            .request(method.clone(), "/anything")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text(), format!("any {method}"));
    }
    assert_eq!(client.post("/mixed").send().await.unwrap().text(), "post");
    assert_eq!(
        client.get("/mixed").send().await.unwrap().text(),
        "fallback"
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn head_is_answered_by_the_get_handler_without_a_body() {
    let app = Application::new().get("/page", || async { "Hello, HEAD!" });
    let client = TestClient::new(app).await.unwrap();

    let res = client.head("/page").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("content-length"), Some("12"));
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(res.bytes().is_empty());

    // On the wire too: no body bytes follow the head.
    let raw = client
        .raw(b"HEAD /page HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("content-length: 12\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\n"),
        "HEAD response carried a body: {text:?}"
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn head_over_http2_sends_no_data() {
    let app = Application::new()
        .get("/page", || async { "Hello, HEAD!" })
        .get("/empty", || async {})
        .post("/post-only", || async { "posted" });
    let client = TestClient::new(app).await.unwrap().http2();

    let res = client.head("/page").send().await.unwrap();
    assert_eq!(res.version(), aiox_web::http::Version::HTTP_2);
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("content-length"), Some("12"));
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(res.bytes().is_empty());

    // Error answers to HEAD carry no body either.
    let res = client.head("/missing").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.header("content-length"), Some("14"));
    assert!(res.bytes().is_empty());
    let res = client.head("/post-only").send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert!(res.bytes().is_empty());

    // Same as GET: an empty body has no Content-Length over HTTP/2.
    let get = client.get("/empty").send().await.unwrap();
    let head = client.head("/empty").send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.header("content-length"), get.header("content-length"));

    // GET is unaffected.
    let res = client.get("/page").send().await.unwrap();
    assert_eq!(res.text(), "Hello, HEAD!");
    client.close().await.unwrap();
}

#[tokio::test]
async fn routing_is_the_same_over_http2() {
    let app = Application::new()
        .get(r"/users/{id:\d+}", echo_match_info)
        .get("/hello/{name}", echo_match_info)
        .post("/items", || async { "created" });
    let client = TestClient::new(app).await.unwrap().http2();

    let res = client.get("/users/42").send().await.unwrap();
    assert_eq!(res.version(), aiox_web::http::Version::HTTP_2);
    assert_eq!(res.text(), "id=42");
    let res = client.get("/hello/J%C3%BCrgen").send().await.unwrap();
    assert_eq!(res.text(), "name=J\u{fc}rgen");
    assert_eq!(client.get("/users/x").send().await.unwrap().status(), 404);
    let res = client.get("/items").send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(allow_set(&res), set(&["POST", "OPTIONS"]));
    let res = client
        .request(Method::OPTIONS, "/items")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    client.close().await.unwrap();
}

#[tokio::test]
async fn explicit_head_route_wins_over_get() {
    let app = Application::new().route(
        "/page",
        get(|| async { "get" }).head(|| async { (aiox_web::StatusCode::ACCEPTED, "") }),
    );
    let client = TestClient::new(app).await.unwrap();
    let res = client.head("/page").send().await.unwrap();
    assert_eq!(res.status(), 202);
    client.close().await.unwrap();
}

#[tokio::test]
async fn options_is_answered_with_204_and_allow() {
    let app = Application::new()
        .route(
            "/items",
            get(|| async { "list" }).post(|| async { "create" }),
        )
        .post("/submit", || async { "ok" });
    let client = TestClient::new(app).await.unwrap();

    let res = client
        .request(Method::OPTIONS, "/items")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(allow_set(&res), set(&["GET", "HEAD", "POST", "OPTIONS"]));
    assert!(res.bytes().is_empty());

    let res = client
        .request(Method::OPTIONS, "/submit")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(allow_set(&res), set(&["POST", "OPTIONS"]));

    // OPTIONS on an unknown path is still a 404.
    let res = client
        .request(Method::OPTIONS, "/nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    client.close().await.unwrap();
}

#[tokio::test]
async fn unknown_route_is_404_with_a_short_text_body() {
    let app = Application::new().get("/", || async { "root" });
    let client = TestClient::new(app).await.unwrap();

    for method in [Method::GET, Method::POST, Method::DELETE] {
        let res = client
            .request(method.clone(), "/missing")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method}");
        assert_eq!(res.text(), "404 Not Found\n");
        assert_eq!(
            res.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(res.header("allow").is_none());
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let app = Application::new()
        .get("/only-get", || async { "get" })
        .route(
            "/items",
            get(|| async { "list" }).post(|| async { "create" }),
        )
        .put("/only-put", || async { "put" });
    let client = TestClient::new(app).await.unwrap();

    let res = client.delete("/only-get").send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.text(), "405 Method Not Allowed\n");
    assert_eq!(allow_set(&res), set(&["GET", "HEAD", "OPTIONS"]));

    let res = client.put("/items").send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(allow_set(&res), set(&["GET", "HEAD", "POST", "OPTIONS"]));

    // No GET route: HEAD is not allowed either, and not listed.
    let res = client.head("/only-put").send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(allow_set(&res), set(&["PUT", "OPTIONS"]));
    let res = client.get("/only-put").send().await.unwrap();
    assert_eq!(res.status(), 405);
    client.close().await.unwrap();
}

#[tokio::test]
async fn trailing_slash_is_significant() {
    let app = Application::new()
        .get("/a", || async { "no slash" })
        .get("/b/", || async { "slash" })
        .get("/c", || async { "c" })
        .get("/c/", || async { "c/" })
        .get("/p/{name}/", echo_match_info);
    let client = TestClient::new(app).await.unwrap();

    assert_eq!(client.get("/a").send().await.unwrap().text(), "no slash");
    assert_eq!(client.get("/a/").send().await.unwrap().status(), 404);
    assert_eq!(client.get("/b/").send().await.unwrap().text(), "slash");
    assert_eq!(client.get("/b").send().await.unwrap().status(), 404);
    assert_eq!(client.get("/c").send().await.unwrap().text(), "c");
    assert_eq!(client.get("/c/").send().await.unwrap().text(), "c/");
    assert_eq!(client.get("/p/x/").send().await.unwrap().text(), "name=x");
    assert_eq!(client.get("/p/x").send().await.unwrap().status(), 404);
    client.close().await.unwrap();
}

#[tokio::test]
async fn percent_encoded_segments_are_decoded_in_match_info() {
    let app = Application::new()
        .get("/hello/{name}", echo_match_info)
        .get("/static/{filename:.+}", echo_match_info)
        .get("/caf\u{e9}", || async { "static unicode" })
        .get("/dir/file", || async { "file" })
        .get("/path", |req: Request| async move {
            format!("{}|{}", req.path(), req.raw_path())
        });
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/hello/J%C3%BCrgen").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "name=J\u{fc}rgen");

    let res = client.get("/hello/a%20b").send().await.unwrap();
    assert_eq!(res.text(), "name=a b");

    // An encoded slash is data: it does not split the segment...
    let res = client.get("/hello/a%2Fb").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "name=a/b");
    let res = client.get("/hello/a%2fb").send().await.unwrap();
    assert_eq!(res.text(), "name=a/b");
    // ...while a real one does.
    assert_eq!(client.get("/hello/a/b").send().await.unwrap().status(), 404);
    // And an encoded slash never matches a static route's real slash.
    assert_eq!(client.get("/dir/file").send().await.unwrap().text(), "file");
    assert_eq!(
        client.get("/dir%2Ffile").send().await.unwrap().status(),
        404
    );

    // `%25` decodes to `%` exactly once.
    let res = client.get("/hello/100%25").send().await.unwrap();
    assert_eq!(res.text(), "name=100%");
    let res = client.get("/hello/x%252F").send().await.unwrap();
    assert_eq!(res.text(), "name=x%2F");

    let res = client
        .get("/static/dir%2Fsub/f%20g.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text(), "filename=dir/sub/f g.txt");

    // Static routes match the decoded path.
    let res = client.get("/caf%C3%A9").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "static unicode");

    client.close().await.unwrap();
}

#[tokio::test]
async fn invalid_percent_encoding_in_the_path_is_400() {
    let app = Application::new()
        .get("/{anything:.*}", || async { "matched" })
        .get("/a{rest:.*}", || async { "matched" });
    let client = TestClient::new(app).await.unwrap();

    // Sanity check: a valid path matches.
    assert_eq!(client.get("/abc").send().await.unwrap().text(), "matched");

    for path in ["/a%zz", "/a%", "/a%2", "/%g0", "/a%ff", "/a%C3"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let raw = client.raw(request.as_bytes()).await.unwrap();
        let res = parse_response(&raw);
        assert_eq!(res.status, 400, "{path}: {}", res.text());
        assert_eq!(
            res.text(),
            "400 Bad Request: invalid percent-encoding in the path\n",
            "{path}"
        );
    }
    // Through the ordinary client too.
    let res = client.get("/a%zz").send().await.unwrap();
    assert_eq!(res.status(), 400);
    client.close().await.unwrap();
}

#[tokio::test]
async fn invalid_route_patterns_are_a_route_error_not_a_panic() {
    let invalid = [
        "no-leading-slash",
        "/{unclosed",
        "/unopened}",
        "/{}",
        "/{id:(}",
        "/{id:\\d+",
        "/{na/me}",
    ];
    for pattern in invalid {
        let err = Application::new()
            .get(pattern, || async { "x" })
            .build()
            .expect_err(pattern);
        assert_eq!(err.kind(), ErrorKind::Route, "{pattern}: {err}");
        assert!(
            err.to_string().contains("invalid route"),
            "{pattern}: {err}"
        );

        let app = Application::new()
            .get("/fine", || async { "x" })
            .get(pattern, || async { "x" });
        let err = TestClient::new(app).await.expect_err(pattern);
        assert_eq!(err.kind(), ErrorKind::Route, "{pattern}: {err}");
    }

    // Two patterns matching the same paths the same way are a duplicate.
    let err = Application::new()
        .get("/x/{a}", || async { "a" })
        .post("/x/{b}", || async { "b" })
        .build()
        .expect_err("equivalent patterns");
    assert_eq!(err.kind(), ErrorKind::Route);
    assert!(err.to_string().contains("duplicate"), "{err}");

    // Routing the same pattern twice adds methods instead.
    let app = Application::new()
        .get("/x/{a}", || async { "a" })
        .post("/x/{a}", || async { "b" });
    assert!(app.build().is_ok());
}

#[tokio::test]
async fn lookup_stays_correct_with_1000_routes() {
    // 1,000 static and 1,000 parameter routes, plus 200 regex routes (each regex
    // takes milliseconds to compile in a debug build).
    let has_regex = |i: u32| i % 5 == 0;
    let mut app = Application::new();
    for i in 0..1000u32 {
        app = app
            .get(&format!("/static/route{i}"), move || async move {
                format!("static {i}")
            })
            .get(
                &format!("/api/v1/resource{i}/{{id}}"),
                move |req: Request| async move {
                    let id = req.match_info().get("id").unwrap_or("?").to_owned();
                    format!("resource {i} id {id}")
                },
            );
        if has_regex(i) {
            app = app.get(
                &format!(r"/regex/r{i}/{{n:\d+}}"),
                move |req: Request| async move {
                    let n = req.match_info().get("n").unwrap_or("?").to_owned();
                    format!("regex {i} n {n}")
                },
            );
        }
    }
    let client = TestClient::new(app).await.unwrap();

    let picks = (0..1000u32)
        .step_by(37)
        .chain([1, 10, 99, 100, 995, 998, 999]);
    for i in picks {
        let res = client
            .get(&format!("/static/route{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text(), format!("static {i}"));

        let res = client
            .get(&format!("/api/v1/resource{i}/x{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text(), format!("resource {i} id x{i}"));

        let res = client
            .get(&format!("/regex/r{i}/{i}"))
            .send()
            .await
            .unwrap();
        if has_regex(i) {
            assert_eq!(res.status(), 200);
            assert_eq!(res.text(), format!("regex {i} n {i}"));
        } else {
            assert_eq!(res.status(), 404, "/regex/r{i}/{i}");
        }
    }
    for path in [
        "/static/route1000",
        "/static/route",
        "/static/route01",
        "/api/v1/resource1000/x",
        "/api/v1/resource5",
        "/api/v1/resource5/x/y",
        "/regex/r5/x",
        "/regex/r1000/1",
    ] {
        assert_eq!(
            client.get(path).send().await.unwrap().status(),
            404,
            "{path}"
        );
    }
    client.close().await.unwrap();
}
