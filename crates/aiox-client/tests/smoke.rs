//! A first end-to-end check: GET text and JSON, POST bytes, one pooled connection.

mod support;

use aiox_client::ClientSession;
use aiox_web::{Application, Request, Response};
use support::Server;

#[tokio::test]
async fn get_text_json_and_reuse() {
    let app = Application::new()
        .get("/", || async { Response::text("Hello, World!") })
        .get("/json", || async {
            Response::json(&serde_json::json!({"message": "Hello, World!"}))
        })
        .post("/echo", |mut req: Request| async move {
            let body = req.bytes().await.unwrap();
            Response::bytes(body)
        });
    let server = Server::start(app).await;
    let session = ClientSession::new();
    let resp = session.get(&server.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "Hello, World!");
    let v: serde_json::Value = session
        .get(&server.url("/json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["message"], "Hello, World!");
    let body = session
        .post(&server.url("/echo"))
        .body("abc")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], b"abc");
    let stats = session.pool_stats();
    assert_eq!(stats.open, 1, "{stats:?}");
}
