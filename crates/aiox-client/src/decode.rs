//! Transparent response decompression (`gzip`, `deflate`, `br`, `zstd`) with
//! decompression-bomb limits.
//!
//! [`codings`] reads a response's `Content-Encoding`; [`decode`] turns the encoded
//! body stream into the decoded one, chunk by chunk, undoing the codings in reverse
//! order. It counts the encoded bytes the decoders consume and the decoded bytes they
//! produce: once the output passes [`DecompressionLimits::ratio_after`], output more
//! than [`DecompressionLimits::max_ratio`] times the input is a decompression bomb and
//! ends the body with an [`ErrorKind::Decode`] error (HARDENING case 89).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use async_compression::tokio::bufread::{
    BrotliDecoder, DeflateDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder,
};
use async_compression::zstd::DParameter;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, stream};
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, HeaderValue};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader, ReadBuf};
use tokio_util::io::StreamReader;

use crate::error::{Error, ErrorKind};

/// Output bytes above which the ratio check starts: 1 MiB (HARDENING 89).
pub const DEFAULT_DECOMPRESSION_RATIO_AFTER: u64 = 1024 * 1024;

/// Largest decoded/encoded ratio tolerated past that point: 100 (HARDENING 89; urllib3
/// CVE-2025-66471, aiohttp 3.13.3).
pub const DEFAULT_MAX_DECOMPRESSION_RATIO: u64 = 100;

/// The `Accept-Encoding` value sent when decompression is on: every coding [`decode`]
/// understands.
pub(crate) const ACCEPT_ENCODING: HeaderValue = HeaderValue::from_static("gzip, deflate, br, zstd");

/// Most codings one response may stack; more is refused as a denial of service (curl's
/// `MAX_ENCODE_STACK`, CVE-2022-32206).
const MAX_CODINGS: usize = 5;

/// Largest zstd window accepted: 8 MiB, the limit RFC 9659 sets for the `zstd` content
/// coding; a frame declaring more would make the decoder allocate it up front.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// Capacity of each decoded chunk handed out.
const CHUNK: usize = 32 * 1024;

/// Limits on a decoded response body, against decompression bombs.
///
/// ```
/// # use aiox_client::DecompressionLimits;
/// let limits = DecompressionLimits::default().max_ratio(50).max_size(Some(512 << 20));
/// assert_eq!(limits.ratio_after, 1024 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecompressionLimits {
    /// Largest tolerated ratio of decoded bytes to encoded bytes once more than
    /// [`ratio_after`](Self::ratio_after) bytes were decoded. Default 100 (HARDENING 89:
    /// urllib3 CVE-2025-66471, aiohttp 3.13.3; deflate cannot exceed about 1032:1, brotli
    /// and zstd go far beyond). `u64::MAX` turns the check off.
    pub max_ratio: u64,
    /// Decoded bytes tolerated before the ratio is checked, so small, highly compressible
    /// bodies pass. Default 1 MiB (HARDENING 89).
    pub ratio_after: u64,
    /// Largest decoded body, whatever the ratio. Default `None`: streaming is unlimited,
    /// the buffered helpers have their own cap (HARDENING 90).
    pub max_size: Option<u64>,
}

impl Default for DecompressionLimits {
    fn default() -> Self {
        Self {
            max_ratio: DEFAULT_MAX_DECOMPRESSION_RATIO,
            ratio_after: DEFAULT_DECOMPRESSION_RATIO_AFTER,
            max_size: None,
        }
    }
}

impl DecompressionLimits {
    /// Sets [`max_ratio`](Self::max_ratio) (default 100).
    pub fn max_ratio(mut self, ratio: u64) -> Self {
        self.max_ratio = ratio;
        self
    }

    /// Sets [`ratio_after`](Self::ratio_after) (default 1 MiB).
    pub fn ratio_after(mut self, bytes: u64) -> Self {
        self.ratio_after = bytes;
        self
    }

    /// Sets [`max_size`](Self::max_size) (default `None`, unlimited).
    pub fn max_size(mut self, bytes: Option<u64>) -> Self {
        self.max_size = bytes;
        self
    }
}

/// A content coding [`decode`] can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// `gzip` (and its alias `x-gzip`), RFC 1952.
    Gzip,
    /// `deflate`: zlib-wrapped (RFC 1950) as RFC 9110 says, or raw deflate (RFC 1951) as
    /// some servers send it.
    Deflate,
    /// `br`, RFC 7932.
    Brotli,
    /// `zstd`, RFC 8878.
    Zstd,
}

impl Coding {
    /// The coding for one `Content-Encoding` token; `None` when unknown.
    fn from_token(token: &str) -> Option<Self> {
        [
            ("gzip", Coding::Gzip),
            ("x-gzip", Coding::Gzip),
            ("deflate", Coding::Deflate),
            ("br", Coding::Brotli),
            ("zstd", Coding::Zstd),
        ]
        .into_iter()
        .find(|(name, _)| token.eq_ignore_ascii_case(name))
        .map(|(_, coding)| coding)
    }

    /// The coding's name in error messages.
    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "brotli",
            Coding::Zstd => "zstd",
        }
    }
}

/// The codings of a `Content-Encoding` header in the order they were applied; `None`
/// when absent/identity, or when any coding is unknown (then the body is passed through
/// untouched and the header kept).
pub(crate) fn codings(headers: &HeaderMap) -> Option<Vec<Coding>> {
    let mut out = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let value = value.to_str().ok()?;
        for token in value.split(',').map(|t| t.trim_matches([' ', '\t'])) {
            if token.is_empty() || token.eq_ignore_ascii_case("identity") {
                continue;
            }
            out.push(Coding::from_token(token)?);
        }
    }
    if out.is_empty() { None } else { Some(out) }
}

/// A response body as a stream of chunks.
pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send + 'static>>;

/// Decodes `input` (undoing `codings` in reverse order), enforcing `limits`.
///
/// Chunks come out as they decode, at most 32 KiB each, and only as fast as they are
/// polled. An error from `input` comes out unchanged; corrupt or truncated data and a
/// broken limit come out as [`ErrorKind::Decode`]. After an error the stream ends. An
/// empty `input` decodes to an empty body; an empty `codings` returns `input` as is.
pub(crate) fn decode(
    codings: &[Coding],
    input: ByteStream,
    limits: DecompressionLimits,
) -> ByteStream {
    if codings.is_empty() {
        return input;
    }
    if codings.len() > MAX_CODINGS {
        let message = format!(
            "too many content codings: {} (at most {MAX_CODINGS})",
            codings.len()
        );
        return Box::pin(stream::once(async move {
            Err(Error::new(ErrorKind::Decode, message))
        }));
    }
    let consumed = Arc::new(AtomicU64::new(0));
    let to_io: ToIo = |chunk| chunk.map_err(io::Error::other);
    let raw = Counted {
        inner: StreamReader::new(input.map(to_io)),
        consumed: Arc::clone(&consumed),
    };
    let state = Decoding {
        stage: Stage::Start(codings.to_vec(), raw),
        consumed,
        produced: 0,
        limits,
    };
    Box::pin(stream::unfold(state, |mut state| async move {
        let item = state.next_chunk().await?;
        Some((item, state))
    }))
}

/// Carries an error of `input` through the I/O layers, to be recovered by [`from_io`].
type ToIo = fn(Result<Bytes, Error>) -> io::Result<Bytes>;
type Raw = StreamReader<stream::Map<ByteStream, ToIo>, Bytes>;
type Reader = Pin<Box<dyn AsyncRead + Send>>;
type BufSource = Pin<Box<dyn AsyncBufRead + Send>>;

/// The state behind the stream [`decode`] returns.
struct Decoding {
    stage: Stage,
    /// Encoded bytes the innermost decoder consumed, counted by [`Counted`].
    consumed: Arc<AtomicU64>,
    /// Decoded bytes handed out (or about to be).
    produced: u64,
    limits: DecompressionLimits,
}

enum Stage {
    /// Nothing read yet: the decoders are built on the first poll, because `deflate`
    /// must look at its first two bytes.
    Start(Vec<Coding>, Counted),
    Reading(Reader),
    Done,
}

impl Decoding {
    /// The next decoded chunk; `None` at the end and after an error.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, Error>> {
        loop {
            match std::mem::replace(&mut self.stage, Stage::Done) {
                Stage::Start(codings, raw) => match build(&codings, raw).await {
                    Ok(Some(reader)) => self.stage = Stage::Reading(reader),
                    Ok(None) => return None,
                    Err(e) => return Some(Err(from_io(e))),
                },
                Stage::Reading(mut reader) => {
                    let mut buf = BytesMut::with_capacity(CHUNK);
                    return match reader.read_buf(&mut buf).await {
                        Ok(0) => None,
                        Ok(n) => {
                            self.produced = self.produced.saturating_add(n as u64);
                            if let Err(e) = self.check_limits() {
                                return Some(Err(e));
                            }
                            self.stage = Stage::Reading(reader);
                            Some(Ok(buf.freeze()))
                        }
                        Err(e) => Some(Err(from_io(e))),
                    };
                }
                Stage::Done => return None,
            }
        }
    }

    fn check_limits(&self) -> Result<(), Error> {
        let produced = self.produced;
        let consumed = self.consumed.load(Ordering::Relaxed);
        if let Some(max) = self.limits.max_size.filter(|&max| produced > max) {
            return Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "decompression limit: decoded body over {max} bytes ({consumed} encoded bytes read)"
                ),
            ));
        }
        let ratio = self.limits.max_ratio;
        if produced > self.limits.ratio_after && produced > consumed.saturating_mul(ratio) {
            return Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "decompression limit: {produced} bytes decoded from {consumed} encoded bytes, over the {ratio}:1 ratio allowed past {} bytes",
                    self.limits.ratio_after
                ),
            ));
        }
        Ok(())
    }
}

/// Stacks the decoders for `codings` on `raw`; `None` if the body is empty.
async fn build(codings: &[Coding], mut raw: Counted) -> io::Result<Option<Reader>> {
    // Decoders report an empty input as truncated; an empty body is fine, though
    // (a HEAD-like reply, or a server that compressed nothing).
    if raw.fill_buf().await?.is_empty() {
        return Ok(None);
    }
    let mut layers = codings.iter().rev().copied();
    let Some(first) = layers.next() else {
        return Ok(None);
    };
    let mut reader = layer(first, Box::pin(raw)).await?;
    for coding in layers {
        reader = layer(coding, Box::pin(BufReader::new(reader))).await?;
    }
    Ok(Some(reader))
}

/// One decoder over `source`, its errors tagged with its coding.
async fn layer(coding: Coding, source: BufSource) -> io::Result<Reader> {
    let inner: Reader = match coding {
        Coding::Gzip => {
            let mut decoder = GzipDecoder::new(source);
            decoder.multiple_members(true);
            Box::pin(decoder)
        }
        Coding::Deflate => {
            let (zlib, source) = sniff_zlib(source).await?;
            if zlib {
                Box::pin(ZlibDecoder::new(source))
            } else {
                Box::pin(DeflateDecoder::new(source))
            }
        }
        Coding::Brotli => Box::pin(BrotliDecoder::new(source)),
        Coding::Zstd => {
            let params = [DParameter::window_log_max(ZSTD_WINDOW_LOG_MAX)];
            let mut decoder = ZstdDecoder::with_params(source, &params);
            decoder.multiple_members(true);
            Box::pin(decoder)
        }
    };
    Ok(Box::pin(Tagged { inner, coding }))
}

/// Reads the first two bytes of a `deflate` body and tells whether they are a zlib
/// header (RFC 1950 §2.2: method 8, window at most 32 KiB, header a multiple of 31);
/// returns the source with those bytes put back in front.
async fn sniff_zlib(mut source: BufSource) -> io::Result<(bool, BufSource)> {
    let mut head = Vec::with_capacity(2);
    while head.len() < 2 {
        let buf = source.fill_buf().await?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len().min(2 - head.len());
        head.extend_from_slice(&buf[..n]);
        source.consume(n);
    }
    let zlib = match head[..] {
        [cmf, flg] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
        }
        _ => false,
    };
    Ok((zlib, Box::pin(io::Cursor::new(head).chain(source))))
}

/// Turns an I/O error from the decoder stack into the crate's error: an error of
/// `input` (carried through as `io::Error::other`) comes back unchanged.
fn from_io(e: io::Error) -> Error {
    match e.downcast::<Error>() {
        Ok(err) => err,
        Err(e) => Error::new(ErrorKind::Decode, "corrupt compressed data").with_source(e),
    }
}

/// The innermost reader: the body stream, counting the encoded bytes consumed.
struct Counted {
    inner: Raw,
    consumed: Arc<AtomicU64>,
}

impl Counted {
    fn add(&self, n: usize) {
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.add(buf.filled().len().saturating_sub(before));
        result
    }
}

impl AsyncBufRead for Counted {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().inner).poll_fill_buf(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.add(amt);
        Pin::new(&mut this.inner).consume(amt);
    }
}

/// A decoder whose own errors become [`ErrorKind::Decode`] errors naming its coding;
/// errors from below (already crate errors) pass through untouched.
struct Tagged {
    inner: Reader,
    coding: Coding,
}

impl AsyncRead for Tagged {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let coding = self.coding;
        self.inner.as_mut().poll_read(cx, buf).map_err(|e| {
            if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
                return e;
            }
            let what = if e.kind() == io::ErrorKind::UnexpectedEof {
                "truncated"
            } else {
                "corrupt"
            };
            let message = format!("{what} {} data", coding.name());
            io::Error::other(Error::new(ErrorKind::Decode, message).with_source(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_compression::Level;
    use async_compression::tokio::bufread::{
        BrotliEncoder, DeflateEncoder, GzipEncoder, ZlibEncoder, ZstdEncoder,
    };

    const ALL: [Coding; 4] = [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd];

    /// `data` as a body stream of `size`-byte chunks.
    fn body(data: &[u8], size: usize) -> ByteStream {
        let chunks: Vec<_> = data
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(stream::iter(chunks))
    }

    /// Decodes `encoded`, fed in `size`-byte chunks, to its end: the bytes and the error
    /// if any, checking that nothing follows an error.
    async fn run(
        list: &[Coding],
        encoded: &[u8],
        size: usize,
        limits: DecompressionLimits,
    ) -> (Vec<u8>, Option<Error>) {
        let mut s = decode(list, body(encoded, size), limits);
        let mut out = Vec::new();
        while let Some(item) = s.next().await {
            match item {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(e) => {
                    assert!(s.next().await.is_none(), "the stream ends after an error");
                    return (out, Some(e));
                }
            }
        }
        (out, None)
    }

    /// `data` with each of `list` applied in turn, at the fastest level (brotli's default
    /// is slow in a debug build).
    async fn encode(list: &[Coding], data: &[u8]) -> Vec<u8> {
        let mut data = data.to_vec();
        for coding in list {
            let (input, mut out, fast) = (&data[..], Vec::new(), Level::Fastest);
            let mut encoder: Pin<Box<dyn AsyncRead + '_>> = match coding {
                Coding::Gzip => Box::pin(GzipEncoder::with_quality(input, fast)),
                Coding::Deflate => Box::pin(ZlibEncoder::with_quality(input, fast)),
                Coding::Brotli => Box::pin(BrotliEncoder::with_quality(input, fast)),
                Coding::Zstd => Box::pin(ZstdEncoder::with_quality(input, fast)),
            };
            assert!(encoder.read_to_end(&mut out).await.is_ok());
            drop(encoder);
            data = out;
        }
        data
    }

    fn sample() -> Vec<u8> {
        (0..4_000)
            .flat_map(|i| format!("line {i} of the sample\n").into_bytes())
            .collect()
    }

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(CONTENT_ENCODING, HeaderValue::from_static(v));
        }
        map
    }

    fn assert_decode_error(err: Option<Error>, starts_with: &str) {
        let Some(err) = err else {
            panic!("no error, expected {starts_with:?}")
        };
        assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
        assert!(err.to_string().starts_with(starts_with), "{err}");
    }

    #[tokio::test]
    async fn each_coding_and_a_chain_round_trip() {
        let (data, limits) = (sample(), DecompressionLimits::default());
        let chain = [Coding::Gzip, Coding::Brotli];
        for list in ALL.iter().map(std::slice::from_ref).chain([&chain[..]]) {
            let encoded = encode(list, &data).await;
            for size in [1, 7, 4096, encoded.len()] {
                let (out, err) = run(list, &encoded, size, limits).await;
                assert!(
                    err.is_none() && out == data,
                    "{list:?} in {size}-byte chunks: {err:?}"
                );
            }
        }
        let (mut raw, mut encoder) = (Vec::new(), DeflateEncoder::new(&data[..]));
        assert!(encoder.read_to_end(&mut raw).await.is_ok()); // deflate without zlib's wrapper
        for size in [1, 2, 3, 1000] {
            let (out, err) = run(&[Coding::Deflate], &raw, size, limits).await;
            assert!(
                err.is_none() && out == data,
                "raw deflate in {size}-byte chunks: {err:?}"
            );
        }
        let mut members = encode(&[Coding::Gzip], b"hello, ").await;
        members.extend(encode(&[Coding::Gzip], b"world").await);
        assert_eq!(
            run(&[Coding::Gzip], &members, 5, limits).await.0,
            b"hello, world"
        );
    }

    #[tokio::test]
    async fn corrupt_truncated_and_empty_bodies() {
        let limits = DecompressionLimits::default();
        let garbage = b"\xff\xfethis is not compressed at all, not even a little bit";
        for (coding, name) in ALL.into_iter().zip(["gzip", "deflate", "brotli", "zstd"]) {
            let (_, err) = run(&[coding], garbage, 8, limits).await;
            let source = err.as_ref().and_then(std::error::Error::source);
            assert!(source.is_some_and(|s| s.is::<io::Error>()), "{err:?}");
            assert_decode_error(err, &format!("corrupt {name} data"));
            let (out, err) = run(&[coding, Coding::Gzip], b"", 1, limits).await;
            assert!(out.is_empty() && err.is_none(), "{coding:?}: {err:?}");
        }
        let encoded = encode(&[Coding::Gzip], &sample()).await;
        for cut in [encoded.len() - 4, encoded.len() - 8, encoded.len() / 2, 5] {
            let (_, err) = run(&[Coding::Gzip], &encoded[..cut], 512, limits).await;
            assert_decode_error(err, "truncated gzip data");
        }
        // A zstd frame header declaring a 128 MiB window, then an empty last block; the
        // same with a 1 MiB window decodes to nothing.
        let frame = |window| [0x28, 0xb5, 0x2f, 0xfd, 0x00, window, 0x01, 0x00, 0x00];
        let (_, err) = run(&[Coding::Zstd], &frame(0x88), 9, limits).await;
        assert_decode_error(err, "corrupt zstd data");
        let (out, err) = run(&[Coding::Zstd], &frame(0x50), 9, limits).await;
        assert!(out.is_empty() && err.is_none(), "{err:?}");
        let (_, err) = run(&[Coding::Gzip; MAX_CODINGS + 1], b"x", 1, limits).await;
        assert_decode_error(err, "too many content codings");
        assert_eq!(run(&[], b"plain", 2, limits).await.0, b"plain");
    }

    #[tokio::test]
    async fn bombs_stop_at_the_ratio_limit() {
        // 200 MiB of zeros in about 200 KB: 1 MiB gzip members back to back (one long
        // member would take seconds to compress in a debug build).
        let zeros = vec![0; 1024 * 1024];
        let (mut member, mut encoder) = (Vec::new(), GzipEncoder::new(&zeros[..]));
        assert!(encoder.read_to_end(&mut member).await.is_ok());
        let bomb = member.repeat(200);
        assert!(bomb.len() < 300 * 1024, "{} bytes", bomb.len());
        let limits = DecompressionLimits::default();
        let (out, err) = run(&[Coding::Gzip], &bomb, 16 * 1024, limits).await;
        assert!(out.len() as u64 <= limits.ratio_after, "{}", out.len());
        let message = err.as_ref().map(Error::to_string).unwrap_or_default();
        assert!(message.contains("100:1"), "{message}");
        assert_decode_error(err, "decompression limit:");
        let unlimited = limits.max_ratio(u64::MAX);
        let (out, err) = run(&[Coding::Gzip], &member.repeat(3), 4096, unlimited).await;
        assert!(err.is_none() && out.len() == 3 * zeros.len());
        // One zstd frame.
        let bomb = encode(&[Coding::Zstd], &vec![0; 32 * 1024 * 1024]).await;
        let (out, err) = run(&[Coding::Zstd], &bomb, 1024, limits).await;
        assert!(out.len() as u64 <= limits.ratio_after, "{}", out.len());
        assert_decode_error(err, "decompression limit:");
    }

    #[tokio::test]
    async fn max_size_caps_the_output() {
        let data = sample();
        let encoded = encode(&[Coding::Brotli], &data).await;
        let limits = DecompressionLimits::default().max_size(Some(10_000));
        let (out, err) = run(&[Coding::Brotli], &encoded, 100, limits).await;
        assert!(out.len() <= 10_000);
        assert_decode_error(err, "decompression limit: decoded body over 10000 bytes");
        let limits = limits.max_size(Some(data.len() as u64));
        let (out, err) = run(&[Coding::Brotli], &encoded, 100, limits).await;
        assert!(err.is_none() && out == data);
    }

    #[tokio::test]
    async fn input_errors_come_out_unchanged() {
        let data = sample();
        let cases: [(&[Coding], usize); 4] = [
            (&[Coding::Gzip], 100),
            (&[Coding::Deflate], 0),
            (&[Coding::Deflate], 1),
            (&[Coding::Gzip, Coding::Zstd], 100),
        ];
        for (list, prefix) in cases {
            let encoded = encode(list, &data).await;
            let input: ByteStream = Box::pin(stream::iter([
                Ok(Bytes::copy_from_slice(&encoded[..prefix])),
                Err(Error::new(ErrorKind::Body, "the connection broke")),
                Ok(Bytes::from_static(b"never read")),
            ]));
            let mut s = decode(list, input, DecompressionLimits::default());
            let err = loop {
                match s.next().await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break e,
                    None => panic!("{list:?}: the input error was lost"),
                }
            };
            assert_eq!(err.kind(), ErrorKind::Body, "{list:?}");
            assert_eq!(err.to_string(), "the connection broke");
            assert!(s.next().await.is_none());
        }
    }

    #[test]
    fn content_encoding_parsing() {
        use Coding::*;
        assert_eq!(codings(&HeaderMap::new()), None);
        assert_eq!(codings(&headers(&["identity"])), None);
        assert_eq!(codings(&headers(&[""])), None);
        assert_eq!(codings(&headers(&["gzip"])), Some(vec![Gzip]));
        assert_eq!(codings(&headers(&["X-GZip"])), Some(vec![Gzip]));
        assert_eq!(codings(&headers(&["Deflate"])), Some(vec![Deflate]));
        assert_eq!(codings(&headers(&["BR"])), Some(vec![Brotli]));
        assert_eq!(codings(&headers(&["zstd"])), Some(vec![Zstd]));
        assert_eq!(codings(&headers(&["gzip, br"])), Some(vec![Gzip, Brotli]));
        let list = headers(&["deflate,\tidentity ,, zstd"]);
        assert_eq!(codings(&list), Some(vec![Deflate, Zstd]));
        assert_eq!(codings(&headers(&["gzip", "br"])), Some(vec![Gzip, Brotli]));
        assert_eq!(codings(&headers(&["gzip", "compress"])), None);
        assert_eq!(codings(&headers(&["gzip, x-unknown"])), None);
        assert_eq!(codings(&headers(&["gzip;q=1"])), None);
        let mut map = HeaderMap::new();
        let latin1 = HeaderValue::from_bytes(b"gzip\xff").unwrap_or(ACCEPT_ENCODING);
        map.insert(CONTENT_ENCODING, latin1);
        assert_eq!(codings(&map), None);
        assert_eq!(ACCEPT_ENCODING, "gzip, deflate, br, zstd");
    }

    #[test]
    fn limits_defaults_and_setters() {
        let l = DecompressionLimits::default();
        assert_eq!(
            (l.max_ratio, l.ratio_after, l.max_size),
            (100, 1 << 20, None)
        );
        let l = l.max_ratio(10).ratio_after(5).max_size(Some(7));
        assert_eq!((l.max_ratio, l.ratio_after, l.max_size), (10, 5, Some(7)));
    }
}
