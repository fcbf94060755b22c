//! How the client reads answers: the envelope, malformed bodies, "not found"
//! versus failure, pagination, and the typed results of each endpoint.

mod client_support;

use cfdo::cloudflare::client::ApiErrorKind;
use client_support::{ACCOUNT, MockApi, fail, ok, script_json};
use serde_json::json;

#[tokio::test]
async fn an_html_page_with_status_200_is_malformed_and_names_the_endpoint() {
    let api = MockApi::start().await;
    api.push_with(
        200,
        &[("content-type", "text/html")],
        "<!DOCTYPE html><html><head><title>Captive portal</title></head></html>",
    );
    let client = api.client();

    let err = client.list_scripts().await.unwrap_err();

    assert_eq!(err.kind, ApiErrorKind::Malformed);
    assert_eq!(err.status, Some(200));
    assert_eq!(api.requests().len(), 1, "a malformed answer is not retried");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "GET /accounts/{ACCOUNT}/workers/scripts failed with HTTP 200: the response is \
             not Cloudflare's JSON envelope ("
        )),
        "{text}"
    );
    assert!(
        text.ends_with("it starts with `<!DOCTYPE html><html><head><title>Captive portal</title></head></html>`"),
        "{text}"
    );
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains("CLOUDFLARE_API_BASE_URL"), "{help}");
}

#[tokio::test]
async fn truncated_json_is_malformed() {
    let api = MockApi::start().await;
    api.push(
        200,
        r#"{"success": true, "errors": [], "result": [{"id": "web", "et"#,
    );
    let client = api.client();

    let err = client.list_scripts().await.unwrap_err();

    assert_eq!(err.kind, ApiErrorKind::Malformed);
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "GET /accounts/{ACCOUNT}/workers/scripts failed with HTTP 200"
        )),
        "{text}"
    );
    assert!(text.contains("EOF while parsing"), "{text}");
}

#[tokio::test]
async fn a_result_of_the_wrong_type_is_malformed_and_names_the_field() {
    let api = MockApi::start().await;
    api.push(
        200,
        ok(json!([script_json("web"), {"id": 42, "etag": "x"}])),
    );
    let client = api.client();

    let err = client.list_scripts().await.unwrap_err();

    assert_eq!(err.kind, ApiErrorKind::Malformed);
    assert_eq!(
        err.to_string(),
        format!(
            "GET /accounts/{ACCOUNT}/workers/scripts failed with HTTP 200: unexpected \
             `result[1].id`: invalid type: integer `42`, expected a string"
        )
    );
}

#[tokio::test]
async fn missing_fields_are_malformed() {
    let api = MockApi::start().await;
    // No `success` at all.
    api.push(200, json!({"result": []}).to_string());
    // A namespace without its id.
    api.push(
        200,
        json!({"success": true, "errors": [], "result": [{"name": "n"}], "result_info": {"page": 1, "per_page": 1000, "count": 1, "total_count": 1}}).to_string(),
    );
    // Success without a result where one is needed.
    api.push(200, json!({"success": true, "errors": []}).to_string());
    let client = api.client();

    let err = client.list_scripts().await.unwrap_err();
    assert_eq!(err.kind, ApiErrorKind::Malformed);
    assert!(err.to_string().contains("missing field `success`"), "{err}");

    let err = client.list_namespaces().await.unwrap_err();
    assert_eq!(err.kind, ApiErrorKind::Malformed);
    assert!(
        err.to_string()
            .contains("unexpected `result[0]`: missing field `id`"),
        "{err}"
    );
    assert!(
        err.endpoint.starts_with(&format!(
            "GET /accounts/{ACCOUNT}/workers/durable_objects/namespaces?"
        )),
        "{}",
        err.endpoint
    );

    let err = client.references("web").await.unwrap_err();
    assert_eq!(err.kind, ApiErrorKind::Malformed);
    assert!(
        err.to_string().ends_with("the response has no `result`"),
        "{err}"
    );
}

#[tokio::test]
async fn errors_of_the_wrong_shape_are_malformed() {
    let api = MockApi::start().await;
    api.push(400, json!({"success": false, "errors": "nope"}).to_string());
    let client = api.client();

    let err = client.list_scripts().await.unwrap_err();

    assert_eq!(err.kind, ApiErrorKind::Malformed);
    assert_eq!(err.status, Some(400));
    assert!(err.to_string().contains("`errors`"), "{err}");
}

#[tokio::test]
async fn success_false_is_an_error_even_with_status_200() {
    let api = MockApi::start().await;
    api.push(
        200,
        fail(
            10079,
            "Migration tag precondition failed; current tag is v2",
        ),
    );
    let client = api.client();

    let err = client.set_script_subdomain("web", true).await.unwrap_err();

    assert_eq!(err.kind, ApiErrorKind::Api);
    assert!(err.has_code(10079));
    assert_eq!(
        err.to_string(),
        format!(
            "POST /accounts/{ACCOUNT}/workers/scripts/web/subdomain failed with HTTP 200: \
             Migration tag precondition failed; current tag is v2 [code: 10079]"
        )
    );
    let body: serde_json::Value = serde_json::from_slice(&api.requests()[0].body).unwrap();
    assert_eq!(body, json!({"enabled": true}));
}

#[tokio::test]
async fn settings_of_a_missing_script_are_none_but_other_failures_are_errors() {
    let api = MockApi::start().await;
    api.push(404, fail(10007, "workers.api.error.script_not_found"));
    // A wrong account id: 404 with a routing error, which is not "absent".
    api.push(
        404,
        fail(7003, "Could not route to /accounts/nope/workers/scripts/web/settings, perhaps your object identifier is invalid?"),
    );
    api.push(
        200,
        ok(json!({
            "bindings": [
                {"type": "durable_object_namespace", "name": "COUNTER", "class_name": "Counter", "namespace_id": "ns1"},
                {"type": "secret_text", "name": "KEY"},
                {"type": "kv_namespace", "name": "CACHE", "namespace_id": "kv1"}
            ],
            "compatibility_date": "2026-01-01",
            "compatibility_flags": ["nodejs_compat"],
            "tags": ["cfdo:stack=demo"]
        })),
    );
    let client = api.client();

    assert_eq!(client.script_settings("web").await.unwrap(), None);

    let err = client.script_settings("web").await.unwrap_err();
    assert_eq!(err.kind, ApiErrorKind::NotFound);
    assert!(err.has_code(7003));

    let settings = client.script_settings("web").await.unwrap().unwrap();
    assert_eq!(settings.bindings.len(), 3);
    assert_eq!(settings.bindings[0].name(), "COUNTER");
    assert_eq!(settings.bindings[2].name(), "CACHE");
    assert_eq!(settings.compatibility_date.as_deref(), Some("2026-01-01"));
    assert_eq!(settings.tags, vec!["cfdo:stack=demo".to_string()]);
}

#[tokio::test]
async fn namespaces_follow_pagination() {
    let api = MockApi::start().await;
    let ns = |i: u32| json!({"id": format!("ns{i}"), "name": format!("stack_Class{i}"), "class": format!("Class{i}"), "script": "host", "use_sqlite": true});
    let page = |items: Vec<serde_json::Value>, page: u32| {
        json!({
            "success": true, "errors": [], "messages": [],
            "result": items,
            "result_info": {"page": page, "per_page": 2, "count": 2, "total_count": 5}
        })
        .to_string()
    };
    api.push(200, page(vec![ns(1), ns(2)], 1))
        .push(200, page(vec![ns(3), ns(4)], 2))
        .push(200, page(vec![ns(5)], 3));
    let client = api.client();

    let namespaces = client.list_namespaces().await.unwrap();

    let ids: Vec<_> = namespaces.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["ns1", "ns2", "ns3", "ns4", "ns5"]);
    assert!(namespaces[0].use_sqlite);
    let paths: Vec<_> = api.requests().iter().map(|r| r.path.clone()).collect();
    let base = format!("/client/v4/accounts/{ACCOUNT}/workers/durable_objects/namespaces");
    assert_eq!(
        paths,
        [
            format!("{base}?per_page=1000&page=1"),
            format!("{base}?per_page=1000&page=2"),
            format!("{base}?per_page=1000&page=3"),
        ]
    );
}

#[tokio::test]
async fn a_single_page_without_result_info_is_the_whole_list() {
    let api = MockApi::start().await;
    api.push(
        200,
        ok(json!([{"id": "ns1", "name": "a", "class": "A", "script": "h"}])),
    );
    let client = api.client();

    let namespaces = client.list_namespaces().await.unwrap();

    assert_eq!(namespaces.len(), 1);
    assert_eq!(api.requests().len(), 1);
}

#[tokio::test]
async fn account_subdomain_is_none_when_the_account_has_none() {
    let api = MockApi::start().await;
    api.push(
        404,
        fail(10007, "This account does not have a workers.dev subdomain"),
    );
    api.push(200, ok(json!({"subdomain": "acme"})));
    let client = api.client();

    assert_eq!(client.account_subdomain().await.unwrap(), None);
    assert_eq!(
        client.account_subdomain().await.unwrap().as_deref(),
        Some("acme")
    );
    assert_eq!(
        api.requests()[0].path,
        format!("/client/v4/accounts/{ACCOUNT}/workers/subdomain")
    );
}

#[tokio::test]
async fn script_subdomain_and_references_are_typed() {
    let api = MockApi::start().await;
    api.push(200, ok(json!({"enabled": true, "previews_enabled": false})));
    api.push(
        200,
        ok(json!({
            "services": [{"service": "client", "name": "HOST"}],
            "durable_objects": [{"namespace_id": "ns1", "namespace_name": "n", "dependent_service": "client"}]
        })),
    );
    let client = api.client();

    let sub = client.script_subdomain("host").await.unwrap();
    assert!(sub.enabled);
    assert!(!sub.previews_enabled);
    let refs = client.references("host").await.unwrap();
    assert_eq!(refs.services[0].service, "client");
    assert_eq!(refs.durable_objects[0].dependent_service, "client");
    let paths: Vec<_> = api.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            format!("/client/v4/accounts/{ACCOUNT}/workers/scripts/host/subdomain"),
            format!("/client/v4/accounts/{ACCOUNT}/workers/scripts/host/references"),
        ]
    );
}

#[tokio::test]
async fn verify_token_accepts_an_active_token_and_rejects_others() {
    let api = MockApi::start().await;
    api.push(200, ok(json!({"id": "t1", "status": "active"})));
    api.push(200, ok(json!({"id": "t1", "status": "disabled"})));
    // A bad token: the user endpoint refuses, and so does the account one.
    api.push(401, fail(1000, "Invalid API Token"));
    api.push(401, fail(1000, "Invalid API Token"));
    let client = api.client();

    client.verify_token().await.unwrap();

    let err = client.verify_token().await.unwrap_err();
    assert_eq!(err.kind, ApiErrorKind::Auth);
    assert!(
        err.to_string()
            .contains("the API token is disabled, not active"),
        "{err}"
    );

    let err = client.verify_token().await.unwrap_err();
    assert_eq!(err.kind, ApiErrorKind::Auth);
    assert_eq!(
        err.to_string(),
        "GET /user/tokens/verify failed with HTTP 401: Invalid API Token [code: 1000]"
    );
    let paths: Vec<_> = api.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/client/v4/user/tokens/verify".to_string(),
            "/client/v4/user/tokens/verify".to_string(),
            "/client/v4/user/tokens/verify".to_string(),
            format!("/client/v4/accounts/{ACCOUNT}/tokens/verify"),
        ]
    );
}

#[tokio::test]
async fn a_script_deleted_between_the_list_and_its_settings_read_is_absent() {
    let api = MockApi::start().await;
    // The list and the namespace read go out together, in either order: each
    // answer parses as both (a listed script `web` that is also a namespace
    // row), so whichever arrives first gets a valid one.
    let mut row = script_json("web");
    row["name"] = json!("demo_Counter");
    row["class"] = json!("Counter");
    row["script"] = json!("other");
    api.push(200, ok(json!([row.clone()])))
        .push(200, ok(json!([row])))
        .push(404, fail(10007, "workers.api.error.script_not_found"));
    let client = api.client();

    let snapshot = cfdo::plan::snapshot::Snapshot::read(&client, &["web".to_string()], 4)
        .await
        .unwrap();

    assert!(
        !snapshot.scripts.contains_key("web"),
        "gone since the list: planned as absent (a create), not an update of empty settings"
    );
    assert!(snapshot.settings.is_empty());
    assert_eq!(api.requests().len(), 3);
}

#[tokio::test]
async fn a_base_url_that_is_not_the_api_root_is_named_at_the_token_check() {
    let api = MockApi::start().await;
    let no_route = fail(
        7003,
        "Could not route to /user/tokens/verify, perhaps your object identifier is invalid?",
    );
    api.push(404, no_route.clone()).push(404, no_route);
    let client = api.client();

    let err = client.verify_token().await.unwrap_err();

    assert_eq!(err.kind, ApiErrorKind::Malformed);
    let shown = format!("{:?}", miette::Report::new(err));
    assert!(
        shown.contains("CLOUDFLARE_API_BASE_URL must be the API's root, ending in /client/v4"),
        "{shown}"
    );
    assert!(
        !shown.contains("CLOUDFLARE_API_TOKEN is a valid"),
        "not a token problem: {shown}"
    );
}
