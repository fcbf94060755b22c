//! Finds the names an ES module exports by scanning its text, as the edge
//! needs to know which Durable Object classes an uploaded script exports
//! (`export class X`, `export { A as X }`, esbuild's closing `export { A, B as C };`,
//! and `export * from "./other.js"` followed into the other uploaded modules).

use std::collections::{BTreeMap, BTreeSet};

/// The names exported by `main`, following `export * from` into `modules`
/// (module name -> text). `default` is included when present.
pub fn exported_names(main: &str, modules: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    collect(main, modules, &mut names, &mut seen, 0);
    names
}

fn collect(
    module: &str,
    modules: &BTreeMap<String, String>,
    names: &mut BTreeSet<String>,
    seen: &mut BTreeSet<String>,
    depth: usize,
) {
    if depth > 16 || !seen.insert(module.to_string()) {
        return;
    }
    let Some(text) = modules.get(module) else {
        return;
    };
    let text = strip_comments(text);
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find("export") {
        let start = from + found;
        let end = start + "export".len();
        from = end;
        if start > 0 && (is_ident_byte(bytes[start - 1]) || bytes[start - 1] == b'.') {
            continue;
        }
        if end < bytes.len() && is_ident_byte(bytes[end]) {
            continue;
        }
        let rest = text[end..].trim_start();
        if let Some(after) = rest.strip_prefix('{') {
            let Some(close) = after.find('}') else {
                continue;
            };
            for item in after[..close].split(',') {
                let words: Vec<&str> = item.split_whitespace().collect();
                let name = match words.as_slice() {
                    [] => continue,
                    ["type", ..] if words.len() > 1 => continue,
                    [.., "as", alias] => *alias,
                    [name, ..] => *name,
                };
                let name = name.trim_matches(|c| c == '"' || c == '\'');
                if !name.is_empty() {
                    names.insert(name.to_string());
                }
            }
            continue;
        }
        if let Some(after) = rest.strip_prefix('*') {
            let after = after.trim_start();
            if let Some(alias) = after.strip_prefix("as") {
                if let Some(name) = ident(alias.trim_start()) {
                    names.insert(name.to_string());
                }
            } else if let Some(spec) = after.strip_prefix("from")
                && let Some(target) = quoted(spec.trim_start())
            {
                let resolved = resolve(module, target);
                collect(&resolved, modules, names, seen, depth + 1);
            }
            continue;
        }
        let mut words = rest;
        for keyword in ["default", "async", "abstract"] {
            if let Some(after) = strip_word(words, keyword) {
                if keyword == "default" {
                    names.insert("default".to_string());
                    break;
                }
                words = after;
            }
        }
        if words.starts_with("default") {
            continue;
        }
        for keyword in ["class", "function", "const", "let", "var"] {
            if let Some(after) = strip_word(words, keyword) {
                let after = after.trim_start().trim_start_matches('*').trim_start();
                if let Some(name) = ident(after) {
                    names.insert(name.to_string());
                }
                break;
            }
        }
    }
}

fn strip_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let after = text.strip_prefix(word)?;
    match after.bytes().next() {
        Some(b) if is_ident_byte(b) => None,
        _ => Some(after.trim_start()),
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn ident(text: &str) -> Option<&str> {
    let end = text
        .bytes()
        .position(|b| !is_ident_byte(b))
        .unwrap_or(text.len());
    (end > 0).then(|| &text[..end])
}

fn quoted(text: &str) -> Option<&str> {
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &text[1..];
    rest.find(quote).map(|end| &rest[..end])
}

/// Resolves a relative specifier against the importing module's name.
fn resolve(importer: &str, specifier: &str) -> String {
    if !specifier.starts_with('.') {
        return specifier.to_string();
    }
    let mut parts: Vec<&str> = importer.split('/').collect();
    parts.pop();
    for part in specifier.split('/') {
        match part {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// Removes block comments and whole-line `//` comments (enough for export scanning).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find("*/") {
            Some(end) => rest = &rest[start + 2 + end + 2..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(main: &str) -> Vec<String> {
        let modules = BTreeMap::from([("index.js".to_string(), main.to_string())]);
        exported_names("index.js", &modules).into_iter().collect()
    }

    #[test]
    fn finds_classes_and_default() {
        assert_eq!(
            names("export class Counter extends DurableObject {}\nexport default { fetch() {} }"),
            vec!["Counter", "default"]
        );
    }

    #[test]
    fn finds_esbuild_export_list() {
        assert_eq!(
            names(
                "var A = class {};\nvar index_default = {};\nexport {\n  A,\n  B as C,\n  index_default as default\n};\n"
            ),
            vec!["A", "C", "default"]
        );
    }

    #[test]
    fn ignores_comments_and_identifiers_containing_export() {
        assert_eq!(
            names(
                "// export class Old {}\n/* export class Gone {} */\nconst reexport = 1;\nexport class Live {}"
            ),
            vec!["Live"]
        );
    }

    #[test]
    fn follows_export_star_into_other_modules() {
        let modules = BTreeMap::from([
            (
                "src/index.js".to_string(),
                "export * from './objects/counter.js';\nexport default {}".to_string(),
            ),
            (
                "src/objects/counter.js".to_string(),
                "export class Counter {}".to_string(),
            ),
        ]);
        let found: Vec<String> = exported_names("src/index.js", &modules)
            .into_iter()
            .collect();
        assert_eq!(found, vec!["Counter", "default"]);
    }
}
