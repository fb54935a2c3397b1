//! Helpers shared by the `app_*` end-to-end tests: an event log for ordering
//! assertions and a parser for the raw HTTP/1 bytes `TestClient::raw` returns.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

/// A shared, ordered log of events, as the tests' hooks, middleware and handlers
/// record them.
#[derive(Clone, Default)]
pub(crate) struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&self, event: impl Into<String>) {
        self.0
            .lock()
            .expect("event log poisoned")
            .push(event.into());
    }

    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("event log poisoned"))
    }

    pub(crate) fn snapshot(&self) -> Vec<String> {
        self.0.lock().expect("event log poisoned").clone()
    }
}

/// One HTTP/1 response parsed out of raw bytes.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses the first response in `raw` (status line, headers, and a body framed by
/// `Content-Length` or chunked encoding, or running to the end of the bytes).
/// Panics with the raw text if it is not an HTTP/1 response.
pub(crate) fn parse_response(raw: &[u8]) -> RawResponse {
    let text = String::from_utf8_lossy(raw);
    let head_end =
        find(raw, b"\r\n\r\n").unwrap_or_else(|| panic!("no complete response head in {text:?}"));
    let head = std::str::from_utf8(&raw[..head_end])
        .unwrap_or_else(|_| panic!("response head is not UTF-8: {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    assert!(
        version.starts_with("HTTP/1."),
        "not an HTTP/1 response: {text:?}"
    );
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {text:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header line {line:?}"));
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    let rest = &raw[head_end + 4..];
    let mut res = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = res.header("content-length") {
        let len: usize = len.parse().expect("bad content-length");
        assert!(rest.len() >= len, "truncated body in {text:?}");
        res.body = rest[..len].to_vec();
    } else if res
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        let mut rest = rest;
        loop {
            let line_end = find(rest, b"\r\n").expect("truncated chunk size");
            let size_text = std::str::from_utf8(&rest[..line_end]).expect("chunk size");
            let size_text = size_text.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16).expect("chunk size");
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            res.body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    } else {
        res.body = rest.to_vec();
    }
    res
}
