//! Snapshots of what a user reads: the human plan and the JSON events for a
//! create, an update, a rename, a data-loss refusal and a destroy, computed
//! against a real local edge. Ports, temporary paths, hashes, namespace ids
//! and timings are redacted.

mod engine_support;

use engine_support::*;

/// Host `h` hosting `class` (binding COUNTER); client `c` binding it with a note.
fn stack(p: &Project, class: &str, renamed_from: Option<&str>, note: &str, with_class: bool) {
    p.write("h/index.js", &host_code(class, "COUNTER"));
    p.write("c/index.js", &client_code("COUNTER"));
    let binding = if with_class {
        "COUNTER = { durable_object = \"counter\" }\n"
    } else {
        ""
    };
    let mut toml = format!(
        r#"[stack]
name = "snap"
compatibility_date = "2026-11-01"

[workers.h]
name = "snap-host"
main = "h/index.js"
workers_dev = true

[workers.h.bindings]
{binding}
[workers.c]
name = "snap-client"
main = "c/index.js"

[workers.c.bindings]
{binding}NOTE = {{ text = "{note}" }}
"#
    );
    if with_class {
        toml.push_str(&format!(
            "\n[durable_objects.counter]\nclass_name = \"{class}\"\nworker = \"h\"\n"
        ));
        if let Some(from) = renamed_from {
            toml.push_str(&format!("renamed_from = \"{from}\"\n"));
        }
    }
    p.write("cfdo.toml", &toml);
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// Runs `check` with the redactions every engine snapshot needs.
fn redacted(p: &Project, check: impl FnOnce()) {
    let mut settings = insta::Settings::clone_current();
    let dirs = [
        escape(&p.dir.path().display().to_string()),
        escape(&p.edge_dir.path().display().to_string()),
    ];
    for dir in &dirs {
        settings.add_filter(dir, "[dir]");
    }
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    settings.add_filter(r"\b[0-9a-f]{32}\b", "[namespace-id]");
    settings.add_filter(r"\b[0-9a-f]{12,64}\b", "[hash]");
    settings.add_filter(r"\((\d+ ms|\d+\.\ds)\)", "([time])");
    settings.add_filter(r" in (\d+ ms|\d+\.\ds) ", " in [time] ");
    settings.add_filter(r#""(elapsed_ms|waited_ms)":\d+"#, r#""$1":"[ms]""#);
    settings.bind(check);
}

/// A run as one text: exit code, stdout, stderr.
fn shown(run: &Run) -> String {
    format!(
        "exit code: {}\n--- stdout\n{}--- stderr\n{}",
        run.code, run.stdout, run.stderr
    )
}

#[test]
fn create() {
    let p = Project::new();
    stack(&p, "Counter", None, "first", true);
    let text = p.cfdo(&["plan"]);
    text.expect_code(0);
    let json = p.cfdo(&["--json", "plan"]);
    json.expect_code(0);
    redacted(&p, || {
        insta::assert_snapshot!("create_plan_text", text.stdout);
        insta::assert_snapshot!("create_plan_json", json.stdout);
    });
}

#[test]
fn update() {
    let p = Project::new();
    stack(&p, "Counter", None, "first", true);
    p.apply_ok("cfdo.toml");
    stack(&p, "Counter", None, "second", true);
    p.write(
        "c/index.js",
        &client_code("COUNTER").replace("via: \"client\"", "via: \"client v2\""),
    );
    let text = p.cfdo(&["plan", "--detailed-exitcode"]);
    text.expect_code(2);
    let json = p.cfdo(&["--json", "apply", "--yes"]);
    json.expect_code(0);
    assert_eq!(p.call("snap-client", "/get")["via"], "client v2");
    redacted(&p, || {
        insta::assert_snapshot!("update_plan_text", text.stdout);
        insta::assert_snapshot!("update_apply_json", json.stdout);
    });
}

#[test]
fn rename() {
    let p = Project::new();
    stack(&p, "Counter", None, "first", true);
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("snap-client", "/increment"), 1);
    stack(&p, "Tally", Some("Counter"), "first", true);
    let text = p.cfdo(&["plan"]);
    text.expect_code(0);
    let json = p.cfdo(&["--json", "apply", "--yes"]);
    json.expect_code(0);
    assert_eq!(
        p.count("snap-client", "/increment"),
        2,
        "renamed, data kept"
    );
    redacted(&p, || {
        insta::assert_snapshot!("rename_plan_text", text.stdout);
        insta::assert_snapshot!("rename_apply_json", json.stdout);
    });
}

#[test]
fn data_loss_refusal() {
    let p = Project::new();
    stack(&p, "Counter", None, "first", true);
    p.apply_ok("cfdo.toml");
    assert_eq!(p.count("snap-client", "/increment"), 1);
    let scripts = p.scripts();
    stack(&p, "Counter", None, "first", false);
    let text = p.cfdo(&["apply", "--yes"]);
    text.expect_code(1);
    let json = p.cfdo(&["--json", "apply", "--yes"]);
    json.expect_code(1);
    assert_eq!(p.scripts(), scripts, "nothing was changed");
    assert!(p.namespace("snap-host", "Counter").is_some());
    assert_eq!(p.count("snap-client", "/increment"), 2);
    redacted(&p, || {
        insta::assert_snapshot!("data_loss_refusal_text", shown(&text));
        insta::assert_snapshot!("data_loss_refusal_json", shown(&json));
    });
}

#[test]
fn destroy() {
    let p = Project::new();
    stack(&p, "Counter", None, "first", true);
    p.apply_ok("cfdo.toml");
    let text = p.cfdo(&["destroy", "--yes"]);
    text.expect_code(0);
    assert!(p.script_names().is_empty());
    p.apply_ok("cfdo.toml");
    let json = p.cfdo(&["--json", "destroy", "--yes"]);
    json.expect_code(0);
    assert!(p.script_names().is_empty());
    assert!(p.namespaces().is_empty());
    redacted(&p, || {
        insta::assert_snapshot!("destroy_text", shown(&text));
        insta::assert_snapshot!("destroy_json", shown(&json));
    });
}
