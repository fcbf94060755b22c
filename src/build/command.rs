//! Custom build commands (`build = "…"` on a worker): run with `sh -c` in the
//! manifest's directory before bundling, their output shown line by line.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use miette::{Result, miette};

use super::BuildInput;

/// How many of a failed command's last output lines the error repeats.
const TAIL_LINES: usize = 20;

/// Runs each distinct (directory, command) pair once, in parallel, and fails
/// if any of them fails.
pub(super) fn run_all(inputs: &[BuildInput]) -> Result<()> {
    let mut jobs: Vec<(&Path, &str, Vec<&str>)> = Vec::new();
    for input in inputs {
        let Some(command) = input.build_command.as_deref() else {
            continue;
        };
        match jobs
            .iter_mut()
            .find(|(root, cmd, _)| *root == input.root.as_path() && *cmd == command)
        {
            Some((_, _, workers)) => workers.push(&input.worker),
            None => jobs.push((&input.root, command, vec![&input.worker])),
        }
    }
    if jobs.is_empty() {
        return Ok(());
    }
    let errors: Mutex<Vec<miette::Report>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for (root, command, workers) in &jobs {
            let errors = &errors;
            scope.spawn(move || {
                if let Err(error) = run(root, command, &workers.join("`, `"))
                    && let Ok(mut list) = errors.lock()
                {
                    list.push(error);
                }
            });
        }
    });
    let mut errors = errors.into_inner().unwrap_or_default();
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        n => Err(miette!(
            help = "fix the build commands and run again; nothing was uploaded",
            "{n} build commands failed:\n\n{}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n\n")
        )),
    }
}

/// Runs one command, echoing its output to stderr prefixed with the workers' names.
fn run(root: &Path, command: &str, workers: &str) -> Result<()> {
    eprintln!(
        "[{workers}] build: running `{command}` in {}",
        root.display()
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            miette!(
                help = "check that the manifest's directory exists and `sh` is installed",
                "worker `{workers}`: cannot start build command `{command}` in {}: {e}",
                root.display()
            )
        })?;
    let tail: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    std::thread::scope(|scope| {
        let tail = &tail;
        if let Some(out) = stdout {
            scope.spawn(move || echo(out, workers, tail));
        }
        if let Some(err) = stderr {
            scope.spawn(move || echo(err, workers, tail));
        }
    });
    let status = child.wait().map_err(|e| {
        miette!("worker `{workers}`: build command `{command}` could not be waited for: {e}")
    })?;
    if status.success() {
        return Ok(());
    }
    let how = match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "a signal".to_string(),
    };
    let tail = tail.into_inner().unwrap_or_default();
    let shown = if tail.is_empty() {
        "(it printed nothing)".to_string()
    } else {
        tail.into_iter()
            .map(|line| format!("  | {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Err(miette!(
        help = format!(
            "run `{command}` in {} to reproduce, fix it, then run again; nothing was uploaded",
            root.display()
        ),
        "worker `{workers}`: build command `{command}` failed with {how}; its last output:\n{shown}"
    ))
}

fn echo(stream: impl Read, workers: &str, tail: &Mutex<VecDeque<String>>) {
    let reader = BufReader::new(stream);
    for line in reader.split(b'\n') {
        let Ok(line) = line else { break };
        let line = String::from_utf8_lossy(&line)
            .trim_end_matches('\r')
            .to_string();
        eprintln!("[{workers}] {line}");
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}
