//! Concurrent applies: two applies of the same stack at once end in the
//! state both planned (or a part of it that the next apply completes), never
//! apply a migration twice, and an apply that meets the other's changes stops
//! naming the script (see docs/concurrency.md).

mod reliability_support;

use std::process::Output;

use reliability_support::{Edge, Stack, apply_summary, text};

/// Starts two applies at once and waits for both.
fn twin_applies(edge: &Edge, stack: &Stack) -> [Output; 2] {
    let manifest = stack.manifest();
    let a = edge.spawn(&["--json", "apply", "--yes"], &manifest);
    let b = edge.spawn(&["--json", "apply", "--yes"], &manifest);
    [
        a.wait_with_output().expect("apply a"),
        b.wait_with_output().expect("apply b"),
    ]
}

/// An apply that did not finish stopped on a conflict it names.
fn assert_clean_stop(out: &Output) -> &'static str {
    let t = text(out);
    match out.status.code() {
        Some(0) => "finished",
        Some(1) => {
            let summary = apply_summary(out);
            let names_script = (0..6)
                .any(|i| t.contains(&format!("`h{i}`")) || t.contains(&format!("`c{i}`")))
                || summary["failed"].as_array().is_some_and(|f| !f.is_empty());
            assert!(names_script, "the stop names no script: {t}");
            if t.contains("changed in the account since the plan") {
                "stopped: changed since the plan"
            } else if t.contains("10079") {
                "stopped: migration tag moved (10079)"
            } else {
                panic!("an apply stopped for another reason than the other apply: {t}")
            }
        }
        other => panic!("apply exited {other:?}: {t}"),
    }
}

#[test]
fn two_applies_of_one_stack_at_once_end_in_the_planned_state() {
    let edge = Edge::start(&["--latency-ms", "40"]);
    let stack = Stack::new("twins", 3, 6);
    let manifest = stack.manifest();
    let mut outcomes = Vec::new();

    // From an empty account.
    for out in &twin_applies(&edge, &stack) {
        outcomes.push(assert_clean_stop(out));
        assert!(
            !text(out).contains("10074"),
            "a class was created twice: {}",
            text(out)
        );
    }
    let out = edge.cfdo(&["apply", "--yes"], &manifest);
    assert!(out.status.success(), "{}", text(&out));
    let out = edge.cfdo(&["plan", "--detailed-exitcode"], &manifest);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tags = edge.migration_tags();
    for h in 0..stack.hosts {
        assert_eq!(tags[&format!("h{h}")].as_deref(), Some("v1"), "{tags:?}");
    }
    for h in 0..stack.hosts {
        for _ in 0..=h {
            edge.count(&format!("c{h}"), "/increment");
        }
    }

    // Both update every script and add a class to two hosts.
    stack.write("twins", "2", 2, &[]);
    for out in &twin_applies(&edge, &stack) {
        outcomes.push(assert_clean_stop(out));
        assert!(
            !text(out).contains("10074"),
            "a class was created twice: {}",
            text(out)
        );
    }
    let out = edge.cfdo(&["apply", "--yes"], &manifest);
    assert!(out.status.success(), "{}", text(&out));
    let out = edge.cfdo(&["plan", "--detailed-exitcode"], &manifest);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tags = edge.migration_tags();
    for h in 0..stack.hosts {
        let expected = if h < 2 { "v2" } else { "v1" };
        assert_eq!(
            tags[&format!("h{h}")].as_deref(),
            Some(expected),
            "{tags:?}"
        );
    }
    for h in 0..stack.hosts {
        assert_eq!(edge.count(&format!("h{h}"), "/get"), h as i64 + 1, "h{h}");
    }
    eprintln!(
        "concurrent applies (2 rounds of 2): {outcomes:?}; migration tags exact, counters kept"
    );
}

/// Uploads client code to `script` by hand, as a person or another tool would:
/// bound to host h0's class, with `VERSION` set to `version`.
fn upload_by_hand(edge: &Edge, script: &str, version: &str) {
    let (api, token, account) = edge.env();
    let metadata = serde_json::json!({
        "main_module": "index.js",
        "compatibility_date": "2026-11-01",
        "bindings": [
            {"type": "durable_object_namespace", "name": "NS", "class_name": "Counter0", "script_name": "h0"},
            {"type": "plain_text", "name": "VERSION", "text": version},
        ],
    });
    let form = reqwest::blocking::multipart::Form::new()
        .part(
            "metadata",
            reqwest::blocking::multipart::Part::text(metadata.to_string())
                .mime_str("application/json")
                .expect("mime"),
        )
        .part(
            "index.js",
            reqwest::blocking::multipart::Part::text(
                "export default { fetch() { return Response.json({ count: -1 }); } };\n",
            )
            .file_name("index.js")
            .mime_str("application/javascript+module")
            .expect("mime"),
        );
    let response = reqwest::blocking::Client::new()
        .put(format!("{api}/accounts/{account}/workers/scripts/{script}"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .expect("upload by hand");
    assert_eq!(response.status().as_u16(), 200, "{:?}", response.text());
}

/// The `VERSION` text binding of a script, as the API shows it.
fn version_of(edge: &Edge, script: &str) -> String {
    let (api, token, account) = edge.env();
    let body: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!(
            "{api}/accounts/{account}/workers/scripts/{script}/settings"
        ))
        .bearer_auth(token)
        .send()
        .and_then(|r| r.json())
        .expect("settings");
    body["result"]["bindings"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["name"] == "VERSION"))
        .and_then(|b| b["text"].as_str())
        .unwrap_or_else(|| panic!("no VERSION in {body}"))
        .to_string()
}

#[test]
fn a_saved_plan_meeting_a_moved_script_applies_nothing_and_names_it() {
    let edge = Edge::start(&[]);
    let stack = Stack::new("saved", 1, 2);
    let manifest = stack.manifest();
    let out = edge.cfdo(&["apply", "--yes"], &manifest);
    assert!(out.status.success(), "{}", text(&out));
    stack.write("saved", "2", 0, &[]);
    let plan = stack.dir.path().join("plan.json");
    let plan = plan.to_string_lossy();
    let out = edge.cfdo(&["plan", "--out", &plan], &manifest);
    assert!(out.status.success(), "{}", text(&out));

    // Someone changes a client after the plan was saved.
    upload_by_hand(&edge, "c1", "by hand");
    let out = edge.cfdo(&["--json", "apply", "--yes", &plan], &manifest);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let summary = apply_summary(&out);
    let conflict = summary["conflict"].as_str().unwrap_or_default();
    assert!(
        conflict.starts_with("script `c1` changed in the account since the plan"),
        "{summary}"
    );
    // A stale saved plan is refused whole: not even the host's level runs.
    assert_eq!(summary["applied"], serde_json::json!([]), "{summary}");
    assert_eq!(
        summary["not_applied"],
        serde_json::json!(["h0", "c0", "c1"]),
        "{summary}"
    );
    assert_eq!(version_of(&edge, "c1"), "by hand");
    assert_eq!(version_of(&edge, "c0"), "1");
    assert_eq!(version_of(&edge, "h0"), "1");

    // The same saved plan again: refused the same way, still nothing applied.
    let out = edge.cfdo(&["apply", "--yes", &plan], &manifest);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("script `c1` changed in the account since the plan"),
        "{t}"
    );
    assert!(t.contains("not applied: h0, c0, c1"), "{t}");
    assert_eq!(version_of(&edge, "h0"), "1");
}

#[test]
fn a_script_changed_during_its_level_is_not_overwritten() {
    let edge = Edge::start(&[]);
    let stack = Stack::new("midlevel", 1, 6);
    let manifest = stack.manifest();
    let out = edge.cfdo(&["apply", "--yes"], &manifest);
    assert!(out.status.success(), "{}", text(&out));

    edge.restart_with(&["--latency-ms", "300"]);
    stack.write("midlevel", "2", 0, &[]);
    let before = edge.log().len();
    let child = edge.spawn(
        &["--json", "apply", "--yes", "--parallelism", "1"],
        &manifest,
    );
    assert!(
        reliability_support::wait_until(1200, || {
            reliability_support::uploads_in(&edge.log()[before..])
                .iter()
                .any(|l| l.contains("/workers/scripts/c0 "))
        }),
        "the apply never reached the clients: {}",
        edge.log()
    );
    // While the apply works through c1..c4, someone changes c5.
    upload_by_hand(&edge, "c5", "by hand");
    let out = child.wait_with_output().expect("apply");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let summary = apply_summary(&out);
    // The wave holding c5 re-read the account first: c5 is not sent, and named.
    assert_eq!(summary["failed"], serde_json::json!([]), "{summary}");
    assert_eq!(
        summary["not_applied"],
        serde_json::json!(["c5"]),
        "{summary}"
    );
    assert!(
        summary["conflict"]
            .as_str()
            .unwrap_or_default()
            .starts_with("script `c5` changed in the account since the plan"),
        "{summary}"
    );
    assert_eq!(
        version_of(&edge, "c5"),
        "by hand",
        "the apply overwrote a change it did not plan"
    );
    for c in 0..5 {
        assert_eq!(version_of(&edge, &format!("c{c}")), "2");
    }
    // Planned again, the next apply takes c5 back to the manifest.
    let out = edge.cfdo(&["apply", "--yes"], &manifest);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(version_of(&edge, "c5"), "2");
}
