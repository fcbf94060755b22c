//! Output renderers: the human plan (colour, symbols) and JSON lines. Every
//! JSON event goes out through [`json_line`], which adds the event schema
//! version (docs/json-events.md); the commands build each event's fields
//! where they know them. Nothing else in cfdo formats plans.

use std::io::Write;

use crate::plan::{Action, Change, ChangeSet};

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

/// Prints text on stdout. A reader that went away is not an error: `apply`
/// and `destroy` go on changing the account (and finish their work) when
/// their output is no longer read.
pub fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A duration as people read it: `420 ms` under a second, `3.2s` above.
pub fn duration(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// ANSI styles used by the human renderer.
#[derive(Debug, Clone, Copy)]
pub enum Style {
    Green,
    Yellow,
    Red,
    RedBold,
    Cyan,
    Bold,
    Dim,
}

/// Wraps `text` in the style's ANSI codes when colour is on.
pub fn paint(style: Style, text: &str, colour: bool) -> String {
    if !colour {
        return text.to_string();
    }
    let code = match style {
        Style::Green => "32",
        Style::Yellow => "33",
        Style::Red => "31",
        Style::RedBold => "1;31",
        Style::Cyan => "36",
        Style::Bold => "1",
        Style::Dim => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

fn action_style(action: Action) -> Style {
    match action {
        Action::Create => Style::Green,
        Action::Update | Action::Adopt => Style::Yellow,
        Action::Delete => Style::Red,
        Action::NoOp => Style::Dim,
    }
}

/// The migration as one line per kind of step.
pub fn migration_lines(change: &Change) -> Vec<String> {
    let Some(m) = &change.migration else {
        return Vec::new();
    };
    let tag = match (&m.old_tag, &m.new_tag) {
        (Some(old), Some(new)) => format!("{old} -> {new}"),
        (None, Some(new)) => format!("(none) -> {new}"),
        _ => String::new(),
    };
    let mut lines = Vec::new();
    for step in &m.steps {
        if !step.new_sqlite_classes.is_empty() {
            lines.push(format!(
                "new SQLite class {}",
                step.new_sqlite_classes.join(", ")
            ));
        }
        if !step.new_classes.is_empty() {
            lines.push(format!(
                "new key-value class {}",
                step.new_classes.join(", ")
            ));
        }
        for r in &step.renamed_classes {
            lines.push(format!("rename class {} -> {} (data kept)", r.from, r.to));
        }
        for t in &step.transferred_classes {
            lines.push(format!(
                "transfer class {} from {} (data kept)",
                t.to, t.from_script
            ));
        }
        if !step.deleted_classes.is_empty() {
            lines.push(format!("delete class {}", step.deleted_classes.join(", ")));
        }
    }
    lines
        .into_iter()
        .map(|l| format!("migration {tag}: {l}"))
        .collect()
}

/// The human plan: one block per changed script, then the closing counts.
pub fn plan_text(changes: &ChangeSet, colour: bool) -> String {
    let mut out = String::new();
    let env = changes
        .env
        .as_deref()
        .map(|e| format!(" (env {e})"))
        .unwrap_or_default();
    let what = if changes.destroy { "destroy" } else { "plan" };
    out.push_str(&format!(
        "{} for stack {}{env}\n",
        paint(Style::Bold, what, colour),
        changes.stack
    ));
    let mut unchanged = Vec::new();
    for change in &changes.changes {
        if change.is_noop() {
            unchanged.push(change.script.as_str());
            continue;
        }
        let symbol = change.action.symbol();
        let head = match &change.worker {
            Some(key) if key != &change.script => format!(
                "{symbol} {} (worker {key}) will be {}",
                change.script,
                change.action.past_tense()
            ),
            _ => format!(
                "{symbol} {} will be {}",
                change.script,
                change.action.past_tense()
            ),
        };
        out.push('\n');
        out.push_str(&format!(
            "  {}\n",
            paint(action_style(change.action), &head, colour)
        ));
        let width = change
            .fields
            .iter()
            .map(|f| f.field.len())
            .max()
            .unwrap_or(0);
        for f in &change.fields {
            let (sym, text) = match (&f.before, &f.after) {
                (None, Some(after)) => ("+", after.clone()),
                (Some(before), None) => ("-", before.clone()),
                (Some(before), Some(after)) => ("~", format!("{before} -> {after}")),
                (None, None) => (" ", String::new()),
            };
            let line = format!("{sym} {:<width$} = {text}", f.field);
            let style = match sym {
                "+" => Style::Green,
                "-" => Style::Red,
                _ => Style::Yellow,
            };
            out.push_str(&format!("      {}\n", paint(style, &line, colour)));
        }
        for line in migration_lines(change) {
            out.push_str(&format!("      {}\n", paint(Style::Cyan, &line, colour)));
        }
        for note in &change.notes {
            out.push_str(&format!("      note: {note}\n"));
        }
        for drift in &change.drift {
            out.push_str(&format!(
                "      {}\n",
                paint(Style::Yellow, &format!("drift: {drift}"), colour)
            ));
        }
        for loss in &change.data_loss {
            out.push_str(&format!(
                "      {}\n",
                paint(Style::RedBold, &format!("DATA LOSS: {loss}"), colour)
            ));
        }
    }
    if !unchanged.is_empty() {
        out.push_str(&format!(
            "\n  {}\n",
            paint(
                Style::Dim,
                &format!("unchanged: {}", unchanged.join(", ")),
                colour
            )
        ));
        for change in changes.changes.iter().filter(|c| c.is_noop()) {
            for note in &change.notes {
                out.push_str(&format!("      note: {}: {note}\n", change.script));
            }
        }
    }
    out.push('\n');
    out.push_str(&plan_summary_text(changes, colour));
    out
}

/// The plan's closing lines: the counts (or that nothing changes) and any data loss.
pub fn plan_summary_text(changes: &ChangeSet, colour: bool) -> String {
    let mut out = String::new();
    let s = changes.summary();
    if changes.has_changes() {
        out.push_str(&format!(
            "Plan: {} to add, {} to change, {} to destroy.\n",
            s.add, s.change, s.destroy
        ));
    } else if changes.destroy {
        out.push_str(&format!(
            "Nothing to destroy: the account holds no script of stack {}.\n",
            changes.stack
        ));
    } else {
        out.push_str("No changes. The account matches the manifest.\n");
    }
    if s.data_loss && !changes.destroy {
        out.push_str(&paint(
            Style::RedBold,
            "This plan destroys stored Durable Object data: apply goes ahead only with --allow-data-loss.\n",
            colour,
        ));
    }
    out
}

/// The plan as JSON events: one `plan_change` per script, then `plan_summary`.
pub fn plan_json(changes: &ChangeSet) {
    for change in &changes.changes {
        let mut event = serde_json::to_value(change).unwrap_or_default();
        if let Some(map) = event.as_object_mut() {
            map.insert("type".into(), "plan_change".into());
        }
        json_line(&event);
    }
    let s = changes.summary();
    json_line(&serde_json::json!({
        "type": "plan_summary",
        "stack": changes.stack,
        "destroy": changes.destroy,
        "add": s.add,
        "change": s.change,
        "destroy_count": s.destroy,
        "data_loss": s.data_loss,
        "changes_present": changes.has_changes(),
    }));
}
