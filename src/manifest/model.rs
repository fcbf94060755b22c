//! The validated manifest model, built from the raw TOML types: environment
//! overlays applied, `${VAR}` expanded, every reference resolved, and every
//! problem collected with its span.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::Value;
use toml::Spanned;

use super::diagnostic::Problem;
use super::raw::{RawBinding, RawManifest, RawWorkerOverlay};

/// A validated manifest for one environment.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file as named on the command line.
    pub path: PathBuf,
    /// The directory relative paths resolve against (absolute).
    pub dir: PathBuf,
    /// The manifest's text, for diagnostics raised after loading.
    pub text: String,
    pub stack: String,
    pub account_id: Option<String>,
    pub env: Option<String>,
    /// Workers, sorted by key.
    pub workers: Vec<Worker>,
    /// Durable Object namespaces, sorted by key.
    pub namespaces: Vec<NamespaceDecl>,
}

/// One worker, with its environment applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    pub key: String,
    /// The script name on Cloudflare (environment suffix included).
    pub script: String,
    /// Absolute path of the entrypoint.
    pub main: PathBuf,
    pub compatibility_date: String,
    pub compatibility_flags: Vec<String>,
    pub workers_dev: bool,
    pub no_bundle: bool,
    pub build: Option<String>,
    /// Bindings, sorted by name.
    pub bindings: Vec<WorkerBinding>,
    /// The span of the worker's key in the manifest.
    pub span: Range<usize>,
    /// The span of its `main` value.
    pub main_span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerBinding {
    pub name: String,
    pub kind: BindingKind,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BindingKind {
    /// The key of a namespace in this manifest.
    DurableObject {
        namespace: String,
    },
    Service {
        target: ScriptRef,
    },
    Text(String),
    Json(Value),
    /// The environment variable the secret's value is read from at apply time.
    Secret {
        env_var: String,
    },
}

/// A script in the manifest (by worker key) or outside it (by script name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScriptRef {
    Worker(String),
    Outside(String),
}

/// One Durable Object namespace declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceDecl {
    pub key: String,
    pub class_name: String,
    pub host: ScriptRef,
    pub sqlite: bool,
    pub renamed_from: Option<String>,
    pub transferred_from: Option<String>,
    pub protect: bool,
    /// The span of the namespace's key, and of its `class_name` value.
    pub span: Range<usize>,
    pub class_span: Range<usize>,
}

impl Manifest {
    pub fn worker(&self, key: &str) -> Option<&Worker> {
        self.workers.iter().find(|w| w.key == key)
    }

    pub fn worker_by_script(&self, script: &str) -> Option<&Worker> {
        self.workers.iter().find(|w| w.script == script)
    }

    pub fn namespace(&self, key: &str) -> Option<&NamespaceDecl> {
        self.namespaces.iter().find(|n| n.key == key)
    }

    /// The script name a reference stands for in this environment.
    pub fn script_name(&self, reference: &ScriptRef) -> String {
        match reference {
            ScriptRef::Worker(key) => self
                .worker(key)
                .map(|w| w.script.clone())
                .unwrap_or_else(|| key.clone()),
            ScriptRef::Outside(script) => script.clone(),
        }
    }

    /// Namespaces hosted by the given worker key.
    pub fn hosted_by<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a NamespaceDecl> + 'a {
        self.namespaces
            .iter()
            .filter(move |n| n.host == ScriptRef::Worker(key.to_string()))
    }

    /// The name cfdo shows for this manifest in diagnostics.
    pub fn display_name(&self) -> String {
        self.path.display().to_string()
    }

    /// Diagnostics against this manifest's text, for problems found after loading.
    pub fn errors(&self, problems: Vec<Problem>) -> super::ManifestErrors {
        super::ManifestErrors::new(&self.display_name(), &self.text, problems)
    }
}

/// The key under which TOML date-times reach a JSON value.
const TOML_DATETIME_FIELD: &str = "$__toml_private_datetime";

/// A reference by script name (`{ service = "…" }`, `script = "…"`) to a
/// worker of this manifest, which must be named by its key.
fn own_script_named(script: &str, key: &str, write: &str, span: Range<usize>) -> Problem {
    Problem::new(
        format!("`{script}` is the script of worker `{key}` of this manifest"),
        span,
        "a worker of this manifest",
    )
    .help(format!(
        "refer to it by its key: `{write} = \"{key}\"` (a key also follows --env to the environment's script)"
    ))
}

/// Is `name` a valid Cloudflare script name: lowercase letters, digits and dashes, at most 63 characters?
pub fn valid_script_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Is `name` a valid JavaScript identifier (ASCII subset) that is not a reserved word?
pub fn valid_js_identifier(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "default",
        "delete",
        "do",
        "else",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "import",
        "in",
        "instanceof",
        "new",
        "null",
        "return",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "yield",
        "let",
        "static",
        "enum",
        "await",
        "implements",
        "package",
        "protected",
        "interface",
        "private",
        "public",
    ];
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_' || first == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && !RESERVED.contains(&name)
}

/// Whether `date` is a calendar date written `YYYY-MM-DD`.
pub(super) fn valid_date(date: &str) -> bool {
    let b = date.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && date[5..7].parse::<u8>().ok().and_then(|m| time::Month::try_from(m).ok()).is_some_and(|month| {
            let year = date[..4].parse::<i32>().unwrap_or(0);
            matches!(date[8..10].parse::<u8>(), Ok(day) if day >= 1 && day <= month.length(year))
        })
}

/// Builds the model from the raw manifest, collecting every problem.
pub(super) struct Builder<'a> {
    pub raw: &'a RawManifest,
    pub dir: &'a Path,
    pub env_name: Option<&'a str>,
    pub lookup_var: &'a dyn Fn(&str) -> Option<String>,
    pub problems: Vec<Problem>,
}

/// The closest of `candidates` to `name`, if close enough to be a likely typo.
pub fn closest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(distance, c)| {
            *distance <= 2.max(c.len() / 3) && *distance < c.len().max(name.len())
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

fn did_you_mean<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    match closest(name, candidates) {
        Some(c) => format!("did you mean `{c}`? If not, "),
        None => String::new(),
    }
}

impl<'a> Builder<'a> {
    fn problem(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// Expands `${VAR}` in a string value (`$${` is a literal `${`); an unset
    /// variable is a problem naming it.
    fn expand(&mut self, value: &Spanned<String>) -> String {
        let text = value.get_ref();
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${") {
            // `$${` is a literal `${`.
            if rest[..start].ends_with('$') {
                out.push_str(&rest[..start - 1]);
                out.push_str("${");
                rest = &rest[start + 2..];
                continue;
            }
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                self.problem(
                    Problem::new("unclosed `${` in a string value", value.span(), "`${` without a closing `}`")
                        .help("write `${NAME}` to insert the environment variable NAME, or `$${` for a literal `${`"),
                );
                return text.clone();
            };
            let var = &after[..end];
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                self.problem(
                    Problem::new(
                        format!("`${{{var}}}` is not a valid variable reference"),
                        value.span(),
                        "invalid variable name",
                    )
                    .help("variable names use letters, digits and underscores, e.g. `${API_HOST}`"),
                );
            } else {
                match (self.lookup_var)(var) {
                    Some(v) => out.push_str(&v),
                    None => self.problem(
                        Problem::new(format!("environment variable `{var}` is not set (or not valid UTF-8)"), value.span(), format!("uses `${{{var}}}`"))
                            .help(format!("set {var} in the environment cfdo runs in, or write the value in the manifest")),
                    ),
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Expands like `expand`, but `None` when that found a problem (an unset or
    /// invalid variable), so a check of the value does not report it again.
    fn expand_checked(&mut self, value: &Spanned<String>) -> Option<String> {
        let before = self.problems.len();
        let out = self.expand(value);
        (self.problems.len() == before).then_some(out)
    }

    fn expand_opt(&mut self, value: &Option<Spanned<String>>) -> Option<String> {
        value.as_ref().map(|v| self.expand(v))
    }

    fn check_date(&mut self, value: &Spanned<String>, date: &str) {
        if !valid_date(date) {
            self.problem(
                Problem::new(
                    format!("`{date}` is not a compatibility date"),
                    value.span(),
                    "expected YYYY-MM-DD",
                )
                .help("write a date such as \"2026-11-01\""),
            );
        }
    }

    fn flags(&mut self, flags: &Spanned<Vec<Spanned<String>>>) -> Vec<String> {
        flags.get_ref().iter().map(|f| self.expand(f)).collect()
    }

    pub fn build(
        &mut self,
    ) -> (
        Option<String>,
        Option<String>,
        Vec<Worker>,
        Vec<NamespaceDecl>,
    ) {
        let raw = self.raw;
        let stack = self.expand(&raw.stack.get_ref().name);
        let stack_name_span = raw.stack.get_ref().name.span();
        if !valid_script_name(&stack) {
            self.problem(
                Problem::new(
                    format!("`{stack}` is not a valid stack name"),
                    stack_name_span,
                    "invalid stack name",
                )
                .help("use lowercase letters, digits and dashes (at most 63 characters)"),
            );
        }

        // The environment overlay, if one was asked for.
        let env = match self.env_name {
            None => None,
            Some(name) => match raw.env.iter().find(|(k, _)| k.get_ref() == name) {
                Some((_, env)) => Some(env.get_ref()),
                None => {
                    let known: Vec<&str> = raw.env.keys().map(|k| k.get_ref().as_str()).collect();
                    let help = if known.is_empty() {
                        "the manifest has no [env.<name>] sections; add one or drop --env"
                            .to_string()
                    } else {
                        format!(
                            "{}environments in this manifest: {}",
                            did_you_mean(name, known.iter().copied()),
                            known.join(", ")
                        )
                    };
                    self.problem(
                        Problem::new(
                            format!(
                                "environment `{name}` (from --env) is not defined in this manifest"
                            ),
                            0..0,
                            "",
                        )
                        .help(help),
                    );
                    None
                }
            },
        };
        let suffix = match (env, self.env_name) {
            (Some(env), _) if env.name_suffix.is_some() => {
                self.expand_opt(&env.name_suffix).unwrap_or_default()
            }
            (Some(_), Some(name)) => format!("-{name}"),
            _ => String::new(),
        };

        let stack_raw = raw.stack.get_ref();
        let account_id = match env.and_then(|e| e.account_id.as_ref()) {
            Some(id) => Some(self.expand(id)),
            None => self.expand_opt(&stack_raw.account_id),
        };
        let default_date = env
            .and_then(|e| e.compatibility_date.as_ref())
            .or(stack_raw.compatibility_date.as_ref());
        let default_date = default_date.map(|d| (d, self.expand(d)));
        if let Some((span, date)) = &default_date {
            self.check_date(span, date);
        }
        let default_flags = match env
            .and_then(|e| e.compatibility_flags.as_ref())
            .or(stack_raw.compatibility_flags.as_ref())
        {
            Some(f) => self.flags(f),
            None => Vec::new(),
        };
        // The environment's vars go to every worker: their names are checked once.
        let mut env_vars: Vec<(Spanned<String>, String)> = Vec::new();
        for (k, v) in env.iter().flat_map(|e| &e.vars) {
            if self.binding_name_ok(k) {
                let value = self.expand(v);
                env_vars.push((k.clone(), value));
            }
        }

        let worker_keys: BTreeSet<&str> =
            raw.workers.keys().map(|k| k.get_ref().as_str()).collect();
        let namespace_keys: BTreeSet<&str> = raw
            .durable_objects
            .keys()
            .map(|k| k.get_ref().as_str())
            .collect();

        // The script names of this manifest's workers, by worker key, with and
        // without the environment's suffix: a reference by script name to one
        // of them is a mistake (it would not follow `--env`).
        let own_scripts: BTreeMap<String, String> = raw
            .workers
            .iter()
            .filter_map(|(key, w)| {
                let base = match &w.get_ref().name {
                    Some(name) if name.get_ref().contains('$') => return None,
                    Some(name) => name.get_ref().clone(),
                    None => key.get_ref().clone(),
                };
                Some([
                    (format!("{base}{suffix}"), key.get_ref().clone()),
                    (base, key.get_ref().clone()),
                ])
            })
            .flatten()
            .filter(|(script, _)| !worker_keys.contains(script.as_str()))
            .collect();

        // Overlays naming workers that do not exist.
        if let Some(env) = env {
            for key in env.workers.keys() {
                if !worker_keys.contains(key.get_ref().as_str()) {
                    self.problem(
                        Problem::new(
                            format!(
                                "environment overlay names worker `{}`, which is not defined",
                                key.get_ref()
                            ),
                            key.span(),
                            "no such worker",
                        )
                        .help(format!(
                            "{}define [workers.{}] or remove this overlay",
                            did_you_mean(key.get_ref(), worker_keys.iter().copied()),
                            key.get_ref()
                        )),
                    );
                }
            }
        }

        let mut workers = Vec::new();
        let mut scripts_seen: BTreeMap<String, String> = BTreeMap::new();
        for (key, worker) in &raw.workers {
            let key_str = key.get_ref().clone();
            let w = worker.get_ref();
            let overlay: Option<&RawWorkerOverlay> = env
                .and_then(|e| e.workers.iter().find(|(k, _)| k.get_ref() == &key_str))
                .map(|(_, o)| o.get_ref());

            // `None`: the name uses a variable that is not set (already reported).
            let (script, script_span) = match overlay.and_then(|o| o.name.as_ref()) {
                Some(name) => (self.expand_checked(name), name.span()),
                None => match &w.name {
                    Some(name) => (
                        self.expand_checked(name).map(|n| format!("{n}{suffix}")),
                        name.span(),
                    ),
                    None => (Some(format!("{key_str}{suffix}")), key.span()),
                },
            };
            let script_known = script.is_some();
            let script = script.unwrap_or_default();
            if !script_known {
                // Reported as the unset variable; the name itself is unknown.
            } else if !valid_script_name(&script) {
                self.problem(
                    Problem::new(format!("`{script}` is not a valid script name"), script_span.clone(), "invalid script name")
                        .help("script names use lowercase letters, digits and dashes, at most 63 characters; set `name = \"...\"` on the worker"),
                );
            } else if let Some(other) = scripts_seen.insert(script.clone(), key_str.clone()) {
                self.problem(
                    Problem::new(
                        format!(
                            "workers `{other}` and `{key_str}` both deploy as script `{script}`"
                        ),
                        script_span.clone(),
                        "duplicate script name",
                    )
                    .help("give one of them a different `name`"),
                );
            }

            let main_rel = self.expand(&w.main);
            let main = self.dir.join(&main_rel);
            if !main_rel.is_empty() && w.build.is_none() && main.exists() && !main.is_file() {
                self.problem(
                    Problem::new(
                        format!("entrypoint `{main_rel}` of worker `{key_str}` is not a file"),
                        w.main.span(),
                        "not a file",
                    )
                    .help("`main` names the worker's entry module, e.g. \"src/index.ts\""),
                );
            } else if !main_rel.is_empty() && w.build.is_none() && !main.is_file() {
                self.problem(
                    Problem::new(format!("entrypoint `{main_rel}` of worker `{key_str}` does not exist"), w.main.span(), "no such file")
                        .help(format!("`main` is relative to the manifest's directory ({}); create the file or fix the path", self.dir.display())),
                );
            } else if main_rel.is_empty() {
                self.problem(
                    Problem::new(
                        format!("worker `{key_str}` has an empty `main`"),
                        w.main.span(),
                        "empty path",
                    )
                    .help("set `main` to the worker's entrypoint, e.g. \"src/index.ts\""),
                );
            }

            let date = match overlay
                .and_then(|o| o.compatibility_date.as_ref())
                .or(w.compatibility_date.as_ref())
            {
                Some(d) => {
                    let date = self.expand(d);
                    self.check_date(d, &date);
                    date
                }
                None => match &default_date {
                    Some((_, d)) => d.clone(),
                    None => {
                        self.problem(
                            Problem::new(format!("worker `{key_str}` has no compatibility date"), key.span(), "no compatibility_date")
                                .help("set `compatibility_date = \"YYYY-MM-DD\"` in [stack] (for every worker) or on this worker"),
                        );
                        String::new()
                    }
                },
            };
            let flags = match overlay
                .and_then(|o| o.compatibility_flags.as_ref())
                .or(w.compatibility_flags.as_ref())
            {
                Some(f) => self.flags(f),
                None => default_flags.clone(),
            };
            let workers_dev = overlay
                .and_then(|o| o.workers_dev.as_ref())
                .or(w.workers_dev.as_ref())
                .map(|b| *b.get_ref())
                .unwrap_or(false);

            // Bindings: the worker's own, then the environment's vars, then the overlay's.
            let mut bindings: BTreeMap<String, WorkerBinding> = BTreeMap::new();
            for (name, binding) in &w.bindings {
                if let Some(b) = self.binding(
                    &key_str,
                    name,
                    binding,
                    &worker_keys,
                    &namespace_keys,
                    &own_scripts,
                ) {
                    bindings.insert(b.name.clone(), b);
                }
            }
            for (name, value) in &env_vars {
                bindings.insert(
                    name.get_ref().clone(),
                    WorkerBinding {
                        name: name.get_ref().clone(),
                        kind: BindingKind::Text(value.clone()),
                        span: name.span(),
                    },
                );
            }
            if let Some(o) = overlay {
                for (name, value) in &o.vars {
                    let text = self.expand(value);
                    if self.binding_name_ok(name) {
                        bindings.insert(
                            name.get_ref().clone(),
                            WorkerBinding {
                                name: name.get_ref().clone(),
                                kind: BindingKind::Text(text),
                                span: name.span(),
                            },
                        );
                    }
                }
                for (name, binding) in &o.bindings {
                    if let Some(b) = self.binding(
                        &key_str,
                        name,
                        binding,
                        &worker_keys,
                        &namespace_keys,
                        &own_scripts,
                    ) {
                        bindings.insert(b.name.clone(), b);
                    }
                }
            }

            workers.push(Worker {
                key: key_str,
                script,
                main,
                compatibility_date: date,
                compatibility_flags: flags,
                workers_dev,
                no_bundle: w.no_bundle.as_ref().map(|b| *b.get_ref()).unwrap_or(false),
                build: self.expand_opt(&w.build),
                bindings: bindings.into_values().collect(),
                span: key.span(),
                main_span: w.main.span(),
            });
        }

        let mut namespaces = Vec::new();
        let mut classes_seen: BTreeMap<(ScriptRef, String), String> = BTreeMap::new();
        for (key, ns) in &raw.durable_objects {
            let key_str = key.get_ref().clone();
            let n = ns.get_ref();
            let class_name = self.expand(&n.class_name);
            if !valid_js_identifier(&class_name) {
                self.problem(
                    Problem::new(format!("`{class_name}` is not a valid class name"), n.class_name.span(), "not a JavaScript identifier")
                        .help("class_name must be the name of a class the worker's code exports, e.g. \"Counter\""),
                );
            }
            let host = match (&n.worker, &n.script) {
                (Some(worker), None) => {
                    let w = worker.get_ref();
                    if !worker_keys.contains(w.as_str()) {
                        self.problem(
                            Problem::new(format!("namespace `{key_str}` is hosted by worker `{w}`, which is not defined"), worker.span(), "no such worker")
                                .help(format!(
                                    "{}`worker` names a [workers.<key>] of this manifest; for a script outside it, write `script = \"<name>\"`",
                                    did_you_mean(w, worker_keys.iter().copied())
                                )),
                        );
                    }
                    Some(ScriptRef::Worker(w.clone()))
                }
                (None, Some(script)) => {
                    let expanded = self.expand_checked(script);
                    let s = expanded.clone().unwrap_or_default();
                    if let Some(key) = own_scripts.get(&s) {
                        self.problem(own_script_named(&s, key, "worker", script.span()));
                    }
                    if expanded.is_some() && !valid_script_name(&s) {
                        self.problem(
                            Problem::new(format!("`{s}` is not a valid script name"), script.span(), "invalid script name")
                                .help("script names use lowercase letters, digits and dashes, at most 63 characters"),
                        );
                    }
                    Some(ScriptRef::Outside(s))
                }
                (Some(worker), Some(_)) => {
                    self.problem(
                        Problem::new(format!("namespace `{key_str}` sets both `worker` and `script`"), worker.span(), "only one host")
                            .help("`worker` names a worker of this manifest, `script` a script outside it: keep one"),
                    );
                    None
                }
                (None, None) => {
                    self.problem(
                        Problem::new(format!("namespace `{key_str}` has no host"), key.span(), "missing `worker` or `script`")
                            .help("add `worker = \"<worker key>\"` (a worker of this manifest whose code exports the class) or `script = \"<script name>\"`"),
                    );
                    None
                }
            };
            let renamed_from = self.expand_opt(&n.renamed_from);
            if let (Some(from), Some(span)) = (&renamed_from, &n.renamed_from) {
                if !valid_js_identifier(from) {
                    self.problem(Problem::new(
                        format!("`{from}` is not a valid class name"),
                        span.span(),
                        "not a JavaScript identifier",
                    ));
                } else if from == &class_name {
                    self.problem(
                        Problem::new(
                            "a class cannot be renamed from its own name",
                            span.span(),
                            "same as class_name",
                        )
                        .help("remove `renamed_from` once the rename has been applied"),
                    );
                }
            }
            let transferred_from = self.expand_opt(&n.transferred_from);
            if let (Some(from), Some(span)) = (&transferred_from, &n.transferred_from) {
                let from_script = worker_keys
                    .get(from.as_str())
                    .map(|_| from.clone())
                    .unwrap_or_else(|| from.clone());
                if !valid_script_name(&from_script) {
                    self.problem(Problem::new(
                        format!("`{from}` is not a valid script name"),
                        span.span(),
                        "invalid script name",
                    ));
                }
                if renamed_from.is_some() {
                    self.problem(
                        Problem::new(
                            format!("namespace `{key_str}` is both renamed and transferred"),
                            span.span(),
                            "one lifecycle change at a time",
                        )
                        .help("apply the transfer first, then the rename in a later apply"),
                    );
                }
            }
            if let Some(host) = host {
                if let Some(other) =
                    classes_seen.insert((host.clone(), class_name.clone()), key_str.clone())
                {
                    self.problem(
                        Problem::new(format!("namespaces `{other}` and `{key_str}` declare the same class `{class_name}` on the same host"), n.class_name.span(), "duplicate class")
                            .help("one namespace per class: bind the same namespace key from every worker that needs it"),
                    );
                }
                namespaces.push(NamespaceDecl {
                    key: key_str,
                    class_name,
                    host,
                    sqlite: n.sqlite.as_ref().map(|b| *b.get_ref()).unwrap_or(true),
                    renamed_from,
                    transferred_from,
                    protect: n.protect.as_ref().map(|b| *b.get_ref()).unwrap_or(false),
                    span: key.span(),
                    class_span: n.class_name.span(),
                });
            }
        }
        // A class renamed away cannot also stay, under its old name, on the same host.
        for d in &namespaces {
            let Some(from) = &d.renamed_from else {
                continue;
            };
            if let Some(other) = namespaces
                .iter()
                .find(|o| o.host == d.host && &o.class_name == from)
            {
                self.problem(
                    Problem::new(
                        format!("namespace `{}` is renamed from `{from}`, which namespace `{}` still declares on the same host", d.key, other.key),
                        d.span.clone(),
                        "renamed from a class that stays",
                    )
                    .help(format!("a rename moves `{from}`'s data to `{}`: remove namespace `{}`, or drop `renamed_from` to create `{}` empty", d.class_name, other.key, d.class_name)),
                );
            }
        }
        (Some(stack), account_id, workers, namespaces)
    }

    fn binding_name_ok(&mut self, name: &Spanned<String>) -> bool {
        if valid_js_identifier(name.get_ref()) {
            return true;
        }
        self.problem(
            Problem::new(format!("`{}` is not a valid binding name", name.get_ref()), name.span(), "not a JavaScript identifier")
                .help("binding names are how the code reads them (`env.NAME`): letters, digits, `_` and `$`, not starting with a digit"),
        );
        false
    }

    fn binding(
        &mut self,
        worker: &str,
        name: &Spanned<String>,
        binding: &Spanned<RawBinding>,
        worker_keys: &BTreeSet<&str>,
        namespace_keys: &BTreeSet<&str>,
        own_scripts: &BTreeMap<String, String>,
    ) -> Option<WorkerBinding> {
        let name_ok = self.binding_name_ok(name);
        let b = binding.get_ref();
        let set = [
            b.durable_object.is_some(),
            b.service.is_some(),
            b.text.is_some(),
            b.json.is_some(),
            b.secret.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if set != 1 {
            self.problem(
                Problem::new(
                    format!("binding `{}` of worker `{worker}` must have exactly one kind", name.get_ref()),
                    binding.span(),
                    if set == 0 { "no kind given" } else { "more than one kind" },
                )
                .help("write one of: { durable_object = \"<namespace key>\" }, { service = \"<worker>\" }, { text = \"...\" }, { json = ... }, { secret = \"ENV_VAR\" }"),
            );
            return None;
        }
        let kind = if let Some(ns) = &b.durable_object {
            let key = ns.get_ref();
            if !namespace_keys.contains(key.as_str()) {
                self.problem(
                    Problem::new(format!("binding `{}` refers to namespace `{key}`, which is not defined", name.get_ref()), ns.span(), "no such namespace")
                        .help(format!(
                            "{}declare it under [durable_objects.{key}] with `class_name` and its hosting `worker` (or `script`)",
                            did_you_mean(key, namespace_keys.iter().copied())
                        )),
                );
            }
            BindingKind::DurableObject {
                namespace: key.clone(),
            }
        } else if let Some(service) = &b.service {
            let target = self.expand(service);
            if worker_keys.contains(target.as_str()) {
                BindingKind::Service {
                    target: ScriptRef::Worker(target),
                }
            } else if let Some(key) = own_scripts.get(&target) {
                self.problem(own_script_named(&target, key, "service", service.span()));
                BindingKind::Service {
                    target: ScriptRef::Worker(key.clone()),
                }
            } else if let Some(close) = closest(&target, worker_keys.iter().copied()) {
                self.problem(
                    Problem::new(format!("binding `{}` refers to service `{target}`, which is not a worker of this manifest", name.get_ref()), service.span(), "no such worker")
                        .help(format!("did you mean `{close}`? A script outside the manifest must exist in the account under that exact name")),
                );
                BindingKind::Service {
                    target: ScriptRef::Outside(target),
                }
            } else if !valid_script_name(&target) {
                self.problem(
                    Problem::new(format!("binding `{}` refers to service `{target}`, which is neither a worker of this manifest nor a valid script name", name.get_ref()), service.span(), "no such worker")
                        .help(format!("workers in this manifest: {}", worker_keys.iter().copied().collect::<Vec<_>>().join(", "))),
                );
                BindingKind::Service {
                    target: ScriptRef::Outside(target),
                }
            } else {
                BindingKind::Service {
                    target: ScriptRef::Outside(target),
                }
            }
        } else if let Some(text) = &b.text {
            BindingKind::Text(self.expand(text))
        } else if let Some(json) = &b.json {
            let mut value = json.get_ref().clone();
            self.expand_json(&mut value, json.span());
            BindingKind::Json(value)
        } else if let Some(secret) = &b.secret {
            let var = secret.get_ref();
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                self.problem(
                    Problem::new(format!("`{var}` is not an environment variable name"), secret.span(), "invalid variable name")
                        .help("`secret` names the environment variable that holds the value at apply time, e.g. { secret = \"API_KEY\" }"),
                );
            }
            BindingKind::Secret {
                env_var: var.clone(),
            }
        } else {
            return None;
        };
        name_ok.then(|| WorkerBinding {
            name: name.get_ref().clone(),
            kind,
            span: name.span(),
        })
    }

    fn expand_json(&mut self, value: &mut Value, span: Range<usize>) {
        match value {
            Value::String(s) if s.contains("${") => {
                *s = self.expand(&Spanned::new(span, s.clone()));
            }
            // TOML has no null: a null here was a float JSON cannot hold.
            Value::Null => self.problem(
                Problem::new(
                    "a `json` value holds nan or inf, which JSON cannot represent",
                    span,
                    "not JSON",
                )
                .help("use a number, or a string such as \"inf\" that the worker interprets"),
            ),
            Value::Object(map) if map.len() == 1 && map.contains_key(TOML_DATETIME_FIELD) => self
                .problem(
                    Problem::new(
                        "a `json` value holds a TOML date-time, which JSON has no type for",
                        span,
                        "not JSON",
                    )
                    .help("quote it to send it as a string, e.g. \"1979-05-27T07:32:00Z\""),
                ),
            Value::Array(items) => items
                .iter_mut()
                .for_each(|v| self.expand_json(v, span.clone())),
            Value::Object(map) => map
                .values_mut()
                .for_each(|v| self.expand_json(v, span.clone())),
            _ => {}
        }
    }
}
