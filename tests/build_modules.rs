//! Workers built without bundling (`no_bundle`) and with a custom build
//! command (`build = "…"`).

use std::path::{Path, PathBuf};

use cfdo::build::{BuildInput, BuildOptions, build_all_with};
use cfdo::cloudflare::types::ESM_CONTENT_TYPE;

#[path = "build_support/mod.rs"]
mod support;
use support::{copy_dir, get, serve};

const PLAIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/build/plain-app"
);

fn options(tmp: &Path) -> BuildOptions {
    BuildOptions {
        esbuild: Some(cfdo::tools::ESBUILD.locate().expect("esbuild is available")),
        cache_dir: Some(tmp.join("cache")),
    }
}

fn plain_input(root: &Path) -> BuildInput {
    BuildInput {
        worker: "plain".into(),
        main: root.join("index.js"),
        root: root.to_path_buf(),
        no_bundle: true,
        build_command: None,
    }
}

fn names(set: &std::collections::BTreeSet<String>) -> Vec<&str> {
    set.iter().map(String::as_str).collect()
}

#[test]
fn no_bundle_collects_every_relatively_imported_module_as_it_is() {
    let built = build_all_with(&[plain_input(Path::new(PLAIN))], &BuildOptions::default())
        .unwrap()
        .remove(0);
    assert_eq!(built.main_module, "index.js");
    let listed: Vec<(&str, &str)> = built
        .modules
        .iter()
        .map(|m| (m.name.as_str(), m.content_type.as_str()))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("index.js", ESM_CONTENT_TYPE),
            ("lib/counter.js", ESM_CONTENT_TYPE),
            ("lib/greeting.txt", "text/plain"),
            ("lib/lazy.js", ESM_CONTENT_TYPE),
            ("lib/room.mjs", ESM_CONTENT_TYPE),
        ]
    );
    let on_disk = std::fs::read(Path::new(PLAIN).join("lib/counter.js")).unwrap();
    assert_eq!(built.modules[1].content, on_disk);
    // Re-exported from lib/counter.js, and imported then exported under the same name.
    assert_eq!(names(&built.exports), vec!["Counter", "Room"]);
    assert_eq!(built.entry, Path::new(PLAIN).join("index.js"));
}

#[test]
fn no_bundle_modules_run_in_workerd() {
    let built = build_all_with(&[plain_input(Path::new(PLAIN))], &BuildOptions::default())
        .unwrap()
        .remove(0);
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(&built, tmp.path());
    let (status, body) = get(server.port, "/");
    assert!(status.contains(" 200 "), "status: {status}, body: {body}");
    assert_eq!(body, "HELLO, PLAIN\n");
}

#[test]
fn no_bundle_hash_is_stable_and_follows_a_module_edit() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    copy_dir(Path::new(PLAIN), &a);
    copy_dir(Path::new(PLAIN), &b);
    let opts = options(tmp.path());
    let first = build_all_with(&[plain_input(&a), plain_input(&b)], &opts).unwrap();
    assert_eq!(first[0].hash, first[1].hash);
    std::fs::write(b.join("lib/greeting.txt"), "hello, edited\n").unwrap();
    let second = build_all_with(&[plain_input(&b)], &opts).unwrap();
    assert_ne!(second[0].hash, first[0].hash);
}

#[test]
fn no_bundle_reports_a_missing_module_and_its_importer() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("app");
    copy_dir(Path::new(PLAIN), &root);
    std::fs::remove_file(root.join("lib/lazy.js")).unwrap();
    let error = build_all_with(&[plain_input(&root)], &options(tmp.path())).unwrap_err();
    let text = format!("{error:?}");
    assert!(text.contains("worker `plain`"), "{text}");
    assert!(
        text.contains("lib/lazy.js (imported by index.js)"),
        "{text}"
    );
}

#[test]
fn no_bundle_refuses_a_typescript_entrypoint() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("index.ts"), "export default {};\n").unwrap();
    let mut input = plain_input(tmp.path());
    input.main = tmp.path().join("index.ts");
    let error = build_all_with(&[input], &options(tmp.path())).unwrap_err();
    assert!(
        error.to_string().contains("must be a JavaScript module"),
        "{error}"
    );
}

fn command_project(tmp: &Path) -> PathBuf {
    let root = tmp.join("project");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("src/template.js"),
        "export default { fetch() { return new Response(\"generated\"); } };\n",
    )
    .unwrap();
    root
}

#[test]
fn build_command_runs_in_the_manifest_directory_before_bundling() {
    let tmp = tempfile::tempdir().unwrap();
    let root = command_project(tmp.path());
    let input = BuildInput {
        worker: "gen".into(),
        main: root.join("dist/worker.js"),
        root: root.clone(),
        no_bundle: false,
        build_command: Some(
            "mkdir -p dist && cp src/template.js dist/worker.js && echo copied".into(),
        ),
    };
    let built = build_all_with(&[input], &options(tmp.path()))
        .unwrap()
        .remove(0);
    assert_eq!(built.main_module, "worker.js");
    assert!(String::from_utf8_lossy(&built.modules[0].content).contains("\"generated\""));
}

#[test]
fn failing_build_command_gives_its_exit_status_and_output() {
    let tmp = tempfile::tempdir().unwrap();
    let root = command_project(tmp.path());
    let input = BuildInput {
        worker: "gen".into(),
        main: root.join("src/template.js"),
        root,
        no_bundle: false,
        build_command: Some("echo 'compiler: 2 errors' >&2; exit 3".into()),
    };
    let error = build_all_with(&[input], &options(tmp.path())).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("worker `gen`"), "{text}");
    assert!(text.contains("exit status 3"), "{text}");
    assert!(text.contains("compiler: 2 errors"), "{text}");
}

#[test]
fn a_build_command_shared_by_two_workers_runs_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = command_project(tmp.path());
    let command = "echo run >> runs.log && mkdir -p dist && cp src/template.js dist/a.js && cp src/template.js dist/b.js";
    let input = |worker: &str, main: &str| BuildInput {
        worker: worker.into(),
        main: root.join(main),
        root: root.clone(),
        no_bundle: false,
        build_command: Some(command.into()),
    };
    let built = build_all_with(
        &[input("a", "dist/a.js"), input("b", "dist/b.js")],
        &options(tmp.path()),
    )
    .unwrap();
    assert_eq!(built.len(), 2);
    assert_eq!(
        std::fs::read_to_string(root.join("runs.log")).unwrap(),
        "run\n"
    );
}

#[test]
fn a_build_command_that_leaves_a_process_running_does_not_hold_up_the_build() {
    let tmp = tempfile::tempdir().unwrap();
    let root = command_project(tmp.path());
    // The background `sleep` keeps the command's output open long after it exits.
    let input = BuildInput {
        worker: "gen".into(),
        main: root.join("dist/worker.js"),
        root: root.clone(),
        no_bundle: false,
        build_command: Some(
            "mkdir -p dist && cp src/template.js dist/worker.js && (sleep 120 &) && echo started"
                .into(),
        ),
    };
    let options = options(tmp.path());
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(build_all_with(&[input], &options));
    });
    let built = receiver
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the build returned while the background process still runs")
        .unwrap()
        .remove(0);
    assert!(String::from_utf8_lossy(&built.modules[0].content).contains("\"generated\""));
}
