//! Raw-socket helpers for the `server_*` end-to-end tests: a connection that writes
//! bytes as given and reads HTTP/1 responses one at a time, so a test can assert the
//! exact status line, headers and whether (and when) the server closed the connection.
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The generous upper bound for anything the server must do "soon" (answer, close).
pub(crate) const SOON: Duration = Duration::from_secs(5);

/// One HTTP/1 response as read off the wire.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub(crate) version: String,
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True if a `Connection` header carries the `close` token.
    pub(crate) fn says_close(&self) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("close"))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How a connection ended, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// The server closed it cleanly (FIN).
    Eof,
    /// The server reset it (RST), e.g. closing with unread request bytes.
    Reset,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a complete chunked body at the start of `buf`: `(body, bytes used)`, or
/// `None` if more bytes are needed.
fn dechunk(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_end) = find(&buf[pos..], b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[pos..pos + line_end])
            .map_err(|_| "chunk size line is not UTF-8".to_owned())?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size line {line:?}"))?;
        pos += line_end + 2;
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            let Some(end) = find(&buf[pos..], b"\r\n") else {
                return Ok(None);
            };
            if end != 0 {
                return Err("unexpected trailers in a response".to_owned());
            }
            return Ok(Some((body, pos + 2)));
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".to_owned());
        }
        pos += size + 2;
    }
}

/// Parses the first response in `buf`: `(response, bytes used)`, or `None` if more
/// bytes are needed. `eof` says the peer closed, which ends a close-delimited body.
fn parse(buf: &[u8], eof: bool) -> Result<Option<(Response, usize)>, String> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| format!("response head is not UTF-8: {:?}", &buf[..head_end]))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_owned();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: {head:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let reason = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut res = Response {
        version,
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    let body_start = head_end + 4;
    let rest = &buf[body_start..];
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Some((res, body_start)));
    }
    if res
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        return Ok(dechunk(rest)?.map(|(body, used)| {
            res.body = body;
            (res, body_start + used)
        }));
    }
    if let Some(len) = res.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad content-length {len:?}"))?;
        if rest.len() < len {
            return Ok(None);
        }
        res.body = rest[..len].to_vec();
        return Ok(Some((res, body_start + len)));
    }
    if eof {
        res.body = rest.to_vec();
        return Ok(Some((res, buf.len())));
    }
    Ok(None)
}

/// A client connection speaking raw bytes.
#[derive(Debug)]
pub(crate) struct Wire<S = TcpStream> {
    stream: S,
    buf: Vec<u8>,
    eof: Option<Closed>,
}

impl Wire<TcpStream> {
    /// Connects to `addr` (panics if the connection is refused).
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        Self::new(stream)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub(crate) fn new(stream: S) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            eof: None,
        }
    }

    /// Writes `bytes`, panicking on error.
    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .unwrap_or_else(|e| panic!("write failed: {e}"));
    }

    /// Writes `bytes`; the server may already have closed (it answers bad heads before
    /// reading them whole), so errors are returned, not raised.
    pub(crate) async fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads more bytes into the buffer; `Ok(0)` once the peer closed or reset.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.eof.is_some() {
            return Ok(0);
        }
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(0) => {
                self.eof = Some(Closed::Eof);
                Ok(0)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                ) =>
            {
                self.eof = Some(Closed::Reset);
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the next response; `Err` describes why there is none (closed first,
    /// garbage, or nothing within `limit`).
    pub(crate) async fn try_response_within(
        &mut self,
        limit: Duration,
    ) -> Result<Response, String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some((res, used)) = parse(&self.buf, self.eof.is_some())? {
                self.buf.drain(..used);
                return Ok(res);
            }
            if let Some(closed) = self.eof {
                return Err(format!(
                    "connection closed ({closed:?}) before a complete response; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "no complete response within {limit:?}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ));
            }
            match tokio::time::timeout(deadline - now, self.fill()).await {
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) => return Err(format!("read failed: {e}")),
            }
        }
    }

    /// Reads the next response, panicking if none arrives within [`SOON`].
    pub(crate) async fn response(&mut self) -> Response {
        self.try_response_within(SOON)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits up to `limit` for the server to close the connection, failing if it sends
    /// any byte first. Returns how the connection ended.
    pub(crate) async fn closed_within(&mut self, limit: Duration) -> Result<Closed, String> {
        let deadline = Instant::now() + limit;
        loop {
            if !self.buf.is_empty() {
                return Err(format!(
                    "expected the connection to close, got bytes {:?}",
                    String::from_utf8_lossy(&self.buf)
                ));
            }
            if let Some(closed) = self.eof {
                return Ok(closed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("connection still open after {limit:?}"));
            }
            match tokio::time::timeout(deadline - now, self.fill()).await {
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) => return Err(format!("read failed: {e}")),
            }
        }
    }

    /// Asserts the server closes the connection within [`SOON`] without sending more.
    pub(crate) async fn assert_closed(&mut self) -> Closed {
        self.closed_within(SOON)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// True if nothing arrives and the connection stays open for `period`.
    pub(crate) async fn quiet_for(&mut self, period: Duration) -> bool {
        let _ = tokio::time::timeout(period, async {
            while self.eof.is_none() && self.buf.is_empty() {
                if self.fill().await.is_err() {
                    break;
                }
            }
        })
        .await;
        self.eof.is_none() && self.buf.is_empty()
    }

    /// Everything received so far and not yet parsed.
    pub(crate) fn pending_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Reads until the peer closes (or `limit` passes) and returns every byte received
    /// (unparsed), with how it ended (`None`: still open).
    pub(crate) async fn read_to_close(&mut self, limit: Duration) -> (Vec<u8>, Option<Closed>) {
        let _ = tokio::time::timeout(limit, async {
            while self.eof.is_none() {
                if self.fill().await.is_err() {
                    break;
                }
            }
        })
        .await;
        (std::mem::take(&mut self.buf), self.eof)
    }

    pub(crate) fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}

/// Sends `request` on a new connection (write errors ignored: the server may answer
/// and close before reading it all), reads one response and asserts that the server
/// then closes the connection.
pub(crate) async fn one_shot_then_close(addr: SocketAddr, request: &[u8]) -> Response {
    let mut wire = Wire::connect(addr).await;
    let _ = wire.try_send(request).await;
    let res = wire.response().await;
    wire.assert_closed().await;
    res
}

/// `GET {path}` with a `Host` header, as bytes.
pub(crate) fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}
