//! Saved plans (`plan --out FILE`, `apply FILE`) and confirmation without a
//! terminal, against a real local edge.

mod engine_support;

use engine_support::*;
use serde_json::json;

/// Host `h` (class Counter) and client `c`; the client carries a text binding.
fn stack(p: &Project, note: &str) {
    p.write("h/index.js", &host_code("Counter", "COUNTER"));
    p.write("c/index.js", &client_code("COUNTER"));
    p.write(
        "cfdo.toml",
        &format!(
            r#"[stack]
name = "wf"
compatibility_date = "2026-11-01"

[workers.h]
name = "wf-host"
main = "h/index.js"

[workers.h.bindings]
COUNTER = {{ durable_object = "counter" }}

[workers.c]
name = "wf-client"
main = "c/index.js"

[workers.c.bindings]
COUNTER = {{ durable_object = "counter" }}
NOTE = {{ text = "{note}" }}

[durable_objects.counter]
class_name = "Counter"
worker = "h"
"#
        ),
    );
}

#[test]
fn saved_plan_is_applied_exactly() {
    let p = Project::new();
    stack(&p, "first");
    let plan = p.cfdo(&["plan", "--out", "plan.json"]);
    plan.expect_code(0);
    assert!(
        plan.stdout
            .contains("Saved the plan to plan.json; apply it with `cfdo apply plan.json`."),
        "{}",
        plan.stdout
    );
    assert!(p.script_names().is_empty(), "plan changes nothing");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("plan.json")).expect("plan file"))
            .expect("plan is JSON");
    assert_eq!(saved["stack"], "wf");
    assert_eq!(
        saved["fingerprints"],
        json!({"wf-client": null, "wf-host": null})
    );

    let apply = p.cfdo(&["--json", "apply", "plan.json", "--yes"]);
    apply.expect_code(0);
    // The plan shown is the saved one, and that is what was applied.
    let shown: Vec<_> = apply
        .events_of("plan_change")
        .iter()
        .map(|c| (c["script"].clone(), c["action"].clone()))
        .collect();
    assert_eq!(
        shown,
        [
            (json!("wf-host"), json!("create")),
            (json!("wf-client"), json!("create"))
        ]
    );
    assert_eq!(
        apply.events_of("apply_summary")[0]["applied"],
        json!(["wf-host", "wf-client"])
    );
    assert_eq!(p.script("wf-host").expect("host")["migration_tag"], "v1");
    assert_eq!(p.count("wf-client", "/increment"), 1);

    // Applied once; applying the same file again is refused (the account moved on).
    let again = p.cfdo(&["apply", "plan.json", "--yes"]);
    again.expect_code(1);
    assert!(
        again
            .err()
            .contains("changed in the account since the plan"),
        "{}",
        again.stderr
    );
    assert_eq!(p.version_count("wf-host"), 1);
    assert_eq!(p.version_count("wf-client"), 1);
}

#[test]
fn saved_plan_is_refused_when_the_account_changed() {
    let p = Project::new();
    stack(&p, "first");
    p.cfdo(&["apply", "--yes"]).expect_code(0);
    assert_eq!(p.count("wf-client", "/increment"), 1);

    // A plan that updates only the client's code.
    p.write(
        "c/index.js",
        &client_code("COUNTER").replace("via: \"client\"", "via: \"client v2\""),
    );
    let plan = p.cfdo(&["--json", "plan", "--out", "plan.json"]);
    plan.expect_code(0);
    assert_eq!(plan.change("wf-client")["action"], "update");
    assert_eq!(plan.change("wf-host")["action"], "no_op");

    // Meanwhile someone redeploys the host by hand (keeping cfdo's tags).
    let host = p.script("wf-host").expect("host");
    let mut meta = metadata(json!([do_binding("COUNTER", "Counter", None)]), None);
    meta["tags"] = host["tags"].clone();
    p.upload("wf-host", meta, &host_code("Counter", "COUNTER"));
    let scripts = p.scripts();

    let apply = p.cfdo(&["apply", "plan.json", "--yes"]);
    apply.expect_code(1);
    let err = apply.err();
    assert!(
        err.contains("script `wf-host` changed in the account since the plan"),
        "{err}"
    );
    assert!(err.contains("cfdo plan"), "says what to do: {err}");
    assert!(err.contains("not applied: wf-client"), "{err}");
    assert_eq!(p.scripts(), scripts, "nothing was applied");
    let json = p.cfdo(&["--json", "apply", "plan.json", "--yes"]);
    json.expect_code(1);
    let summary = &json.events_of("apply_summary")[0];
    assert_eq!(summary["applied"], json!([]), "{summary}");
    assert_eq!(summary["not_applied"], json!(["wf-client"]), "{summary}");
    assert!(
        summary["conflict"]
            .as_str()
            .unwrap_or("")
            .starts_with("script `wf-host` changed in the account since the plan"),
        "{summary}"
    );
    assert_eq!(p.scripts(), scripts, "nothing was applied");
    assert_eq!(p.call("wf-client", "/get")["via"], "client");
    assert_eq!(p.count("wf-client", "/get"), 1);
}

#[test]
fn saved_plan_is_refused_when_the_manifest_changed() {
    let p = Project::new();
    stack(&p, "first");
    p.cfdo(&["apply", "--yes"]).expect_code(0);
    stack(&p, "second");
    let plan = p.cfdo(&["--json", "plan", "--out", "plan.json"]);
    plan.expect_code(0);
    assert!(
        field_lines(&plan.change("wf-client"))
            .contains(&"binding NOTE: text \"first\" -> text \"second\"".to_string())
    );
    // The manifest changes again after the plan: the saved plan no longer says what would be sent.
    stack(&p, "third");
    let scripts = p.scripts();
    let apply = p.cfdo(&["apply", "plan.json", "--yes"]);
    apply.expect_code(1);
    let err = apply.err();
    assert!(err.contains("the saved plan no longer applies"), "{err}");
    assert!(err.contains("`c`"), "names the worker: {err}");
    assert_eq!(p.scripts(), scripts, "nothing was applied");
    let settings = p.settings("wf-client");
    let note = settings["bindings"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["name"] == "NOTE"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(note["text"], "first", "{settings}");
}

#[test]
fn apply_without_terminal_or_yes_refuses() {
    let p = Project::new();
    stack(&p, "first");
    let apply = p.cfdo(&["apply"]);
    apply.expect_code(1);
    let err = apply.err();
    assert!(
        err.contains("refusing to change the account without confirmation: no terminal to ask on"),
        "{err}"
    );
    assert!(err.contains("pass --yes to apply"), "{err}");
    // The plan was shown, nothing was applied.
    assert!(
        apply
            .stdout
            .contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{}",
        apply.stdout
    );
    assert!(p.script_names().is_empty());

    p.cfdo(&["apply", "--yes"]).expect_code(0);
    let destroy = p.cfdo(&["destroy"]);
    destroy.expect_code(1);
    assert!(
        destroy.err().contains("pass --yes to destroy"),
        "{}",
        destroy.stderr
    );
    assert_eq!(p.script_names(), ["wf-client", "wf-host"]);
}

#[test]
fn saved_plan_for_another_environment_names_both() {
    let p = Project::new();
    stack(&p, "first");
    let text = std::fs::read_to_string(p.path("cfdo.toml")).expect("manifest");
    p.write("cfdo.toml", &format!("{text}\n[env.staging]\n"));
    p.cfdo(&["--env", "staging", "plan", "--out", "plan.json"])
        .expect_code(0);
    let apply = p.cfdo(&["apply", "plan.json", "--yes"]);
    apply.expect_code(1);
    let err = apply.err();
    assert!(
        err.contains(
            "the saved plan is for environment staging (--env staging) and this apply is for no environment (no --env)"
        ),
        "{err}"
    );
    assert!(p.script_names().is_empty(), "nothing was applied");
}

#[test]
fn quiet_plan_and_apply_print_only_their_result() {
    let p = Project::new();
    stack(&p, "first");
    let plan = p.cfdo(&["-q", "plan"]);
    plan.expect_code(0);
    assert_eq!(plan.stdout, "Plan: 2 to add, 0 to change, 0 to destroy.\n");
    assert_eq!(plan.stderr, "");

    let apply = p.cfdo(&["-q", "apply", "--yes"]);
    apply.expect_code(0);
    assert!(
        apply
            .stdout
            .starts_with("Plan: 2 to add, 0 to change, 0 to destroy.\n"),
        "{}",
        apply.stdout
    );
    assert!(
        !apply.stdout.contains("will be created"),
        "{}",
        apply.stdout
    );
    assert!(apply.stdout.contains("url wf-client: http://127.0.0.1:"));
    assert!(
        apply
            .stderr
            .starts_with("2 applied, 0 failed, 0 not applied in "),
        "{}",
        apply.stderr
    );
    assert_eq!(apply.stderr.lines().count(), 1, "{}", apply.stderr);

    let again = p.cfdo(&["-q", "plan"]);
    again.expect_code(0);
    assert_eq!(
        again.stdout,
        "No changes. The account matches the manifest.\n"
    );
}

#[test]
fn the_manifests_account_wins_over_cloudflare_account_id() {
    let p = Project::new();
    stack(&p, "first");
    p.start_edge(&[]);
    let api = p.api();
    let text = std::fs::read_to_string(p.path("cfdo.toml")).expect("manifest");
    let text = text.replacen(
        "[stack]\n",
        &format!("[stack]\naccount_id = \"{}\"\n", api.account),
        1,
    );
    p.write(
        "cfdo.toml",
        &format!("{text}\n[env.elsewhere]\naccount_id = \"0123456789abcdef0123456789abcdef\"\n"),
    );
    let run = |env: &[&str]| {
        let out = p
            .command()
            .args(["--target", "cloudflare"])
            .args(env)
            .args(["plan", "--detailed-exitcode"])
            .env("CLOUDFLARE_API_BASE_URL", &api.base)
            .env("CLOUDFLARE_API_TOKEN", &api.token)
            .env("CLOUDFLARE_ACCOUNT_ID", "ffffffffffffffffffffffffffffffff")
            .write_stdin("")
            .output()
            .expect("run cfdo");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    // The stack's account_id is the edge's: the plan reads it, not the
    // variable's account.
    let (code, output) = run(&[]);
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("Plan: 2 to add"), "{output}");
    // An environment's account_id overrides the stack's, and the variable's
    // account is not tried instead.
    let (code, output) = run(&["--env", "elsewhere"]);
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("0123456789abcdef0123456789abcdef"),
        "the error names the environment's account: {output}"
    );
    assert!(
        !output.contains("ffffffffffffffffffffffffffffffff"),
        "{output}"
    );
}

#[test]
fn an_edited_saved_plan_is_refused_and_its_data_loss_is_not_skipped() {
    let p = Project::new();
    stack(&p, "first");
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("wf-client", "/increment"), 1);

    // The class leaves the manifest: a plan with data loss, saved.
    p.write("h/index.js", &plain_code("h"));
    p.write("c/index.js", &plain_code("c"));
    let text = std::fs::read_to_string(p.path("cfdo.toml")).expect("manifest");
    let without_class = text
        .replace("COUNTER = { durable_object = \"counter\" }\n", "")
        .replace(
            "[durable_objects.counter]\nclass_name = \"Counter\"\nworker = \"h\"\n",
            "",
        );
    p.write("cfdo.toml", &without_class);
    p.cfdo(&["plan", "--out", "plan.json"]).expect_code(0);
    let mut saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("plan.json")).expect("plan file"))
            .expect("plan is JSON");
    let mut edited = 0;
    for change in saved["changes"].as_array_mut().expect("changes") {
        if change
            .as_object_mut()
            .expect("change")
            .remove("data_loss")
            .is_some()
        {
            edited += 1;
        }
    }
    assert_eq!(
        edited, 1,
        "the host's change carried the data loss: {saved}"
    );
    p.write("plan.json", &saved.to_string());

    let refused = p.cfdo(&["apply", "plan.json", "--yes"]);
    refused.expect_code(1);
    assert!(
        refused.err().contains(
            "the saved plan no longer applies: its change to `wf-host` is not what cfdo plans"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(
        p.count("wf-host", "/get"),
        1,
        "the class and its data are kept"
    );
    assert_eq!(p.version_count("wf-host"), 1);
}

#[test]
fn a_saved_plan_of_another_format_is_named_as_such() {
    let p = Project::new();
    stack(&p, "first");
    p.write(
        "future.json",
        r#"{"format_version": 2, "something": "else"}"#,
    );
    let refused = p.cfdo(&["apply", "future.json", "--yes"]);
    refused.expect_code(1);
    assert!(
        refused
            .err()
            .contains("future.json has plan format 2, this cfdo reads format 1"),
        "{}",
        refused.stderr
    );
    assert!(p.script_names().is_empty());
}

#[test]
fn a_saved_plan_missing_a_change_or_marked_destroy_is_refused_naming_what() {
    let p = Project::new();
    stack(&p, "first");
    p.cfdo(&["plan", "--out", "plan.json"]).expect_code(0);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("plan.json")).expect("plan file"))
            .expect("plan is JSON");

    let mut dropped = saved.clone();
    dropped["changes"]
        .as_array_mut()
        .expect("changes")
        .retain(|c| c["script"] != "wf-client");
    p.write("dropped.json", &dropped.to_string());
    let refused = p.cfdo(&["apply", "dropped.json", "--yes"]);
    refused.expect_code(1);
    assert!(
        refused
            .err()
            .contains("its lack of a change to `wf-client`"),
        "{}",
        refused.stderr
    );

    let mut destroy = saved;
    destroy["destroy"] = json!(true);
    p.write("destroy.json", &destroy.to_string());
    let refused = p.cfdo(&["apply", "destroy.json", "--yes"]);
    refused.expect_code(1);
    assert!(
        refused.err().contains("its kind (destroy or apply)"),
        "{}",
        refused.stderr
    );
    assert!(p.script_names().is_empty());
}
