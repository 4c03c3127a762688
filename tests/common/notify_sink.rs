//! A local HTTP server standing in for the notification backend: it records every request
//! (body, headers) and answers with a scripted sequence of status codes.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Received {
    pub body: Value,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    script: VecDeque<u16>,
}

#[derive(Clone)]
pub struct NotifySink {
    inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
}

impl NotifySink {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/notify", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { inner, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}/notify", self.addr)
    }

    /// The next answers, in order; afterwards every request gets 200.
    pub fn script(&self, statuses: &[u16]) {
        self.inner.lock().unwrap().script = statuses.iter().copied().collect();
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// `(status, message)` of every feedback notification, in order.
    pub fn feedback(&self) -> Vec<(String, String)> {
        self.received()
            .iter()
            .filter(|r| r.body["event"] == "feedback")
            .map(|r| {
                (
                    r.body["status"].as_str().unwrap_or_default().to_string(),
                    r.body["feedback_data"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut inner = inner.lock().unwrap();
    inner.received.push(Received {
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        authorization: header("authorization"),
        user_agent: header("user-agent"),
        content_type: header("content-type"),
    });
    let status = inner.script.pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}
