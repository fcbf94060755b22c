//! Broken manifests: each gives a diagnostic pointing at the right line with
//! help, and exits 1. The rendered output is pinned by snapshots.

use std::path::Path;

use assert_cmd::Command;

/// Writes a stack into a fresh directory: the manifest and empty entrypoints.
fn stack(manifest: &str, files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("cfdo.toml"), manifest).expect("write manifest");
    for file in files {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(
            path,
            "export default { fetch() { return new Response('ok') } }\n",
        )
        .expect("write file");
    }
    dir
}

/// Runs `cfdo validate` in `dir`; returns (exit code, stdout, stderr with the directory redacted).
fn validate(dir: &Path, envs: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::cargo_bin("cfdo").expect("binary");
    cmd.current_dir(dir)
        .arg("validate")
        .env("NO_COLOR", "1")
        .env_remove("NOPE_UNSET");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run cfdo");
    let redact = |s: &[u8]| String::from_utf8_lossy(s).replace(&dir.display().to_string(), "[DIR]");
    (
        out.status.code().unwrap_or(-1),
        redact(&out.stdout),
        redact(&out.stderr),
    )
}

const HEAD: &str = "[stack]\nname = \"demo\"\ncompatibility_date = \"2026-11-01\"\n\n";

#[test]
fn misspelled_key_suggests_the_known_one() {
    let dir = stack(
        &format!("{HEAD}[workers.api]\nmain = \"a.ts\"\ncompatability_date = \"2026-11-01\"\n"),
        &["a.ts"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("cfdo.toml:7:1"), "points at line 7: {err}");
    insta::assert_snapshot!(err);
}

#[test]
fn dangling_namespace_reference() {
    let dir = stack(
        &format!(
            "{HEAD}[workers.api]\nmain = \"a.ts\"\nbindings = {{ COUNTER = {{ durable_object = \"countr\" }} }}\n\n[durable_objects.counter]\nclass_name = \"Counter\"\nworker = \"api\"\n"
        ),
        &["a.ts"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("did you mean `counter`?"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn dangling_service_reference() {
    let dir = stack(
        &format!(
            "{HEAD}[workers.api]\nmain = \"a.ts\"\nbindings = {{ AUTH = {{ service = \"auht\" }} }}\n\n[workers.auth]\nmain = \"a.ts\"\n"
        ),
        &["a.ts"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn namespace_hosted_by_a_missing_worker() {
    let dir = stack(
        &format!(
            "{HEAD}[workers.api]\nmain = \"a.ts\"\n\n[durable_objects.counter]\nclass_name = \"Counter\"\nworker = \"apii\"\n"
        ),
        &["a.ts"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("cfdo.toml:10:10"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn cycle_is_spelled_out() {
    let dir = stack(
        &format!(
            "{HEAD}[workers.a]\nmain = \"a.ts\"\nbindings = {{ B = {{ service = \"b\" }} }}\n\n[workers.b]\nmain = \"a.ts\"\nbindings = {{ C = {{ service = \"c\" }} }}\n\n[workers.c]\nmain = \"a.ts\"\nbindings = {{ A = {{ service = \"a\" }} }}\n"
        ),
        &["a.ts"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("dependency cycle: a -> b -> c -> a"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn duplicate_binding_name() {
    let dir = stack(
        &format!(
            "{HEAD}[workers.api]\nmain = \"a.ts\"\n\n[workers.api.bindings]\nGREETING = {{ text = \"hi\" }}\nGREETING = {{ text = \"hello\" }}\n"
        ),
        &["a.ts"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("cfdo.toml:10:1"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn missing_main_file() {
    let dir = stack(
        &format!("{HEAD}[workers.api]\nmain = \"src/index.ts\"\n"),
        &[],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn invalid_script_name() {
    let dir = stack(
        &format!("{HEAD}[workers.api]\nname = \"My_API\"\nmain = \"a.ts\"\n"),
        &["a.ts"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn unset_variable_is_named() {
    let dir = stack(
        &format!(
            "{HEAD}[workers.api]\nmain = \"a.ts\"\nbindings = {{ HOST = {{ text = \"https://${{NOPE_UNSET}}/v1\" }} }}\n"
        ),
        &["a.ts"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("environment variable `NOPE_UNSET` is not set"),
        "{err}"
    );
    insta::assert_snapshot!(err);
}

#[test]
fn set_variable_is_expanded() {
    let dir = stack(
        &format!("{HEAD}[workers.api]\nname = \"api-${{SUFFIX_SET}}\"\nmain = \"a.ts\"\n"),
        &["a.ts"],
    );
    let (code, out, err) = validate(dir.path(), &[("SUFFIX_SET", "eu")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("is valid"), "{out}");
}

#[test]
fn toml_syntax_error() {
    let dir = stack(
        &format!("{HEAD}[workers.api]\nmain = \"a.ts\nname = 3\n"),
        &["a.ts"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid TOML"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn every_problem_of_a_file_in_one_run() {
    let dir = stack(
        &format!(
            "{HEAD}[workers.api]\nname = \"Bad_Name\"\nmain = \"nope.ts\"\nbindngs = {{}}\n\n[durable_objects.counter]\nclass_name = \"Counter\"\nworker = \"missing\"\n"
        ),
        &[],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("has 4 problems"), "{err}");
}

#[test]
fn missing_manifest_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read manifest cfdo.toml"), "{err}");
    assert!(err.contains("-f/--manifest"), "{err}");
}

#[test]
fn json_mode_reports_a_diagnostic_event() {
    let dir = stack(
        &format!("{HEAD}[workers.api]\nmain = \"missing.ts\"\n"),
        &[],
    );
    let out = Command::cargo_bin("cfdo")
        .expect("binary")
        .current_dir(dir.path())
        .args(["validate", "--json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let line = String::from_utf8_lossy(&out.stdout);
    let event: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert_eq!(event["type"], "diagnostic");
    assert_eq!(event["version"], 1);
    let text = event.to_string();
    assert!(
        text.contains("entrypoint `missing.ts` of worker `api` does not exist"),
        "{text}"
    );
}

#[test]
fn validate_without_env_checks_every_environment() {
    let dir = stack(
        &format!(
            "{HEAD}[workers.w]\nmain = \"w.js\"\n\n[env.s.workers.w.bindings]\nX = {{ durable_object = \"nope\" }}\n\n[env.t.workers.q]\nname = \"qq\"\n"
        ),
        &["w.js"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cfdo.toml:9:24"),
        "points at the binding: {err}"
    );
    assert!(
        err.contains("cfdo.toml:11:16"),
        "points at the overlay: {err}"
    );
    insta::assert_snapshot!(err);
}

#[test]
fn a_worker_named_by_its_script_and_json_that_is_not_json_are_refused() {
    let dir = stack(
        &format!(
            "{HEAD}[workers.z]\nname = \"zeta-host\"\nmain = \"w.js\"\n\n[workers.y]\nmain = \"w.js\"\n\n[workers.y.bindings]\nS = {{ service = \"zeta-host\" }}\nJ = {{ json = {{ when = 1979-05-27T07:32:00Z }} }}\nN = {{ json = [1, nan] }}\n\n[durable_objects.c]\nclass_name = \"C\"\nscript = \"zeta-host\"\n"
        ),
        &["w.js"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    let flat = err.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "cfdo.toml:13:17",
        "`zeta-host` is the script of worker `z` of this manifest",
        "refer to it by its key: `service = \"z\"`",
        "cfdo.toml:14:14",
        "a `json` value holds a TOML date-time, which JSON has no type for",
        "cfdo.toml:15:14",
        "a `json` value holds nan or inf, which JSON cannot represent",
        "cfdo.toml:19:10",
        "refer to it by its key: `worker = \"z\"`",
        "cfdo.toml has 4 problems",
    ] {
        assert!(flat.contains(expected), "{expected}: {err}");
    }
}

#[test]
fn an_entrypoint_that_is_a_directory_is_not_a_file() {
    let dir = stack(
        &format!("{HEAD}[workers.w]\nmain = \"src\"\n"),
        &["src/index.js"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("entrypoint `src` of worker `w` is not a file"),
        "{err}"
    );
    assert!(err.contains("cfdo.toml:6:8"), "{err}");
}

#[test]
fn an_unquoted_date_is_told_to_be_quoted() {
    let dir = stack(
        "[stack]\nname = \"demo\"\ncompatibility_date = 2026-11-01\n",
        &[],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("`2026-11-01` is a TOML date, and this value must be a string"),
        "{err}"
    );
    assert!(err.contains("quote it: \"2026-11-01\""), "{err}");
    assert!(err.contains("cfdo.toml:3:22"), "{err}");
}

#[test]
fn a_date_that_is_not_in_the_calendar_is_refused() {
    for (date, ok) in [
        ("2026-02-31", false),
        ("2025-02-29", false),
        ("2024-02-29", true),
    ] {
        let dir = stack(
            &format!("[stack]\nname = \"demo\"\ncompatibility_date = \"{date}\"\n"),
            &[],
        );
        let (code, _, err) = validate(dir.path(), &[]);
        if ok {
            assert_eq!(code, 0, "{date}: {err}");
        } else {
            assert_eq!(code, 1, "{date}");
            assert!(
                err.contains(&format!("`{date}` is not a compatibility date")),
                "{err}"
            );
        }
    }
}

#[test]
fn an_invalid_environment_var_name_is_reported_once_not_per_worker() {
    let dir = stack(
        &format!(
            "{HEAD}[workers.w]\nmain = \"w.js\"\n\n[workers.x]\nmain = \"w.js\"\n\n[env.s.vars]\n\"bad-name\" = \"1\"\n"
        ),
        &["w.js"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err.matches("`bad-name` is not a valid binding name")
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("cfdo.toml has 1 problem"), "{err}");
}

#[test]
fn a_rename_from_a_class_that_stays_on_the_host_is_refused() {
    let dir = stack(
        &format!(
            "{HEAD}[workers.h]\nmain = \"h.js\"\n\n[durable_objects.c]\nclass_name = \"Counter\"\nworker = \"h\"\n\n[durable_objects.c2]\nclass_name = \"Counter2\"\nworker = \"h\"\nrenamed_from = \"Counter\"\n"
        ),
        &["h.js"],
    );
    let (code, _, err) = validate(dir.path(), &[]);
    assert_eq!(code, 1, "{err}");
    let flat = err
        .split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains("namespace `c2` is renamed from `Counter`, which namespace `c` still declares on the same host"),
        "{err}"
    );
    assert!(err.contains("cfdo.toml:12:18"), "{err}");
}
