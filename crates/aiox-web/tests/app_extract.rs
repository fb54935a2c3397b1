//! End-to-end tests of the extractors, their rejections, the buffered body readers
//! and their size limit, and of what handlers may return (`IntoResponse`).

mod support {
    pub(crate) mod app;
}

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aiox_web::test::TestClient;
use aiox_web::{
    Application, Bytes, DEFAULT_CLIENT_MAX_SIZE, Form, HeaderMap, Html, HttpError, Json, Next,
    Path, Query, Request, Response, Result, State, StatusCode,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::app::{RawResponse, parse_response};

/// Longest error body any rejection may send back.
const SHORT: usize = 1024;

/// Sends `bytes` on a fresh connection and reads until the server closes it.
/// Returns the parsed response and whether the server closed the connection
/// (rather than the read timing out).
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> (RawResponse, bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .is_ok();
    (parse_response(&out), closed)
}

fn assert_short(body: &[u8], what: &str) {
    assert!(
        body.len() < SHORT,
        "{what}: error body is {} bytes: {:?}",
        body.len(),
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
}

// ---------------------------------------------------------------------------
// Path
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct UserItem {
    user: String,
    id: u32,
}

#[tokio::test]
async fn path_extractors_parse_scalars_tuples_and_structs() {
    let app = Application::new()
        .get("/n/{id}", |Path(id): Path<u32>| async move {
            format!("id {id} doubled {}", u64::from(id) * 2)
        })
        .get(
            "/t/{user}/{id}",
            |Path((user, id)): Path<(String, u32)>| async move { format!("{user}#{id}") },
        )
        .get(
            "/s/{user}/items/{id}",
            |Path(p): Path<UserItem>| async move { format!("{}@{}", p.id, p.user) },
        )
        .get(
            "/wrong-count/{id}",
            |Path(p): Path<(String, u32)>| async move { format!("{p:?}") },
        );
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/n/42").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "id 42 doubled 84");

    let res = client.get("/t/J%C3%BCrgen/7").send().await.unwrap();
    assert_eq!(res.text(), "J\u{fc}rgen#7");

    let res = client.get("/s/ann/items/9").send().await.unwrap();
    assert_eq!(res.text(), "9@ann");

    // A parameter that does not parse is the client's fault: 400 saying which.
    for path in [
        "/n/abc",
        "/n/-1",
        "/n/4294967296",
        "/t/bob/x",
        "/s/ann/items/1.5",
    ] {
        let res = client.get(path).send().await.unwrap();
        assert_eq!(res.status(), 400, "{path}");
        let text = res.text();
        assert!(text.starts_with("400 Bad Request: "), "{path}: {text}");
        assert!(text.contains("\"id\""), "{path}: {text}");
    }
    let res = client.get("/n/abc").send().await.unwrap();
    assert_eq!(
        res.text(),
        "400 Bad Request: cannot parse parameter \"id\" (\"abc\") as u32\n"
    );

    // A long bad value is not echoed in full.
    let long = "x".repeat(4000);
    let res = client.get(&format!("/n/{long}")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_short(res.bytes(), "long path parameter");

    // A tuple that does not fit the route is a programming error: a generic 500.
    let res = client.get("/wrong-count/5").send().await.unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(res.text(), "500 Internal Server Error\n");
    client.close().await.unwrap();
}

// ---------------------------------------------------------------------------
// Query
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct Search {
    q: String,
    page: Option<u32>,
    exact: Option<bool>,
}

#[tokio::test]
async fn query_extractor_with_optional_fields_and_rejections() {
    let app = Application::new().get("/search", |Query(s): Query<Search>| async move {
        format!("q={:?} page={:?} exact={:?}", s.q, s.page, s.exact)
    });
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/search?q=rust").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "q=\"rust\" page=None exact=None");

    let res = client
        .get("/search?q=hello+w%C3%B6rld&page=3&exact=true")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.text(),
        "q=\"hello w\u{f6}rld\" page=Some(3) exact=Some(true)"
    );

    // Unknown parameters are ignored.
    let res = client.get("/search?q=a&utm_source=x").send().await.unwrap();
    assert_eq!(res.status(), 200);

    for path in [
        "/search",
        "/search?page=2",
        "/search?q=a&page=x",
        "/search?q=a&exact=maybe",
    ] {
        let res = client.get(path).send().await.unwrap();
        assert_eq!(res.status(), 400, "{path}");
        assert!(
            res.text()
                .starts_with("400 Bad Request: invalid query string: "),
            "{path}: {}",
            res.text()
        );
    }
    let res = client.get("/search?page=x&q=a").send().await.unwrap();
    assert_eq!(res.status(), 400);

    let long = "9".repeat(4000);
    let res = client
        .get(&format!("/search?q=a&exact={long}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_short(res.bytes(), "long query value");
    client.close().await.unwrap();
}

// ---------------------------------------------------------------------------
// Json and Form
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, Serialize, PartialEq)]
struct Item {
    name: String,
    qty: u32,
}

fn json_app() -> Application {
    Application::new().post("/items", |Json(item): Json<Item>| async move {
        (
            StatusCode::CREATED,
            Json(json!({ "name": item.name, "qty": item.qty, "total": item.qty * 2 })),
        )
    })
}

#[tokio::test]
async fn json_extractor_accepts_json_content_types() {
    let client = TestClient::new(json_app()).await.unwrap();

    let res = client
        .post("/items")
        .json(&json!({"name": "apple", "qty": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(
        res.json::<Value>().unwrap(),
        json!({"name": "apple", "qty": 3, "total": 6})
    );

    for content_type in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/problem+json",
        "application/vnd.api+json",
    ] {
        let res = client
            .post("/items")
            .header("content-type", content_type)
            .body(r#"{"name":"pear","qty":1}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{content_type}");
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn json_extractor_rejections() {
    let client = TestClient::new(json_app()).await.unwrap();
    let body = r#"{"name":"pear","qty":1}"#;

    // Wrong or missing Content-Type: 415.
    for content_type in [
        Some("text/plain"),
        Some("text/json"),
        Some("application/jsonx"),
        None,
    ] {
        let mut req = client.post("/items").body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 415, "{content_type:?}");
        assert_eq!(
            res.text(),
            "415 Unsupported Media Type: expected Content-Type: application/json\n"
        );
    }

    // Malformed JSON: 400 saying so.
    for bad in ["{oops", "", "{\"name\": \"a\",}", "[1, 2", "\u{fffd}"] {
        let res = client
            .post("/items")
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad:?}");
        assert!(
            res.text().starts_with("400 Bad Request: invalid JSON: "),
            "{bad:?}: {}",
            res.text()
        );
    }

    // Well-formed JSON of the wrong shape: 422.
    for shape in [
        r#"{"name":"a"}"#,
        r#"{"name":"a","qty":"three"}"#,
        r#"{"name":"a","qty":-1}"#,
        r#"[1,2,3]"#,
        r#""just a string""#,
    ] {
        let res = client
            .post("/items")
            .json(&serde_json::from_str::<Value>(shape).unwrap());
        let res = res.send().await.unwrap();
        assert_eq!(res.status(), 422, "{shape}");
        assert!(
            res.text()
                .starts_with("422 Unprocessable Entity: JSON does not match the expected shape: "),
            "{shape}: {}",
            res.text()
        );
    }
    client.close().await.unwrap();
}

#[derive(Debug, Deserialize)]
struct Login {
    user: String,
    remember: Option<bool>,
}

#[tokio::test]
async fn form_extractor_ok_415_and_422() {
    let app = Application::new().post("/login", |Form(login): Form<Login>| async move {
        format!("user={} remember={:?}", login.user, login.remember)
    });
    let client = TestClient::new(app).await.unwrap();

    let res = client
        .post("/login")
        .form(&[("user", "J\u{fc}rgen O'Neil"), ("remember", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "user=J\u{fc}rgen O'Neil remember=Some(true)");

    let res = client
        .post("/login")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body("user=a+b")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text(), "user=a b remember=None");

    for content_type in [
        "application/json",
        "multipart/form-data; boundary=x",
        "text/plain",
    ] {
        let res = client
            .post("/login")
            .header("content-type", content_type)
            .body("user=a")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 415, "{content_type}");
        assert_eq!(
            res.text(),
            "415 Unsupported Media Type: expected Content-Type: application/x-www-form-urlencoded\n"
        );
    }

    for bad in ["remember=true", "user=a&remember=maybe", ""] {
        let res = client
            .post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{bad:?}");
        assert!(
            res.text()
                .starts_with("422 Unprocessable Entity: invalid form: "),
            "{bad:?}: {}",
            res.text()
        );
    }
    client.close().await.unwrap();
}

// ---------------------------------------------------------------------------
// State, headers, String and Bytes bodies
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct Greeting(&'static str);

#[derive(Clone)]
struct SecretDatabasePoolHandle;

#[tokio::test]
async fn state_extractor_and_missing_state_is_a_generic_500() {
    let app = Application::new()
        .state(Greeting("howdy"))
        .state(Arc::new(AtomicUsize::new(0)))
        .get(
            "/greet/{name}",
            |State(g): State<Greeting>, Path(name): Path<String>| async move {
                format!("{}, {name}!", g.0)
            },
        )
        .get(
            "/count",
            |State(counter): State<Arc<AtomicUsize>>| async move {
                (counter.fetch_add(1, Ordering::SeqCst) + 1).to_string()
            },
        )
        .get(
            "/missing",
            |State(_): State<SecretDatabasePoolHandle>| async { "unreachable" },
        )
        .get("/via-request", |req: Request| async move {
            req.state::<Greeting>().map_or("none", |g| g.0).to_owned()
        });
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/greet/ann").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "howdy, ann!");

    // The state is shared: every request sees the same counter.
    for expected in ["1", "2", "3"] {
        assert_eq!(client.get("/count").send().await.unwrap().text(), expected);
    }

    assert_eq!(
        client.get("/via-request").send().await.unwrap().text(),
        "howdy"
    );

    let res = client.get("/missing").send().await.unwrap();
    assert_eq!(res.status(), 500);
    let text = res.text();
    assert_eq!(text, "500 Internal Server Error\n");
    for leak in ["Secret", "State", "app_extract", "::", "registered", "type"] {
        assert!(!text.contains(leak), "500 body leaks {leak:?}: {text}");
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn optional_extractors_turn_rejections_into_none() {
    let app = Application::new()
        .get(
            "/opt/{id}",
            |id: Option<Path<u32>>, state: Option<State<SecretDatabasePoolHandle>>| async move {
                format!("id={:?} state={}", id.map(|Path(id)| id), state.is_some())
            },
        )
        .get("/optq", |q: Option<Query<Search>>| async move {
            format!("{:?}", q.map(|Query(s)| s.q))
        });
    let client = TestClient::new(app).await.unwrap();
    assert_eq!(
        client.get("/opt/5").send().await.unwrap().text(),
        "id=Some(5) state=false"
    );
    assert_eq!(
        client.get("/opt/x").send().await.unwrap().text(),
        "id=None state=false"
    );
    assert_eq!(
        client.get("/optq?q=hi").send().await.unwrap().text(),
        "Some(\"hi\")"
    );
    assert_eq!(client.get("/optq").send().await.unwrap().text(), "None");
    client.close().await.unwrap();
}

#[tokio::test]
async fn header_map_extractor_sees_every_header() {
    let app = Application::new().get("/headers", |headers: HeaderMap| async move {
        let tags: Vec<&str> = headers
            .get_all("x-tag")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        format!(
            "ua={} tags={}",
            headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-"),
            tags.join(",")
        )
    });
    let client = TestClient::new(app).await.unwrap();
    let res = client
        .get("/headers")
        .header("User-Agent", "aiox-test/1.0")
        .header("X-Tag", "one")
        .header("x-tag", "two")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text(), "ua=aiox-test/1.0 tags=one,two");
    client.close().await.unwrap();
}

#[tokio::test]
async fn string_body_is_decoded_with_its_charset() {
    let app = Application::new().post("/text", |body: String| async move {
        format!("{} chars: {body}", body.chars().count())
    });
    let client = TestClient::new(app).await.unwrap();

    // UTF-8 by default.
    let res = client
        .post("/text")
        .header("content-type", "text/plain")
        .body("caf\u{e9}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "4 chars: caf\u{e9}");

    // No Content-Type at all: still UTF-8.
    let res = client.post("/text").body("plain").send().await.unwrap();
    assert_eq!(res.text(), "5 chars: plain");

    // Latin-1 bytes with their charset.
    for content_type in [
        "text/plain; charset=iso-8859-1",
        "text/plain; charset=\"ISO-8859-1\"",
        "text/plain;charset=latin1",
    ] {
        let res = client
            .post("/text")
            .header("content-type", content_type)
            .body(&b"caf\xe9 \xfcber"[..])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{content_type}");
        assert_eq!(res.text(), "9 chars: caf\u{e9} \u{fc}ber", "{content_type}");
    }

    // windows-1252 has the euro sign at 0x80.
    let res = client
        .post("/text")
        .header("content-type", "text/plain; charset=windows-1252")
        .body(&b"5\x80"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(res.text(), "2 chars: 5\u{20ac}");

    // The same bytes without a charset are invalid UTF-8: 400.
    let res = client
        .post("/text")
        .header("content-type", "text/plain")
        .body(&b"caf\xe9"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.text(), "400 Bad Request: the body is not valid UTF-8\n");

    // An unknown charset: 415.
    let res = client
        .post("/text")
        .header("content-type", "text/plain; charset=klingon")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert!(res.text().contains("unknown charset"), "{}", res.text());

    // A large invalid body is not echoed.
    let mut big = vec![b'a'; 100_000];
    big.push(0xff);
    let res = client
        .post("/text")
        .header("content-type", "text/plain")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_short(res.bytes(), "invalid UTF-8 text body");
    client.close().await.unwrap();
}

#[tokio::test]
async fn bytes_body_is_passed_through_unchanged() {
    let app = Application::new()
        .post("/echo", |body: Bytes| async move { body })
        .post("/len", |body: Bytes| async move { body.len().to_string() });
    let client = TestClient::new(app).await.unwrap();

    let payload: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let res = client
        .post("/echo")
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("content-type"), Some("application/octet-stream"));
    assert_eq!(res.bytes().as_ref(), payload.as_slice());

    let res = client.post("/len").send().await.unwrap();
    assert_eq!(res.text(), "0");
    client.close().await.unwrap();
}

// ---------------------------------------------------------------------------
// A plain `Request` handler
// ---------------------------------------------------------------------------

#[tokio::test]
async fn request_handler_reads_json_twice() {
    let app = Application::new().post("/json", |mut req: Request| async move {
        let first: Value = req.json().await?;
        // The body is buffered once and can be read again.
        let again: Item = req.json().await?;
        let raw = req.bytes().await?;
        Ok::<_, HttpError>(format!("{first} | {again:?} | {} bytes", raw.len()))
    });
    let client = TestClient::new(app).await.unwrap();
    let body = r#"{"name":"fig","qty":2}"#;
    let res = client
        .post("/json")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.text(),
        format!(
            "{{\"name\":\"fig\",\"qty\":2}} | Item {{ name: \"fig\", qty: 2 }} | {} bytes",
            body.len()
        )
    );

    let res = client.post("/json").body("{nope").send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().contains("invalid JSON"), "{}", res.text());

    let res = client
        .post("/json")
        .body(r#"{"name":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    client.close().await.unwrap();
}

#[tokio::test]
async fn request_handler_reads_text_post_and_query() {
    let app = Application::new()
        .post("/text", |mut req: Request| async move {
            let text = req.text().await?;
            Ok::<_, HttpError>(format!("{}:{text}", req.content_type()))
        })
        .post("/post", |mut req: Request| async move {
            let form = req.post().await?;
            let tags: Vec<&str> = form.get_all("tag").collect();
            Ok::<_, HttpError>(format!(
                "name={} tags={} has_empty={} n={}",
                form.get("name").unwrap_or("-"),
                tags.join(","),
                form.contains("empty"),
                form.len()
            ))
        })
        .get("/query", |req: Request| async move {
            let q = req.query();
            let pairs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "raw={} tags={:?} pairs={}",
                req.query_string(),
                q.get_all("tag").collect::<Vec<_>>(),
                pairs.join("&")
            )
        });
    let client = TestClient::new(app).await.unwrap();

    let res = client
        .post("/text")
        .header("content-type", "Text/Plain; charset=utf-8")
        .body("hello \u{2713}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text(), "text/plain:hello \u{2713}");

    let res = client
        .post("/post")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("tag=a&name=J%C3%BCrgen+X&tag=b&empty=&tag=c%26d")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.text(),
        "name=J\u{fc}rgen X tags=a,b,c&d has_empty=true n=5"
    );

    let res = client
        .get("/query?tag=a&q=hello+world&tag=b&x=%2F")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.text(),
        "raw=tag=a&q=hello+world&tag=b&x=%2F tags=[\"a\", \"b\"] pairs=tag=a&q=hello world&tag=b&x=/"
    );
    let res = client.get("/query").send().await.unwrap();
    assert_eq!(res.text(), "raw= tags=[] pairs=");
    client.close().await.unwrap();
}

#[tokio::test]
async fn request_remote_addr_is_the_peer() {
    let app = Application::new().get("/remote", |req: Request| async move {
        match req.remote_addr() {
            Some(addr) => format!("{addr}|secure={}", req.is_secure()),
            None => "none".to_owned(),
        }
    });
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/remote").send().await.unwrap();
    let text = res.text();
    assert!(text.starts_with("127.0.0.1:"), "{text}");
    assert!(text.ends_with("|secure=false"), "{text}");

    // Exactly the client's own address and port.
    let mut stream = TcpStream::connect(client.addr()).await.unwrap();
    let local = stream.local_addr().unwrap();
    stream
        .write_all(b"GET /remote HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let res = parse_response(&out);
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), format!("{local}|secure=false"));
    client.close().await.unwrap();
}

#[derive(Clone, Debug)]
struct User {
    name: String,
}

#[tokio::test]
async fn middleware_sets_typed_per_request_values_for_the_handler() {
    async fn authenticate(mut req: Request, next: Next) -> Result<Response> {
        if let Some(token) = req.header("authorization") {
            let name = token
                .strip_prefix("Bearer ")
                .ok_or_else(HttpError::unauthorized)?
                .to_owned();
            req.set_ext(User { name });
        }
        Ok(next.run(req).await)
    }
    let app = Application::new()
        .middleware(authenticate)
        .get("/me", |req: Request| async move {
            match req.ext::<User>() {
                Some(user) => format!("hello {}", user.name),
                None => "hello anonymous".to_owned(),
            }
        });
    let client = TestClient::new(app).await.unwrap();

    let res = client
        .get("/me")
        .header("authorization", "Bearer alice")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "hello alice");

    let res = client.get("/me").send().await.unwrap();
    assert_eq!(res.text(), "hello anonymous");

    let res = client
        .get("/me")
        .header("authorization", "Basic xyz")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    client.close().await.unwrap();
}

// ---------------------------------------------------------------------------
// client_max_size
// ---------------------------------------------------------------------------

fn limited_app(limit: u64, calls: Arc<AtomicUsize>) -> Application {
    let app = Application::new().post("/upload", move |body: Bytes| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            body.len().to_string()
        }
    });
    if limit == DEFAULT_CLIENT_MAX_SIZE {
        app
    } else {
        app.client_max_size(limit)
    }
}

#[tokio::test]
async fn body_exactly_at_the_limit_is_accepted() {
    let calls = Arc::new(AtomicUsize::new(0));
    let client = TestClient::new(limited_app(1024, calls.clone()))
        .await
        .unwrap();

    let res = client
        .post("/upload")
        .body(vec![b'a'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "1024");

    // Chunked, exactly at the limit, in several chunks.
    let mut req = b"POST /upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        req.extend_from_slice(b"100\r\n");
        req.extend_from_slice(&[b'b'; 256]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let (res, closed) = exchange(client.addr(), &req).await;
    assert!(closed);
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), "1024");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    client.close().await.unwrap();
}

#[tokio::test]
async fn content_length_over_the_limit_is_413_before_reading_and_closes() {
    let calls = Arc::new(AtomicUsize::new(0));
    let client = TestClient::new(limited_app(1024, calls.clone()))
        .await
        .unwrap();

    // Only the head is sent: the server must answer without waiting for the body.
    let (res, closed) = exchange(
        client.addr(),
        b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 413);
    assert_eq!(res.header("connection"), Some("close"));
    assert_eq!(
        res.text(),
        "413 Payload Too Large: the body is over the 1024-byte limit\n"
    );
    assert!(closed, "the server kept the connection open after a 413");

    // A huge declared length is no different.
    let (res, closed) = exchange(
        client.addr(),
        b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000000\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 413);
    assert!(closed);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler ran");
    client.close().await.unwrap();
}

#[tokio::test]
async fn chunked_body_crossing_the_limit_is_413_and_closes() {
    let calls = Arc::new(AtomicUsize::new(0));
    let client = TestClient::new(limited_app(1024, calls.clone()))
        .await
        .unwrap();

    // One big chunk over the limit; the terminating chunk never comes.
    let mut req =
        b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    req.extend_from_slice(b"401\r\n");
    req.extend_from_slice(&[b'x'; 1025]);
    req.extend_from_slice(b"\r\n");
    let (res, closed) = exchange(client.addr(), &req).await;
    assert_eq!(res.status, 413);
    assert_eq!(res.header("connection"), Some("close"));
    assert!(
        res.text().starts_with("413 Payload Too Large"),
        "{}",
        res.text()
    );
    assert!(closed, "the server kept the connection open after a 413");

    // Small chunks that only together cross the limit.
    let mut req =
        b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..5 {
        req.extend_from_slice(b"100\r\n");
        req.extend_from_slice(&[b'y'; 256]);
        req.extend_from_slice(b"\r\n");
    }
    let (res, closed) = exchange(client.addr(), &req).await;
    assert_eq!(res.status, 413);
    assert_eq!(res.header("connection"), Some("close"));
    assert!(closed);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler ran");
    client.close().await.unwrap();
}

#[tokio::test]
async fn every_buffered_reader_enforces_the_limit() {
    let app = Application::new()
        .client_max_size(16)
        .post("/json", |Json(v): Json<Value>| async move { v.to_string() })
        .post(
            "/form",
            |Form(v): Form<HashMap<String, String>>| async move { v.len().to_string() },
        )
        .post("/string", |s: String| async move { s })
        .post("/post", |mut req: Request| async move {
            let form = req.post().await?;
            Ok::<_, HttpError>(form.len().to_string())
        })
        .post("/max", |req: Request| async move {
            req.client_max_size().to_string()
        });
    let client = TestClient::new(app).await.unwrap();

    let cases = [
        ("/json", "application/json", r#"{"a":"0123456789abcdef"}"#),
        (
            "/form",
            "application/x-www-form-urlencoded",
            "a=0123456789abcdef",
        ),
        ("/string", "text/plain", "0123456789abcdefg"),
        (
            "/post",
            "application/x-www-form-urlencoded",
            "a=0123456789abcdef",
        ),
    ];
    for (path, content_type, body) in cases {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let (res, closed) = exchange(client.addr(), head.as_bytes()).await;
        assert_eq!(res.status, 413, "{path}");
        assert_eq!(res.header("connection"), Some("close"), "{path}");
        assert!(closed, "{path}");
    }
    assert_eq!(client.post("/max").send().await.unwrap().text(), "16");
    client.close().await.unwrap();
}

#[tokio::test]
async fn default_limit_is_one_mebibyte() {
    assert_eq!(DEFAULT_CLIENT_MAX_SIZE, 1024 * 1024);

    let calls = Arc::new(AtomicUsize::new(0));
    let app = limited_app(DEFAULT_CLIENT_MAX_SIZE, calls.clone())
        .get("/max", |req: Request| async move {
            req.client_max_size().to_string()
        });
    let client = TestClient::new(app).await.unwrap();
    assert_eq!(client.get("/max").send().await.unwrap().text(), "1048576");

    let res = client
        .post("/upload")
        .body(vec![b'z'; 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "1048576");

    let (res, closed) = exchange(
        client.addr(),
        b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 413);
    assert_eq!(
        res.text(),
        "413 Payload Too Large: the body is over the 1048576-byte limit\n"
    );
    assert!(closed);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    client.close().await.unwrap();
}

#[tokio::test]
async fn error_bodies_never_echo_large_input() {
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Numbers {
        n: u32,
    }
    let app = json_app().post(
        "/form",
        |Form(f): Form<Numbers>| async move { f.n.to_string() },
    );
    let client = TestClient::new(app).await.unwrap();
    let filler = "x".repeat(100_000);

    // 100 KB of malformed JSON.
    let body = format!("{{\"name\": \"{filler}\", oops}}");
    assert!(body.len() > 100_000);
    let res = client
        .post("/items")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().contains("invalid JSON"), "{}", res.text());
    assert_short(res.bytes(), "malformed JSON");

    // 100 KB of unterminated JSON.
    let res = client
        .post("/items")
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{filler}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_short(res.bytes(), "unterminated JSON");

    // Well-formed JSON of the wrong shape whose bad value is 100 KB long.
    let res = client
        .post("/items")
        .json(&json!({"name": "a", "qty": filler}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_short(res.bytes(), "wrong-shape JSON");
    assert!(!res.text().contains(&filler[..1000]));

    // A form whose bad value is 100 KB long.
    let res = client
        .post("/form")
        .form(&[("n", filler.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_short(res.bytes(), "form");
    client.close().await.unwrap();
}

// ---------------------------------------------------------------------------
// IntoResponse
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct SecretError;

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("db password is hunter2")
    }
}

impl std::error::Error for SecretError {}

#[tokio::test]
async fn handlers_may_return_anything_into_response() {
    let app = Application::new()
        .get("/str", || async { "static str" })
        .get("/string", || async { String::from("owned string") })
        .get("/tuple", || async { (StatusCode::CREATED, "made") })
        .get("/tuple-json", || async {
            (StatusCode::ACCEPTED, Json(json!({"queued": true})))
        })
        .get("/json", || async { Json(vec![1, 2, 3]) })
        .get("/html", || async { Html("<h1>hi</h1>") })
        .get("/unit", || async {})
        .get("/status", || async { StatusCode::NO_CONTENT })
        .get("/vec", || async { vec![0u8, 159, 146, 150] })
        .get("/response", || async {
            Response::text("custom")
                .with_status(StatusCode::IM_A_TEAPOT)
                .with_header(
                    aiox_web::http::header::CACHE_CONTROL,
                    aiox_web::HeaderValue::from_static("no-store"),
                )
        })
        .get("/ok/{n}", |Path(n): Path<u32>| async move {
            if n == 0 {
                Err(HttpError::not_found().with_message("no such item"))
            } else {
                Ok(format!("item {n}"))
            }
        });
    let client = TestClient::new(app).await.unwrap();

    let expectations: [(&str, u16, Option<&str>, &[u8]); 10] = [
        (
            "/str",
            200,
            Some("text/plain; charset=utf-8"),
            b"static str",
        ),
        (
            "/string",
            200,
            Some("text/plain; charset=utf-8"),
            b"owned string",
        ),
        ("/tuple", 201, Some("text/plain; charset=utf-8"), b"made"),
        (
            "/tuple-json",
            202,
            Some("application/json"),
            b"{\"queued\":true}",
        ),
        ("/json", 200, Some("application/json"), b"[1,2,3]"),
        (
            "/html",
            200,
            Some("text/html; charset=utf-8"),
            b"<h1>hi</h1>",
        ),
        ("/unit", 200, None, b""),
        ("/status", 204, None, b""),
        (
            "/vec",
            200,
            Some("application/octet-stream"),
            &[0, 159, 146, 150],
        ),
        (
            "/response",
            418,
            Some("text/plain; charset=utf-8"),
            b"custom",
        ),
    ];
    for (path, status, content_type, body) in expectations {
        let res = client.get(path).send().await.unwrap();
        assert_eq!(res.status(), status, "{path}");
        assert_eq!(res.header("content-type"), content_type, "{path}");
        assert_eq!(res.bytes().as_ref(), body, "{path}");
    }
    let res = client.get("/response").send().await.unwrap();
    assert_eq!(res.header("cache-control"), Some("no-store"));

    let res = client.get("/ok/5").send().await.unwrap();
    assert_eq!(
        (res.status().as_u16(), res.text()),
        (200, "item 5".to_owned())
    );
    let res = client.get("/ok/0").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.text(), "no such item\n");
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn http_errors_redirects_and_question_mark() {
    let app = Application::new()
        .get("/redirect", || async {
            Err::<String, _>(HttpError::found("/x"))
        })
        .get("/moved", || async {
            HttpError::moved_permanently("https://example.com/new?a=1")
        })
        .get("/bad-location", || async {
            HttpError::found("/x\r\nSet-Cookie: admin=1")
        })
        .get("/teapot", || async { HttpError::from_u16(418) })
        .get("/bogus-status", || async { HttpError::from_u16(1000) })
        .get("/with-header", || async {
            HttpError::too_many_requests().with_header(
                aiox_web::http::header::RETRY_AFTER,
                aiox_web::HeaderValue::from_static("30"),
            )
        })
        .get("/parse", || async {
            let n: u32 = "not a number".parse()?;
            Ok::<_, HttpError>(n.to_string())
        })
        .get("/io", || async {
            let err = std::io::Error::other("cannot open /etc/secret.conf");
            Err::<(), _>(err)?;
            Ok::<_, HttpError>("unreachable")
        })
        .get("/custom", || async {
            Err::<(), _>(SecretError)?;
            Ok::<_, HttpError>("unreachable")
        })
        .get("/unserializable", || async {
            let mut map = HashMap::new();
            map.insert((1u8, 2u8), "tuple keys are not JSON");
            Json(map)
        });
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/redirect").send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.header("location"), Some("/x"));
    assert_eq!(res.text(), "302 Found\n");

    let res = client.get("/moved").send().await.unwrap();
    assert_eq!(res.status(), 301);
    assert_eq!(res.header("location"), Some("https://example.com/new?a=1"));

    // A Location that would split the header is refused, not sent.
    let res = client.get("/bad-location").send().await.unwrap();
    assert_eq!(res.status(), 500);
    assert!(res.header("location").is_none());
    assert!(res.header("set-cookie").is_none());

    let res = client.get("/teapot").send().await.unwrap();
    assert_eq!(res.status(), 418);
    assert_eq!(res.text(), "418 I'm a teapot\n");

    let res = client.get("/bogus-status").send().await.unwrap();
    assert_eq!(res.status(), 500);

    let res = client.get("/with-header").send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.header("retry-after"), Some("30"));

    for path in ["/parse", "/io", "/custom", "/unserializable"] {
        let res = client.get(path).send().await.unwrap();
        assert_eq!(res.status(), 500, "{path}");
        assert_eq!(res.text(), "500 Internal Server Error\n", "{path}");
        assert_eq!(
            res.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
    }
    client.close().await.unwrap();
}
