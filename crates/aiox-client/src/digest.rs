//! HTTP Digest authentication (RFC 7616) as a client middleware, aiohttp 3.12's
//! `DigestAuthMiddleware`: a 401 with a `Digest` challenge is answered once, and
//! later requests to the same origin reuse the challenge with a growing nonce count.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use http::header::{self, HeaderValue};
use md5::Md5;
use sha2::{Digest as _, Sha256};
use url::{Origin, Url};

use crate::error::Result;
use crate::middleware::{BoxFuture, Middleware, Next};
use crate::request::Request;
use crate::response::Response;

/// Digest authentication with a user name and password.
///
/// ```
/// use aiox_client::{ClientSession, DigestAuth};
///
/// # fn build() -> aiox_client::Result<ClientSession> {
/// let session = ClientSession::builder()
///     .middleware(DigestAuth::new("user", "passwd"))
///     .build()?;
/// # Ok(session) }
/// ```
#[derive(Clone)]
pub struct DigestAuth {
    inner: Arc<Inner>,
}

struct Inner {
    user: String,
    password: String,
    state: Mutex<Option<State>>,
}

struct State {
    origin: Origin,
    challenge: Challenge,
    nonce_count: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Challenge {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: Algorithm,
    qop_auth: bool,
    stale: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl std::fmt::Debug for DigestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestAuth")
            .field("user", &self.inner.user)
            .finish_non_exhaustive()
    }
}

impl DigestAuth {
    /// Answers Digest challenges as `user` with `password`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                user: user.into(),
                password: password.into(),
                state: Mutex::new(None),
            }),
        }
    }

    /// The Authorization value for `method` and `url` from the stored challenge.
    fn authorize(&self, method: &http::Method, url: &Url) -> Option<HeaderValue> {
        let mut state = crate::session::lock(&self.inner.state);
        let state = state.as_mut().filter(|s| s.origin == url.origin())?;
        state.nonce_count += 1;
        let cnonce = format!("{:016x}", fastrand::u64(..));
        let uri = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let value = self.compute(
            &state.challenge,
            method.as_str(),
            uri,
            state.nonce_count,
            &cnonce,
        );
        let mut value = HeaderValue::try_from(value).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    fn compute(&self, c: &Challenge, method: &str, uri: &str, nc: u32, cnonce: &str) -> String {
        let hash = |s: &str| match c.algorithm {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(s.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(s.as_bytes())),
        };
        let user = &self.inner.user;
        let mut ha1 = hash(&format!("{user}:{}:{}", c.realm, self.inner.password));
        if matches!(c.algorithm, Algorithm::Md5Sess | Algorithm::Sha256Sess) {
            ha1 = hash(&format!("{ha1}:{}:{cnonce}", c.nonce));
        }
        let ha2 = hash(&format!("{method}:{uri}"));
        let nc = format!("{nc:08x}");
        let response = if c.qop_auth {
            hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", c.nonce))
        } else {
            hash(&format!("{ha1}:{}:{ha2}", c.nonce))
        };
        let algorithm = match c.algorithm {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        };
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", algorithm={algorithm}, response=\"{response}\"",
            quote(user),
            quote(&c.realm),
            quote(&c.nonce)
        );
        if c.qop_auth {
            let _ = write!(out, ", qop=auth, nc={nc}, cnonce=\"{cnonce}\"");
        }
        if let Some(opaque) = &c.opaque {
            let _ = write!(out, ", opaque=\"{}\"", quote(opaque));
        }
        out
    }
}

impl Middleware for DigestAuth {
    fn call(&self, mut request: Request, next: Next) -> BoxFuture<Result<Response>> {
        let this = self.clone();
        Box::pin(async move {
            if !request.headers().contains_key(header::AUTHORIZATION) {
                if let Some(value) = this.authorize(request.method(), request.url()) {
                    request.headers_mut().insert(header::AUTHORIZATION, value);
                }
            }
            let again = request.try_clone();
            let response = next.run(request).await?;
            if response.status() != http::StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            let Some(mut again) = again else {
                return Ok(response);
            };
            let Some(challenge) = response
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(parse_challenge)
            else {
                return Ok(response);
            };
            {
                let mut state = crate::session::lock(&this.inner.state);
                // The same challenge failing again means wrong credentials: give up.
                let repeated = state.as_ref().is_some_and(|s| {
                    s.origin == again.url().origin() && s.challenge == challenge && !challenge.stale
                });
                if repeated && again.headers().contains_key(header::AUTHORIZATION) {
                    return Ok(response);
                }
                *state = Some(State {
                    origin: again.url().origin(),
                    challenge,
                    nonce_count: 0,
                });
            }
            let Some(value) = this.authorize(again.method(), again.url()) else {
                return Ok(response);
            };
            // The 401's body is small; read it so its connection can be reused.
            let _ = response.consume().await;
            again.headers_mut().insert(header::AUTHORIZATION, value);
            next.run(again).await
        })
    }
}

/// Parses a `Digest ...` challenge (other schemes give `None`).
fn parse_challenge(value: &str) -> Option<Challenge> {
    let rest = value.trim_start();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut realm = None;
    let mut nonce = None;
    let mut opaque = None;
    let mut algorithm = Algorithm::Md5;
    let mut qop_auth = false;
    let mut stale = false;
    for (name, value) in params_iter(params) {
        match name.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "nonce" => nonce = Some(value),
            "opaque" => opaque = Some(value),
            "stale" => stale = value.eq_ignore_ascii_case("true"),
            "qop" => {
                qop_auth = value
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            }
            "algorithm" => {
                algorithm = match value.to_ascii_uppercase().as_str() {
                    "MD5" => Algorithm::Md5,
                    "MD5-SESS" => Algorithm::Md5Sess,
                    "SHA-256" => Algorithm::Sha256,
                    "SHA-256-SESS" => Algorithm::Sha256Sess,
                    _ => return None,
                }
            }
            _ => {}
        }
    }
    Some(Challenge {
        realm: realm?,
        nonce: nonce?,
        opaque,
        algorithm,
        qop_auth,
        stale,
    })
}

/// `name=value` and `name="quoted, value"` pairs separated by commas.
fn params_iter(mut s: &str) -> impl Iterator<Item = (String, String)> + '_ {
    std::iter::from_fn(move || {
        s = s.trim_start_matches([' ', '\t', ',']);
        let eq = s.find('=')?;
        let name = s[..eq].trim().to_owned();
        s = s[eq + 1..].trim_start();
        let value = if let Some(quoted) = s.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            s = &quoted[end.min(quoted.len())..];
            value
        } else {
            let end = s.find(',').unwrap_or(s.len());
            let value = s[..end].trim().to_owned();
            s = &s[end..];
            value
        };
        Some((name, value))
    })
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_challenge() {
        let c = parse_challenge(
            r#"Digest realm="me@kennethreitz.com", nonce="abc", qop="auth,auth-int", opaque="xyz", algorithm=MD5, stale=FALSE"#,
        )
        .unwrap();
        assert_eq!(c.realm, "me@kennethreitz.com");
        assert_eq!(c.nonce, "abc");
        assert_eq!(c.opaque.as_deref(), Some("xyz"));
        assert!(c.qop_auth);
        assert!(!c.stale);
        assert_eq!(parse_challenge("Basic realm=\"x\""), None);
    }

    #[test]
    fn rfc_2617_example_response() {
        // RFC 2617 section 3.5's worked example.
        let auth = DigestAuth::new("Mufasa", "Circle Of Life");
        let c = Challenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            algorithm: Algorithm::Md5,
            qop_auth: true,
            stale: false,
        };
        let value = auth.compute(&c, "GET", "/dir/index.html", 1, "0a4f113b");
        assert!(
            value.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{value}"
        );
        assert!(value.contains("nc=00000001"), "{value}");
    }
}
