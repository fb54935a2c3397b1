//! Responses end to end: status, reason phrase, version, headers, URL and length;
//! text decoding (charset, BOM, invalid UTF-8), JSON, streaming chunks, the read
//! limit against long and lying bodies, and status errors.

mod support;

use std::time::{Duration, Instant};

use aiox_client::{ClientSession, ErrorKind, Method, StatusCode, Version};
use aiox_web::http::header::{CONTENT_TYPE, HeaderName};
use aiox_web::{Application, Body, Bytes, HeaderValue, Response};
use futures_util::StreamExt;
use serde_json::json;
use support::{RawServer, Server, read_request};
use tokio::io::AsyncWriteExt;

/// A body streamed in `count` chunks of `size` bytes (chunked encoding); byte `i` of
/// the whole body is `i % 251`.
fn streamed(count: usize, size: usize) -> Response {
    let chunks = (0..count).map(move |c| {
        let chunk: Vec<u8> = (c * size..(c + 1) * size)
            .map(|i| (i % 251) as u8)
            .collect();
        Ok::<_, std::io::Error>(Bytes::from(chunk))
    });
    Response::stream(Body::from_stream(futures_util::stream::iter(chunks)))
}

fn with_type(body: &'static [u8], content_type: &'static str) -> Response {
    Response::new(Body::from(body)).with_content_type(HeaderValue::from_static(content_type))
}

fn app() -> Application {
    Application::new()
        .get("/teapot", || async {
            Response::text("short and stout")
                .with_status(StatusCode::IM_A_TEAPOT)
                .with_header(
                    HeaderName::from_static("x-custom"),
                    HeaderValue::from_static("yes"),
                )
        })
        .get("/latin1", || async {
            with_type(b"caf\xe9 cr\xe8me", "text/plain; charset=ISO-8859-1")
        })
        .get("/utf16", || async {
            with_type(b"\xff\xfeh\x00\xe9\x00!\x00", "text/plain")
        })
        .get("/utf8bom", || async {
            with_type(b"\xef\xbb\xbfhi", "text/plain")
        })
        .get("/invalid", || async {
            with_type(b"ok \xff\xfe end", "text/plain; charset=utf-8")
        })
        .get("/json", || async {
            Response::json(&json!({"a": [1, 2], "b": "c"}))
        })
        .get("/badjson", || async {
            with_type(b"{\"a\": [1, 2", "application/json")
        })
        .get("/big", || async { streamed(64, 64 * 1024) })
        .get("/fixed4k", || async { Response::bytes(vec![b'x'; 4096]) })
        .get("/chunked4k", || async { streamed(4, 1024) })
        .get("/missing", || async { (StatusCode::NOT_FOUND, "nope") })
        .get("/boom", || async {
            (StatusCode::INTERNAL_SERVER_ERROR, "boom")
        })
}

#[tokio::test]
async fn status_reason_version_headers_url_and_length() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let url = server.url("/teapot?x=1");
    let resp = session.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(resp.reason(), Some("I'm a teapot"));
    assert_eq!(resp.version(), Version::HTTP_11);
    assert_eq!(resp.headers()["x-custom"], "yes");
    assert_eq!(resp.headers()[CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(resp.url().as_str(), url);
    assert_eq!(resp.method(), Method::GET);
    assert_eq!(resp.content_length(), Some(15));
    assert!(resp.history().is_empty());
    assert_eq!(resp.text().await.unwrap(), "short and stout");

    // A streamed body has no length.
    let resp = session.get(&server.url("/chunked4k")).send().await.unwrap();
    assert_eq!(resp.content_length(), None);
    assert_eq!(resp.bytes().await.unwrap().len(), 4096);
}

#[tokio::test]
async fn a_custom_reason_phrase_and_http_1_0_from_a_raw_server() {
    let server = RawServer::start(|mut stream, n| async move {
        let Some(_) = read_request(&mut stream).await else {
            return;
        };
        let answer: &[u8] = if n == 0 {
            b"HTTP/1.1 200 Very Fine Indeed\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        } else if n == 1 {
            b"HTTP/1.0 599 \r\nContent-Length: 3\r\n\r\nodd"
        } else {
            b"HTTP/1.1 404 \r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        };
        let _ = stream.write_all(answer).await;
    })
    .await;
    let session = ClientSession::new();
    let resp = session.get(&server.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.reason(), Some("Very Fine Indeed"));
    assert_eq!(resp.text().await.unwrap(), "ok");

    let resp = session.get(&server.url("/")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 599);
    assert_eq!(resp.version(), Version::HTTP_10);
    assert_eq!(resp.reason(), None, "no standard reason for 599");
    assert_eq!(resp.text().await.unwrap(), "odd");

    // An empty phrase on a known status gives the standard one.
    let resp = session.get(&server.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.reason(), Some("Not Found"));
}

#[tokio::test]
async fn text_follows_the_charset_then_the_bom_and_replaces_invalid_utf8() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let text = |path: &'static str| {
        let session = session.clone();
        let url = server.url(path);
        async move {
            session
                .get(&url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(text("/latin1").await, "café crème");
    assert_eq!(text("/utf16").await, "hé!");
    assert_eq!(text("/utf8bom").await, "hi");
    assert_eq!(text("/invalid").await, "ok \u{fffd}\u{fffd} end");
}

#[tokio::test]
async fn json_and_bad_json() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Doc {
        a: Vec<u32>,
        b: String,
    }
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let doc: Doc = session
        .get(&server.url("/json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc,
        Doc {
            a: vec![1, 2],
            b: "c".into()
        }
    );

    let url = server.url("/badjson");
    let err = session
        .get(&url)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    assert!(err.is_decode());
    assert_eq!(err.method(), Some(&Method::GET));
    assert_eq!(err.url().map(|u| u.as_str()), Some(url.as_str()));
    assert!(std::error::Error::source(&err).is_some());

    // The right JSON in the wrong shape is a decode error too.
    let err = session
        .get(&server.url("/json"))
        .send()
        .await
        .unwrap()
        .json::<Vec<u32>>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
}

#[tokio::test]
async fn chunks_stream_a_large_body_in_several_chunks() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let resp = session.get(&server.url("/big")).send().await.unwrap();
    let mut chunks = resp.chunks();
    assert_eq!(chunks.response().status(), 200);
    let (mut count, mut total) = (0, 0usize);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.unwrap();
        assert!(
            chunk
                .iter()
                .enumerate()
                .all(|(i, b)| *b == ((total + i) % 251) as u8),
            "chunk {count} has the wrong bytes"
        );
        total += chunk.len();
        count += 1;
    }
    assert_eq!(total, 4 * 1024 * 1024);
    assert!(count > 1, "{count} chunks");

    // chunk() by hand.
    let mut resp = session.get(&server.url("/big")).send().await.unwrap();
    let mut total = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        total += chunk.len();
    }
    assert_eq!(total, 4 * 1024 * 1024);
    assert!(resp.is_body_done());
    assert_eq!(resp.chunk().await.unwrap(), None);
}

#[tokio::test]
async fn read_limit_refuses_longer_bodies() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    // Content-Length over the limit: refused before reading.
    let url = server.url("/fixed4k");
    let resp = session.get(&url).read_limit(1000).send().await.unwrap();
    assert_eq!(resp.content_length(), Some(4096));
    let err = resp.bytes().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Body, "{err:?}");
    assert!(err.to_string().contains("read limit"), "{err}");
    assert_eq!(err.url().map(|u| u.as_str()), Some(url.as_str()));

    // Chunked, no length: refused once the limit is passed.
    let err = session
        .get(&server.url("/chunked4k"))
        .read_limit(2500)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Body, "{err:?}");

    // The session's limit; exactly the limit passes.
    let session = ClientSession::builder().read_limit(4096).build().unwrap();
    let body = session
        .get(&server.url("/chunked4k"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 4096);
    let session = ClientSession::builder().read_limit(4095).build().unwrap();
    for path in ["/fixed4k", "/chunked4k"] {
        let err = session
            .get(&server.url(path))
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Body, "{path}: {err:?}");
    }
    // set_read_limit on the response.
    let mut resp = session.get(&server.url("/fixed4k")).send().await.unwrap();
    resp.set_read_limit(10_000);
    assert_eq!(resp.bytes().await.unwrap().len(), 4096);
}

#[tokio::test]
async fn a_lying_huge_content_length_is_an_error_not_an_allocation() {
    // 1 TiB announced, 9 bytes sent; then the server closes (or waits, for the
    // first connection).
    let server = RawServer::start(|mut stream, n| async move {
        if read_request(&mut stream).await.is_none() {
            return;
        }
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\nonly this")
            .await;
        if n == 0 {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    })
    .await;
    let session = ClientSession::new();
    let started = Instant::now();
    let resp = session.get(&server.url("/")).send().await.unwrap();
    assert_eq!(resp.content_length(), Some(1 << 40));
    let err = resp.bytes().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Body, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // With no cap at all, the body is read as it comes: the early close is an error.
    let err = session
        .get(&server.url("/"))
        .read_limit(usize::MAX)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Body, "{err:?}");

    // Streaming gets the bytes that came, then the error.
    let mut resp = session.get(&server.url("/")).send().await.unwrap();
    let mut got = Vec::new();
    let err = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => panic!("the body cannot end normally"),
            Err(e) => break e,
        }
    };
    assert_eq!(got, b"only this");
    assert_eq!(err.kind(), ErrorKind::Body, "{err:?}");
}

#[tokio::test]
async fn error_for_status_carries_the_status_method_and_url() {
    let server = Server::start(app()).await;
    let session = ClientSession::new();
    let ok = session.get(&server.url("/teapot")).send().await.unwrap();
    assert_eq!(
        ok.error_for_status_ref().unwrap_err().kind(),
        ErrorKind::Status(StatusCode::IM_A_TEAPOT)
    );

    let resp = session.get(&server.url("/json")).send().await.unwrap();
    let resp = resp.error_for_status().expect("200 is not an error");
    assert!(resp.error_for_status_ref().is_ok());

    let url = server.url("/missing");
    let resp = session.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let err = resp.error_for_status().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Status(StatusCode::NOT_FOUND));
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert!(err.is_status());
    assert_eq!(err.method(), Some(&Method::GET));
    assert_eq!(err.url().map(|u| u.as_str()), Some(url.as_str()));
    let shown = err.to_string();
    assert!(
        shown.contains("404") && shown.contains("GET") && shown.contains(&url),
        "{shown}"
    );
}

#[tokio::test]
async fn raise_for_status_on_the_session_and_per_request() {
    let server = Server::start(app()).await;
    let session = ClientSession::builder()
        .raise_for_status(true)
        .build()
        .unwrap();
    let url = server.url("/boom");
    let err = session.post(&url).send().await.unwrap_err();
    // POST /boom is routed for GET only: 405.
    assert_eq!(
        err.kind(),
        ErrorKind::Status(StatusCode::METHOD_NOT_ALLOWED)
    );
    let err = session.get(&url).send().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Status(StatusCode::INTERNAL_SERVER_ERROR)
    );
    assert_eq!(err.method(), Some(&Method::GET));
    assert_eq!(err.url().map(|u| u.as_str()), Some(url.as_str()));
    let resp = session
        .get(&url)
        .raise_for_status(false)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.text().await.unwrap(), "boom");
    assert!(session.get(&server.url("/json")).send().await.is_ok());

    // And the other way round.
    let plain = ClientSession::new();
    let err = plain
        .get(&server.url("/missing"))
        .raise_for_status(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn error_display_mentions_the_method_and_url() {
    let session = ClientSession::new();
    let url = support::refused_url("/where?x=1");
    let err = session.delete(&url).send().await.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("DELETE") && shown.contains(&url), "{shown}");
    assert_eq!(err.method(), Some(&Method::DELETE));
    assert_eq!(err.url().map(|u| u.as_str()), Some(url.as_str()));
    let debug = format!("{err:?}");
    assert!(debug.contains("DELETE") && debug.contains(&url), "{debug}");
}
