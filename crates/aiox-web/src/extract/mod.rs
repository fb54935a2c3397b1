//! Typed extractors: handler arguments built from the request.
//!
//! A handler takes any number of [`FromRequestParts`] arguments (they look at the
//! head) followed by at most one [`FromRequest`] argument (it may consume the body).
//! A failed extraction answers with its rejection, a short [`HttpError`]:
//!
//! | extractor | rejection |
//! |---|---|
//! | [`Path<T>`] | 400 if a parameter does not parse |
//! | [`Query<T>`] | 400 if the query does not fit `T` |
//! | [`Json<T>`] | 415 without a JSON `Content-Type`, 400 for malformed JSON, 422 for the wrong shape, 413 over `client_max_size` |
//! | [`Form<T>`] | 415 without `application/x-www-form-urlencoded`, 422 if it does not fit `T`, 413 |
//! | `String` | 400 if the body is not valid in its charset, 413 |
//! | [`State<T>`] | 500 if no state of type `T` was registered (a programming error) |

mod path_de;

use std::future::Future;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use serde::de::DeserializeOwned;

use crate::error::HttpError;
use crate::request::{Request, truncate};

/// Builds a handler argument from the request head (method, URI, headers, URL
/// parameters, state, extensions) without touching the body.
pub trait FromRequestParts: Sized {
    /// Extracts the value, or rejects the request.
    fn from_request_parts(
        req: &mut Request,
    ) -> impl Future<Output = Result<Self, HttpError>> + Send;
}

/// Builds a handler argument from the whole request, body included; only the last
/// argument of a handler may be one.
pub trait FromRequest: Sized {
    /// Extracts the value, or rejects the request.
    fn from_request(req: Request) -> impl Future<Output = Result<Self, HttpError>> + Send;
}

impl<T: FromRequestParts + Send> FromRequest for T {
    async fn from_request(mut req: Request) -> Result<Self, HttpError> {
        T::from_request_parts(&mut req).await
    }
}

impl FromRequest for Request {
    fn from_request(req: Request) -> impl Future<Output = Result<Self, HttpError>> + Send {
        std::future::ready(Ok(req))
    }
}

/// Error text for a deserializer message, cut so large input is never echoed.
fn short(err: &impl std::fmt::Display) -> String {
    truncate(&err.to_string(), 200).into_owned()
}

pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    serde_json::from_slice(bytes).map_err(|err| {
        use serde_json::error::Category;
        // The parser stops at the first error, so malformed JSON can fail on its shape
        // (`[1, 2` for a struct) before the syntax error is reached: only JSON that is
        // well-formed as a whole is a 422.
        let err = match err.classify() {
            Category::Data => match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => {
                    return HttpError::unprocessable_entity().with_message(format!(
                        "422 Unprocessable Entity: JSON does not match the expected shape: {}",
                        short(&err)
                    ));
                }
                Err(syntax) => syntax,
            },
            _ => err,
        };
        HttpError::bad_request()
            .with_message(format!("400 Bad Request: invalid JSON: {}", short(&err)))
    })
}

pub(crate) fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    serde_urlencoded::from_bytes(bytes).map_err(|err| {
        HttpError::unprocessable_entity().with_message(format!(
            "422 Unprocessable Entity: invalid form: {}",
            short(&err)
        ))
    })
}

/// The URL parameters of the route, deserialized: `Path<u32>`, `Path<(String, u32)>`
/// or a struct with one field per parameter.
///
/// ```
/// use aiox_web::{Path, Result};
/// async fn show(Path((user, id)): Path<(String, u64)>) -> Result<String> {
///     Ok(format!("{user}/{id}"))
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts for Path<T> {
    fn from_request_parts(
        req: &mut Request,
    ) -> impl Future<Output = Result<Self, HttpError>> + Send {
        let result = path_de::from_params::<T>(&req.match_info.params)
            .map(Path)
            .map_err(|err| {
                if err.is_count_mismatch() {
                    HttpError::internal_server_error().with_source(err.to_string())
                } else {
                    HttpError::bad_request()
                        .with_message(format!("400 Bad Request: {}", short(&err)))
                }
            });
        std::future::ready(result)
    }
}

/// The query string deserialized into `T` (use `Option` fields for optional
/// parameters); 400 if it does not fit. For multi-valued access use
/// [`Request::query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts for Query<T> {
    fn from_request_parts(
        req: &mut Request,
    ) -> impl Future<Output = Result<Self, HttpError>> + Send {
        let result = serde_urlencoded::from_str(req.query_string())
            .map(Query)
            .map_err(|err| {
                HttpError::bad_request().with_message(format!(
                    "400 Bad Request: invalid query string: {}",
                    short(&err)
                ))
            });
        std::future::ready(result)
    }
}

/// Application state of type `T`, cloned out of the app (wrap big state in an `Arc`).
#[derive(Debug, Clone)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromRequestParts for State<T> {
    fn from_request_parts(
        req: &mut Request,
    ) -> impl Future<Output = Result<Self, HttpError>> + Send {
        let result = req.state::<T>().cloned().map(State).ok_or_else(|| {
            HttpError::internal_server_error().with_source(format!(
                "no application state of type {} was registered",
                std::any::type_name::<T>()
            ))
        });
        std::future::ready(result)
    }
}

/// A JSON body (extractor) or a JSON response (return value).
///
/// As an extractor it needs a JSON `Content-Type` (`application/json` or
/// `application/*+json`): 415 otherwise, 400 for malformed JSON, 422 for JSON of the
/// wrong shape, 413 past `client_max_size`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

fn is_json(content_type: &str) -> bool {
    content_type == "application/json"
        || (content_type.starts_with("application/") && content_type.ends_with("+json"))
}

impl<T: DeserializeOwned + Send> FromRequest for Json<T> {
    async fn from_request(mut req: Request) -> Result<Self, HttpError> {
        if !is_json(&req.content_type()) {
            return Err(HttpError::unsupported_media_type().with_message(
                "415 Unsupported Media Type: expected Content-Type: application/json",
            ));
        }
        let bytes = req.bytes().await?;
        parse_json(&bytes).map(Json)
    }
}

/// An `application/x-www-form-urlencoded` body deserialized into `T`: 415 for another
/// content type, 422 if it does not fit, 413 past `client_max_size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest for Form<T> {
    async fn from_request(mut req: Request) -> Result<Self, HttpError> {
        if req.content_type() != "application/x-www-form-urlencoded" {
            return Err(HttpError::unsupported_media_type().with_message(
                "415 Unsupported Media Type: expected Content-Type: application/x-www-form-urlencoded",
            ));
        }
        let bytes = req.bytes().await?;
        parse_form(&bytes).map(Form)
    }
}

impl FromRequest for Bytes {
    async fn from_request(mut req: Request) -> Result<Self, HttpError> {
        req.bytes().await
    }
}

impl FromRequest for String {
    async fn from_request(mut req: Request) -> Result<Self, HttpError> {
        req.text().await
    }
}

impl FromRequestParts for HeaderMap {
    fn from_request_parts(
        req: &mut Request,
    ) -> impl Future<Output = Result<Self, HttpError>> + Send {
        std::future::ready(Ok(req.headers().clone()))
    }
}

impl FromRequestParts for Method {
    fn from_request_parts(
        req: &mut Request,
    ) -> impl Future<Output = Result<Self, HttpError>> + Send {
        std::future::ready(Ok(req.method().clone()))
    }
}

impl FromRequestParts for Uri {
    fn from_request_parts(
        req: &mut Request,
    ) -> impl Future<Output = Result<Self, HttpError>> + Send {
        std::future::ready(Ok(req.uri().clone()))
    }
}

impl FromRequestParts for crate::cookie::Cookies {
    fn from_request_parts(
        req: &mut Request,
    ) -> impl Future<Output = Result<Self, HttpError>> + Send {
        std::future::ready(Ok(req.cookies()))
    }
}

impl<T: FromRequestParts + Send> FromRequestParts for Option<T> {
    async fn from_request_parts(req: &mut Request) -> Result<Self, HttpError> {
        Ok(T::from_request_parts(req).await.ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_distinguish_syntax_from_shape_and_stay_short() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Item {
            id: u32,
        }
        assert_eq!(parse_json::<Item>(b"{oops").unwrap_err().status(), 400);
        assert_eq!(parse_json::<Item>(b"[1, 2").unwrap_err().status(), 400);
        assert_eq!(
            parse_json::<Item>(b"{\"id\":\"x\",").unwrap_err().status(),
            400
        );
        assert_eq!(
            parse_json::<Item>(b"{\"id\":\"x\"}").unwrap_err().status(),
            422
        );
        let long = format!("{{\"id\":\"{}\"}}", "a".repeat(10_000));
        let err = parse_json::<Item>(long.as_bytes()).unwrap_err();
        assert!(err.message().unwrap().len() < 400);
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }
}
