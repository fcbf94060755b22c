//! Output renderers: human text and JSON lines. Every JSON line carries a
//! `type` and the event schema version.

use std::io::Write;

/// The version of the JSON event schema (docs/json-events.md).
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// Prints one JSON event on stdout, adding the schema version.
pub fn json_line(event: &serde_json::Value) {
    let mut event = event.clone();
    if let Some(map) = event.as_object_mut() {
        map.insert("version".to_string(), JSON_SCHEMA_VERSION.into());
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{event}");
    let _ = out.flush();
}
