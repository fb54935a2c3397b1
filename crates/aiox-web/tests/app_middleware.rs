//! End-to-end middleware tests: aiohttp's onion order, short-circuiting, what
//! middleware sees of the matched route, and that it wraps every answer (404, 405,
//! OPTIONS, 400 and rejections included).

mod support {
    pub(crate) mod app;
}

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aiox_web::http::header::{HeaderName, WWW_AUTHENTICATE};
use aiox_web::test::TestClient;
use aiox_web::{
    Application, Bytes, HeaderValue, HttpError, Json, Method, Next, Request, Response, Result,
};

use support::app::{Events, parse_response};

/// A middleware that records `{name}-in` before and `{name}-out` after the rest of
/// the chain.
fn recorder(
    events: &Events,
    name: &'static str,
) -> impl Fn(Request, Next) -> aiox_web::BoxFuture<Result<Response>> + Send + Sync + 'static {
    let events = events.clone();
    move |req: Request, next: Next| {
        let events = events.clone();
        Box::pin(async move {
            events.push(format!("{name}-in"));
            let res = next.run(req).await;
            events.push(format!("{name}-out"));
            Ok(res)
        })
    }
}

/// A middleware that marks every response with `x-mw: <route pattern or ->` and
/// `x-status-seen: <status>`.
async fn marker(req: Request, next: Next) -> Result<Response> {
    let route = req.match_info().route().unwrap_or("-").to_owned();
    let mut res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let headers = res.headers_mut();
    headers.insert(
        HeaderName::from_static("x-mw"),
        HeaderValue::from_str(&route).unwrap(),
    );
    headers.insert(
        HeaderName::from_static("x-status-seen"),
        HeaderValue::from_str(&status).unwrap(),
    );
    Ok(res)
}

#[tokio::test]
async fn middleware_runs_in_onion_order() {
    let events = Events::new();
    let handler_events = events.clone();
    let app = Application::new()
        .middleware(recorder(&events, "a"))
        .middleware(recorder(&events, "b"))
        .get("/", move || {
            let events = handler_events.clone();
            async move {
                events.push("handler");
                "ok"
            }
        });
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "ok");
    assert_eq!(events.take(), ["a-in", "b-in", "handler", "b-out", "a-out"]);

    // Same order for a second request (nothing is cached per chain).
    client.get("/").send().await.unwrap();
    assert_eq!(events.take(), ["a-in", "b-in", "handler", "b-out", "a-out"]);
    client.close().await.unwrap();
}

#[tokio::test]
async fn outer_middleware_sees_what_inner_middleware_did() {
    async fn outer(req: Request, next: Next) -> Result<Response> {
        let mut res = next.run(req).await;
        let inner = res
            .headers()
            .get("x-trail")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        res.headers_mut().insert(
            "x-trail",
            HeaderValue::from_str(&format!("{inner},outer")).unwrap(),
        );
        Ok(res)
    }
    async fn inner(mut req: Request, next: Next) -> Result<Response> {
        // Requests flow inwards: the handler sees what the middleware set.
        req.headers_mut()
            .insert("x-from-inner", HeaderValue::from_static("yes"));
        let mut res = next.run(req).await;
        res.headers_mut()
            .insert("x-trail", HeaderValue::from_static("inner"));
        Ok(res)
    }
    let app = Application::new()
        .middleware(outer)
        .middleware(inner)
        .get("/", |req: Request| async move {
            req.header("x-from-inner").unwrap_or("no").to_owned()
        });
    let client = TestClient::new(app).await.unwrap();
    let res = client.get("/").send().await.unwrap();
    assert_eq!(res.text(), "yes");
    assert_eq!(res.header("x-trail"), Some("inner,outer"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn middleware_can_short_circuit() {
    let calls = Arc::new(AtomicUsize::new(0));
    let events = Events::new();
    let inner_events = events.clone();
    let handler_calls = calls.clone();
    async fn require_token(req: Request, next: Next) -> Result<Response> {
        if req.header("x-token") != Some("secret") {
            return Ok(Response::text("no entry\n")
                .with_status(aiox_web::StatusCode::UNAUTHORIZED)
                .with_header(WWW_AUTHENTICATE, HeaderValue::from_static("Token")));
        }
        Ok(next.run(req).await)
    }
    let app = Application::new()
        .middleware(require_token)
        .middleware(move |req: Request, next: Next| {
            let events = inner_events.clone();
            async move {
                events.push("inner");
                next.run(req).await
            }
        })
        .post("/guarded", move |body: Bytes| {
            let calls = handler_calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                format!("got {} bytes", body.len())
            }
        });
    let client = TestClient::new(app).await.unwrap();

    let res = client
        .post("/guarded")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.text(), "no entry\n");
    assert_eq!(res.header("www-authenticate"), Some("Token"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(events.take().is_empty(), "the inner middleware ran");

    let res = client
        .post("/guarded")
        .header("x-token", "secret")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "got 7 bytes");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(events.take(), ["inner"]);
    client.close().await.unwrap();
}

#[tokio::test]
async fn middleware_sees_the_matched_route() {
    async fn route_info(req: Request, next: Next) -> Result<Response> {
        let info = req.match_info();
        let params: Vec<String> = info.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let summary = format!(
            "route={} params={}",
            info.route().unwrap_or("-"),
            params.join(",")
        );
        let mut res = next.run(req).await;
        res.headers_mut()
            .insert("x-match", HeaderValue::from_str(&summary).unwrap());
        Ok(res)
    }
    let app = Application::new()
        .middleware(route_info)
        .get(r"/users/{id:\d+}/posts/{slug}", || async { "post" })
        .get("/static/{path:.+}", || async { "file" })
        .get("/plain", || async { "plain" });
    let client = TestClient::new(app).await.unwrap();

    let res = client
        .get("/users/42/posts/hello%20world")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.header("x-match"),
        Some(r"route=/users/{id:\d+}/posts/{slug} params=id=42,slug=hello world")
    );

    let res = client.get("/static/a/b.css").send().await.unwrap();
    assert_eq!(
        res.header("x-match"),
        Some("route=/static/{path:.+} params=path=a/b.css")
    );

    let res = client.get("/plain").send().await.unwrap();
    assert_eq!(res.header("x-match"), Some("route=/plain params="));

    let res = client.get("/nowhere").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.header("x-match"), Some("route=- params="));
    client.close().await.unwrap();
}

#[tokio::test]
async fn middleware_wraps_404_405_options_400_and_rejections() {
    let app = Application::new()
        .middleware(marker)
        .get("/items", || async { "list" })
        .post("/json", |Json(v): Json<serde_json::Value>| async move {
            Json(v)
        })
        .get("/fail", || async {
            Err::<String, _>(HttpError::conflict().with_message("taken"))
        });
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/items").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("x-mw"), Some("/items"));
    assert_eq!(res.header("x-status-seen"), Some("200"));

    let res = client.get("/missing").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.header("x-mw"), Some("-"));
    assert_eq!(res.header("x-status-seen"), Some("404"));

    let res = client.delete("/items").send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.header("allow"), Some("GET, HEAD, OPTIONS"));
    assert_eq!(res.header("x-mw"), Some("/items"));
    assert_eq!(res.header("x-status-seen"), Some("405"));

    let res = client
        .request(Method::OPTIONS, "/items")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.header("x-status-seen"), Some("204"));

    let res = client.head("/items").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("x-mw"), Some("/items"));

    // Extractor rejections and handler errors are responses by the time the
    // middleware sees them.
    let res = client
        .post("/json")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert_eq!(res.header("x-status-seen"), Some("415"));

    let res = client.get("/fail").send().await.unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(res.text(), "taken\n");
    assert_eq!(res.header("x-status-seen"), Some("409"));

    // A path that does not decode is answered by the router, through the middleware.
    let raw = client
        .raw(b"GET /a%zz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let res = parse_response(&raw);
    assert_eq!(res.status, 400);
    assert_eq!(res.header("x-status-seen"), Some("400"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn middleware_errors_become_their_status() {
    async fn gate(req: Request, next: Next) -> Result<Response> {
        match req.header("x-gate") {
            Some("forbid") => Err(HttpError::forbidden()),
            Some("login") => Err(HttpError::found("/login")),
            Some("teapot") => Err(HttpError::from_u16(418).with_message("short and stout")),
            Some("boom") => {
                let n: u8 = "300".parse()?;
                Ok(Response::text(n.to_string()))
            }
            _ => Ok(next.run(req).await),
        }
    }
    let app = Application::new()
        .middleware(marker)
        .middleware(gate)
        .get("/", || async { "through" });
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/").send().await.unwrap();
    assert_eq!(
        (res.status().as_u16(), res.text()),
        (200, "through".to_owned())
    );

    let res = client
        .get("/")
        .header("x-gate", "forbid")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.text(), "403 Forbidden\n");
    // The outer middleware sees the inner one's error as a response.
    assert_eq!(res.header("x-status-seen"), Some("403"));

    let res = client
        .get("/")
        .header("x-gate", "login")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.header("location"), Some("/login"));

    let res = client
        .get("/")
        .header("x-gate", "teapot")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 418);
    assert_eq!(res.text(), "short and stout\n");

    let res = client
        .get("/")
        .header("x-gate", "boom")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(res.text(), "500 Internal Server Error\n");
    assert_eq!(res.header("x-status-seen"), Some("500"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn middleware_can_read_the_body_and_the_handler_still_gets_it() {
    async fn body_size(mut req: Request, next: Next) -> Result<Response> {
        let len = req.bytes().await?.len();
        let mut res = next.run(req).await;
        res.headers_mut().insert(
            "x-body-len",
            HeaderValue::from_str(&len.to_string()).unwrap(),
        );
        Ok(res)
    }
    let app = Application::new()
        .middleware(body_size)
        .client_max_size(8)
        .post("/echo", |body: String| async move { body });
    let client = TestClient::new(app).await.unwrap();

    let res = client.post("/echo").body("hello").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "hello");
    assert_eq!(res.header("x-body-len"), Some("5"));

    // The limit applies to the middleware's read as well.
    let res = client
        .post("/echo")
        .body("0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.header("connection"), Some("close"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn middleware_can_replace_the_response() {
    async fn json_errors(req: Request, next: Next) -> Result<Response> {
        let res = next.run(req).await;
        if res.status().is_client_error() {
            let status = res.status();
            return Ok(
                Response::json(&serde_json::json!({ "error": status.as_u16() }))
                    .with_status(status),
            );
        }
        Ok(res)
    }
    let app = Application::new()
        .middleware(json_errors)
        .get("/", || async { "fine" });
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/nope").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.text(), r#"{"error":404}"#);

    let res = client.get("/").send().await.unwrap();
    assert_eq!(res.text(), "fine");
    client.close().await.unwrap();
}
