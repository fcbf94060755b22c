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
    let err = &plan.err();
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

    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(1);
    let apply = p.cfdo(&["apply", "--yes"]);
    apply.expect_code(1);
    assert!(apply.err().contains("ghost-host"), "{}", apply.stderr);
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

/// Host code exporting `Counter` (bound as COUNTER) and a second class `Extra`.
fn host_with_extra() -> String {
    format!(
        "{}\nexport class Extra extends DurableObject {{\n  async fetch() {{ return new Response(\"extra\"); }}\n}}\n",
        host_code("Counter", "COUNTER")
    )
}

#[test]
fn f05_foreign_migration_tag_is_the_old_tag() {
    let p = Project::new();
    p.start_edge(&[]);
    // Another tool deployed the script; its migrations reached tag v3.
    p.upload(
        "f05-legacy",
        metadata(
            json!([do_binding("COUNTER", "Counter", None)]),
            Some(json!({"new_tag": "v3", "steps": [{"new_sqlite_classes": ["Counter"]}]})),
        ),
        &host_code("Counter", "COUNTER"),
    );
    assert_eq!(p.count("f05-legacy", "/increment"), 1);
    assert_eq!(p.count("f05-legacy", "/increment"), 2);
    let namespace_id = p.namespace("f05-legacy", "Counter").expect("namespace")["id"].clone();

    p.write("src/index.js", &host_with_extra());
    p.write(
        "cfdo.toml",
        r#"[stack]
name = "f05"
compatibility_date = "2026-11-01"

[workers.legacy]
name = "f05-legacy"
main = "src/index.js"

[workers.legacy.bindings]
COUNTER = { durable_object = "counter" }

[durable_objects.counter]
class_name = "Counter"
worker = "legacy"

[durable_objects.extra]
class_name = "Extra"
worker = "legacy"
"#,
    );

    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let change = plan.change("f05-legacy");
    assert_eq!(change["action"], "adopt", "{change}");
    // v3 is the old tag; only the class that is new is created; Counter's step is never replayed.
    assert_eq!(
        change["migration"],
        json!({"old_tag": "v3", "new_tag": "v4", "steps": [{"new_sqlite_classes": ["Extra"]}]}),
        "{change}"
    );
    let text = p.cfdo(&["plan"]);
    assert!(
        text.stdout
            .contains("migration v3 -> v4: new SQLite class Extra"),
        "{}",
        text.stdout
    );

    p.cfdo(&["apply", "--yes", "--adopt"]).expect_code(0);
    assert_eq!(
        p.script("f05-legacy").expect("script")["migration_tag"],
        "v4"
    );
    let counter = p.namespace("f05-legacy", "Counter").expect("Counter kept");
    assert_eq!(
        counter["id"], namespace_id,
        "Counter's namespace is the same"
    );
    assert!(
        p.namespace("f05-legacy", "Extra").is_some(),
        "Extra created"
    );
    assert_eq!(p.count("f05-legacy", "/increment"), 3, "the data is kept");

    // Owned now: nothing more to do.
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn f06_existing_script_and_namespace_are_adopted() {
    let p = Project::new();
    p.start_edge(&[]);
    p.upload(
        "f06-app",
        metadata(
            json!([do_binding("COUNTER", "Counter", None)]),
            Some(json!({"new_tag": "v1", "steps": [{"new_sqlite_classes": ["Counter"]}]})),
        ),
        &host_code("Counter", "COUNTER"),
    );
    assert_eq!(p.count("f06-app", "/increment"), 1);
    let namespace_id = p.namespace("f06-app", "Counter").expect("namespace")["id"].clone();
    let before = p.script("f06-app").expect("script");

    p.write("src/index.js", &host_code("Counter", "COUNTER"));
    p.write(
        "cfdo.toml",
        r#"[stack]
name = "f06"
compatibility_date = "2026-11-01"

[workers.app]
name = "f06-app"
main = "src/index.js"

[workers.app.bindings]
COUNTER = { durable_object = "counter" }

[durable_objects.counter]
class_name = "Counter"
worker = "app"
"#,
    );

    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let change = plan.change("f06-app");
    assert_eq!(change["action"], "adopt", "{change}");
    assert!(
        change.get("migration").is_none(),
        "no new-class step: {change}"
    );
    let notes = strings(&change, "notes");
    assert!(
        notes
            .iter()
            .any(|n| n.contains("adopts the existing namespace of class `Counter`")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.contains("only with --adopt")),
        "{notes:?}"
    );
    let text = p.cfdo(&["plan"]);
    assert!(
        text.stdout
            .contains("<= f06-app (worker app) will be adopted"),
        "{}",
        text.stdout
    );

    // Without --adopt: refused, the script untouched.
    let refused = p.cfdo(&["apply", "--yes"]);
    refused.expect_code(1);
    assert!(
        refused
            .err()
            .contains("refusing to take over a script not deployed by stack f06: f06-app"),
        "{}",
        refused.stderr
    );
    assert!(refused.err().contains("--adopt"), "{}", refused.stderr);
    assert_eq!(p.script("f06-app").expect("script"), before);

    p.cfdo(&["apply", "--yes", "--adopt"]).expect_code(0);
    let after = p.script("f06-app").expect("script");
    let tags = strings(&after, "tags");
    assert!(tags.contains(&"cfdo:stack=f06".to_string()), "{tags:?}");
    assert_eq!(after["migration_tag"], "v1", "no migration sent");
    assert_eq!(
        p.namespace("f06-app", "Counter").expect("namespace")["id"],
        namespace_id
    );
    assert_eq!(p.count("f06-app", "/increment"), 2, "the data is kept");
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}

/// Host `h` hosting Counter; clients `x`, `y` binding it (when `with_class`).
fn f07_manifest(p: &Project, with_class: bool) {
    p.write("h/index.js", &host_code("Counter", "COUNTER"));
    p.write("x/index.js", &client_code("COUNTER"));
    p.write("y/index.js", &client_code("COUNTER"));
    let (binding, namespace) = if with_class {
        (
            "\n[workers.{w}.bindings]\nCOUNTER = { durable_object = \"counter\" }\n",
            "\n[durable_objects.counter]\nclass_name = \"Counter\"\nworker = \"h\"\n",
        )
    } else {
        ("", "")
    };
    let mut toml = String::from("[stack]\nname = \"f07\"\ncompatibility_date = \"2026-11-01\"\n");
    for w in ["h", "x", "y"] {
        toml.push_str(&format!(
            "\n[workers.{w}]\nname = \"f07-{w}\"\nmain = \"{w}/index.js\"\n"
        ));
        toml.push_str(&binding.replace("{w}", w));
    }
    toml.push_str(namespace);
    p.write("cfdo.toml", &toml);
}

#[test]
fn f07_deleting_a_class_is_data_loss_and_goes_in_two_phases() {
    let p = Project::new();
    f07_manifest(&p, true);
    p.cfdo(&["apply", "--yes"]).expect_code(0);
    assert_eq!(p.count("f07-x", "/increment"), 1);
    assert_eq!(p.count("f07-y", "/increment"), 2);
    let namespace_id = p.namespace("f07-h", "Counter").expect("namespace")["id"].clone();

    f07_manifest(&p, false);
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let h = plan.change("f07-h");
    assert_eq!(h["action"], "update");
    assert_eq!(
        h["migration"],
        json!({"old_tag": "v1", "new_tag": "v2", "steps": [{"deleted_classes": ["Counter"]}]}),
        "{h}"
    );
    let loss = strings(&h, "data_loss");
    assert_eq!(loss.len(), 1, "{loss:?}");
    assert!(loss[0].contains("`Counter` of `f07-h`"), "{loss:?}");
    assert!(
        loss[0].contains(namespace_id.as_str().unwrap_or("?")),
        "{loss:?}"
    );
    for client in ["f07-x", "f07-y"] {
        let c = plan.change(client);
        assert_eq!(c["action"], "update");
        assert!(
            field_lines(&c).contains(
                &"binding COUNTER: durable object Counter of f07-h -> (none)".to_string()
            ),
            "{c}"
        );
        assert!(c["phase"].as_u64() < h["phase"].as_u64(), "{c} / {h}");
    }
    assert_eq!(plan.summary()["data_loss"], true);

    let text = p.cfdo(&["plan"]);
    assert!(
        text.stdout
            .contains("DATA LOSS: deletes Durable Object class `Counter` of `f07-h`"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("migration v1 -> v2: delete class Counter"),
        "{}",
        text.stdout
    );

    // Without the opt-in: refused, nothing changed.
    let refused = p.cfdo(&["apply", "--yes"]);
    refused.expect_code(1);
    assert!(
        refused.err().contains("refusing to apply") && refused.err().contains("--allow-data-loss"),
        "{}",
        refused.stderr
    );
    assert!(p.namespace("f07-h", "Counter").is_some());
    assert_eq!(p.binding_names("f07-x"), ["COUNTER"]);
    assert_eq!(p.count("f07-x", "/increment"), 3, "nothing was changed");

    let apply = p.cfdo(&["--json", "apply", "--yes", "--allow-data-loss"]);
    apply.expect_code(0);
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
    let at = |script: &str, status: &str| {
        progress
            .iter()
            .position(|(s, st)| s == script && st == status)
            .unwrap_or_else(|| panic!("{script} {status} missing: {progress:?}"))
    };
    assert!(at("f07-x", "done") < at("f07-h", "started"), "{progress:?}");
    assert!(at("f07-y", "done") < at("f07-h", "started"), "{progress:?}");

    assert!(p.namespace("f07-h", "Counter").is_none(), "class deleted");
    assert!(p.binding_names("f07-x").is_empty());
    assert!(p.binding_names("f07-y").is_empty());
    assert!(p.binding_names("f07-h").is_empty());
    assert_eq!(p.script("f07-h").expect("host")["migration_tag"], "v2");
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}

fn f08_manifest(p: &Project, host: &str, transfer: bool) {
    p.write("w1/index.js", &host_code("Counter", "COUNTER"));
    p.write("w2/index.js", &host_code("Counter", "COUNTER"));
    let mut toml = String::from(
        r#"[stack]
name = "f08"
compatibility_date = "2026-11-01"

[workers.w1]
name = "f08-w1"
main = "w1/index.js"

[workers.w1.bindings]
COUNTER = { durable_object = "counter" }
"#,
    );
    if host == "w2" {
        toml.push_str(
            r#"
[workers.w2]
name = "f08-w2"
main = "w2/index.js"

[workers.w2.bindings]
COUNTER = { durable_object = "counter" }
"#,
        );
    }
    toml.push_str(&format!(
        "\n[durable_objects.counter]\nclass_name = \"Counter\"\nworker = \"{host}\"\n"
    ));
    if transfer {
        toml.push_str("transferred_from = \"w1\"\n");
    }
    p.write("cfdo.toml", &toml);
}

#[test]
fn f08_implicit_move_is_refused_with_the_transfer_to_write() {
    let p = Project::new();
    f08_manifest(&p, "w1", false);
    p.cfdo(&["apply", "--yes"]).expect_code(0);
    assert_eq!(p.count("f08-w1", "/increment"), 1);
    let scripts = p.scripts();

    f08_manifest(&p, "w2", false);
    let plan = p.cfdo(&["plan"]);
    plan.expect_code(1);
    assert!(
        plan.err().contains(
            "class `Counter` is hosted by `f08-w1` in the account; moving it to `f08-w2` would delete its data"
        ),
        "{}",
        plan.stderr
    );
    assert!(
        plan.err().contains("transferred_from = \"w1\""),
        "says what to write: {}",
        plan.stderr
    );
    let apply = p.cfdo(&["apply", "--yes", "--allow-data-loss"]);
    apply.expect_code(1);
    assert_eq!(p.scripts(), scripts, "nothing was changed");
    assert_eq!(p.count("f08-w1", "/increment"), 2);

    // Written as a transfer, the class moves with its data.
    f08_manifest(&p, "w2", true);
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let w2 = plan.change("f08-w2");
    assert_eq!(w2["action"], "create");
    assert_eq!(
        w2["migration"]["steps"],
        json!([{"transferred_classes": [{"from": "Counter", "from_script": "f08-w1", "to": "Counter"}]}]),
        "{w2}"
    );
    let w1 = plan.change("f08-w1");
    assert!(strings(&w1, "data_loss").is_empty(), "{w1}");
    assert!(w1.get("migration").is_none(), "{w1}");
    assert_eq!(plan.summary()["data_loss"], false);
    p.cfdo(&["apply", "--yes"]).expect_code(0);
    assert!(p.namespace("f08-w2", "Counter").is_some());
    assert!(p.namespace("f08-w1", "Counter").is_none());
    assert_eq!(p.count("f08-w1", "/increment"), 3, "the data moved along");
    assert_eq!(p.count("f08-w2", "/get"), 3);
    // Applied: the transfer is not sent again.
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn f09_storage_switch_is_a_plan_error() {
    let p = Project::new();
    solo(&p, "");
    p.cfdo(&["apply", "--yes"]).expect_code(0);
    assert_eq!(p.count("solo", "/increment"), 1);
    let scripts = p.scripts();

    solo(&p, "sqlite = false\n");
    let plan = p.cfdo(&["plan"]);
    plan.expect_code(1);
    assert!(
        plan.err().contains(
            "class `Counter` exists with SQLite storage; it cannot switch to key-value storage"
        ),
        "{}",
        plan.stderr
    );
    assert!(plan.err().contains("sqlite = true"), "{}", plan.stderr);
    assert!(
        plan.err().contains("loses") || plan.err().contains("losing"),
        "{}",
        plan.stderr
    );
    let apply = p.cfdo(&["apply", "--yes", "--allow-data-loss"]);
    apply.expect_code(1);
    assert_eq!(p.scripts(), scripts);
    assert_eq!(
        p.namespace("solo", "Counter").expect("namespace")["use_sqlite"],
        true
    );
    assert_eq!(p.count("solo", "/increment"), 2);
}

#[test]
fn f10_class_not_exported_is_a_plan_error_before_any_call() {
    let p = Project::new();
    solo(&p, "");
    p.write("src/index.js", &plain_code("solo"));

    let plan = p.cfdo(&["plan"]);
    plan.expect_code(1);
    let err = &plan.err();
    assert!(
        err.contains("worker `solo` hosts class `Counter`, but its code"),
        "{err}"
    );
    assert!(err.contains("index.js"), "names the entrypoint: {err}");
    assert!(err.contains("does not export it"), "{err}");
    assert!(
        err.contains("class_name = \"Counter\""),
        "points at the manifest line: {err}"
    );
    // Known before calling the API: no edge was even started.
    assert_eq!(p.status()["running"], false, "the API was called");

    p.cfdo(&["apply", "--yes"]).expect_code(1);
    assert_eq!(p.status()["running"], false, "the API was called");
}

#[test]
fn f11_drift_is_shown_and_repaired() {
    let p = Project::new();
    host_and_client(&p, "f11");
    p.cfdo(&["apply", "--yes"]).expect_code(0);
    assert_eq!(p.count("f11-client", "/increment"), 1);

    // Someone deletes the client by hand.
    let (status, body) = p.delete("/workers/scripts/f11-client");
    assert_eq!(status, 200, "{body}");
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let client = plan.change("f11-client");
    assert_eq!(client["action"], "create");
    let drift = strings(&client, "drift");
    assert!(
        drift.iter().any(|d| d.contains(
            "`f11-client` is missing from the account although the stack was applied with it"
        )),
        "{drift:?}"
    );
    assert_eq!(plan.change("f11-host")["action"], "no_op");
    let text = p.cfdo(&["plan", "--detailed-exitcode"]);
    text.expect_code(2);
    assert!(
        text.stdout.contains("drift: `f11-client` is missing"),
        "{}",
        text.stdout
    );
    p.cfdo(&["apply", "--yes"]).expect_code(0);
    assert_eq!(
        p.count("f11-client", "/increment"),
        2,
        "repaired, data kept"
    );

    // Someone changes the host's bindings by hand (keeping cfdo's tags).
    let host = p.script("f11-host").expect("host");
    let mut meta = metadata(
        json!([
            do_binding("COUNTER", "Counter", None),
            {"type": "plain_text", "name": "EXTRA", "text": "by hand"}
        ]),
        None,
    );
    meta["tags"] = host["tags"].clone();
    p.upload("f11-host", meta, &host_code("Counter", "COUNTER"));
    assert_eq!(p.binding_names("f11-host"), ["COUNTER", "EXTRA"]);

    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let host = plan.change("f11-host");
    assert_eq!(host["action"], "update");
    assert!(
        field_lines(&host).contains(&"binding EXTRA: text \"by hand\" -> (none)".to_string()),
        "{host}"
    );
    assert!(
        strings(&host, "drift")
            .iter()
            .any(|d| d.contains("settings of `f11-host` were changed outside cfdo")),
        "{host}"
    );
    assert!(host.get("migration").is_none(), "{host}");
    p.cfdo(&["apply", "--yes"]).expect_code(0);
    assert_eq!(p.binding_names("f11-host"), ["COUNTER"]);
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
    assert_eq!(p.count("f11-client", "/increment"), 3);
}

#[test]
fn f12_rate_limit_waits_and_carries_on() {
    let p = Project::new();
    let mut toml = String::from("[stack]\nname = \"f12\"\ncompatibility_date = \"2026-11-01\"\n");
    for w in ["a", "b", "c"] {
        p.write(&format!("{w}/index.js"), &plain_code(w));
        toml.push_str(&format!(
            "\n[workers.{w}]\nname = \"f12-{w}\"\nmain = \"{w}/index.js\"\n"
        ));
    }
    p.write("cfdo.toml", &toml);
    // At most 5 API requests per 2 seconds; the apply needs more.
    p.start_edge(&["--rate-limit", "5/2"]);

    let apply = p.cfdo(&["apply", "--yes"]);
    apply.expect_code(0);
    assert!(
        apply.err().contains("3 applied, 0 failed, 0 not applied"),
        "{}",
        apply.stderr
    );
    assert!(
        apply.err().contains("waiting for the rate limit"),
        "the summary says how long it waited: {}",
        apply.stderr
    );
    assert!(apply.err().contains("retried"), "{}", apply.stderr);
    // Nothing applied twice: one version per script.
    for w in ["a", "b", "c"] {
        let script = format!("f12-{w}");
        assert_eq!(p.version_count(&script), 1, "{script}");
        assert_eq!(p.call(&script, "/")["worker"], w);
    }
}

#[test]
fn f13_bad_token_is_one_error_before_any_change() {
    let p = Project::new();
    let mut toml = String::from("[stack]\nname = \"f13\"\ncompatibility_date = \"2026-11-01\"\n");
    for w in ["a", "b", "c"] {
        p.write(&format!("{w}/index.js"), &plain_code(w));
        toml.push_str(&format!(
            "\n[workers.{w}]\nname = \"f13-{w}\"\nmain = \"{w}/index.js\"\n"
        ));
    }
    p.write("cfdo.toml", &toml);
    p.start_edge(&[]);
    let api = p.api();

    for args in [&["plan"][..], &["apply", "--yes"][..]] {
        let out = p
            .command()
            .args(["--target", "cloudflare"])
            .args(args)
            .env("CLOUDFLARE_API_BASE_URL", &api.base)
            .env("CLOUDFLARE_API_TOKEN", "not-the-edge-token")
            .env("CLOUDFLARE_ACCOUNT_ID", &api.account)
            .write_stdin("")
            .output()
            .expect("run cfdo");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}{stderr}");
        assert!(stderr.to_lowercase().contains("token"), "{stderr}");
        assert_eq!(
            occurrences(&stderr, "Authentication error"),
            1,
            "exactly one error, not one per worker: {stderr}"
        );
        assert!(!stderr.contains("f13-"), "no per-worker error: {stderr}");
        assert!(
            !stderr.contains("not-the-edge-token"),
            "the token is never shown: {stderr}"
        );
        assert!(stdout.is_empty(), "no plan shown: {stdout}");
    }
    assert!(p.script_names().is_empty(), "nothing was changed");
}

#[test]
fn f14_destroy_refuses_while_an_outside_script_binds_the_stack() {
    let p = Project::new();
    host_and_client(&p, "f14");
    p.cfdo(&["apply", "--yes"]).expect_code(0);
    assert_eq!(p.count("f14-client", "/increment"), 1);

    // Another stack binds the first stack's namespace.
    p.write("outsider/index.js", &client_code("SHARED"));
    p.write(
        "outsider/cfdo.toml",
        r#"[stack]
name = "f14-outsider"
compatibility_date = "2026-11-01"

[workers.app]
name = "f14-outsider-app"
main = "index.js"

[workers.app.bindings]
SHARED = { durable_object = "shared" }

[durable_objects.shared]
class_name = "Counter"
script = "f14-host"
"#,
    );
    p.cfdo_with("outsider/cfdo.toml", &["apply", "--yes"])
        .expect_code(0);
    assert_eq!(p.count("f14-outsider-app", "/increment"), 2);

    let refused = p.cfdo(&["destroy", "--yes"]);
    refused.expect_code(1);
    assert!(
        refused.err().contains("refusing to destroy")
            && refused
                .err()
                .contains("`f14-outsider-app` binds Durable Objects of `f14-host`"),
        "{}",
        refused.stderr
    );
    assert!(refused.err().contains("--force"), "{}", refused.stderr);
    assert_eq!(
        p.script_names(),
        ["f14-client", "f14-host", "f14-outsider-app"]
    );
    assert_eq!(p.count("f14-client", "/increment"), 3);

    let forced = p.cfdo(&["destroy", "--yes", "--force"]);
    forced.expect_code(0);
    assert_eq!(p.script_names(), ["f14-outsider-app"]);
    assert!(p.namespace("f14-host", "Counter").is_none());
}
