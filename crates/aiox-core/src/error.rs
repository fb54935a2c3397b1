//! The one error type of aiox-core.

use std::fmt;

/// A boxed error from any source, as carried in [`Error::source`](std::error::Error::source).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, for a program to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A body was longer than the limit set for it (HTTP 413 on a server).
    PayloadTooLarge {
        /// The limit that was exceeded, in bytes.
        limit: u64,
    },
    /// Reading or writing a body failed (the peer went away, the framing was broken, ...).
    Body,
    /// A timer ran out; the message says which one.
    Timeout,
    /// An I/O operation on a socket or file failed.
    Io,
    /// TLS configuration or a TLS handshake failed.
    Tls,
    /// A configuration value was invalid (reported when it is used, never by a panic).
    Config,
    /// A host name could not be resolved (client side).
    Dns,
    /// A connection could not be established: refused, unreachable, reset during the
    /// connect (client side).
    Connect,
}

/// The error type of aiox-core: a [`kind`](Error::kind), a short message and the cause.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: &'static str,
    source: Option<BoxError>,
}

impl Error {
    /// Creates an error of `kind` with a short static message and an optional cause.
    pub fn new(kind: ErrorKind, message: &'static str, source: Option<BoxError>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message,
                source,
            }),
        }
    }

    /// The error for a body over `limit` bytes.
    pub fn payload_too_large(limit: u64) -> Self {
        Self::new(
            ErrorKind::PayloadTooLarge { limit },
            "payload too large",
            None,
        )
    }

    /// A body error caused by `source`.
    pub fn body(source: impl Into<BoxError>) -> Self {
        Self::new(ErrorKind::Body, "error reading a body", Some(source.into()))
    }

    /// A timeout described by `message` ("header read timeout", ...).
    pub fn timeout(message: &'static str) -> Self {
        Self::new(ErrorKind::Timeout, message, None)
    }

    /// An I/O error described by `message`.
    pub fn io(message: &'static str, source: std::io::Error) -> Self {
        Self::new(ErrorKind::Io, message, Some(Box::new(source)))
    }

    /// A TLS error described by `message`.
    pub fn tls(message: &'static str, source: Option<BoxError>) -> Self {
        Self::new(ErrorKind::Tls, message, source)
    }

    /// A configuration error described by `message`.
    pub fn config(message: &'static str, source: Option<BoxError>) -> Self {
        Self::new(ErrorKind::Config, message, source)
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// True if a body exceeded its length limit.
    pub fn is_payload_too_large(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::PayloadTooLarge { .. })
    }

    /// True if a timer ran out.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// Finds the aiox-core error in a boxed error chain, if there is one.
    pub fn find_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
        let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(found) = e.downcast_ref::<Error>() {
                return Some(found);
            }
            cur = e.source();
        }
        None
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("aiox_core::Error");
        d.field("kind", &self.inner.kind);
        d.field("message", &self.inner.message);
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.kind {
            ErrorKind::PayloadTooLarge { limit } => {
                write!(f, "payload too large (limit {limit} bytes)")
            }
            _ => f.write_str(self.inner.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|e| &**e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_says_its_own_level_and_source_carries_the_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe");
        let err = Error::io("write failed", io);
        assert_eq!(err.to_string(), "write failed");
        assert_eq!(err.kind(), ErrorKind::Io);
        assert_eq!(
            std::error::Error::source(&err).map(|e| e.to_string()),
            Some("pipe".to_string())
        );
        let big = Error::payload_too_large(10);
        assert!(big.is_payload_too_large());
        assert_eq!(big.to_string(), "payload too large (limit 10 bytes)");
    }

    #[test]
    fn find_in_walks_the_source_chain() {
        #[derive(Debug)]
        struct Outer(Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("outer")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let outer = Outer(Error::timeout("body read timeout"));
        let found = Error::find_in(&outer).map(Error::is_timeout);
        assert_eq!(found, Some(true));
    }
}
