//! Retries, Retry-After, the ceiling, deletes that already happened, and the
//! shared rate budget, against a scripted local API.

mod client_support;

use std::time::Duration;

use cfdo::cloudflare::budget::RateBudget;
use cfdo::cloudflare::client::{ApiErrorKind, Client};
use client_support::{ACCOUNT, MockApi, fail, ok, script_json};
use serde_json::json;

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let api = MockApi::start().await;
    api.push(500, fail(10013, "internal error"))
        .push(502, "<html><body>Bad gateway</body></html>")
        .push(200, ok(json!([script_json("web")])));
    let client = api.client();

    let scripts = client.list_scripts().await.unwrap();

    assert_eq!(scripts.len(), 1);
    assert_eq!(scripts[0].id, "web");
    let requests = api.requests();
    assert_eq!(requests.len(), 3);
    assert!(
        requests.iter().all(|r| r.method == "GET"
            && r.path == format!("/client/v4/accounts/{ACCOUNT}/workers/scripts"))
    );
    let stats = client.stats();
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.retries, 2);
}

#[tokio::test]
async fn server_errors_give_up_after_max_attempts() {
    let api = MockApi::start().await;
    for _ in 0..3 {
        api.push(503, fail(10013, "service unavailable"));
    }
    let mut config = api.config();
    config.max_attempts = 3;
    let client = Client::new(config).unwrap();

    let err = client.list_scripts().await.unwrap_err();

    assert_eq!(err.kind, ApiErrorKind::Server);
    assert_eq!(err.status, Some(503));
    assert_eq!(err.attempts, 3);
    assert_eq!(api.requests().len(), 3);
    assert_eq!(
        err.to_string(),
        format!(
            "GET /accounts/{ACCOUNT}/workers/scripts failed with HTTP 503: \
             service unavailable [code: 10013] (after 3 attempts)"
        )
    );
}

#[tokio::test]
async fn retry_after_is_honoured_and_counted() {
    let api = MockApi::start().await;
    api.push_with(
        429,
        &[("Retry-After", "1")],
        fail(
            971,
            "Please wait and consider throttling your request speed",
        ),
    )
    .push(200, ok(json!([])));
    let client = api.client();

    let scripts = client.list_scripts().await.unwrap();

    assert!(scripts.is_empty());
    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    let gap = requests[1].at.duration_since(requests[0].at);
    assert!(gap >= Duration::from_millis(990), "retried after {gap:?}");
    let stats = client.stats();
    assert_eq!(stats.retry_after_wait, Duration::from_secs(1));
    assert_eq!(stats.retries, 1);
    assert_eq!(stats.backoff_wait, Duration::ZERO);
}

#[tokio::test]
async fn retry_after_above_the_ceiling_stops_and_says_so() {
    let api = MockApi::start().await;
    api.push_with(429, &[("Retry-After", "600")], fail(10100, "rate limited"));
    let mut config = api.config();
    config.max_retry_after = Duration::from_secs(120);
    let client = Client::new(config).unwrap();

    let err = client.list_scripts().await.unwrap_err();

    assert_eq!(err.kind, ApiErrorKind::RetryAfterTooLong);
    assert_eq!(api.requests().len(), 1);
    assert_eq!(
        err.to_string(),
        format!(
            "GET /accounts/{ACCOUNT}/workers/scripts failed with HTTP 429: rate limited \
             [code: 10100]; the API asked to wait 600 s before retrying (Retry-After), \
             more than the 120 s ceiling, so cfdo stopped"
        )
    );
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains("wait"), "{help}");
    assert_eq!(client.stats().retry_after_wait, Duration::ZERO);
}

#[tokio::test]
async fn validation_errors_are_never_retried() {
    let api = MockApi::start().await;
    api.push(
        400,
        fail(10021, "Uncaught SyntaxError: Unexpected token '}'"),
    );
    let client = api.client();

    let err = client
        .patch_script_settings("web", &json!({"tags": ["a"]}))
        .await
        .unwrap_err();

    assert_eq!(api.requests().len(), 1);
    assert_eq!(err.kind, ApiErrorKind::Api);
    assert!(err.has_code(10021));
    assert_eq!(err.attempts, 1);
    assert_eq!(
        err.to_string(),
        format!(
            "PATCH /accounts/{ACCOUNT}/workers/scripts/web/script-settings failed with \
             HTTP 400: Uncaught SyntaxError: Unexpected token '}}' [code: 10021]"
        )
    );
    assert_eq!(client.stats().retries, 0);
}

#[tokio::test]
async fn auth_errors_are_not_retried_and_point_at_the_token() {
    let api = MockApi::start().await;
    api.push(403, fail(10000, "Authentication error"));
    let client = api.client();

    let err = client.list_scripts().await.unwrap_err();

    assert_eq!(api.requests().len(), 1);
    assert_eq!(err.kind, ApiErrorKind::Auth);
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains("CLOUDFLARE_API_TOKEN"), "{help}");
    assert!(help.contains("Workers Scripts: Edit"), "{help}");
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported() {
    // A port nobody listens on: bind, note the address, close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let api = MockApi::start().await;
    let mut config = api.config();
    config.base_url = format!("http://{addr}/client/v4");
    config.max_attempts = 3;
    let client = Client::new(config).unwrap();

    let err = client.script_settings("web").await.unwrap_err();

    assert_eq!(err.kind, ApiErrorKind::Network);
    assert_eq!(err.status, None);
    assert_eq!(err.attempts, 3);
    assert_eq!(client.stats().requests, 3);
    assert_eq!(client.stats().retries, 2);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "GET /accounts/{ACCOUNT}/workers/scripts/web/settings failed: cannot connect"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn delete_not_found_after_a_retry_counts_as_done() {
    let api = MockApi::start().await;
    // The first attempt reached the API (and deleted the script) but the
    // answer was lost as a 502; the retry finds nothing left.
    api.push(502, "<html>Bad gateway</html>")
        .push(404, fail(10007, "workers.api.error.script_not_found"));
    let client = api.client();

    client.delete_script("web", true).await.unwrap();

    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.method, "DELETE");
        assert_eq!(
            r.path,
            format!("/client/v4/accounts/{ACCOUNT}/workers/scripts/web?force=true")
        );
    }
}

#[tokio::test]
async fn delete_not_found_on_the_first_attempt_is_an_error() {
    let api = MockApi::start().await;
    api.push(404, fail(10007, "workers.api.error.script_not_found"));
    let client = api.client();

    let err = client.delete_script("web", false).await.unwrap_err();

    assert_eq!(err.kind, ApiErrorKind::NotFound);
    assert!(err.has_code(10007));
    assert_eq!(
        err.endpoint,
        format!("DELETE /accounts/{ACCOUNT}/workers/scripts/web?force=false")
    );
}

#[tokio::test]
async fn empty_204_is_success() {
    let api = MockApi::start().await;
    api.push(204, "");
    let client = api.client();

    client.delete_script("web", false).await.unwrap();

    assert_eq!(api.requests().len(), 1);
}

#[tokio::test]
async fn the_rate_budget_is_shared_by_clones_and_makes_the_extra_request_wait() {
    let api = MockApi::start().await;
    for _ in 0..4 {
        api.push(200, ok(json!([])));
    }
    let mut config = api.config();
    config.rate_limit = RateBudget::new(3, Duration::from_secs(1));
    let client = Client::new(config).unwrap();

    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.list_scripts().await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let mut times: Vec<_> = api.requests().iter().map(|r| r.at).collect();
    times.sort();
    assert_eq!(times.len(), 4);
    let fourth = times[3].duration_since(times[0]);
    assert!(fourth >= Duration::from_millis(950), "{fourth:?}");
    let stats = client.stats();
    assert_eq!(stats.requests, 4);
    // One request waited about one window; had the first three waited too,
    // the waits would add up to several windows.
    assert!(
        stats.budget_wait >= Duration::from_millis(900)
            && stats.budget_wait < Duration::from_millis(1900),
        "{:?}",
        stats.budget_wait
    );
}

#[tokio::test]
async fn a_body_cut_off_mid_answer_is_retried() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let good = client_support::ok(json!([]));
        let answers = [
            // Promises 500 bytes, sends a few, hangs up.
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"succ".to_string(),
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{good}",
                good.len()
            ),
        ];
        for answer in answers {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await.unwrap();
            socket.write_all(answer.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
        }
    });
    let api = MockApi::start().await;
    let mut config = api.config();
    config.base_url = format!("http://{addr}/client/v4");
    let client = Client::new(config).unwrap();

    let scripts = client.list_scripts().await.unwrap();

    assert!(scripts.is_empty());
    assert_eq!(client.stats().requests, 2);
    assert_eq!(client.stats().retries, 1);
    server.await.unwrap();
}

#[tokio::test]
async fn retry_after_holds_every_clone_not_only_the_one_told() {
    let api = MockApi::start().await;
    api.push_with(429, &[("Retry-After", "1")], fail(971, "slow down"))
        .push(200, ok(json!([])))
        .push(200, ok(json!([])));
    let client = api.client();

    let first = {
        let client = client.clone();
        tokio::spawn(async move { client.list_scripts().await })
    };
    // Let the first call receive its 429 before the second starts.
    while api.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = client.list_namespaces().await;
    first.await.unwrap().unwrap();
    second.unwrap();

    let requests = api.requests();
    assert_eq!(requests.len(), 3);
    for later in &requests[1..] {
        let gap = later.at.duration_since(requests[0].at);
        assert!(
            gap >= Duration::from_millis(950),
            "{} sent after {gap:?}",
            later.path
        );
    }
    let stats = client.stats();
    assert_eq!(stats.retries, 1);
    // The told call waited 1 s; the other was held for the rest of that second.
    assert!(
        stats.retry_after_wait >= Duration::from_millis(1800),
        "{stats:?}"
    );
}

#[tokio::test]
async fn rate_limited_without_retry_after_backs_off_then_reports_rate_limited() {
    let api = MockApi::start().await;
    for _ in 0..2 {
        api.push(429, fail(10100, "More than 1200 requests per 300 seconds"));
    }
    let mut config = api.config();
    config.max_attempts = 2;
    let client = Client::new(config).unwrap();

    let err = client.references("web").await.unwrap_err();

    assert_eq!(err.kind, ApiErrorKind::RateLimited);
    assert_eq!(err.attempts, 2);
    assert!(err.has_code(10100));
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains("1200 API requests per 5 minutes"), "{help}");
    let stats = client.stats();
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.retries, 1);
    assert_eq!(stats.retry_after_wait, Duration::ZERO);
    assert!(stats.backoff_wait <= Duration::from_millis(5), "{stats:?}");
}
