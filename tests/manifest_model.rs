//! Valid manifests: the example stacks, the graph's levels, environment
//! overlays, the committed JSON Schema, and that no input makes cfdo panic.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use cfdo::manifest::{self, BindingKind, ScriptRef};
use proptest::prelude::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn shared_counter_validates_and_host_comes_first() {
    let manifest = repo("manifests/shared-counter/cfdo.toml");
    Command::cargo_bin("cfdo")
        .unwrap()
        .arg("validate")
        .arg("-f")
        .arg(&manifest)
        .assert()
        .code(0);
    let out = Command::cargo_bin("cfdo")
        .unwrap()
        .args(["graph", "--json", "-f"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let graph: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(graph["levels"][0][0]["script"], "counter-host");
    assert_eq!(graph["levels"][1][0]["script"], "counter-client");
    assert_eq!(graph["levels"][1][0]["needs"][0], "host");

    let text = Command::cargo_bin("cfdo")
        .unwrap()
        .args(["graph", "-f"])
        .arg(&manifest)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    let host_at = text.find("host [counter-host]").expect("host listed");
    let client_at = text.find("client [counter-client]").expect("client listed");
    assert!(host_at < client_at, "{text}");
    assert!(
        text.contains("level 1:\n  client [counter-client] <- needs host (COUNTER)"),
        "{text}"
    );
}

#[test]
fn counter_validates() {
    Command::cargo_bin("cfdo")
        .unwrap()
        .args(["validate", "-f"])
        .arg(repo("manifests/counter/cfdo.toml"))
        .assert()
        .code(0)
        .stdout(predicates::str::contains(
            "stack counter, 1 worker, 1 Durable Object namespace, 1 level",
        ));
}

#[test]
fn graph_formats_dot_and_mermaid() {
    let manifest = repo("manifests/shared-counter/cfdo.toml");
    let dot = Command::cargo_bin("cfdo")
        .unwrap()
        .args(["graph", "--format", "dot", "-f"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&dot.stdout)
            .contains("\"client\" -> \"host\" [label=\"COUNTER\"];")
    );
    let mermaid = Command::cargo_bin("cfdo")
        .unwrap()
        .args(["graph", "--format", "mermaid", "-f"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&mermaid.stdout),
        "graph BT\n  w0[\"host (counter-host)\"]\n  w1[\"client (counter-client)\"]\n  w1 -->|\"COUNTER\"| w0\n"
    );
}

#[test]
fn graph_keys_that_look_alike_or_hold_quotes_stay_apart_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.js"),
        "export default { fetch() { return new Response('ok') } }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("cfdo.toml"),
        "[stack]\nname = \"g\"\ncompatibility_date = \"2026-11-01\"\n\n[workers.a-b]\nmain = \"w.js\"\n\n[workers.a_b]\nname = \"ab\"\nmain = \"w.js\"\n\n[workers.a_b.bindings]\nS = { service = \"a-b\" }\n\n[workers.'q\"x']\nname = \"qx\"\nmain = \"w.js\"\n",
    )
    .unwrap();
    let graph = |format: &str| {
        let out = Command::cargo_bin("cfdo")
            .unwrap()
            .current_dir(dir.path())
            .args(["graph", "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let mermaid = graph("mermaid");
    assert!(mermaid.contains("[\"a-b (a-b)\"]"), "{mermaid}");
    assert!(mermaid.contains("[\"a_b (ab)\"]"), "{mermaid}");
    assert!(mermaid.contains("[\"q#quot;x (qx)\"]"), "{mermaid}");
    // a_b needs a-b: two nodes, never a self-loop.
    let edge = mermaid
        .lines()
        .find(|l| l.contains("-->"))
        .expect("an edge");
    let ends: Vec<&str> = edge
        .split_whitespace()
        .filter(|w| w.starts_with('w'))
        .collect();
    assert_eq!(ends.len(), 2, "{edge}");
    assert_ne!(ends[0], ends[1], "{mermaid}");
    let dot = graph("dot");
    assert!(dot.contains("\"q\\\"x\" [label=\"q\\\"x\\nqx\"];"), "{dot}");
    assert!(dot.contains("\"a_b\" -> \"a-b\" [label=\"S\"];"), "{dot}");
}

const OVERLAY: &str = r#"
[stack]
name = "shop"
compatibility_date = "2026-10-01"

[workers.api]
main = "a.ts"
bindings = { CART = { durable_object = "cart" }, AUTH = { service = "auth" }, MODE = { text = "dev" } }

[workers.auth]
main = "a.ts"

[durable_objects.cart]
class_name = "Cart"
worker = "auth"

[env.staging]
compatibility_date = "2026-11-01"
vars = { MODE = "staging" }

[env.staging.workers.auth]
vars = { LEVEL = "strict" }
"#;

fn parse(text: &str, env: Option<&str>) -> Result<manifest::Manifest, manifest::ManifestErrors> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.ts"), "").unwrap();
    manifest::parse(text, Path::new("cfdo.toml"), dir.path(), env, &|_| None)
}

#[test]
fn environment_overlay_suffixes_names_and_resolves_bindings_inside_it() {
    let m = parse(OVERLAY, Some("staging")).expect("valid");
    let api = m.worker("api").unwrap();
    assert_eq!(api.script, "api-staging");
    assert_eq!(api.compatibility_date, "2026-11-01");
    let mode = api.bindings.iter().find(|b| b.name == "MODE").unwrap();
    assert_eq!(mode.kind, BindingKind::Text("staging".into()));
    let auth = api.bindings.iter().find(|b| b.name == "AUTH").unwrap();
    assert_eq!(
        auth.kind,
        BindingKind::Service {
            target: ScriptRef::Worker("auth".into())
        }
    );
    assert_eq!(
        m.script_name(&ScriptRef::Worker("auth".into())),
        "auth-staging"
    );
    let cart = m.namespace("cart").unwrap();
    assert_eq!(m.script_name(&cart.host), "auth-staging");
    let auth_worker = m.worker("auth").unwrap();
    assert!(
        auth_worker
            .bindings
            .iter()
            .any(|b| b.name == "LEVEL" && b.kind == BindingKind::Text("strict".into()))
    );

    let plain = parse(OVERLAY, None).expect("valid");
    assert_eq!(plain.worker("api").unwrap().script, "api");
    assert_eq!(
        plain.worker("api").unwrap().compatibility_date,
        "2026-10-01"
    );
}

#[test]
fn unknown_environment_is_an_error() {
    let errors = parse(OVERLAY, Some("prod")).unwrap_err();
    let messages: Vec<String> = errors
        .problems
        .iter()
        .map(|p| p.problem.message.clone())
        .collect();
    assert_eq!(
        messages,
        vec!["environment `prod` (from --env) is not defined in this manifest".to_string()]
    );
}

#[test]
fn committed_schema_is_up_to_date() {
    let path = repo("schema/cfdo.schema.json");
    let generated = serde_json::to_string_pretty(&manifest::raw::schema()).unwrap() + "\n";
    if std::env::var_os("CFDO_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/cfdo.schema.json is out of date: run `CFDO_UPDATE_SCHEMA=1 cargo test --test manifest_model` and commit it"
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert!(schema["properties"]["workers"].is_object());
    assert_eq!(schema["$defs"]["RawWorker"]["additionalProperties"], false);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, .. ProptestConfig::default() })]

    /// Arbitrary text never panics the parser.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = parse(&text, None);
        let _ = parse(&text, Some("staging"));
    }

    /// Mutations of a valid manifest (bytes cut, replaced, inserted) never panic.
    #[test]
    fn mutated_manifests_never_panic(cut in 0usize..600, len in 0usize..40, insert in "[\\[\\]{}=\"'.a-z0-9 \\n${}]{0,12}") {
        let base = OVERLAY;
        let start = cut.min(base.len());
        let end = (start + len).min(base.len());
        if base.is_char_boundary(start) && base.is_char_boundary(end) {
            let text = format!("{}{}{}", &base[..start], insert, &base[end..]);
            let _ = parse(&text, None);
            let _ = parse(&text, Some("staging"));
        }
    }
}

#[test]
fn readme_shows_the_shared_counter_manifest_as_committed() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let manifest = std::fs::read_to_string(repo("manifests/shared-counter/cfdo.toml")).unwrap();
    assert!(
        readme.contains(&format!("```toml\n{manifest}```")),
        "README's manifest section differs from manifests/shared-counter/cfdo.toml"
    );
}

#[test]
fn a_doubled_dollar_keeps_a_literal_variable_reference() {
    let text = r#"[stack]
name = "lit"
compatibility_date = "2026-11-01"

[workers.api]
main = "a.ts"
bindings = { SHELL = { text = "echo $${HOME} costs $$5 and ${" } }
"#;
    // `${` left open is an error; with `$${` only, the value is kept as written.
    assert!(parse(text, None).is_err());
    let text = text.replace(" and ${", "");
    let m = parse(&text, None).expect("valid without any variable set");
    let shell = m
        .worker("api")
        .unwrap()
        .bindings
        .iter()
        .find(|b| b.name == "SHELL")
        .unwrap();
    assert_eq!(
        shell.kind,
        BindingKind::Text("echo ${HOME} costs $$5".into())
    );
}
