//! `AppService` as a `tower::Service`: callable without a socket.

use aiox_web::{Application, Body, Request};
use http_body_util::BodyExt;
use tower_service::Service;

#[tokio::test]
async fn app_service_answers_through_the_tower_interface() {
    let mut service = Application::new()
        .get("/hello/{name}", |req: Request| async move {
            format!("hi {}", req.match_info().get("name").unwrap_or("?"))
        })
        .build()
        .expect("valid routes");
    let req = http::Request::get("/hello/tower")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let res = service.call(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hi tower");

    let req = http::Request::post("/hello/tower")
        .body(Body::empty())
        .unwrap();
    let res = service.call(req).await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, HEAD, OPTIONS");
}
