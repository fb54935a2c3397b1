//! The route matcher: [`PathTree`], a segment trie over aiohttp-style URL
//! patterns.
//!
//! # Pattern syntax
//!
//! Patterns start with `/` and are split into segments at `/`:
//!
//! * a static segment (`/users`) matches literally and case-sensitively;
//! * `{name}` as a whole segment matches one non-empty segment (no `/`);
//! * `{name:regex}` matches `regex`, which may match across `/` (so
//!   `/static/{path:.+}` matches `/static/css/site.css`); the regex may
//!   contain balanced braces (`{id:\d{2,4}}`), and `\{` / `\}` are skipped
//!   when counting them;
//! * a segment mixing literal text and parameters (`/{stem}.{ext}`,
//!   `/v{version:\d+}`, `/files/{stem}.tar.gz`) is compiled into an anchored
//!   regex; a plain `{name}` inside such a segment means `[^{}/]+`, as in
//!   aiohttp.
//!
//! A trailing slash is significant: `/a` and `/a/` are different routes.
//!
//! # Priority
//!
//! At every segment a static child is tried first, then the `{name}` child,
//! then the regex / mixed children in registration order; when a branch
//! fails further down, matching backtracks and tries the next candidate. So
//! with routes `/users/new` and `/users/{id}/edit`, the path
//! `/users/new/edit` matches the second one.
//!
//! A regex parameter that provably cannot match `/` (such as `\d+`,
//! `[a-z0-9_-]+` or `(?:jpg|png)`) is matched against its own segment and the
//! trie continues below it. Any other regex (such as `.+`) is compiled,
//! together with the rest of the pattern, into one anchored "tail" regex
//! matched against the rest of the path, which gives exactly aiohttp's
//! whole-path regex semantics.
//!
//! # Performance
//!
//! Fully static patterns are kept in an exact-match hash map that is checked
//! first (a static route always wins over dynamic ones for the same path,
//! so this respects priority). Static children of a trie node are found by a
//! short linear scan or, for larger fan-out, a hash map; both use a small
//! FxHash-style hasher rather than SipHash. Captured parameters are stored
//! inline for up to four parameters, so [`PathTree::find`] does not allocate
//! unless a route has more parameters than that or a regex with several
//! parameters has to report capture positions.

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use regex::Regex;

// ---------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------

/// A small, fast, non-cryptographic hasher for short route strings.
///
/// Route tables are built by the application, not by clients, and lookups
/// only ever compare against keys that exist, so HashDoS resistance is not
/// needed here.
#[derive(Default, Clone, Copy)]
struct FxHasher {
    hash: u64,
}

const FX_K: u64 = 0x9e37_79b9_7f4a_7c15;

impl FxHasher {
    #[inline(always)]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
            self.add(u64::from_le_bytes(*chunk));
            rest = tail;
        }
        let n = rest.len();
        let word = if n >= 4 {
            // Two overlapping 4-byte reads cover 4..=7 bytes.
            let lo = rest
                .first_chunk::<4>()
                .map_or(0, |c| u32::from_le_bytes(*c));
            let hi = rest.last_chunk::<4>().map_or(0, |c| u32::from_le_bytes(*c));
            u64::from(lo) | (u64::from(hi) << 32)
        } else if n > 0 {
            let first = rest.first().copied().unwrap_or(0);
            let mid = rest.get(n / 2).copied().unwrap_or(0);
            let last = rest.last().copied().unwrap_or(0);
            u64::from(first) | (u64::from(mid) << 8) | (u64::from(last) << 16)
        } else {
            return;
        };
        self.add(word ^ ((n as u64) << 56));
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The multiply leaves the best-mixed bits at the top; hashbrown takes
        // the bucket index from the low bits, so rotate them down.
        self.hash.rotate_left(26)
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;
type FxMap<V> = HashMap<Box<str>, V, FxBuild>;

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// A route table mapping aiohttp-style URL patterns to values of type `T`.
///
/// See the [module documentation](self) for the pattern syntax and the
/// matching priority.
///
/// ```ignore
/// let mut tree = PathTree::new();
/// tree.insert("/users/{id}", "user")?;
/// let m = tree.find("/users/42").unwrap();
/// assert_eq!(*m.value, "user");
/// assert_eq!(m.params.get("id"), Some("42"));
/// ```
pub struct PathTree<T> {
    /// Trie nodes; index 0 is the root (the segment right after the leading `/`).
    nodes: Vec<Node>,
    /// All routes in registration order.
    routes: Vec<Route<T>>,
    /// Fully static patterns (pattern string == path) -> route index.
    exact: FxMap<usize>,
    /// Every registered pattern string -> route index.
    by_pattern: FxMap<usize>,
}

/// A successful [`PathTree::find`]: the matched route's value and the
/// captured parameters.
#[derive(Debug)]
pub struct PathMatch<'t, 'p, T> {
    /// The value registered for the matching pattern.
    pub value: &'t T,
    /// The parameters captured from the path, in pattern order.
    pub params: Params<'t, 'p>,
}

/// Parameters captured by a match: ordered `(name, raw value)` pairs.
///
/// Names borrow from the [`PathTree`] (`'t`) and values are raw,
/// still percent-encoded slices of the matched path (`'p`).
#[derive(Clone)]
pub struct Params<'t, 'p> {
    names: &'t [Box<str>],
    values: Values<'p>,
}

/// An invalid or duplicate route pattern passed to [`PathTree::insert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pattern: Box<str>,
    kind: ErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ErrorKind {
    Invalid(String),
    Duplicate,
}

impl PatternError {
    fn invalid(pattern: &str, reason: impl Into<String>) -> Self {
        PatternError {
            pattern: pattern.into(),
            kind: ErrorKind::Invalid(reason.into()),
        }
    }

    fn duplicate(pattern: &str) -> Self {
        PatternError {
            pattern: pattern.into(),
            kind: ErrorKind::Duplicate,
        }
    }

    /// The pattern that was rejected.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the pattern was rejected because it (or an equivalent
    /// pattern) is already registered, rather than because it is malformed.
    pub fn is_duplicate(&self) -> bool {
        matches!(self.kind, ErrorKind::Duplicate)
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Invalid(reason) => {
                write!(f, "invalid route pattern {:?}: {}", self.pattern, reason)
            }
            ErrorKind::Duplicate => write!(
                f,
                "duplicate route pattern {:?}: it or an equivalent pattern is already registered",
                self.pattern
            ),
        }
    }
}

impl Error for PatternError {}

// ---------------------------------------------------------------------------
// Internal structures
// ---------------------------------------------------------------------------

struct Route<T> {
    pattern: Box<str>,
    names: Box<[Box<str>]>,
    value: T,
}

#[derive(Default)]
struct Node {
    /// Route ending at this node (dynamic routes only; static routes live in
    /// `PathTree::exact`).
    route: Option<usize>,
    statics: Statics,
    /// Child for a whole-segment `{name}`.
    param: Option<usize>,
    /// Regex / mixed children and tail regexes, in registration order.
    dynamic: Vec<Dyn>,
}

impl Node {
    fn has_children(&self) -> bool {
        !self.statics.is_empty() || self.param.is_some() || !self.dynamic.is_empty()
    }
}

/// Static children: a short list scanned linearly, plus a hash index once
/// the fan-out grows.
#[derive(Default)]
struct Statics {
    list: Vec<(Box<str>, usize)>,
    index: Option<FxMap<usize>>,
}

const STATIC_SCAN_MAX: usize = 8;

impl Statics {
    #[inline]
    fn get(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(map) => map.get(key).copied(),
            None => self
                .list
                .iter()
                .find(|(k, _)| k.as_ref() == key)
                .map(|&(_, child)| child),
        }
    }

    fn insert(&mut self, key: Box<str>, child: usize) {
        if let Some(map) = &mut self.index {
            map.insert(key.clone(), child);
        }
        self.list.push((key, child));
        if self.index.is_none() && self.list.len() > STATIC_SCAN_MAX {
            self.index = Some(self.list.iter().cloned().collect());
        }
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

enum Dyn {
    /// Matches exactly one segment, then continues in `child`.
    Segment { matcher: Matcher, child: usize },
    /// Matches the whole rest of the path and ends in `route`.
    Tail { matcher: Matcher, route: usize },
}

/// An anchored regex plus how to extract parameter values from it.
struct Matcher {
    regex: Regex,
    /// `None`: the pattern is a single parameter spanning the whole haystack,
    /// so `is_match` suffices and the value is the haystack itself.
    /// `Some(groups)`: capture-group index of each parameter, in order.
    groups: Option<Box<[usize]>>,
}

impl Matcher {
    /// Match `hay` and push the parameter values; on failure `vals` is left
    /// unchanged.
    #[inline]
    fn capture<'p>(&self, hay: &'p str, vals: &mut Values<'p>) -> bool {
        match &self.groups {
            None => {
                if self.regex.is_match(hay) {
                    vals.push(hay);
                    true
                } else {
                    false
                }
            }
            Some(groups) => match self.regex.captures(hay) {
                Some(caps) => {
                    for &g in groups.iter() {
                        vals.push(caps.get(g).map_or("", |m| m.as_str()));
                    }
                    true
                }
                None => false,
            },
        }
    }

    fn same_as(&self, other: &Matcher) -> bool {
        self.regex.as_str() == other.regex.as_str()
    }
}

/// Parameter values with inline storage for the common case.
#[derive(Clone)]
enum Values<'p> {
    Inline { len: usize, buf: [&'p str; INLINE] },
    Heap(Vec<&'p str>),
}

const INLINE: usize = 4;

impl<'p> Values<'p> {
    #[inline]
    fn new() -> Self {
        Values::Inline {
            len: 0,
            buf: [""; INLINE],
        }
    }

    #[inline]
    fn len(&self) -> usize {
        match self {
            Values::Inline { len, .. } => *len,
            Values::Heap(v) => v.len(),
        }
    }

    #[inline]
    fn push(&mut self, value: &'p str) {
        match self {
            Values::Inline { len, buf } => {
                if let Some(slot) = buf.get_mut(*len) {
                    *slot = value;
                    *len += 1;
                } else {
                    let mut v = Vec::with_capacity(INLINE * 2);
                    v.extend_from_slice(buf);
                    v.push(value);
                    *self = Values::Heap(v);
                }
            }
            Values::Heap(v) => v.push(value),
        }
    }

    #[inline]
    fn truncate(&mut self, n: usize) {
        match self {
            Values::Inline { len, .. } => {
                if n < *len {
                    *len = n;
                }
            }
            Values::Heap(v) => v.truncate(n),
        }
    }

    #[inline]
    fn as_slice(&self) -> &[&'p str] {
        match self {
            Values::Inline { len, buf } => buf.get(..*len).unwrap_or(&[]),
            Values::Heap(v) => v,
        }
    }
}

// ---------------------------------------------------------------------------
// Params
// ---------------------------------------------------------------------------

impl<'t, 'p> Params<'t, 'p> {
    /// The raw (still percent-encoded) value of parameter `name`, if the
    /// matched pattern has it.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&'p str> {
        let i = self.names.iter().position(|n| n.as_ref() == name)?;
        self.values.as_slice().get(i).copied()
    }

    /// `(name, raw value)` pairs in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&'t str, &'p str)> {
        let names: &'t [Box<str>] = self.names;
        names
            .iter()
            .map(|n| n.as_ref())
            .zip(self.values.as_slice().iter().copied())
    }

    /// Number of captured parameters.
    #[inline]
    pub fn len(&self) -> usize {
        self.values.len().min(self.names.len())
    }

    /// Whether no parameters were captured.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Params<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

// ---------------------------------------------------------------------------
// PathTree
// ---------------------------------------------------------------------------

impl<T> Default for PathTree<T> {
    fn default() -> Self {
        PathTree {
            nodes: vec![Node::default()],
            routes: Vec::new(),
            exact: FxMap::default(),
            by_pattern: FxMap::default(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for PathTree<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Routes<'a, T>(&'a [Route<T>]);
        impl<T: fmt::Debug> fmt::Debug for Routes<'_, T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|r| (&r.pattern, &r.value)))
                    .finish()
            }
        }
        f.debug_struct("PathTree")
            .field("routes", &Routes(&self.routes))
            .finish()
    }
}

impl<T> PathTree<T> {
    /// An empty route table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `pattern` with `value`.
    ///
    /// Fails if the pattern is malformed (see the
    /// [module documentation](self)), or if the same pattern, or one that
    /// matches exactly the same paths in the same way (such as `/{a}` after
    /// `/{b}`), is already registered. On error the tree is unchanged.
    pub fn insert(&mut self, pattern: &str, value: T) -> Result<(), PatternError> {
        if self.by_pattern.contains_key(pattern) {
            return Err(PatternError::duplicate(pattern));
        }
        let compiled = compile(pattern)?;
        let idx = self.routes.len();
        if compiled.is_static() {
            self.exact.insert(pattern.into(), idx);
        } else {
            self.attach(pattern, compiled.steps, idx)?;
        }
        self.by_pattern.insert(pattern.into(), idx);
        self.routes.push(Route {
            pattern: pattern.into(),
            names: compiled.names,
            value,
        });
        Ok(())
    }

    fn new_node(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    /// Adds the trie path for a dynamic route. A duplicate is only detected
    /// where every node on the way already existed, so nothing is created
    /// before an error is returned.
    fn attach(&mut self, pattern: &str, steps: Vec<Step>, idx: usize) -> Result<(), PatternError> {
        let mut cur = 0;
        for step in steps {
            cur = match step {
                Step::Static(key) => match self.nodes[cur].statics.get(&key) {
                    Some(child) => child,
                    None => {
                        let child = self.new_node();
                        self.nodes[cur].statics.insert(key, child);
                        child
                    }
                },
                Step::Param => match self.nodes[cur].param {
                    Some(child) => child,
                    None => {
                        let child = self.new_node();
                        self.nodes[cur].param = Some(child);
                        child
                    }
                },
                Step::Segment(matcher) => {
                    // Share the node only with the most recent dynamic entry,
                    // so registration order among dynamic entries is exact.
                    let reuse = match self.nodes[cur].dynamic.last() {
                        Some(Dyn::Segment { matcher: m, child }) if m.same_as(&matcher) => {
                            Some(*child)
                        }
                        _ => None,
                    };
                    match reuse {
                        Some(child) => child,
                        None => {
                            let child = self.new_node();
                            self.nodes[cur]
                                .dynamic
                                .push(Dyn::Segment { matcher, child });
                            child
                        }
                    }
                }
                Step::Tail(matcher) => {
                    let node = &mut self.nodes[cur];
                    let dup = node.dynamic.iter().any(|d| match d {
                        Dyn::Tail { matcher: m, .. } => m.same_as(&matcher),
                        Dyn::Segment { .. } => false,
                    });
                    if dup {
                        return Err(PatternError::duplicate(pattern));
                    }
                    node.dynamic.push(Dyn::Tail {
                        matcher,
                        route: idx,
                    });
                    return Ok(());
                }
            };
        }
        let node = &mut self.nodes[cur];
        if node.route.is_some() {
            return Err(PatternError::duplicate(pattern));
        }
        node.route = Some(idx);
        Ok(())
    }

    /// Finds the route matching `path`, a raw request path without the
    /// query string. Parameter values are returned as raw slices of `path`
    /// (not percent-decoded).
    #[inline]
    pub fn find<'t, 'p>(&'t self, path: &'p str) -> Option<PathMatch<'t, 'p, T>> {
        if !self.exact.is_empty() {
            if let Some(&idx) = self.exact.get(path) {
                let route = self.routes.get(idx)?;
                return Some(PathMatch {
                    value: &route.value,
                    params: Params {
                        names: &route.names,
                        values: Values::new(),
                    },
                });
            }
        }
        self.find_dynamic(path)
    }

    fn find_dynamic<'t, 'p>(&'t self, path: &'p str) -> Option<PathMatch<'t, 'p, T>> {
        let rest = path.strip_prefix('/')?;
        let root = self.nodes.first()?;
        if !root.has_children() {
            return None;
        }
        let mut values = Values::new();
        let idx = self.walk(root, rest, &mut values)?;
        let route = self.routes.get(idx)?;
        Some(PathMatch {
            value: &route.value,
            params: Params {
                names: &route.names,
                values,
            },
        })
    }

    /// Matches `rest` (the path after a `/`) below `node`, depth first in
    /// priority order. Each node is visited at most once per lookup, since a
    /// node's depth fixes which segment it is matched against.
    fn walk<'p>(&self, node: &Node, rest: &'p str, vals: &mut Values<'p>) -> Option<usize> {
        let (seg, next) = match rest.as_bytes().iter().position(|&b| b == b'/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        if let Some(child) = node.statics.get(seg) {
            if let Some(r) = self.descend(child, next, vals) {
                return Some(r);
            }
        }
        if let Some(child) = node.param {
            if !seg.is_empty() {
                let mark = vals.len();
                vals.push(seg);
                if let Some(r) = self.descend(child, next, vals) {
                    return Some(r);
                }
                vals.truncate(mark);
            }
        }
        for d in &node.dynamic {
            match d {
                Dyn::Segment { matcher, child } => {
                    let mark = vals.len();
                    if matcher.capture(seg, vals) {
                        if let Some(r) = self.descend(*child, next, vals) {
                            return Some(r);
                        }
                        vals.truncate(mark);
                    }
                }
                Dyn::Tail { matcher, route } => {
                    if matcher.capture(rest, vals) {
                        return Some(*route);
                    }
                }
            }
        }
        None
    }

    #[inline]
    fn descend<'p>(
        &self,
        child: usize,
        next: Option<&'p str>,
        vals: &mut Values<'p>,
    ) -> Option<usize> {
        let node = self.nodes.get(child)?;
        match next {
            None => node.route,
            Some(rest) if node.has_children() => self.walk(node, rest, vals),
            Some(_) => None,
        }
    }

    /// Number of registered routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether no routes are registered.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The value registered under exactly this pattern string (no pattern
    /// matching is done), e.g. to add methods to an existing route.
    pub fn get_mut(&mut self, pattern: &str) -> Option<&mut T> {
        let idx = *self.by_pattern.get(pattern)?;
        self.routes.get_mut(idx).map(|r| &mut r.value)
    }

    /// `(pattern, value)` pairs in registration order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.routes.iter().map(|r| (r.pattern.as_ref(), &r.value))
    }
}

// ---------------------------------------------------------------------------
// Pattern compilation
// ---------------------------------------------------------------------------

/// One piece of a pattern segment.
enum Piece<'a> {
    Lit(&'a str),
    Param { name: &'a str, re: Option<&'a str> },
}

enum Step {
    Static(Box<str>),
    Param,
    Segment(Matcher),
    Tail(Matcher),
}

struct Compiled {
    steps: Vec<Step>,
    names: Box<[Box<str>]>,
}

impl Compiled {
    fn is_static(&self) -> bool {
        self.steps.iter().all(|s| matches!(s, Step::Static(_)))
    }
}

/// Splits a pattern into segments of pieces, checking brace balance.
fn tokenize(pattern: &str) -> Result<Vec<Vec<Piece<'_>>>, PatternError> {
    let bytes = pattern.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PatternError::invalid(
            pattern,
            "a pattern must start with '/'",
        ));
    }
    let mut segments = Vec::new();
    let mut cur: Vec<Piece<'_>> = Vec::new();
    let mut lit_start = 1;
    let mut i = 1;
    // All delimiters are ASCII, so every slice below is on a char boundary.
    while i < bytes.len() {
        match bytes[i] {
            b'/' => {
                if lit_start < i {
                    cur.push(Piece::Lit(&pattern[lit_start..i]));
                }
                segments.push(std::mem::take(&mut cur));
                i += 1;
                lit_start = i;
            }
            b'{' => {
                if lit_start < i {
                    cur.push(Piece::Lit(&pattern[lit_start..i]));
                }
                let open = i;
                let name_start = i + 1;
                let mut j = name_start;
                while j < bytes.len() && !matches!(bytes[j], b':' | b'}' | b'{' | b'/') {
                    j += 1;
                }
                let name = &pattern[name_start..j];
                match bytes.get(j) {
                    Some(b'}') => {
                        cur.push(Piece::Param { name, re: None });
                        i = j + 1;
                    }
                    Some(b':') => {
                        let re_start = j + 1;
                        let mut depth = 1usize;
                        let mut k = re_start;
                        while k < bytes.len() {
                            match bytes[k] {
                                b'\\' => k += 1,
                                b'{' => depth += 1,
                                b'}' => {
                                    depth -= 1;
                                    if depth == 0 {
                                        break;
                                    }
                                }
                                _ => {}
                            }
                            k += 1;
                        }
                        if depth != 0 || k >= bytes.len() {
                            return Err(PatternError::invalid(
                                pattern,
                                format!("unbalanced '{{' at byte {open}"),
                            ));
                        }
                        cur.push(Piece::Param {
                            name,
                            re: Some(&pattern[re_start..k]),
                        });
                        i = k + 1;
                    }
                    Some(b'/') if !name.is_empty() => {
                        return Err(PatternError::invalid(
                            pattern,
                            format!(
                                "unbalanced '{{' at byte {open}: parameter names cannot contain '/'"
                            ),
                        ));
                    }
                    _ => {
                        return Err(PatternError::invalid(
                            pattern,
                            format!("unbalanced '{{' at byte {open}"),
                        ));
                    }
                }
                lit_start = i;
            }
            b'}' => {
                return Err(PatternError::invalid(
                    pattern,
                    format!("unbalanced '}}' at byte {i}"),
                ));
            }
            _ => i += 1,
        }
    }
    if lit_start < bytes.len() {
        cur.push(Piece::Lit(&pattern[lit_start..]));
    }
    segments.push(cur);
    Ok(segments)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn compile(pattern: &str) -> Result<Compiled, PatternError> {
    let segments = tokenize(pattern)?;

    // Validate names and user regexes.
    let mut names: Vec<Box<str>> = Vec::new();
    for piece in segments.iter().flatten() {
        if let Piece::Param { name, re } = piece {
            if name.is_empty() {
                return Err(PatternError::invalid(pattern, "empty parameter name"));
            }
            if !is_identifier(name) {
                return Err(PatternError::invalid(
                    pattern,
                    format!("parameter name {name:?} is not a valid identifier"),
                ));
            }
            if names.iter().any(|n| n.as_ref() == *name) {
                return Err(PatternError::invalid(
                    pattern,
                    format!("duplicate parameter name {name:?}"),
                ));
            }
            if let Some(re) = re {
                if re.is_empty() {
                    return Err(PatternError::invalid(
                        pattern,
                        format!("empty regex for parameter {name:?}"),
                    ));
                }
                // Compile it alone first, so that something like `a)(b` cannot
                // escape the group it is embedded in.
                if let Err(e) = Regex::new(re) {
                    return Err(PatternError::invalid(
                        pattern,
                        format!("invalid regex for parameter {name:?}: {e}"),
                    ));
                }
            }
            names.push((*name).into());
        }
    }

    let mut steps = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        match seg.as_slice() {
            [] => steps.push(Step::Static("".into())),
            [Piece::Lit(text)] => steps.push(Step::Static((*text).into())),
            [Piece::Param { re: None, .. }] => steps.push(Step::Param),
            _ => {
                let crosses = seg.iter().any(|p| match p {
                    Piece::Param { re: Some(re), .. } => !cannot_match_slash(re),
                    _ => false,
                });
                if crosses {
                    steps.push(Step::Tail(build_matcher(pattern, &segments[i..])?));
                    break;
                }
                steps.push(Step::Segment(build_matcher(pattern, &segments[i..=i])?));
            }
        }
    }
    Ok(Compiled {
        steps,
        names: names.into_boxed_slice(),
    })
}

/// Builds an anchored regex for `segments` joined by `/`.
fn build_matcher(pattern: &str, segments: &[Vec<Piece<'_>>]) -> Result<Matcher, PatternError> {
    // A single regex parameter spanning everything needs no capture group.
    if let [seg] = segments {
        if let [Piece::Param { re: Some(re), .. }] = seg.as_slice() {
            let src = format!(r"\A(?:{re})\z");
            let regex = Regex::new(&src).map_err(|e| {
                PatternError::invalid(pattern, format!("failed to compile route regex: {e}"))
            })?;
            return Ok(Matcher {
                regex,
                groups: None,
            });
        }
    }

    let mut src = String::from(r"\A");
    let mut count = 0usize;
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            src.push('/');
        }
        let whole = matches!(seg.as_slice(), [Piece::Param { re: None, .. }]);
        for piece in seg {
            match piece {
                Piece::Lit(text) => src.push_str(&regex::escape(text)),
                Piece::Param { re, .. } => {
                    let body = match re {
                        Some(re) => re,
                        None if whole => "[^/]+",
                        None => "[^{}/]+",
                    };
                    src.push_str(&format!("(?P<{}>{body})", group_name(count)));
                    count += 1;
                }
            }
        }
    }
    src.push_str(r"\z");
    let regex = Regex::new(&src).map_err(|e| {
        PatternError::invalid(pattern, format!("failed to compile route regex: {e}"))
    })?;
    let mut groups = Vec::with_capacity(count);
    for n in 0..count {
        let wanted = group_name(n);
        let idx = regex
            .capture_names()
            .position(|name| name == Some(wanted.as_str()))
            .ok_or_else(|| {
                PatternError::invalid(pattern, "internal error: lost a parameter capture group")
            })?;
        groups.push(idx);
    }
    Ok(Matcher {
        regex,
        groups: Some(groups.into_boxed_slice()),
    })
}

fn group_name(n: usize) -> String {
    format!("aiox_param_{n}")
}

/// Conservatively decides whether `re` can never match a string containing
/// `/`. Returning `false` is always safe (the route then uses a tail regex);
/// `true` lets the parameter be matched within one segment.
///
/// Accepted: literals other than `/`, `.` and `#`; the escapes `\d \w \s \b
/// \B \A \z` and escaped ASCII punctuation other than `/`; non-negated
/// classes without nested classes whose ranges exclude `/`; groups
/// (`(`, `(?:`, `(?P<n>`, `(?<n>`, flag groups); alternation, quantifiers
/// and counted repetition; `^` and `$`.
fn cannot_match_slash(re: &str) -> bool {
    let c: Vec<char> = re.chars().collect();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '/' | '.' | '#' => return false,
            '\\' => {
                i += 1;
                match c.get(i) {
                    Some('d' | 'w' | 's' | 'b' | 'B' | 'A' | 'z') => {}
                    Some(&e) if e.is_ascii_punctuation() && e != '/' => {}
                    _ => return false,
                }
            }
            '[' => match scan_class(&c, i + 1) {
                Some(end) => i = end,
                None => return false,
            },
            '(' if c.get(i + 1) == Some(&'?') => {
                let mut j = i + 2;
                if c.get(j) == Some(&'P') {
                    j += 1;
                }
                if c.get(j) == Some(&'<') {
                    j += 1;
                    while c
                        .get(j)
                        .is_some_and(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                    {
                        j += 1;
                    }
                    if c.get(j) != Some(&'>') {
                        return false;
                    }
                } else {
                    while c.get(j).is_some_and(|ch| "imsUuxR-".contains(*ch)) {
                        j += 1;
                    }
                    if !matches!(c.get(j), Some(':') | Some(')')) {
                        return false;
                    }
                }
                i = j;
            }
            '{' => {
                let mut j = i + 1;
                while c
                    .get(j)
                    .is_some_and(|ch| ch.is_ascii_digit() || *ch == ',' || *ch == ' ')
                {
                    j += 1;
                }
                if c.get(j) != Some(&'}') {
                    return false;
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    true
}

/// Scans a character class starting after its `[`; returns the index of the
/// closing `]` if the class certainly excludes `/`.
fn scan_class(c: &[char], start: usize) -> Option<usize> {
    let mut j = start;
    if c.get(j) == Some(&'^') {
        return None;
    }
    let mut first = true;
    // The previous plain character, which may start a range.
    let mut prev: Option<char> = None;
    loop {
        let ch = *c.get(j)?;
        match ch {
            ']' if !first => return Some(j),
            '[' | '/' => return None,
            '\\' => {
                j += 1;
                let e = *c.get(j)?;
                if matches!(e, 'd' | 'w' | 's') {
                    prev = None;
                } else if e.is_ascii_punctuation() && e != '/' {
                    prev = Some(e);
                } else {
                    return None;
                }
            }
            '-' if prev.is_some() && c.get(j + 1).is_some_and(|n| *n != ']') => {
                let lo = prev?;
                j += 1;
                let mut hi = *c.get(j)?;
                if hi == '\\' {
                    j += 1;
                    hi = *c.get(j)?;
                    if !hi.is_ascii_punctuation() {
                        return None;
                    }
                } else if hi == '[' {
                    return None;
                }
                if lo <= '/' && '/' <= hi {
                    return None;
                }
                prev = None;
            }
            _ => prev = Some(ch),
        }
        first = false;
        j += 1;
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(patterns: &[&str]) -> PathTree<usize> {
        let mut t = PathTree::new();
        for (i, p) in patterns.iter().enumerate() {
            t.insert(p, i).unwrap_or_else(|e| panic!("{e}"));
        }
        t
    }

    /// (value, params) of a lookup.
    fn lookup(t: &PathTree<usize>, path: &str) -> Option<(usize, Vec<(String, String)>)> {
        t.find(path).map(|m| {
            (
                *m.value,
                m.params
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            )
        })
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn static_routes() {
        let t = tree(&["/", "/json", "/plaintext", "/a/b/c", "/a/b"]);
        assert_eq!(lookup(&t, "/"), Some((0, vec![])));
        assert_eq!(lookup(&t, "/json"), Some((1, vec![])));
        assert_eq!(lookup(&t, "/plaintext"), Some((2, vec![])));
        assert_eq!(lookup(&t, "/a/b/c"), Some((3, vec![])));
        assert_eq!(lookup(&t, "/a/b"), Some((4, vec![])));
        assert_eq!(lookup(&t, "/a"), None);
        assert_eq!(lookup(&t, "/JSON"), None);
        assert_eq!(lookup(&t, "/json/"), None);
        assert_eq!(lookup(&t, "json"), None);
        assert_eq!(t.len(), 5);
        assert!(!t.is_empty());
    }

    #[test]
    fn params() {
        let t = tree(&[
            "/users/{id}",
            "/users/{id}/posts/{post}",
            "/{a}/{b}/{c}/{d}/{e}/{f}",
        ]);
        assert_eq!(lookup(&t, "/users/42"), Some((0, p(&[("id", "42")]))));
        assert_eq!(
            lookup(&t, "/users/42/posts/7"),
            Some((1, p(&[("id", "42"), ("post", "7")])))
        );
        assert_eq!(lookup(&t, "/users/"), None);
        assert_eq!(lookup(&t, "/users"), None);
        assert_eq!(lookup(&t, "/users/42/posts/"), None);
        // More params than the inline capacity.
        let m = t.find("/1/2/3/4/5/6").expect("match");
        assert_eq!(*m.value, 2);
        assert_eq!(m.params.len(), 6);
        assert_eq!(m.params.get("a"), Some("1"));
        assert_eq!(m.params.get("f"), Some("6"));
        assert_eq!(m.params.get("g"), None);
        let m = t.find("/users/x").expect("match");
        assert_eq!(format!("{:?}", m.params), r#"{"id": "x"}"#);
    }

    #[test]
    fn regex_params() {
        let t = tree(&[
            "/static/{filename:.+}",
            "/n/{id:\\d+}",
            "/n/{slug}",
            "/deep/{rest:.*}/end",
        ]);
        assert_eq!(
            lookup(&t, "/static/a/b/c.css"),
            Some((0, p(&[("filename", "a/b/c.css")])))
        );
        assert_eq!(lookup(&t, "/static/x"), Some((0, p(&[("filename", "x")]))));
        assert_eq!(lookup(&t, "/static/"), None);
        // `{slug}` beats the regex child, so register order aside it wins.
        assert_eq!(lookup(&t, "/n/12"), Some((2, p(&[("slug", "12")]))));
        assert_eq!(
            lookup(&t, "/deep/x/y/end"),
            Some((3, p(&[("rest", "x/y")])))
        );
        assert_eq!(lookup(&t, "/deep//end"), Some((3, p(&[("rest", "")]))));
        assert_eq!(lookup(&t, "/deep/x/y/end/"), None);

        let t = tree(&["/n/{id:\\d+}", "/n/{id:\\d+}/x", "/n/{name:[a-z]+}"]);
        assert_eq!(lookup(&t, "/n/12"), Some((0, p(&[("id", "12")]))));
        assert_eq!(lookup(&t, "/n/12/x"), Some((1, p(&[("id", "12")]))));
        assert_eq!(lookup(&t, "/n/ab"), Some((2, p(&[("name", "ab")]))));
        assert_eq!(lookup(&t, "/n/AB"), None);
        assert_eq!(lookup(&t, "/n/12a"), None);
    }

    #[test]
    fn mixed_segments() {
        let t = tree(&[
            "/{name}.{ext}",
            "/v{version:\\d+}/users/{id}",
            "/files/{stem}.tar.gz",
            "/img/{w:\\d+}x{h:\\d+}/{file}",
            "/dl/{file:[^/]+}.zip",
        ]);
        assert_eq!(
            lookup(&t, "/index.html"),
            Some((0, p(&[("name", "index"), ("ext", "html")])))
        );
        // Greedy, like aiohttp's regex.
        assert_eq!(
            lookup(&t, "/a.b.c"),
            Some((0, p(&[("name", "a.b"), ("ext", "c")])))
        );
        assert_eq!(lookup(&t, "/noext"), None);
        assert_eq!(
            lookup(&t, "/v2/users/7"),
            Some((1, p(&[("version", "2"), ("id", "7")])))
        );
        assert_eq!(lookup(&t, "/vx/users/7"), None);
        assert_eq!(
            lookup(&t, "/files/pkg-1.0.tar.gz"),
            Some((2, p(&[("stem", "pkg-1.0")])))
        );
        assert_eq!(lookup(&t, "/files/pkg.zip"), None);
        assert_eq!(
            lookup(&t, "/img/640x480/cat.png"),
            Some((3, p(&[("w", "640"), ("h", "480"), ("file", "cat.png")])))
        );
        // `[^/]+` is not recognised as segment-local, so this is a tail regex.
        assert_eq!(
            lookup(&t, "/dl/archive.zip"),
            Some((4, p(&[("file", "archive")])))
        );
        assert_eq!(lookup(&t, "/dl/a/b.zip"), None);
    }

    #[test]
    fn braces_inside_regex() {
        let t = tree(&[
            "/y/{year:\\d{4}}",
            "/c/{code:[A-Z]{2,3}}-{n:\\d{1,2}}",
            "/esc/{x:\\{[a-z]+\\}}",
        ]);
        assert_eq!(lookup(&t, "/y/2024"), Some((0, p(&[("year", "2024")]))));
        assert_eq!(lookup(&t, "/y/202"), None);
        assert_eq!(lookup(&t, "/y/20245"), None);
        assert_eq!(
            lookup(&t, "/c/ABC-12"),
            Some((1, p(&[("code", "ABC"), ("n", "12")])))
        );
        assert_eq!(lookup(&t, "/c/A-12"), None);
        assert_eq!(lookup(&t, "/esc/{abc}"), Some((2, p(&[("x", "{abc}")]))));
    }

    #[test]
    fn priority_and_backtracking() {
        let t = tree(&[
            "/users/new",
            "/users/{id}/edit",
            "/users/{id}",
            "/users/{id:\\d+}/raw",
            "/{any:.+}",
        ]);
        assert_eq!(lookup(&t, "/users/new"), Some((0, vec![])));
        assert_eq!(
            lookup(&t, "/users/new/edit"),
            Some((1, p(&[("id", "new")])))
        );
        assert_eq!(lookup(&t, "/users/5"), Some((2, p(&[("id", "5")]))));
        // `{id}` subtree fails below, so backtrack to the regex child.
        assert_eq!(lookup(&t, "/users/5/raw"), Some((3, p(&[("id", "5")]))));
        // Everything else falls through to the root tail.
        assert_eq!(
            lookup(&t, "/users/x/raw"),
            Some((4, p(&[("any", "users/x/raw")])))
        );
        assert_eq!(lookup(&t, "/other"), Some((4, p(&[("any", "other")]))));

        // Static beats param beats regex, independent of registration order.
        let t = tree(&["/a/{x:.+}", "/a/{x}", "/a/b"]);
        assert_eq!(lookup(&t, "/a/b"), Some((2, vec![])));
        assert_eq!(lookup(&t, "/a/c"), Some((1, p(&[("x", "c")]))));
        assert_eq!(lookup(&t, "/a/c/d"), Some((0, p(&[("x", "c/d")]))));

        // Among regex routes, registration order decides.
        let t = tree(&["/f/{a:\\d+}", "/f/{b:[0-9a-f]+}", "/f/{c}.txt"]);
        assert_eq!(lookup(&t, "/f/12"), Some((0, p(&[("a", "12")]))));
        assert_eq!(lookup(&t, "/f/1f"), Some((1, p(&[("b", "1f")]))));
        assert_eq!(lookup(&t, "/f/x.txt"), Some((2, p(&[("c", "x")]))));
        let t = tree(&["/f/{c}.txt", "/f/{b:[0-9a-z.]+}"]);
        assert_eq!(lookup(&t, "/f/1.txt"), Some((0, p(&[("c", "1")]))));
        let t = tree(&["/f/{b:[0-9a-z.]+}", "/f/{c}.txt"]);
        assert_eq!(lookup(&t, "/f/1.txt"), Some((0, p(&[("b", "1.txt")]))));

        // Backtracking restores captured values.
        let t = tree(&["/{a}/{b}/x", "/{c:\\d+}/y/{d}"]);
        assert_eq!(
            lookup(&t, "/1/y/z"),
            Some((1, p(&[("c", "1"), ("d", "z")])))
        );
    }

    #[test]
    fn trailing_slash_is_significant() {
        let t = tree(&["/a", "/b/", "/c/{x}", "/d/{x}/"]);
        assert_eq!(lookup(&t, "/a"), Some((0, vec![])));
        assert_eq!(lookup(&t, "/a/"), None);
        assert_eq!(lookup(&t, "/b/"), Some((1, vec![])));
        assert_eq!(lookup(&t, "/b"), None);
        assert_eq!(lookup(&t, "/c/1"), Some((2, p(&[("x", "1")]))));
        assert_eq!(lookup(&t, "/c/1/"), None);
        assert_eq!(lookup(&t, "/d/1/"), Some((3, p(&[("x", "1")]))));
        assert_eq!(lookup(&t, "/d/1"), None);
        let mut t = PathTree::new();
        t.insert("/a", 0).unwrap_or_else(|e| panic!("{e}"));
        t.insert("/a/", 1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lookup(&t, "/a/"), Some((1, vec![])));
    }

    #[test]
    fn raw_segments_passed_through() {
        let t = tree(&["/wiki/{title}", "/ключ/{v}", "/f/{name}.{ext}"]);
        assert_eq!(
            lookup(&t, "/wiki/caf%C3%A9%20au%20lait"),
            Some((0, p(&[("title", "caf%C3%A9%20au%20lait")])))
        );
        assert_eq!(
            lookup(&t, "/wiki/日本語"),
            Some((0, p(&[("title", "日本語")])))
        );
        // An encoded slash stays inside one segment.
        assert_eq!(
            lookup(&t, "/wiki/a%2Fb"),
            Some((0, p(&[("title", "a%2Fb")])))
        );
        assert_eq!(lookup(&t, "/ключ/é"), Some((1, p(&[("v", "é")]))));
        assert_eq!(
            lookup(&t, "/f/naïve.tär"),
            Some((2, p(&[("name", "naïve"), ("ext", "tär")])))
        );
        // Static matching is byte-exact: no decoding.
        assert_eq!(lookup(&t, "/%D0%BA%D0%BB%D1%8E%D1%87/x"), None);
    }

    #[test]
    fn invalid_patterns_rejected() {
        let bad = [
            "",
            "users",
            "/users/{",
            "/users/{id",
            "/users/}",
            "/users/{id}}",
            "/{}",
            "/{:\\d+}",
            "/{1abc}",
            "/{a-b}",
            "/{a b}",
            "/{a}/{a}",
            "/{a}.{a}",
            "/{a:}",
            "/{a:[}",
            "/{a:(}",
            "/{a:a)(b}",
            "/{a:\\d{2}",
            "/{a{b}}",
            "/{a/b}",
        ];
        let mut t: PathTree<()> = PathTree::new();
        for pat in bad {
            let err = t.insert(pat, ()).expect_err(pat);
            assert!(!err.is_duplicate(), "{pat}");
            assert_eq!(err.pattern(), pat);
            let msg = err.to_string();
            assert!(msg.contains(&format!("{pat:?}")), "{msg}");
        }
        assert!(t.is_empty());
        // The table stays usable.
        assert!(t.insert("/ok/{id}", ()).is_ok());
        assert!(t.find("/ok/1").is_some());
    }

    #[test]
    fn duplicates_rejected() {
        let mut t = PathTree::new();
        for (i, pat) in ["/a", "/a/{id}", "/t/{p:.+}", "/m/{a}.{b}", "/r/{n:\\d+}"]
            .iter()
            .enumerate()
        {
            assert!(t.insert(pat, i).is_ok());
            let err = t.insert(pat, 99).expect_err(pat);
            assert!(err.is_duplicate());
            assert!(err.to_string().contains("duplicate"));
        }
        // Equivalent patterns with different parameter names.
        for pat in ["/a/{other}", "/t/{q:.+}", "/m/{x}.{y}", "/r/{m:\\d+}"] {
            assert!(t.insert(pat, 99).expect_err(pat).is_duplicate(), "{pat}");
        }
        assert_eq!(t.len(), 5);
        assert_eq!(lookup(&t, "/a/1"), Some((1, p(&[("id", "1")]))));
        assert_eq!(
            lookup(&t, "/m/x.y"),
            Some((3, p(&[("a", "x"), ("b", "y")])))
        );
    }

    #[test]
    fn get_mut_and_iter() {
        let mut t = PathTree::new();
        t.insert("/a", vec!["GET"])
            .unwrap_or_else(|e| panic!("{e}"));
        t.insert("/b/{id}", vec!["GET"])
            .unwrap_or_else(|e| panic!("{e}"));
        t.get_mut("/b/{id}").expect("present").push("POST");
        assert!(t.get_mut("/b/{x}").is_none());
        assert!(t.get_mut("/b/1").is_none());
        let all: Vec<_> = t.iter().map(|(p, v)| (p.to_owned(), v.clone())).collect();
        assert_eq!(
            all,
            vec![
                ("/a".to_owned(), vec!["GET"]),
                ("/b/{id}".to_owned(), vec!["GET", "POST"])
            ]
        );
        let dbg = format!("{t:?}");
        assert!(dbg.contains("/b/{id}"), "{dbg}");
    }

    #[test]
    fn thousand_routes() {
        let mut t = PathTree::new();
        for i in 0..1000 {
            t.insert(&format!("/r{i}/items/{{id}}"), i)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        for i in 0..1000 {
            t.insert(&format!("/r{i}/items"), 1000 + i)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(t.len(), 2000);
        for i in 0..1000 {
            let path = format!("/r{i}/items/{}", i * 7);
            let m = t.find(&path).expect("match");
            assert_eq!(*m.value, i);
            assert_eq!(m.params.get("id"), Some((i * 7).to_string().as_str()));
            let static_path = format!("/r{i}/items");
            let m = t.find(&static_path).expect("match");
            assert_eq!(*m.value, 1000 + i);
            assert!(m.params.is_empty());
        }
        assert!(t.find("/r1000/items/1").is_none());
        assert!(t.find("/r1/items/1/x").is_none());
    }

    #[test]
    fn odd_paths_never_panic() {
        let t = tree(&[
            "/",
            "/{a}",
            "/{a}/{b}",
            "/x/{p:.*}",
            "/{n}.{e}",
            "/v{v:\\d+}/{w}",
            "//",
        ]);
        let long_segment = "a".repeat(100_000);
        let long_path = "/x".repeat(50_000);
        let slashes = "/".repeat(10_000);
        let paths = [
            "",
            "/",
            "//",
            "///",
            "?",
            "x",
            "/.",
            "/..",
            "/%",
            "/\u{0}",
            "/é/ü",
            long_segment.as_str(),
            long_path.as_str(),
            slashes.as_str(),
        ];
        for path in paths {
            let _ = t.find(path);
        }
        assert_eq!(lookup(&t, ""), None);
        assert_eq!(lookup(&t, "/"), Some((0, vec![])));
        assert_eq!(lookup(&t, "//"), Some((6, vec![])));
        assert_eq!(lookup(&t, "///"), None);
        let very_long = format!("/{long_segment}");
        assert_eq!(t.find(&very_long).map(|m| *m.value), Some(1));
        let empty: PathTree<()> = PathTree::default();
        assert!(empty.find("/").is_none());
        assert!(empty.find("").is_none());
    }

    #[test]
    fn slash_analysis() {
        for re in [
            "\\d+",
            "[0-9]+",
            "\\d{2,4}",
            "[a-z]+",
            "(?:jpg|png)",
            "(jpg|png)",
            "[a-f0-9]{32}",
            "\\w+",
            "[\\w.-]+",
            "(?i)[a-z]+",
            "(?P<x>a)b",
            "[]a]",
            "[:-z]",
        ] {
            assert!(cannot_match_slash(re), "{re}");
        }
        for re in [
            ".+",
            ".*",
            "[^/]+",
            "a/b",
            "\\D+",
            "\\W",
            "\\S",
            "[!-~]+",
            "[--0]",
            "\\pL",
            "\\x2f",
            "[[:punct:]]",
            "(?s).",
            "\\/",
            "[\\/]",
        ] {
            assert!(!cannot_match_slash(re), "{re}");
        }
    }

    /// A tiny deterministic PRNG for the property test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Generated route: pattern, reference full-path regex, sample path and
    /// the parameter values used in it.
    struct Generated {
        pattern: String,
        reference: String,
        path: String,
        params: Vec<(String, String)>,
    }

    fn generate(rng: &mut Rng) -> Generated {
        const WORDS: [&str; 6] = ["api", "users", "items", "v1", "static", "x"];
        let mut g = Generated {
            pattern: String::new(),
            reference: String::from("^"),
            path: String::new(),
            params: Vec::new(),
        };
        let nseg = 1 + rng.below(4);
        for s in 0..nseg {
            g.pattern.push('/');
            g.reference.push('/');
            g.path.push('/');
            let name = format!("p{s}");
            let value = format!("q{}", rng.below(50));
            let digits = format!("{}", rng.below(1000));
            match rng.below(if s + 1 == nseg { 7 } else { 6 }) {
                0 | 1 => {
                    let w = WORDS[rng.below(WORDS.len())];
                    g.pattern.push_str(w);
                    g.reference.push_str(w);
                    g.path.push_str(w);
                }
                2 => {
                    g.pattern.push_str(&format!("{{{name}}}"));
                    g.reference.push_str("([^/]+)");
                    g.path.push_str(&value);
                    g.params.push((name, value));
                }
                3 => {
                    g.pattern.push_str(&format!("{{{name}:\\d+}}"));
                    g.reference.push_str("(\\d+)");
                    g.path.push_str(&digits);
                    g.params.push((name, digits));
                }
                4 => {
                    g.pattern.push_str(&format!("{{{name}}}.json"));
                    g.reference.push_str("([^{}/]+)\\.json");
                    g.path.push_str(&format!("{value}.json"));
                    g.params.push((name, value));
                }
                5 => {
                    g.pattern.push_str(&format!("v{{{name}:\\d{{1,3}}}}"));
                    g.reference.push_str("v(\\d{1,3})");
                    g.path.push_str(&format!("v{digits}"));
                    g.params.push((name, digits));
                }
                _ => {
                    let tail = format!("{value}/{digits}/{value}");
                    g.pattern.push_str(&format!("{{{name}:.+}}"));
                    g.reference.push_str("(.+)");
                    g.path.push_str(&tail);
                    g.params.push((name, tail));
                }
            }
        }
        if rng.below(5) == 0 {
            g.pattern.push('/');
            g.reference.push('/');
            g.path.push('/');
        }
        g.reference.push('$');
        g
    }

    #[test]
    fn property_generated_paths_match_their_pattern() {
        for seed in 1..=20u64 {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ seed.wrapping_mul(0x9e37_79b9));
            let mut t = PathTree::new();
            let mut gens: Vec<Generated> = Vec::new();
            for _ in 0..60 {
                let g = generate(&mut rng);
                match t.insert(&g.pattern, gens.len()) {
                    Ok(()) => gens.push(g),
                    Err(e) => assert!(e.is_duplicate(), "{e}"),
                }
            }
            let refs: Vec<Regex> = gens
                .iter()
                .map(|g| Regex::new(&g.reference).expect("reference regex"))
                .collect();
            let mut own = 0;
            for (i, g) in gens.iter().enumerate() {
                let m = t
                    .find(&g.path)
                    .unwrap_or_else(|| panic!("{} not found for {}", g.path, g.pattern));
                let got = *m.value;
                // Whatever matched must really match the path.
                assert!(
                    refs[got].is_match(&g.path),
                    "{} matched {} instead of {}",
                    g.path,
                    gens[got].pattern,
                    g.pattern
                );
                let matching = refs.iter().filter(|r| r.is_match(&g.path)).count();
                if matching == 1 {
                    assert_eq!(got, i, "{} -> {}", g.path, gens[got].pattern);
                }
                if got == i {
                    own += 1;
                    let params: Vec<(String, String)> = m
                        .params
                        .iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                    assert_eq!(params, g.params, "{} for {}", g.path, g.pattern);
                }
            }
            // Make sure the generator exercises the property.
            assert!(
                gens.len() >= 30 && own * 3 >= gens.len(),
                "{own}/{}",
                gens.len()
            );
        }
    }
}
