//! The manifest: TOML text to a validated model, with spans for diagnostics.
//! `load` reads a file; `parse` takes text, so tests and fuzzers need no files.

pub mod diagnostic;
pub mod model;
pub mod raw;

use std::path::Path;

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use serde_json::Value;
use toml::de::{DeTable, DeValue};

pub use diagnostic::{ManifestErrors, Problem};
pub use model::{BindingKind, Manifest, NamespaceDecl, ScriptRef, Worker, WorkerBinding};

/// Reads and validates the manifest at `path` for the given environment.
pub fn load(path: &Path, env: Option<&str>) -> Result<Manifest> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let help = if e.kind() == std::io::ErrorKind::NotFound {
            "run cfdo in the stack's directory, or name the manifest with -f/--manifest"
        } else {
            "check the file's permissions"
        };
        miette!(help = help, "cannot read manifest {}: {e}", path.display())
    })?;
    let dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    let dir = std::path::absolute(dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot resolve the directory of {}", path.display()))?;
    parse(&text, path, &dir, env, &|name| std::env::var(name).ok()).map_err(miette::Report::new)
}

/// Validates the manifest once more for each `[env.NAME]` it declares, so
/// that checking it without `--env` covers every environment too. All their
/// problems come in one report, each naming its environment.
pub fn check_environments(base: &Manifest) -> Result<()> {
    let names: Vec<String> = toml::from_str::<toml::Table>(&base.text)
        .ok()
        .and_then(|t| {
            t.get("env")
                .and_then(|e| e.as_table())
                .map(|e| e.keys().cloned().collect())
        })
        .unwrap_or_default();
    let mut problems: Vec<Problem> = Vec::new();
    for name in names {
        if let Err(errors) = parse(&base.text, &base.path, &base.dir, Some(&name), &|var| {
            std::env::var(var).ok()
        }) {
            for report in errors.problems {
                let mut problem = report.problem;
                problem.message = format!("with --env {name}: {}", problem.message);
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.sort_by_key(|p| p.span.start);
        Err(miette::Report::new(base.errors(problems)))
    }
}

/// Validates manifest text. `path` names it in diagnostics; `dir` resolves
/// relative paths; `lookup_var` supplies `${VAR}` values.
pub fn parse(
    text: &str,
    path: &Path,
    dir: &Path,
    env: Option<&str>,
    lookup_var: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<Manifest, ManifestErrors> {
    let name = path.display().to_string();
    let fail = |problems: Vec<Problem>| ManifestErrors::new(&name, text, problems);

    // Syntax first: nothing else can be checked in a file that does not parse.
    let document = match DeTable::parse(text) {
        Ok(document) => document,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim();
            let problem = if message.starts_with("duplicate key") {
                let key = text.get(span.clone()).unwrap_or("").trim_matches('"');
                Problem::new(format!("`{key}` is declared twice in the same table"), span, "declared again here")
                    .help("each key (binding names included) may appear once per table: remove or rename one")
            } else {
                Problem::new(format!("invalid TOML: {message}"), span, "here")
                    .help("fix the TOML syntax; see https://toml.io for the format")
            };
            return Err(fail(vec![problem]));
        }
    };

    // Shape: unknown keys (all of them, checked against the schema) and wrong types (the first one).
    let schema = raw::schema();
    let mut problems = Vec::new();
    unknown_keys(document.get_ref(), &schema, &mut Vec::new(), &mut problems);
    let raw: raw::RawManifest = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim().to_string();
            let written = text.get(span.clone()).unwrap_or("").trim();
            // An unquoted date is a TOML date-time, which reaches serde as a map.
            let date = written.get(..10).is_some_and(model::valid_date);
            let (message, help) = if date && message.contains("expected a string") {
                (
                    format!("`{written}` is a TOML date, and this value must be a string"),
                    format!("quote it: \"{written}\""),
                )
            } else if message.starts_with("missing field") {
                (message, "add the missing key; the manifest reference in docs/manifest.md lists every key".to_string())
            } else {
                (
                    message,
                    "give the value the type the manifest reference (docs/manifest.md) says"
                        .to_string(),
                )
            };
            problems.push(Problem::new(message.clone(), span, short_label(&message)).help(help));
            problems.sort_by_key(|p| p.span.start);
            return Err(fail(problems));
        }
    };

    let mut builder = model::Builder {
        raw: &raw,
        dir,
        env_name: env,
        lookup_var,
        problems,
    };
    let (stack, account_id, workers, namespaces) = builder.build();
    let mut problems = builder.problems;

    let manifest = Manifest {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        text: text.to_string(),
        stack: stack.unwrap_or_default(),
        account_id,
        env: env.map(str::to_string),
        workers,
        namespaces,
    };
    if problems.is_empty()
        && let Err(cycle) = crate::graph::Graph::new(&manifest)
    {
        problems.push(cycle);
    }
    if problems.is_empty() {
        Ok(manifest)
    } else {
        problems.sort_by_key(|p| p.span.start);
        Err(fail(problems))
    }
}

fn short_label(message: &str) -> String {
    if message.starts_with("missing field") {
        "missing key".to_string()
    } else if message.starts_with("invalid type") {
        "wrong type".to_string()
    } else {
        "here".to_string()
    }
}

/// Reports every key of `table` (at `path`) that the schema does not allow, recursively.
fn unknown_keys(
    table: &DeTable,
    schema: &Value,
    path: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) {
    let Some(node) = schema_at(schema, path) else {
        return;
    };
    if node.get("properties").is_none()
        && !node
            .get("additionalProperties")
            .is_some_and(Value::is_object)
    {
        return; // free-form value, such as a `json` binding
    }
    let known: Vec<&str> = node
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let open_map = node
        .get("additionalProperties")
        .is_some_and(Value::is_object);
    for (key, value) in table {
        let key_name = key.get_ref().to_string();
        if !open_map && !known.contains(&key_name.as_str()) {
            let location = if path.is_empty() {
                String::new()
            } else {
                format!(" in [{}]", path.join("."))
            };
            let help = match model::closest(&key_name, known.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None if known.is_empty() => "remove it".to_string(),
                None => format!("known keys here: {}", known.join(", ")),
            };
            problems.push(
                Problem::new(
                    format!("unknown key `{key_name}`{location}"),
                    key.span(),
                    "unknown key",
                )
                .help(help),
            );
            continue;
        }
        if let DeValue::Table(inner) = value.get_ref() {
            path.push(key_name);
            unknown_keys(inner, schema, path, problems);
            path.pop();
        }
    }
}

/// The schema node of the table `segments` names (references resolved).
/// Borrowed, never cloned: it is looked up once per table of the manifest.
fn schema_at<'a>(schema: &'a Value, segments: &[String]) -> Option<&'a Value> {
    let definitions = schema.get("$defs");
    let resolve = |node: &'a Value| -> Option<&'a Value> {
        let mut node = node;
        for _ in 0..8 {
            if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
                let name = reference.rsplit('/').next()?;
                node = definitions?.get(name)?;
            } else if let Some(any) = node.get("anyOf").and_then(Value::as_array) {
                node = any
                    .iter()
                    .find(|v| v.get("type") != Some(&Value::from("null")))?;
            } else {
                return Some(node);
            }
        }
        None
    };
    let mut node = resolve(schema)?;
    for segment in segments {
        let next = node
            .get("properties")
            .and_then(|p| p.get(segment.as_str()))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
        node = resolve(next)?;
    }
    Some(node)
}
