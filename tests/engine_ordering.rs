//! The order of an apply's and a destroy's changes when several scripts go or
//! lose classes at once, against a real local edge: each such plan applies in
//! one run, or is refused before any change when no order can work.

mod engine_support;

use engine_support::*;
use serde_json::json;

const HEAD: &str = "[stack]\nname = \"ord\"\ncompatibility_date = \"2026-11-01\"\n";

/// `[workers.<key>]` named `ord-<key>`, with `main` and bindings lines.
fn worker(key: &str, main: &str, bindings: &[&str]) -> String {
    let mut t = format!("\n[workers.{key}]\nname = \"ord-{key}\"\nmain = \"{main}\"\n");
    if !bindings.is_empty() {
        t.push_str(&format!(
            "\n[workers.{key}.bindings]\n{}\n",
            bindings.join("\n")
        ));
    }
    t
}

fn namespace(key: &str, class: &str, host: &str) -> String {
    format!("\n[durable_objects.{key}]\nclass_name = \"{class}\"\nworker = \"{host}\"\n")
}

#[test]
fn a_client_and_the_class_it_binds_removed_together_apply_in_one_run() {
    let p = Project::new();
    p.write("h.js", &host_code("Counter", "COUNTER"));
    p.write("c.js", &client_code("COUNTER"));
    p.write("plain.js", &plain_code("h"));
    let counter = "COUNTER = { durable_object = \"counter\" }";
    p.write(
        "cfdo.toml",
        &format!(
            "{HEAD}{}{}{}",
            worker("h", "h.js", &[counter]),
            worker("c", "c.js", &[counter]),
            namespace("counter", "Counter", "h")
        ),
    );
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("ord-c", "/increment"), 1);

    // Only the host stays, without the class: the client goes first.
    p.write(
        "cfdo.toml",
        &format!("{HEAD}{}", worker("h", "plain.js", &[])),
    );
    let apply = p.cfdo(&["--json", "apply", "--yes", "--allow-data-loss"]);
    apply.expect_code(0);
    let order: Vec<String> = apply
        .events_of("apply_progress")
        .iter()
        .filter(|e| e["status"] == "done")
        .map(|e| e["script"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(order, ["ord-c", "ord-h"], "{}", apply.stdout);
    assert_eq!(p.script_names(), ["ord-h"]);
    assert!(p.namespace("ord-h", "Counter").is_none());
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_client_that_deletes_its_own_class_drops_its_bindings_before_the_host_deletes() {
    let p = Project::new();
    p.write(
        "h.js",
        &(host_code("Counter", "COUNTER") + "\nexport class Other extends DurableObject {}\n"),
    );
    p.write(
        "c.js",
        &(client_code("COUNTER").replace(
            "// Forwards",
            "import { DurableObject } from \"cloudflare:workers\";\nexport class Own extends DurableObject {}\n// Forwards",
        )),
    );
    p.write("plain.js", &plain_code("x"));
    let both = [
        "COUNTER = { durable_object = \"counter\" }",
        "OWN = { durable_object = \"own\" }",
        "H = { service = \"h\" }",
    ];
    p.write(
        "cfdo.toml",
        &format!(
            "{HEAD}{}{}{}{}",
            worker("h", "h.js", &["COUNTER = { durable_object = \"counter\" }"]),
            worker("c", "c.js", &both),
            namespace("counter", "Counter", "h"),
            namespace("own", "Own", "c")
        ),
    );
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("ord-c", "/increment"), 1);

    // Both classes go; the client, which binds the host, drops its bindings first.
    p.write(
        "cfdo.toml",
        &format!(
            "{HEAD}{}{}",
            worker("h", "plain.js", &[]),
            worker("c", "plain.js", &["H = { service = \"h\" }"])
        ),
    );
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let (h, c) = (plan.change("ord-h"), plan.change("ord-c"));
    assert!(
        (c["phase"].as_u64(), c["level"].as_u64()) < (h["phase"].as_u64(), h["level"].as_u64()),
        "the client goes before the host: {c} / {h}"
    );
    p.cfdo(&["apply", "--yes", "--allow-data-loss"])
        .expect_code(0);
    assert!(p.namespaces().is_empty(), "{:?}", p.namespaces());
    assert_eq!(p.call("ord-c", "/")["bindings"], json!(["H"]));
}

#[test]
fn scripts_removed_from_the_manifest_go_in_the_order_their_bindings_need() {
    let p = Project::new();
    p.write("plain.js", &plain_code("w"));
    let to_b = "B = { service = \"b\" }";
    p.write(
        "cfdo.toml",
        &format!(
            "{HEAD}{}{}{}{}",
            worker("keep", "plain.js", &[]),
            worker("a", "plain.js", &[to_b]),
            worker("z", "plain.js", &[to_b]),
            worker("b", "plain.js", &[])
        ),
    );
    p.apply_ok("cfdo.toml");

    // a and z bind b: b is deleted after both, in the same apply.
    p.write(
        "cfdo.toml",
        &format!("{HEAD}{}", worker("keep", "plain.js", &[])),
    );
    let plan = p.cfdo(&["--json", "plan"]);
    plan.expect_code(0);
    let level = |s: &str| plan.change(s)["level"].as_u64();
    assert!(
        level("ord-b") > level("ord-a") && level("ord-b") > level("ord-z"),
        "{}",
        plan.stdout
    );
    p.apply_ok("cfdo.toml");
    assert_eq!(p.script_names(), ["ord-keep"]);

    // A worker that stays and still names a script the plan deletes: refused.
    p.write(
        "cfdo.toml",
        &format!(
            "{HEAD}{}{}",
            worker("keep", "plain.js", &[]),
            worker("b", "plain.js", &[])
        ),
    );
    p.apply_ok("cfdo.toml");
    p.write(
        "cfdo.toml",
        &format!(
            "{HEAD}{}",
            worker("keep", "plain.js", &["B = { service = \"ord-b\" }"])
        ),
    );
    let refused = p.cfdo(&["apply", "--yes"]);
    refused.expect_code(1);
    assert!(
        flat(&refused.stderr).contains(
            "binding `B` of worker `keep` names script `ord-b`, which this stack deployed and the manifest no longer has, so this plan deletes it"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(p.script_names(), ["ord-b", "ord-keep"]);
}

#[test]
fn destroy_refuses_scripts_that_bind_each_other_unless_forced() {
    let p = Project::new();
    p.write("plain.js", &plain_code("w"));
    p.write(
        "cfdo.toml",
        &format!(
            "{HEAD}{}{}",
            worker("a", "plain.js", &["B = { service = \"b\" }"]),
            worker("b", "plain.js", &[])
        ),
    );
    p.apply_ok("cfdo.toml");
    // Another tool makes b bind a back, keeping cfdo's tags.
    let tags = p.script("ord-b").expect("ord-b")["tags"].clone();
    let mut meta = metadata(
        json!([{"type": "service", "name": "A", "service": "ord-a"}]),
        None,
    );
    meta["tags"] = tags;
    p.upload("ord-b", meta, &plain_code("b"));

    let refused = p.cfdo(&["destroy", "--yes"]);
    refused.expect_code(1);
    let err = flat(&refused.stderr);
    assert!(err.contains("the stack's scripts bind each other"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(p.script_names(), ["ord-a", "ord-b"], "nothing was deleted");

    p.cfdo(&["destroy", "--yes", "--force"]).expect_code(0);
    assert!(p.script_names().is_empty());
}

#[test]
fn a_chain_of_transfers_applies_in_one_run_and_keeps_the_data() {
    let p = Project::new();
    let dobj = "import { DurableObject } from \"cloudflare:workers\";\n";
    p.write("a.js", &host_code("Counter", "COUNTER"));
    p.write("b1.js", &(host_code("Other", "OTHER")));
    p.write("b2.js", &host_code("Counter", "COUNTER"));
    p.write("c.js", &host_code("Other", "OTHER"));
    p.write("plain.js", &format!("{dobj}{}", plain_code("a")));
    let counter = "COUNTER = { durable_object = \"counter\" }";
    let other = "OTHER = { durable_object = \"other\" }";
    p.write(
        "cfdo.toml",
        &format!(
            "{HEAD}{}{}{}{}{}",
            worker("a", "a.js", &[counter]),
            worker("b", "b1.js", &[other]),
            worker("c", "plain.js", &[]),
            namespace("counter", "Counter", "a"),
            namespace("other", "Other", "b")
        ),
    );
    p.apply_ok("cfdo.toml");
    p.count("ord-a", "/increment");
    assert_eq!(p.count("ord-a", "/increment"), 2);
    assert_eq!(p.count("ord-b", "/increment"), 1);

    // Counter moves a -> b while Other moves b -> c: c, then b, then a.
    p.write(
        "cfdo.toml",
        &format!(
            "{HEAD}{}{}{}{}transferred_from = \"a\"\n{}transferred_from = \"b\"\n",
            worker("a", "plain.js", &[]),
            worker("b", "b2.js", &[counter]),
            worker("c", "c.js", &[other]),
            namespace("counter", "Counter", "b"),
            namespace("other", "Other", "c")
        ),
    );
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("ord-b", "/get"), 2, "Counter moved with its data");
    assert_eq!(p.count("ord-c", "/get"), 1, "Other moved with its data");
    p.cfdo(&["plan", "--detailed-exitcode"]).expect_code(0);
}
