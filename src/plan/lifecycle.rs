//! Durable Object lifecycle derivation: from the classes a script hosts in
//! the account and the classes the manifest says it hosts, the one migration
//! step to send (new, renamed, transferred, deleted), or an error that says
//! what to write instead.

use crate::cloudflare::types::{MigrationStep, Migrations, RenamedClass, TransferredClass};
use crate::manifest::{Manifest, NamespaceDecl, Problem, ScriptRef};

use super::snapshot::{STACK_TAG, Snapshot, tag_value};

/// The lifecycle of one host script.
#[derive(Debug, Default)]
pub struct Lifecycle {
    pub step: MigrationStep,
    /// Classes whose data the step destroys.
    pub data_loss: Vec<String>,
    /// Namespaces that already exist and are adopted as they are.
    pub adopted: Vec<String>,
}

/// The next migration tag after `old`: `v3` → `v4`; none → `v1`.
pub fn next_tag(old: Option<&str>) -> String {
    match old {
        None | Some("") => "v1".to_string(),
        Some(tag) => {
            let digits = tag.chars().rev().take_while(char::is_ascii_digit).count();
            let (prefix, number) = tag.split_at(tag.len() - digits);
            match number.parse::<u64>().ok().and_then(|n| n.checked_add(1)) {
                Some(n) => format!("{prefix}{n}"),
                // No number, or one too large to count on: a new suffix.
                None => format!("{tag}-1"),
            }
        }
    }
}

/// Wraps a step into the migration an upload carries, or None when there is nothing to do.
pub fn migrations(step: MigrationStep, old_tag: Option<&str>) -> Option<Migrations> {
    if step.is_empty() {
        return None;
    }
    Some(Migrations {
        old_tag: old_tag.filter(|t| !t.is_empty()).map(str::to_string),
        new_tag: Some(next_tag(old_tag)),
        steps: vec![step],
        inline: MigrationStep::default(),
    })
}

/// Derives the step for the worker `key` deploying as `script`.
pub fn derive(
    manifest: &Manifest,
    key: &str,
    script: &str,
    snapshot: &Snapshot,
    problems: &mut Vec<Problem>,
) -> Lifecycle {
    let mut lifecycle = Lifecycle::default();
    let declared: Vec<&NamespaceDecl> = manifest.hosted_by(key).collect();

    for decl in &declared {
        let class = decl.class_name.as_str();
        if let Some(existing) = snapshot.namespace(script, class) {
            if existing.use_sqlite != decl.sqlite {
                problems.push(storage_switch(decl, existing.use_sqlite));
            }
            lifecycle.adopted.push(class.to_string());
            continue;
        }
        if let Some(from) = &decl.renamed_from
            && let Some(old) = snapshot.namespace(script, from)
        {
            if old.use_sqlite != decl.sqlite {
                problems.push(storage_switch(decl, old.use_sqlite));
            }
            lifecycle.step.renamed_classes.push(RenamedClass {
                from: from.clone(),
                to: class.to_string(),
            });
            continue;
        }
        if let Some(from) = &decl.transferred_from {
            let from_script = manifest
                .worker(from)
                .map(|w| w.script.clone())
                .unwrap_or_else(|| from.clone());
            // A script named outright may lie outside cfdo (data deployed by
            // another tool), but never in another stack or environment: the
            // transfer would take that stack's data.
            let other_owner = snapshot
                .scripts
                .get(&from_script)
                .and_then(|info| tag_value(info, STACK_TAG))
                .filter(|owner| *owner != super::owner(manifest));
            if let Some(other) = other_owner {
                // The worker whose script, without the environment's suffix, is the one named.
                let worker_hint = manifest
                    .workers
                    .iter()
                    .find(|w| {
                        w.script.strip_prefix(from_script.as_str()).is_some_and(|suffix| {
                            !suffix.is_empty()
                                && manifest.workers.iter().all(|o| o.script.ends_with(suffix))
                        })
                    })
                    .map(|w| format!("name the worker instead (`transferred_from = \"{}\"`), which resolves to `{}` in this environment; ", w.key, w.script))
                    .unwrap_or_default();
                problems.push(
                    Problem::new(
                        format!("`{class}` cannot be transferred from `{from_script}`: that script belongs to {}, and the transfer would take its data", describe_owner(other)),
                        decl.span.clone(),
                        "transfer from another stack",
                    )
                    .help(format!("{worker_hint}a class moves between scripts of one stack and environment only")),
                );
                continue;
            }
            match snapshot.namespace(&from_script, class) {
                Some(source) => {
                    if source.use_sqlite != decl.sqlite {
                        problems.push(storage_switch(decl, source.use_sqlite));
                    }
                    lifecycle.step.transferred_classes.push(TransferredClass {
                        from: class.to_string(),
                        from_script: from_script.clone(),
                        to: class.to_string(),
                    });
                }
                None => problems.push(
                    Problem::new(
                        format!("`{class}` cannot be transferred from `{from_script}`: that script hosts no such class in the account"),
                        decl.span.clone(),
                        "transfer source not found",
                    )
                    .help("check `transferred_from`; once a transfer has been applied the class lives here and the key can stay or go"),
                ),
            }
            continue;
        }
        // The same class hosted by another script of this stack that no longer declares it: an implicit move.
        let moved_from = snapshot.namespaces.iter().find(|n| {
            n.class == class
                && n.script != script
                && manifest
                    .worker_by_script(&n.script)
                    .is_some_and(|w| !manifest.hosted_by(&w.key).any(|d| d.class_name == class))
        });
        if let Some(old) = moved_from {
            let old_key = manifest
                .worker_by_script(&old.script)
                .map(|w| w.key.clone())
                .unwrap_or_default();
            problems.push(
                Problem::new(
                    format!("class `{class}` is hosted by `{}` in the account; moving it to `{script}` would delete its data", old.script),
                    decl.span.clone(),
                    "implicit move",
                )
                .help(format!(
                    "to keep the data, declare a transfer: add `transferred_from = \"{old_key}\"` to this namespace; to start empty instead, first remove the class from `{}` (with --allow-data-loss), then add it here",
                    old.script
                )),
            );
            continue;
        }
        if decl.sqlite {
            lifecycle.step.new_sqlite_classes.push(class.to_string());
        } else {
            lifecycle.step.new_classes.push(class.to_string());
        }
    }

    // Classes in the account that the manifest no longer hosts here.
    for existing in snapshot.namespaces_of(script) {
        let class = existing.class.as_str();
        let still_hosted = declared
            .iter()
            .any(|d| d.class_name == class || d.renamed_from.as_deref() == Some(class));
        let transferred_away = manifest.namespaces.iter().any(|d| {
            d.class_name == class
                && d.transferred_from
                    .as_deref()
                    .is_some_and(|from| from == key || from == script)
                && d.host != ScriptRef::Worker(key.to_string())
        });
        if !still_hosted && !transferred_away {
            lifecycle.step.deleted_classes.push(class.to_string());
            lifecycle
                .data_loss
                .push(class_data_loss(class, script, &existing.id));
        }
    }
    lifecycle
}

/// An owner tag's value as people say it: `stack `shop`` or
/// `stack `shop`, environment `staging``.
fn describe_owner(owner: &str) -> String {
    match owner.split_once(':') {
        Some((stack, env)) => format!("stack `{stack}`, environment `{env}`"),
        None => format!("stack `{owner}`"),
    }
}

/// The data-loss sentence for deleting class `class` of `script`.
pub fn class_data_loss(class: &str, script: &str, namespace_id: &str) -> String {
    format!(
        "deletes Durable Object class `{class}` of `{script}` (namespace {namespace_id}) and all of its stored data"
    )
}

fn storage_switch(decl: &NamespaceDecl, existing_sqlite: bool) -> Problem {
    let (from, to) = if existing_sqlite {
        ("SQLite", "key-value")
    } else {
        ("key-value", "SQLite")
    };
    Problem::new(
        format!("class `{}` exists with {from} storage; it cannot switch to {to} storage", decl.class_name),
        decl.span.clone(),
        "storage cannot change",
    )
    .help(format!(
        "Cloudflare cannot convert a Durable Object's storage. Set `sqlite = {existing_sqlite}` to keep the data; the only way to {to} is to delete the class (losing its data) and create a new one under another name"
    ))
}

#[cfg(test)]
mod tests {
    use super::next_tag;

    #[test]
    fn next_tag_increments_the_trailing_number() {
        assert_eq!(next_tag(None), "v1");
        assert_eq!(next_tag(Some("v3")), "v4");
        assert_eq!(next_tag(Some("release-9")), "release-10");
        assert_eq!(next_tag(Some("abc")), "abc-1");
        assert_eq!(
            next_tag(Some("v18446744073709551615")),
            "v18446744073709551615-1"
        );
        assert_eq!(
            next_tag(Some("v99999999999999999999999")),
            "v99999999999999999999999-1"
        );
    }
}
