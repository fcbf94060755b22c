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
    // Commands that change something finish their work when their reader goes
    // away; the edge server handles closed sockets and pipes itself.
    let changes_something = matches!(
        &cli.command,
        cfdo::cli::Command::Apply(_) | cfdo::cli::Command::Destroy(_)
    ) || matches!(
        &cli.command,
        cfdo::cli::Command::Edge(edge) if matches!(edge.command, cfdo::cli::EdgeCommand::Serve(_))
    );
    if !changes_something {
        end_quietly_on_closed_pipe();
    }
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

/// Output to a reader that went away (`cfdo plan | head`) ends cfdo at once and
/// quietly, as it ends other command-line tools, instead of failing a print.
/// `apply`, `destroy` and the edge server keep SIGPIPE ignored: they write
/// through `render::print_out`, which ignores a closed reader, and their
/// sockets and workerd's pipes report a closed peer as an error to handle.
fn end_quietly_on_closed_pipe() {
    // SAFETY: called before any thread starts; restores the default disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
