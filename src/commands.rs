//! Runs each CLI command and decides its outcome; the one place outcomes map to exit codes.

use std::process::ExitCode;

use miette::Result;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::manifest;

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// How a command ended. Errors are `Err(Report)` and exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A plan with changes under `--detailed-exitcode`.
    ChangesPresent,
    Failure,
    /// A second Ctrl-C during `apply` or `destroy`: quit without waiting.
    Interrupted,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Failure => 1,
            Outcome::ChangesPresent => 2,
            Outcome::Interrupted => 130,
        }
    }

    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

/// Sets up miette's renderer: colour only on a terminal and without NO_COLOR / --no-color.
pub fn init_diagnostics(global: &GlobalArgs) {
    let colour = use_colour(global);
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(colour)
                .unicode(colour)
                .terminal_links(false)
                .context_lines(1)
                .build(),
        )
    }));
}

/// Whether human output may use colour.
pub fn use_colour(global: &GlobalArgs) -> bool {
    use std::io::IsTerminal;
    !global.no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal()
}

/// Prints an error: a rendered diagnostic on stderr, or with `--json` a
/// `diagnostic` event on stdout.
pub fn print_error(report: &miette::Report, json: bool) {
    if json {
        let mut rendered = String::new();
        let diagnostic =
            match miette::JSONReportHandler::new().render_report(&mut rendered, report.as_ref()) {
                Ok(()) => serde_json::from_str(&rendered)
                    .unwrap_or(serde_json::Value::String(report.to_string())),
                Err(_) => serde_json::Value::String(report.to_string()),
            };
        crate::render::json_line(
            &serde_json::json!({"type": "diagnostic", "severity": "error", "diagnostic": diagnostic}),
        );
    } else if let Some(errors) = report.downcast_ref::<manifest::diagnostic::ManifestErrors>() {
        // Each problem on its own, then the count, as compilers close a failed build.
        for problem in &errors.problems {
            eprintln!("{:?}", miette::Report::new(problem.clone()));
        }
        eprintln!("{errors}");
    } else {
        eprintln!("{report:?}");
    }
}

pub fn run(cli: Cli) -> Result<Outcome> {
    match &cli.command {
        Command::Edge(args) => crate::edge::run(args, &cli.global),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "cfdo", &mut std::io::stdout());
            Ok(Outcome::Success)
        }
        Command::Validate => {
            let (manifest, graph) = crate::deploy::load(&cli.global)?;
            if cli.global.env.is_none() {
                manifest::check_environments(&manifest)?;
            }
            if cli.global.json {
                crate::render::json_line(&serde_json::json!({
                    "type": "validated",
                    "stack": manifest.stack,
                    "env": manifest.env,
                    "workers": manifest.workers.len(),
                    "durable_objects": manifest.namespaces.len(),
                    "levels": graph.levels.len(),
                }));
            } else if !cli.global.quiet {
                println!(
                    "{} is valid: stack {}, {} worker{}, {} Durable Object namespace{}, {} level{}",
                    cli.global.manifest.display(),
                    manifest.stack,
                    manifest.workers.len(),
                    plural(manifest.workers.len()),
                    manifest.namespaces.len(),
                    plural(manifest.namespaces.len()),
                    graph.levels.len(),
                    plural(graph.levels.len()),
                );
            }
            Ok(Outcome::Success)
        }
        Command::Graph(args) => {
            let (manifest, graph) = crate::deploy::load(&cli.global)?;
            if cli.global.json {
                crate::render::json_line(&serde_json::json!({
                    "type": "graph",
                    "stack": manifest.stack,
                    "levels": graph.levels.iter().map(|level| level.iter().map(|key| serde_json::json!({
                        "worker": key,
                        "script": manifest.worker(key).map(|w| w.script.as_str()),
                        "needs": graph.edges.iter().filter(|e| &e.client == key).map(|e| e.host.as_str()).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>()).collect::<Vec<_>>(),
                }));
            } else {
                print!("{}", graph.render(&manifest, args.format));
            }
            Ok(Outcome::Success)
        }
        Command::Plan(args) => crate::deploy::plan(&cli.global, args),
        Command::Apply(args) => crate::deploy::apply(&cli.global, args),
        Command::Destroy(args) => crate::deploy::destroy(&cli.global, args),
    }
}
