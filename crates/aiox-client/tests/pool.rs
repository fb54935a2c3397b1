//! The connection pool end to end: total and per-host limits under load, when a
//! connection goes back to the pool (bodiless responses at once, read bodies at
//! their end, dropped ones never), `force_close`, `pool_stats`, `close_idle`, and a
//! pooled connection the server closed (HARDENING case 95).

mod support;

use std::sync::Arc;
use std::time::Duration;

use aiox_client::{ClientSession, ErrorKind, StatusCode};
use aiox_web::{Application, Request, Response};
use support::{ConnCounter, RawServer, Server, read_request};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

/// An app counting its connections: `/` answers "ok", `/big` 64 KiB, `/head-only`
/// is for HEAD, `/204` and `/304` have no body.
fn counted_app(counter: &ConnCounter) -> Application {
    let c = counter.clone();
    let app = Application::new().get("/", move |req: Request| {
        let c = c.clone();
        async move {
            c.record(&req);
            tokio::task::yield_now().await;
            "ok"
        }
    });
    let c = counter.clone();
    let app = app.get("/big", move |req: Request| {
        let c = c.clone();
        async move {
            c.record(&req);
            vec![b'b'; 64 * 1024]
        }
    });
    let c = counter.clone();
    let app = app.get("/204", move |req: Request| {
        let c = c.clone();
        async move {
            c.record(&req);
            StatusCode::NO_CONTENT
        }
    });
    let c = counter.clone();
    app.get("/304", move |req: Request| {
        let c = c.clone();
        async move {
            c.record(&req);
            StatusCode::NOT_MODIFIED
        }
    })
}

/// Polls `cond` every few milliseconds for at most 5 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_requests_share_eight_connections() {
    let counter = ConnCounter::default();
    let server = Server::start(counted_app(&counter)).await;
    let session = ClientSession::builder().pool_limit(8).build().unwrap();
    let mut tasks = JoinSet::new();
    for _ in 0..1000 {
        let session = session.clone();
        let url = server.url("/");
        tasks.spawn(async move { session.get(&url).send().await?.text().await });
    }
    let mut ok = 0;
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap(), "ok");
        ok += 1;
    }
    assert_eq!(ok, 1000);
    assert_eq!(
        counter.requests.load(std::sync::atomic::Ordering::SeqCst),
        1000
    );
    assert!(
        counter.connections() <= 8,
        "{} connections",
        counter.connections()
    );
    let stats = session.pool_stats();
    assert!(stats.open <= 8 && stats.waiting == 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_limit_per_host_caps_each_origin() {
    let (a, b) = (ConnCounter::default(), ConnCounter::default());
    let server_a = Server::start(counted_app(&a)).await;
    let server_b = Server::start(counted_app(&b)).await;
    let session = ClientSession::builder()
        .pool_limit_per_host(2)
        .build()
        .unwrap();
    let mut tasks = JoinSet::new();
    for i in 0..200 {
        let session = session.clone();
        let url = if i % 2 == 0 {
            server_a.url("/")
        } else {
            server_b.url("/")
        };
        tasks.spawn(async move { session.get(&url).send().await?.text().await });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap(), "ok");
    }
    assert!(a.connections() <= 2, "{} connections", a.connections());
    assert!(b.connections() <= 2, "{} connections", b.connections());
    let stats = session.pool_stats();
    assert_eq!(stats.hosts.len(), 2, "{stats:?}");
    assert!(
        stats.hosts.iter().all(|h| h.idle <= 2 && h.in_use == 0),
        "{stats:?}"
    );
}

#[tokio::test]
async fn bodiless_responses_release_the_connection_at_once() {
    for (method, path) in [("HEAD", "/"), ("GET", "/204"), ("GET", "/304")] {
        let counter = ConnCounter::default();
        let server = Server::start(counted_app(&counter)).await;
        let session = ClientSession::new();
        let method = aiox_client::Method::from_bytes(method.as_bytes()).unwrap();
        // Held, body never read.
        let first = session
            .request(method.clone(), &server.url(path))
            .send()
            .await
            .unwrap();
        assert!(first.status().is_success() || first.status() == 304);
        let stats = session.pool_stats();
        assert_eq!(
            (stats.open, stats.hosts[0].idle),
            (1, 1),
            "{method} {path}: {stats:?}"
        );
        let second = session.get(&server.url("/")).send().await.unwrap();
        assert_eq!(second.text().await.unwrap(), "ok");
        assert_eq!(session.pool_stats().open, 1, "{method} {path}");
        assert_eq!(counter.connections(), 1, "{method} {path}");
        drop(first);
    }
}

#[tokio::test]
async fn a_dropped_response_is_not_reused_and_a_read_one_is() {
    let counter = ConnCounter::default();
    let server = Server::start(counted_app(&counter)).await;
    let session = ClientSession::new();

    let resp = session.get(&server.url("/big")).send().await.unwrap();
    assert_eq!(session.pool_stats().hosts[0].in_use, 1);
    drop(resp);
    let stats = session.pool_stats();
    assert_eq!((stats.open, stats.hosts.len()), (0, 0), "{stats:?}");
    let body = session
        .get(&server.url("/big"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 64 * 1024);
    assert_eq!(counter.connections(), 2);

    // Read to the end: reused.
    let body = session
        .get(&server.url("/big"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 64 * 1024);
    assert_eq!(counter.connections(), 2);

    // Partly read, then dropped: not reused.
    let mut resp = session.get(&server.url("/big")).send().await.unwrap();
    assert!(resp.chunk().await.unwrap().is_some());
    drop(resp);
    session
        .get(&server.url("/"))
        .send()
        .await
        .unwrap()
        .consume()
        .await
        .unwrap();
    assert_eq!(counter.connections(), 3);
    assert_eq!(session.pool_stats().open, 1);
}

#[tokio::test]
async fn force_close_opens_a_connection_per_request() {
    let counter = ConnCounter::default();
    let server = Server::start(counted_app(&counter)).await;
    let session = ClientSession::builder().force_close(true).build().unwrap();
    for _ in 0..3 {
        let text = session
            .get(&server.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(text, "ok");
        assert_eq!(session.pool_stats().open, 0);
    }
    assert_eq!(counter.connections(), 3);
}

#[tokio::test]
async fn pool_stats_show_idle_in_use_and_waiting_per_host() {
    let gate = Arc::new(Semaphore::new(0));
    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    let g = gate.clone();
    let app = Application::new().get("/slow", move || {
        let (gate, entered) = (g.clone(), entered_tx.clone());
        async move {
            let _ = entered.send(());
            if let Ok(permit) = gate.acquire().await {
                permit.forget();
            }
            Response::text("done")
        }
    });
    let server = Server::start(app).await;
    let session = ClientSession::builder().pool_limit(1).build().unwrap();
    let origin = format!("http://{}", server.addr());
    assert_eq!(session.pool_stats().open, 0);

    let first = tokio::spawn({
        let (session, url) = (session.clone(), server.url("/slow"));
        async move { session.get(&url).send().await?.text().await }
    });
    entered.recv().await.unwrap();
    let stats = session.pool_stats();
    assert_eq!((stats.open, stats.waiting), (1, 0), "{stats:?}");
    let host = &stats.hosts[0];
    assert_eq!(host.origin, origin);
    assert_eq!(
        (host.idle, host.in_use, host.waiting),
        (0, 1, 0),
        "{stats:?}"
    );

    let second = tokio::spawn({
        let (session, url) = (session.clone(), server.url("/slow"));
        async move { session.get(&url).send().await?.text().await }
    });
    eventually("the second request to queue", || {
        session.pool_stats().waiting == 1
    })
    .await;
    let stats = session.pool_stats();
    assert_eq!(stats.hosts[0].waiting, 1, "{stats:?}");
    assert_eq!(stats.hosts[0].in_use, 1, "{stats:?}");

    gate.add_permits(2);
    assert_eq!(first.await.unwrap().unwrap(), "done");
    assert_eq!(second.await.unwrap().unwrap(), "done");
    let stats = session.pool_stats();
    assert_eq!((stats.open, stats.waiting), (1, 0), "{stats:?}");
    let host = &stats.hosts[0];
    assert_eq!(
        (host.idle, host.in_use, host.waiting),
        (1, 0, 0),
        "{stats:?}"
    );
}

#[tokio::test]
async fn close_idle_closes_the_idle_connections() {
    let counter = ConnCounter::default();
    let server = Server::start(counted_app(&counter)).await;
    let session = ClientSession::new();
    session
        .get(&server.url("/"))
        .send()
        .await
        .unwrap()
        .consume()
        .await
        .unwrap();
    assert_eq!(session.pool_stats().open, 1);
    session.close_idle();
    assert_eq!(session.pool_stats().open, 0);
    session
        .get(&server.url("/"))
        .send()
        .await
        .unwrap()
        .consume()
        .await
        .unwrap();
    assert_eq!(counter.connections(), 2);
    assert_eq!(session.pool_stats().open, 1);
}

/// `200 OK` with `body`, kept alive.
async fn answer(stream: &mut tokio::net::TcpStream, body: &str) {
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
}

/// A server whose first connection answers one request, then reads the next one and
/// closes without answering: the race of HARDENING case 95 made deterministic. Later
/// connections answer every request with "fresh".
async fn closing_server() -> RawServer {
    RawServer::start(|mut stream, n| async move {
        if n == 0 {
            if read_request(&mut stream).await.is_some() {
                answer(&mut stream, "first").await;
                // Read the whole next request, so the close is a clean FIN.
                let _ = read_request(&mut stream).await;
            }
            return;
        }
        while read_request(&mut stream).await.is_some() {
            answer(&mut stream, "fresh").await;
        }
    })
    .await
}

#[tokio::test]
async fn an_idempotent_request_on_a_closed_pooled_connection_is_sent_again() {
    let server = closing_server().await;
    let session = ClientSession::new();
    let first = session.get(&server.url("/")).send().await.unwrap();
    assert_eq!(first.text().await.unwrap(), "first");
    let second = session.get(&server.url("/again")).send().await.unwrap();
    assert_eq!(second.text().await.unwrap(), "fresh");
    assert_eq!(server.accepted(), 2);

    // PUT and DELETE are idempotent too.
    let server = closing_server().await;
    session
        .get(&server.url("/"))
        .send()
        .await
        .unwrap()
        .consume()
        .await
        .unwrap();
    let resp = session
        .put(&server.url("/"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "fresh");
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn a_post_on_a_closed_pooled_connection_is_not_sent_again() {
    let server = closing_server().await;
    let session = ClientSession::new();
    let first = session.get(&server.url("/")).send().await.unwrap();
    assert_eq!(first.text().await.unwrap(), "first");
    let err = session
        .post(&server.url("/order"))
        .body("buy one")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Request, "{err:?}");
    assert_eq!(err.method(), Some(&aiox_client::Method::POST));
    assert_eq!(server.accepted(), 1, "the POST was sent again");
    // The session recovers with a new connection.
    let resp = session
        .post(&server.url("/order"))
        .body("buy one")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "fresh");
}

#[tokio::test]
async fn a_server_closing_after_a_keep_alive_answer_does_not_break_the_next_get() {
    // Answers once without `Connection: close`, then closes the socket at once.
    let server = RawServer::start(|mut stream, _| async move {
        if read_request(&mut stream).await.is_some() {
            answer(&mut stream, "once").await;
        }
    })
    .await;
    let session = ClientSession::new();
    for _ in 0..3 {
        let resp = session.get(&server.url("/")).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "once");
    }
    assert_eq!(server.accepted(), 3);
}

#[tokio::test]
async fn a_pooled_connection_reset_with_the_request_unread_is_retried_for_a_get() {
    // The first connection answers once, then closes as soon as the next request
    // arrives, without reading it: the kernel answers with a reset.
    let server = RawServer::start(|mut stream, n| async move {
        if n == 0 {
            if read_request(&mut stream).await.is_some() {
                answer(&mut stream, "first").await;
                let _ = stream.readable().await;
            }
            return;
        }
        while read_request(&mut stream).await.is_some() {
            answer(&mut stream, "fresh").await;
        }
    })
    .await;
    let session = ClientSession::new();
    let first = session.get(&server.url("/")).send().await.unwrap();
    assert_eq!(first.text().await.unwrap(), "first");
    let second = session.get(&server.url("/again")).send().await.unwrap();
    assert_eq!(second.text().await.unwrap(), "fresh");
    assert_eq!(server.accepted(), 2);
}
