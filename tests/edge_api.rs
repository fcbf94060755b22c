//! The edge's API endpoints, commands, runtime and fault injection, through a
//! real edge started with the built cfdo binary.

mod edge_support;

use std::os::unix::fs::PermissionsExt;

use edge_support::{Edge, code, do_binding, fixture, new_sqlite};
use serde_json::{Value, json};

#[test]
fn token_verify_and_script_listing_use_cloudflares_envelope() {
    let edge = Edge::start();
    let response = edge
        .raw()
        .get(format!("{}/user/tokens/verify", edge.api))
        .bearer_auth(&edge.token)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["result"]["status"], "active");

    let (status, body) = edge.get("/workers/scripts");
    assert_eq!((status, body["result"].clone()), (200, json!([])));
    let (status, _) = edge.deploy("hello", &fixture("hello.js"), json!([]), None);
    assert_eq!(status, 200);
    let (_, body) = edge.get("/workers/scripts");
    let scripts = body["result"].as_array().unwrap();
    assert_eq!(scripts.len(), 1);
    assert_eq!(scripts[0]["id"], "hello");
    assert_eq!(scripts[0]["handlers"], json!(["fetch"]));
    assert_eq!(scripts[0]["compatibility_date"], "2026-01-01");

    // Another account id is refused.
    let url = format!("{}/accounts/0123456789abcdef/workers/scripts", edge.api);
    let response = edge.raw().get(url).bearer_auth(&edge.token).send().unwrap();
    assert_eq!(response.status().as_u16(), 403);
}

#[test]
fn bindings_reach_the_worker_and_settings_hide_secrets() {
    let edge = Edge::start();
    let (status, _) = edge.deploy(
        "auth",
        "export default { fetch() { return new Response(\"authorised\"); } };",
        json!([]),
        None,
    );
    assert_eq!(status, 200);
    let bindings = json!([
        {"type": "plain_text", "name": "GREETING", "text": "hi \"there\"\n"},
        {"type": "secret_text", "name": "API_KEY", "text": "s3cret"},
        {"type": "json", "name": "LIMITS", "json": {"max": 3}},
        {"type": "service", "name": "AUTH", "service": "auth"},
    ]);
    let (status, body) = edge.deploy("echo", &fixture("bindings.js"), bindings, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        edge.call_json("echo", "/"),
        json!({"greeting": "hi \"there\"\n", "secret": "s3cret", "limits": {"max": 3}, "auth": "authorised"})
    );
    let (status, settings) = edge.get("/workers/scripts/echo/settings");
    assert_eq!(status, 200);
    let secret = settings["result"]["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "API_KEY")
        .cloned()
        .unwrap();
    assert_eq!(secret, json!({"type": "secret_text", "name": "API_KEY"}));
    assert!(!settings.to_string().contains("s3cret"));

    // keep_bindings carries the secret over to the next upload.
    let metadata = json!({
        "main_module": "index.js",
        "compatibility_date": "2026-01-01",
        "bindings": [{"type": "plain_text", "name": "GREETING", "text": "again"}],
        "keep_bindings": ["secret_text"],
    });
    let (status, body) = edge.upload("echo", metadata, &[("index.js", &fixture("bindings.js"))]);
    assert_eq!(status, 200, "{body}");
    let answer = edge.call_json("echo", "/");
    assert_eq!(
        (answer["greeting"].clone(), answer["secret"].clone()),
        (json!("again"), json!("s3cret"))
    );
}

#[test]
fn script_settings_patch_sets_tags_and_services_show_the_migration_tag() {
    let edge = Edge::start();
    let (status, body) = edge.deploy(
        "host",
        &fixture("shared-counter/host.js"),
        json!([do_binding("COUNTER", "SharedCounter", None)]),
        Some(new_sqlite("v1", None, &["SharedCounter"])),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = edge.patch_json(
        "/workers/scripts/host/script-settings",
        &json!({"tags": ["cfdo:stack=demo"]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["tags"], json!(["cfdo:stack=demo"]));
    let (_, list) = edge.get("/workers/scripts");
    assert_eq!(list["result"][0]["tags"], json!(["cfdo:stack=demo"]));
    assert_eq!(list["result"][0]["migration_tag"], "v1");

    let (status, service) = edge.get("/workers/services/host");
    assert_eq!(status, 200);
    assert_eq!(
        service["result"]["default_environment"]["script"]["migration_tag"],
        "v1"
    );
    let (status, body) = edge.get("/workers/services/missing");
    assert_eq!((status, code(&body)), (404, 10090));

    let (_, settings) = edge.get("/workers/scripts/host/settings");
    let binding = &settings["result"]["bindings"][0];
    assert_eq!(binding["class_name"], "SharedCounter");
    assert_eq!(binding["namespace_id"], edge.namespaces()[0]["id"]);
}

#[test]
fn namespaces_are_paginated() {
    let edge = Edge::start();
    let classes = ["A", "B", "C"];
    let code: String =
        std::iter::once("import { DurableObject } from \"cloudflare:workers\";\n".to_string())
            .chain(
                classes
                    .iter()
                    .map(|c| format!("export class {c} extends DurableObject {{}}\n")),
            )
            .chain(std::iter::once(
                "export default { fetch() { return new Response(\"ok\"); } };\n".to_string(),
            ))
            .collect();
    let (status, body) = edge.deploy(
        "host",
        &code,
        json!([]),
        Some(new_sqlite("v1", None, &classes)),
    );
    assert_eq!(status, 200, "{body}");
    let (_, page1) = edge.get("/workers/durable_objects/namespaces?per_page=2&page=1");
    let (_, page2) = edge.get("/workers/durable_objects/namespaces?per_page=2&page=2");
    assert_eq!(page1["result"].as_array().unwrap().len(), 2);
    assert_eq!(page2["result"].as_array().unwrap().len(), 1);
    assert_eq!(page1["result_info"]["total_count"], 3);
    let mut seen: Vec<String> = page1["result"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["result"].as_array().unwrap())
        .map(|n| n["class"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    assert_eq!(seen, ["A", "B", "C"]);
    assert_eq!(
        page1["result"][0]["name"],
        format!("host_{}", page1["result"][0]["class"].as_str().unwrap())
    );
}

#[test]
fn subdomains_are_readable_and_per_script_settable() {
    let edge = Edge::start();
    let (status, body) = edge.get("/workers/subdomain");
    assert_eq!(status, 200);
    assert!(
        body["result"]["subdomain"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let (status, _) = edge.deploy("hello", &fixture("hello.js"), json!([]), None);
    assert_eq!(status, 200);
    let (_, body) = edge.get("/workers/scripts/hello/subdomain");
    assert_eq!(body["result"]["enabled"], false);
    let (status, body) = edge.post_json(
        "/workers/scripts/hello/subdomain",
        &json!({"enabled": true}),
    );
    assert_eq!(status, 200, "{body}");
    let (_, body) = edge.get("/workers/scripts/hello/subdomain");
    assert_eq!(
        body["result"],
        json!({"enabled": true, "previews_enabled": true})
    );
    let (status, body) = edge.get("/workers/scripts/missing/subdomain");
    assert_eq!((status, code(&body)), (404, 10007));
}

#[test]
fn versions_deploy_through_deployments() {
    let edge = Edge::start();
    let (status, _) = edge.deploy("hello", &fixture("hello.js"), json!([]), None);
    assert_eq!(status, 200);
    let metadata =
        json!({"main_module": "index.js", "compatibility_date": "2026-01-01", "bindings": []});
    let v2 = "export default { fetch() { return new Response(\"version two\"); } };";
    let (status, body) = edge.upload_version("hello", metadata.clone(), &[("index.js", v2)]);
    assert_eq!(status, 200, "{body}");
    let version_id = body["result"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["result"]["number"], 2);
    // Uploaded, not yet deployed.
    assert_eq!(edge.call("hello", "/").1, "hello from the edge");
    let (status, body) = edge.post_json(
        "/workers/scripts/hello/deployments",
        &json!({"strategy": "percentage", "versions": [{"version_id": version_id, "percentage": 100}]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(edge.call("hello", "/").1, "version two");
    let (_, deployments) = edge.get("/workers/scripts/hello/deployments");
    assert_eq!(
        deployments["result"]["deployments"][0]["versions"][0]["version_id"],
        version_id.as_str()
    );
    let (_, versions) = edge.get("/workers/scripts/hello/versions");
    assert_eq!(versions["result"]["items"].as_array().unwrap().len(), 2);
    // A version upload for a script that does not exist.
    let (status, body) = edge.upload_version("nothing", metadata, &[("index.js", v2)]);
    assert_eq!((status, code(&body)), (404, 10007));
}

#[test]
fn status_env_and_logs_describe_the_running_edge() {
    let edge = Edge::start();
    let (status, _) = edge.deploy("hello", &fixture("hello.js"), json!([]), None);
    assert_eq!(status, 200);
    let status = edge.status_json();
    assert_eq!(status["api"], edge.api.as_str());
    let url = status["workers"]["hello"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(
        reqwest::blocking::get(url).unwrap().text().unwrap(),
        "hello from the edge"
    );

    let human = edge.edge(&["status"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains(&edge.api) && text.contains(url), "{text}");
    assert!(!text.contains(&edge.token), "status never prints the token");

    let env = edge.edge(&["--json", "env"]);
    let vars: serde_json::Value = serde_json::from_slice(&env.stdout).expect("edge env --json");
    assert_eq!(vars["CLOUDFLARE_API_BASE_URL"], edge.api.as_str());
    assert_eq!(vars["CLOUDFLARE_API_TOKEN"], edge.token.as_str());
    assert_eq!(vars["CLOUDFLARE_ACCOUNT_ID"], edge.account.as_str());

    let logs = edge.edge(&["logs", "-n", "50"]);
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains("PUT /client/v4/accounts/"), "{text}");
    assert!(!text.contains(&edge.token), "the log never holds the token");

    // Starting again reports the running edge instead of a second one.
    let again = edge.edge(&["start"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already running"));
    // A second server on the same state directory is refused by the lock.
    let second = edge.edge(&["serve", "--port", "0"]);
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already serves"),
        "{second:?}"
    );

    edge.stop();
    let stopped = edge.edge(&["status"]);
    assert_eq!(stopped.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stopped.stdout).contains("not running"));
    assert!(
        reqwest::blocking::get(url).is_err(),
        "workerd stops with the edge"
    );
}

#[test]
fn secrets_live_in_private_files() {
    let edge = Edge::start();
    let bindings = json!([{"type": "secret_text", "name": "API_KEY", "text": "s3cret"}]);
    let (status, _) = edge.deploy("echo", &fixture("bindings.js"), bindings, None);
    assert_eq!(status, 200);
    for file in ["token", "state.json", "workerd.capnp"] {
        let mode = std::fs::metadata(edge.state_dir().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}

#[test]
fn the_library_api_reaches_a_running_edge() {
    let edge = Edge::start();
    let (status, _) = edge.deploy("hello", &fixture("hello.js"), json!([]), None);
    assert_eq!(status, 200);
    let location = cfdo::cli::EdgeLocation {
        state_dir: Some(edge.state_dir().to_path_buf()),
        port: None,
    };
    let conn = cfdo::edge::ensure_running(&location, true).unwrap();
    assert_eq!(conn.api_base_url, edge.api);
    assert_eq!(conn.token, edge.token);
    assert_eq!(conn.account_id, edge.account);
    let urls = cfdo::edge::worker_urls(&location).unwrap();
    assert_eq!(
        urls.get("hello").map(String::as_str),
        edge.status_json()["workers"]["hello"].as_str()
    );
}

#[test]
fn a_burst_of_uploads_coalesces_into_one_restart() {
    let edge = Edge::start();
    let uploads = 6;
    std::thread::scope(|scope| {
        for i in 0..uploads {
            let edge = &edge;
            scope.spawn(move || {
                let (status, body) =
                    edge.deploy(&format!("w{i}"), &fixture("hello.js"), json!([]), None);
                assert_eq!(status, 200, "{body}");
            });
        }
    });
    for i in 0..uploads {
        assert_eq!(edge.call(&format!("w{i}"), "/").1, "hello from the edge");
    }
    let log = std::fs::read_to_string(edge.state_dir().join("edge.log")).unwrap();
    let restarts = log.matches("cfdo edge: workerd (pid").count();
    eprintln!("{restarts} workerd starts for {uploads} uploads");
    assert!(
        // Typically one; two allows for a request delayed past the first restart.
        restarts <= 2,
        "{restarts} workerd starts for {uploads} uploads:\n{log}"
    );
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    let edge = Edge::start_with(&["--rate-limit", "5/60"]);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let response = edge
            .raw()
            .get(edge.account_url("/workers/scripts"))
            .bearer_auth(&edge.token)
            .send()
            .unwrap();
        statuses.push(response.status().as_u16());
        if let Some(value) = response.headers().get("retry-after") {
            retry_after = value.to_str().ok().and_then(|v| v.parse::<u64>().ok());
        }
    }
    // `cfdo edge start` and `env` read files and the health check, outside the limit.
    assert_eq!(statuses, [200, 200, 200, 200, 200]);
    let (status, body) = edge.get("/workers/scripts");
    assert_eq!((status, code(&body)), (429, 971), "{body}");
    let response = edge
        .raw()
        .get(edge.account_url("/workers/scripts"))
        .bearer_auth(&edge.token)
        .send()
        .unwrap();
    retry_after = retry_after.or_else(|| {
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok())
    });
    let wait = retry_after.expect("Retry-After header");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
}

#[test]
fn fail_rate_one_answers_every_call_with_a_500_envelope() {
    let edge = Edge::start_with(&["--fail-rate", "1.0"]);
    let (status, body) = edge.get("/workers/scripts");
    assert_eq!(status, 500);
    assert_eq!(body["success"], false);
    assert!(body["errors"][0]["code"].as_i64().is_some());
}

#[test]
fn latency_is_added_to_every_api_call() {
    let edge = Edge::start_with(&["--latency-ms", "300"]);
    let started = std::time::Instant::now();
    let (status, _) = edge.get("/workers/scripts");
    assert_eq!(status, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}

#[test]
fn the_connection_never_shows_its_token() {
    let edge = Edge::start();
    let location = cfdo::cli::EdgeLocation {
        state_dir: Some(edge.state_dir().to_path_buf()),
        port: None,
    };
    let conn = cfdo::edge::ensure_running(&location, true).unwrap();
    let shown = format!("{conn:?}");
    assert!(!shown.contains(&edge.token), "{shown}");
    assert!(shown.contains(&edge.api), "{shown}");
}

#[test]
fn a_script_whose_port_was_taken_moves_to_a_free_one_at_start() {
    let mut edge = Edge::start();
    let (status, _) = edge.deploy("hello", &fixture("hello.js"), json!([]), None);
    assert_eq!(status, 200);
    let old_url = edge.worker_url("hello");
    let port: u16 = old_url.rsplit(':').next().unwrap().parse().unwrap();
    edge.stop();
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the port");
    edge.restart();
    let new_url = edge.worker_url("hello");
    assert_ne!(new_url, old_url);
    assert_eq!(
        edge.call("hello", "/"),
        (200, "hello from the edge".to_string())
    );
}

#[test]
fn a_killed_edge_takes_workerd_with_it_and_restarts_with_its_data() {
    let mut edge = Edge::start();
    let (status, body) = edge.deploy(
        "host",
        &fixture("shared-counter/host.js"),
        json!([do_binding("COUNTER", "SharedCounter", None)]),
        Some(new_sqlite("v1", None, &["SharedCounter"])),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(edge.call_json("host", "/increment"), json!({"count": 1}));
    let url = edge.worker_url("host");
    let server: Value =
        serde_json::from_slice(&std::fs::read(edge.state_dir().join("server.json")).unwrap())
            .unwrap();
    let pid = server["pid"].as_i64().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while reqwest::blocking::get(format!("{url}/get")).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "workerd outlived its edge"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    edge.restart();
    assert_eq!(edge.call_json("host", "/get"), json!({"count": 1}));
}

#[test]
fn concurrent_starts_share_one_edge() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        std::process::Command::new(edge_support::cfdo_bin())
            .args(["--json", "edge", "start", "--port", "0", "--state-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(start);
        let b = scope.spawn(start);
        (a.join().unwrap(), b.join().unwrap())
    });
    let stop = std::process::Command::new(edge_support::cfdo_bin())
        .args(["edge", "stop", "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(a.status.success(), "{a:?}");
    assert!(b.status.success(), "{b:?}");
    let a: Value = serde_json::from_slice(&a.stdout).unwrap();
    let b: Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(a["api"], b["api"]);
    assert_eq!(a["pid"], b["pid"]);
    assert!(stop.status.success());
}

#[test]
fn an_inherit_binding_keeps_the_deployed_value() {
    let edge = Edge::start();
    let bindings = json!([{"type": "secret_text", "name": "API_KEY", "text": "kept"}]);
    let (status, _) = edge.deploy("echo", &fixture("bindings.js"), bindings, None);
    assert_eq!(status, 200);
    let (status, body) = edge.deploy(
        "echo",
        &fixture("bindings.js"),
        json!([{"type": "inherit", "name": "API_KEY"}]),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(edge.call_json("echo", "/")["secret"], "kept");
}

#[test]
fn secrets_are_put_listed_and_deleted_without_an_upload() {
    let edge = Edge::start();
    let (status, _) = edge.deploy("echo", &fixture("bindings.js"), json!([]), None);
    assert_eq!(status, 200);
    let url = edge.account_url("/workers/scripts/echo/secrets");
    let response = edge
        .raw()
        .put(&url)
        .bearer_auth(&edge.token)
        .json(&json!({"name": "API_KEY", "text": "s3cret", "type": "secret_text"}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(edge.call_json("echo", "/")["secret"], "s3cret");
    let (_, list) = edge.get("/workers/scripts/echo/secrets");
    assert_eq!(
        list["result"],
        json!([{"name": "API_KEY", "type": "secret_text"}])
    );
    let (status, _) = edge.delete("/workers/scripts/echo/secrets/API_KEY");
    assert_eq!(status, 200);
    assert_eq!(edge.call_json("echo", "/")["secret"], Value::Null);
}

#[test]
fn worker_ports_come_from_outside_the_ephemeral_range() {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let bounds: Vec<u16> = range
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let edge = Edge::start();
    for name in ["one", "two", "three"] {
        let (status, body) = edge.deploy(name, &fixture("hello.js"), json!([]), None);
        assert_eq!(status, 200, "{body}");
    }
    let status = edge.status_json();
    for (name, url) in status["workers"].as_object().unwrap() {
        let port: u16 = url
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // Ports the system hands out for port 0 (to any other program) are never a Worker's.
        if bounds[0] > 12000 {
            assert!(
                !(bounds[0]..=bounds[1]).contains(&port),
                "{name} on {port}, inside {range}"
            );
        }
        assert_eq!(edge.call(name, "/").1, "hello from the edge");
    }
}

#[test]
fn logs_of_a_state_directory_that_never_ran_an_edge_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(edge_support::cfdo_bin())
        .args(["edge", "logs", "--state-dir"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no edge has run with this state directory"),
        "{err}"
    );
}
