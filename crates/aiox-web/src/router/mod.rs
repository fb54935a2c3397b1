//! Routing: [`MethodRouter`] (the handlers of one path, by method) and the path
//! matcher [`PathTree`].
//!
//! Patterns are aiohttp's: static segments, `{name}` for one segment and
//! `{name:regex}` for a constrained one that may span segments (`{filename:.+}`).
//! A `GET` route also answers `HEAD`; `OPTIONS` is answered with `204` and `Allow`
//! unless routed; a known path with another method is `405` with `Allow`; an unknown
//! path `404`.

pub mod tree;

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderValue, Method};

use crate::handler::{DynHandler, Handler, erase};

pub use tree::{Params, PathMatch, PathTree, PatternError};

/// The handlers of one path, by method: built with [`get`], [`post`], ... and chained
/// with `.post(h)`, `.put(h)`, ...
///
/// ```
/// use aiox_web::{Application, router::{get, post}};
/// async fn list() -> &'static str { "[]" }
/// async fn create() -> &'static str { "created" }
/// let app = Application::new().route("/items", get(list).post(create));
/// ```
#[derive(Clone, Default)]
pub struct MethodRouter {
    pub(crate) methods: Vec<(Method, DynHandler)>,
    pub(crate) any: Option<DynHandler>,
}

impl std::fmt::Debug for MethodRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodRouter")
            .field(
                "methods",
                &self
                    .methods
                    .iter()
                    .map(|(m, _)| m.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("any", &self.any.is_some())
            .finish()
    }
}

macro_rules! method_fns {
    ($($(#[$doc:meta])* $name:ident => $method:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name<H: Handler<Args>, Args: 'static>(handler: H) -> MethodRouter {
                MethodRouter::new().on(Method::$method, handler)
            }
        )*
        impl MethodRouter {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name<H: Handler<Args>, Args: 'static>(self, handler: H) -> Self {
                    self.on(Method::$method, handler)
                }
            )*
        }
    };
}

method_fns! {
    /// Routes `GET` (and `HEAD`, unless routed separately) to `handler`.
    get => GET;
    /// Routes `POST` to `handler`.
    post => POST;
    /// Routes `PUT` to `handler`.
    put => PUT;
    /// Routes `PATCH` to `handler`.
    patch => PATCH;
    /// Routes `DELETE` to `handler`.
    delete => DELETE;
    /// Routes `HEAD` to `handler`.
    head => HEAD;
    /// Routes `OPTIONS` to `handler` (instead of the automatic 204 with `Allow`).
    options => OPTIONS;
}

/// Routes every method to `handler` (aiohttp's `add_route('*', ...)`).
pub fn any<H: Handler<Args>, Args: 'static>(handler: H) -> MethodRouter {
    MethodRouter::new().any(handler)
}

/// Routes `method` to `handler`.
pub fn on<H: Handler<Args>, Args: 'static>(method: Method, handler: H) -> MethodRouter {
    MethodRouter::new().on(method, handler)
}

pub(crate) enum Resolved<'a> {
    Handler(&'a DynHandler),
    Options(HeaderValue),
    NotAllowed(HeaderValue),
}

impl MethodRouter {
    /// An empty router (every method answered with 405).
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `method` to `handler`, replacing an earlier handler for it.
    #[must_use]
    pub fn on<H: Handler<Args>, Args: 'static>(mut self, method: Method, handler: H) -> Self {
        let handler = erase(handler);
        self.set(method, handler);
        self
    }

    /// Routes every method not routed otherwise to `handler`.
    #[must_use]
    pub fn any<H: Handler<Args>, Args: 'static>(mut self, handler: H) -> Self {
        self.any = Some(erase(handler));
        self
    }

    fn set(&mut self, method: Method, handler: DynHandler) {
        match self.methods.iter_mut().find(|(m, _)| *m == method) {
            Some(slot) => slot.1 = handler,
            None => self.methods.push((method, handler)),
        }
    }

    pub(crate) fn merge(&mut self, other: MethodRouter) {
        for (method, handler) in other.methods {
            self.set(method, handler);
        }
        if other.any.is_some() {
            self.any = other.any;
        }
    }

    pub(crate) fn resolve(&self, method: &Method) -> Resolved<'_> {
        for (m, handler) in &self.methods {
            if m == method {
                return Resolved::Handler(handler);
            }
        }
        if *method == Method::HEAD {
            if let Some((_, handler)) = self.methods.iter().find(|(m, _)| *m == Method::GET) {
                return Resolved::Handler(handler);
            }
        }
        if let Some(any) = &self.any {
            return Resolved::Handler(any);
        }
        if *method == Method::OPTIONS {
            Resolved::Options(self.allow())
        } else {
            Resolved::NotAllowed(self.allow())
        }
    }

    /// The `Allow` header value: every routed method, `HEAD` with `GET`, and `OPTIONS`.
    fn allow(&self) -> HeaderValue {
        let mut names: Vec<&str> = self.methods.iter().map(|(m, _)| m.as_str()).collect();
        if names.contains(&"GET") && !names.contains(&"HEAD") {
            names.push("HEAD");
        }
        if !names.contains(&"OPTIONS") {
            names.push("OPTIONS");
        }
        HeaderValue::from_str(&names.join(", ")).unwrap_or(HeaderValue::from_static("OPTIONS"))
    }
}

/// One registered path: its pattern, parameter names and handlers.
pub(crate) struct Route {
    pub(crate) pattern: Arc<str>,
    pub(crate) names: Vec<Arc<str>>,
    pub(crate) methods: MethodRouter,
}

/// The parameter names of a pattern, in order (`/a/{x}/{y:\d+}` gives `x`, `y`).
pub(crate) fn param_names(pattern: &str) -> Vec<Arc<str>> {
    let mut names = Vec::new();
    let bytes = pattern.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            let start = i + 1;
            let mut depth = 1;
            let mut j = start;
            let mut name_end = None;
            while j < bytes.len() && depth > 0 {
                match bytes[j] {
                    b'{' => depth += 1,
                    b'}' => depth -= 1,
                    b':' if depth == 1 && name_end.is_none() => name_end = Some(j),
                    _ => {}
                }
                j += 1;
            }
            let end = name_end.unwrap_or(j.saturating_sub(1));
            if let Some(name) = pattern.get(start..end) {
                names.push(Arc::from(name));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    names
}

/// The path to route on: `%XX` escapes decoded except `%2F` and `%25` (so an encoded
/// slash never splits a segment, and nothing is decoded twice); `None` if an escape is malformed or the result is not UTF-8.
pub(crate) fn routing_path(raw: &str) -> Option<Cow<'_, str>> {
    crate::request::decode_escapes(raw, |b| b == b'/' || b == b'%')
}

/// A parameter value from the routing path, with the `%2F` and `%25` kept by
/// [`routing_path`] decoded.
pub(crate) fn param_value(raw: &str) -> String {
    if raw.contains('%') {
        raw.replace("%2F", "/").replace("%25", "%")
    } else {
        raw.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_order_with_regex_braces() {
        let names = param_names(r"/a/{x}/{y:\d{2,3}}/{z}.{ext}");
        let names: Vec<&str> = names.iter().map(|n| &**n).collect();
        assert_eq!(names, ["x", "y", "z", "ext"]);
    }

    #[test]
    fn routing_path_keeps_encoded_slashes() {
        assert_eq!(routing_path("/a%20b%2Fc").as_deref(), Some("/a b%2Fc"));
        assert!(routing_path("/%zz").is_none());
        assert_eq!(param_value("b%2Fc"), "b/c");
        let path = routing_path("/x%252F").unwrap();
        assert_eq!(path, "/x%252F");
        assert_eq!(param_value(&path[1..]), "x%2F");
    }
}
