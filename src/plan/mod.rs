//! Plans: the account's snapshot against the manifest (and the built code)
//! to a ChangeSet, with the Durable Object lifecycle derived, data loss
//! flagged, and problems cfdo can see before calling the API reported
//! against the manifest's lines.

pub mod changeset;
pub mod lifecycle;
pub mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cloudflare::types::{Binding, ScriptInfo, ScriptSettings, Sensitive};
use crate::graph::Graph;
use crate::manifest::{BindingKind, Manifest, Problem, ScriptRef, Worker};

pub use changeset::{Action, Change, ChangeSet, FieldDiff, Fingerprint, Summary};
use snapshot::{
    CODE_TAG, CONFIG_TAG, PROTECT_TAG, SECRETS_TAG, STACK_TAG, Snapshot, WORKERS_DEV_TAG,
    WORKERS_TAG, protected_classes, tag_value,
};

/// What the build step says about one worker's code.
#[derive(Debug, Clone)]
pub struct CodeInfo {
    pub hash: String,
    pub exports: BTreeSet<String>,
    pub entry: PathBuf,
}

/// Where the plan is computed against, for the saved plan.
#[derive(Debug, Clone)]
pub struct PlanTarget {
    pub api: String,
    pub account_id: String,
}

/// The bindings a worker's upload carries, in wire form; secret texts are left out.
pub fn desired_bindings(manifest: &Manifest, worker: &Worker) -> Vec<Binding> {
    worker
        .bindings
        .iter()
        .map(|b| match &b.kind {
            BindingKind::DurableObject { namespace } => {
                let decl = manifest.namespace(namespace);
                let host = decl
                    .map(|d| manifest.script_name(&d.host))
                    .unwrap_or_default();
                Binding::DurableObjectNamespace {
                    name: b.name.clone(),
                    class_name: decl.map(|d| d.class_name.clone()).unwrap_or_default(),
                    script_name: (host != worker.script).then_some(host),
                    namespace_id: None,
                }
            }
            BindingKind::Service { target } => Binding::Service {
                name: b.name.clone(),
                service: manifest.script_name(target),
                environment: None,
            },
            BindingKind::Text(text) => Binding::PlainText {
                name: b.name.clone(),
                text: text.clone(),
            },
            BindingKind::Json(json) => Binding::Json {
                name: b.name.clone(),
                json: json.clone(),
            },
            BindingKind::Secret { .. } => Binding::SecretText {
                name: b.name.clone(),
                text: None,
            },
        })
        .collect()
}

/// A binding as compared and shown: the fields that matter, secrets without value.
fn binding_summary(binding: &Binding, own_script: &str) -> String {
    match binding {
        Binding::DurableObjectNamespace {
            class_name,
            script_name,
            ..
        } => match script_name.as_deref() {
            Some(s) if s != own_script => format!("durable object {class_name} of {s}"),
            _ => format!("durable object {class_name}"),
        },
        Binding::Service { service, .. } => format!("service {service}"),
        Binding::PlainText { text, .. } => format!("text {}", Value::String(text.clone())),
        Binding::SecretText { .. } => "secret (sensitive)".to_string(),
        Binding::Json { json, .. } => format!("json {json}"),
        Binding::Other(v) => format!(
            "{} binding",
            v.get("type").and_then(Value::as_str).unwrap_or("unknown")
        ),
    }
}

fn bindings_map(bindings: &[Binding], own_script: &str) -> BTreeMap<String, String> {
    bindings
        .iter()
        .map(|b| (b.name().to_string(), binding_summary(b, own_script)))
        .collect()
}

/// The hash cfdo tags a script with: its settings as uploaded (secrets by name only).
fn config_hash(
    date: Option<&str>,
    flags: &[String],
    bindings: &BTreeMap<String, String>,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(date.unwrap_or("").as_bytes());
    hasher.update([0]);
    for f in flags {
        hasher.update(f.as_bytes());
        hasher.update([0]);
    }
    for (name, summary) in bindings {
        hasher.update(name.as_bytes());
        hasher.update([1]);
        hasher.update(summary.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// A fingerprint of secret values that does not reveal them. It is published
/// in a script tag and written into saved plans, so each value is first
/// stretched with Argon2id (salted with the stack's name): checking a guess
/// against a fingerprint costs a full Argon2id evaluation.
pub fn secrets_fingerprint(stack: &str, secrets: &BTreeMap<String, Sensitive>) -> Option<String> {
    if secrets.is_empty() {
        return None;
    }
    let mut hasher = Sha256::new();
    hasher.update(b"cfdo secrets v2\0");
    hasher.update(stack.as_bytes());
    for (name, value) in secrets {
        hasher.update([0]);
        hasher.update(name.as_bytes());
        hasher.update([1]);
        hasher.update(stretched_secret(stack, &value.0));
    }
    Some(hex::encode(&hasher.finalize()[..8]))
}

/// Argon2id of one secret value, salted with the stack's name. Stacks bind
/// the same secret in many workers, so each distinct value is stretched once
/// per process.
fn stretched_secret(stack: &str, value: &str) -> [u8; 32] {
    use std::sync::{Mutex, OnceLock};
    static STRETCHED: OnceLock<Mutex<BTreeMap<[u8; 32], [u8; 32]>>> = OnceLock::new();
    // The cache's key is itself a hash, so no value is kept in memory longer than needed.
    let key: [u8; 32] = Sha256::new()
        .chain_update(stack.as_bytes())
        .chain_update([0])
        .chain_update(value.as_bytes())
        .finalize()
        .into();
    let cache = STRETCHED.get_or_init(|| Mutex::new(BTreeMap::new()));
    if let Some(done) = cache.lock().ok().and_then(|c| c.get(&key).copied()) {
        return done;
    }
    let salt: [u8; 32] = Sha256::new()
        .chain_update(b"cfdo secret salt\0")
        .chain_update(stack.as_bytes())
        .finalize()
        .into();
    // 19 MiB, two passes: the interactive-login strength OWASP recommends.
    let params = argon2::Params::new(19 * 1024, 2, 1, Some(32))
        .expect("constant Argon2 parameters are valid");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(value.as_bytes(), &salt, &mut out)
        .expect("Argon2id accepts any password and a 32-byte salt");
    if let Ok(mut c) = cache.lock() {
        c.insert(key, out);
    }
    out
}

/// The owner a stack tags its scripts with: the stack's name, and the environment when
/// one is selected, so that environments of one stack never take each other's scripts.
pub fn owner(manifest: &Manifest) -> String {
    match &manifest.env {
        Some(env) => format!("{}:{env}", manifest.stack),
        None => manifest.stack.clone(),
    }
}

/// A hash of the script names a manifest deploys: which scripts an apply left in the account.
pub fn workers_hash(manifest: &Manifest) -> String {
    let mut names: Vec<&str> = manifest.workers.iter().map(|w| w.script.as_str()).collect();
    names.sort_unstable();
    let mut hasher = Sha256::new();
    for name in names {
        hasher.update(name.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// The tags cfdo sets on a worker's script.
pub fn tags_for(
    stack: &str,
    code_hash: &str,
    config: &str,
    secrets: Option<&str>,
    workers_dev: bool,
    workers: &str,
    protected: &[String],
) -> Vec<String> {
    let mut tags = vec![
        format!("{STACK_TAG}{stack}"),
        format!("{CODE_TAG}{}", &code_hash[..code_hash.len().min(16)]),
        format!("{CONFIG_TAG}{config}"),
        format!("{WORKERS_DEV_TAG}{workers_dev}"),
        format!("{WORKERS_TAG}{workers}"),
    ];
    if let Some(s) = secrets {
        tags.push(format!("{SECRETS_TAG}{s}"));
    }
    if !protected.is_empty() {
        tags.push(format!("{PROTECT_TAG}{}", protected.join("+")));
    }
    tags
}

/// The classes a worker hosts under `protect = true`, sorted.
pub fn protected_by_manifest(manifest: &Manifest, key: &str) -> Vec<String> {
    let mut classes: Vec<String> = manifest
        .hosted_by(key)
        .filter(|d| d.protect)
        .map(|d| d.class_name.clone())
        .collect();
    classes.sort();
    classes.dedup();
    classes
}

/// Everything one worker's upload needs besides its modules.
#[derive(Debug, Clone)]
pub struct DesiredScript {
    pub bindings: Vec<Binding>,
    pub config_hash: String,
    pub secrets: BTreeMap<String, Sensitive>,
    pub secrets_fingerprint: Option<String>,
    /// Secrets whose environment variable is not set: (binding, variable).
    pub unset_secrets: Vec<(String, String)>,
}

/// Computes a worker's desired settings; `secret_value` reads a secret's environment variable.
pub fn desired_script(
    manifest: &Manifest,
    worker: &Worker,
    secret_value: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> DesiredScript {
    let bindings = desired_bindings(manifest, worker);
    let config_hash = config_hash(
        Some(&worker.compatibility_date),
        &worker.compatibility_flags,
        &bindings_map(&bindings, &worker.script),
    );
    let mut secrets = BTreeMap::new();
    let mut unset_secrets = Vec::new();
    for b in &worker.bindings {
        if let BindingKind::Secret { env_var } = &b.kind {
            match secret_value(env_var) {
                Some(v) => {
                    secrets.insert(b.name.clone(), Sensitive(v));
                }
                None => {
                    unset_secrets.push((b.name.clone(), env_var.clone()));
                    problems.push(
                    Problem::new(
                        format!("secret `{}` of worker `{}` reads environment variable `{env_var}`, which is not set (or not valid UTF-8)", b.name, worker.key),
                        b.span.clone(),
                        "secret value missing",
                    )
                    .help(format!("set {env_var} in the environment cfdo runs in (in CI, from the pipeline's secret store)")),
                    );
                }
            }
        }
    }
    let secrets_fingerprint = secrets_fingerprint(&manifest.stack, &secrets);
    DesiredScript {
        bindings,
        config_hash,
        secrets,
        secrets_fingerprint,
        unset_secrets,
    }
}

/// What a saved plan records of a worker's settings, to notice a manifest edited since.
pub fn config_fingerprint(worker: &Worker, desired: &DesiredScript) -> String {
    format!("{} workers_dev={}", desired.config_hash, worker.workers_dev)
}

fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

/// Every class a worker hosts must be exported by its code (docs/failures.md, F10). Needs only the
/// manifest and the build, so it runs before anything calls the API.
pub fn export_problems(manifest: &Manifest, code: &BTreeMap<String, CodeInfo>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for worker in &manifest.workers {
        let Some(built) = code.get(&worker.key) else {
            continue;
        };
        for decl in manifest.hosted_by(&worker.key) {
            if !built.exports.contains(&decl.class_name) {
                let found = if built.exports.is_empty() {
                    "it exports no classes".to_string()
                } else {
                    format!(
                        "it exports {}",
                        built
                            .exports
                            .iter()
                            .map(|c| format!("`{c}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                problems.push(
                    Problem::new(
                        format!(
                            "worker `{}` hosts class `{}`, but its code ({}) does not export it",
                            worker.key,
                            decl.class_name,
                            built.entry.display()
                        ),
                        decl.class_span.clone(),
                        "not exported",
                    )
                    .help(format!(
                        "{found}; export the class from the entrypoint (`export class {} extends DurableObject {{ … }}`) or fix `class_name`",
                        decl.class_name
                    )),
                );
            }
        }
    }
    problems
}

/// Plans the changes that make the account match the manifest.
pub fn plan(
    manifest: &Manifest,
    graph: &Graph,
    code: &BTreeMap<String, CodeInfo>,
    snapshot: &Snapshot,
    target: &PlanTarget,
    secret_value: &dyn Fn(&str) -> Option<String>,
    secrets_required: bool,
) -> Result<ChangeSet, crate::manifest::ManifestErrors> {
    let mut problems = Vec::new();
    let mut changes = Vec::new();
    let mut fingerprints = BTreeMap::new();
    let mut secret_fingerprints = BTreeMap::new();
    let mut config_fingerprints = BTreeMap::new();
    // A script of the manifest missing from the account is drift only when an apply of
    // this very set of workers happened; otherwise the worker is simply new.
    let owner_tag = owner(manifest);
    let workers = workers_hash(manifest);
    let deployed_with_these = snapshot
        .owned_by(&owner_tag)
        .any(|s| tag_value(s, WORKERS_TAG) == Some(workers.as_str()));

    check_references(manifest, snapshot, &mut problems);
    problems.extend(export_problems(manifest, code));
    // Each worker's bindings to classes of other scripts: (script, host, class, span).
    let mut cross_bindings: Vec<(String, String, String, std::ops::Range<usize>)> = Vec::new();

    for worker in &manifest.workers {
        let info = snapshot.scripts.get(&worker.script);
        fingerprints.insert(worker.script.clone(), info.map(Fingerprint::from));
        // Without the values (a plan on a pull request, say) whether a secret
        // changed is unknown, and the plan says so; apply needs them.
        let mut secret_problems = Vec::new();
        let desired = desired_script(manifest, worker, secret_value, &mut secret_problems);
        if secrets_required {
            problems.extend(secret_problems);
        }
        for b in &desired.bindings {
            if let Binding::DurableObjectNamespace {
                name,
                class_name,
                script_name: Some(host),
                ..
            } = b
            {
                let span = worker
                    .bindings
                    .iter()
                    .find(|wb| &wb.name == name)
                    .map_or(worker.span.clone(), |wb| wb.span.clone());
                cross_bindings.push((
                    worker.script.clone(),
                    host.clone(),
                    class_name.clone(),
                    span,
                ));
            }
        }
        if let Some(fp) = &desired.secrets_fingerprint {
            secret_fingerprints.insert(worker.script.clone(), fp.clone());
        }
        config_fingerprints.insert(worker.script.clone(), config_fingerprint(worker, &desired));

        let life = lifecycle::derive(
            manifest,
            &worker.key,
            &worker.script,
            snapshot,
            &mut problems,
        );
        let level = graph.level_of(&worker.key).unwrap_or(0);
        let code_hash = code
            .get(&worker.key)
            .map(|c| c.hash.clone())
            .unwrap_or_default();
        let mut notes: Vec<String> = desired
            .unset_secrets
            .iter()
            .map(|(name, var)| {
                format!("secret `{name}`: {var} is not set here, so whether its value changed is unknown; apply needs it")
            })
            .collect();

        let (action, fields, drift, workers_dev) = match info {
            None => {
                let mut fields = vec![
                    FieldDiff {
                        field: "code".into(),
                        before: None,
                        after: Some(short(&code_hash)),
                    },
                    FieldDiff {
                        field: "compatibility_date".into(),
                        before: None,
                        after: Some(worker.compatibility_date.clone()),
                    },
                ];
                if !worker.compatibility_flags.is_empty() {
                    fields.push(FieldDiff {
                        field: "compatibility_flags".into(),
                        before: None,
                        after: Some(worker.compatibility_flags.join(", ")),
                    });
                }
                for (name, summary) in bindings_map(&desired.bindings, &worker.script) {
                    fields.push(FieldDiff {
                        field: format!("binding {name}"),
                        before: None,
                        after: Some(summary),
                    });
                }
                if worker.workers_dev {
                    fields.push(FieldDiff {
                        field: "workers_dev".into(),
                        before: None,
                        after: Some("true".into()),
                    });
                }
                let drift = if deployed_with_these {
                    vec![format!(
                        "`{}` is missing from the account although the stack was applied with it (deleted outside cfdo, or an earlier apply did not finish); apply creates it again",
                        worker.script
                    )]
                } else {
                    Vec::new()
                };
                (
                    Action::Create,
                    fields,
                    drift,
                    worker.workers_dev.then_some(true),
                )
            }
            Some(info) => {
                let settings = snapshot
                    .settings
                    .get(&worker.script)
                    .cloned()
                    .unwrap_or_default();
                let owner = tag_value(info, STACK_TAG);
                let (mut fields, drift) =
                    diff_script(worker, info, &settings, &desired, &code_hash);
                let remote_protected = protected_classes(info);
                let protected = protected_by_manifest(manifest, &worker.key);
                if remote_protected != protected {
                    let list = |c: &[String]| {
                        if c.is_empty() {
                            "(none)".to_string()
                        } else {
                            c.join(", ")
                        }
                    };
                    fields.push(FieldDiff {
                        field: "protect".into(),
                        before: Some(list(&remote_protected)),
                        after: Some(list(&protected)),
                    });
                }
                let remote_dev = tag_value(info, WORKERS_DEV_TAG).map(|v| v == "true");
                let workers_dev =
                    (remote_dev != Some(worker.workers_dev)).then_some(worker.workers_dev);
                if let Some(after) = workers_dev {
                    fields.push(FieldDiff {
                        field: "workers_dev".into(),
                        before: Some(
                            remote_dev
                                .map(|d| d.to_string())
                                .unwrap_or_else(|| "(unknown)".into()),
                        ),
                        after: Some(after.to_string()),
                    });
                }
                let action = match owner {
                    Some(owner) if owner == owner_tag => {
                        if fields.is_empty() && life.step.is_empty() && workers_dev.is_none() {
                            Action::NoOp
                        } else {
                            Action::Update
                        }
                    }
                    Some(other) => {
                        notes.push(format!("`{}` is owned by stack `{other}`; apply takes it over only with --adopt", worker.script));
                        Action::Adopt
                    }
                    None => {
                        notes.push(format!("`{}` exists but was not deployed by this stack; apply takes it over only with --adopt", worker.script));
                        Action::Adopt
                    }
                };
                (action, fields, drift, workers_dev)
            }
        };
        if action == Action::Adopt {
            for class in &life.adopted {
                notes.push(format!("adopts the existing namespace of class `{class}` (its data is kept; no new-class step)"));
            }
        }
        for class in &life.step.deleted_classes {
            if let Some(problem) =
                protection(manifest, info, &worker.script, class, Some(&worker.span))
            {
                problems.push(problem);
            }
        }
        let old_tag = info.and_then(|i| i.migration_tag.as_deref());
        let has_deletes = !life.step.deleted_classes.is_empty();
        changes.push(Change {
            worker: Some(worker.key.clone()),
            script: worker.script.clone(),
            action,
            // A host deleting classes goes after every client has dropped its bindings.
            phase: usize::from(has_deletes),
            level,
            fields,
            migration: lifecycle::migrations(life.step, old_tag),
            data_loss: life.data_loss,
            drift,
            notes,
            code_hash: Some(code_hash),
            workers_dev,
        });
    }

    // The source of a transfer changes after the destination took the class
    // (until then the source must keep exporting it); along a chain of
    // transfers each source goes after its destination.
    let transfers: Vec<(String, String)> = changes
        .iter()
        .flat_map(|c| {
            c.migration
                .iter()
                .flat_map(|m| &m.steps)
                .flat_map(|st| &st.transferred_classes)
                .map(move |t| (t.from_script.clone(), c.script.clone()))
        })
        .collect();
    for _ in 0..changes.len() {
        let mut moved = false;
        for (source, destination) in &transfers {
            let Some(after) = changes
                .iter()
                .find(|c| &c.script == destination)
                .map(|c| c.phase + 1)
            else {
                continue;
            };
            if let Some(change) = changes
                .iter_mut()
                .find(|c| &c.script == source && c.action != Action::Delete && c.phase < after)
            {
                change.phase = after;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    // From phase 1 on, changes drop bindings before the hosts delete what
    // they bound: clients first, so the dependency levels run backwards.
    let deepest = changes.iter().map(|c| c.level).max().unwrap_or(0);
    for change in changes.iter_mut().filter(|c| c.phase > 0) {
        change.level = deepest - change.level;
    }

    // A binding to a class that a host's upload creates must be sent after
    // that upload. A host that also deletes a class uploads late (its
    // clients drop their bindings first), so a client may come too early.
    for (client, host, class, span) in &cross_bindings {
        let Some(host_change) = changes.iter().find(|c| &c.script == host) else {
            continue;
        };
        let Some(client_change) = changes.iter().find(|c| &c.script == client) else {
            continue;
        };
        let steps = host_change.migration.iter().flat_map(|m| &m.steps);
        let creates = steps.clone().any(|st| {
            st.new_classes.contains(class)
                || st.new_sqlite_classes.contains(class)
                || st.renamed_classes.iter().any(|r| &r.to == class)
                || st.transferred_classes.iter().any(|t| &t.to == class)
        });
        let too_early =
            (client_change.phase, client_change.level) <= (host_change.phase, host_change.level);
        if !creates || !too_early {
            continue;
        }
        let deleted: Vec<String> = steps.flat_map(|st| st.deleted_classes.clone()).collect();
        let problem = if deleted.is_empty() {
            Problem::new(
                format!("`{client}` binds class `{class}`, which `{host}` creates in the upload that follows the transfer of a class out of it; one apply cannot do both"),
                span.clone(),
                "binds a class created after a transfer",
            )
            .help(format!("apply twice: first the transfer, then add `{class}`"))
        } else {
            let listed = deleted.join("`, `");
            let rename = match deleted.as_slice() {
                [one] => {
                    format!("if `{class}` replaces `{one}`, say so with `renamed_from = \"{one}\"`")
                }
                _ => format!(
                    "if `{class}` replaces one of `{listed}`, say so with `renamed_from = \"<that class>\"`"
                ),
            };
            Problem::new(
                format!("`{client}` binds class `{class}`, which `{host}` creates in the same upload that deletes `{listed}`; bindings to a deleted class must go before the delete, and a new class must exist before a binding, so one apply cannot do both"),
                span.clone(),
                "binds a class created with a delete",
            )
            .help(format!("{rename} on its namespace (the data is kept); otherwise apply twice: first remove `{listed}` (with --allow-data-loss), then add `{class}`"))
        };
        problems.push(problem);
    }

    // Scripts the stack owns that the manifest no longer has: deleted, data with them.
    let orphans: Vec<&ScriptInfo> = snapshot
        .owned_by(&owner_tag)
        .filter(|s| manifest.worker_by_script(&s.id).is_none())
        .collect();
    // Classes this plan transfers out of a script (before it is deleted): their data moves, it is not lost.
    let transferred: BTreeSet<(String, String)> = changes
        .iter()
        .filter_map(|c| c.migration.as_ref())
        .flat_map(|m| &m.steps)
        .flat_map(|step| &step.transferred_classes)
        .map(|t| (t.from_script.clone(), t.from.clone()))
        .collect();
    for orphan in orphans {
        // This manifest still naming the script it deletes cannot work.
        for worker in &manifest.workers {
            for b in &worker.bindings {
                let named = match &b.kind {
                    BindingKind::Service {
                        target: ScriptRef::Outside(s),
                    } => s == &orphan.id,
                    BindingKind::DurableObject { namespace } => manifest
                        .namespace(namespace)
                        .is_some_and(|d| d.host == ScriptRef::Outside(orphan.id.clone())),
                    _ => false,
                };
                if named {
                    problems.push(
                        Problem::new(
                            format!("binding `{}` of worker `{}` names script `{}`, which this stack deployed and the manifest no longer has, so this plan deletes it", b.name, worker.key, orphan.id),
                            b.span.clone(),
                            "deleted by this plan",
                        )
                        .help(format!("keep `{}` as a worker of this manifest, or remove the binding", orphan.id)),
                    );
                }
            }
        }
        fingerprints.insert(orphan.id.clone(), Some(Fingerprint::from(orphan)));
        // A script hosting no data goes first, before hosts delete classes it
        // may bind; one hosting data goes last, after any transfer out of it.
        let hosts_data = snapshot.namespaces_of(&orphan.id).next().is_some();
        changes.push(delete_change(
            manifest,
            snapshot,
            &orphan.id,
            None,
            if hosts_data { 2 } else { 0 },
            &transferred,
            &mut problems,
        ));
    }

    if !problems.is_empty() {
        return Err(manifest.errors(problems));
    }
    changes.sort_by(|a, b| (a.phase, a.level, &a.script).cmp(&(b.phase, b.level, &b.script)));
    Ok(change_set(
        manifest,
        target,
        false,
        changes,
        fingerprints,
        secret_fingerprints,
        config_fingerprints,
    ))
}

fn change_set(
    manifest: &Manifest,
    target: &PlanTarget,
    destroy: bool,
    changes: Vec<Change>,
    fingerprints: BTreeMap<String, Option<Fingerprint>>,
    secret_fingerprints: BTreeMap<String, String>,
    config_fingerprints: BTreeMap<String, String>,
) -> ChangeSet {
    ChangeSet {
        format_version: changeset::PLAN_FORMAT_VERSION,
        stack: manifest.stack.clone(),
        env: manifest.env.clone(),
        api: target.api.clone(),
        account_id: target.account_id.clone(),
        destroy,
        changes,
        fingerprints,
        secret_fingerprints,
        config_fingerprints,
    }
}

/// The error for deleting class `class` of `script` when it is protected.
/// For a script of the manifest, its entry for the class decides (so
/// `protect = false` releases it); where it has none (the class renamed
/// without `renamed_from`, its entry removed), the `protect` of the last
/// apply, kept in the script's tag, does. A script gone from the manifest has
/// no entry of its own: the tag decides, and so does any entry that still
/// protects a class of that name (its host's script renamed).
fn protection(
    manifest: &Manifest,
    info: Option<&ScriptInfo>,
    script: &str,
    class: &str,
    host_span: Option<&std::ops::Range<usize>>,
) -> Option<Problem> {
    let tagged = info
        .map(protected_classes)
        .unwrap_or_default()
        .iter()
        .any(|c| c == class);
    let orphan = manifest.worker_by_script(script).is_none();
    let has_own_entry = manifest
        .namespaces
        .iter()
        .any(|d| d.class_name == class && manifest.script_name(&d.host) == script);
    let protecting = manifest.namespaces.iter().find(|d| {
        d.protect && d.class_name == class && (orphan || manifest.script_name(&d.host) == script)
    });
    if let Some(decl) = protecting {
        return Some(
            Problem::new(
                format!("this plan would delete protected namespace `{}` (class `{class}` of `{script}`)", decl.key),
                decl.span.clone(),
                "protect = true",
            )
            .help("remove `protect = true` from this namespace first if deleting its data is really intended"),
        );
    }
    if !tagged || (!orphan && has_own_entry) {
        return None;
    }
    let help = if orphan {
        format!(
            "`{script}` was applied with `protect = true` on class `{class}` and is gone from the manifest. To delete it, put its worker back with `protect = false` on the namespace and apply, then remove it"
        )
    } else {
        format!(
            "`{script}` was applied with `protect = true` on class `{class}`. If the class was renamed, say so with `renamed_from = \"{class}\"`; to delete it, first apply with `protect = false` on its namespace, then remove it"
        )
    };
    Some(
        Problem::new(
            format!("this plan would delete protected class `{class}` of `{script}` and all of its stored data"),
            host_span.cloned().unwrap_or(0..0),
            "protect = true",
        )
        .help(help),
    )
}

/// A delete of `script`, with the namespaces (and data) it takes along.
fn delete_change(
    manifest: &Manifest,
    snapshot: &Snapshot,
    script: &str,
    worker: Option<&str>,
    phase: usize,
    transferred: &BTreeSet<(String, String)>,
    problems: &mut Vec<Problem>,
) -> Change {
    let mut data_loss = Vec::new();
    let kept = |class: &str| transferred.contains(&(script.to_string(), class.to_string()));
    let hosts = snapshot.namespaces_of(script).any(|ns| !kept(&ns.class));
    for ns in snapshot.namespaces_of(script).filter(|ns| !kept(&ns.class)) {
        data_loss.push(lifecycle::class_data_loss(&ns.class, script, &ns.id));
        if let Some(problem) = protection(
            manifest,
            snapshot.scripts.get(script),
            script,
            &ns.class,
            None,
        ) {
            problems.push(problem);
        }
    }
    Change {
        worker: worker.map(str::to_string),
        script: script.to_string(),
        action: Action::Delete,
        phase,
        // Scripts hosting data go last, after the scripts that may bind them.
        level: usize::from(hosts),
        fields: Vec::new(),
        migration: None,
        data_loss,
        drift: Vec::new(),
        notes: Vec::new(),
        code_hash: None,
        workers_dev: None,
    }
}

/// Field-level differences between the account's script and the desired one, and drift.
fn diff_script(
    worker: &Worker,
    info: &ScriptInfo,
    settings: &ScriptSettings,
    desired: &DesiredScript,
    code_hash: &str,
) -> (Vec<FieldDiff>, Vec<String>) {
    let mut fields = Vec::new();
    let mut drift = Vec::new();
    let remote_code = tag_value(info, CODE_TAG);
    let desired_code = &code_hash[..code_hash.len().min(16)];
    if remote_code != Some(desired_code) {
        fields.push(FieldDiff {
            field: "code".into(),
            before: Some(remote_code.map(short).unwrap_or_else(|| "(unknown)".into())),
            after: Some(short(code_hash)),
        });
    }
    let remote_date = settings
        .compatibility_date
        .clone()
        .or_else(|| info.compatibility_date.clone());
    if remote_date.as_deref() != Some(worker.compatibility_date.as_str()) {
        fields.push(FieldDiff {
            field: "compatibility_date".into(),
            before: remote_date.clone(),
            after: Some(worker.compatibility_date.clone()),
        });
    }
    let remote_flags = if settings.compatibility_flags.is_empty() {
        &info.compatibility_flags
    } else {
        &settings.compatibility_flags
    };
    let mut a = remote_flags.clone();
    let mut b = worker.compatibility_flags.clone();
    a.sort();
    b.sort();
    if a != b {
        fields.push(FieldDiff {
            field: "compatibility_flags".into(),
            before: Some(remote_flags.join(", ")),
            after: Some(worker.compatibility_flags.join(", ")),
        });
    }
    let before = bindings_map(&settings.bindings, &worker.script);
    let after = bindings_map(&desired.bindings, &worker.script);
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for name in names {
        let (old, new) = (before.get(name), after.get(name));
        if old != new {
            fields.push(FieldDiff {
                field: format!("binding {name}"),
                before: old.cloned(),
                after: new.cloned(),
            });
        }
    }
    let remote_secrets = tag_value(info, SECRETS_TAG);
    if remote_secrets != desired.secrets_fingerprint.as_deref()
        && !desired.secrets.is_empty()
        && desired.unset_secrets.is_empty()
    {
        fields.push(FieldDiff {
            field: "secrets".into(),
            before: Some("(sensitive)".into()),
            after: Some("(sensitive, changed)".into()),
        });
    }
    // Drift: the account's settings are not those cfdo last uploaded.
    if let Some(applied) = tag_value(info, CONFIG_TAG) {
        let actual = config_hash(remote_date.as_deref(), remote_flags, &before);
        if actual != applied {
            drift.push(format!(
                "the settings of `{}` were changed outside cfdo; apply restores the manifest's",
                worker.script
            ));
        }
    }
    (fields, drift)
}

/// Plan-time reference checks against the account (docs/failures.md, F03): outside scripts must exist,
/// and outside hosts must host the class.
fn check_references(manifest: &Manifest, snapshot: &Snapshot, problems: &mut Vec<Problem>) {
    for worker in &manifest.workers {
        for b in &worker.bindings {
            match &b.kind {
                BindingKind::Service {
                    target: ScriptRef::Outside(script),
                } if !snapshot.scripts.contains_key(script) => {
                    problems.push(
                        Problem::new(
                            format!("binding `{}` of worker `{}` names script `{script}`, which is neither in this manifest nor in the account", b.name, worker.key),
                            b.span.clone(),
                            "no such script",
                        )
                        .help("deploy that script first, fix the name, or add it to this manifest as a worker"),
                    );
                }
                BindingKind::DurableObject { namespace } => {
                    let Some(decl) = manifest.namespace(namespace) else {
                        continue;
                    };
                    let ScriptRef::Outside(host) = &decl.host else {
                        continue;
                    };
                    if !snapshot.scripts.contains_key(host) {
                        problems.push(
                            Problem::new(
                                format!("binding `{}` of worker `{}` needs script `{host}` (host of `{}`), which is neither in this manifest nor in the account", b.name, worker.key, decl.class_name),
                                b.span.clone(),
                                "host script missing",
                            )
                            .help(format!("deploy `{host}` first, or fix `script` in [durable_objects.{}]", decl.key)),
                        );
                    } else if snapshot.namespace(host, &decl.class_name).is_none() {
                        problems.push(
                            Problem::new(
                                format!("script `{host}` hosts no Durable Object class `{}`", decl.class_name),
                                decl.class_span.clone(),
                                "no such class on the host",
                            )
                            .help(format!("`{host}` must create the class with a migration before others can bind it; check `class_name`")),
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

/// Plans the removal of everything the stack owns. Hosts of Durable Objects
/// go after the rest; [`order_deletes`] then orders the deletes by the
/// account's bindings (clients first).
pub fn plan_destroy(
    manifest: &Manifest,
    snapshot: &Snapshot,
    target: &PlanTarget,
) -> Result<ChangeSet, crate::manifest::ManifestErrors> {
    let mut problems = Vec::new();
    let mut changes = Vec::new();
    let mut fingerprints = BTreeMap::new();
    let owner_tag = owner(manifest);
    for info in snapshot.owned_by(&owner_tag) {
        let worker = manifest.worker_by_script(&info.id);
        changes.push(delete_change(
            manifest,
            snapshot,
            &info.id,
            worker.map(|w| w.key.as_str()),
            0,
            &BTreeSet::new(),
            &mut problems,
        ));
        fingerprints.insert(info.id.clone(), Some(Fingerprint::from(info)));
    }
    changes.sort_by(|a, b| (a.level, &a.script).cmp(&(b.level, &b.script)));
    if !problems.is_empty() {
        return Err(manifest.errors(problems));
    }
    Ok(change_set(
        manifest,
        target,
        true,
        changes,
        fingerprints,
        BTreeMap::new(),
        BTreeMap::new(),
    ))
}

/// Orders the deletes of a plan by the account's bindings: each deleted
/// script goes after every other script deleted in the same phase that binds
/// it (`binders`, from the account's references), so nothing is deleted
/// while the stack still references it, whatever the manifest says now.
/// Other changes keep their places. Scripts that bind each other in a cycle
/// cannot be deleted one at a time: one such cycle is returned, and the plan
/// is left as it was.
pub fn order_deletes(
    changes: &mut ChangeSet,
    binders: &BTreeMap<String, BTreeSet<String>>,
) -> Result<(), Vec<String>> {
    let phase_of: BTreeMap<String, usize> = changes
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| (c.script.clone(), c.phase))
        .collect();
    // The scripts of the same phase that must go before `script`.
    let before = |script: &str| -> Vec<String> {
        binders
            .get(script)
            .into_iter()
            .flatten()
            .filter(|b| b.as_str() != script && phase_of.get(*b) == phase_of.get(script))
            .cloned()
            .collect()
    };
    fn level(
        script: &str,
        before: &dyn Fn(&str) -> Vec<String>,
        done: &mut BTreeMap<String, usize>,
        path: &mut Vec<String>,
    ) -> Result<usize, Vec<String>> {
        if let Some(l) = done.get(script) {
            return Ok(*l);
        }
        if let Some(start) = path.iter().position(|p| p == script) {
            return Err(path[start..].to_vec());
        }
        path.push(script.to_string());
        let mut l = 0;
        for b in before(script) {
            l = l.max(1 + level(&b, before, done, path)?);
        }
        path.pop();
        done.insert(script.to_string(), l);
        Ok(l)
    }
    let mut done = BTreeMap::new();
    for script in phase_of.keys() {
        level(script, &before, &mut done, &mut Vec::new())?;
    }
    for change in &mut changes.changes {
        if let Some(l) = done.get(&change.script) {
            change.level = *l;
        }
    }
    changes
        .changes
        .sort_by(|a, b| (a.phase, a.level, &a.script).cmp(&(b.phase, b.level, &b.script)));
    Ok(())
}

#[cfg(test)]
mod secret_tests {
    use super::secrets_fingerprint;
    use crate::cloudflare::types::Sensitive;
    use std::collections::BTreeMap;

    fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, Sensitive> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Sensitive(v.to_string())))
            .collect()
    }

    #[test]
    fn a_fingerprint_changes_with_each_value_name_and_stack() {
        let one = secrets(&[("API_KEY", "hunter2"), ("DB", "pw")]);
        let fp = secrets_fingerprint("shop", &one).expect("a fingerprint");
        assert_eq!(fp.len(), 16);
        assert!(fp.chars().all(|c| c.is_ascii_hexdigit()), "{fp}");
        assert_eq!(secrets_fingerprint("shop", &one).as_ref(), Some(&fp));
        let changed = secrets(&[("API_KEY", "hunter3"), ("DB", "pw")]);
        assert_ne!(secrets_fingerprint("shop", &changed).as_ref(), Some(&fp));
        let renamed = secrets(&[("API_TOKEN", "hunter2"), ("DB", "pw")]);
        assert_ne!(secrets_fingerprint("shop", &renamed).as_ref(), Some(&fp));
        assert_ne!(secrets_fingerprint("blog", &one).as_ref(), Some(&fp));
        assert_eq!(secrets_fingerprint("shop", &BTreeMap::new()), None);
    }
}
