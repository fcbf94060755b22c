//! The executor: runs a ChangeSet phase by phase and level by level, each
//! level in waves of `parallelism` changes at once. Before each wave, its
//! scripts are re-checked against the plan's fingerprints (optimistic
//! concurrency; see docs/concurrency.md). It stops after the first level with
//! a failure, at once on a conflict or an interrupt, and reports what was
//! applied and what was not.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use miette::Result;

use crate::cloudflare::types::{Module, UploadMetadata};
use crate::cloudflare::{Client, Prior};
use crate::plan::{Action, Change, ChangeSet, Fingerprint};
use crate::render::{Style, json_line, paint};

/// What an upload sends besides the plan's migration: modules and metadata.
#[derive(Debug, Clone)]
pub struct Upload {
    pub metadata: UploadMetadata,
    pub modules: Vec<Module>,
}

/// How the executor reports progress.
#[derive(Debug, Clone, Copy)]
pub struct Reporting {
    pub json: bool,
    pub quiet: bool,
    pub colour: bool,
}

/// The outcome of one change.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub script: String,
    pub action: Action,
    pub result: std::result::Result<Duration, String>,
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub applied: Vec<Outcome>,
    pub failed: Vec<Outcome>,
    /// Scripts whose change was not attempted (after a failure or an interrupt).
    pub not_applied: Vec<String>,
    pub interrupted: bool,
    /// Why the apply stopped before a level: a script changed in the account
    /// since the plan, or the account could not be re-read.
    pub conflict: Option<String>,
    pub elapsed: Duration,
}

impl ApplyReport {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty()
            && self.not_applied.is_empty()
            && !self.interrupted
            && self.conflict.is_none()
    }
}

/// Runs the changes. `uploads` holds the upload of every create/update/adopt, by script;
/// `force_delete` deletes scripts even while others reference them.
pub async fn execute(
    client: &Client,
    changes: &ChangeSet,
    uploads: &BTreeMap<String, Upload>,
    parallelism: usize,
    force_delete: bool,
    reporting: Reporting,
    cancel: Arc<AtomicBool>,
) -> Result<ApplyReport> {
    let started = Instant::now();
    let mut report = ApplyReport::default();
    let steps = changes.steps();
    let total: usize = steps.iter().map(Vec::len).sum();
    let progress = progress_bar(total, reporting);
    // `halt`: a conflict or an interrupt, nothing more starts; `failed_level`:
    // a change failed, the rest of its level still runs, no later level does.
    let mut halt = false;
    let mut failed_level = false;
    for step in steps {
        if failed_level {
            halt = true;
        }
        // A level runs in waves of `parallelism` changes. Before each wave, one
        // read of the account: nothing in the wave changed since the plan
        // (optimistic concurrency; docs/concurrency.md).
        for wave in step.chunks(parallelism.max(1)) {
            if halt || cancel.load(Ordering::SeqCst) {
                report.interrupted |= cancel.load(Ordering::SeqCst);
                report
                    .not_applied
                    .extend(wave.iter().map(|c| c.script.clone()));
                continue;
            }
            if let Err(conflict) = check_fingerprints(client, changes, wave).await {
                report.conflict = Some(conflict);
                report
                    .not_applied
                    .extend(wave.iter().map(|c| c.script.clone()));
                halt = true;
                continue;
            }
            let results: Vec<Outcome> = stream::iter(wave.iter().copied())
                .map(|change| {
                    let cancel = cancel.clone();
                    let progress = progress.clone();
                    async move {
                        if cancel.load(Ordering::SeqCst) {
                            return None;
                        }
                        event(reporting, change, "started", None, &progress);
                        let begun = Instant::now();
                        let result = run_change(client, changes, change, uploads, force_delete)
                            .await
                            .map(|()| begun.elapsed());
                        let outcome = Outcome {
                            script: change.script.clone(),
                            action: change.action,
                            result,
                        };
                        let status = if outcome.result.is_ok() {
                            "done"
                        } else {
                            "failed"
                        };
                        event(reporting, change, status, Some(&outcome), &progress);
                        Some(outcome)
                    }
                })
                .buffer_unordered(parallelism.max(1))
                .filter_map(|o| async move { o })
                .collect()
                .await;
            let attempted: Vec<&str> = results.iter().map(|o| o.script.as_str()).collect();
            let skipped: Vec<String> = wave
                .iter()
                .filter(|c| !attempted.contains(&c.script.as_str()))
                .map(|c| c.script.clone())
                .collect();
            if !skipped.is_empty() {
                report.interrupted = true;
                report.not_applied.extend(skipped);
                halt = true;
            }
            for outcome in results {
                if outcome.result.is_ok() {
                    report.applied.push(outcome);
                } else {
                    failed_level = true;
                    report.failed.push(outcome);
                }
            }
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn run_change(
    client: &Client,
    changes: &ChangeSet,
    change: &Change,
    uploads: &BTreeMap<String, Upload>,
    force_delete: bool,
) -> std::result::Result<(), String> {
    match change.action {
        Action::NoOp => Ok(()),
        Action::Delete => client
            .delete_script(&change.script, force_delete)
            .await
            .map_err(|e| e.to_string()),
        Action::Create | Action::Update | Action::Adopt => {
            let upload = uploads
                .get(&change.script)
                .ok_or_else(|| format!("no build output for `{}`", change.script))?;
            let mut metadata = upload.metadata.clone();
            metadata.migrations = change.migration.clone();
            // What the plan saw (and the re-check just confirmed): lets the
            // client recognise an attempt whose answer was lost.
            let uploaded = match changes.fingerprints.get(&change.script) {
                Some(planned) => {
                    let prior = match planned {
                        None => Prior::Absent,
                        Some(f) => Prior::Listed {
                            etag: f.etag.clone(),
                            modified_on: f.modified_on.clone(),
                        },
                    };
                    client
                        .upload_script_after(&change.script, &metadata, &upload.modules, &prior)
                        .await
                }
                None => {
                    client
                        .upload_script(&change.script, &metadata, &upload.modules)
                        .await
                }
            };
            uploaded.map_err(|e| e.to_string())?;
            if let Some(enabled) = change.workers_dev {
                client
                    .set_script_subdomain(&change.script, enabled)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    }
}

/// Refuses to change scripts that changed in the account since the plan;
/// the error names the script (or the failed read) and what to do.
pub async fn check_fingerprints(
    client: &Client,
    changes: &ChangeSet,
    step: &[&Change],
) -> std::result::Result<(), String> {
    if step
        .iter()
        .all(|c| !changes.fingerprints.contains_key(&c.script))
    {
        return Ok(());
    }
    let scripts = client.list_scripts().await.map_err(|e| {
        format!("cannot re-read the account before changing it, so nothing more was applied: {e}")
    })?;
    let now: BTreeMap<&str, Fingerprint> = scripts
        .iter()
        .map(|s| (s.id.as_str(), Fingerprint::from(s)))
        .collect();
    for change in step {
        if let Some(planned) = changes.fingerprints.get(&change.script) {
            compare(change, planned.as_ref(), now.get(change.script.as_str()))?;
        }
    }
    Ok(())
}

/// The conflict when a script's fingerprint is not what the plan saw.
fn compare(
    change: &Change,
    planned: Option<&Fingerprint>,
    current: Option<&Fingerprint>,
) -> std::result::Result<(), String> {
    if planned == current {
        return Ok(());
    }
    let describe = |f: Option<&Fingerprint>| match f {
        None => "absent".to_string(),
        Some(f) => format!(
            "modified {}",
            if f.modified_on.is_empty() {
                &f.etag
            } else {
                &f.modified_on
            }
        ),
    };
    Err(format!(
        "script `{}` changed in the account since the plan (planned: {}, now: {}): another deploy or a person changed it",
        change.script,
        describe(planned),
        describe(current)
    ))
}

fn progress_bar(total: usize, reporting: Reporting) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if reporting.json || reporting.quiet || !std::io::stderr().is_terminal() || total == 0 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} {wide_msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    Some(bar)
}

fn event(
    reporting: Reporting,
    change: &Change,
    status: &str,
    outcome: Option<&Outcome>,
    bar: &Option<indicatif::ProgressBar>,
) {
    if reporting.json {
        let mut value = serde_json::json!({
            "type": "apply_progress",
            "script": change.script,
            "worker": change.worker,
            "action": change.action,
            "status": status,
        });
        if let Some(o) = outcome {
            match &o.result {
                Ok(d) => value["elapsed_ms"] = (d.as_millis() as u64).into(),
                Err(e) => value["error"] = e.clone().into(),
            }
        }
        json_line(&value);
        return;
    }
    let Some(outcome) = outcome else {
        if let Some(bar) = bar {
            bar.set_message(format!("{} {}", change.action.verb(), change.script));
        }
        return;
    };
    let line = match &outcome.result {
        Ok(d) => format!(
            "  {} {} {} ({})",
            paint(Style::Green, "ok", reporting.colour),
            change.script,
            change.action.past_tense(),
            crate::render::duration(*d)
        ),
        Err(e) => format!(
            "  {} {}: {e}",
            paint(Style::Red, "failed", reporting.colour),
            change.script
        ),
    };
    match bar {
        Some(bar) => {
            bar.inc(1);
            bar.println(line);
        }
        None if !reporting.quiet || outcome.result.is_err() => eprintln!("{line}"),
        None => {}
    }
}
