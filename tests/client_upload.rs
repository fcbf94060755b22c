//! The upload form as the API receives it, the Authorization header, and the
//! token staying out of every error and log line.

mod client_support;

use std::time::Duration;

use cfdo::cloudflare::client::{ApiErrorKind, Client};
use cfdo::cloudflare::types::{
    Binding, ESM_CONTENT_TYPE, MigrationStep, Migrations, Module, SOURCE_MAP_CONTENT_TYPE,
    UploadMetadata,
};
use client_support::{ACCOUNT, MockApi, TOKEN, capture_log, fail, ok, script_json};
use serde_json::json;

struct Part {
    name: Option<String>,
    file_name: Option<String>,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

async fn parse_form(content_type: &str, body: Vec<u8>) -> Vec<Part> {
    let boundary = multer::parse_boundary(content_type).unwrap();
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    while let Some(field) = multipart.next_field().await.unwrap() {
        let name = field.name().map(str::to_string);
        let file_name = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(|m| m.to_string());
        let bytes = field.bytes().await.unwrap().to_vec();
        parts.push(Part {
            name,
            file_name,
            content_type,
            bytes,
        });
    }
    parts
}

fn metadata() -> UploadMetadata {
    UploadMetadata {
        main_module: Some("index.js".into()),
        compatibility_date: Some("2026-11-01".into()),
        compatibility_flags: vec!["nodejs_compat".into()],
        bindings: vec![
            Binding::DurableObjectNamespace {
                name: "COUNTER".into(),
                class_name: "SharedCounter".into(),
                script_name: None,
                namespace_id: None,
            },
            Binding::PlainText {
                name: "GREETING".into(),
                text: "hi".into(),
            },
        ],
        migrations: Some(Migrations {
            old_tag: None,
            new_tag: Some("v1".into()),
            steps: vec![MigrationStep {
                new_sqlite_classes: vec!["SharedCounter".into()],
                ..Default::default()
            }],
            inline: MigrationStep::default(),
        }),
        ..Default::default()
    }
}

fn modules() -> Vec<Module> {
    vec![
        Module {
            name: "index.js".into(),
            content_type: ESM_CONTENT_TYPE.into(),
            content: b"export default { fetch() { return new Response('hi') } }".to_vec(),
        },
        Module {
            name: "index.js.map".into(),
            content_type: SOURCE_MAP_CONTENT_TYPE.into(),
            content: br#"{"version":3}"#.to_vec(),
        },
    ]
}

#[tokio::test]
async fn upload_sends_the_metadata_part_and_one_part_per_module() {
    let api = MockApi::start().await;
    api.push(200, ok(script_json("web")));
    let client = api.client();

    let info = client
        .upload_script("web", &metadata(), &modules())
        .await
        .unwrap();

    assert_eq!(info.id, "web");
    assert_eq!(info.etag, "e1");
    let requests = api.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(
        request.path,
        format!("/client/v4/accounts/{ACCOUNT}/workers/scripts/web")
    );
    let content_type = request.headers["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("multipart/form-data; boundary="));
    let parts = parse_form(content_type, request.body.to_vec()).await;
    assert_eq!(parts.len(), 3);

    assert_eq!(parts[0].name.as_deref(), Some("metadata"));
    assert_eq!(parts[0].file_name, None);
    assert_eq!(parts[0].content_type.as_deref(), Some("application/json"));
    let sent: UploadMetadata = serde_json::from_slice(&parts[0].bytes).unwrap();
    assert_eq!(sent, metadata());
    let raw: serde_json::Value = serde_json::from_slice(&parts[0].bytes).unwrap();
    assert_eq!(raw["main_module"], "index.js");
    assert_eq!(
        raw["migrations"],
        json!({"new_tag": "v1", "steps": [{"new_sqlite_classes": ["SharedCounter"]}]})
    );
    assert_eq!(
        raw["bindings"][0],
        json!({"type": "durable_object_namespace", "name": "COUNTER", "class_name": "SharedCounter"})
    );

    for (part, module) in parts[1..].iter().zip(modules()) {
        assert_eq!(part.name.as_deref(), Some(module.name.as_str()));
        assert_eq!(part.file_name.as_deref(), Some(module.name.as_str()));
        assert_eq!(
            part.content_type.as_deref(),
            Some(module.content_type.as_str())
        );
        assert_eq!(part.bytes, module.content);
    }
}

#[tokio::test]
async fn a_failed_upload_is_sent_again_whole() {
    let api = MockApi::start().await;
    api.push(500, fail(10013, "internal error"))
        .push(200, ok(script_json("web")));
    let client = api.client();

    client
        .upload_script("web", &metadata(), &modules())
        .await
        .unwrap();

    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        let content_type = request.headers["content-type"].to_str().unwrap();
        let parts = parse_form(content_type, request.body.to_vec()).await;
        let names: Vec<_> = parts.iter().map(|p| p.name.clone().unwrap()).collect();
        assert_eq!(names, ["metadata", "index.js", "index.js.map"]);
    }
}

#[tokio::test]
async fn a_module_with_an_invalid_content_type_is_refused_before_sending() {
    let api = MockApi::start().await;
    let client = api.client();
    let mut bad = modules();
    bad[0].content_type = "not a type".into();

    let err = client
        .upload_script("web", &metadata(), &bad)
        .await
        .unwrap_err();

    assert_eq!(err.kind, ApiErrorKind::Api);
    assert!(
        err.to_string()
            .contains("module \"index.js\" has an invalid content type \"not a type\""),
        "{err}"
    );
    assert!(api.requests().is_empty());
}

#[tokio::test]
async fn the_token_is_sent_but_never_shown() {
    let api = MockApi::start().await;
    // A hostile or broken server echoing the token back in every kind of answer.
    api.push(
        400,
        fail(10021, &format!("bad request from Bearer {TOKEN}")),
    )
    .push(200, format!("<html>Authorization: Bearer {TOKEN}</html>"))
    .push(200, ok(json!([{"id": TOKEN, "etag": 5}])))
    .push_with(429, &[("Retry-After", "9999")], fail(971, TOKEN))
    .push(204, "");
    let mut config = api.config();
    let log = capture_log(&mut config);
    let config_debug = format!("{config:?}");
    let client = Client::new(config).unwrap();

    let mut shown = vec![config_debug, format!("{client:?}")];
    let errors = [
        client
            .patch_script_settings("web", &json!({"tags": []}))
            .await
            .unwrap_err(),
        client.list_scripts().await.unwrap_err(),
        client.list_scripts().await.unwrap_err(),
        client.list_scripts().await.unwrap_err(),
    ];
    client.delete_script("web", false).await.unwrap();
    for err in &errors {
        shown.push(err.to_string());
        shown.push(format!("{err:?}"));
        let report = miette::Report::new(err.clone());
        shown.push(format!("{report:?}"));
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 5, "one verbose line per request: {log:#?}");
    shown.extend(log.iter().cloned());

    for text in &shown {
        assert!(!text.contains(TOKEN), "the token leaked into: {text}");
    }
    assert!(
        errors[0]
            .to_string()
            .contains("bad request from Bearer (redacted)")
    );
    for request in api.requests() {
        assert_eq!(
            request.headers["authorization"].to_str().unwrap(),
            format!("Bearer {TOKEN}")
        );
    }
    assert_eq!(
        log[0],
        format!(
            "PATCH /accounts/{ACCOUNT}/workers/scripts/web/script-settings 400 {} ms",
            log[0]
                .rsplit(' ')
                .nth(1)
                .and_then(|ms| ms.parse::<u64>().ok())
                .expect("the line ends with the time taken")
        )
    );
    assert!(
        log[4].starts_with(&format!(
            "DELETE /accounts/{ACCOUNT}/workers/scripts/web?force=false 204 "
        )),
        "{}",
        log[4]
    );
}

#[tokio::test]
async fn verbose_logs_say_why_and_how_long_before_a_retry() {
    let api = MockApi::start().await;
    api.push_with(503, &[("Retry-After", "0")], fail(10013, "down"))
        .push(200, ok(json!([])));
    let mut config = api.config();
    config.max_retry_after = Duration::from_secs(5);
    let log = capture_log(&mut config);
    let client = Client::new(config).unwrap();

    client.list_scripts().await.unwrap();

    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 3, "{log:#?}");
    assert!(
        log[1].starts_with(&format!(
            "retrying GET /accounts/{ACCOUNT}/workers/scripts in 0 ms (attempt 2 of 5): \
             GET /accounts/{ACCOUNT}/workers/scripts failed with HTTP 503: down [code: 10013]"
        )),
        "{}",
        log[1]
    );
}

#[tokio::test]
async fn a_retried_upload_whose_first_attempt_moved_the_migration_tag_counts_as_done() {
    let api = MockApi::start().await;
    let mut landed = script_json("web");
    landed["migration_tag"] = json!("v1");
    // The first attempt landed but its answer was lost; the retry is refused
    // because the tag moved; the account holds the tag the upload sets.
    api.push(502, "<html>Bad gateway</html>")
        .push(
            400,
            fail(
                10079,
                "Migration tag precondition failed; current tag is v1",
            ),
        )
        .push(200, ok(json!([script_json("other"), landed])));
    let client = api.client();

    let info = client
        .upload_script("web", &metadata(), &modules())
        .await
        .unwrap();

    assert_eq!(info.id, "web");
    assert_eq!(info.migration_tag.as_deref(), Some("v1"));
    let methods: Vec<_> = api.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["PUT", "PUT", "GET"]);
}

#[tokio::test]
async fn a_migration_tag_conflict_not_explained_by_a_retry_is_an_error() {
    let api = MockApi::start().await;
    let mut elsewhere = script_json("web");
    elsewhere["migration_tag"] = json!("v7");
    api.push(500, fail(10013, "internal error"))
        .push(
            400,
            fail(
                10079,
                "Migration tag precondition failed; current tag is v7",
            ),
        )
        .push(200, ok(json!([elsewhere])));
    // And on a first attempt, no second look at all.
    api.push(
        400,
        fail(
            10079,
            "Migration tag precondition failed; current tag is v7",
        ),
    );
    let client = api.client();

    let err = client
        .upload_script("web", &metadata(), &modules())
        .await
        .unwrap_err();
    assert!(err.has_code(10079));
    assert_eq!(err.attempts, 2);

    let err = client
        .upload_script("web", &metadata(), &modules())
        .await
        .unwrap_err();
    assert!(err.has_code(10079));
    assert_eq!(err.attempts, 1);
    let methods: Vec<_> = api.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["PUT", "PUT", "GET", "PUT"]);
}

#[tokio::test]
async fn an_answer_that_echoes_a_sent_secret_never_shows_it() {
    let secret = "SUPERSECRETVALUE42";
    let api = MockApi::start().await;
    // An API (or a proxy) that quotes what it was sent back in its error.
    api.push(
        400,
        fail(
            10021,
            &format!("invalid binding {{\"type\":\"secret_text\",\"name\":\"API_KEY\",\"text\":\"{secret}\"}}"),
        ),
    );
    let mut config = api.config();
    let log = capture_log(&mut config);
    let client = Client::new(config).unwrap();
    let mut with_secret = metadata();
    with_secret.bindings.push(Binding::SecretText {
        name: "API_KEY".into(),
        text: Some(cfdo::cloudflare::types::Sensitive(secret.into())),
    });

    let err = client
        .upload_script("web", &with_secret, &modules())
        .await
        .unwrap_err();

    let shown = format!("{err} {:?}", miette::Report::new(err.clone()));
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("\"text\":\"(sensitive)\""), "{shown}");
    let logged = log.lock().unwrap().join("\n");
    assert!(!logged.contains(secret), "{logged}");
}
