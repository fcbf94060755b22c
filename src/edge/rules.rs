//! Cloudflare's rules for uploads and deletes, applied to the edge's state:
//! migration tags, Durable Object lifecycle steps, bindings, exports. Each
//! refusal carries the code Cloudflare answers with.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::state::{AccountState, Deployment, NamespaceRecord, Script, StoredModule, Version};
use crate::build::{exported_classes_of_modules, exports_default};
use crate::cloudflare::types::{Binding, MigrationStep, UploadMetadata, codes};

/// The code the edge answers a delete with when other scripts still reference
/// the script and `force` is not set.
pub const SCRIPT_IN_USE: i64 = 10066;
/// A malformed request (bad multipart, bad JSON, bad name).
pub const BAD_REQUEST: i64 = 10014;

/// An API refusal: HTTP status, Cloudflare error code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: i64,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: i64, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: i64, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn script_not_found(script: &str) -> Self {
        Self::new(
            404,
            codes::SCRIPT_NOT_FOUND,
            format!("workers.api.error.script_not_found: script '{script}' does not exist"),
        )
    }
}

/// Whether the upload is a script PUT (deploys at once, may migrate) or a
/// version upload (deploys later, never migrates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    Script,
    Version,
}

/// The result of an accepted upload: the new state, the namespaces whose
/// storage must go, and the new version's id.
#[derive(Debug)]
pub struct Accepted {
    pub state: AccountState,
    pub deleted_namespaces: Vec<String>,
    pub version_id: String,
}

pub fn validate_script_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            10016,
            format!(
                "invalid script name '{name}': use 1 to 63 lowercase letters, digits, '-' or '_'"
            ),
        ))
    }
}

/// Whether `text` has the form `YYYY-MM-DD`.
pub fn is_date(text: &str) -> bool {
    text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
}

/// Checks a date `YYYY-MM-DD` against the newest one workerd supports.
pub fn check_compatibility_date(date: &str, newest: &str) -> Result<(), ApiError> {
    if !is_date(date) {
        return Err(ApiError::bad_request(
            codes::SCRIPT_STARTUP,
            format!("invalid compatibility date '{date}': expected YYYY-MM-DD"),
        ));
    }
    if date > newest {
        return Err(ApiError::bad_request(
            codes::SCRIPT_STARTUP,
            format!(
                "compatibility date {date} is newer than {newest}, the newest date the edge's workerd supports; set compatibility_date to {newest} or earlier"
            ),
        ));
    }
    Ok(())
}

/// Applies an upload to `state`, or refuses it as Cloudflare would.
#[allow(clippy::too_many_arguments)]
pub fn accept_upload(
    state: &AccountState,
    script: &str,
    metadata: &UploadMetadata,
    modules: Vec<StoredModule>,
    module_texts: &BTreeMap<String, String>,
    kind: UploadKind,
    newest_date: &str,
    new_port: impl FnOnce() -> u16,
) -> Result<Accepted, ApiError> {
    validate_script_name(script)?;
    let main = match (&metadata.main_module, &metadata.body_part) {
        (Some(main), _) => main.clone(),
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                codes::SCRIPT_STARTUP,
                "service-worker syntax (body_part) is not supported by the local edge: upload an ES module with main_module",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                codes::SCRIPT_STARTUP,
                "the upload's metadata has no main_module",
            ));
        }
    };
    if !modules.iter().any(|m| m.name == main) {
        return Err(ApiError::bad_request(
            codes::SCRIPT_STARTUP,
            format!("the main module '{main}' is not among the uploaded parts"),
        ));
    }
    let date = metadata
        .compatibility_date
        .clone()
        .unwrap_or_else(|| "2021-11-02".to_string());
    check_compatibility_date(&date, newest_date)?;
    let mut exported = exported_classes_of_modules(&main, module_texts);
    if module_texts
        .get(&main)
        .is_some_and(|text| exports_default(text))
    {
        // The default export is the fetch handler, listed among `handlers`.
        exported.insert("default".to_string());
    }

    let existing = state.scripts.get(script);
    if kind == UploadKind::Version && existing.is_none() {
        return Err(ApiError::script_not_found(script));
    }

    let mut next = state.clone();
    let mut deleted_namespaces = Vec::new();
    let mut new_tag = existing.and_then(|s| s.migration_tag.clone());

    if let Some(migrations) = &metadata.migrations {
        let mut steps = migrations.steps.clone();
        if !migrations.inline.is_empty() {
            steps.push(migrations.inline.clone());
        }
        let changes_lifecycle = steps.iter().any(|s| !s.is_empty());
        if kind == UploadKind::Version && (changes_lifecycle || migrations.new_tag.is_some()) {
            return Err(ApiError::bad_request(
                codes::VERSION_WITH_MIGRATION,
                "migrations are not supported with version uploads; deploy the script with a script upload (PUT) to apply Durable Object migrations",
            ));
        }
        let current = existing.and_then(|s| s.migration_tag.clone());
        if migrations.old_tag != current {
            return Err(ApiError::bad_request(
                codes::MIGRATION_TAG,
                format!(
                    "Migration tag precondition failed; current tag is {}, the upload's old_tag is {}",
                    show_tag(&current),
                    show_tag(&migrations.old_tag)
                ),
            ));
        }
        for step in &steps {
            apply_step(
                &mut next,
                script,
                step,
                &exported,
                &metadata.bindings,
                &mut deleted_namespaces,
            )?;
        }
        if migrations.new_tag.is_some() {
            new_tag = migrations.new_tag.clone();
        }
    }
    if let Some(exports) = &metadata.exports {
        if kind == UploadKind::Version {
            let current = namespaces_of(state, script);
            let wanted = live_exports(exports);
            if current != wanted {
                return Err(ApiError::bad_request(
                    codes::VERSION_WITH_MIGRATION,
                    "Durable Object lifecycle changes are not supported with version uploads",
                ));
            }
        }
        apply_exports(
            &mut next,
            script,
            exports,
            &exported,
            &metadata.bindings,
            &mut deleted_namespaces,
        )?;
    }

    // A class with a live namespace must still be exported.
    for ns in next.namespaces.values() {
        if ns.script == script && !exported.contains(&ns.class) {
            return Err(ApiError::bad_request(
                codes::CLASS_NOT_EXPORTED_LIVE,
                format!(
                    "new version of script does not export class '{}' which is depended on by existing Durable Objects (namespace {}); keep exporting it or delete it with a deleted_classes migration",
                    ns.class, ns.id
                ),
            ));
        }
    }

    // Bindings: the upload's (an `inherit` binding takes the deployed
    // version's binding of that name), plus kept ones from the deployed version.
    let mut bindings = Vec::with_capacity(metadata.bindings.len());
    for binding in &metadata.bindings {
        if binding_type(binding) == "inherit" {
            let inherited = existing
                .and_then(|s| s.current())
                .and_then(|v| v.bindings.iter().find(|b| b.name() == binding.name()));
            match inherited {
                Some(previous) => bindings.push(previous.clone()),
                None => {
                    return Err(ApiError::bad_request(
                        BAD_REQUEST,
                        format!(
                            "binding '{}' inherits from the deployed version, which has no binding of that name",
                            binding.name()
                        ),
                    ));
                }
            }
        } else {
            bindings.push(binding.clone());
        }
    }
    if let (Some(keep), Some(previous)) =
        (&metadata.keep_bindings, existing.and_then(|s| s.current()))
    {
        for old in &previous.bindings {
            let kept_type = binding_type(old);
            if keep.iter().any(|k| k == kept_type)
                && !bindings.iter().any(|b| b.name() == old.name())
            {
                bindings.push(old.clone());
            }
        }
    }
    check_bindings(&next, script, &bindings)?;

    // Build the version.
    let now = super::state::now_rfc3339();
    let version_id = uuid_like();
    let previous_number = existing
        .and_then(|s| s.versions.last())
        .map(|v| v.number)
        .unwrap_or(0);
    let version = Version {
        id: version_id.clone(),
        number: previous_number + 1,
        created_on: now.clone(),
        main_module: main,
        modules,
        compatibility_date: Some(date),
        compatibility_flags: metadata.compatibility_flags.clone(),
        bindings,
        exported: exported.into_iter().collect(),
        source: match kind {
            UploadKind::Script => "upload".to_string(),
            UploadKind::Version => "version".to_string(),
        },
        annotations: serde_json::Map::new(),
    };
    let entry = next
        .scripts
        .entry(script.to_string())
        .or_insert_with(|| Script {
            created_on: now.clone(),
            port: new_port(),
            ..Script::default()
        });
    entry.versions.push(version);
    // Keep the history short: the deployed version and the last few.
    let keep_from = entry.versions.len().saturating_sub(10);
    let deployed = entry.deployed.clone();
    let mut index = 0;
    entry.versions.retain(|v| {
        index += 1;
        index > keep_from || v.id == deployed || kind == UploadKind::Version && v.id == version_id
    });
    if kind == UploadKind::Script {
        deploy_version(entry, &version_id, None);
        entry.migration_tag = new_tag;
        if let Some(tags) = &metadata.tags {
            entry.tags = tags.clone();
        }
    }
    Ok(Accepted {
        state: next,
        deleted_namespaces,
        version_id,
    })
}

/// Makes `version_id` the script's deployed version.
pub fn deploy_version(script: &mut Script, version_id: &str, message: Option<String>) {
    let now = super::state::now_rfc3339();
    script.deployed = version_id.to_string();
    script.modified_on = now.clone();
    script.etag = super::state::random_hex(16);
    script.deployments.push(Deployment {
        id: uuid_like(),
        created_on: now,
        version_id: version_id.to_string(),
        message,
    });
    let excess = script.deployments.len().saturating_sub(10);
    script.deployments.drain(..excess);
}

fn show_tag(tag: &Option<String>) -> String {
    match tag {
        Some(t) => format!("'{t}'"),
        None => "none".to_string(),
    }
}

fn binding_type(binding: &Binding) -> &str {
    match binding {
        Binding::DurableObjectNamespace { .. } => "durable_object_namespace",
        Binding::Service { .. } => "service",
        Binding::PlainText { .. } => "plain_text",
        Binding::SecretText { .. } => "secret_text",
        Binding::Json { .. } => "json",
        Binding::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
    }
}

fn new_namespace(
    next: &mut AccountState,
    script: &str,
    class: &str,
    use_sqlite: bool,
    exported: &BTreeSet<String>,
) -> Result<(), ApiError> {
    if let Some(existing) = next.namespace_of(script, class) {
        let message = if existing.use_sqlite != use_sqlite {
            format!(
                "Cannot apply new-class migration to class '{class}': it already has a {} namespace ({}), and a class cannot switch between SQLite and key-value storage; only deleting the class (which destroys its data) and creating it again changes its storage",
                storage_name(existing.use_sqlite),
                existing.id
            )
        } else {
            format!(
                "Cannot apply new-class migration to class '{class}' that is already depended on by existing Durable Objects (namespace {})",
                existing.id
            )
        };
        return Err(ApiError::bad_request(codes::NEW_CLASS_EXISTS, message));
    }
    if !exported.contains(class) {
        return Err(ApiError::bad_request(
            codes::NEW_CLASS_NOT_EXPORTED,
            format!(
                "Cannot apply new-class migration to class '{class}' that is not exported by script '{script}'"
            ),
        ));
    }
    let id = super::state::random_hex(16);
    next.namespaces.insert(
        id.clone(),
        NamespaceRecord {
            id,
            class: class.to_string(),
            script: script.to_string(),
            use_sqlite,
        },
    );
    Ok(())
}

fn storage_name(sqlite: bool) -> &'static str {
    if sqlite { "SQLite" } else { "key-value" }
}

fn namespace_id(next: &AccountState, script: &str, class: &str) -> Option<String> {
    next.namespace_of(script, class).map(|n| n.id.clone())
}

fn delete_namespace(
    next: &mut AccountState,
    script: &str,
    class: &str,
    new_bindings: &[Binding],
    deleted: &mut Vec<String>,
) -> Result<(), ApiError> {
    let Some(id) = namespace_id(next, script, class) else {
        return Err(ApiError::bad_request(
            codes::DO_BINDING,
            format!(
                "Cannot apply deleted_classes migration to class '{class}': script '{script}' has no Durable Object namespace for it"
            ),
        ));
    };
    // Bindings in the upload itself.
    for binding in new_bindings {
        if binds(binding, script, script, class) {
            return Err(ApiError::bad_request(
                codes::DO_BINDING,
                format!(
                    "Cannot apply --delete-class migration to class '{class}' without also removing the binding '{}' that references it",
                    binding.name()
                ),
            ));
        }
    }
    // Bindings in other scripts' deployed versions.
    for (other, other_script) in &next.scripts {
        if other == script {
            continue;
        }
        if let Some(version) = other_script.current() {
            for binding in &version.bindings {
                if binds(binding, other, script, class) {
                    return Err(ApiError::bad_request(
                        codes::DO_BINDING,
                        format!(
                            "Cannot apply --delete-class migration to class '{class}' without also removing the binding '{}' in script '{other}' that references it",
                            binding.name()
                        ),
                    ));
                }
            }
        }
    }
    next.namespaces.remove(&id);
    deleted.push(id);
    Ok(())
}

/// Whether `binding`, held by script `holder`, binds class `class` hosted by `host`.
fn binds(binding: &Binding, holder: &str, host: &str, class: &str) -> bool {
    match binding {
        Binding::DurableObjectNamespace {
            class_name,
            script_name,
            ..
        } => class_name == class && script_name.as_deref().unwrap_or(holder) == host,
        _ => false,
    }
}

fn rename_namespace(
    next: &mut AccountState,
    script: &str,
    from_script: &str,
    from: &str,
    to: &str,
    exported: &BTreeSet<String>,
) -> Result<(), ApiError> {
    let Some(id) = namespace_id(next, from_script, from) else {
        return Err(ApiError::bad_request(
            codes::DO_BINDING,
            format!(
                "Cannot rename or transfer class '{from}': script '{from_script}' has no Durable Object namespace for it"
            ),
        ));
    };
    if let Some(existing) = next.namespace_of(script, to) {
        return Err(ApiError::bad_request(
            codes::NEW_CLASS_EXISTS,
            format!(
                "Cannot rename or transfer class '{from}' to '{to}': script '{script}' already has a namespace for '{to}' ({})",
                existing.id
            ),
        ));
    }
    if !exported.contains(to) {
        return Err(ApiError::bad_request(
            codes::NEW_CLASS_NOT_EXPORTED,
            format!(
                "Cannot rename or transfer class '{from}' to '{to}' that is not exported by script '{script}'"
            ),
        ));
    }
    if let Some(ns) = next.namespaces.get_mut(&id) {
        ns.class = to.to_string();
        ns.script = script.to_string();
    }
    Ok(())
}

fn apply_step(
    next: &mut AccountState,
    script: &str,
    step: &MigrationStep,
    exported: &BTreeSet<String>,
    new_bindings: &[Binding],
    deleted: &mut Vec<String>,
) -> Result<(), ApiError> {
    for class in &step.new_classes {
        new_namespace(next, script, class, false, exported)?;
    }
    for class in &step.new_sqlite_classes {
        new_namespace(next, script, class, true, exported)?;
    }
    for renamed in &step.renamed_classes {
        rename_namespace(next, script, script, &renamed.from, &renamed.to, exported)?;
    }
    for transferred in &step.transferred_classes {
        if !next.scripts.contains_key(&transferred.from_script) {
            return Err(ApiError::bad_request(
                codes::DO_BINDING,
                format!(
                    "Cannot transfer class '{}' from script '{}', which does not exist",
                    transferred.from, transferred.from_script
                ),
            ));
        }
        rename_namespace(
            next,
            script,
            &transferred.from_script,
            &transferred.from,
            &transferred.to,
            exported,
        )?;
    }
    for class in &step.deleted_classes {
        delete_namespace(next, script, class, new_bindings, deleted)?;
    }
    Ok(())
}

/// The live classes of an `exports` map with their storage (true = SQLite).
fn live_exports(exports: &serde_json::Map<String, Value>) -> BTreeMap<String, bool> {
    exports
        .iter()
        .filter(|(_, spec)| {
            spec.get("type").and_then(Value::as_str) == Some("durable-object")
                && spec.get("state").is_none()
        })
        .map(|(class, spec)| {
            (
                class.clone(),
                spec.get("storage").and_then(Value::as_str) != Some("legacy-kv"),
            )
        })
        .collect()
}

fn namespaces_of(state: &AccountState, script: &str) -> BTreeMap<String, bool> {
    state
        .namespaces
        .values()
        .filter(|n| n.script == script)
        .map(|n| (n.class.clone(), n.use_sqlite))
        .collect()
}

/// The declarative lifecycle form: each class's wanted state.
fn apply_exports(
    next: &mut AccountState,
    script: &str,
    exports: &serde_json::Map<String, Value>,
    exported: &BTreeSet<String>,
    new_bindings: &[Binding],
    deleted: &mut Vec<String>,
) -> Result<(), ApiError> {
    for (class, spec) in exports {
        let state = spec.get("state").and_then(Value::as_str);
        let storage = spec.get("storage").and_then(Value::as_str);
        match state {
            None => {
                if spec.get("type").and_then(Value::as_str) != Some("durable-object") {
                    continue;
                }
                let sqlite = storage != Some("legacy-kv");
                match next.namespace_of(script, class) {
                    Some(existing) if existing.use_sqlite != sqlite => {
                        return Err(ApiError::bad_request(
                            codes::NEW_CLASS_EXISTS,
                            format!(
                                "class '{class}' has {} storage (namespace {}); a class cannot switch between SQLite and key-value storage",
                                storage_name(existing.use_sqlite),
                                existing.id
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => new_namespace(next, script, class, sqlite, exported)?,
                }
            }
            Some("deleted") => {
                if next.namespace_of(script, class).is_some() {
                    delete_namespace(next, script, class, new_bindings, deleted)?;
                }
            }
            Some("renamed") => {
                let Some(to) = spec.get("renamed_to").and_then(Value::as_str) else {
                    return Err(ApiError::bad_request(
                        BAD_REQUEST,
                        format!("exports.{class}: a renamed class needs renamed_to"),
                    ));
                };
                if next.namespace_of(script, class).is_some() {
                    rename_namespace(next, script, script, class, to, exported)?;
                }
            }
            Some("transferred") => {}
            Some("expecting-transfer") => {
                let Some(from) = spec.get("transfer_from").and_then(Value::as_str) else {
                    return Err(ApiError::bad_request(
                        BAD_REQUEST,
                        format!("exports.{class}: expecting-transfer needs transfer_from"),
                    ));
                };
                let (from_script, from_class) = from.split_once('.').unwrap_or((from, class));
                if next.namespace_of(script, class).is_none() {
                    rename_namespace(next, script, from_script, from_class, class, exported)?;
                }
            }
            Some(other) => {
                return Err(ApiError::bad_request(
                    BAD_REQUEST,
                    format!("exports.{class}: unknown state '{other}'"),
                ));
            }
        }
    }
    Ok(())
}

fn check_bindings(next: &AccountState, script: &str, bindings: &[Binding]) -> Result<(), ApiError> {
    let mut names = BTreeSet::new();
    for binding in bindings {
        if !names.insert(binding.name().to_string()) {
            return Err(ApiError::bad_request(
                BAD_REQUEST,
                format!("binding name '{}' is used more than once", binding.name()),
            ));
        }
        match binding {
            Binding::DurableObjectNamespace {
                name,
                class_name,
                script_name,
                ..
            } => {
                let host = script_name.as_deref().unwrap_or(script);
                if host != script && !next.scripts.contains_key(host) {
                    return Err(ApiError::bad_request(
                        codes::DO_BINDING,
                        format!(
                            "Cannot create binding '{name}' for class '{class_name}': script '{host}' named by script_name does not exist"
                        ),
                    ));
                }
                if next.namespace_of(host, class_name).is_none() {
                    return Err(ApiError::bad_request(
                        codes::DO_BINDING,
                        format!(
                            "Cannot create binding '{name}' for class '{class_name}' that is not currently configured to implement Durable Objects in script '{host}'. Did you remember to apply a --new-class migration for it?"
                        ),
                    ));
                }
            }
            Binding::Service { name, service, .. } => {
                if service != script && !next.scripts.contains_key(service) {
                    return Err(ApiError::bad_request(
                        codes::SCRIPT_NOT_FOUND,
                        format!(
                            "Cannot create service binding '{name}': script '{service}' does not exist"
                        ),
                    ));
                }
            }
            Binding::PlainText { .. } | Binding::SecretText { .. } | Binding::Json { .. } => {}
            Binding::Other(value) => {
                let kind = value.get("type").and_then(Value::as_str).unwrap_or("?");
                return Err(ApiError::bad_request(
                    BAD_REQUEST,
                    format!(
                        "binding '{}' has type '{kind}', which the local edge does not support (it supports durable_object_namespace, service, plain_text, secret_text, json)",
                        binding.name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Who references `script`: service bindings to it and bindings to its namespaces.
pub fn references(state: &AccountState, script: &str) -> crate::cloudflare::types::References {
    use crate::cloudflare::types::{DurableObjectReference, References, ServiceReference};
    let mut refs = References::default();
    for (holder, entry) in &state.scripts {
        let Some(version) = entry.current() else {
            continue;
        };
        for binding in &version.bindings {
            match binding {
                Binding::Service { name, service, .. } if service == script && holder != script => {
                    refs.services.push(ServiceReference {
                        service: holder.clone(),
                        name: name.clone(),
                    });
                }
                Binding::DurableObjectNamespace {
                    class_name,
                    script_name,
                    ..
                } => {
                    let host = script_name.as_deref().unwrap_or(holder);
                    if host == script
                        && holder != script
                        && let Some(ns) = state.namespace_of(host, class_name)
                    {
                        refs.durable_objects.push(DurableObjectReference {
                            namespace_id: ns.id.clone(),
                            namespace_name: format!("{}_{}", ns.script, ns.class),
                            dependent_service: holder.clone(),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    refs
}

/// Deletes a script (and the namespaces it hosts), or refuses while other
/// scripts reference it and `force` is not set.
pub fn accept_delete(
    state: &AccountState,
    script: &str,
    force: bool,
) -> Result<(AccountState, Vec<String>), ApiError> {
    if !state.scripts.contains_key(script) {
        return Err(ApiError::script_not_found(script));
    }
    let refs = references(state, script);
    if !force && (!refs.services.is_empty() || !refs.durable_objects.is_empty()) {
        let mut holders: Vec<String> = refs
            .services
            .iter()
            .map(|s| s.service.clone())
            .chain(
                refs.durable_objects
                    .iter()
                    .map(|d| d.dependent_service.clone()),
            )
            .collect();
        holders.sort();
        holders.dedup();
        return Err(ApiError::new(
            409,
            SCRIPT_IN_USE,
            format!(
                "Cannot delete script '{script}': it is still referenced by {}; remove those bindings first or delete with force=true",
                holders
                    .iter()
                    .map(|h| format!("'{h}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let mut next = state.clone();
    next.scripts.remove(script);
    let deleted: Vec<String> = next
        .namespaces
        .values()
        .filter(|n| n.script == script)
        .map(|n| n.id.clone())
        .collect();
    for id in &deleted {
        next.namespaces.remove(id);
    }
    Ok((next, deleted))
}

/// A random id in UUID text form.
pub fn uuid_like() -> String {
    let h = super::state::random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Deploys a copy of the script's current version whose bindings `change`
/// rewrites (secrets put or deleted without an upload).
pub fn redeploy_with_bindings(
    state: &AccountState,
    script: &str,
    message: &str,
    change: impl FnOnce(&mut Vec<Binding>) -> Result<(), ApiError>,
) -> Result<AccountState, ApiError> {
    let mut next = state.clone();
    let entry = next
        .scripts
        .get_mut(script)
        .ok_or_else(|| ApiError::script_not_found(script))?;
    let mut version = entry
        .current()
        .cloned()
        .ok_or_else(|| ApiError::script_not_found(script))?;
    change(&mut version.bindings)?;
    version.id = uuid_like();
    version.number = entry.versions.last().map(|v| v.number).unwrap_or(0) + 1;
    version.created_on = super::state::now_rfc3339();
    version.source = "secret".to_string();
    let id = version.id.clone();
    entry.versions.push(version);
    deploy_version(entry, &id, Some(message.to_string()));
    Ok(next)
}
