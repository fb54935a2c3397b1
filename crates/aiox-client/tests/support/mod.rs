//! Test servers for the client's end-to-end tests: aiox-web apps on 127.0.0.1:0
//! (plain, TLS with a CA made here, HTTP/2), and raw TCP servers for what a
//! well-behaved server never does.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aiox_web::test::TestClient;
use aiox_web::{Application, Request};

/// A running app and its base URL (`http://127.0.0.1:PORT`).
pub struct Server {
    pub client: TestClient,
}

impl Server {
    pub async fn start(app: Application) -> Self {
        Self {
            client: TestClient::new(app).await.expect("the test server starts"),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.client.addr()
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// `http://localhost:PORT{path}` (cookies are not kept for IP hosts by default).
    pub fn local_url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.addr().port())
    }
}

/// Counts the distinct client connections (remote ports) an app has seen.
#[derive(Clone, Default)]
pub struct ConnCounter {
    seen: Arc<std::sync::Mutex<std::collections::HashSet<SocketAddr>>>,
    pub requests: Arc<AtomicUsize>,
}

impl ConnCounter {
    pub fn record(&self, req: &Request) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(addr) = req.remote_addr() {
            self.seen.lock().unwrap().insert(addr);
        }
    }

    pub fn connections(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}
