//! End-to-end lifecycle tests: `cleanup_ctx`, `on_startup`, `on_shutdown` and
//! `on_cleanup` run in aiohttp's order, failures stop the startup but never the
//! cleanup, and hooks can add application state for the handlers.

mod support {
    pub(crate) mod app;
}

use std::sync::Arc;
use std::time::Duration;

use aiox_web::test::TestClient;
use aiox_web::{AppContext, Application, BoxError, BoxFuture, ErrorKind, ServerConfig, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};

use support::app::{Events, parse_response};

type HookResult = Result<(), BoxError>;

/// A hook that records `name` and succeeds.
fn hook(
    events: &Events,
    name: &'static str,
) -> impl Fn(AppContext) -> BoxFuture<HookResult> + Send + Sync + 'static {
    let events = events.clone();
    move |_ctx| {
        let events = events.clone();
        Box::pin(async move {
            events.push(name);
            Ok(())
        })
    }
}

/// A hook that records `name` and fails with `"{name} failed"`.
fn failing_hook(
    events: &Events,
    name: &'static str,
) -> impl Fn(AppContext) -> BoxFuture<HookResult> + Send + Sync + 'static {
    let events = events.clone();
    move |_ctx| {
        let events = events.clone();
        Box::pin(async move {
            events.push(name);
            Err(format!("{name} failed").into())
        })
    }
}

type CtxResult = Result<BoxFuture<HookResult>, BoxError>;

/// A cleanup context recording `ctx-{name}-enter` and `ctx-{name}-exit`; its setup
/// fails if `fail_enter`, its teardown if `fail_exit`.
fn context(
    events: &Events,
    name: &'static str,
    fail_enter: bool,
    fail_exit: bool,
) -> impl Fn(AppContext) -> BoxFuture<CtxResult> + Send + Sync + 'static {
    let events = events.clone();
    move |_ctx| {
        let events = events.clone();
        Box::pin(async move {
            events.push(format!("ctx-{name}-enter"));
            if fail_enter {
                return Err(format!("ctx-{name} enter failed").into());
            }
            let teardown: BoxFuture<HookResult> = Box::pin(async move {
                events.push(format!("ctx-{name}-exit"));
                if fail_exit {
                    return Err(format!("ctx-{name} exit failed").into());
                }
                Ok(())
            });
            Ok(teardown)
        })
    }
}

fn ok_context(
    events: &Events,
    name: &'static str,
) -> impl Fn(AppContext) -> BoxFuture<CtxResult> + Send + Sync + 'static {
    context(events, name, false, false)
}

#[tokio::test]
async fn hooks_run_in_aiohttp_order() {
    let events = Events::new();
    let handler_events = events.clone();
    // Registered interleaved on purpose: the order comes from the phase, not from
    // registration across kinds.
    let app = Application::new()
        .on_startup(hook(&events, "startup-1"))
        .on_cleanup(hook(&events, "cleanup-1"))
        .cleanup_ctx(ok_context(&events, "a"))
        .on_shutdown(hook(&events, "shutdown-1"))
        .cleanup_ctx(ok_context(&events, "b"))
        .on_startup(hook(&events, "startup-2"))
        .on_cleanup(hook(&events, "cleanup-2"))
        .on_shutdown(hook(&events, "shutdown-2"))
        .cleanup_ctx(ok_context(&events, "c"))
        .get("/", move || {
            let events = handler_events.clone();
            async move {
                events.push("request");
                "served"
            }
        });

    let client = TestClient::new(app).await.unwrap();
    assert_eq!(
        events.take(),
        [
            "ctx-a-enter",
            "ctx-b-enter",
            "ctx-c-enter",
            "startup-1",
            "startup-2"
        ]
    );

    let res = client.get("/").send().await.unwrap();
    assert_eq!(res.text(), "served");
    assert_eq!(events.take(), ["request"]);

    client.close().await.unwrap();
    assert_eq!(
        events.take(),
        [
            "shutdown-1",
            "shutdown-2",
            "ctx-c-exit",
            "ctx-b-exit",
            "ctx-a-exit",
            "cleanup-1",
            "cleanup-2",
        ]
    );
}

#[tokio::test]
async fn failing_startup_hook_stops_startup_and_cleans_up() {
    let events = Events::new();
    let app = Application::new()
        .cleanup_ctx(ok_context(&events, "a"))
        .cleanup_ctx(ok_context(&events, "b"))
        .on_startup(hook(&events, "startup-1"))
        .on_startup(failing_hook(&events, "startup-2"))
        .on_startup(hook(&events, "startup-3"))
        .on_shutdown(hook(&events, "shutdown"))
        .on_cleanup(hook(&events, "cleanup-1"))
        .on_cleanup(hook(&events, "cleanup-2"))
        .get("/", || async { "never served" });

    let err = TestClient::new(app).await.expect_err("startup must fail");
    assert_eq!(err.kind(), ErrorKind::Startup);
    assert!(err.to_string().contains("startup-2 failed"), "{err}");
    let source = std::error::Error::source(&err).expect("the hook's error is the source");
    assert_eq!(source.to_string(), "startup-2 failed");

    // Nothing after the failing hook ran; the entered contexts were exited in
    // reverse and the cleanup hooks ran. The app never served, so no shutdown.
    assert_eq!(
        events.take(),
        [
            "ctx-a-enter",
            "ctx-b-enter",
            "startup-1",
            "startup-2",
            "ctx-b-exit",
            "ctx-a-exit",
            "cleanup-1",
            "cleanup-2",
        ]
    );
}

#[tokio::test]
async fn failing_cleanup_context_setup_exits_only_the_entered_ones() {
    let events = Events::new();
    let app = Application::new()
        .cleanup_ctx(ok_context(&events, "a"))
        .cleanup_ctx(context(&events, "b", true, false))
        .cleanup_ctx(ok_context(&events, "c"))
        .on_startup(hook(&events, "startup"))
        .on_cleanup(hook(&events, "cleanup"));

    let err = TestClient::new(app).await.expect_err("startup must fail");
    assert_eq!(err.kind(), ErrorKind::Startup);
    assert!(err.to_string().contains("ctx-b enter failed"), "{err}");
    assert_eq!(
        events.take(),
        ["ctx-a-enter", "ctx-b-enter", "ctx-a-exit", "cleanup"]
    );
}

#[tokio::test]
async fn failing_cleanup_hooks_do_not_stop_the_others() {
    let events = Events::new();
    let app = Application::new()
        .cleanup_ctx(ok_context(&events, "a"))
        .cleanup_ctx(context(&events, "b", false, true))
        .cleanup_ctx(ok_context(&events, "c"))
        .on_cleanup(failing_hook(&events, "cleanup-1"))
        .on_cleanup(hook(&events, "cleanup-2"))
        .on_cleanup(failing_hook(&events, "cleanup-3"))
        .on_cleanup(hook(&events, "cleanup-4"));

    let client = TestClient::new(app).await.unwrap();
    assert_eq!(events.take(), ["ctx-a-enter", "ctx-b-enter", "ctx-c-enter"]);

    let err = client
        .close()
        .await
        .expect_err("cleanup failures are reported");
    assert_eq!(err.kind(), ErrorKind::Cleanup);
    let message = err.to_string();
    for failure in ["ctx-b exit failed", "cleanup-1 failed", "cleanup-3 failed"] {
        assert!(
            message.contains(failure),
            "{failure} missing from {message}"
        );
    }
    assert_eq!(
        events.take(),
        [
            "ctx-c-exit",
            "ctx-b-exit",
            "ctx-a-exit",
            "cleanup-1",
            "cleanup-2",
            "cleanup-3",
            "cleanup-4",
        ]
    );
}

#[tokio::test]
async fn failing_shutdown_hook_does_not_stop_shutdown_or_cleanup() {
    let events = Events::new();
    let app = Application::new()
        .cleanup_ctx(ok_context(&events, "a"))
        .on_shutdown(failing_hook(&events, "shutdown-1"))
        .on_shutdown(hook(&events, "shutdown-2"))
        .on_cleanup(hook(&events, "cleanup"));

    let client = TestClient::new(app).await.unwrap();
    events.take();
    let err = client
        .close()
        .await
        .expect_err("shutdown failure is reported");
    assert_eq!(err.kind(), ErrorKind::Cleanup);
    assert!(err.to_string().contains("shutdown-1 failed"), "{err}");
    assert_eq!(
        events.take(),
        ["shutdown-1", "shutdown-2", "ctx-a-exit", "cleanup"]
    );

    // Shutdown and cleanup failures together are still one Cleanup error, and
    // every hook still runs.
    let app = Application::new()
        .on_shutdown(failing_hook(&events, "shutdown"))
        .on_cleanup(failing_hook(&events, "cleanup-1"))
        .on_cleanup(hook(&events, "cleanup-2"));
    let client = TestClient::new(app).await.unwrap();
    let err = client.close().await.expect_err("failures are reported");
    assert_eq!(err.kind(), ErrorKind::Cleanup);
    assert_eq!(events.take(), ["shutdown", "cleanup-1", "cleanup-2"]);
}

#[derive(Clone)]
struct DbPool(Arc<String>);

#[derive(Clone)]
struct Config {
    greeting: &'static str,
}

#[derive(Clone)]
struct FromContext(u32);

#[derive(Clone)]
struct TooLate;

#[tokio::test]
async fn startup_hooks_can_add_state_for_handlers() {
    let events = Events::new();
    let shutdown_events = events.clone();
    let app = Application::new()
        .state(Config { greeting: "hi" })
        .cleanup_ctx(|ctx: AppContext| async move {
            assert!(ctx.insert_state(FromContext(7)));
            Ok(async { Ok(()) })
        })
        .on_startup(|ctx: AppContext| async move {
            // Hooks see the state registered up front and what earlier hooks added.
            let config = ctx.state::<Config>().ok_or("no config")?;
            let n = ctx.state::<FromContext>().ok_or("no context state")?.0;
            let pool = DbPool(Arc::new(format!("{} pool {n}", config.greeting)));
            if !ctx.insert_state(pool) {
                return Err("state was frozen during startup".into());
            }
            Ok(())
        })
        .on_shutdown(move |ctx: AppContext| {
            let events = shutdown_events.clone();
            async move {
                // After the app started serving, the state is frozen.
                events.push(format!(
                    "late insert accepted: {}",
                    ctx.insert_state(TooLate)
                ));
                events.push(format!(
                    "pool still there: {}",
                    ctx.state::<DbPool>().is_some()
                ));
                Ok(())
            }
        })
        .get(
            "/pool",
            |State(pool): State<DbPool>, State(n): State<FromContext>| async move {
                format!("{} / {}", pool.0, n.0)
            },
        );

    let client = TestClient::new(app).await.unwrap();
    let res = client.get("/pool").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "hi pool 7 / 7");
    client.close().await.unwrap();
    assert_eq!(
        events.take(),
        ["late insert accepted: false", "pool still there: true"]
    );
}

#[tokio::test]
async fn shutdown_hooks_run_before_in_flight_requests_are_drained() {
    let events = Events::new();
    let release = Arc::new(Notify::new());
    let (started_tx, mut started_rx) = mpsc::unbounded_channel::<()>();

    let handler_events = events.clone();
    let handler_release = release.clone();
    let hook_events = events.clone();
    let hook_release = release.clone();
    let app = Application::new()
        .get("/slow", move || {
            let events = handler_events.clone();
            let release = handler_release.clone();
            let started = started_tx.clone();
            async move {
                events.push("handler-start");
                let released = release.notified();
                let _ = started.send(());
                released.await;
                events.push("handler-end");
                "released by the shutdown hook"
            }
        })
        .on_shutdown(move |_ctx: AppContext| {
            let events = hook_events.clone();
            let release = hook_release.clone();
            async move {
                events.push("shutdown");
                // `notify_one` stores a permit, so this works even if the handler
                // has not started waiting yet.
                release.notify_one();
                Ok(())
            }
        })
        .on_cleanup(hook(&events, "cleanup"));

    let config = ServerConfig::default().shutdown_grace(Duration::from_secs(10));
    let client = TestClient::with_config(app, config).await.unwrap();
    let addr = client.addr();
    let request = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        out
    });
    started_rx.recv().await.expect("the handler started");

    client.close().await.unwrap();
    let res = parse_response(&request.await.unwrap());
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), "released by the shutdown hook");
    assert_eq!(
        events.take(),
        ["handler-start", "shutdown", "handler-end", "cleanup"]
    );
}

#[tokio::test]
async fn run_app_cleans_up_when_its_site_cannot_bind() {
    // A port that is already in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();

    let events = Events::new();
    let app = Application::new()
        .cleanup_ctx(ok_context(&events, "a"))
        .on_startup(hook(&events, "startup"))
        .on_shutdown(hook(&events, "shutdown"))
        .on_cleanup(hook(&events, "cleanup"))
        .get("/", || async { "never served" });
    let err = aiox_web::run_app(app, &addr.to_string())
        .await
        .expect_err("the address is in use");
    assert_eq!(err.kind(), ErrorKind::Io);
    // As aiohttp's run_app: the runner is cleaned up whatever failed after startup.
    assert_eq!(
        events.take(),
        [
            "ctx-a-enter",
            "startup",
            "shutdown",
            "ctx-a-exit",
            "cleanup"
        ]
    );
    drop(taken);
}
