//! Lifecycle hooks: `on_startup`, `on_shutdown`, `on_cleanup` and cleanup contexts,
//! with aiohttp's ordering and failure semantics.
//!
//! - Startup: cleanup contexts are entered in registration order, then the
//!   `on_startup` hooks run in order. The first failure stops the startup, and the
//!   app is cleaned up (entered contexts exited, `on_cleanup` hooks run).
//! - Shutdown: after the sites stop accepting, every `on_shutdown` hook runs (before
//!   open connections are drained, so hooks can tell long-lived connections such as
//!   WebSockets to finish).
//! - Cleanup: after the connections closed, entered cleanup contexts are exited in
//!   reverse order, then the `on_cleanup` hooks run in order. Every one runs even if
//!   some fail; the failures are reported together.

use std::future::Future;
use std::sync::Arc;

use crate::app::AppShared;
use crate::error::{BoxError, Error, ErrorKind};
use crate::handler::BoxFuture;

type HookResult = Result<(), BoxError>;
pub(crate) type Hook = Box<dyn Fn(AppContext) -> BoxFuture<HookResult> + Send + Sync>;
pub(crate) type CtxHook =
    Box<dyn Fn(AppContext) -> BoxFuture<Result<BoxFuture<HookResult>, BoxError>> + Send + Sync>;

#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) on_startup: Vec<Hook>,
    pub(crate) on_shutdown: Vec<Hook>,
    pub(crate) on_cleanup: Vec<Hook>,
    pub(crate) cleanup_ctx: Vec<CtxHook>,
    /// Teardowns of the contexts entered, in entry order.
    pub(crate) entered: Vec<BoxFuture<HookResult>>,
}

pub(crate) fn boxed<F, Fut>(hook: F) -> Hook
where
    F: Fn(AppContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HookResult> + Send + 'static,
{
    Box::new(move |ctx| Box::pin(hook(ctx)))
}

pub(crate) fn boxed_ctx<F, Fut, T>(setup: F) -> CtxHook
where
    F: Fn(AppContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, BoxError>> + Send + 'static,
    T: Future<Output = HookResult> + Send + 'static,
{
    Box::new(move |ctx| {
        let fut = setup(ctx);
        Box::pin(async move {
            let teardown = fut.await?;
            Ok(Box::pin(teardown) as BoxFuture<HookResult>)
        })
    })
}

/// What lifecycle hooks receive: access to the application's state.
#[derive(Clone)]
pub struct AppContext {
    shared: Arc<AppShared>,
}

impl std::fmt::Debug for AppContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppContext").finish_non_exhaustive()
    }
}

impl AppContext {
    pub(crate) fn new(shared: Arc<AppShared>) -> Self {
        Self { shared }
    }

    /// Adds application state (a database pool made at startup, say). Possible until
    /// the first request is served; returns false, dropping `value`, after that.
    pub fn insert_state<T: Clone + Send + Sync + 'static>(&self, value: T) -> bool {
        self.shared.insert_state(value)
    }

    /// A clone of the state of type `T`.
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.shared.get_state::<T>()
    }
}

fn take_hooks<R>(shared: &AppShared, f: impl FnOnce(&mut Hooks) -> R) -> R {
    match shared.hooks.lock() {
        Ok(mut hooks) => f(&mut hooks),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

/// Enters the cleanup contexts, then runs the startup hooks; stops at the first failure.
pub(crate) async fn startup(shared: &Arc<AppShared>) -> Result<(), Error> {
    let ctx = AppContext::new(shared.clone());
    let setups = take_hooks(shared, |h| std::mem::take(&mut h.cleanup_ctx));
    let mut result = Ok(());
    for setup in &setups {
        match setup(ctx.clone()).await {
            Ok(teardown) => take_hooks(shared, |h| h.entered.push(teardown)),
            Err(err) => {
                result = Err(Error::new(
                    ErrorKind::Startup,
                    format!("a cleanup context failed to start: {err}"),
                    Some(err),
                ));
                break;
            }
        }
    }
    take_hooks(shared, |h| h.cleanup_ctx = setups);
    result?;
    let hooks = take_hooks(shared, |h| std::mem::take(&mut h.on_startup));
    let mut result = Ok(());
    for hook in &hooks {
        if let Err(err) = hook(ctx.clone()).await {
            result = Err(Error::new(
                ErrorKind::Startup,
                format!("a startup hook failed: {err}"),
                Some(err),
            ));
            break;
        }
    }
    take_hooks(shared, |h| h.on_startup = hooks);
    // Freeze the state before the first request.
    let _ = shared.state();
    result
}

/// Runs every shutdown hook; failures are logged and reported together.
pub(crate) async fn shutdown(shared: &Arc<AppShared>) -> Result<(), Error> {
    let ctx = AppContext::new(shared.clone());
    let mut failures = Vec::new();
    run_all(
        shared,
        &ctx,
        |h| &mut h.on_shutdown,
        "shutdown",
        &mut failures,
    )
    .await;
    report(failures, "shutdown")
}

/// Exits the entered cleanup contexts in reverse order, then runs every cleanup hook.
pub(crate) async fn cleanup(shared: &Arc<AppShared>) -> Result<(), Error> {
    let ctx = AppContext::new(shared.clone());
    let entered = take_hooks(shared, |h| std::mem::take(&mut h.entered));
    let mut failures = Vec::new();
    for teardown in entered.into_iter().rev() {
        if let Err(err) = teardown.await {
            tracing::error!(error = %err, "cleanup context failed to exit");
            failures.push(err.to_string());
        }
    }
    run_all(
        shared,
        &ctx,
        |h| &mut h.on_cleanup,
        "cleanup",
        &mut failures,
    )
    .await;
    report(failures, "cleanup")
}

/// Runs every hook of one list in order, collecting failures.
async fn run_all(
    shared: &Arc<AppShared>,
    ctx: &AppContext,
    list: fn(&mut Hooks) -> &mut Vec<Hook>,
    phase: &str,
    failures: &mut Vec<String>,
) {
    let hooks = take_hooks(shared, |h| std::mem::take(list(h)));
    for hook in &hooks {
        if let Err(err) = hook(ctx.clone()).await {
            tracing::error!(error = %err, "{phase} hook failed");
            failures.push(err.to_string());
        }
    }
    take_hooks(shared, |h| *list(h) = hooks);
}

fn report(failures: Vec<String>, phase: &str) -> Result<(), Error> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Cleanup,
            format!(
                "{} {phase} hook(s) failed: {}",
                failures.len(),
                failures.join("; ")
            ),
            None,
        ))
    }
}
