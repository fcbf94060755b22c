//! wrangler, pointed at the edge with `eval "$(cfdo edge env)"`, deploys
//! Workers that then answer. wrangler comes from tests/fixtures/wrangler
//! (`npm ci` there, as scripts/test.sh does); without it the test fails and
//! says how to install it.

mod edge_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use edge_support::{Edge, cfdo_bin};
use serde_json::json;

fn wrangler_project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wrangler")
}

/// The pinned wrangler; a test run without it fails, saying how to install it.
fn wrangler_bin() -> PathBuf {
    let bin = wrangler_project().join("node_modules/.bin/wrangler");
    assert!(
        bin.exists(),
        "wrangler is not installed in {}: run `npm ci --prefix {}` (scripts/test.sh does)",
        wrangler_project().display(),
        wrangler_project().display()
    );
    bin
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs `eval "$(cfdo edge env)" && wrangler deploy` in a copy of `project`.
fn wrangler_deploy(edge: &Edge, wrangler: &Path, project: &Path, home: &Path) -> String {
    wrangler_run(edge, wrangler, project, home, r#""$WRANGLER" deploy"#)
}

/// Runs `eval "$(cfdo edge env)" && <command>` in `project`.
fn wrangler_run(
    edge: &Edge,
    wrangler: &Path,
    project: &Path,
    home: &Path,
    command: &str,
) -> String {
    let script = format!(r#"eval "$("$CFDO" edge env --state-dir "$EDGE_DIR")" && {command}"#);
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(project)
        .env("CFDO", cfdo_bin())
        .env("EDGE_DIR", edge.state_dir())
        .env("WRANGLER", wrangler)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_LOG_PATH", home.join("logs"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("HOME", home)
        .env("CI", "true")
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .env_remove("CLOUDFLARE_API_BASE_URL")
        .output()
        .expect("run wrangler");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{command} failed:\n{text}");
    text
}

#[test]
fn wrangler_deploys_workers_to_the_edge() {
    let wrangler = wrangler_bin();
    let edge = Edge::start();
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");

    let hello = work.path().join("hello-worker");
    copy_dir(&wrangler_project().join("hello-worker"), &hello);
    let output = wrangler_deploy(&edge, &wrangler, &hello, &home);
    assert!(output.contains("wrangler-hello"), "{output}");
    assert_eq!(
        edge.call("wrangler-hello", "/"),
        (200, "hello from wrangler".to_string())
    );
    wrangler_run(
        &edge,
        &wrangler,
        &hello,
        &home,
        r#"printf s3cret | "$WRANGLER" secret put API_KEY"#,
    );
    assert_eq!(
        edge.call("wrangler-hello", "/"),
        (200, "hello from wrangler (with a secret)".to_string())
    );

    // A Durable Object host: the first deploy applies its migration, the
    // second (no lifecycle change) goes through versions and deployments and
    // keeps the data.
    let counter = work.path().join("counter-worker");
    copy_dir(&wrangler_project().join("counter-worker"), &counter);
    wrangler_deploy(&edge, &wrangler, &counter, &home);
    assert_eq!(edge.call_json("wrangler-counter", "/"), json!({"count": 1}));
    wrangler_deploy(&edge, &wrangler, &counter, &home);
    assert_eq!(edge.call_json("wrangler-counter", "/"), json!({"count": 2}));
    let (_, service) = edge.get("/workers/services/wrangler-counter");
    assert_eq!(
        service["result"]["default_environment"]["script"]["migration_tag"],
        "v1"
    );
}
