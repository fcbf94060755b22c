//! Interrupted applies: the edge killed in the middle of an apply, and Ctrl-C
//! (SIGINT) sent to cfdo during one. The next apply converges, no migration
//! or upload is applied twice, and no Durable Object data is lost.

mod reliability_support;

use std::collections::BTreeSet;

use reliability_support::{
    Edge, Stack, apply_summary, replayed_migration_codes, signal, text, uploads_in, wait_until,
};

fn names(value: &serde_json::Value) -> BTreeSet<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    v.as_str()
                        .or_else(|| v["script"].as_str())
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn edge_killed_mid_apply_then_apply_again_converges_without_replays() {
    let edge = Edge::start(&[]);
    let stack = Stack::new("killed", 4, 8);
    let manifest = stack.manifest();
    let out = edge.cfdo(&["apply", "--yes"], &manifest);
    assert!(out.status.success(), "{}", text(&out));
    for h in 0..stack.hosts {
        for _ in 0..=h {
            edge.count(&format!("c{h}"), "/increment");
        }
    }

    // Version 2: every script changes and every host gains a class (a migration).
    stack.write("killed", "2", stack.hosts, &[]);
    edge.restart_with(&["--latency-ms", "250"]);
    let before = edge.log().len();
    let child = edge.spawn(&["--json", "apply", "--yes"], &manifest);
    assert!(
        wait_until(1200, || uploads_in(&edge.log()[before..]).len() >= 2),
        "the apply never uploaded: {}",
        edge.log()
    );
    let pid = edge.pid();
    signal(pid, "KILL");
    let killed = child.wait_with_output().expect("wait for apply");
    let killed_text = text(&killed);
    assert_eq!(killed.status.code(), Some(1), "{killed_text}");
    let summary = apply_summary(&killed);
    let unfinished = names(&summary["failed"]).len() + names(&summary["not_applied"]).len();
    assert!(unfinished > 0, "the kill left nothing undone: {summary}");
    let landed = uploads_in(&edge.log()[before..]).len();

    // Restarted (same state directory, same port), the next apply finishes the job.
    edge.start_again(&[]);
    let out = edge.cfdo(&["--json", "apply", "--yes"], &manifest);
    let rerun_text = text(&out);
    assert!(out.status.success(), "{rerun_text}");
    let rerun = apply_summary(&out);
    let out = edge.cfdo(&["plan", "--detailed-exitcode"], &manifest);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let tags = edge.migration_tags();
    for h in 0..stack.hosts {
        assert_eq!(tags[&format!("h{h}")].as_deref(), Some("v2"), "{tags:?}");
    }
    // One upload per apply that changed a script: v1, then v2 exactly once.
    for script in tags.keys() {
        assert_eq!(edge.versions(script), 2, "versions of {script}");
    }
    for h in 0..stack.hosts {
        assert_eq!(edge.count(&format!("h{h}"), "/get"), h as i64 + 1, "h{h}");
    }
    let all = format!("{killed_text}{rerun_text}");
    assert_eq!(replayed_migration_codes(&all), Vec::<&str>::new(), "{all}");
    eprintln!(
        "edge killed (kill -9 pid {pid}) after {landed} uploads of 12; the interrupted apply reported {unfinished} unfinished; the rerun applied {} and converged; migration tags v2, 2 versions per script, 4 counters kept",
        names(&rerun["applied"]).len()
    );
}

#[test]
fn sigint_stops_new_work_reports_it_and_the_next_apply_converges() {
    let edge = Edge::start(&["--latency-ms", "300"]);
    let stack = Stack::new("sigint", 2, 10);
    let manifest = stack.manifest();
    let before = edge.log().len();
    let child = edge.spawn(&["--json", "apply", "--yes"], &manifest);
    assert!(
        wait_until(1200, || !uploads_in(&edge.log()[before..]).is_empty()),
        "the apply never uploaded: {}",
        edge.log()
    );
    signal(child.id(), "INT");
    let out = child.wait_with_output().expect("wait for apply");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("interrupted"), "{t}");
    let summary = apply_summary(&out);
    assert_eq!(summary["interrupted"], true, "{summary}");
    let applied = names(&summary["applied"]);
    let not_applied = names(&summary["not_applied"]);
    let failed = names(&summary["failed"]);
    assert!(!not_applied.is_empty(), "nothing left undone: {summary}");
    assert!(failed.is_empty(), "{summary}");
    assert!(applied.is_disjoint(&not_applied), "{summary}");
    assert_eq!(applied.len() + not_applied.len(), 12, "{summary}");
    // What the report calls applied is exactly what the account holds.
    let listed: BTreeSet<String> = edge
        .scripts()
        .iter()
        .map(|s| s["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(listed, applied, "{summary}");

    let out = edge.cfdo(&["--json", "apply", "--yes"], &manifest);
    assert!(out.status.success(), "{}", text(&out));
    let rerun = apply_summary(&out);
    assert_eq!(names(&rerun["applied"]), not_applied, "{rerun}");
    let out = edge.cfdo(&["plan", "--detailed-exitcode"], &manifest);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    eprintln!(
        "SIGINT: {} applied before stopping, {} not started and reported; the next apply applied exactly those",
        applied.len(),
        not_applied.len()
    );
}

#[test]
fn a_second_sigint_quits_at_once_and_the_next_apply_converges() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;

    let edge = Edge::start(&["--latency-ms", "400"]);
    let stack = Stack::new("twice", 2, 4);
    let manifest = stack.manifest();
    let before = edge.log().len();
    let mut child = edge.spawn(&["apply", "--yes"], &manifest);
    let stderr = child.stderr.take().expect("stderr");
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    assert!(
        wait_until(1200, || !uploads_in(&edge.log()[before..]).is_empty()),
        "the apply never uploaded"
    );
    signal(child.id(), "INT");
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("cfdo: interrupted; letting requests in flight finish"))
    {
        let line = received
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no interrupt notice; stderr so far: {seen:#?}"));
        seen.push(line);
    }
    signal(child.id(), "INT");
    let status = child.wait().expect("wait for apply");
    let _ = reader.join();
    seen.extend(received.try_iter());
    assert_eq!(status.code(), Some(130), "{seen:#?}");
    assert!(
        seen.iter().any(|l| l.contains("interrupted again")),
        "{seen:#?}"
    );

    let out = edge.cfdo(&["apply", "--yes"], &manifest);
    assert!(out.status.success(), "{}", text(&out));
    let out = edge.cfdo(&["plan", "--detailed-exitcode"], &manifest);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for script in ["h0", "h1", "c0", "c3"] {
        assert_eq!(edge.versions(script), 1, "{script} uploaded twice");
    }
}

#[test]
fn answers_lost_after_the_edge_acted_are_not_applied_twice() {
    let edge = Edge::start(&[]);
    let stack = Stack::new("lossy", 1, 1);
    let manifest = stack.manifest();
    let out = edge.cfdo(&["apply", "--yes"], &manifest);
    assert!(out.status.success(), "{}", text(&out));
    edge.count("c0", "/increment");

    // Version 2: h0 gains a class (a migration), c0 changes. The answers to
    // both uploads are lost on the way back, after the edge applied them.
    stack.write("lossy", "2", 1, &[]);
    let (api, token, account) = edge.env();
    let upstream: u16 = api
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("edge port");
    let put = |script: &str| format!("PUT /client/v4/accounts/{account}/workers/scripts/{script} ");
    let proxy = reliability_support::LossyProxy::start(upstream, &[put("h0"), put("c0")]);
    let base = format!("http://127.0.0.1:{}/client/v4", proxy.port);
    let out = edge.cfdo_env(
        &["-v", "--target", "cloudflare", "--json", "apply", "--yes"],
        &manifest,
        &[
            ("CLOUDFLARE_API_BASE_URL", &base),
            ("CLOUDFLARE_API_TOKEN", &token),
            ("CLOUDFLARE_ACCOUNT_ID", &account),
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(
        proxy.dropped.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "{t}"
    );
    // Before retrying, the client found each lost attempt in the account.
    for script in ["h0", "c0"] {
        assert!(
            t.lines().any(|l| l.contains(&format!("/workers/scripts/{script}: attempt 1 took effect although its answer was lost; not sent again"))),
            "{t}"
        );
    }
    assert_eq!(edge.migration_tags()["h0"].as_deref(), Some("v2"));
    let out = edge.cfdo(&["plan", "--detailed-exitcode"], &manifest);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(edge.count("h0", "/get"), 1);
    let versions = (edge.versions("h0"), edge.versions("c0"));
    eprintln!(
        "lost answers: 2 uploads' answers dropped after the edge applied them; versions after v1 + v2: h0 {}, c0 {}",
        versions.0, versions.1
    );
    assert_eq!(versions, (2, 2), "an upload was applied twice");
}

#[test]
fn apply_and_destroy_finish_when_their_output_is_no_longer_read() {
    let edge = Edge::start(&[]);
    let stack = Stack::new("unread", 2, 2);
    let manifest = stack.manifest();
    // The reader is gone before cfdo writes its first line (`cfdo apply | head -0`).
    let unread = |args: &[&str]| {
        let mut child = edge.spawn(args, &manifest);
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait for cfdo");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    };
    unread(&["apply", "--yes"]);
    assert_eq!(edge.scripts().len(), 4, "{:?}", edge.scripts());
    assert_eq!(edge.count("c0", "/increment"), 1);
    unread(&["--json", "destroy", "--yes"]);
    assert!(edge.scripts().is_empty(), "{:?}", edge.scripts());
}
