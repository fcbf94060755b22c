//! The command line itself: help text, completions, and how the target is chosen.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

fn cfdo() -> Command {
    let mut cmd = Command::cargo_bin("cfdo").expect("binary");
    cmd.env("NO_COLOR", "1");
    cmd
}

#[test]
fn help_documents_exit_codes() {
    cfdo().arg("--help").assert().code(0).stdout(contains(
        "Exit codes: 0 success, 1 error, 2 changes present",
    ));
}

#[test]
fn completions_for_bash_name_the_subcommands() {
    cfdo()
        .args(["completions", "bash"])
        .assert()
        .code(0)
        .stdout(contains("destroy"))
        .stdout(contains("_cfdo"));
}

#[test]
fn unknown_flag_is_a_usage_error_exiting_1_not_2() {
    cfdo()
        .args(["plan", "--no-such-flag"])
        .assert()
        .code(1)
        .stderr(contains("unexpected argument"));
}

#[test]
fn a_token_in_the_environment_selects_the_cloudflare_target() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/counter/cfdo.toml");
    cfdo()
        .env("CLOUDFLARE_API_TOKEN", "not-a-real-token")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .arg("plan")
        .arg("-f")
        .arg(&manifest)
        .assert()
        .code(1)
        .stderr(contains("CLOUDFLARE_ACCOUNT_ID is not set"))
        .stderr(contains("not-a-real-token").not());
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cfdo"))
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cfdo");
    // The reader goes away before cfdo writes, as `cfdo … | head -1` does.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let status = child.wait().expect("wait for cfdo");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr, "");
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}");
}
