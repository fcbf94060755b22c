//! Runs each CLI command and decides its outcome; the one place outcomes map to exit codes.

use std::process::ExitCode;

use miette::Result;

use crate::cli::{Cli, Command, GlobalArgs};

/// How a command ended. Errors are `Err(Report)` and exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A plan with changes under `--detailed-exitcode`.
    ChangesPresent,
    Failure,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Failure => ExitCode::from(1),
            Outcome::ChangesPresent => ExitCode::from(2),
        }
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

/// Prints an error report to stderr.
pub fn print_error(report: &miette::Report) {
    eprintln!("{report:?}");
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
        _ => Err(miette::miette!("not implemented yet")),
    }
}
