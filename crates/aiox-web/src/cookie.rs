//! Cookies: the [`Cookie`] type (from the `cookie` crate, with every RFC 6265 attribute)
//! for [`Response::set_cookie`](crate::Response::set_cookie), and [`Cookies`], the
//! cookies a request carries.

pub use cookie::{Cookie, CookieBuilder, Expiration, SameSite};

/// The cookies of a request (every `Cookie` header), percent-decoded: aiohttp's
/// `request.cookies`. Cookies that do not parse are skipped.
#[derive(Debug, Clone, Default)]
pub struct Cookies {
    pairs: Vec<(String, String)>,
}

impl Cookies {
    pub(crate) fn parse(headers: &http::HeaderMap) -> Self {
        let mut pairs = Vec::new();
        for value in headers.get_all(http::header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for cookie in Cookie::split_parse_encoded(text).flatten() {
                pairs.push((cookie.name().to_owned(), cookie.value().to_owned()));
            }
        }
        Self { pairs }
    }

    /// The value of cookie `name` (the first, if sent twice).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every (name, value) pair in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// How many cookies there are.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True if the request has no cookies.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_cookie_header_and_decodes_values() {
        let mut headers = http::HeaderMap::new();
        headers.append("cookie", "a=1; b=hello%20world".parse().unwrap());
        headers.append("cookie", "c=3; broken".parse().unwrap());
        let cookies = Cookies::parse(&headers);
        assert_eq!(cookies.get("a"), Some("1"));
        assert_eq!(cookies.get("b"), Some("hello world"));
        assert_eq!(cookies.get("c"), Some("3"));
        assert_eq!(cookies.len(), 3);
    }
}
