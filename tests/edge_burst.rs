//! Bursts of concurrent uploads to the edge: they share trial starts and
//! workerd restarts, yet each upload gets its own verdict, its own port, and
//! is served once `/cfdo/health` reports every change served.

mod edge_support;

use std::time::{Duration, Instant};

use edge_support::{Edge, code, message};
use serde_json::{Value, json};

const DEFER: &str = "cfdo-edge-defer-serving";

fn upload(edge: &Edge, script: &str, source: &str, defer: bool) -> (u16, Value) {
    let metadata =
        json!({"main_module": "index.js", "compatibility_date": "2026-01-01", "bindings": []});
    let form = reqwest::blocking::multipart::Form::new()
        .part(
            "metadata",
            reqwest::blocking::multipart::Part::text(metadata.to_string())
                .mime_str("application/json")
                .expect("mime"),
        )
        .part(
            "index.js",
            reqwest::blocking::multipart::Part::text(source.to_string())
                .file_name("index.js")
                .mime_str("application/javascript+module")
                .expect("mime"),
        );
    let mut request = edge
        .raw()
        .put(edge.account_url(&format!("/workers/scripts/{script}")))
        .bearer_auth(&edge.token)
        .multipart(form);
    if defer {
        request = request.header(DEFER, "1");
    }
    let response = request.send().expect("upload");
    let status = response.status().as_u16();
    (status, response.json().expect("JSON answer"))
}

fn health(edge: &Edge) -> Value {
    let base = edge.api.trim_end_matches("/client/v4");
    edge.raw()
        .get(format!("{base}/cfdo/health"))
        .send()
        .expect("health")
        .json()
        .expect("health JSON")
}

fn wait_served(edge: &Edge) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = health(edge);
        let (wanted, served) = (
            h["wanted_generation"].as_u64().expect("wanted_generation"),
            h["served_generation"].as_u64().expect("served_generation"),
        );
        if served >= wanted {
            return;
        }
        assert!(Instant::now() < deadline, "never served: {h}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_burst_of_uploads_gets_one_verdict_each_and_every_good_script_is_served() {
    let edge = Edge::start();
    let scripts: Vec<(String, bool)> = (0..12)
        .map(|i| (format!("burst-{i:02}"), i % 5 != 3))
        .collect();
    let answers: Vec<(String, bool, u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = scripts
            .iter()
            .enumerate()
            .map(|(i, (name, good))| {
                let edge = &edge;
                scope.spawn(move || {
                    let source = if *good {
                        format!(
                            "export default {{ fetch() {{ return new Response(\"{name}\"); }} }};"
                        )
                    } else {
                        format!(
                            "throw new Error(\"{name} refuses to start\");\nexport default {{}};"
                        )
                    };
                    let (status, body) = upload(edge, name, &source, i % 2 == 0);
                    (name.clone(), *good, status, body)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("uploader"))
            .collect()
    });
    for (name, good, status, body) in &answers {
        if *good {
            assert_eq!(*status, 200, "{name}: {body}");
        } else {
            assert_eq!((*status, code(body)), (400, 10021), "{name}: {body}");
            assert!(
                message(body).contains(&format!("{name} refuses to start")),
                "{name} gets its own workerd message: {body}"
            );
        }
    }
    wait_served(&edge);
    let status = edge.status_json();
    let workers = status["workers"].as_object().expect("workers");
    let good: Vec<&String> = scripts.iter().filter(|(_, g)| *g).map(|(n, _)| n).collect();
    assert_eq!(
        workers.keys().collect::<Vec<_>>(),
        good,
        "only the scripts that started are deployed"
    );
    let mut ports: Vec<&str> = workers.values().filter_map(Value::as_str).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), good.len(), "every script has its own port");
    for name in good {
        assert_eq!(edge.call(name, "/"), (200, name.clone()));
    }
}

#[test]
fn a_deferred_upload_asks_for_a_new_generation_and_a_plain_one_is_served_when_answered() {
    let edge = Edge::start();
    let generation =
        |h: &Value, field: &str| h[field].as_u64().unwrap_or_else(|| panic!("{field}: {h}"));
    let before = generation(&health(&edge), "wanted_generation");
    let (status, body) = upload(
        &edge,
        "later",
        "export default { fetch() { return new Response(\"later\"); } };",
        true,
    );
    assert_eq!(status, 200, "{body}");
    let after = health(&edge);
    assert!(
        generation(&after, "wanted_generation") > before,
        "the deferred change asks for a generation after {before}: {after}"
    );
    wait_served(&edge);
    assert_eq!(edge.call("later", "/"), (200, "later".to_string()));

    // Without the header the answer waits until workerd serves the change.
    let (status, body) = upload(
        &edge,
        "now",
        "export default { fetch() { return new Response(\"now\"); } };",
        false,
    );
    assert_eq!(status, 200, "{body}");
    let h = health(&edge);
    assert!(
        generation(&h, "served_generation") >= generation(&h, "wanted_generation"),
        "served when answered: {h}"
    );
    assert_eq!(edge.call("now", "/"), (200, "now".to_string()));
}
