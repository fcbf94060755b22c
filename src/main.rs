//! cfdo's entry point: parse arguments, run the command, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cfdo::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version exit 0; a usage error exits 1, never 2 (which means "changes present").
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                cfdo::commands::Outcome::Failure.exit_code()
            } else {
                std::process::ExitCode::SUCCESS
            };
        }
    };
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
