//! A scripted stand-in for the Cloudflare API: answers queued responses in
//! order and records every request it receives, so tests assert what the
//! client sent and how it reacted.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cfdo::cloudflare::client::{Client, ClientConfig, LogSink};
use cfdo::cloudflare::retry::Backoff;
use tokio::time::Instant;

pub const TOKEN: &str = "tok-4f9c2b7e-super-secret-value";
pub const ACCOUNT: &str = "acc123";

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, e.g. `/client/v4/accounts/acc123/workers/scripts?x=1`.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

/// One queued answer.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Scripted>>,
}

pub struct MockApi {
    pub base_url: String,
    shared: Arc<Shared>,
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers,
        body,
        at: Instant::now(),
    });
    let next = shared.script.lock().unwrap().pop_front();
    match next {
        Some(s) => {
            let mut response = (StatusCode::from_u16(s.status).unwrap(), s.body).into_response();
            let has_content_type = s
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
            if !has_content_type {
                response
                    .headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
            }
            for (k, v) in s.headers {
                response.headers_mut().insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            response
        }
        None => (StatusCode::IM_A_TEAPOT, "no scripted response left").into_response(),
    }
}

impl MockApi {
    pub async fn start() -> MockApi {
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockApi {
            base_url: format!("http://{addr}/client/v4"),
            shared,
        }
    }

    pub fn push(&self, status: u16, body: impl Into<String>) -> &Self {
        self.push_with(status, &[], body)
    }

    pub fn push_with(
        &self,
        status: u16,
        headers: &[(&str, &str)],
        body: impl Into<String>,
    ) -> &Self {
        self.shared.script.lock().unwrap().push_back(Scripted {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        });
        self
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// A config pointed at this server, with fast backoff.
    pub fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(self.base_url.clone(), TOKEN, ACCOUNT);
        config.backoff = Backoff {
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
        };
        config.request_timeout = Duration::from_secs(10);
        config
    }

    pub fn client(&self) -> Client {
        Client::new(self.config()).unwrap()
    }
}

/// A config whose verbose lines are collected into the returned vector.
pub fn capture_log(config: &mut ClientConfig) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink_lines = lines.clone();
    let sink: LogSink =
        Arc::new(move |line: &str| sink_lines.lock().unwrap().push(line.to_string()));
    config.verbose = true;
    config.log_sink = Some(sink);
    lines
}

/// `{"success": true, "errors": [], "messages": [], "result": …}`
pub fn ok(result: serde_json::Value) -> String {
    serde_json::json!({"success": true, "errors": [], "messages": [], "result": result}).to_string()
}

/// `{"success": false, "errors": [{"code", "message"}], "result": null}`
pub fn fail(code: i64, message: &str) -> String {
    serde_json::json!({
        "success": false,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": null
    })
    .to_string()
}

pub fn script_json(id: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "etag": "e1",
        "tags": ["cfdo:stack=demo"],
        "created_on": "2026-01-01T00:00:00Z",
        "modified_on": "2026-01-02T00:00:00Z",
        "handlers": ["fetch"]
    })
}
