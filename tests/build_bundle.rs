//! Bundling workers with esbuild: the bundle runs in workerd, hashes are
//! stable and follow edits, the cache never serves a stale bundle, and
//! esbuild's errors point at the source.

use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "build_support/mod.rs"]
mod support;
use support::{copy_dir, get, serve};

use cfdo::build::{BuildInput, BuildOptions, BuiltWorker, build_all_with};
use cfdo::cloudflare::types::{ESM_CONTENT_TYPE, SOURCE_MAP_CONTENT_TYPE};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/build/ts-app");

/// A copy of the TypeScript fixture in a fresh temporary directory, with its
/// own bundle cache, and esbuild wrapped so that every run is logged.
struct Project {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    options: BuildOptions,
    esbuild_log: PathBuf,
}

impl Project {
    fn new() -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("app");
        copy_dir(Path::new(FIXTURE), &root);
        let esbuild = cfdo::tools::ESBUILD.locate().expect("esbuild is available");
        let esbuild_log = tmp.path().join("esbuild.log");
        let wrapper = tmp.path().join("esbuild-logged");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
                esbuild_log.display(),
                esbuild.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let options = BuildOptions {
            esbuild: Some(wrapper),
            cache_dir: Some(tmp.path().join("cache")),
        };
        Project {
            _tmp: tmp,
            root,
            options,
            esbuild_log,
        }
    }

    fn input(&self, worker: &str, main: &str) -> BuildInput {
        BuildInput {
            worker: worker.to_string(),
            main: self.root.join(main),
            root: self.root.clone(),
            no_bundle: false,
            build_command: None,
        }
    }

    fn build(&self) -> miette::Result<BuiltWorker> {
        build_all_with(&[self.input("app", "src/index.ts")], &self.options).map(|mut v| v.remove(0))
    }

    /// How many times esbuild bundled (not counting `--version`).
    fn bundle_runs(&self) -> usize {
        std::fs::read_to_string(&self.esbuild_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("--bundle"))
            .count()
    }

    fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.root.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} should contain {from:?}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    }
}

#[test]
fn typescript_with_sibling_and_npm_package_bundles_and_runs_in_workerd() {
    let project = Project::new();
    let built = project.build().unwrap();

    assert_eq!(built.worker, "app");
    assert_eq!(built.main_module, "index.js");
    let names: Vec<(&str, &str)> = built
        .modules
        .iter()
        .map(|m| (m.name.as_str(), m.content_type.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("index.js", ESM_CONTENT_TYPE),
            ("index.js.map", SOURCE_MAP_CONTENT_TYPE)
        ]
    );
    let js = String::from_utf8(built.modules[0].content.clone()).unwrap();
    // cloudflare:* stays external; the npm package's `workerd` condition won.
    assert!(js.contains(r#"from "cloudflare:workers""#), "{js}");
    assert!(js.contains("hello from workerd"), "{js}");
    assert!(!js.contains("node:os"), "{js}");
    assert!(js.ends_with("//# sourceMappingURL=index.js.map\n"), "{js}");
    // No absolute path leaks into the output.
    let root = project.root.to_string_lossy().into_owned();
    assert!(!js.contains(&root));
    let map: serde_json::Value = serde_json::from_slice(&built.modules[1].content).unwrap();
    assert_eq!(
        map["sources"],
        serde_json::json!([
            "src/index.ts",
            "node_modules/tiny-greet/workerd.js",
            "src/greeting.ts"
        ])
    );
    assert_eq!(
        built.exports,
        ["Counter", "Room"].iter().map(|s| s.to_string()).collect()
    );
    assert_eq!(built.entry, project.root.join("src/index.ts"));

    let served = project._tmp.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let server = serve(&built, &served);
    let (status, body) = get(server.port, "/");
    assert!(status.contains(" 200 "), "status: {status}, body: {body}");
    assert_eq!(body, "HELLO FROM WORKERD, EDGE!");
}

#[test]
fn same_sources_in_different_directories_give_the_same_bytes_and_hash() {
    let first = Project::new();
    let second = Project::new();
    let a = first.build().unwrap();
    let b = second.build().unwrap();
    assert_ne!(first.root, second.root);
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.modules, b.modules);
    assert_eq!(a.hash.len(), 64);
    // And again in the same place, from the cache.
    let again = first.build().unwrap();
    assert_eq!(again.hash, a.hash);
    assert_eq!(again.modules, a.modules);
}

#[test]
fn unchanged_sources_do_not_rerun_esbuild_and_an_imported_edit_does() {
    let project = Project::new();
    let cold_start = Instant::now();
    let first = project.build().unwrap();
    let cold = cold_start.elapsed();
    assert_eq!(project.bundle_runs(), 1);

    let cached_start = Instant::now();
    let cached = project.build().unwrap();
    let warm = cached_start.elapsed();
    assert_eq!(
        project.bundle_runs(),
        1,
        "an unchanged stack must not re-run esbuild"
    );
    assert_eq!(cached.hash, first.hash);
    eprintln!("fixture build: cold {cold:?}, cached {warm:?}");

    // An edit in the imported sibling file changes the bundle and its hash.
    project.edit("src/greeting.ts", "toUpperCase()}!", "toUpperCase()}?!");
    let edited = project.build().unwrap();
    assert_eq!(project.bundle_runs(), 2);
    assert_ne!(edited.hash, first.hash);
    assert!(String::from_utf8_lossy(&edited.modules[0].content).contains("?!"));

    // An edit inside the npm package too.
    project.edit(
        "node_modules/tiny-greet/workerd.js",
        "hello from",
        "greetings from",
    );
    let npm_edited = project.build().unwrap();
    assert_eq!(project.bundle_runs(), 3);
    assert_ne!(npm_edited.hash, edited.hash);
    assert!(String::from_utf8_lossy(&npm_edited.modules[0].content).contains("greetings from"));

    // Reverting restores the original hash (from the cache, without esbuild).
    project.edit("src/greeting.ts", "toUpperCase()}?!", "toUpperCase()}!");
    project.edit(
        "node_modules/tiny-greet/workerd.js",
        "greetings from",
        "hello from",
    );
    let reverted = project.build().unwrap();
    assert_eq!(reverted.hash, first.hash);
    assert_eq!(project.bundle_runs(), 3);
}

#[test]
fn resolution_changes_without_content_changes_are_not_served_from_cache() {
    let project = Project::new();
    let first = project.build().unwrap();
    assert!(String::from_utf8_lossy(&first.modules[0].content).contains("hello from workerd"));

    // The package now points its `workerd` condition at another file: no
    // bundled file changed, but the resolution did.
    std::fs::write(
        project.root.join("node_modules/tiny-greet/other.js"),
        "export function greet(name) { return `other, ${name}`; }\n",
    )
    .unwrap();
    project.edit(
        "node_modules/tiny-greet/package.json",
        "\"workerd\": \"./workerd.js\"",
        "\"workerd\": \"./other.js\"",
    );
    let second = project.build().unwrap();
    assert!(String::from_utf8_lossy(&second.modules[0].content).contains("other, "));
    assert_ne!(second.hash, first.hash);

    // A new `greeting.tsx` beside `greeting.ts`: no known input changed, but
    // `./greeting` now resolves to it (esbuild tries .tsx before .ts).
    std::fs::write(
        project.root.join("src/greeting.tsx"),
        "export type Tone = string;\nexport function exclaim(t: string) { return `tsx ${t}`; }\n",
    )
    .unwrap();
    let third = project.build().unwrap();
    assert!(
        String::from_utf8_lossy(&third.modules[0].content).contains("tsx "),
        "a .tsx file resolves before .ts: the new file must be picked up"
    );
}

#[test]
fn syntax_error_names_file_line_and_source_and_returns_no_worker() {
    let project = Project::new();
    project.edit(
        "src/greeting.ts",
        "export function exclaim",
        "const broken value = 1;\nexport function exclaim",
    );
    let other = project.input("other", "src/index.ts");
    let ok_worker = project.input("fine", "node_modules/tiny-greet/index.js");
    let error = build_all_with(&[ok_worker, other], &project.options).unwrap_err();
    let text = format!("{error:?}");
    assert!(text.contains("worker `other`"), "{text}");
    assert!(text.contains("src/greeting.ts:3:"), "{text}");
    assert!(text.contains("const broken value = 1;"), "{text}");
    assert!(!text.contains("worker `fine`"), "{text}");
}

#[test]
fn a_missing_import_is_reported_with_its_location() {
    let project = Project::new();
    project.edit("src/index.ts", "\"./greeting\"", "\"./greetings\"");
    let error = project.build().unwrap_err();
    let text = format!("{error:?}");
    assert!(text.contains("Could not resolve \"./greetings\""), "{text}");
    assert!(text.contains("src/index.ts:3:"), "{text}");
}

#[test]
fn several_workers_build_in_parallel_in_input_order() {
    let project = Project::new();
    std::fs::write(
        project.root.join("src/second.ts"),
        "export class Second {}\nexport default { fetch() { return new Response(\"2\"); } };\n",
    )
    .unwrap();
    let inputs = [
        project.input("first", "src/index.ts"),
        project.input("second", "src/second.ts"),
    ];
    let built = build_all_with(&inputs, &project.options).unwrap();
    assert_eq!(built.len(), 2);
    assert_eq!(built[0].worker, "first");
    assert_eq!(built[1].worker, "second");
    assert_eq!(built[1].main_module, "second.js");
    assert_eq!(built[1].modules[1].name, "second.js.map");
    assert_eq!(
        built[1].exports,
        ["Second"].iter().map(|s| s.to_string()).collect()
    );
    assert_ne!(built[0].hash, built[1].hash);
}

#[test]
fn export_scan_reads_esbuild_renamed_and_decorated_classes() {
    let project = Project::new();
    std::fs::write(
        project.root.join("src/a.ts"),
        "export class Counter { static self = Counter; }\n",
    )
    .unwrap();
    std::fs::write(
        project.root.join("src/b.ts"),
        "function dec(t: any, k?: any) {}\n@dec\nexport class Counter { @dec x = 1; }\nexport const notAClass = 1;\n",
    )
    .unwrap();
    std::fs::write(
        project.root.join("src/m.ts"),
        "import { Counter as A } from \"./a\";\nimport { Counter as B, notAClass } from \"./b\";\n\
         export { A as Counter, B as Decorated, notAClass };\n\
         export default class { fetch() { return new Response(String(A) + String(B)); } }\n",
    )
    .unwrap();
    let built = build_all_with(&[project.input("m", "src/m.ts")], &project.options)
        .unwrap()
        .remove(0);
    let js = String::from_utf8_lossy(&built.modules[0].content);
    // esbuild renamed the second class: the scan must see through it.
    assert!(js.contains("Counter2 as Decorated"), "{js}");
    assert_eq!(
        built.exports,
        ["Counter", "Decorated"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}
