//! Custom build commands (`build = "…"` on a worker): run with `sh -c` in the
//! manifest's directory before bundling, their output shown line by line.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use miette::{Result, miette};

use super::BuildInput;

/// How many of a failed command's last output lines the error repeats.
const TAIL_LINES: usize = 20;

/// How long, once a command has exited, its output may still take to close.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

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
    // The output is read on threads of their own: a process the command left
    // running in the background (`server &`) may keep the pipes open after
    // the command exits, and cfdo does not wait for that.
    let tail: Arc<Mutex<VecDeque<String>>> = Arc::new(Mutex::new(VecDeque::new()));
    let (done, finished) = mpsc::channel::<()>();
    let mut readers = 0;
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let (tail, done, workers) = (tail.clone(), done.clone(), workers.to_string());
        readers += 1;
        std::thread::spawn(move || {
            echo(stream, &workers, &tail);
            let _ = done.send(());
        });
    }
    let status = child.wait().map_err(|e| {
        miette!("worker `{workers}`: build command `{command}` could not be waited for: {e}")
    })?;
    let deadline = Instant::now() + OUTPUT_GRACE;
    for _ in 0..readers {
        let left = deadline.saturating_duration_since(Instant::now());
        if finished.recv_timeout(left).is_err() {
            eprintln!(
                "[{workers}] build: `{command}` exited, but a process it started still holds its output; not waiting for it"
            );
            break;
        }
    }
    let tail = tail.lock().map(|t| t.clone()).unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let how = match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "a signal".to_string(),
    };
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
