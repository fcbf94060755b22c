//! Faults: applies against an edge that answers a share of API calls with a
//! 500 complete and leave the account equal to the manifest, with Durable
//! Object data kept; a read that failed is never taken as "absent".

mod reliability_support;

use std::process::Output;

use reliability_support::{
    Edge, Stack, apply_summary, replayed_migration_codes, text, try_apply_summary,
};

/// Runs `run` until it succeeds, at most `tries` times. A failed run must be
/// a clean stop after the client spent its retries on injected 500s.
fn until_success(tries: usize, what: &str, mut run: impl FnMut() -> Output) -> Vec<Output> {
    let mut runs = Vec::new();
    for _ in 0..tries {
        let out = run();
        let ok = out.status.success();
        if !ok {
            let t = text(&out);
            assert_eq!(out.status.code(), Some(1), "{what}: {t}");
            // The diagnostic wraps long lines (with a `|` margin): compare words.
            let flat = t
                .split_whitespace()
                .filter(|w| *w != "|")
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                flat.contains("injected by the edge's --fail-rate") && flat.contains("attempt"),
                "{what} failed for another reason than retries spent on injected faults: {t}"
            );
        }
        runs.push(out);
        if ok {
            return runs;
        }
    }
    panic!("{what} did not succeed in {tries} runs");
}

#[test]
fn fifty_workers_apply_through_injected_faults_and_keep_their_data() {
    let edge = Edge::start(&["--fail-rate", "0.2"]);
    let stack = Stack::new("fifty", 10, 40);
    let manifest = stack.manifest();
    let mut all_output = String::new();
    let mut faults_in_applies = 0;
    let mut retries = 0;
    let mut requests = 0;
    let mut apply_runs = 0;

    let mut apply = |all_output: &mut String| {
        let runs = until_success(3, "apply", || {
            edge.wait_log_quiet();
            let before = edge.log().len();
            let out = edge.cfdo(&["--json", "apply", "--yes"], &manifest);
            // A run whose reads spent their retries before any change has no summary.
            let summary = try_apply_summary(&out).unwrap_or_default();
            let faults = Edge::injected_faults(&edge.log()[before..]);
            if out.status.success() {
                // Every 500 the edge injected was retried, and nothing else was.
                assert_eq!(
                    summary["retries"].as_u64(),
                    Some(faults as u64),
                    "retries against faults injected: {summary}"
                );
            }
            faults_in_applies += faults;
            retries += summary["retries"].as_u64().unwrap_or(0);
            requests += summary["requests"].as_u64().unwrap_or(0);
            out
        });
        apply_runs += runs.len();
        for out in &runs {
            all_output.push_str(&text(out));
        }
        apply_summary(runs.last().expect("a run"))
    };

    // First apply: 50 scripts, 10 namespaces, under faults.
    let summary = apply(&mut all_output);
    assert_eq!(summary["failed"], serde_json::json!([]), "{summary}");
    let plan = until_success(3, "plan", || {
        edge.cfdo(&["plan", "--detailed-exitcode"], &manifest)
    });
    let last = plan.last().expect("a run");
    assert_eq!(last.status.code(), Some(0), "{}", text(last));
    assert!(
        text(last).contains("No changes"),
        "plan after apply: {}",
        text(last)
    );

    // Durable Object data: host h's counter incremented h+1 times, through a client.
    for h in 0..stack.hosts {
        for _ in 0..=h {
            edge.count(&format!("c{h}"), "/increment");
        }
    }

    // Second apply: every script updated, three hosts gain a class (a migration).
    stack.write("fifty", "2", 3, &[]);
    let summary = apply(&mut all_output);
    assert_eq!(summary["failed"], serde_json::json!([]), "{summary}");
    let plan = until_success(3, "plan", || {
        edge.cfdo(&["plan", "--detailed-exitcode"], &manifest)
    });
    assert_eq!(plan.last().and_then(|o| o.status.code()), Some(0));

    for h in 0..stack.hosts {
        assert_eq!(
            edge.count(&format!("h{h}"), "/get"),
            h as i64 + 1,
            "counter of h{h} after the second apply"
        );
    }
    let tags = edge.migration_tags();
    assert_eq!(tags.len(), 50, "{tags:?}");
    for h in 0..stack.hosts {
        let expected = if h < 3 { "v2" } else { "v1" };
        assert_eq!(
            tags[&format!("h{h}")].as_deref(),
            Some(expected),
            "{tags:?}"
        );
    }
    for c in 0..stack.clients {
        assert_eq!(tags[&format!("c{c}")], None, "{tags:?}");
    }
    assert_eq!(
        replayed_migration_codes(&all_output),
        Vec::<&str>::new(),
        "{all_output}"
    );

    let log = edge.log();
    eprintln!(
        "faults: {} API requests answered by the edge, {} injected 500s in all; applies: {apply_runs} runs, {requests} requests, {faults_in_applies} faults injected, {retries} retried; 50 scripts, 10 counters kept",
        Edge::api_requests(&log),
        Edge::injected_faults(&log),
    );
}

#[test]
fn failed_reads_never_plan_new_classes_for_existing_ones() {
    let edge = Edge::start(&[]);
    let stack = Stack::new("reads", 3, 3);
    let manifest = stack.manifest();
    let out = edge.cfdo(&["apply", "--yes"], &manifest);
    assert!(out.status.success(), "{}", text(&out));
    let tags_before = edge.migration_tags();

    // Most API calls fail: most plans exhaust the retries of some read.
    edge.restart_with(&["--fail-rate", "0.6"]);
    let (mut clean, mut failed) = (0, 0);
    for _ in 0..10 {
        let out = edge.cfdo(&["--json", "plan", "--detailed-exitcode"], &manifest);
        let t = text(&out);
        assert!(
            !t.contains("new_sqlite_classes") && !t.contains("new_classes"),
            "a failed read was taken as absent: {t}"
        );
        match out.status.code() {
            Some(0) => clean += 1,
            Some(1) => {
                assert!(
                    t.contains("GET /")
                        && t.contains("500")
                        && t.contains("injected by the edge's --fail-rate"),
                    "plan failed without naming the failed read: {t}"
                );
                failed += 1;
            }
            other => panic!("plan proposed changes ({other:?}) for an unchanged account: {t}"),
        }
    }
    assert!(failed > 0, "no plan ran out of retries, so none was tested");
    // Applies under the same faults change nothing either.
    let before = edge.log().len();
    for _ in 0..3 {
        let out = edge.cfdo(&["--json", "apply", "--yes"], &manifest);
        let t = text(&out);
        assert!(matches!(out.status.code(), Some(0) | Some(1)), "apply: {t}");
        assert!(
            !t.contains("\"status\":\"started\""),
            "apply started a change: {t}"
        );
    }
    let log = edge.log();
    assert!(
        !log[before..]
            .lines()
            .any(|l| l.contains("PUT ") || l.contains("DELETE ")),
        "an apply of an unchanged stack wrote to the account"
    );
    edge.restart_with(&[]);
    assert_eq!(edge.migration_tags(), tags_before);
    eprintln!(
        "failed reads: 10 plans at --fail-rate 0.6: {clean} correct (no changes), {failed} stopped with an error, 0 wrong plans"
    );
}

#[test]
fn rate_limited_apply_waits_as_told_and_uploads_each_script_once() {
    let edge = Edge::start(&["--rate-limit", "10/1"]);
    let stack = Stack::new("limited", 2, 6);
    let manifest = stack.manifest();
    let out = edge.cfdo(&["--json", "apply", "--yes"], &manifest);
    assert!(out.status.success(), "{}", text(&out));
    let summary = apply_summary(&out);
    let log = edge.log();
    let limited = log
        .lines()
        .filter(|l| l.starts_with("cfdo edge: ") && l.contains(" -> 429 "))
        .count();
    assert!(limited > 0, "the edge never limited the apply: {log}");
    // Every 429 was retried after the wait the edge asked for.
    assert_eq!(
        summary["retries"].as_u64(),
        Some(limited as u64),
        "{summary}"
    );
    assert!(
        summary["waited_ms"].as_u64().unwrap_or(0) >= 1000,
        "{summary}"
    );
    for script in ["h0", "h1", "c0", "c1", "c2", "c3", "c4", "c5"] {
        assert_eq!(edge.versions(script), 1, "{script} uploaded more than once");
    }
    // The human summary says how long the rate limit held the apply.
    stack.write("limited", "2", 0, &[]);
    let out = edge.cfdo(&["apply", "--yes"], &manifest);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("waiting for the rate limit"), "{t}");
    eprintln!(
        "rate limit: {limited} answers of 429 with Retry-After, all retried; waited {} ms; each script uploaded once",
        summary["waited_ms"]
    );
}
