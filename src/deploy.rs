//! The plan, apply and destroy commands: the one pipeline from manifest to
//! applied ChangeSet — model, graph, build, snapshot, plan, render, confirm,
//! execute — against the Cloudflare API or the local edge.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::stream::{self, StreamExt, TryStreamExt};
use miette::{IntoDiagnostic, Result, WrapErr, miette};

use crate::apply::{self, ApplyReport, Reporting, Upload};
use crate::build::{self, BuildInput, BuiltWorker};
use crate::cli::{ApplyArgs, DestroyArgs, EdgeLocation, GlobalArgs, PlanArgs, Target};
use crate::cloudflare::types::{Binding, References, UploadMetadata};
use crate::cloudflare::{Client, ClientConfig};
use crate::commands::{Outcome, use_colour};
use crate::graph::Graph;
use crate::manifest::{self, Manifest};
use crate::plan::snapshot::Snapshot;
use crate::plan::{self, Action, ChangeSet, CodeInfo, PlanTarget};
use crate::render::{self, Style, paint};

/// A connected provider: the client and where it points.
struct Connection {
    client: Client,
    target: Target,
    edge: EdgeLocation,
}

impl Connection {
    fn plan_target(&self) -> PlanTarget {
        PlanTarget {
            api: self.client.base_url().to_string(),
            account_id: self.client.account_id().to_string(),
        }
    }
}

/// The target: `--target`, else `cloudflare` when CLOUDFLARE_API_TOKEN is set, else `local`.
pub fn resolve_target(global: &GlobalArgs) -> Target {
    global.target.unwrap_or_else(|| {
        if std::env::var_os("CLOUDFLARE_API_TOKEN").is_some_and(|v| !v.is_empty()) {
            Target::Cloudflare
        } else {
            Target::Local
        }
    })
}

fn connect(global: &GlobalArgs, edge: &EdgeLocation, manifest: &Manifest) -> Result<Connection> {
    let target = resolve_target(global);
    let mut config = match target {
        Target::Local => {
            let edge_conn = crate::edge::ensure_running(edge, global.quiet)?;
            ClientConfig::new(
                edge_conn.api_base_url,
                edge_conn.token,
                edge_conn.account_id,
            )
        }
        Target::Cloudflare => {
            // The manifest's account (its environment's, else the stack's)
            // names where the stack lives; CLOUDFLARE_ACCOUNT_ID only fills in
            // when the manifest names none.
            let account = manifest.account_id.clone();
            ClientConfig::from_lookup(|name| {
                let from_env = || std::env::var(name).ok().filter(|v| !v.is_empty());
                if name == "CLOUDFLARE_ACCOUNT_ID" {
                    account.clone().or_else(from_env)
                } else {
                    from_env()
                }
            })?
        }
    };
    config.verbose = global.verbose > 0;
    if target == Target::Local {
        // The edge answers each change before workerd serves it; the command
        // waits once at its end (see `finish`), so a burst of uploads shares
        // few workerd restarts.
        config.headers.push((
            crate::edge::DEFER_SERVING_HEADER.to_string(),
            "1".to_string(),
        ));
    }
    Ok(Connection {
        client: Client::new(config)?,
        target,
        edge: edge.clone(),
    })
}

/// The manifest of `-f` for `--env`, validated, and its dependency graph.
pub fn load(global: &GlobalArgs) -> Result<(Manifest, Graph)> {
    let manifest = manifest::load(&global.manifest, global.env.as_deref())?;
    let graph = Graph::new(&manifest).map_err(|p| miette::Report::new(manifest.errors(vec![p])))?;
    Ok((manifest, graph))
}

/// Builds every worker (all or nothing).
fn build_workers(manifest: &Manifest) -> Result<BTreeMap<String, BuiltWorker>> {
    let inputs: Vec<BuildInput> = manifest
        .workers
        .iter()
        .map(|w| BuildInput {
            worker: w.key.clone(),
            main: w.main.clone(),
            root: manifest.dir.clone(),
            no_bundle: w.no_bundle,
            build_command: w.build.clone(),
        })
        .collect();
    let built: BTreeMap<String, BuiltWorker> = build::build_all(&inputs)?
        .into_iter()
        .map(|b| (b.worker.clone(), b))
        .collect();
    // A hosted class the code does not export is known before any API call (docs/failures.md, F10).
    let problems = plan::export_problems(manifest, &code_info(&built));
    if !problems.is_empty() {
        return Err(miette::Report::new(manifest.errors(problems)));
    }
    Ok(built)
}

fn code_info(built: &BTreeMap<String, BuiltWorker>) -> BTreeMap<String, CodeInfo> {
    built
        .iter()
        .map(|(k, b)| {
            (
                k.clone(),
                CodeInfo {
                    hash: b.hash.clone(),
                    exports: b.exports.clone(),
                    entry: b.entry.clone(),
                },
            )
        })
        .collect()
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()
        .wrap_err("cannot start the async runtime")
}

fn secret_from_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// Reads the account and plans against it. The caller has verified the token.
async fn compute_plan(
    conn: &Connection,
    manifest: &Manifest,
    graph: &Graph,
    built: &BTreeMap<String, BuiltWorker>,
    parallelism: usize,
    secrets_required: bool,
) -> Result<(ChangeSet, Dependents)> {
    let scripts: Vec<String> = manifest.workers.iter().map(|w| w.script.clone()).collect();
    let snapshot = Snapshot::read(&conn.client, &scripts, parallelism).await?;
    let mut changes = plan::plan(
        manifest,
        graph,
        &code_info(built),
        &snapshot,
        &conn.plan_target(),
        &secret_from_env,
        secrets_required,
    )?;
    let dependents = dependents(&conn.client, &changes).await?;
    plan::order_deletes(&mut changes, &dependents.inside).map_err(|cycle| {
        miette!(
            help = "remove the bindings between them from the manifest and apply first, then remove the scripts",
            "the scripts this plan deletes bind each other ({}), so none can be deleted while another still binds it; nothing was changed",
            cycle.join(" -> ")
        )
    })?;
    Ok((changes, dependents))
}

fn reporting(global: &GlobalArgs) -> Reporting {
    Reporting {
        json: global.json,
        quiet: global.quiet,
        colour: use_colour(global),
    }
}

fn show_plan(global: &GlobalArgs, changes: &ChangeSet) {
    if global.json {
        render::plan_json(changes);
    } else if global.quiet {
        render::print_out(&render::plan_summary_text(changes, use_colour(global)));
    } else {
        render::print_out(&render::plan_text(changes, use_colour(global)));
    }
}

/// `cfdo plan`
pub fn plan(global: &GlobalArgs, args: &PlanArgs) -> Result<Outcome> {
    let (manifest, graph) = load(global)?;
    let built = build_workers(&manifest)?;
    let conn = connect(global, &args.edge, &manifest)?;
    // A plan to look at needs no secret values; a plan saved to be applied does.
    let (changes, _) = runtime()?.block_on(async {
        // One clear error before anything else when the token is bad (docs/failures.md, F13).
        conn.client.verify_token().await?;
        compute_plan(&conn, &manifest, &graph, &built, 10, args.out.is_some()).await
    })?;
    show_plan(global, &changes);
    if let Some(path) = &args.out {
        save_plan(path, &changes)?;
        if !global.json && !global.quiet {
            println!(
                "Saved the plan to {}; apply it with `cfdo apply {}`.",
                path.display(),
                path.display()
            );
        }
    }
    Ok(if args.detailed_exitcode && changes.has_changes() {
        Outcome::ChangesPresent
    } else {
        Outcome::Success
    })
}

fn save_plan(path: &Path, changes: &ChangeSet) -> Result<()> {
    let text = serde_json::to_string_pretty(changes).into_diagnostic()?;
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, text + "\n")
        .and_then(|()| std::fs::rename(&tmp, path))
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write the plan to {}", path.display()))
}

fn read_plan(path: &Path) -> Result<ChangeSet> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        miette!(
            help = "name a file written by `cfdo plan --out`",
            "cannot read plan {}: {e}",
            path.display()
        )
    })?;
    let not_a_plan = |e: serde_json::Error| {
        miette!(
            help = "write a new plan with `cfdo plan --out FILE`",
            "{} is not a cfdo plan: {e}",
            path.display()
        )
    };
    // The format version first: a plan of another format need not parse as this one.
    let value: serde_json::Value = serde_json::from_str(&text).map_err(not_a_plan)?;
    if let Some(format) = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        && format != u64::from(plan::changeset::PLAN_FORMAT_VERSION)
    {
        return Err(miette!(
            help = "write a new plan with this version of cfdo",
            "{} has plan format {format}, this cfdo reads format {}",
            path.display(),
            plan::changeset::PLAN_FORMAT_VERSION
        ));
    }
    serde_json::from_value(value).map_err(not_a_plan)
}

/// What of a saved plan differs from the plan made now, if anything: the
/// first change that differs (naming its script), or another part.
fn saved_plan_difference(saved: &ChangeSet, fresh: &ChangeSet) -> Option<String> {
    if saved == fresh {
        return None;
    }
    let scripts =
        |c: &ChangeSet| -> Vec<String> { c.changes.iter().map(|c| c.script.clone()).collect() };
    let (in_saved, in_fresh) = (scripts(saved), scripts(fresh));
    if let Some(extra) = in_saved.iter().find(|s| !in_fresh.contains(s)) {
        return Some(format!("its change to `{extra}`"));
    }
    if let Some(missing) = in_fresh.iter().find(|s| !in_saved.contains(s)) {
        return Some(format!("its lack of a change to `{missing}`"));
    }
    if let Some((a, _)) = saved
        .changes
        .iter()
        .zip(&fresh.changes)
        .find(|(a, b)| a != b)
    {
        return Some(format!("its change to `{}`", a.script));
    }
    Some(if saved.destroy != fresh.destroy {
        "its kind (destroy or apply)".to_string()
    } else {
        "its record of the account or the settings (fingerprints)".to_string()
    })
}

/// A saved plan must be for this stack, this target, this code and these secrets.
fn check_saved_plan(
    saved: &ChangeSet,
    manifest: &Manifest,
    conn: &Connection,
    built: &BTreeMap<String, BuiltWorker>,
) -> Result<()> {
    let stale = |what: String| {
        Err(miette!(
            help = "run `cfdo plan --out FILE` again and apply the new plan",
            "the saved plan no longer applies: {what}"
        ))
    };
    if saved.stack != manifest.stack {
        return stale(format!(
            "it is for stack {} and this manifest is stack {}",
            saved.stack, manifest.stack
        ));
    }
    if saved.env != manifest.env {
        let name = |env: &Option<String>| match env {
            Some(env) => format!("environment {env} (--env {env})"),
            None => "no environment (no --env)".to_string(),
        };
        return Err(miette!(
            help = "apply it with the --env it was planned with, or plan again for this one",
            "the saved plan is for {} and this apply is for {}",
            name(&saved.env),
            name(&manifest.env)
        ));
    }
    if saved.api != conn.client.base_url() || saved.account_id != conn.client.account_id() {
        return stale(format!(
            "it was planned against {} (account {}), not this target",
            saved.api, saved.account_id
        ));
    }
    for change in &saved.changes {
        let Some(key) = &change.worker else { continue };
        if let (Some(planned), Some(now)) = (&change.code_hash, built.get(key).map(|b| &b.hash))
            && change.action != Action::Delete
            && planned != now
        {
            return stale(format!("the code of worker `{key}` changed since the plan"));
        }
    }
    for worker in &manifest.workers {
        let mut unset = Vec::new();
        let desired = plan::desired_script(manifest, worker, &secret_from_env, &mut unset);
        if let Some(problem) = unset.into_iter().next() {
            // A secret's variable is not set: say that, not that it changed.
            return Err(miette::Report::new(manifest.errors(vec![problem])));
        }
        if saved.secret_fingerprints.get(&worker.script) != desired.secrets_fingerprint.as_ref() {
            return stale(format!(
                "a secret of worker `{}` changed since the plan",
                worker.key
            ));
        }
        if saved.config_fingerprints.get(&worker.script)
            != Some(&plan::config_fingerprint(worker, &desired))
        {
            return stale(format!(
                "the settings of worker `{}` (bindings, compatibility, workers_dev) changed since the plan",
                worker.key
            ));
        }
    }
    Ok(())
}

/// The upload of every worker the plan creates, updates or adopts, secrets filled in.
fn uploads(
    manifest: &Manifest,
    built: &BTreeMap<String, BuiltWorker>,
    changes: &ChangeSet,
) -> Result<BTreeMap<String, Upload>> {
    let mut out = BTreeMap::new();
    for change in &changes.changes {
        if !matches!(
            change.action,
            Action::Create | Action::Update | Action::Adopt
        ) {
            continue;
        }
        let Some(worker) = change.worker.as_deref().and_then(|k| manifest.worker(k)) else {
            continue;
        };
        let Some(code) = built.get(&worker.key) else {
            continue;
        };
        let mut problems = Vec::new();
        let desired = plan::desired_script(manifest, worker, &secret_from_env, &mut problems);
        if !problems.is_empty() {
            return Err(miette::Report::new(manifest.errors(problems)));
        }
        let bindings = desired
            .bindings
            .into_iter()
            .map(|b| match b {
                Binding::SecretText { name, .. } => {
                    let text = desired.secrets.get(&name).cloned();
                    Binding::SecretText { name, text }
                }
                other => other,
            })
            .collect();
        let metadata = UploadMetadata {
            main_module: Some(code.main_module.clone()),
            compatibility_date: Some(worker.compatibility_date.clone()),
            compatibility_flags: worker.compatibility_flags.clone(),
            bindings,
            tags: Some(plan::tags_for(
                &plan::owner(manifest),
                &code.hash,
                &desired.config_hash,
                desired.secrets_fingerprint.as_deref(),
                worker.workers_dev,
                &plan::workers_hash(manifest),
                &plan::protected_by_manifest(manifest, &worker.key),
            )),
            ..UploadMetadata::default()
        };
        out.insert(
            worker.script.clone(),
            Upload {
                metadata,
                modules: code.modules.clone(),
            },
        );
    }
    Ok(out)
}

/// Asks on a terminal; without one, `--yes` is required.
fn confirm(yes: bool, question: &str, flag_hint: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(miette!(
            help = format!("pass --yes to {flag_hint} without asking (as CI pipelines do)"),
            "refusing to change the account without confirmation: no terminal to ask on"
        ));
    }
    eprint!("{question} Only 'yes' is accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .into_diagnostic()?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(miette!("cancelled; nothing was changed"))
    }
}

/// Sets a flag on Ctrl-C so the executor starts no new work; a second
/// Ctrl-C quits at once (exit status 130) instead of waiting for requests
/// in flight.
fn interrupt_flag(rt: &tokio::runtime::Runtime) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            set.store(true, Ordering::SeqCst);
            eprintln!(
                "cfdo: interrupted; letting requests in flight finish, starting nothing new (Ctrl-C again quits at once)"
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "cfdo: interrupted again; quitting without waiting for requests in flight: run `cfdo plan` to see what they changed"
                );
                std::process::exit(Outcome::Interrupted.code().into());
            }
        }
    });
    flag
}

/// `cfdo apply`
pub fn apply(global: &GlobalArgs, args: &ApplyArgs) -> Result<Outcome> {
    let (manifest, graph) = load(global)?;
    let built = build_workers(&manifest)?;
    let conn = connect(global, &args.edge, &manifest)?;
    let rt = runtime()?;
    let parallelism = usize::from(args.parallelism);
    // A saved plan applies only to the account it was computed from: any of its
    // scripts changed since, and nothing of it is applied.
    let mut stale = None;
    let mut outside = Vec::new();
    // One clear error before anything else when the token is bad (docs/failures.md, F13).
    rt.block_on(conn.client.verify_token())?;
    let changes = match &args.plan_file {
        Some(path) => {
            let saved = read_plan(path)?;
            check_saved_plan(&saved, &manifest, &conn, &built)?;
            let fresh;
            (stale, fresh) = rt.block_on(async {
                let all: Vec<&plan::Change> = saved.changes.iter().collect();
                if let Err(conflict) = apply::check_fingerprints(&conn.client, &saved, &all).await {
                    return Ok::<_, miette::Report>((Some(conflict), None));
                }
                let fresh =
                    compute_plan(&conn, &manifest, &graph, &built, parallelism, true).await?;
                Ok((None, Some(fresh)))
            })?;
            // The account, manifest, code and secrets are as planned, so planning
            // again must give the saved changes; if not, the file says something
            // else than cfdo planned (edited by hand, or another cfdo version),
            // and its data-loss and protection checks cannot be trusted.
            if let Some((fresh, dependents)) = fresh {
                if let Some(what) = saved_plan_difference(&saved, &fresh) {
                    return Err(miette!(
                        help = "run `cfdo plan --out FILE` again and apply the new plan",
                        "the saved plan no longer applies: {what} is not what cfdo plans for this manifest and account (the file was edited, or written by another version of cfdo); nothing was changed"
                    ));
                }
                outside = dependents.outside;
            }
            saved
        }
        None => {
            let (changes, dependents) = rt.block_on(compute_plan(
                &conn,
                &manifest,
                &graph,
                &built,
                parallelism,
                true,
            ))?;
            outside = dependents.outside;
            changes
        }
    };
    show_plan(global, &changes);
    if let Some(conflict) = stale {
        let report = ApplyReport {
            not_applied: changes
                .changes
                .iter()
                .filter(|c| !c.is_noop())
                .map(|c| c.script.clone())
                .collect(),
            conflict: Some(conflict),
            ..ApplyReport::default()
        };
        return finish(global, &conn, &rt, &report, Some(&manifest));
    }
    let summary = changes.summary();
    if summary.data_loss && !args.allow_data_loss {
        return Err(miette!(
            help = "if losing that data is intended, apply again with --allow-data-loss; otherwise restore the class in the manifest (or rename it with `renamed_from`)",
            "refusing to apply: this plan destroys stored Durable Object data (see DATA LOSS above); nothing was changed"
        ));
    }
    let adopting: Vec<&str> = changes
        .changes
        .iter()
        .filter(|c| c.action == Action::Adopt)
        .map(|c| c.script.as_str())
        .collect();
    if !adopting.is_empty() && !args.adopt {
        return Err(miette!(
            help = "if this stack should manage them from now on, apply again with --adopt; otherwise rename the workers",
            "refusing to take over {} not deployed by stack {}: {}; nothing was changed",
            if adopting.len() == 1 {
                "a script"
            } else {
                "scripts"
            },
            plan::owner(&manifest),
            adopting.join(", ")
        ));
    }
    // A deleted class or script still bound from outside the stack would fail half-way through.
    if !outside.is_empty() {
        return Err(miette!(
            help = "remove those bindings first (or keep what they bind in the manifest), then apply again",
            "refusing to apply: scripts outside the stack still depend on what this plan deletes: {}; nothing was changed",
            outside.join("; ")
        ));
    }
    if changes.has_changes() {
        confirm(args.yes, "Apply these changes?", "apply")?;
        let uploads = uploads(&manifest, &built, &changes)?;
        let cancel = interrupt_flag(&rt);
        let report = rt.block_on(apply::execute(
            &conn.client,
            &changes,
            &uploads,
            parallelism,
            false,
            reporting(global),
            cancel,
        ))?;
        finish(global, &conn, &rt, &report, Some(&manifest))
    } else {
        finish(global, &conn, &rt, &ApplyReport::default(), Some(&manifest))
    }
}

/// Who depends on what a plan deletes, from the account's references.
#[derive(Debug, Default)]
struct Dependents {
    /// Scripts outside the plan that bind what it deletes: the namespaces of
    /// deleted scripts and deleted classes, and deleted scripts themselves
    /// (service bindings). Each entry names the outside script and what it
    /// depends on.
    outside: Vec<String>,
    /// For each script the plan deletes, the other scripts of the plan that
    /// bind it (its Durable Objects or itself).
    inside: BTreeMap<String, BTreeSet<String>>,
}

async fn dependents(client: &Client, changes: &ChangeSet) -> Result<Dependents> {
    let in_plan: Vec<&str> = changes.changes.iter().map(|c| c.script.as_str()).collect();
    let deleted_classes = |change: &plan::Change| -> Vec<String> {
        change
            .migration
            .iter()
            .flat_map(|m| &m.steps)
            .flat_map(|s| s.deleted_classes.clone())
            .collect()
    };
    // The changes that delete something another script could still bind.
    let deleting: Vec<&plan::Change> = changes
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete || !deleted_classes(c).is_empty())
        .collect();
    let namespaces = if deleting.iter().any(|c| c.action != Action::Delete) {
        client.list_namespaces().await?
    } else {
        Vec::new()
    };
    let references: Vec<(&plan::Change, References)> = stream::iter(deleting)
        .map(|change| async move {
            client
                .references(&change.script)
                .await
                .map(|refs| (change, refs))
        })
        .buffer_unordered(10)
        .try_collect()
        .await?;
    let mut outside = Vec::new();
    let mut inside: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (change, refs) in references {
        let deletes_script = change.action == Action::Delete;
        if deletes_script {
            let binders = refs
                .durable_objects
                .iter()
                .map(|d| d.dependent_service.as_str())
                .chain(refs.services.iter().map(|s| s.service.as_str()))
                .filter(|s| *s != change.script && in_plan.contains(s))
                .map(str::to_string);
            inside
                .entry(change.script.clone())
                .or_default()
                .extend(binders);
        }
        let classes = deleted_classes(change);
        // The namespaces this change deletes: all of a deleted script's, or the deleted classes'.
        let deleted_ids: Vec<&str> = namespaces
            .iter()
            .filter(|n| n.script == change.script && classes.contains(&n.class))
            .map(|n| n.id.as_str())
            .collect();
        for d in refs.durable_objects {
            let deleted = deletes_script || deleted_ids.contains(&d.namespace_id.as_str());
            if deleted && !in_plan.contains(&d.dependent_service.as_str()) {
                outside.push(format!(
                    "`{}` binds Durable Objects of `{}`",
                    d.dependent_service, change.script
                ));
            }
        }
        if deletes_script {
            for s in refs.services {
                if !in_plan.contains(&s.service.as_str()) {
                    outside.push(format!(
                        "`{}` has a service binding to `{}`",
                        s.service, change.script
                    ));
                }
            }
        }
    }
    outside.sort();
    outside.dedup();
    Ok(Dependents { outside, inside })
}

/// `cfdo destroy`
pub fn destroy(global: &GlobalArgs, args: &DestroyArgs) -> Result<Outcome> {
    // The manifest must be valid (a cycle is refused); the order comes from the account.
    let (manifest, _graph) = load(global)?;
    let conn = connect(global, &args.edge, &manifest)?;
    let rt = runtime()?;
    let changes = rt.block_on(async {
        conn.client.verify_token().await?;
        let snapshot = Snapshot::read(&conn.client, &[], 10).await?;
        let mut changes = plan::plan_destroy(&manifest, &snapshot, &conn.plan_target())?;
        // Scripts outside the stack that still bind what it is about to delete
        // (docs/failures.md, F14); inside it, the account's bindings give the order.
        let dependents = dependents(&conn.client, &changes).await?;
        if let Err(cycle) = plan::order_deletes(&mut changes, &dependents.inside)
            && !args.force
        {
            return Err(miette!(
                help = "destroy with --force to delete them all anyway",
                "the stack's scripts bind each other ({}), so none can be deleted while another still binds it; nothing was changed",
                cycle.join(" -> ")
            ));
        }
        Ok::<_, miette::Report>((changes, dependents.outside))
    })?;
    let (changes, outside) = changes;
    show_plan(global, &changes);
    if !outside.is_empty() && !args.force {
        return Err(miette!(
            help = "remove those bindings first, or destroy with --force to delete anyway (those scripts will then fail)",
            "refusing to destroy: scripts outside the stack still depend on it: {}",
            outside.join("; ")
        ));
    }
    if changes.has_changes() {
        confirm(
            args.yes,
            "Destroy these scripts and the data above?",
            "destroy",
        )?;
        let cancel = interrupt_flag(&rt);
        let report = rt.block_on(apply::execute(
            &conn.client,
            &changes,
            &BTreeMap::new(),
            usize::from(args.parallelism),
            args.force,
            reporting(global),
            cancel,
        ))?;
        finish(global, &conn, &rt, &report, None)
    } else {
        finish(global, &conn, &rt, &ApplyReport::default(), None)
    }
}

/// Prints the closing summary (and, after an apply, each worker's URL); decides the outcome.
fn finish(
    global: &GlobalArgs,
    conn: &Connection,
    rt: &tokio::runtime::Runtime,
    report: &ApplyReport,
    manifest: Option<&Manifest>,
) -> Result<Outcome> {
    // The time reported covers the wait until the edge serves the result.
    let mut elapsed = report.elapsed;
    if conn.target == Target::Local && !report.applied.is_empty() {
        // Only a successful apply reports a wait that failed; a failed one reports its failure.
        let waiting = std::time::Instant::now();
        let served =
            crate::edge::wait_until_served(&conn.edge, std::time::Duration::from_secs(120));
        elapsed += waiting.elapsed();
        if report.succeeded() {
            served?;
        }
    }
    let stats = conn.client.stats();
    let waited = stats.budget_wait + stats.retry_after_wait;
    let urls = match manifest {
        Some(m) if report.succeeded() => worker_urls(conn, rt, m),
        _ => BTreeMap::new(),
    };
    let colour = use_colour(global);
    if global.json {
        render::json_line(&serde_json::json!({
            "type": "apply_summary",
            "applied": report.applied.iter().map(|o| &o.script).collect::<Vec<_>>(),
            "failed": report.failed.iter().map(|o| serde_json::json!({"script": o.script, "error": o.result.as_ref().err()})).collect::<Vec<_>>(),
            "not_applied": report.not_applied,
            "interrupted": report.interrupted,
            "conflict": report.conflict,
            "elapsed_ms": elapsed.as_millis() as u64,
            "requests": stats.requests,
            "retries": stats.retries,
            "waited_ms": waited.as_millis() as u64,
        }));
        for (script, url) in &urls {
            render::json_line(&serde_json::json!({"type": "output", "script": script, "url": url}));
        }
    } else {
        let verb = if manifest.is_some() {
            "applied"
        } else {
            "destroyed"
        };
        let mut line = format!(
            "{} {verb}, {} failed, {} not {verb} in {} ({} API requests",
            report.applied.len(),
            report.failed.len(),
            report.not_applied.len(),
            render::duration(elapsed),
            stats.requests
        );
        if stats.retries > 0 {
            line.push_str(&format!(", {} retried", stats.retries));
        }
        if waited.as_millis() >= 50 {
            line.push_str(&format!(
                ", {:.1}s waiting for the rate limit",
                waited.as_secs_f64()
            ));
        }
        line.push(')');
        // The plan already said that nothing changes.
        let attempted = !report.applied.is_empty() || !report.succeeded();
        if attempted {
            eprintln!("{line}");
        }
        if !report.applied.is_empty() && !report.succeeded() {
            let applied: Vec<&str> = report.applied.iter().map(|o| o.script.as_str()).collect();
            eprintln!("applied: {}", applied.join(", "));
        }
        if !report.not_applied.is_empty() {
            eprintln!("not applied: {}", report.not_applied.join(", "));
        }
        for (script, url) in &urls {
            render::print_out(&format!(
                "{} {script}: {url}\n",
                paint(Style::Bold, "url", colour)
            ));
        }
    }
    if report.succeeded() {
        return Ok(Outcome::Success);
    }
    let first = report.failed.first().map(|o| {
        format!(
            "{}: {}",
            o.script,
            o.result.as_ref().err().map(String::as_str).unwrap_or("")
        )
    });
    if let (None, Some(conflict)) = (&first, &report.conflict) {
        return Err(miette!(
            help = "run `cfdo plan` again and apply the new plan; what was applied is listed above",
            "apply stopped: {conflict}"
        ));
    }
    // A migration tag that moved under the apply: someone else applied meanwhile.
    let tag_moved = report.failed.iter().any(|o| {
        o.result
            .as_ref()
            .err()
            .is_some_and(|e| e.contains("[code: 10079]"))
    });
    let help = if tag_moved {
        "a script's migration tag changed during this apply (another apply, or another tool, ran meanwhile): run `cfdo plan` to see the account as it is now, then apply again"
    } else {
        "fix the cause and run apply again: it continues from what the account holds now"
    };
    Err(miette!(
        help = help,
        "{}",
        match (first, report.interrupted) {
            (Some(first), _) => format!("apply stopped after a failure: {first}"),
            (None, true) =>
                "apply was interrupted; what was not applied is listed above".to_string(),
            (None, false) => "apply did not finish".to_string(),
        }
    ))
}

/// Where each of the manifest's workers answers: the edge's local URLs, or workers.dev.
fn worker_urls(
    conn: &Connection,
    rt: &tokio::runtime::Runtime,
    manifest: &Manifest,
) -> BTreeMap<String, String> {
    match conn.target {
        Target::Local => crate::edge::worker_urls(&conn.edge)
            .unwrap_or_default()
            .into_iter()
            .filter(|(script, _)| manifest.worker_by_script(script).is_some())
            .collect(),
        Target::Cloudflare => {
            let Ok(Some(subdomain)) = rt.block_on(conn.client.account_subdomain()) else {
                return BTreeMap::new();
            };
            manifest
                .workers
                .iter()
                .filter(|w| w.workers_dev)
                .map(|w| {
                    (
                        w.script.clone(),
                        format!("https://{}.{subdomain}.workers.dev", w.script),
                    )
                })
                .collect()
        }
    }
}
