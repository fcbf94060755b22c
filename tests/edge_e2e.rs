//! End to end through a real edge and a real workerd: the shared-counter
//! example's host and client, uploaded through the API, keep their count
//! across calls, scripts and an edge restart.

mod edge_support;

use edge_support::{Edge, do_binding, fixture, new_sqlite};
use serde_json::json;

#[test]
fn shared_counter_counts_across_scripts_and_survives_an_edge_restart() {
    let mut edge = Edge::start();
    let host = fixture("shared-counter/host.js");
    let client = fixture("shared-counter/client.js");

    let (status, body) = edge.deploy(
        "counter-host",
        &host,
        json!([do_binding("COUNTER", "SharedCounter", None)]),
        Some(new_sqlite("v1", None, &["SharedCounter"])),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["migration_tag"], "v1");
    let (status, body) = edge.deploy(
        "counter-client",
        &client,
        json!([do_binding("COUNTER", "SharedCounter", Some("counter-host"))]),
        None,
    );
    assert_eq!(status, 200, "{body}");

    for expected in 1..=3 {
        assert_eq!(
            edge.call_json("counter-client", "/increment"),
            json!({"count": expected})
        );
    }
    assert_eq!(edge.call_json("counter-host", "/get"), json!({"count": 3}));

    let client_url = edge.worker_url("counter-client");
    edge.restart();
    assert_eq!(edge.call_json("counter-host", "/get"), json!({"count": 3}));
    assert_eq!(
        edge.call_json("counter-client", "/get"),
        json!({"count": 3})
    );
    assert_eq!(
        edge.worker_url("counter-client"),
        client_url,
        "worker URLs are stable"
    );
}
