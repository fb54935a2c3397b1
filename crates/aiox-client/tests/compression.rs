//! Response decompression end to end: gzip, deflate (zlib and raw), br, zstd and a
//! chain of them; `Accept-Encoding`; `decompress(false)`; a gzip bomb stopped at the
//! decompression limit; corrupt data; HEAD with `Content-Encoding`.

mod support;

use std::time::{Duration, Instant};

use aiox_client::{ClientSession, ErrorKind, StatusCode};
use aiox_web::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING};
use aiox_web::{Application, Body, Bytes, HeaderValue, Request, Response};
use async_compression::Level;
use async_compression::tokio::bufread::{
    BrotliEncoder, DeflateEncoder, GzipEncoder, ZlibEncoder, ZstdEncoder,
};
use futures_util::StreamExt;
use support::Server;
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Clone, Copy, Debug)]
enum Codec {
    Gzip,
    Zlib,
    RawDeflate,
    Brotli,
    Zstd,
}

/// `data` compressed with `codec` (fastest level: brotli's default is slow unoptimized).
async fn encode(codec: Codec, data: &[u8]) -> Vec<u8> {
    let level = Level::Fastest;
    let mut encoder: std::pin::Pin<Box<dyn AsyncRead + '_>> = match codec {
        Codec::Gzip => Box::pin(GzipEncoder::with_quality(data, level)),
        Codec::Zlib => Box::pin(ZlibEncoder::with_quality(data, level)),
        Codec::RawDeflate => Box::pin(DeflateEncoder::with_quality(data, level)),
        Codec::Brotli => Box::pin(BrotliEncoder::with_quality(data, level)),
        Codec::Zstd => Box::pin(ZstdEncoder::with_quality(data, level)),
    };
    let mut out = Vec::new();
    encoder.read_to_end(&mut out).await.expect("compress");
    out
}

fn sample() -> Vec<u8> {
    (0..5_000)
        .flat_map(|i| format!("line {i}: the quick brown fox\n").into_bytes())
        .collect()
}

/// A response of `body` with `Content-Encoding: coding`.
fn encoded(body: Bytes, coding: &'static str) -> Response {
    Response::bytes(body).with_header(CONTENT_ENCODING, HeaderValue::from_static(coding))
}

/// Routes `path` to a handler answering `body` with `Content-Encoding: coding`.
fn serve(app: Application, path: &str, body: Vec<u8>, coding: &'static str) -> Application {
    let body = Bytes::from(body);
    app.get(path, move || {
        let body = body.clone();
        async move { encoded(body, coding) }
    })
}

async fn app() -> Application {
    let data = sample();
    let mut app = Application::new().get("/echo-ae", |req: Request| async move {
        req.header(ACCEPT_ENCODING).unwrap_or("<none>").to_owned()
    });
    for (path, codec, coding) in [
        ("/gzip", Codec::Gzip, "gzip"),
        ("/zlib", Codec::Zlib, "deflate"),
        ("/raw-deflate", Codec::RawDeflate, "deflate"),
        ("/br", Codec::Brotli, "br"),
        ("/zstd", Codec::Zstd, "zstd"),
    ] {
        app = serve(app, path, encode(codec, &data).await, coding);
    }
    // gzip first, then br: `Content-Encoding: gzip, br`.
    let chained = encode(Codec::Brotli, &encode(Codec::Gzip, &data).await).await;
    app = serve(app, "/chain", chained, "gzip, br");
    app = serve(
        app,
        "/unknown",
        b"not really compressed".to_vec(),
        "compress",
    );
    let mut corrupt = encode(Codec::Gzip, &data).await;
    let middle = corrupt.len() / 2;
    for b in &mut corrupt[middle..middle + 16] {
        *b ^= 0x5a;
    }
    app = serve(app, "/corrupt", corrupt, "gzip");
    let full = encode(Codec::Gzip, &data).await;
    app = serve(app, "/truncated", full[..full.len() - 10].to_vec(), "gzip");
    app = serve(
        app,
        "/garbage",
        b"\x1f\x8b\x08\x00this is no gzip".to_vec(),
        "gzip",
    );
    app.get("/nocontent", || async {
        Response::status_only(StatusCode::NO_CONTENT)
            .with_header(CONTENT_ENCODING, HeaderValue::from_static("gzip"))
    })
}

#[tokio::test]
async fn every_coding_is_decoded() {
    let server = Server::start(app().await).await;
    let session = ClientSession::new();
    let data = sample();
    for path in ["/gzip", "/zlib", "/raw-deflate", "/br", "/zstd", "/chain"] {
        let resp = session.get(&server.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers().contains_key(CONTENT_ENCODING), "{path}");
        assert_eq!(resp.content_length(), None, "{path}: decoded, no length");
        let body = resp.bytes().await.unwrap();
        assert!(body == data, "{path}: {} bytes", body.len());
    }
    // Streaming decodes too.
    let mut chunks = session
        .get(&server.url("/zstd"))
        .send()
        .await
        .unwrap()
        .chunks();
    let mut out = Vec::new();
    while let Some(chunk) = chunks.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    assert!(out == data);
    // An unknown coding is passed through untouched, its length kept.
    let resp = session.get(&server.url("/unknown")).send().await.unwrap();
    assert_eq!(resp.content_length(), Some(21));
    assert_eq!(resp.text().await.unwrap(), "not really compressed");
}

#[tokio::test]
async fn accept_encoding_is_sent_by_default_and_not_without_decompression() {
    let server = Server::start(app().await).await;
    let text = ClientSession::new()
        .get(&server.url("/echo-ae"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "gzip, deflate, br, zstd");

    let raw = ClientSession::builder().decompress(false).build().unwrap();
    let text = raw
        .get(&server.url("/echo-ae"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "<none>");

    // The caller's own Accept-Encoding is sent as is.
    let text = ClientSession::new()
        .get(&server.url("/echo-ae"))
        .headers(
            [(ACCEPT_ENCODING, HeaderValue::from_static("identity"))]
                .into_iter()
                .collect(),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "identity");
}

#[tokio::test]
async fn decompress_false_gives_the_raw_bytes() {
    let server = Server::start(app().await).await;
    let session = ClientSession::builder().decompress(false).build().unwrap();
    let expected = encode(Codec::Gzip, &sample()).await;
    let resp = session.get(&server.url("/gzip")).send().await.unwrap();
    assert_eq!(resp.headers()[CONTENT_ENCODING], "gzip");
    assert_eq!(resp.content_length(), Some(expected.len() as u64));
    assert_eq!(resp.bytes().await.unwrap(), expected);
    // Corrupt data is not looked at either.
    let resp = session.get(&server.url("/garbage")).send().await.unwrap();
    assert_eq!(
        &resp.bytes().await.unwrap()[..],
        b"\x1f\x8b\x08\x00this is no gzip"
    );
}

#[tokio::test]
async fn a_gzip_bomb_stops_at_the_decompression_limit() {
    // 300 MiB of zeros: 300 gzip members of 1 MiB each, about 300 KB on the wire,
    // streamed so the client can stop reading.
    let zeros = vec![0u8; 1024 * 1024];
    let member = Bytes::from(encode(Codec::Gzip, &zeros).await);
    assert!(member.len() < 8 * 1024, "{}", member.len());
    let app = Application::new().get("/bomb", move || {
        let member = member.clone();
        async move {
            let members = futures_util::stream::iter(
                (0..300).map(move |_| Ok::<_, std::io::Error>(member.clone())),
            );
            Response::stream(Body::from_stream(members))
                .with_header(CONTENT_ENCODING, HeaderValue::from_static("gzip"))
        }
    });
    let server = Server::start(app).await;
    let session = ClientSession::new();
    let started = Instant::now();

    let resp = session.get(&server.url("/bomb")).send().await.unwrap();
    let err = resp.bytes().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    assert!(err.to_string().contains("decompression limit"), "{err}");
    assert!(err.url().is_some(), "{err:?}");

    // Streaming: little more than the first MiB comes out before the error.
    let mut chunks = session
        .get(&server.url("/bomb"))
        .send()
        .await
        .unwrap()
        .chunks();
    let mut decoded = 0;
    let err = loop {
        match chunks.next().await {
            Some(Ok(chunk)) => decoded += chunk.len(),
            Some(Err(e)) => break e,
            None => panic!("the bomb decoded to its end ({decoded} bytes)"),
        }
    };
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    assert!(err.to_string().contains("decompression limit"), "{err}");
    assert!(decoded <= 2 * 1024 * 1024, "{decoded} bytes decoded");
    assert!(chunks.next().await.is_none(), "nothing after the error");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn corrupt_and_truncated_data_are_decode_errors() {
    let server = Server::start(app().await).await;
    let session = ClientSession::new();
    for path in ["/corrupt", "/truncated", "/garbage"] {
        let err = session
            .get(&server.url(path))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode, "{path}: {err:?}");
        assert!(err.is_decode());
    }
    // The session is fine afterwards.
    let body = session
        .get(&server.url("/gzip"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(body == sample());
}

#[tokio::test]
async fn head_and_204_with_content_encoding_do_not_error() {
    let server = Server::start(app().await).await;
    let session = ClientSession::new();
    let resp = session.head(&server.url("/gzip")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()[CONTENT_ENCODING], "gzip");
    assert!(resp.bytes().await.unwrap().is_empty());

    let resp = session.get(&server.url("/nocontent")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp.text().await.unwrap().is_empty());

    // Both left the connection reusable.
    let body = session
        .get(&server.url("/br"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(body == sample());
    assert_eq!(session.pool_stats().open, 1);
}
