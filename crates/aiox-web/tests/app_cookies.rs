//! End-to-end cookie tests: `Set-Cookie` with every attribute, deleting cookies, and
//! reading the cookies of one or several `Cookie` headers over HTTP/1 and HTTP/2.

use std::time::{SystemTime, UNIX_EPOCH};

use aiox_web::cookie::{Cookie, Cookies, SameSite};
use aiox_web::test::{TestClient, TestResponse};
use aiox_web::{Application, Request, Response};
use cookie::time::{Duration, OffsetDateTime};

fn set_cookies(res: &TestResponse) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Unix seconds of an RFC 1123 date (`Wed, 21 Oct 2015 07:28:00 GMT`).
fn parse_http_date(date: &str) -> i64 {
    let parts: Vec<&str> = date.split([' ', ':']).collect();
    assert_eq!(parts.len(), 8, "not an HTTP date: {date:?}");
    assert_eq!(parts[7], "GMT", "{date:?}");
    let day: i64 = parts[1].parse().unwrap();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])
    .unwrap_or_else(|| panic!("bad month in {date:?}")) as i64
        + 1;
    let year: i64 = parts[3].parse().unwrap();
    let (h, m, s): (i64, i64, i64) = (
        parts[4].parse().unwrap(),
        parts[5].parse().unwrap(),
        parts[6].parse().unwrap(),
    );
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + h * 3600 + m * 60 + s
}

fn attribute<'a>(set_cookie: &'a str, name: &str) -> Option<&'a str> {
    set_cookie.split("; ").skip(1).find_map(|attr| {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

#[test]
fn http_date_parser_is_right() {
    assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    assert_eq!(
        parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
        1_445_412_480
    );
    assert_eq!(
        parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
        951_825_600
    );
}

#[tokio::test]
async fn set_cookie_writes_every_attribute() {
    let app = Application::new().get("/login", || async {
        let mut res = Response::text("welcome");
        res.set_cookie(
            Cookie::build(("session", "abc123"))
                .max_age(Duration::hours(1))
                .expires(OffsetDateTime::from_unix_timestamp(1_445_412_480).unwrap())
                .domain("example.com")
                .path("/app")
                .secure(true)
                .http_only(true)
                .same_site(SameSite::Strict)
                .build(),
        );
        res.set_cookie(
            Cookie::build(("theme", "dark"))
                .path("/")
                .same_site(SameSite::Lax)
                .build(),
        );
        res.set_cookie(
            Cookie::build(("embed", "1"))
                .same_site(SameSite::None)
                .secure(true)
                .build(),
        );
        res.set_cookie(Cookie::new("plain", "v"));
        res
    });
    let client = TestClient::new(app).await.unwrap();

    let res = client.get("/login").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "welcome");
    assert_eq!(
        set_cookies(&res),
        [
            "session=abc123; HttpOnly; SameSite=Strict; Secure; Path=/app; Domain=example.com; \
             Max-Age=3600; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
            "theme=dark; SameSite=Lax; Path=/",
            "embed=1; SameSite=None; Secure",
            "plain=v",
        ]
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn cookie_values_are_percent_encoded() {
    let app = Application::new().get("/", || async {
        let mut res = Response::empty();
        res.set_cookie(Cookie::new("msg", "hello world; evil=1"));
        res.set_cookie(Cookie::new("name", "J\u{fc}rgen"));
        res
    });
    let client = TestClient::new(app).await.unwrap();
    let res = client.get("/").send().await.unwrap();
    assert_eq!(
        set_cookies(&res),
        ["msg=hello%20world%3B%20evil%3D1", "name=J%C3%BCrgen"]
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn del_cookie_sends_an_expired_empty_cookie() {
    let app = Application::new()
        .get("/logout", || async {
            let mut res = Response::text("bye");
            res.del_cookie("session");
            res
        })
        .get("/logout-scoped", || async {
            let mut res = Response::text("bye");
            res.del_cookie_with("session", Some("/app"), Some("example.com"));
            res.del_cookie_with("other", None, None);
            res
        });
    let client = TestClient::new(app).await.unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    let res = client.get("/logout").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cookies = set_cookies(&res);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = &cookies[0];
    assert!(cookie.starts_with("session=; "), "{cookie}");
    assert_eq!(attribute(cookie, "Max-Age"), Some("0"), "{cookie}");
    assert_eq!(attribute(cookie, "Path"), Some("/"), "{cookie}");
    assert_eq!(attribute(cookie, "Domain"), None, "{cookie}");
    let expires = attribute(cookie, "Expires").unwrap_or_else(|| panic!("{cookie}"));
    assert!(
        parse_http_date(expires) < now,
        "Expires={expires} is not in the past"
    );

    let res = client.get("/logout-scoped").send().await.unwrap();
    let cookies = set_cookies(&res);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("session=; "), "{}", cookies[0]);
    assert_eq!(attribute(&cookies[0], "Path"), Some("/app"));
    assert_eq!(attribute(&cookies[0], "Domain"), Some("example.com"));
    assert_eq!(attribute(&cookies[0], "Max-Age"), Some("0"));
    assert!(cookies[1].starts_with("other=; "), "{}", cookies[1]);
    assert_eq!(attribute(&cookies[1], "Path"), None);
    assert_eq!(attribute(&cookies[1], "Max-Age"), Some("0"));
    let expires = attribute(&cookies[1], "Expires").unwrap();
    assert!(parse_http_date(expires) < now);
    client.close().await.unwrap();
}

fn cookie_app() -> Application {
    Application::new()
        .get("/req", |req: Request| async move {
            let cookies = req.cookies();
            let pairs: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "n={} session={} | {}",
                cookies.len(),
                cookies.get("session").unwrap_or("-"),
                pairs.join(" ")
            )
        })
        .get("/extract", |cookies: Cookies| async move {
            let pairs: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "n={} empty={} | {}",
                cookies.len(),
                cookies.is_empty(),
                pairs.join(" ")
            )
        })
}

#[tokio::test]
async fn request_cookies_from_one_header() {
    let client = TestClient::new(cookie_app()).await.unwrap();

    let res = client
        .get("/req")
        .header("cookie", "session=abc; theme=dark; msg=hello%20world")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.text(),
        "n=3 session=abc | session=abc theme=dark msg=hello world"
    );

    let res = client
        .get("/extract")
        .header("cookie", "a=1;b=2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text(), "n=2 empty=false | a=1 b=2");

    let res = client.get("/extract").send().await.unwrap();
    assert_eq!(res.text(), "n=0 empty=true | ");
    client.close().await.unwrap();
}

#[tokio::test]
async fn request_cookies_from_several_headers() {
    let client = TestClient::new(cookie_app()).await.unwrap();

    let res = client
        .get("/req")
        .header("cookie", "a=1; session=first")
        .header("cookie", "b=2")
        .header("Cookie", "session=second; c=3")
        .send()
        .await
        .unwrap();
    // Every header counts, in order; `get` returns the first of a repeated name.
    assert_eq!(
        res.text(),
        "n=5 session=first | a=1 session=first b=2 session=second c=3"
    );

    let res = client
        .get("/extract")
        .header("cookie", "x=1")
        .header("cookie", "y=2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text(), "n=2 empty=false | x=1 y=2");
    client.close().await.unwrap();
}

#[tokio::test]
async fn request_cookies_over_http2_crumbs() {
    // HTTP/2 clients may split the cookie header into one field per cookie.
    let client = TestClient::new(cookie_app()).await.unwrap().http2();
    let res = client
        .get("/req")
        .header("cookie", "a=1")
        .header("cookie", "session=s2")
        .header("cookie", "b=2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), aiox_web::http::Version::HTTP_2);
    assert_eq!(res.text(), "n=3 session=s2 | a=1 session=s2 b=2");
    client.close().await.unwrap();
}

#[tokio::test]
async fn malformed_cookies_are_skipped_not_fatal() {
    let client = TestClient::new(cookie_app()).await.unwrap();
    let res = client
        .get("/req")
        .header("cookie", "good=1; broken; =novalue; also=2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text(), "n=2 session=- | good=1 also=2");
    client.close().await.unwrap();
}

#[tokio::test]
async fn cookies_set_by_the_server_round_trip() {
    let app = cookie_app().get("/set", || async {
        let mut res = Response::empty();
        res.set_cookie(
            Cookie::build(("session", "a b;c"))
                .path("/")
                .http_only(true)
                .build(),
        );
        res
    });
    let client = TestClient::new(app).await.unwrap();
    let res = client.get("/set").send().await.unwrap();
    let cookie = set_cookies(&res).remove(0);
    // What a browser sends back: the `name=value` part.
    let pair = cookie.split("; ").next().unwrap().to_owned();
    assert_eq!(pair, "session=a%20b%3Bc");
    let res = client
        .get("/req")
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(res.text(), "n=1 session=a b;c | session=a b;c");
    client.close().await.unwrap();
}
