//! The README's main scenario end to end on the local edge: the
//! shared-counter example applied, counted, redeployed, renamed and
//! destroyed, with the count checked through the deployed Workers.

mod engine_support;

use std::path::Path;

use engine_support::*;

/// Copies manifests/shared-counter into the project.
fn copy_shared_counter(p: &Project) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/shared-counter");
    for rel in ["cfdo.toml", "host/index.ts", "client/index.ts"] {
        let text = std::fs::read_to_string(src.join(rel))
            .unwrap_or_else(|e| panic!("read shared-counter/{rel}: {e}"));
        p.write(rel, &text);
    }
}

fn edit(p: &Project, rel: &str, from: &str, to: &str) {
    let path = p.path(rel);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{rel} has no {from:?}");
    std::fs::write(&path, text.replace(from, to)).expect("write");
}

#[test]
fn shared_counter_end_to_end() {
    let p = Project::new();
    copy_shared_counter(&p);

    // Apply on a fresh edge (started on demand).
    let apply = p.cfdo(&["apply", "--yes", "-f", "cfdo.toml"]);
    apply.expect_code(0);
    assert!(
        apply
            .stdout
            .contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{}",
        apply.stdout
    );
    let client_url = p.url("counter-client");
    assert!(
        apply
            .stdout
            .contains(&format!("url counter-client: {client_url}")),
        "the client's URL is printed: {}",
        apply.stdout
    );
    assert!(
        apply.stdout.contains("url counter-host: "),
        "{}",
        apply.stdout
    );

    // Three increments through the client; the host reads the same count.
    for expected in 1..=3 {
        let body = p.call("counter-client", "/increment");
        assert_eq!(body["count"], expected, "{body}");
        assert_eq!(body["note"], "counted by counter-client", "{body}");
    }
    assert_eq!(p.count("counter-host", "/get"), 3);

    // Nothing to do.
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);

    // Only the client's code changes: only the client is updated, the count stays.
    edit(
        &p,
        "client/index.ts",
        r#"client: "counter-client""#,
        r#"client: "counter-client v2""#,
    );
    let plan = p.cfdo(&["--json", "plan", "--detailed-exitcode"]);
    plan.expect_code(2);
    let client = plan.change("counter-client");
    assert_eq!(client["action"], "update");
    assert_eq!(field_names(&client), ["code"], "{client}");
    assert!(client.get("migration").is_none(), "{client}");
    assert_eq!(plan.change("counter-host")["action"], "no_op");
    let host_before = p.script("counter-host").expect("host");

    let apply = p.cfdo(&["--json", "apply", "--yes"]);
    apply.expect_code(0);
    let touched: Vec<String> = apply
        .events_of("apply_progress")
        .iter()
        .filter_map(|e| e["script"].as_str().map(str::to_string))
        .collect();
    assert!(
        !touched.is_empty() && touched.iter().all(|s| s == "counter-client"),
        "{touched:?}"
    );
    assert_eq!(p.script("counter-host").expect("host"), host_before);
    assert_eq!(p.version_count("counter-host"), 1);
    let body = p.call("counter-client", "/get");
    assert_eq!(
        body["client"], "counter-client v2",
        "the new code runs: {body}"
    );
    assert_eq!(body["count"], 3, "{body}");

    // Rename the class with renamed_from: the data stays.
    edit(&p, "host/index.ts", "SharedCounter", "RenamedCounter");
    edit(
        &p,
        "cfdo.toml",
        "class_name = \"SharedCounter\"",
        "class_name = \"RenamedCounter\"\nrenamed_from = \"SharedCounter\"",
    );
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let host = plan.change("counter-host");
    assert_eq!(host["action"], "update");
    assert_eq!(
        host["migration"],
        serde_json::json!({
            "old_tag": "v1",
            "new_tag": "v2",
            "steps": [{"renamed_classes": [{"from": "SharedCounter", "to": "RenamedCounter"}]}]
        }),
        "{host}"
    );
    assert!(strings(&host, "data_loss").is_empty(), "{host}");
    assert_eq!(plan.summary()["data_loss"], false);
    let namespace_id = p
        .namespace("counter-host", "SharedCounter")
        .expect("namespace")["id"]
        .clone();
    p.cfdo(&["apply", "--yes"]).expect_code(0);
    let renamed = p
        .namespace("counter-host", "RenamedCounter")
        .expect("renamed namespace");
    assert_eq!(renamed["id"], namespace_id, "same namespace, renamed");
    assert!(p.namespace("counter-host", "SharedCounter").is_none());
    assert_eq!(p.count("counter-host", "/get"), 3, "the count is kept");
    assert_eq!(p.count("counter-client", "/increment"), 4);
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);

    // Destroy: both gone, the edge lists nothing of the stack.
    let destroy = p.cfdo(&["destroy", "--yes"]);
    destroy.expect_code(0);
    assert!(
        destroy
            .stdout
            .contains("Plan: 0 to add, 0 to change, 2 to destroy."),
        "{}",
        destroy.stdout
    );
    assert!(p.script_names().is_empty(), "{:?}", p.script_names());
    assert!(p.namespaces().is_empty(), "{:?}", p.namespaces());
    let status = p.status();
    assert_eq!(status["workers"], serde_json::json!({}), "{status}");
    // And a plan now would create both again.
    let plan = p.cfdo(&["plan", "--detailed-exitcode"]);
    plan.expect_code(2);
    assert!(
        plan.stdout
            .contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{}",
        plan.stdout
    );
}
