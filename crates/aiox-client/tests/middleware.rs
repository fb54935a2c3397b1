//! Middleware, Digest authentication, tracing hooks and retry policies end to end.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aiox_client::{
    ClientSession, ClientTimeout, DigestAuth, Error, ErrorKind, Next, Request, RequestBody,
    RequestInfo, Response, RetryPolicy, TraceHooks,
};
use aiox_web::http::header::{AUTHORIZATION, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use aiox_web::{Application, HeaderValue, StatusCode};
use bytes::Bytes;
use md5::{Digest as _, Md5};
use serde_json::Value;
use support::{Server, echo, refused_url};

/// A failure guard for waits that should end at once.
const GUARD: Duration = Duration::from_secs(10);

/// A shared list of strings, for order checks.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    fn count(&self, prefix: &str) -> usize {
        self.all().iter().filter(|e| e.starts_with(prefix)).count()
    }
}

/// A body the size of which the trace tests check.
const HELLO: &str = "hello, traced world";

/// Counts hits; the first `fail` ones get `status` (with `Retry-After` if given).
fn flaky(
    fail: usize,
    status: u16,
    retry_after: Option<&'static str>,
) -> (Application, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Application::new()
        .get("/hello", || async { HELLO })
        .any("/flaky", move |mut req: aiox_web::Request| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                // Uploads are read before answering (see redirects.rs).
                let _ = req.bytes().await;
                if n < fail {
                    let mut resp = aiox_web::Response::text("try again")
                        .with_status(StatusCode::from_u16(status).unwrap());
                    if let Some(wait) = retry_after {
                        resp.headers_mut()
                            .insert(RETRY_AFTER, HeaderValue::from_static(wait));
                    }
                    resp
                } else {
                    aiox_web::Response::text("ok")
                }
            }
        })
        .any("/echo", echo)
        .get("/redirect", || async {
            aiox_web::Response::empty()
                .with_status(StatusCode::FOUND)
                .with_header(LOCATION, HeaderValue::from_static("/hello"))
        });
    (app, hits)
}

async fn start() -> Server {
    Server::start(flaky(0, 200, None).0).await
}

async fn recording(
    events: &Events,
    name: &'static str,
    req: Request,
    next: Next,
) -> aiox_client::Result<Response> {
    events.push(format!("{name} before {}", req.url().path()));
    let resp = next.run(req).await;
    match &resp {
        Ok(r) => events.push(format!("{name} after {}", r.status().as_u16())),
        Err(e) => events.push(format!("{name} error {:?}", e.kind())),
    }
    resp
}

#[tokio::test]
async fn middlewares_run_in_onion_order_once_per_hop() {
    let server = start().await;
    let events = Events::default();
    let (a, b) = (events.clone(), events.clone());
    let session = ClientSession::builder()
        .middleware(move |req: Request, next: Next| {
            let events = a.clone();
            async move { recording(&events, "a", req, next).await }
        })
        .middleware(move |req: Request, next: Next| {
            let events = b.clone();
            async move { recording(&events, "b", req, next).await }
        })
        .build()
        .unwrap();
    let resp = session.get(&server.url("/hello")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), HELLO);
    assert_eq!(
        events.take(),
        [
            "a before /hello",
            "b before /hello",
            "b after 200",
            "a after 200"
        ]
    );
    // Each redirect hop goes through the whole chain.
    let resp = session.get(&server.url("/redirect")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        events.take(),
        [
            "a before /redirect",
            "b before /redirect",
            "b after 302",
            "a after 302",
            "a before /hello",
            "b before /hello",
            "b after 200",
            "a after 200"
        ]
    );
    // Errors pass through it too.
    let err = session.get(&refused_url("/x")).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(
        events.take(),
        [
            "a before /x",
            "b before /x",
            "b error Connect",
            "a error Connect"
        ]
    );
}

#[derive(Clone, Debug, PartialEq)]
struct Tag(&'static str);

#[tokio::test]
async fn a_middleware_changes_what_the_server_sees_and_what_the_caller_gets() {
    let server = start().await;
    let session = ClientSession::builder()
        .middleware(|mut req: Request, next: Next| async move {
            let tag = req.extensions().get::<Tag>().cloned();
            let headers = req.headers_mut();
            headers.insert("x-middleware", HeaderValue::from_static("1"));
            // The session's defaults are added beneath the request's own headers when
            // it is written: a middleware replaces one by setting it.
            headers.insert("user-agent", HeaderValue::from_static("middleware/1"));
            if let Some(Tag(tag)) = tag {
                headers.insert("x-tag", HeaderValue::from_static(tag));
            }
            let mut resp = next.run(req).await?;
            resp.extensions_mut().insert(Tag("seen"));
            Ok(resp)
        })
        .build()
        .unwrap();
    let resp = session
        .get(&server.url("/echo"))
        .extension(Tag("from-builder"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.extensions().get::<Tag>(), Some(&Tag("seen")));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["headers"]["x-middleware"], "1", "{v}");
    assert_eq!(v["headers"]["x-tag"], "from-builder", "{v}");
    assert_eq!(v["headers"]["user-agent"], "middleware/1", "{v}");
    assert_eq!(v["headers"]["accept"], "*/*", "{v}");
}

#[tokio::test]
async fn a_middleware_can_retry_by_calling_next_twice() {
    let (app, hits) = flaky(1, 503, None);
    let server = Server::start(app).await;
    let session = ClientSession::builder()
        .middleware(|req: Request, next: Next| async move {
            let again = req.try_clone().expect("a replayable request");
            let resp = next.run(req).await?;
            if resp.status() != 503 {
                return Ok(resp);
            }
            resp.consume().await?;
            next.run(again).await
        })
        .build()
        .unwrap();
    let resp = session
        .put(&server.url("/flaky"))
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // Both tries went over the one connection.
    assert_eq!(session.pool_stats().open, 1);
}

// ---- Digest authentication (RFC 7616, MD5, qop=auth) ----

const REALM: &str = "aiox@test";
const NONCE: &str = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
const NEXT_NONCE: &str = "7d4a1c9e0b5f3a2d8c6e1f0a9b8c7d6e5f";
const OPAQUE: &str = "5ccc069c403ebaf9f0171e9517f40e41";

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The parameters of a `Digest` credentials header.
fn digest_params(value: &str) -> Option<HashMap<String, String>> {
    let mut rest = value.strip_prefix("Digest ")?;
    let mut out = HashMap::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            return Some(out);
        }
        let (name, after) = rest.split_once('=')?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        out.insert(name.trim().to_ascii_lowercase(), value.to_owned());
        rest = after;
    }
}

/// Why the credentials are wrong, or `None` if they prove `user:passwd`.
fn check_digest(nonce: &str, method: &str, target: &str, value: &str) -> Option<String> {
    let p = digest_params(value)?;
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    for (k, expected) in [
        ("username", "user"),
        ("realm", REALM),
        ("nonce", nonce),
        ("opaque", OPAQUE),
        ("uri", target),
        ("qop", "auth"),
        ("algorithm", "MD5"),
    ] {
        if get(k) != expected {
            return Some(format!("{k}={}", get(k)));
        }
    }
    let ha1 = md5_hex(&format!("user:{REALM}:passwd"));
    let ha2 = md5_hex(&format!("{method}:{target}"));
    let (nc, cnonce) = (get("nc"), get("cnonce"));
    let expected = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    (get("response") != expected || cnonce.is_empty()).then(|| "response".to_owned())
}

/// `/digest` demands `user:passwd` with the current `nonce` (an old one is answered
/// with `stale=true`); the log gets `none`, `ok nc=N` or `bad ...`.
fn digest_app(log: Events, nonce: Arc<Mutex<&'static str>>) -> Application {
    Application::new().any("/digest", move |mut req: aiox_web::Request| {
        let log = log.clone();
        let nonce = *nonce.lock().unwrap();
        async move {
            let _ = req.bytes().await;
            let target = req.uri().to_string();
            let verdict = match req.header(AUTHORIZATION) {
                None => "none".to_owned(),
                Some(value) => match check_digest(nonce, req.method().as_str(), &target, value) {
                    None => {
                        let nc = digest_params(value).unwrap()["nc"].clone();
                        format!("ok nc={nc}")
                    }
                    Some(why) => format!("bad {why}"),
                },
            };
            log.push(verdict.clone());
            if verdict.starts_with("ok") {
                return aiox_web::Response::text("authenticated");
            }
            let stale = verdict.starts_with("bad nonce");
            let challenge = format!(
                r#"Digest realm="{REALM}", qop="auth", nonce="{nonce}", opaque="{OPAQUE}", algorithm=MD5, stale={stale}"#
            );
            aiox_web::Response::text("unauthorized")
                .with_status(StatusCode::UNAUTHORIZED)
                .with_header(WWW_AUTHENTICATE, HeaderValue::from_str(&challenge).unwrap())
        }
    })
}

#[tokio::test]
async fn digest_auth_answers_the_challenge_and_reuses_it() {
    let log = Events::default();
    let server = Server::start(digest_app(log.clone(), Arc::new(Mutex::new(NONCE)))).await;
    let session = ClientSession::builder()
        .middleware(DigestAuth::new("user", "passwd"))
        .build()
        .unwrap();
    let resp = session
        .get(&server.url("/digest?page=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.history().is_empty());
    assert_eq!(resp.text().await.unwrap(), "authenticated");
    assert_eq!(log.take(), ["none", "ok nc=00000001"]);

    // The next request answers the stored challenge at once, with the next count.
    let resp = session
        .post(&server.url("/digest"))
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(log.take(), ["ok nc=00000002"]);
    assert_eq!(session.pool_stats().open, 1);
}

#[tokio::test]
async fn digest_auth_with_a_wrong_password_returns_the_401() {
    let log = Events::default();
    let server = Server::start(digest_app(log.clone(), Arc::new(Mutex::new(NONCE)))).await;
    let session = ClientSession::builder()
        .middleware(DigestAuth::new("user", "wrong"))
        .build()
        .unwrap();
    let resp = session.get(&server.url("/digest")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.text().await.unwrap(), "unauthorized");
    assert_eq!(log.take(), ["none", "bad response"]);
    // Again: one try with the stored challenge, no loop.
    let resp = session.get(&server.url("/digest")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(log.take(), ["bad response"]);
}

#[tokio::test]
async fn digest_auth_answers_a_new_nonce() {
    let log = Events::default();
    let nonce = Arc::new(Mutex::new(NONCE));
    let server = Server::start(digest_app(log.clone(), nonce.clone())).await;
    let session = ClientSession::builder()
        .middleware(DigestAuth::new("user", "passwd"))
        .build()
        .unwrap();
    let resp = session.get(&server.url("/digest")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(log.take(), ["none", "ok nc=00000001"]);
    // The server moves on to another nonce: the old one is stale, the new one is
    // answered with the count starting again.
    *nonce.lock().unwrap() = NEXT_NONCE;
    let resp = session.get(&server.url("/digest")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        log.take(),
        [format!("bad nonce={NONCE}"), "ok nc=00000001".to_owned()]
    );
    let resp = session.get(&server.url("/digest")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(log.take(), ["ok nc=00000002"]);
}

// ---- Tracing hooks ----

/// Records every hook as a line.
#[derive(Clone, Default)]
struct Recorder(Events);

impl TraceHooks for Recorder {
    fn on_request_start(&self, r: &RequestInfo<'_>) {
        self.0.push(format!("request_start {} {}", r.method, r.url));
    }
    fn on_request_headers_sent(&self, r: &RequestInfo<'_>) {
        let host = r
            .headers
            .get("host")
            .map(|h| h.to_str().unwrap().to_owned());
        self.0.push(format!(
            "headers_sent {} {} host={}",
            r.method,
            r.url,
            host.unwrap_or_default()
        ));
    }
    fn on_request_chunk_sent(&self, size: usize) {
        self.0.push(format!("chunk_sent {size}"));
    }
    fn on_request_redirect(&self, r: &RequestInfo<'_>, resp: &Response) {
        self.0.push(format!(
            "request_redirect {} {}",
            r.url,
            resp.status().as_u16()
        ));
    }
    fn on_request_end(&self, r: &RequestInfo<'_>, resp: &Response) {
        self.0.push(format!(
            "request_end {} {} {}",
            r.method,
            r.url,
            resp.status().as_u16()
        ));
    }
    fn on_request_exception(&self, r: &RequestInfo<'_>, e: &Error) {
        self.0
            .push(format!("request_exception {} {:?}", r.url, e.kind()));
    }
    fn on_response_chunk_received(&self, size: usize) {
        self.0.push(format!("chunk_received {size}"));
    }
    fn on_connection_queued_start(&self) {
        self.0.push("queued_start");
    }
    fn on_connection_queued_end(&self) {
        self.0.push("queued_end");
    }
    fn on_connection_create_start(&self) {
        self.0.push("create_start");
    }
    fn on_connection_create_end(&self) {
        self.0.push("create_end");
    }
    fn on_connection_reuseconn(&self) {
        self.0.push("reuseconn");
    }
    fn on_dns_resolvehost_start(&self, host: &str) {
        self.0.push(format!("dns_start {host}"));
    }
    fn on_dns_resolvehost_end(&self, host: &str) {
        self.0.push(format!("dns_end {host}"));
    }
    fn on_dns_cache_hit(&self, host: &str) {
        self.0.push(format!("dns_cache_hit {host}"));
    }
    fn on_dns_cache_miss(&self, host: &str) {
        self.0.push(format!("dns_cache_miss {host}"));
    }
}

/// The events without `chunk_received`, and the sum of the received sizes.
fn split_chunks(events: Vec<String>) -> (Vec<String>, usize) {
    let mut total = 0;
    let rest = events
        .into_iter()
        .filter(|e| match e.strip_prefix("chunk_received ") {
            Some(size) => {
                total += size.parse::<usize>().unwrap();
                false
            }
            None => true,
        })
        .collect();
    (rest, total)
}

fn traced(recorder: &Recorder) -> aiox_client::ClientSessionBuilder {
    ClientSession::builder().trace(recorder.clone())
}

#[tokio::test]
async fn trace_hooks_of_a_fresh_then_a_pooled_request() {
    let server = start().await;
    let rec = Recorder::default();
    let session = traced(&rec).build().unwrap();
    let url = server.local_url("/hello");
    let host = format!("localhost:{}", server.addr().port());

    let resp = session.get(&url).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), HELLO);
    let (events, received) = split_chunks(rec.0.take());
    assert_eq!(
        events,
        [
            format!("request_start GET {url}"),
            "create_start".to_owned(),
            "dns_start localhost".to_owned(),
            "dns_cache_miss localhost".to_owned(),
            "dns_end localhost".to_owned(),
            "create_end".to_owned(),
            format!("headers_sent GET {url} host={host}"),
            format!("request_end GET {url} 200"),
        ]
    );
    assert_eq!(received, HELLO.len());

    let resp = session.get(&url).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), HELLO);
    let (events, received) = split_chunks(rec.0.take());
    assert_eq!(
        events,
        [
            format!("request_start GET {url}"),
            "reuseconn".to_owned(),
            format!("headers_sent GET {url} host={host}"),
            format!("request_end GET {url} 200"),
        ]
    );
    assert_eq!(received, HELLO.len());
}

#[tokio::test]
async fn trace_hooks_of_a_dns_cache_hit() {
    let server = start().await;
    let rec = Recorder::default();
    let session = traced(&rec).force_close(true).build().unwrap();
    let url = server.local_url("/hello");
    for _ in 0..2 {
        let resp = session.get(&url).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), HELLO);
    }
    let (events, _) = split_chunks(rec.0.take());
    let connect: Vec<&str> = events
        .iter()
        .map(String::as_str)
        .filter(|e| e.starts_with("dns") || e.starts_with("create") || *e == "reuseconn")
        .collect();
    assert_eq!(
        connect,
        [
            "create_start",
            "dns_start localhost",
            "dns_cache_miss localhost",
            "dns_end localhost",
            "create_end",
            "create_start",
            "dns_start localhost",
            "dns_cache_hit localhost",
            "dns_end localhost",
            "create_end",
        ]
    );
}

#[tokio::test]
async fn trace_hooks_of_a_redirect() {
    let server = start().await;
    let rec = Recorder::default();
    let session = traced(&rec).build().unwrap();
    let resp = session.get(&server.url("/redirect")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), HELLO);
    let (events, _) = split_chunks(rec.0.take());
    let first = server.url("/redirect");
    let last = server.url("/hello");
    assert_eq!(
        events.first().unwrap(),
        &format!("request_start GET {first}")
    );
    let redirect = events
        .iter()
        .position(|e| *e == format!("request_redirect {first} 302"))
        .expect("a request_redirect event");
    let sent: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.starts_with("headers_sent"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(sent.len(), 2, "{events:?}");
    assert!(sent[0] < redirect && redirect < sent[1], "{events:?}");
    assert!(events[sent[1]].starts_with(&format!("headers_sent GET {last}")));
    assert!(events.contains(&"reuseconn".to_owned()), "{events:?}");
    assert!(
        events.last().unwrap().starts_with("request_end GET"),
        "{events:?}"
    );
    assert!(events.last().unwrap().ends_with(" 200"), "{events:?}");
}

#[tokio::test]
async fn trace_hooks_of_a_refused_connection() {
    let rec = Recorder::default();
    let session = traced(&rec).build().unwrap();
    let url = refused_url("/");
    let err = session.get(&url).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    let events = rec.0.take();
    assert_eq!(events.first().unwrap(), &format!("request_start GET {url}"));
    assert_eq!(
        events.last().unwrap(),
        &format!("request_exception {url} Connect")
    );
    assert!(events.contains(&"create_start".to_owned()));
    assert!(!events.contains(&"create_end".to_owned()));
    assert!(!events.iter().any(|e| e.starts_with("headers_sent")));
}

#[tokio::test]
async fn trace_hooks_of_a_queued_request() {
    let (arrived_tx, mut arrived_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = release.clone();
    let app = Application::new()
        .get("/hello", || async { HELLO })
        .get("/slow", move || {
            let arrived = arrived_tx.clone();
            let gate = gate.clone();
            async move {
                arrived.send(()).unwrap();
                gate.notified().await;
                "slow"
            }
        });
    let server = Server::start(app).await;
    let rec = Recorder::default();
    let session = traced(&rec).pool_limit(1).build().unwrap();

    let slow = tokio::spawn({
        let session = session.clone();
        let url = server.url("/slow");
        async move { session.get(&url).send().await?.text().await }
    });
    tokio::time::timeout(GUARD, arrived_rx.recv())
        .await
        .expect("the slow request arrives")
        .unwrap();
    let fast = tokio::spawn({
        let session = session.clone();
        let url = server.url("/hello");
        async move { session.get(&url).send().await?.text().await }
    });
    tokio::time::timeout(GUARD, async {
        while rec.0.count("queued_start") == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the second request queues");
    assert_eq!(rec.0.count("queued_end"), 0);
    release.notify_one();
    assert_eq!(slow.await.unwrap().unwrap(), "slow");
    assert_eq!(fast.await.unwrap().unwrap(), HELLO);
    for (event, n) in [
        ("queued_start", 1),
        ("queued_end", 1),
        ("create_start", 1),
        ("create_end", 1),
        ("reuseconn", 1),
        ("headers_sent", 2),
        ("request_end", 2),
    ] {
        assert_eq!(rec.0.count(event), n, "{event}: {:?}", rec.0.all());
    }
    let events = rec.0.all();
    let pos = |e: &str| events.iter().position(|x| x == e).unwrap();
    assert!(pos("queued_start") < pos("queued_end"));
    assert!(pos("queued_end") < pos("reuseconn"));
}

#[tokio::test]
async fn trace_hooks_of_sent_body_chunks() {
    let server = start().await;
    let rec = Recorder::default();
    let session = traced(&rec).build().unwrap();
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"abc")),
        Ok(Bytes::from_static(b"defgh")),
    ];
    let resp = session
        .post(&server.url("/echo"))
        .body(RequestBody::stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["body"], "abcdefgh");
    assert_eq!(v["headers"]["transfer-encoding"], "chunked");
    let sent: Vec<String> = rec
        .0
        .take()
        .into_iter()
        .filter(|e| e.starts_with("chunk_sent"))
        .collect();
    assert_eq!(sent, ["chunk_sent 3", "chunk_sent 5"]);

    let resp = session
        .post(&server.url("/echo"))
        .body("0123456789")
        .send()
        .await
        .unwrap();
    resp.consume().await.unwrap();
    assert_eq!(rec.0.count("chunk_sent"), 1);
    assert!(rec.0.all().contains(&"chunk_sent 10".to_owned()));
}

// ---- Retry policies ----

fn quick(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(attempts)
        .initial_backoff(Duration::from_millis(1))
        .jitter(false)
}

#[tokio::test]
async fn retries_transient_statuses_until_success() {
    let (app, hits) = flaky(2, 503, None);
    let server = Server::start(app).await;
    let session = ClientSession::builder().retry(quick(3)).build().unwrap();
    let resp = session.get(&server.url("/flaky")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_stop_after_the_attempts() {
    let (app, hits) = flaky(usize::MAX, 503, None);
    let server = Server::start(app).await;
    let session = ClientSession::builder().retry(quick(2)).build().unwrap();
    let resp = session.get(&server.url("/flaky")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.text().await.unwrap(), "try again");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // A request can switch retries off, or bring its own policy.
    let resp = session
        .get(&server.url("/flaky"))
        .retry(None)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let resp = session
        .get(&server.url("/flaky"))
        .retry(Some(quick(4)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(hits.load(Ordering::SeqCst), 7);
    // A status not in the list is not retried.
    let resp = session
        .get(&server.url("/flaky"))
        .retry(Some(quick(4).statuses(&[500])))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(hits.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (app, hits) = flaky(1, 503, Some("1"));
    let server = Server::start(app).await;
    let session = ClientSession::builder().retry(quick(2)).build().unwrap();
    let started = std::time::Instant::now();
    let resp = session.get(&server.url("/flaky")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn retry_after_is_capped_or_ignored_when_told() {
    let (app, hits) = flaky(2, 429, Some("3600"));
    let server = Server::start(app).await;
    let session = ClientSession::builder()
        .retry(quick(2).max_backoff(Duration::from_millis(5)))
        .timeout(ClientTimeout::default().total(GUARD))
        .build()
        .unwrap();
    let resp = session.get(&server.url("/flaky")).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    let resp = session
        .get(&server.url("/flaky"))
        .retry(Some(quick(2).honour_retry_after(false)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_retry_that_would_pass_the_total_timeout_is_not_made() {
    let (app, hits) = flaky(1, 503, Some("3600"));
    let server = Server::start(app).await;
    let session = ClientSession::builder()
        .retry(quick(3).max_backoff(Duration::from_secs(3600)))
        .timeout(ClientTimeout::default().total(Duration::from_secs(5)))
        .build()
        .unwrap();
    let resp = session.get(&server.url("/flaky")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn post_is_retried_only_when_allowed() {
    let (app, hits) = flaky(1, 503, None);
    let server = Server::start(app).await;
    let session = ClientSession::builder().retry(quick(3)).build().unwrap();
    let resp = session
        .post(&server.url("/flaky"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let resp = session
        .post(&server.url("/flaky"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let (app, hits) = flaky(1, 503, None);
    let server = Server::start(app).await;
    let resp = session
        .post(&server.url("/flaky"))
        .body("x")
        .retry(Some(quick(3).non_idempotent(true)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_streamed_body_is_not_retried() {
    let (app, hits) = flaky(1, 503, None);
    let server = Server::start(app).await;
    let session = ClientSession::builder().retry(quick(3)).build().unwrap();
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::from_static(b"x"))];
    let resp = session
        .put(&server.url("/flaky"))
        .body(RequestBody::stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported() {
    let tries = Arc::new(AtomicUsize::new(0));
    let counter = tries.clone();
    let session = ClientSession::builder()
        .retry(quick(3))
        .middleware(move |req: Request, next: Next| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { next.run(req).await }
        })
        .build()
        .unwrap();
    let url = refused_url("/");
    let err = session.get(&url).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    assert_eq!(err.url().unwrap().as_str(), url);
    assert_eq!(tries.load(Ordering::SeqCst), 3);

    let err = session
        .get(&url)
        .retry(Some(quick(3).on_connect_errors(false)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(tries.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn request_extensions_reach_every_hop_and_try() {
    let (app, _hits) = flaky(1, 503, None);
    let server = Server::start(app).await;
    let events = Events::default();
    let seen = events.clone();
    let session = ClientSession::builder()
        .retry(quick(2))
        .middleware(move |req: Request, next: Next| {
            let tag = req.extensions().get::<Tag>().cloned();
            seen.push(format!("{} {tag:?}", req.url().path()));
            async move { next.run(req).await }
        })
        .build()
        .unwrap();
    let resp = session
        .get(&server.url("/redirect"))
        .extension(Tag("t"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = session
        .get(&server.url("/flaky"))
        .extension(Tag("t"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        events.take(),
        [
            "/redirect Some(Tag(\"t\"))",
            "/hello Some(Tag(\"t\"))",
            "/flaky Some(Tag(\"t\"))",
            "/flaky Some(Tag(\"t\"))",
        ]
    );
}
