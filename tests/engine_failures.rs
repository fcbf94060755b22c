//! The failure catalogue (docs: failure-catalogue.md), entry by entry,
//! against a real local edge: each test runs `cfdo` as a user would and
//! checks the plan it shows, the exit code, and what the account holds
//! afterwards.

mod engine_support;

use engine_support::*;
use serde_json::json;

/// A host `host` exporting `Counter` (binding COUNTER) and a client `client` binding it.
fn host_and_client(p: &Project, stack: &str) {
    p.write("host/index.js", &host_code("Counter", "COUNTER"));
    p.write("client/index.js", &client_code("COUNTER"));
    p.write(
        "cfdo.toml",
        &format!(
            r#"[stack]
name = "{stack}"
compatibility_date = "2026-11-01"

[workers.host]
name = "{stack}-host"
main = "host/index.js"

[workers.host.bindings]
COUNTER = {{ durable_object = "counter" }}

[workers.client]
name = "{stack}-client"
main = "client/index.js"

[workers.client.bindings]
COUNTER = {{ durable_object = "counter" }}

[durable_objects.counter]
class_name = "Counter"
worker = "host"
"#
        ),
    );
}

/// One worker `solo` hosting and binding its own class `Counter`.
fn solo(p: &Project, extra_namespace: &str) {
    p.write("src/index.js", &host_code("Counter", "COUNTER"));
    p.write(
        "cfdo.toml",
        &format!(
            r#"[stack]
name = "solo"
compatibility_date = "2026-11-01"

[workers.solo]
main = "src/index.js"

[workers.solo.bindings]
COUNTER = {{ durable_object = "counter" }}

[durable_objects.counter]
class_name = "Counter"
worker = "solo"
{extra_namespace}"#
        ),
    );
}

#[test]
fn f01_host_created_before_client() {
    let p = Project::new();
    host_and_client(&p, "f01");

    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let host = plan.change("f01-host");
    let client = plan.change("f01-client");
    assert_eq!(host["action"], "create");
    assert_eq!(client["action"], "create");
    assert!(
        host["level"].as_u64() < client["level"].as_u64(),
        "the host must be in an earlier level: {host} / {client}"
    );
    let order: Vec<String> = plan
        .events_of("plan_change")
        .iter()
        .map(|c| c["script"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(order, ["f01-host", "f01-client"]);
    // The client binds the host's class across scripts; only the host creates it.
    assert!(client.get("migration").is_none(), "{client}");
    assert!(
        field_lines(&client)
            .contains(&"binding COUNTER: (none) -> durable object Counter of f01-host".to_string()),
        "{client}"
    );
    assert_eq!(plan.summary()["add"], 2);

    let apply = p.cfdo(&["--json", "apply", "--yes"]);
    apply.expect_code(0);
    // The client's upload starts only after the host's finished.
    let progress: Vec<(String, String)> = apply
        .events_of("apply_progress")
        .iter()
        .map(|e| {
            (
                e["script"].as_str().unwrap_or("").to_string(),
                e["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let host_done = progress
        .iter()
        .position(|(s, st)| s == "f01-host" && st == "done")
        .unwrap_or_else(|| panic!("host never done: {progress:?}"));
    let client_started = progress
        .iter()
        .position(|(s, st)| s == "f01-client" && st == "started")
        .unwrap_or_else(|| panic!("client never started: {progress:?}"));
    assert!(host_done < client_started, "{progress:?}");
    let summary = &apply.events_of("apply_summary")[0];
    assert_eq!(
        summary["applied"],
        json!(["f01-host", "f01-client"]),
        "{summary}"
    );
    assert_eq!(summary["failed"], json!([]), "{summary}");

    assert_eq!(p.script_names(), ["f01-client", "f01-host"]);
    assert_eq!(p.count("f01-client", "/increment"), 1);
    assert_eq!(p.count("f01-host", "/get"), 1);
}

#[test]
fn f02_own_class_gets_new_class_step() {
    let p = Project::new();
    solo(&p, "");

    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let change = plan.change("solo");
    assert_eq!(change["action"], "create");
    assert_eq!(
        change["migration"],
        json!({"new_tag": "v1", "steps": [{"new_sqlite_classes": ["Counter"]}]}),
        "{change}"
    );
    assert!(
        field_lines(&change)
            .contains(&"binding COUNTER: (none) -> durable object Counter".to_string()),
        "{change}"
    );

    let text = p.cfdo(&["plan"]);
    text.expect_code(0);
    assert!(
        text.stdout
            .contains("migration (none) -> v1: new SQLite class Counter"),
        "{}",
        text.stdout
    );

    p.cfdo(&["apply", "--yes"]).expect_code(0);
    let ns = p.namespace("solo", "Counter").expect("namespace created");
    assert_eq!(ns["use_sqlite"], true, "{ns}");
    assert_eq!(p.script("solo").expect("script")["migration_tag"], "v1");
    assert_eq!(p.count("solo", "/increment"), 1);
    assert_eq!(p.count("solo", "/increment"), 2);
}

#[test]
fn f03_binding_to_missing_host_is_a_plan_error() {
    let p = Project::new();
    p.write("src/index.js", &client_code("COUNTER"));
    p.write("other/index.js", &plain_code("other"));
    p.write(
        "cfdo.toml",
        r#"[stack]
name = "f03"
compatibility_date = "2026-11-01"

[workers.app]
main = "src/index.js"

[workers.app.bindings]
COUNTER = { durable_object = "ghost_counter" }

[workers.caller]
main = "other/index.js"

[workers.caller.bindings]
BACKEND = { service = "ghost-backend" }

[durable_objects.ghost_counter]
class_name = "Counter"
script = "ghost-host"
"#,
    );

    let plan = p.cfdo(&["plan"]);
    plan.expect_code(1);
    let err = &plan.stderr;
    assert!(
        err.contains("binding `COUNTER` of worker `app` needs script `ghost-host`"),
        "{err}"
    );
    assert!(
        err.contains("binding `BACKEND` of worker `caller` names script `ghost-backend`"),
        "{err}"
    );
    assert!(err.contains("cfdo.toml"), "points at the manifest: {err}");
    assert!(plan.stdout.is_empty(), "no plan is shown: {}", plan.stdout);

    let apply = p.cfdo(&["apply", "--yes"]);
    apply.expect_code(1);
    assert!(apply.stderr.contains("ghost-host"), "{}", apply.stderr);
    assert!(p.script_names().is_empty(), "nothing was uploaded");
}

#[test]
fn f04_identical_apply_changes_nothing() {
    let p = Project::new();
    host_and_client(&p, "f04");
    p.cfdo(&["apply", "--yes"]).expect_code(0);
    assert_eq!(p.count("f04-client", "/increment"), 1);
    let before: Vec<_> = p.scripts();
    let versions = (p.version_count("f04-host"), p.version_count("f04-client"));

    let plan = p.cfdo(&["plan", "--detailed-exitcode"]);
    plan.expect_code(0);
    assert!(
        plan.stdout
            .contains("No changes. The account matches the manifest."),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("unchanged: f04-host, f04-client"),
        "{}",
        plan.stdout
    );

    let json = p.cfdo(&["--json", "plan"]);
    json.expect_code(0);
    for change in json.events_of("plan_change") {
        assert_eq!(change["action"], "no_op", "{change}");
        assert!(change.get("migration").is_none(), "{change}");
        assert!(change.get("fields").is_none(), "{change}");
    }
    assert_eq!(json.summary()["changes_present"], false);

    let apply = p.cfdo(&["--json", "apply", "--yes"]);
    apply.expect_code(0);
    assert!(
        apply.events_of("apply_progress").is_empty(),
        "{}",
        apply.stdout
    );
    let summary = &apply.events_of("apply_summary")[0];
    assert_eq!(summary["applied"], json!([]), "{summary}");

    // Nothing was uploaded: same etags, same migration tag, no new version.
    assert_eq!(p.scripts(), before);
    assert_eq!(p.script("f04-host").expect("host")["migration_tag"], "v1");
    assert_eq!(
        (p.version_count("f04-host"), p.version_count("f04-client")),
        versions
    );
    assert_eq!(p.count("f04-client", "/increment"), 2);
}
