//! Cloudflare's upload and delete rules as the edge enforces them, each
//! pinned with the error code Cloudflare answers with.

mod edge_support;

use edge_support::{Edge, code, do_binding, fixture, message, new_sqlite};
use serde_json::{Value, json};

/// A worker exporting Durable Object class `class`, whose default handler
/// forwards to the object named "x" of the binding NS (when bound).
fn counter(class: &str) -> String {
    format!(
        r#"import {{ DurableObject }} from "cloudflare:workers";
export class {class} extends DurableObject {{
  async fetch(request) {{
    let n = (await this.ctx.storage.get("n")) ?? 0;
    if (new URL(request.url).pathname === "/inc") {{ n++; await this.ctx.storage.put("n", n); }}
    return Response.json({{ n }});
  }}
}}
export default {{
  fetch(request, env) {{
    if (!env.NS) return new Response("no binding");
    return env.NS.get(env.NS.idFromName("x")).fetch(request);
  }},
}};
"#
    )
}

const PLAIN: &str = "export default { fetch() { return new Response(\"plain\"); } };";

fn host_with(edge: &Edge, script: &str, class: &str) {
    let (status, body) = edge.deploy(
        script,
        &counter(class),
        json!([do_binding("NS", class, None)]),
        Some(new_sqlite("v1", None, &[class])),
    );
    assert_eq!(status, 200, "{body}");
}

fn namespace_of(edge: &Edge, script: &str, class: &str) -> Option<Value> {
    edge.namespaces()
        .into_iter()
        .find(|n| n["script"] == script && n["class"] == class)
}

#[test]
fn migration_with_a_stale_old_tag_is_refused_with_10079() {
    let edge = Edge::start();
    host_with(&edge, "host", "Room");
    let (status, body) = edge.deploy(
        "host",
        &counter("Room"),
        json!([]),
        Some(
            json!({"old_tag": "v0", "new_tag": "v2", "steps": [{"new_sqlite_classes": ["Other"]}]}),
        ),
    );
    assert_eq!((status, code(&body)), (400, 10079), "{body}");
    assert!(message(&body).contains("current tag is 'v1'"), "{body}");
    // No old_tag at all while the script has one is refused the same way.
    let (_, body) = edge.deploy(
        "host",
        &counter("Room"),
        json!([]),
        Some(json!({"new_tag": "v2", "steps": []})),
    );
    assert_eq!(code(&body), 10079, "{body}");
    // The inline single-step form with the right old_tag applies.
    let code_two = format!(
        "{}\nexport class Other extends Room {{}}\n",
        counter("Room")
    );
    let (status, body) = edge.deploy(
        "host",
        &code_two,
        json!([do_binding("NS", "Room", None)]),
        Some(json!({"old_tag": "v1", "new_tag": "v2", "new_sqlite_classes": ["Other"]})),
    );
    assert_eq!(status, 200, "{body}");
    let (_, service) = edge.get("/workers/services/host");
    assert_eq!(
        service["result"]["default_environment"]["script"]["migration_tag"],
        "v2"
    );
    assert!(namespace_of(&edge, "host", "Other").is_some());
}

#[test]
fn new_class_step_for_a_class_with_a_namespace_is_refused_with_10074() {
    let edge = Edge::start();
    host_with(&edge, "host", "Room");
    let (status, body) = edge.deploy(
        "host",
        &counter("Room"),
        json!([do_binding("NS", "Room", None)]),
        Some(new_sqlite("v2", Some("v1"), &["Room"])),
    );
    assert_eq!((status, code(&body)), (400, 10074), "{body}");
}

#[test]
fn new_class_step_for_a_class_not_exported_is_refused_with_10070() {
    let edge = Edge::start();
    let (status, body) = edge.deploy(
        "host",
        PLAIN,
        json!([]),
        Some(new_sqlite("v1", None, &["Room"])),
    );
    assert_eq!((status, code(&body)), (400, 10070), "{body}");
    assert!(message(&body).contains("'Room'"), "{body}");
    let (status, _) = edge.get("/workers/scripts/host/settings");
    assert_eq!(status, 404, "a refused upload creates nothing");
}

#[test]
fn classes_exported_through_an_esbuild_export_list_are_found() {
    let edge = Edge::start();
    let (status, body) = edge.deploy(
        "bundle",
        &fixture("bundled.js"),
        json!([do_binding("ROOMS", "Room", None)]),
        Some(new_sqlite("v1", None, &["Room"])),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(edge.call_json("bundle", "/"), json!({"n": 1}));
    assert_eq!(edge.call_json("bundle", "/"), json!({"n": 2}));
}

#[test]
fn binding_to_a_class_without_a_namespace_is_refused_with_10061() {
    let edge = Edge::start();
    let (status, body) = edge.deploy(
        "host",
        &counter("Room"),
        json!([do_binding("NS", "Room", None)]),
        None,
    );
    assert_eq!((status, code(&body)), (400, 10061), "{body}");
    assert!(message(&body).contains("new-class migration"), "{body}");
    // Across scripts: the host exists but has no namespace for the class.
    let (status, _) = edge.deploy("plain-host", PLAIN, json!([]), None);
    assert_eq!(status, 200);
    let (_, body) = edge.deploy(
        "client",
        PLAIN,
        json!([do_binding("NS", "Room", Some("plain-host"))]),
        None,
    );
    assert_eq!(code(&body), 10061, "{body}");
}

#[test]
fn binding_naming_a_missing_script_is_refused_with_10061() {
    let edge = Edge::start();
    let (status, body) = edge.deploy(
        "client",
        PLAIN,
        json!([do_binding("NS", "Room", Some("nowhere"))]),
        None,
    );
    assert_eq!((status, code(&body)), (400, 10061), "{body}");
    assert!(message(&body).contains("'nowhere'"), "{body}");
}

#[test]
fn delete_step_while_a_binding_references_the_class_is_refused_with_10061() {
    let edge = Edge::start();
    host_with(&edge, "host", "Room");
    let (status, body) = edge.deploy(
        "client",
        PLAIN,
        json!([do_binding("NS", "Room", Some("host"))]),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let delete =
        json!({"old_tag": "v1", "new_tag": "v2", "steps": [{"deleted_classes": ["Room"]}]});
    let (status, body) = edge.deploy("host", PLAIN, json!([]), Some(delete.clone()));
    assert_eq!((status, code(&body)), (400, 10061), "{body}");
    assert!(message(&body).contains("'client'"), "{body}");
    // The host's own binding in the same upload blocks it too.
    let (_, body) = edge.deploy(
        "host",
        &counter("Room"),
        json!([do_binding("NS", "Room", None)]),
        Some(delete.clone()),
    );
    assert_eq!(code(&body), 10061, "{body}");
    // Once the client drops its binding the delete applies and the storage goes.
    let id = namespace_of(&edge, "host", "Room").expect("namespace")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(edge.state_dir().join("storage").join(&id).is_dir());
    let (status, _) = edge.deploy("client", PLAIN, json!([]), None);
    assert_eq!(status, 200);
    let (status, body) = edge.deploy("host", PLAIN, json!([]), Some(delete));
    assert_eq!(status, 200, "{body}");
    assert!(namespace_of(&edge, "host", "Room").is_none());
    assert!(!edge.state_dir().join("storage").join(&id).exists());
}

#[test]
fn a_version_that_stops_exporting_a_live_class_is_refused_with_10064() {
    let edge = Edge::start();
    host_with(&edge, "host", "Room");
    let (status, body) = edge.deploy("host", PLAIN, json!([]), None);
    assert_eq!((status, code(&body)), (400, 10064), "{body}");
    assert!(message(&body).contains("'Room'"), "{body}");
}

#[test]
fn switching_a_class_between_sqlite_and_key_value_is_refused() {
    let edge = Edge::start();
    let (status, body) = edge.deploy(
        "host",
        &counter("Room"),
        json!([do_binding("NS", "Room", None)]),
        Some(json!({"new_tag": "v1", "steps": [{"new_classes": ["Room"]}]})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        namespace_of(&edge, "host", "Room").unwrap()["use_sqlite"],
        false
    );
    let (status, body) = edge.deploy(
        "host",
        &counter("Room"),
        json!([do_binding("NS", "Room", None)]),
        Some(new_sqlite("v2", Some("v1"), &["Room"])),
    );
    assert_eq!((status, code(&body)), (400, 10074), "{body}");
    assert!(
        message(&body).contains("cannot switch between SQLite and key-value"),
        "{body}"
    );
    // The declarative exports form is refused the same way.
    let metadata = json!({
        "main_module": "index.js",
        "compatibility_date": "2026-01-01",
        "bindings": [do_binding("NS", "Room", None)],
        "exports": {"Room": {"type": "durable-object", "storage": "sqlite"}},
    });
    let (status, body) = edge.upload("host", metadata, &[("index.js", &counter("Room"))]);
    assert_eq!(status, 400, "{body}");
    assert!(
        message(&body).contains("cannot switch between SQLite and key-value"),
        "{body}"
    );
    assert_eq!(
        namespace_of(&edge, "host", "Room").unwrap()["use_sqlite"],
        false
    );
}

#[test]
fn a_script_that_fails_to_start_is_refused_with_10021_and_the_previous_version_keeps_serving() {
    let edge = Edge::start();
    let (status, _) = edge.deploy("hello", &fixture("hello.js"), json!([]), None);
    assert_eq!(status, 200);
    let (status, body) = edge.deploy("hello", &fixture("throws-at-load.js"), json!([]), None);
    assert_eq!((status, code(&body)), (400, 10021), "{body}");
    assert!(
        message(&body).contains("this worker refuses to start"),
        "workerd's message: {body}"
    );
    let (status, body) = edge.deploy(
        "hello",
        "export default { fetch() { return new Response(\"x\"; } };",
        json!([]),
        None,
    );
    assert_eq!((status, code(&body)), (400, 10021), "{body}");
    assert!(message(&body).contains("SyntaxError"), "{body}");
    assert_eq!(
        edge.call("hello", "/"),
        (200, "hello from the edge".to_string())
    );
}

#[test]
fn a_compatibility_date_newer_than_workerd_is_refused_naming_both_dates() {
    let edge = Edge::start();
    let metadata =
        json!({"main_module": "index.js", "compatibility_date": "2027-01-01", "bindings": []});
    let (status, body) = edge.upload("hello", metadata, &[("index.js", &fixture("hello.js"))]);
    assert_eq!((status, code(&body)), (400, 10021), "{body}");
    let text = message(&body);
    assert!(
        text.contains("2027-01-01") && text.contains("2026-11-23"),
        "{body}"
    );
}

#[test]
fn the_newest_date_is_the_date_of_the_workerd_the_edge_runs() {
    // A workerd other than the pinned one (CFDO_WORKERD, or one on PATH)
    // accepts dates up to its own build date, as it says with --version.
    let pinned = Edge::start();
    let (status, body) = pinned.upload(
        "hello",
        json!({"main_module": "index.js", "compatibility_date": "2026-01-01", "bindings": []}),
        &[("index.js", &fixture("hello.js"))],
    );
    assert_eq!(status, 200, "{body}");
    let real = pinned.workerd_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let older = dir.path().join("workerd");
    std::fs::write(
        &older,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'workerd 2026-01-20'; exit 0; fi\nexec '{}' \"$@\"\n",
            real.display()
        ),
    )
    .expect("write wrapper");
    std::fs::set_permissions(&older, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod wrapper");
    let edge = Edge::start_in_env(
        &[],
        &[("CFDO_WORKERD", older.to_str().expect("utf-8 path"))],
    );
    let upload = |date: &str| {
        edge.upload(
            "hello",
            json!({"main_module": "index.js", "compatibility_date": date, "bindings": []}),
            &[("index.js", &fixture("hello.js"))],
        )
    };
    let (status, body) = upload("2026-02-01");
    assert_eq!((status, code(&body)), (400, 10021), "{body}");
    assert!(
        message(&body).contains("2026-02-01 is newer than 2026-01-20"),
        "{body}"
    );
    let (status, body) = upload("2026-01-20");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        edge.call("hello", "/"),
        (200, "hello from the edge".to_string())
    );
}

#[test]
fn deleting_a_referenced_script_needs_force() {
    let edge = Edge::start();
    host_with(&edge, "host", "Room");
    let (status, _) = edge.deploy("auth", PLAIN, json!([]), None);
    assert_eq!(status, 200);
    let (status, body) = edge.deploy(
        "client",
        PLAIN,
        json!([do_binding("NS", "Room", Some("host")),
               {"type": "service", "name": "AUTH", "service": "auth"}]),
        None,
    );
    assert_eq!(status, 200, "{body}");

    let (_, refs) = edge.get("/workers/scripts/host/references");
    assert_eq!(
        refs["result"]["durable_objects"][0]["dependent_service"],
        "client"
    );
    let (_, refs) = edge.get("/workers/scripts/auth/references");
    assert_eq!(refs["result"]["services"][0]["service"], "client");

    let (status, body) = edge.delete("/workers/scripts/host?force=false");
    assert_eq!((status, code(&body)), (409, 10066), "{body}");
    assert!(message(&body).contains("'client'"), "{body}");
    let (status, body) = edge.delete("/workers/scripts/auth");
    assert_eq!(status, 409, "{body}");

    let (status, body) = edge.delete("/workers/scripts/host?force=true");
    assert_eq!(status, 200, "{body}");
    assert!(
        namespace_of(&edge, "host", "Room").is_none(),
        "the host's namespaces go with it"
    );
    let (status, body) = edge.get("/workers/scripts/host/settings");
    assert_eq!((status, code(&body)), (404, 10007));
}

#[test]
fn a_version_upload_carrying_a_migration_is_refused_with_10211() {
    let edge = Edge::start();
    host_with(&edge, "host", "Room");
    let metadata = json!({
        "main_module": "index.js",
        "compatibility_date": "2026-01-01",
        "bindings": [do_binding("NS", "Room", None)],
        "migrations": {"old_tag": "v1", "new_tag": "v2", "steps": [{"new_sqlite_classes": ["Other"]}]},
    });
    let code_two = format!(
        "{}\nexport class Other extends Room {{}}\n",
        counter("Room")
    );
    let (status, body) = edge.upload_version("host", metadata, &[("index.js", &code_two)]);
    assert_eq!((status, code(&body)), (400, 10211), "{body}");
}

#[test]
fn an_unknown_token_is_refused_with_10000() {
    let edge = Edge::start();
    let url = edge.account_url("/workers/scripts");
    let response = edge
        .raw()
        .get(&url)
        .bearer_auth("not-the-token")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let body: Value = response.json().unwrap();
    assert_eq!(
        (body["success"].clone(), code(&body)),
        (json!(false), 10000)
    );
    let response = edge.raw().get(&url).send().unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().unwrap();
    assert_eq!(code(&body), 10000);
}

#[test]
fn a_rename_keeps_the_namespace_id_and_its_data() {
    let edge = Edge::start();
    host_with(&edge, "host", "Room");
    edge.call_json("host", "/inc");
    assert_eq!(edge.call_json("host", "/inc"), json!({"n": 2}));
    let id = namespace_of(&edge, "host", "Room").unwrap()["id"].clone();
    let (status, body) = edge.deploy(
        "host",
        &counter("Hall"),
        json!([do_binding("NS", "Hall", None)]),
        Some(json!({"old_tag": "v1", "new_tag": "v2", "steps": [{"renamed_classes": [{"from": "Room", "to": "Hall"}]}]})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(namespace_of(&edge, "host", "Hall").unwrap()["id"], id);
    assert!(namespace_of(&edge, "host", "Room").is_none());
    assert_eq!(edge.call_json("host", "/"), json!({"n": 2}));
}

#[test]
fn a_transfer_keeps_the_namespace_id_and_its_data() {
    let edge = Edge::start();
    host_with(&edge, "old-host", "Room");
    edge.call_json("old-host", "/inc");
    let id = namespace_of(&edge, "old-host", "Room").unwrap()["id"].clone();
    let (status, body) = edge.deploy(
        "new-host",
        &counter("Room"),
        json!([do_binding("NS", "Room", None)]),
        Some(json!({"new_tag": "v1", "steps": [{"transferred_classes": [{"from": "Room", "from_script": "old-host", "to": "Room"}]}]})),
    );
    assert_eq!(status, 200, "{body}");
    let moved = namespace_of(&edge, "new-host", "Room").expect("transferred namespace");
    assert_eq!(moved["id"], id);
    assert_eq!(edge.call_json("new-host", "/"), json!({"n": 1}));
    // The old host may now bind the class across scripts.
    let (status, body) = edge.deploy(
        "old-host",
        &counter("Room"),
        json!([do_binding("NS", "Room", Some("new-host"))]),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(edge.call_json("old-host", "/inc"), json!({"n": 2}));
}
