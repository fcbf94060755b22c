//! Engine behaviour beyond the failure catalogue, against a real local edge:
//! workers leaving the manifest, a hosting script renamed, protected
//! namespaces, secrets, and an apply that fails half-way and converges on
//! the next run.

mod engine_support;

use engine_support::*;
use serde_json::json;

/// Host `h` (class Counter, script `{stack}-host` unless `host_name`), client `c`.
fn stack(p: &Project, stack: &str, host_name: Option<&str>, client: bool, extra_ns: &str) {
    p.write("h/index.js", &host_code("Counter", "COUNTER"));
    p.write("c/index.js", &client_code("COUNTER"));
    let host_name = host_name
        .map(str::to_string)
        .unwrap_or(format!("{stack}-host"));
    let mut toml = format!(
        r#"[stack]
name = "{stack}"
compatibility_date = "2026-11-01"

[workers.h]
name = "{host_name}"
main = "h/index.js"

[workers.h.bindings]
COUNTER = {{ durable_object = "counter" }}
"#
    );
    if client {
        toml.push_str(&format!(
            r#"
[workers.c]
name = "{stack}-client"
main = "c/index.js"

[workers.c.bindings]
COUNTER = {{ durable_object = "counter" }}
"#
        ));
    }
    toml.push_str(&format!(
        "\n[durable_objects.counter]\nclass_name = \"Counter\"\nworker = \"h\"\n{extra_ns}"
    ));
    p.write("cfdo.toml", &toml);
}

#[test]
fn worker_removed_from_the_manifest_is_deleted() {
    let p = Project::new();
    stack(&p, "gone", None, true, "");
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("gone-client", "/increment"), 1);

    stack(&p, "gone", None, false, "");
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let client = plan.change("gone-client");
    assert_eq!(client["action"], "delete");
    assert!(client["worker"].is_null(), "{client}");
    assert!(strings(&client, "data_loss").is_empty(), "{client}");
    assert_eq!(plan.change("gone-host")["action"], "no_op");
    let text = p.cfdo(&["plan"]);
    assert!(
        text.stdout.contains("- gone-client will be destroyed"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("Plan: 0 to add, 0 to change, 1 to destroy."),
        "{}",
        text.stdout
    );

    // Deleting a client destroys no data: no opt-in needed.
    p.apply_ok("cfdo.toml");
    assert_eq!(p.script_names(), ["gone-host"]);
    assert_eq!(p.count("gone-host", "/increment"), 2);
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn renaming_a_hosting_script_is_data_loss() {
    let p = Project::new();
    stack(&p, "mv", None, true, "");
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("mv-client", "/increment"), 1);

    stack(&p, "mv", Some("mv-host-two"), true, "");
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let new_host = plan.change("mv-host-two");
    assert_eq!(new_host["action"], "create");
    assert!(
        strings(&new_host, "drift").is_empty(),
        "a new script is no drift: {new_host}"
    );
    assert_eq!(
        new_host["migration"]["steps"],
        json!([{"new_sqlite_classes": ["Counter"]}])
    );
    let old_host = plan.change("mv-host");
    assert_eq!(old_host["action"], "delete");
    let loss = strings(&old_host, "data_loss");
    assert!(
        loss.iter().any(|l| l.contains("`Counter` of `mv-host`")),
        "{old_host}"
    );
    // The old host goes after the client moved to the new one.
    let client = plan.change("mv-client");
    assert!(
        field_lines(&client).contains(
            &"binding COUNTER: durable object Counter of mv-host -> durable object Counter of mv-host-two"
                .to_string()
        ),
        "{client}"
    );
    assert!(
        (client["phase"].as_u64(), client["level"].as_u64())
            < (old_host["phase"].as_u64(), old_host["level"].as_u64()),
        "{client} / {old_host}"
    );

    let refused = p.cfdo(&["apply", "--yes"]);
    refused.expect_code(1);
    assert!(
        refused.err().contains("--allow-data-loss"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        p.script_names(),
        ["mv-client", "mv-host"],
        "nothing changed"
    );

    p.cfdo(&["apply", "--yes", "--allow-data-loss"])
        .expect_code(0);
    assert_eq!(p.script_names(), ["mv-client", "mv-host-two"]);
    assert!(p.namespace("mv-host", "Counter").is_none());
    assert_eq!(p.count("mv-client", "/increment"), 1, "a new, empty class");
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn protected_namespace_blocks_destroy_and_deleting_applies() {
    let p = Project::new();
    stack(&p, "prot", None, true, "protect = true\n");
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("prot-client", "/increment"), 1);

    let destroy = p.cfdo(&["destroy", "--yes", "--force"]);
    destroy.expect_code(1);
    assert!(
        destroy.err().contains(
            "this plan would delete protected namespace `counter` (class `Counter` of `prot-host`)"
        ),
        "{}",
        destroy.stderr
    );
    assert!(
        destroy.err().contains("protect = true"),
        "{}",
        destroy.stderr
    );
    assert_eq!(p.script_names(), ["prot-client", "prot-host"]);

    // Renaming the hosting script would delete the namespace too.
    stack(&p, "prot", Some("prot-host-two"), true, "protect = true\n");
    let apply = p.cfdo(&["apply", "--yes", "--allow-data-loss"]);
    apply.expect_code(1);
    assert!(
        apply.err().contains("protected namespace `counter`"),
        "{}",
        apply.stderr
    );
    assert_eq!(p.script_names(), ["prot-client", "prot-host"]);
    assert_eq!(p.count("prot-client", "/increment"), 2);

    // Once the manifest no longer protects it, destroy goes through.
    stack(&p, "prot", None, true, "");
    p.cfdo(&["destroy", "--yes"]).expect_code(0);
    assert!(p.script_names().is_empty());
}

#[test]
fn secrets_are_sent_but_never_shown() {
    let p = Project::new();
    p.write(
        "src/index.js",
        "export default { async fetch(request, env) { return Response.json({ length: env.API_KEY.length, starts: env.API_KEY.slice(0, 3) }); } };\n",
    );
    p.write(
        "cfdo.toml",
        r#"[stack]
name = "sec"
compatibility_date = "2026-11-01"

[workers.app]
name = "sec-app"
main = "src/index.js"

[workers.app.bindings]
API_KEY = { secret = "SEC_TEST_API_KEY" }
"#,
    );
    let secret = "s3cr3t-value-0123456789";
    let run = |args: &[&str], value: Option<&str>| -> Run {
        let mut cmd = p.command();
        cmd.args(args).write_stdin("");
        if let Some(v) = value {
            cmd.env("SEC_TEST_API_KEY", v);
        } else {
            cmd.env_remove("SEC_TEST_API_KEY");
        }
        let out = cmd.output().expect("run cfdo");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !run.stdout.contains("s3cr3t") && !run.stderr.contains("s3cr3t"),
            "the secret was shown: {run:?}"
        );
        run
    };

    // Unset: a plan to look at goes ahead and says what it cannot know; a
    // plan to save and apply, and apply itself, need the value.
    let look = run(&["plan", "--detailed-exitcode"], None);
    look.expect_code(2);
    assert!(
        flat(&look.stdout).contains(
            "secret `API_KEY`: SEC_TEST_API_KEY is not set here, so whether its value changed is unknown; apply needs it"
        ),
        "{}",
        look.stdout
    );
    for args in [&["plan", "--out", "plan.json"][..], &["apply", "--yes"][..]] {
        let missing = run(args, None);
        missing.expect_code(1);
        assert!(
            missing
                .err()
                .contains("reads environment variable `SEC_TEST_API_KEY`, which is not set"),
            "{args:?}: {}",
            missing.stderr
        );
    }
    assert!(p.script_names().is_empty());

    let plan = run(&["plan", "--out", "plan.json"], Some(secret));
    plan.expect_code(0);
    assert!(
        plan.stdout
            .contains("binding API_KEY    = secret (sensitive)"),
        "{}",
        plan.stdout
    );
    let file = std::fs::read_to_string(p.path("plan.json")).expect("plan file");
    assert!(
        !file.contains("s3cr3t"),
        "the saved plan holds the secret: {file}"
    );
    // The saved plan applied without the value: the variable is named, no
    // talk of a changed secret.
    let unset = run(&["apply", "plan.json", "--yes"], None);
    unset.expect_code(1);
    assert!(
        unset
            .err()
            .contains("reads environment variable `SEC_TEST_API_KEY`, which is not set"),
        "{}",
        unset.stderr
    );
    assert!(
        !unset.err().contains("changed since the plan"),
        "{}",
        unset.stderr
    );
    run(&["--json", "apply", "--yes"], Some(secret)).expect_code(0);
    let body = p.call("sec-app", "/");
    assert_eq!(body, json!({"length": secret.len(), "starts": "s3c"}));
    let settings = p.settings("sec-app").to_string();
    assert!(
        !settings.contains("s3cr3t"),
        "settings show the secret: {settings}"
    );

    run(&["plan", "--detailed-exitcode"], Some(secret)).expect_code(0);
    // Without the value nothing can be said to change.
    let unknown = run(&["plan", "--detailed-exitcode"], None);
    unknown.expect_code(0);
    assert!(
        flat(&unknown.stdout)
            .contains("note: sec-app: secret `API_KEY`: SEC_TEST_API_KEY is not set here"),
        "{}",
        unknown.stdout
    );
    let unknown = run(&["--json", "plan", "--detailed-exitcode"], None);
    unknown.expect_code(0);
    assert!(
        strings(&unknown.change("sec-app"), "notes")
            .iter()
            .any(|n| n.contains("SEC_TEST_API_KEY is not set here")),
        "{}",
        unknown.stdout
    );
    let changed = run(
        &["--json", "plan", "--detailed-exitcode"],
        Some("s3cr3t-other"),
    );
    changed.expect_code(2);
    assert_eq!(
        field_lines(&changed.change("sec-app")),
        ["secrets: (sensitive) -> (sensitive, changed)"]
    );
    run(&["apply", "--yes", "-v"], Some("s3cr3t-other")).expect_code(0);
    assert_eq!(p.call("sec-app", "/")["length"], "s3cr3t-other".len());
    let logs = p.cfdo(&["edge", "logs"]);
    logs.expect_code(0);
    assert!(!logs.stdout.is_empty(), "the edge logged its requests");
    assert!(
        !logs.stdout.contains("s3cr3t") && !logs.stderr.contains("s3cr3t"),
        "the edge's log shows the secret"
    );
}

#[test]
fn failed_level_stops_the_apply_and_a_rerun_converges() {
    let p = Project::new();
    p.write("a/index.js", &plain_code("a"));
    // Throws while starting: the edge refuses the upload as Cloudflare does (10021).
    p.write(
        "b/index.js",
        "throw new Error(\"broken at startup\");\nexport default { async fetch() { return new Response(\"b\"); } };\n",
    );
    p.write("c/index.js", &plain_code("c"));
    p.write(
        "cfdo.toml",
        r#"[stack]
name = "conv"
compatibility_date = "2026-11-01"

[workers.a]
name = "conv-a"
main = "a/index.js"

[workers.b]
name = "conv-b"
main = "b/index.js"

[workers.b.bindings]
A = { service = "a" }

[workers.c]
name = "conv-c"
main = "c/index.js"

[workers.c.bindings]
B = { service = "b" }
"#,
    );
    let apply = p.cfdo(&["--json", "apply", "--yes"]);
    apply.expect_code(1);
    let summary = &apply.events_of("apply_summary")[0];
    assert_eq!(summary["applied"], json!(["conv-a"]), "{summary}");
    assert_eq!(summary["failed"][0]["script"], "conv-b", "{summary}");
    assert!(
        summary["failed"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("broken at startup"),
        "{summary}"
    );
    assert_eq!(summary["not_applied"], json!(["conv-c"]), "{summary}");
    let diagnostic = &apply.events_of("diagnostic")[0];
    assert!(
        diagnostic["diagnostic"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("apply stopped after a failure: conv-b"),
        "{diagnostic}"
    );
    assert_eq!(p.script_names(), ["conv-a"]);

    let text = p.cfdo(&["apply", "--yes"]);
    text.expect_code(1);
    assert!(
        text.err().contains("not applied: conv-c"),
        "{}",
        text.stderr
    );

    // Fixed: the next apply does the rest, leaving what already holds.
    p.write("b/index.js", &plain_code("b"));
    let plan = p.cfdo(&["--json", "plan"]);
    assert_eq!(plan.change("conv-a")["action"], "no_op");
    assert_eq!(plan.change("conv-b")["action"], "create");
    assert!(
        strings(&plan.change("conv-c"), "drift")
            .iter()
            .any(|d| d.contains("an earlier apply did not finish")),
        "{}",
        plan.stdout
    );
    assert_eq!(plan.change("conv-c")["action"], "create");
    p.apply_ok("cfdo.toml");
    assert_eq!(p.script_names(), ["conv-a", "conv-b", "conv-c"]);
    assert_eq!(p.version_count("conv-a"), 1);
    assert_eq!(p.call("conv-c", "/")["bindings"], json!(["B"]));
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_worker_added_to_a_deployed_stack_is_no_drift() {
    let p = Project::new();
    stack(&p, "grow", None, false, "");
    p.apply_ok("cfdo.toml");
    stack(&p, "grow", None, true, "");
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let client = plan.change("grow-client");
    assert_eq!(client["action"], "create");
    assert!(strings(&client, "drift").is_empty(), "{client}");
    assert_eq!(plan.change("grow-host")["action"], "no_op");
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("grow-client", "/increment"), 1);
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn workers_dev_change_is_shown_and_applied() {
    let p = Project::new();
    p.write("src/index.js", &plain_code("dev"));
    let manifest = |enabled: bool| {
        format!(
            "[stack]\nname = \"dev\"\ncompatibility_date = \"2026-11-01\"\n\n[workers.app]\nname = \"dev-app\"\nmain = \"src/index.js\"\nworkers_dev = {enabled}\n"
        )
    };
    p.write("cfdo.toml", &manifest(true));
    p.apply_ok("cfdo.toml");
    let (status, body) = p.get_status("/workers/scripts/dev-app/subdomain");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["enabled"], true, "{body}");

    p.write("cfdo.toml", &manifest(false));
    let plan = p.cfdo(&["--json", "plan", "--detailed-exitcode"]);
    plan.expect_code(2);
    let change = plan.change("dev-app");
    assert_eq!(change["action"], "update");
    assert_eq!(field_lines(&change), ["workers_dev: true -> false"]);
    let text = p.cfdo(&["plan"]);
    assert!(
        text.stdout.contains("~ workers_dev = true -> false"),
        "the plan says what changes: {}",
        text.stdout
    );
    p.apply_ok("cfdo.toml");
    let (_, body) = p.get_status("/workers/scripts/dev-app/subdomain");
    assert_eq!(body["result"]["enabled"], false, "{body}");
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn destroying_a_stack_with_nothing_deployed_changes_nothing() {
    let p = Project::new();
    stack(&p, "empty", None, true, "");
    let destroy = p.cfdo(&["destroy", "--yes"]);
    destroy.expect_code(0);
    assert!(
        destroy
            .stdout
            .contains("Nothing to destroy: the account holds no script of stack empty."),
        "{}",
        destroy.stdout
    );
    assert!(p.script_names().is_empty());
    // Another stack's scripts are never touched by this stack's destroy.
    p.upload("empty-host", metadata(json!([]), None), &plain_code("x"));
    let json = p.cfdo(&["--json", "destroy", "--yes"]);
    json.expect_code(0);
    assert!(json.events_of("plan_change").is_empty(), "{}", json.stdout);
    assert_eq!(json.summary()["changes_present"], false);
    assert_eq!(p.script_names(), ["empty-host"]);
}

#[test]
fn a_script_of_another_stack_is_adopted_only_with_adopt() {
    let p = Project::new();
    stack(&p, "first", Some("taken-host"), false, "");
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("taken-host", "/increment"), 1);

    p.write("second/h/index.js", &host_code("Counter", "COUNTER"));
    p.write(
        "second/cfdo.toml",
        r#"[stack]
name = "second"
compatibility_date = "2026-11-01"

[workers.h]
name = "taken-host"
main = "h/index.js"

[workers.h.bindings]
COUNTER = { durable_object = "counter" }

[durable_objects.counter]
class_name = "Counter"
worker = "h"
"#,
    );
    let plan = p.cfdo_with("second/cfdo.toml", &["--json", "plan"]);
    plan.expect_code(0);
    let change = plan.change("taken-host");
    assert_eq!(change["action"], "adopt");
    assert!(
        strings(&change, "notes")
            .iter()
            .any(|n| n.contains("`taken-host` is owned by stack `first`")),
        "{change}"
    );
    let refused = p.cfdo_with("second/cfdo.toml", &["apply", "--yes"]);
    refused.expect_code(1);
    assert!(
        refused
            .err()
            .contains("not deployed by stack second: taken-host"),
        "{}",
        refused.stderr
    );
    let tags = strings(&p.script("taken-host").expect("script"), "tags");
    assert!(tags.contains(&"cfdo:stack=first".to_string()), "{tags:?}");

    p.cfdo_with("second/cfdo.toml", &["apply", "--yes", "--adopt"])
        .expect_code(0);
    let tags = strings(&p.script("taken-host").expect("script"), "tags");
    assert!(tags.contains(&"cfdo:stack=second".to_string()), "{tags:?}");
    assert_eq!(p.count("taken-host", "/increment"), 2, "data kept");
    // The first stack no longer owns it: its destroy leaves it alone.
    p.cfdo(&["destroy", "--yes"]).expect_code(0);
    assert_eq!(p.script_names(), ["taken-host"]);
}

#[test]
fn environments_of_one_stack_never_touch_each_other() {
    let p = Project::new();
    stack(&p, "envs", None, true, "");
    let path = p.path("cfdo.toml");
    let text = std::fs::read_to_string(&path).expect("manifest");
    p.write("cfdo.toml", &format!("{text}\n[env.staging]\n"));

    p.cfdo(&["apply", "--yes", "--env", "staging"])
        .expect_code(0);
    assert_eq!(
        p.script_names(),
        ["envs-client-staging", "envs-host-staging"]
    );
    assert_eq!(p.count("envs-client-staging", "/increment"), 1);

    // The default environment plans only its own scripts.
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let actions: Vec<(String, String)> = plan
        .events_of("plan_change")
        .iter()
        .map(|c| {
            (
                c["script"].as_str().unwrap_or("").to_string(),
                c["action"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("envs-host".to_string(), "create".to_string()),
            ("envs-client".to_string(), "create".to_string())
        ]
    );
    assert_eq!(plan.summary()["data_loss"], false);
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("envs-client", "/increment"), 1);

    // Each environment is unchanged from its own point of view.
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
    p.cfdo(&["plan", "--detailed-exitcode", "--env", "staging"])
        .expect_code(0);

    // Destroying the default environment leaves staging alone.
    p.cfdo(&["destroy", "--yes"]).expect_code(0);
    assert_eq!(
        p.script_names(),
        ["envs-client-staging", "envs-host-staging"]
    );
    assert_eq!(p.count("envs-client-staging", "/increment"), 2);
    p.cfdo(&["destroy", "--yes", "--env", "staging"])
        .expect_code(0);
    assert!(p.script_names().is_empty());
}

#[test]
fn a_class_transferred_out_of_a_removed_worker_is_no_data_loss() {
    let p = Project::new();
    let manifest = |host: &str, transfer: &str| {
        format!(
            r#"[stack]
name = "tr"
compatibility_date = "2026-11-01"

[workers.{host}]
name = "tr-{host}"
main = "{host}/index.js"

[workers.{host}.bindings]
COUNTER = {{ durable_object = "counter" }}

[durable_objects.counter]
class_name = "Counter"
worker = "{host}"
{transfer}"#
        )
    };
    p.write("w1/index.js", &host_code("Counter", "COUNTER"));
    p.write("w2/index.js", &host_code("Counter", "COUNTER"));
    p.write("cfdo.toml", &manifest("w1", ""));
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("tr-w1", "/increment"), 1);
    let namespace_id = p.namespace("tr-w1", "Counter").expect("namespace")["id"].clone();

    // w1 leaves the manifest; its class moves to w2 first.
    p.write(
        "cfdo.toml",
        &manifest("w2", "transferred_from = \"tr-w1\"\n"),
    );
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let w2 = plan.change("tr-w2");
    assert_eq!(
        w2["migration"]["steps"],
        json!([{"transferred_classes": [{"from": "Counter", "from_script": "tr-w1", "to": "Counter"}]}])
    );
    let w1 = plan.change("tr-w1");
    assert_eq!(w1["action"], "delete");
    assert!(strings(&w1, "data_loss").is_empty(), "the data moves: {w1}");
    assert!(
        (w2["phase"].as_u64(), w2["level"].as_u64()) < (w1["phase"].as_u64(), w1["level"].as_u64()),
        "the transfer runs before the delete: {w2} / {w1}"
    );
    assert_eq!(plan.summary()["data_loss"], false);

    p.apply_ok("cfdo.toml");
    assert_eq!(p.script_names(), ["tr-w2"]);
    let moved = p.namespace("tr-w2", "Counter").expect("moved namespace");
    assert_eq!(moved["id"], namespace_id);
    assert_eq!(p.count("tr-w2", "/increment"), 2, "the data moved along");
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn deleting_a_class_bound_from_another_stack_is_refused_before_any_change() {
    let p = Project::new();
    stack(&p, "ob", None, true, "");
    p.apply_ok("cfdo.toml");
    p.write("other/index.js", &client_code("COUNTER"));
    p.write(
        "other/cfdo.toml",
        r#"[stack]
name = "ob-other"
compatibility_date = "2026-11-01"

[workers.o]
name = "ob-other-o"
main = "index.js"

[workers.o.bindings]
COUNTER = { durable_object = "c" }

[durable_objects.c]
class_name = "Counter"
script = "ob-host"
"#,
    );
    p.apply_ok("other/cfdo.toml");
    assert_eq!(p.count("ob-other-o", "/increment"), 1);

    // The stack drops the class (and its client's binding) with the opt-in.
    p.write(
        "cfdo.toml",
        r#"[stack]
name = "ob"
compatibility_date = "2026-11-01"

[workers.h]
name = "ob-host"
main = "h/index.js"

[workers.c]
name = "ob-client"
main = "c/index.js"
"#,
    );
    let scripts = p.scripts();
    let apply = p.cfdo(&["apply", "--yes", "--allow-data-loss"]);
    apply.expect_code(1);
    assert!(
        apply.err().contains(
            "refusing to apply: scripts outside the stack still depend on what this plan deletes: `ob-other-o` binds Durable Objects of `ob-host`"
        ),
        "{}",
        apply.stderr
    );
    assert_eq!(
        p.scripts(),
        scripts,
        "nothing was changed, not even the client"
    );
    assert_eq!(p.binding_names("ob-client"), ["COUNTER"]);
    assert_eq!(p.count("ob-client", "/increment"), 2);

    // Once the other stack lets go, the same apply goes through.
    p.cfdo_with("other/cfdo.toml", &["destroy", "--yes"])
        .expect_code(0);
    p.cfdo(&["apply", "--yes", "--allow-data-loss"])
        .expect_code(0);
    assert!(p.namespace("ob-host", "Counter").is_none());
}

/// The most changes in flight at once, from the apply_progress events.
fn max_in_flight(run: &Run) -> usize {
    let mut now = 0usize;
    let mut max = 0usize;
    for e in run.events_of("apply_progress") {
        match e["status"].as_str() {
            Some("started") => now += 1,
            Some("done") | Some("failed") => now = now.saturating_sub(1),
            _ => {}
        }
        max = max.max(now);
    }
    max
}

#[test]
fn parallelism_bounds_the_changes_in_flight() {
    let p = Project::new();
    let mut toml = String::from("[stack]\nname = \"par\"\ncompatibility_date = \"2026-11-01\"\n");
    for w in ["a", "b", "c", "d", "e"] {
        p.write(&format!("{w}/index.js"), &plain_code(w));
        toml.push_str(&format!(
            "\n[workers.{w}]\nname = \"par-{w}\"\nmain = \"{w}/index.js\"\n"
        ));
    }
    p.write("cfdo.toml", &toml);

    let apply = p.cfdo(&["--json", "apply", "--yes", "--parallelism", "2"]);
    apply.expect_code(0);
    assert_eq!(
        apply.events_of("apply_summary")[0]["applied"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    let max = max_in_flight(&apply);
    assert!(
        (1..=2).contains(&max),
        "{max} in flight with --parallelism 2"
    );

    let destroy = p.cfdo(&["--json", "destroy", "--yes", "--parallelism", "1"]);
    destroy.expect_code(0);
    assert_eq!(max_in_flight(&destroy), 1);
    assert!(p.script_names().is_empty());
}

#[test]
fn a_key_value_class_is_created_with_new_classes() {
    let p = Project::new();
    p.write("src/index.js", &host_code("Counter", "COUNTER"));
    p.write(
        "cfdo.toml",
        r#"[stack]
name = "kv"
compatibility_date = "2026-11-01"

[workers.kv]
main = "src/index.js"

[workers.kv.bindings]
COUNTER = { durable_object = "counter" }

[durable_objects.counter]
class_name = "Counter"
worker = "kv"
sqlite = false
"#,
    );
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    assert_eq!(
        plan.change("kv")["migration"],
        json!({"new_tag": "v1", "steps": [{"new_classes": ["Counter"]}]})
    );
    let text = p.cfdo(&["plan"]);
    assert!(
        text.stdout
            .contains("migration (none) -> v1: new key-value class Counter"),
        "{}",
        text.stdout
    );
    p.apply_ok("cfdo.toml");
    assert_eq!(
        p.namespace("kv", "Counter").expect("namespace")["use_sqlite"],
        false
    );
    assert_eq!(p.count("kv", "/increment"), 1);
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_transfer_never_takes_a_class_from_another_environment() {
    let p = Project::new();
    let manifest = |host: &str, transfer: &str| {
        format!(
            r#"[stack]
name = "xe"
compatibility_date = "2026-11-01"

[workers.a]
name = "xe-a"
main = "a/index.js"

[workers.a.bindings]
COUNTER = {{ durable_object = "counter" }}

[workers.b]
name = "xe-b"
main = "b/index.js"

[workers.b.bindings]
COUNTER = {{ durable_object = "counter" }}

[durable_objects.counter]
class_name = "Counter"
worker = "{host}"
{transfer}
[env.staging]
"#
        )
    };
    p.write("a/index.js", &host_code("Counter", "COUNTER"));
    p.write("b/index.js", &host_code("Counter", "COUNTER"));
    p.write("cfdo.toml", &manifest("a", ""));
    p.apply_ok("cfdo.toml");
    for _ in 0..3 {
        p.count("xe-b", "/increment");
    }

    // Naming production's script from staging would move production's data.
    p.write("cfdo.toml", &manifest("b", "transferred_from = \"xe-a\"\n"));
    let refused = p.cfdo(&["--env", "staging", "apply", "--yes", "--allow-data-loss"]);
    refused.expect_code(1);
    let err = refused.err();
    assert!(
        err.contains(
            "`Counter` cannot be transferred from `xe-a`: that script belongs to stack `xe`"
        ),
        "{err}"
    );
    assert!(err.contains("transferred_from = \"a\""), "{err}");
    assert_eq!(p.script_names(), ["xe-a", "xe-b"], "nothing was applied");
    assert_eq!(p.count("xe-a", "/get"), 3, "production keeps its data");

    // Named by its worker, the source is staging's own script.
    p.write("cfdo.toml", &manifest("b", "transferred_from = \"a\"\n"));
    let plan = p.cfdo(&["--env", "staging", "plan"]);
    plan.expect_code(1);
    assert!(
        plan.err()
            .contains("cannot be transferred from `xe-a-staging`"),
        "staging has no class to transfer yet: {}",
        plan.stderr
    );
    assert_eq!(p.count("xe-b", "/get"), 3);
}

#[test]
fn a_protected_class_is_not_deleted_when_the_manifest_loses_track_of_it() {
    let p = Project::new();
    let manifest = |class: &str, namespace: &str| {
        format!(
            r#"[stack]
name = "keep"
compatibility_date = "2026-11-01"

[workers.h]
name = "keep-host"
main = "h/index.js"

[workers.h.bindings]
COUNTER = {{ durable_object = "counter" }}

[durable_objects.counter]
class_name = "{class}"
worker = "h"
{namespace}"#
        )
    };
    p.write("h/index.js", &host_code("Counter", "COUNTER"));
    p.write("cfdo.toml", &manifest("Counter", "protect = true\n"));
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("keep-host", "/increment"), 1);
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);

    // The class renamed without `renamed_from`: a delete of Counter, refused.
    p.write("h/index.js", &host_code("Renamed", "COUNTER"));
    p.write("cfdo.toml", &manifest("Renamed", "protect = true\n"));
    let refused = p.cfdo(&["apply", "--yes", "--allow-data-loss"]);
    refused.expect_code(1);
    let err = refused.err();
    assert!(
        err.contains("this plan would delete protected class `Counter` of `keep-host`"),
        "{err}"
    );
    assert!(err.contains("renamed_from = \"Counter\""), "{err}");
    assert_eq!(p.count("keep-host", "/get"), 1, "the data is kept");

    // So is dropping the worker's namespace entry and binding altogether.
    p.write("h/index.js", &plain_code("h"));
    let text = manifest("Counter", "protect = true\n");
    let bare = text[..text.find("[workers.h.bindings]").expect("bindings")].to_string();
    p.write("cfdo.toml", &bare);
    let refused = p.cfdo(&["apply", "--yes", "--allow-data-loss"]);
    refused.expect_code(1);
    assert!(
        refused
            .err()
            .contains("protected class `Counter` of `keep-host`"),
        "{}",
        refused.stderr
    );
    p.write("h/index.js", &host_code("Counter", "COUNTER"));
    assert_eq!(p.count("keep-host", "/get"), 1);

    // The host gone from the manifest, and a new worker hosting an
    // unprotected class of the same name: still refused, apply and destroy.
    p.write("h2/index.js", &host_code("Counter", "COUNTER"));
    let elsewhere = "[stack]\nname = \"keep\"\ncompatibility_date = \"2026-11-01\"\n\n[workers.h2]\nname = \"keep-host2\"\nmain = \"h2/index.js\"\n\n[workers.h2.bindings]\nCOUNTER = { durable_object = \"c2\" }\n\n[durable_objects.c2]\nclass_name = \"Counter\"\nworker = \"h2\"\n";
    p.write("elsewhere.toml", elsewhere);
    for args in [
        &["apply", "--yes", "--allow-data-loss"][..],
        &["destroy", "--yes"][..],
    ] {
        let refused = p.cfdo_with("elsewhere.toml", args);
        refused.expect_code(1);
        assert!(
            refused
                .err()
                .contains("protected class `Counter` of `keep-host`"),
            "{args:?}: {}",
            refused.stderr
        );
    }
    assert_eq!(p.script_names(), ["keep-host"]);
    assert_eq!(p.count("keep-host", "/get"), 1);

    // `protect = false`, applied, releases the class; then it can go.
    p.write("cfdo.toml", &manifest("Counter", "protect = false\n"));
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    assert_eq!(
        field_lines(&plan.change("keep-host")),
        ["protect: Counter -> (none)"]
    );
    p.apply_ok("cfdo.toml");
    p.write("h/index.js", &host_code("Renamed", "COUNTER"));
    p.write("cfdo.toml", &manifest("Renamed", ""));
    p.cfdo(&["apply", "--yes", "--allow-data-loss"])
        .expect_code(0);
    assert_eq!(p.count("keep-host", "/get"), 0, "a new, empty class");
}

#[test]
fn destroy_orders_by_what_the_account_binds_not_by_the_manifest() {
    let p = Project::new();
    stack(&p, "dso", None, true, "");
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("dso-client", "/increment"), 1);

    // The manifest now has only the client: the host it binds is unknown to it.
    p.write("c/index.js", &plain_code("c"));
    p.write(
        "cfdo.toml",
        "[stack]\nname = \"dso\"\ncompatibility_date = \"2026-11-01\"\n\n[workers.c]\nname = \"dso-client\"\nmain = \"c/index.js\"\n",
    );
    let destroy = p.cfdo(&["--json", "destroy", "--yes"]);
    destroy.expect_code(0);
    let order: Vec<(String, u64)> = destroy
        .events_of("plan_change")
        .iter()
        .map(|c| {
            (
                c["script"].as_str().unwrap_or_default().to_string(),
                c["level"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [("dso-client".to_string(), 0), ("dso-host".to_string(), 1)],
        "the client, which binds the host in the account, goes first"
    );
    assert!(p.script_names().is_empty());
}

#[test]
fn replacing_a_bound_class_in_one_apply_is_a_plan_error_that_says_how() {
    let p = Project::new();
    stack(&p, "rep", None, true, "");
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("rep-client", "/increment"), 1);

    // Counter becomes Replaced, without `renamed_from`: clients bind the new
    // class, which only the host's deleting upload (after them) would create.
    p.write("h/index.js", &host_code("Replaced", "COUNTER"));
    let text = std::fs::read_to_string(p.path("cfdo.toml")).expect("manifest");
    p.write(
        "cfdo.toml",
        &text.replace("class_name = \"Counter\"", "class_name = \"Replaced\""),
    );
    let refused = p.cfdo(&["apply", "--yes", "--allow-data-loss"]);
    refused.expect_code(1);
    let err = flat(&refused.stderr);
    assert!(
        err.contains("`rep-client` binds class `Replaced`, which `rep-host` creates in the same upload that deletes `Counter`"),
        "{err}"
    );
    assert!(err.contains("renamed_from = \"Counter\""), "{err}");
    assert_eq!(p.version_count("rep-host"), 1, "nothing was uploaded");
    assert_eq!(p.count("rep-client", "/get"), 1);

    // As the help says: a rename keeps the data.
    let text = std::fs::read_to_string(p.path("cfdo.toml")).expect("manifest");
    p.write(
        "cfdo.toml",
        &text.replace(
            "class_name = \"Replaced\"",
            "class_name = \"Replaced\"\nrenamed_from = \"Counter\"",
        ),
    );
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("rep-client", "/increment"), 2);
}

#[test]
fn a_transfer_source_that_stops_exporting_the_class_changes_after_the_destination() {
    let p = Project::new();
    let manifest = |counter_host: &str, transfer: &str, a_binds_counter: bool| {
        let a_counter = if a_binds_counter {
            "COUNTER = { durable_object = \"counter\" }\n"
        } else {
            ""
        };
        format!(
            r#"[stack]
name = "tr2"
compatibility_date = "2026-11-01"

[workers.a]
name = "tr2-a"
main = "a/index.js"

[workers.a.bindings]
{a_counter}OTHER = {{ durable_object = "other" }}

[workers.b]
name = "tr2-b"
main = "b/index.js"

[workers.b.bindings]
COUNTER = {{ durable_object = "counter" }}
OTHER = {{ durable_object = "other" }}

[durable_objects.counter]
class_name = "Counter"
worker = "{counter_host}"
{transfer}
[durable_objects.other]
class_name = "Other"
worker = "a"
"#
        )
    };
    let other = "\nexport class Other extends DurableObject {}\n";
    p.write("a/index.js", &(host_code("Counter", "COUNTER") + other));
    p.write("b/index.js", &client_code("COUNTER"));
    p.write("cfdo.toml", &manifest("a", "", true));
    p.apply_ok("cfdo.toml");
    p.count("tr2-b", "/increment");
    assert_eq!(p.count("tr2-b", "/increment"), 2);
    let namespace_id = p.namespace("tr2-a", "Counter").expect("namespace")["id"].clone();

    // Counter moves to b, which still binds a's Other; a's new code no longer
    // exports Counter, so a may change only once b holds the class.
    p.write("a/index.js", &host_code("Other", "OTHER"));
    p.write("b/index.js", &host_code("Counter", "COUNTER"));
    p.write(
        "cfdo.toml",
        &manifest("b", "transferred_from = \"a\"\n", false),
    );
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let (a, b) = (plan.change("tr2-a"), plan.change("tr2-b"));
    assert!(
        (b["phase"].as_u64(), b["level"].as_u64()) < (a["phase"].as_u64(), a["level"].as_u64()),
        "the destination goes first: {b} / {a}"
    );
    p.apply_ok("cfdo.toml");
    assert_eq!(
        p.namespace("tr2-b", "Counter").expect("moved")["id"],
        namespace_id
    );
    assert_eq!(p.count("tr2-b", "/get"), 2, "the data moved along");
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}
