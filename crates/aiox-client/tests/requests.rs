//! Requests end to end: methods, query strings, default and per-request headers,
//! `User-Agent`, base URLs, bodies (JSON, form, bytes, streams, readers, files),
//! authentication headers, and the errors of a bad URL or header.

mod support;

use aiox_client::http::header::{self, HeaderMap, HeaderValue};
use aiox_client::{ClientSession, DEFAULT_USER_AGENT, ErrorKind, Method, RequestBody};
use aiox_web::{Application, Bytes, Request, Response};
use serde_json::{Value, json};
use support::{Server, TempDir};

/// Answers every method on every path with what it received, as JSON (and the
/// method in `x-method`, for HEAD).
async fn echo(mut req: Request) -> Response {
    let mut headers = serde_json::Map::new();
    for name in req.headers().keys() {
        let values: Vec<Value> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        headers.insert(name.as_str().to_owned(), Value::Array(values));
    }
    let method = req.method().as_str().to_owned();
    let path = req.raw_path().to_owned();
    let query = req.query_string().to_owned();
    let body = req.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    Response::json(&json!({
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "len": body.len(),
    }))
    .with_header(
        header::HeaderName::from_static("x-method"),
        HeaderValue::from_str(&method).unwrap_or(HeaderValue::from_static("?")),
    )
}

async fn server() -> Server {
    let app = Application::new().any("/", echo).any("/{tail:.+}", echo);
    Server::start(app).await
}

/// Every value of header `name` the server saw.
fn seen<'a>(echo: &'a Value, name: &str) -> Vec<&'a str> {
    echo["headers"][name]
        .as_array()
        .map(|values| values.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

async fn send_json(builder: aiox_client::RequestBuilder) -> Value {
    let resp = builder.send().await.expect("the request succeeds");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("the echo is JSON")
}

#[tokio::test]
async fn every_method_and_a_custom_one() {
    let server = server().await;
    let session = ClientSession::new();
    let url = server.url("/m");
    let builders = [
        ("GET", session.get(&url)),
        ("POST", session.post(&url)),
        ("PUT", session.put(&url)),
        ("PATCH", session.patch(&url)),
        ("DELETE", session.delete(&url)),
        ("OPTIONS", session.options(&url)),
        (
            "PURGE",
            session.request(Method::from_bytes(b"PURGE").unwrap(), &url),
        ),
    ];
    for (name, builder) in builders {
        let echo = send_json(builder).await;
        assert_eq!(echo["method"], name);
        assert_eq!(echo["path"], "/m");
    }
    let resp = session.head(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-method"], "HEAD");
    assert!(resp.bytes().await.unwrap().is_empty());
}

#[derive(serde::Serialize)]
struct Search {
    q: &'static str,
    page: u32,
    tags: Option<&'static str>,
}

#[tokio::test]
async fn query_from_pairs_and_from_a_struct_appended_to_the_url_query() {
    let server = server().await;
    let session = ClientSession::new();
    let echo = send_json(
        session
            .get(&server.url("/q?z=0"))
            .query(&[("a", "1"), ("b", "x y&z")]),
    )
    .await;
    assert_eq!(echo["query"], "z=0&a=1&b=x+y%26z");

    let search = Search {
        q: "rust é",
        page: 2,
        tags: None,
    };
    let echo = send_json(
        session
            .get(&server.url("/q?z=0"))
            .query(&search)
            .query(&[("more", "yes")]),
    )
    .await;
    assert_eq!(echo["query"], "z=0&q=rust+%C3%A9&page=2&more=yes");

    // Nothing to add leaves the URL alone.
    let empty: [(&str, &str); 0] = [];
    let echo = send_json(session.get(&server.url("/q")).query(&empty)).await;
    assert_eq!(echo["query"], "");
}

#[tokio::test]
async fn default_headers_per_request_headers_and_replacing_a_default() {
    let server = server().await;
    let session = ClientSession::builder()
        .default_header("x-default", "d")
        .default_header("x-other", "o")
        .build()
        .unwrap();
    let echo = send_json(session.get(&server.url("/")).header("x-req", "r")).await;
    assert_eq!(seen(&echo, "x-default"), ["d"]);
    assert_eq!(seen(&echo, "x-other"), ["o"]);
    assert_eq!(seen(&echo, "x-req"), ["r"]);
    assert_eq!(seen(&echo, "accept"), ["*/*"]);

    // A request's own header replaces the default of its name, `header` and
    // `headers` alike; `header` twice sends both values.
    let echo = send_json(session.get(&server.url("/")).header("x-default", "mine")).await;
    assert_eq!(seen(&echo, "x-default"), ["mine"]);
    let echo = send_json(
        session
            .get(&server.url("/"))
            .header("x-default", "one")
            .header("x-default", "two"),
    )
    .await;
    assert_eq!(seen(&echo, "x-default"), ["one", "two"]);
    let mut map = HeaderMap::new();
    map.insert("x-default", HeaderValue::from_static("replaced"));
    map.append("x-multi", HeaderValue::from_static("1"));
    map.append("x-multi", HeaderValue::from_static("2"));
    let echo = send_json(session.get(&server.url("/")).headers(map)).await;
    assert_eq!(seen(&echo, "x-default"), ["replaced"]);
    assert_eq!(seen(&echo, "x-multi"), ["1", "2"]);
    assert_eq!(seen(&echo, "x-other"), ["o"]);

    // A default header of the session's own (Accept) is replaced by the user's.
    let session = ClientSession::builder()
        .default_header(header::ACCEPT, "application/json")
        .build()
        .unwrap();
    let echo = send_json(session.get(&server.url("/"))).await;
    assert_eq!(seen(&echo, "accept"), ["application/json"]);
}

#[tokio::test]
async fn user_agent_default_and_overridden() {
    let server = server().await;
    assert_eq!(
        DEFAULT_USER_AGENT,
        format!("aiox/{}", env!("CARGO_PKG_VERSION"))
    );
    let echo = send_json(ClientSession::new().get(&server.url("/"))).await;
    assert_eq!(seen(&echo, "user-agent"), [DEFAULT_USER_AGENT]);

    let session = ClientSession::builder()
        .user_agent(Some("custom/1.0"))
        .build()
        .unwrap();
    let echo = send_json(session.get(&server.url("/"))).await;
    assert_eq!(seen(&echo, "user-agent"), ["custom/1.0"]);

    let session = ClientSession::builder().user_agent(None).build().unwrap();
    let echo = send_json(session.get(&server.url("/"))).await;
    assert!(seen(&echo, "user-agent").is_empty(), "{echo}");

    let echo = send_json(
        ClientSession::new()
            .get(&server.url("/"))
            .header(header::USER_AGENT, "per-request/1"),
    )
    .await;
    assert_eq!(seen(&echo, "user-agent"), ["per-request/1"]);
    let mut map = HeaderMap::new();
    map.insert(
        header::USER_AGENT,
        HeaderValue::from_static("per-request/2"),
    );
    let echo = send_json(ClientSession::new().get(&server.url("/")).headers(map)).await;
    assert_eq!(seen(&echo, "user-agent"), ["per-request/2"]);
}

#[tokio::test]
async fn base_url_joining() {
    let server = server().await;
    let session = ClientSession::builder()
        .base_url(&server.url("/api/v1/"))
        .build()
        .unwrap();
    let echo = send_json(session.get("users?x=1")).await;
    assert_eq!(
        (&echo["path"], &echo["query"]),
        (&json!("/api/v1/users"), &json!("x=1"))
    );
    let echo = send_json(session.get("/root")).await;
    assert_eq!(echo["path"], "/root");
    let echo = send_json(session.get("../v2/items")).await;
    assert_eq!(echo["path"], "/api/v2/items");
    // An absolute URL ignores the base.
    let other = self::server().await;
    let echo = send_json(session.get(&other.url("/abs"))).await;
    assert_eq!(echo["path"], "/abs");
    let resp = session.get("/root").send().await.unwrap();
    assert_eq!(resp.url().as_str(), server.url("/root"));

    let err = ClientSession::builder()
        .base_url("ftp://example.com/")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidUrl);
}

#[tokio::test]
async fn json_form_and_bytes_bodies_with_their_content_type() {
    let server = server().await;
    let session = ClientSession::new();

    let echo = send_json(
        session
            .post(&server.url("/"))
            .json(&json!({"name": "aiox", "n": 1})),
    )
    .await;
    assert_eq!(seen(&echo, "content-type"), ["application/json"]);
    assert_eq!(
        serde_json::from_str::<Value>(echo["body"].as_str().unwrap()).unwrap(),
        json!({"name": "aiox", "n": 1})
    );
    let len = echo["len"].as_u64().unwrap().to_string();
    assert_eq!(seen(&echo, "content-length"), [len.as_str()]);

    let echo = send_json(
        session
            .post(&server.url("/"))
            .form(&[("a", "1"), ("b", "x y")]),
    )
    .await;
    assert_eq!(
        seen(&echo, "content-type"),
        ["application/x-www-form-urlencoded"]
    );
    assert_eq!(echo["body"], "a=1&b=x+y");

    let echo = send_json(session.put(&server.url("/")).body(&b"raw \x01 bytes"[..])).await;
    assert!(seen(&echo, "content-type").is_empty(), "{echo}");
    assert_eq!(seen(&echo, "content-length"), ["11"]);
    assert_eq!(echo["body"], "raw \u{1} bytes");

    // An explicit Content-Type wins over the JSON default.
    let echo = send_json(
        session
            .post(&server.url("/"))
            .header(header::CONTENT_TYPE, "application/vnd.api+json")
            .json(&json!([1, 2])),
    )
    .await;
    assert_eq!(seen(&echo, "content-type"), ["application/vnd.api+json"]);
    assert_eq!(echo["body"], "[1,2]");

    // GET without a body sends no Content-Length; POST with an empty one sends 0.
    let echo = send_json(session.get(&server.url("/"))).await;
    assert!(seen(&echo, "content-length").is_empty(), "{echo}");
    let echo = send_json(session.post(&server.url("/")).body("")).await;
    assert_eq!(seen(&echo, "content-length"), ["0"]);
}

#[tokio::test]
async fn a_stream_body_arrives_chunked_and_complete() {
    let server = server().await;
    let session = ClientSession::new();
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..50)
        .map(|i| Ok(Bytes::from(format!("chunk {i:02};"))))
        .collect();
    let stream = futures_util::stream::iter(chunks);
    let echo = send_json(
        session
            .post(&server.url("/upload"))
            .body(RequestBody::stream(stream)),
    )
    .await;
    assert_eq!(seen(&echo, "transfer-encoding"), ["chunked"]);
    assert!(seen(&echo, "content-length").is_empty());
    let expected: String = (0..50).map(|i| format!("chunk {i:02};")).collect();
    assert_eq!(echo["body"], expected);

    // An error item fails the request with a body error, not a panic.
    let failing = futures_util::stream::iter([
        Ok(Bytes::from_static(b"start")),
        Err(std::io::Error::other("the source broke")),
    ]);
    let err = session
        .post(&server.url("/upload"))
        .body(RequestBody::stream(failing))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Body | ErrorKind::Request),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_reader_body_from_a_cursor_and_from_a_file() {
    let server = server().await;
    let session = ClientSession::new();
    let data: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let echo = send_json(
        session
            .post(&server.url("/reader"))
            .body(RequestBody::reader(std::io::Cursor::new(data.clone()))),
    )
    .await;
    assert_eq!(echo["len"], data.len());
    assert_eq!(echo["body"].as_str().unwrap().as_bytes(), &data[..]);
    assert_eq!(seen(&echo, "transfer-encoding"), ["chunked"]);

    let dir = TempDir::new("reader");
    let path = dir.join("body.txt");
    std::fs::write(&path, b"from a file").unwrap();
    let file = tokio::fs::File::open(&path).await.unwrap();
    let echo = send_json(
        session
            .post(&server.url("/reader"))
            .body(RequestBody::reader(file)),
    )
    .await;
    assert_eq!(echo["body"], "from a file");
}

#[tokio::test]
async fn a_file_body_is_sent_with_its_content_length() {
    let server = server().await;
    let session = ClientSession::new();
    let dir = TempDir::new("file-body");
    let path = dir.join("upload.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| b'0' + (i % 10) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let body = RequestBody::file(&path);
    assert!(body.is_replayable());
    let echo = send_json(session.put(&server.url("/file")).body(body)).await;
    assert_eq!(seen(&echo, "content-length"), ["300000"]);
    assert!(seen(&echo, "transfer-encoding").is_empty(), "{echo:.200}");
    assert_eq!(echo["len"], 300_000);
    assert_eq!(echo["body"].as_str().unwrap().as_bytes(), &data[..]);

    // A missing file is a body error from send().
    let err = session
        .put(&server.url("/file"))
        .body(RequestBody::file(dir.join("missing")))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Body, "{err:?}");
}

#[tokio::test]
async fn basic_and_bearer_auth_headers() {
    let server = server().await;
    let session = ClientSession::new();
    let echo = send_json(session.get(&server.url("/")).basic_auth("user", "pa:ss")).await;
    // base64("user:pa:ss")
    assert_eq!(seen(&echo, "authorization"), ["Basic dXNlcjpwYTpzcw=="]);
    let echo = send_json(session.get(&server.url("/")).bearer_auth("t0k3n")).await;
    assert_eq!(seen(&echo, "authorization"), ["Bearer t0k3n"]);

    let session = ClientSession::builder()
        .basic_auth("aladdin", "opensesame")
        .build()
        .unwrap();
    let echo = send_json(session.get(&server.url("/"))).await;
    assert_eq!(
        seen(&echo, "authorization"),
        ["Basic YWxhZGRpbjpvcGVuc2VzYW1l"]
    );
    // A request's own credentials replace the session's.
    let echo = send_json(session.get(&server.url("/")).bearer_auth("mine")).await;
    assert_eq!(seen(&echo, "authorization"), ["Bearer mine"]);
}

#[tokio::test]
async fn invalid_urls_are_invalid_url_errors() {
    let session = ClientSession::new();
    for url in [
        "not a url",
        "/relative/without/base",
        "ftp://example.com/file",
        "file:///etc/passwd",
        "http://",
        "http://exa mple.com/",
        "mailto:someone@example.com",
    ] {
        let err = session.get(url).send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{url}: {err:?}");
        assert!(err.is_builder());
    }
}

#[tokio::test]
async fn invalid_header_names_and_values_are_builder_errors_from_send() {
    let server = server().await;
    let session = ClientSession::new();
    let err = session
        .get(&server.url("/"))
        .header("x-bad", "line\nbreak")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder, "{err:?}");
    let err = session
        .get(&server.url("/"))
        .header("bad name", "v")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder, "{err:?}");
    let err = session
        .get(&server.url("/"))
        .bearer_auth("new\r\nline")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder, "{err:?}");
    let err = ClientSession::builder()
        .default_header("x-bad", "a\rb")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder, "{err:?}");
    let err = ClientSession::builder()
        .user_agent(Some("bad\nagent"))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder, "{err:?}");
    // The session still works afterwards.
    let echo = send_json(session.get(&server.url("/"))).await;
    assert_eq!(echo["method"], "GET");
}
