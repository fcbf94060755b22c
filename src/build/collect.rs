//! `no_bundle` workers: the entrypoint and every module it reaches through
//! relative imports, uploaded as they are, named relative to the
//! entrypoint's directory.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::Path;

use miette::{IntoDiagnostic, Result, WrapErr, miette};

use super::BuildInput;
use super::scan::{ModuleScan, ReExport, scan_module};
use crate::cloudflare::types::{ESM_CONTENT_TYPE, Module};

pub(super) struct Collected {
    pub main_module: String,
    pub modules: Vec<Module>,
    pub exports: BTreeSet<String>,
}

/// The upload content type for a module file, by extension.
fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    Some(match ext.as_str() {
        "js" | "mjs" => ESM_CONTENT_TYPE,
        "cjs" => "application/javascript",
        "wasm" => "application/wasm",
        "txt" | "html" => "text/plain",
        "bin" => "application/octet-stream",
        _ => return None,
    })
}

fn is_javascript(name: &str) -> bool {
    content_type(name).is_some_and(|t| t.starts_with("application/javascript"))
}

/// `dir/of/importer` joined with a relative specifier, `.` and `..` folded;
/// `None` if it climbs above the entrypoint's directory.
fn join_relative(importer: &str, specifier: &str) -> Option<String> {
    let mut parts: Vec<&str> = importer.split('/').collect();
    parts.pop();
    let path = specifier.split(['?', '#']).next().unwrap_or(specifier);
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

fn is_relative(specifier: &str) -> bool {
    specifier.starts_with("./") || specifier.starts_with("../")
}

pub(super) fn collect(input: &BuildInput) -> Result<Collected> {
    let worker = &input.worker;
    let base = input.main.parent().unwrap_or(Path::new("."));
    let main_module = input
        .main
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !is_javascript(&main_module) {
        return Err(miette!(
            help = "set `no_bundle = false` to let cfdo bundle (and compile TypeScript), or point `main` at a .js/.mjs module",
            "worker `{worker}`: with `no_bundle = true` the entrypoint must be a JavaScript module, not {}",
            input.main.display()
        ));
    }

    let mut modules: Vec<Module> = Vec::new();
    let mut scans: HashMap<String, ModuleScan> = HashMap::new();
    let mut queue: VecDeque<(String, Option<String>)> = VecDeque::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    queue.push_back((main_module.clone(), None));
    seen.insert(main_module.clone());
    while let Some((name, importer)) = queue.pop_front() {
        let path = base.join(&name);
        let from = || match &importer {
            Some(importer) => format!(" (imported by {importer})"),
            None => String::new(),
        };
        let Some(kind) = content_type(&name) else {
            return Err(miette!(
                help = "no_bundle uploads .js, .mjs, .cjs, .wasm, .txt, .html and .bin modules; bundle the worker to use other kinds",
                "worker `{worker}`: module {name}{} has a type cfdo cannot upload as it is",
                from()
            ));
        };
        let content = std::fs::read(&path).into_diagnostic().wrap_err_with(|| {
            format!(
                "worker `{worker}`: cannot read module {name}{} at {}",
                from(),
                path.display()
            )
        })?;
        if is_javascript(&name) {
            let source = String::from_utf8_lossy(&content);
            let scan = scan_module(&source);
            for specifier in &scan.specifiers {
                if !is_relative(specifier) {
                    continue;
                }
                let Some(target) = join_relative(&name, specifier) else {
                    return Err(miette!(
                        help = "with no_bundle, every module must live in the entrypoint's directory or below it",
                        "worker `{worker}`: {name} imports \"{specifier}\", which lies outside {}",
                        base.display()
                    ));
                };
                if seen.insert(target.clone()) {
                    queue.push_back((target, Some(name.clone())));
                }
            }
            scans.insert(name.clone(), scan);
        }
        modules.push(Module {
            name,
            content_type: kind.to_string(),
            content,
        });
    }
    // The entrypoint came first; the rest in a stable order.
    modules[1..].sort_by(|a, b| a.name.cmp(&b.name));
    let exports = exported_classes_across(&scans, &main_module);
    Ok(Collected {
        main_module,
        modules,
        exports,
    })
}

/// The classes the module `main` exports, following relative re-exports into
/// the other modules of an upload (module name -> source text).
pub fn exported_classes_of_modules(
    main: &str,
    modules: &std::collections::BTreeMap<String, String>,
) -> BTreeSet<String> {
    let scans: HashMap<String, ModuleScan> = modules
        .iter()
        .map(|(name, text)| (name.clone(), scan_module(text)))
        .collect();
    exported_classes_across(&scans, main)
}

/// The classes `module` exports, following relative re-exports and
/// re-exported imports into the other collected modules.
fn exported_classes_across(scans: &HashMap<String, ModuleScan>, module: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let Some(scan) = scans.get(module) else {
        return found;
    };
    for (local, exported) in scan.local_exports() {
        if exported == "default" {
            continue;
        }
        if is_class_in(scans, module, local, 0) {
            found.insert(exported.clone());
        }
    }
    for reexport in &scan.reexports {
        match reexport {
            ReExport::Named {
                specifier,
                imported,
                exported,
            } if exported != "default" && is_relative(specifier) => {
                if let Some(target) = join_relative(module, specifier)
                    && exported_class_named(scans, &target, imported, 1)
                {
                    found.insert(exported.clone());
                }
            }
            ReExport::Star { specifier } if is_relative(specifier) => {
                if let Some(target) = join_relative(module, specifier) {
                    found.extend(star_classes(scans, &target, 1));
                }
            }
            _ => {}
        }
    }
    found
}

const MAX_DEPTH: usize = 32;

/// Whether the local name `local` in `module` is a class, declared there or
/// imported from another collected module.
fn is_class_in(
    scans: &HashMap<String, ModuleScan>,
    module: &str,
    local: &str,
    depth: usize,
) -> bool {
    let Some(scan) = scans.get(module) else {
        return false;
    };
    if scan.is_local_class(local) {
        return true;
    }
    let target_name = scan.resolve_alias(local);
    match scan.named_imports.get(target_name) {
        Some((specifier, imported)) if is_relative(specifier) && depth < MAX_DEPTH => {
            join_relative(module, specifier)
                .is_some_and(|target| exported_class_named(scans, &target, imported, depth + 1))
        }
        _ => false,
    }
}

/// Whether `module` exports a class under the name `name`.
fn exported_class_named(
    scans: &HashMap<String, ModuleScan>,
    module: &str,
    name: &str,
    depth: usize,
) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let Some(scan) = scans.get(module) else {
        return false;
    };
    if scan
        .local_exports()
        .iter()
        .any(|(local, exported)| exported == name && is_class_in(scans, module, local, depth))
    {
        return true;
    }
    scan.reexports.iter().any(|reexport| match reexport {
        ReExport::Named {
            specifier,
            imported,
            exported,
        } if exported == name && is_relative(specifier) => join_relative(module, specifier)
            .is_some_and(|target| exported_class_named(scans, &target, imported, depth + 1)),
        ReExport::Star { specifier } if name != "default" && is_relative(specifier) => {
            join_relative(module, specifier)
                .is_some_and(|target| exported_class_named(scans, &target, name, depth + 1))
        }
        _ => false,
    })
}

/// The class names `export * from module` brings.
fn star_classes(
    scans: &HashMap<String, ModuleScan>,
    module: &str,
    depth: usize,
) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    if depth > MAX_DEPTH {
        return found;
    }
    let Some(scan) = scans.get(module) else {
        return found;
    };
    let mut names: BTreeSet<&str> = scan
        .local_exports()
        .iter()
        .map(|(_, exported)| exported.as_str())
        .collect();
    for reexport in &scan.reexports {
        match reexport {
            ReExport::Named { exported, .. } => {
                names.insert(exported);
            }
            ReExport::Star { specifier } if is_relative(specifier) => {
                if let Some(target) = join_relative(module, specifier) {
                    found.extend(star_classes(scans, &target, depth + 1));
                }
            }
            _ => {}
        }
    }
    for name in names {
        if name != "default" && exported_class_named(scans, module, name, depth) {
            found.insert(name.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_joins() {
        assert_eq!(join_relative("index.js", "./a.js").as_deref(), Some("a.js"));
        assert_eq!(
            join_relative("lib/x.js", "../a.js").as_deref(),
            Some("a.js")
        );
        assert_eq!(
            join_relative("lib/x.js", "./deep/b.mjs?v=1").as_deref(),
            Some("lib/deep/b.mjs")
        );
        assert_eq!(join_relative("index.js", "../outside.js"), None);
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("a.js"), Some(ESM_CONTENT_TYPE));
        assert_eq!(content_type("a.mjs"), Some(ESM_CONTENT_TYPE));
        assert_eq!(content_type("a.wasm"), Some("application/wasm"));
        assert_eq!(content_type("a.txt"), Some("text/plain"));
        assert_eq!(content_type("a.html"), Some("text/plain"));
        assert_eq!(content_type("a.bin"), Some("application/octet-stream"));
        assert_eq!(content_type("a.ts"), None);
    }
}
