//! cfdo's entry point: parse arguments, run the command, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cfdo::cli::Cli::parse();
    cfdo::commands::init_diagnostics(&cli.global);
    let json = cli.global.json;
    match cfdo::commands::run(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(report) => {
            cfdo::commands::print_error(&report, json);
            cfdo::commands::Outcome::Failure.exit_code()
        }
    }
}
