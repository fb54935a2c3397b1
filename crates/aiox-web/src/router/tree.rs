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
//! `/users/new/edit` matches the second one. (aiohttp itself tries routes
//! purely in registration order; here a more specific route wins no matter
//! when it was added.)
//!
//! A regex parameter that provably cannot match `/` (such as `\d+`,
//! `[a-z0-9_-]+` or `(?:jpg|png)`) is matched against its own segment and the
//! trie continues below it. Any other regex (such as `.+`) is compiled,
//! together with the rest of the pattern, into one anchored "tail" regex
//! matched against the rest of the path, which gives exactly aiohttp's
//! whole-path regex semantics.
//!
//! Patterns that match the same paths in the same way (`/{a}` and `/{b}`)
//! are duplicates: the second [`PathTree::insert`] fails.
//!
//! # Example
//!
//! ```
//! use aiox_web::router::PathTree;
//!
//! let mut tree = PathTree::new();
//! tree.insert("/users/new", "new user form")?;
//! tree.insert("/users/{id}", "user")?;
//! tree.insert("/static/{path:.+}", "static file")?;
//!
//! let m = tree.find("/users/42").expect("matches");
//! assert_eq!(*m.value, "user");
//! assert_eq!(m.params.get("id"), Some("42"));
//!
//! let m = tree.find("/static/css/site.css").expect("matches");
//! assert_eq!(m.params.get("path"), Some("css/site.css"));
//!
//! assert!(tree.find("/users/42/").is_none());
//! # Ok::<(), aiox_web::router::PatternError>(())
//! ```
//!
//! # Performance
//!
//! Lookups cost about the same however many routes there are:
//!
//! * fully static patterns live in an exact-match table that is checked
//!   first (a static route always wins over dynamic ones for the same path,
//!   so this respects priority), guarded by a mask of the static patterns'
//!   lengths so most dynamic paths skip hashing entirely;
//! * static children of a trie node are found by a short linear scan or,
//!   for larger fan-out, an open-addressing table with an FxHash-style hash
//!   (no SipHash), and chains of static segments are stored as one edge;
//! * the walk only recurses where a node offers more than one way forward;
//! * captured values are stored inline for up to four parameters, so
//!   [`PathTree::find`] does not allocate unless a route has more parameters
//!   than that or a regex with several parameters reports its captures.

use std::collections::HashMap;
use std::error::Error;
use std::fmt;

use regex::Regex;

// ---------------------------------------------------------------------------
// Byte-string primitives and the static-key table
// ---------------------------------------------------------------------------

const FX_K: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline(always)]
fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(FX_K)
}

#[inline(always)]
fn load8(b: &[u8]) -> u64 {
    b.first_chunk::<8>().map_or(0, |c| u64::from_le_bytes(*c))
}

#[inline(always)]
fn load8_last(b: &[u8]) -> u64 {
    b.last_chunk::<8>().map_or(0, |c| u64::from_le_bytes(*c))
}

#[inline(always)]
fn load4(b: &[u8]) -> u32 {
    b.first_chunk::<4>().map_or(0, |c| u32::from_le_bytes(*c))
}

#[inline(always)]
fn load4_last(b: &[u8]) -> u32 {
    b.last_chunk::<4>().map_or(0, |c| u32::from_le_bytes(*c))
}

/// Packs a 0..=7 byte tail into a word (overlapping reads; the length is
/// mixed in separately by the caller).
#[inline(always)]
fn tail_word(rest: &[u8]) -> u64 {
    let n = rest.len();
    if n >= 4 {
        u64::from(load4(rest)) | (u64::from(load4_last(rest)) << 32)
    } else if n > 0 {
        let first = rest.first().copied().unwrap_or(0);
        let mid = rest.get(n / 2).copied().unwrap_or(0);
        let last = rest.last().copied().unwrap_or(0);
        u64::from(first) | (u64::from(mid) << 8) | (u64::from(last) << 16)
    } else {
        0
    }
}

/// A small, fast, non-cryptographic (FxHash-style) hash for short route
/// strings. Route tables are built by the application and lookups only ever
/// compare against registered keys, so HashDoS resistance is not needed.
/// The best-mixed bits are the high ones.
#[inline]
fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = (bytes.len() as u64).wrapping_mul(FX_K);
    let mut rest = bytes;
    while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
        h = mix(h, u64::from_le_bytes(*chunk));
        rest = tail;
    }
    mix(h, tail_word(rest))
}

/// Byte-string equality without a `memcmp` call, for short keys.
#[inline(always)]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n > 16 {
        return a == b;
    }
    if n >= 8 {
        load8(a) == load8(b) && load8_last(a) == load8_last(b)
    } else {
        tail_word(a) == tail_word(b)
    }
}

/// Index of the first `/` in `b`, or `b.len()`. Scans eight bytes at a time.
#[inline(always)]
fn find_slash(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const SLASHES: u64 = 0x2f2f_2f2f_2f2f_2f2f;
    let mut i = 0;
    while let Some(chunk) = b.get(i..).and_then(|s| s.first_chunk::<8>()) {
        let w = u64::from_le_bytes(*chunk) ^ SLASHES;
        // The lowest set bit marks the first zero byte exactly.
        let z = w.wrapping_sub(ONES) & !w & HIGHS;
        if z != 0 {
            return i + (z.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    // Fewer than eight bytes left: two overlapping 4-byte reads, since the
    // first one found no `/` in the overlap.
    let rest = b.get(i..).unwrap_or(&[]);
    if rest.len() >= 4 {
        let has = |w: u32| {
            let w = w ^ 0x2f2f_2f2f;
            w.wrapping_sub(0x0101_0101) & !w & 0x8080_8080
        };
        let z = has(load4(rest));
        if z != 0 {
            return i + (z.trailing_zeros() / 8) as usize;
        }
        let z = has(load4_last(rest));
        if z != 0 {
            return i + rest.len() - 4 + (z.trailing_zeros() / 8) as usize;
        }
        return b.len();
    }
    while let Some(&c) = b.get(i) {
        if c == b'/' {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// A string-keyed map specialised for route lookups: a plain list scanned
/// linearly while small, plus an open-addressing (linear probing) index of
/// `(hash tag, entry)` slots once it grows, kept at most half full.
struct StrTable<V> {
    entries: Vec<(Box<str>, V)>,
    /// Empty while `entries.len() <= LINEAR_MAX`; otherwise a power of two.
    slots: Vec<Slot>,
    /// `64 - log2(slots.len())`: the slot index is the top bits of the hash.
    shift: u32,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    tag: u32,
    /// Entry index + 1; 0 marks an empty slot.
    entry: u32,
}

const LINEAR_MAX: usize = 4;

impl<V> Default for StrTable<V> {
    fn default() -> Self {
        StrTable {
            entries: Vec::new(),
            slots: Vec::new(),
            shift: 63,
        }
    }
}

impl<V> StrTable<V> {
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[inline(always)]
    fn position(&self, key: &str) -> Option<usize> {
        let kb = key.as_bytes();
        if self.slots.is_empty() {
            return self
                .entries
                .iter()
                .position(|(k, _)| bytes_eq(k.as_bytes(), kb));
        }
        let h = hash_bytes(kb);
        let tag = (h >> 32) as u32;
        let mask = self.slots.len() - 1;
        let mut i = (h >> self.shift) as usize & mask;
        loop {
            let slot = *self.slots.get(i)?;
            if slot.entry == 0 {
                return None;
            }
            if slot.tag == tag {
                let e = slot.entry as usize - 1;
                if let Some((k, _)) = self.entries.get(e) {
                    if bytes_eq(k.as_bytes(), kb) {
                        return Some(e);
                    }
                }
            }
            i = (i + 1) & mask;
        }
    }

    #[inline(always)]
    fn get(&self, key: &str) -> Option<&V> {
        let e = self.position(key)?;
        self.entries.get(e).map(|(_, v)| v)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let e = self.position(key)?;
        self.entries.get_mut(e).map(|(_, v)| v)
    }

    /// Adds `key`, which the caller has checked is absent.
    fn insert(&mut self, key: Box<str>, value: V) {
        self.entries.push((key, value));
        let len = self.entries.len();
        if len <= LINEAR_MAX {
            return;
        }
        if self.slots.is_empty() || len * 2 > self.slots.len() {
            let cap = (len * 4).next_power_of_two().max(16);
            self.slots = vec![Slot::default(); cap];
            self.shift = 64 - cap.trailing_zeros();
            for e in 0..len {
                self.place(e);
            }
        } else {
            self.place(len - 1);
        }
    }

    fn place(&mut self, e: usize) {
        let Some((key, _)) = self.entries.get(e) else {
            return;
        };
        let h = hash_bytes(key.as_bytes());
        let mask = self.slots.len() - 1;
        let mut i = (h >> self.shift) as usize & mask;
        // The table is at most half full, so an empty slot exists.
        while let Some(slot) = self.slots.get_mut(i) {
            if slot.entry == 0 {
                *slot = Slot {
                    tag: (h >> 32) as u32,
                    entry: u32::try_from(e + 1).unwrap_or(u32::MAX),
                };
                return;
            }
            i = (i + 1) & mask;
        }
    }
}

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// A route table mapping aiohttp-style URL patterns to values of type `T`.
///
/// See the [module documentation](self) for the pattern syntax, the
/// matching priority and an example.
pub struct PathTree<T> {
    /// Trie nodes; index 0 is the root (the segment right after the leading `/`).
    nodes: Vec<Node>,
    /// All routes in registration order.
    routes: Vec<Route<T>>,
    /// Fully static patterns (pattern string == path) -> route index.
    exact: StrTable<usize>,
    /// Bit `min(len, 63)` is set for the length of every static pattern.
    static_lens: u64,
    /// Every registered pattern string -> route index.
    by_pattern: HashMap<Box<str>, usize>,
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
    /// Static children keyed by their first segment.
    statics: StrTable<Edge>,
    /// Child for a whole-segment `{name}`.
    param: Option<usize>,
    /// Regex / mixed children and tail regexes, in registration order.
    dynamic: Vec<Dyn>,
}

impl Node {
    #[inline]
    fn has_children(&self) -> bool {
        !self.statics.is_empty() || self.param.is_some() || !self.dynamic.is_empty()
    }
}

/// A static edge: its first segment is the key in `Node::statics`; `tail`
/// holds any further static segments, each preceded by `/` (a chain of
/// nodes with a single static child and no route is stored as one edge).
struct Edge {
    tail: Box<str>,
    child: usize,
}

impl Edge {
    /// Matches the edge's tail against `after` (the path following the
    /// first segment: empty, or starting with `/`). On success returns what
    /// follows the edge: `None` at the end of the path, or the rest after
    /// the next `/`.
    #[inline(always)]
    fn follow<'p>(&self, after: &'p str) -> Option<Option<&'p str>> {
        let t = self.tail.as_bytes();
        let rem = if t.is_empty() {
            after
        } else {
            let head = after.as_bytes().get(..t.len())?;
            if !bytes_eq(head, t) {
                return None;
            }
            after.get(t.len()..)?
        };
        match rem.as_bytes().first() {
            None => Some(None),
            Some(b'/') => Some(rem.get(1..)),
            Some(_) => None,
        }
    }

    /// The tail's segments.
    fn tail_segments(&self) -> Vec<&str> {
        match self.tail.strip_prefix('/') {
            Some(t) => t.split('/').collect(),
            None => Vec::new(),
        }
    }
}

/// Joins segments into an edge tail (each preceded by `/`).
fn join_tail<S: AsRef<str>>(segments: &[S]) -> Box<str> {
    let mut out = String::new();
    for s in segments {
        out.push('/');
        out.push_str(s.as_ref());
    }
    out.into_boxed_str()
}

/// Outcome of moving to a child node during a lookup.
enum Descent<'t, 'p> {
    /// The lookup is decided here: the route, or no match on this branch.
    Done(Option<usize>),
    /// Keep matching the rest of the path (after a `/`) below the node.
    Walk(&'t Node, &'p str),
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
            exact: StrTable::default(),
            static_lens: 0,
            by_pattern: HashMap::new(),
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
            self.static_lens |= 1 << pattern.len().min(63);
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
        let mut steps = steps.into_iter().peekable();
        while let Some(step) = steps.next() {
            cur = match step {
                Step::Static(key) => {
                    let mut run = vec![key];
                    while let Some(Step::Static(_)) = steps.peek() {
                        if let Some(Step::Static(key)) = steps.next() {
                            run.push(key);
                        }
                    }
                    self.attach_statics(cur, &run)
                }
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

    /// Adds a run of consecutive static segments below `cur`, following and
    /// splitting compressed edges as needed; returns the node after the run.
    fn attach_statics(&mut self, mut cur: usize, run: &[Box<str>]) -> usize {
        let mut pos = 0;
        while let Some(first) = run.get(pos) {
            let rest = run.get(pos + 1..).unwrap_or(&[]);
            let existing = self.nodes[cur].statics.get(first).map(|edge| {
                let tail: Vec<Box<str>> = edge.tail_segments().into_iter().map(Box::from).collect();
                (tail, edge.child)
            });
            let Some((tail, child)) = existing else {
                let child = self.new_node();
                let edge = Edge {
                    tail: join_tail(rest),
                    child,
                };
                self.nodes[cur].statics.insert(first.clone(), edge);
                return child;
            };
            let common = tail.iter().zip(rest).take_while(|(a, b)| a == b).count();
            if common == tail.len() {
                cur = child;
            } else {
                // Split the edge after `common` tail segments.
                let mid = self.new_node();
                let lower = Edge {
                    tail: join_tail(tail.get(common + 1..).unwrap_or(&[])),
                    child,
                };
                self.nodes[mid].statics.insert(tail[common].clone(), lower);
                if let Some(edge) = self.nodes[cur].statics.get_mut(first) {
                    edge.tail = join_tail(tail.get(..common).unwrap_or(&[]));
                    edge.child = mid;
                }
                cur = mid;
            }
            pos += 1 + common;
        }
        cur
    }

    /// Finds the route matching `path`, a raw request path without the
    /// query string. Parameter values are returned as raw slices of `path`
    /// (not percent-decoded).
    #[inline]
    pub fn find<'t, 'p>(&'t self, path: &'p str) -> Option<PathMatch<'t, 'p, T>> {
        // A static route always wins for its exact path, so the exact map
        // can be consulted first. The length mask skips hashing paths whose
        // length no static pattern has.
        if (self.static_lens >> path.len().min(63)) & 1 != 0 {
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
    /// priority order: static edge, then `{name}`, then the dynamic entries.
    /// Every alternative but the last one at a node is tried by recursion
    /// (restoring `vals` if it fails); the last one continues the loop, so a
    /// plain descent does not recurse. On failure `vals` may hold leftovers,
    /// which the caller truncates. Each node is visited at most once per
    /// lookup, since a node's depth fixes the segment it is matched against.
    fn walk<'t, 'p>(
        &'t self,
        mut node: &'t Node,
        mut rest: &'p str,
        vals: &mut Values<'p>,
    ) -> Option<usize> {
        loop {
            // `/` is ASCII, so this never splits a character.
            let (seg, after) = rest.split_at_checked(find_slash(rest.as_bytes()))?;
            let param = match node.param {
                Some(child) if !seg.is_empty() => Some(child),
                _ => None,
            };
            let more = param.is_some() || !node.dynamic.is_empty();
            if let Some(edge) = node.statics.get(seg) {
                if let Some(next) = edge.follow(after) {
                    if more {
                        if let Some(r) = self.descend(edge.child, next, vals) {
                            return Some(r);
                        }
                    } else {
                        match self.step(edge.child, next) {
                            Descent::Done(r) => return r,
                            Descent::Walk(n, r) => {
                                (node, rest) = (n, r);
                                continue;
                            }
                        }
                    }
                }
            }
            let next = if after.is_empty() {
                None
            } else {
                after.get(1..)
            };
            if let Some(child) = param {
                if node.dynamic.is_empty() {
                    vals.push(seg);
                    match self.step(child, next) {
                        Descent::Done(r) => return r,
                        Descent::Walk(n, r) => {
                            (node, rest) = (n, r);
                            continue;
                        }
                    }
                }
                let mark = vals.len();
                vals.push(seg);
                if let Some(r) = self.descend(child, next, vals) {
                    return Some(r);
                }
                vals.truncate(mark);
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
            return None;
        }
    }

    /// Moves to `child` with `next` left to match.
    #[inline(always)]
    fn step<'t, 'p>(&'t self, child: usize, next: Option<&'p str>) -> Descent<'t, 'p> {
        match self.nodes.get(child) {
            None => Descent::Done(None),
            Some(node) => match next {
                None => Descent::Done(node.route),
                Some(rest) if node.has_children() => Descent::Walk(node, rest),
                Some(_) => Descent::Done(None),
            },
        }
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
        for seed in 1..=6u64 {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ seed.wrapping_mul(0x9e37_79b9));
            let mut t = PathTree::new();
            let mut gens: Vec<Generated> = Vec::new();
            for _ in 0..50 {
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
            let any_ref = regex::RegexSet::new(gens.iter().map(|g| g.reference.as_str()))
                .expect("reference regex set");
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
                let matching = any_ref.matches(&g.path).iter().count();
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
                gens.len() >= 30 && own * 5 >= gens.len(),
                "{own}/{}",
                gens.len()
            );

            // Variants of the sample paths: whatever `find` returns must
            // really match, and it must find a route whenever one matches.
            for g in &gens {
                let segs: Vec<&str> = g.path.split('/').collect();
                let mut variants = vec![
                    format!("{}/x", g.path),
                    format!("{}/", g.path),
                    g.path.trim_end_matches('/').to_owned(),
                    segs[..segs.len() - 1].join("/"),
                    format!("/api{}", g.path),
                ];
                for (j, _) in segs.iter().enumerate().skip(1) {
                    for replacement in ["users", "7", "q1.json", "v12", "", "a/b"] {
                        let mut s = segs.clone();
                        s[j] = replacement;
                        variants.push(s.join("/"));
                    }
                }
                for path in &variants {
                    let expected = any_ref.is_match(path);
                    match t.find(path) {
                        Some(m) => assert!(
                            refs[*m.value].is_match(path),
                            "{path} wrongly matched {}",
                            gens[*m.value].pattern
                        ),
                        None => assert!(!expected, "{path} should have matched"),
                    }
                }
            }
        }
    }

    #[test]
    fn random_patterns_and_paths_never_panic() {
        const ALPHABET: &[&str] = &[
            "/", "/", "/", "{", "}", ":", "a", "b", "_", "1", "\\", "\\d", "+", "*", ".", "(", ")",
            "[", "]", "^", "$", "|", "?", "{a}", "{b:\\d+}", "{c:.+}", "é", "%2F", "-", "{", "}",
            "x{d}y",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut t = PathTree::new();
        let mut accepted = Vec::new();
        for i in 0..2000 {
            let len = rng.below(8);
            let mut pattern = String::new();
            for _ in 0..len {
                pattern.push_str(ALPHABET[rng.below(ALPHABET.len())]);
            }
            if rng.below(4) != 0 {
                pattern.insert(0, '/');
            }
            if t.insert(&pattern, i).is_ok() {
                accepted.push(pattern);
            }
        }
        assert!(accepted.len() > 100, "{}", accepted.len());
        for _ in 0..4000 {
            let len = rng.below(10);
            let mut path = String::new();
            for _ in 0..len {
                path.push_str(ALPHABET[rng.below(ALPHABET.len())]);
            }
            if let Some(m) = t.find(&path) {
                assert!(m.params.len() <= 8);
                for (_, v) in m.params.iter() {
                    assert!(path.contains(v));
                }
            }
        }
        // Every accepted static pattern finds itself.
        for (i, pattern) in t
            .iter()
            .map(|(p, v)| (*v, p.to_owned()))
            .collect::<Vec<_>>()
        {
            if !pattern.contains('{') {
                assert_eq!(t.find(&pattern).map(|m| *m.value), Some(i), "{pattern}");
            }
        }
    }

    #[test]
    fn compressed_static_edges() {
        let t = tree(&[
            "/a/b/c/{x}",
            "/a/b/d/{x}",
            "/a/{y}/z",
            "/a/b/{w}",
            "/a//b/{x}",
            "/a/b/c/{x}/e/f/g",
            "/a/b/c/{x}/e/h",
            "/a/b/c/{x}/e/",
        ]);
        assert_eq!(lookup(&t, "/a/b/c/1"), Some((0, p(&[("x", "1")]))));
        assert_eq!(lookup(&t, "/a/b/d/1"), Some((1, p(&[("x", "1")]))));
        assert_eq!(lookup(&t, "/a/q/z"), Some((2, p(&[("y", "q")]))));
        assert_eq!(lookup(&t, "/a/b/z"), Some((3, p(&[("w", "z")]))));
        assert_eq!(lookup(&t, "/a/bb/z"), Some((2, p(&[("y", "bb")]))));
        assert_eq!(lookup(&t, "/a/b/k"), Some((3, p(&[("w", "k")]))));
        assert_eq!(lookup(&t, "/a/b/c"), Some((3, p(&[("w", "c")]))));
        assert_eq!(lookup(&t, "/a//b/1"), Some((4, p(&[("x", "1")]))));
        assert_eq!(lookup(&t, "/a/b/c/1/e/f/g"), Some((5, p(&[("x", "1")]))));
        assert_eq!(lookup(&t, "/a/b/c/1/e/h"), Some((6, p(&[("x", "1")]))));
        assert_eq!(lookup(&t, "/a/b/c/1/e/"), Some((7, p(&[("x", "1")]))));
        for miss in [
            "/a/b/c/1/e",
            "/a/b/c/1/e/f",
            "/a/b/c/1/e/f/",
            "/a/b/c/1/e/fg",
            "/a/b/c/1/e/f/gg",
            "/a/b/c/1/e/h/",
            "/a/b",
            "/a",
            "/a/",
            "/a//b",
            "/a//b/",
        ] {
            assert_eq!(lookup(&t, miss), None, "{miss}");
        }
        // `{x}` needs a non-empty segment, and `{w}` has nothing below it.
        assert_eq!(lookup(&t, "/a/b/c/"), None);

        // A compressed edge that fails part-way backtracks to `{y}`.
        let t = tree(&["/p/q/r/s/{x}", "/p/{y}/r/t"]);
        assert_eq!(lookup(&t, "/p/q/r/s/1"), Some((0, p(&[("x", "1")]))));
        assert_eq!(lookup(&t, "/p/q/r/t"), Some((1, p(&[("y", "q")]))));
        assert_eq!(lookup(&t, "/p/q/r"), None);
        assert_eq!(lookup(&t, "/p/q/r/s"), None);
    }

    #[test]
    fn table_and_byte_helpers() {
        let mut table = StrTable::default();
        let keys: Vec<String> = (0..500)
            .map(|i| format!("key-{i}-{}", "x".repeat(i % 23)))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(table.get(k).is_none());
            table.insert(k.as_str().into(), i);
            for (j, k) in keys.iter().enumerate().take(i + 1).step_by(37) {
                assert_eq!(table.get(k), Some(&j));
            }
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(table.get(k), Some(&i));
            assert_eq!(table.get(&format!("{k}!")), None);
        }
        assert_eq!(table.get(""), None);

        let words = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "abcdefgh",
            "abcdefghi",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
        ];
        for a in words {
            for b in words {
                assert_eq!(bytes_eq(a.as_bytes(), b.as_bytes()), a == b, "{a} {b}");
            }
            let mut changed = a.as_bytes().to_vec();
            for i in 0..changed.len() {
                changed[i] ^= 1;
                assert!(!bytes_eq(a.as_bytes(), &changed));
                changed[i] ^= 1;
            }
        }
        for s in [
            "",
            "/",
            "a",
            "a/",
            "abcdefg/",
            "abcdefgh/",
            "abcdefghijklmnopqrstuvwxyz",
            "é/x",
            "12345678901234/6/",
        ] {
            assert_eq!(
                find_slash(s.as_bytes()),
                s.find('/').unwrap_or(s.len()),
                "{s}"
            );
        }
        for len in 0..24 {
            let base = "x".repeat(len);
            assert_eq!(find_slash(base.as_bytes()), len);
            for at in 0..len {
                let mut v = base.clone().into_bytes();
                v[at] = b'/';
                if at + 2 < len {
                    v[at + 2] = b'/';
                }
                assert_eq!(find_slash(&v), at, "{len} {at}");
            }
        }
    }
}
