//! A project and a private edge for one engine test: manifests and code
//! written into a temporary directory, `cfdo` run as a user runs it (with
//! `CFDO_EDGE_DIR` pointing at the test's own edge and no Cloudflare token),
//! the edge's API read directly to check the account, and a guard that stops
//! the edge when the test ends.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "../common/bin.rs"]
mod bin;
pub use bin::cfdo_bin;

/// The text of a file under tests/fixtures/engine.
pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/engine")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A host's code: exports `class` (a counter kept in Durable Object storage)
/// and forwards every request to the object named "global" of binding `binding`.
pub fn host_code(class: &str, binding: &str) -> String {
    fixture("host.js")
        .replace("__CLASS__", class)
        .replace("__BINDING__", binding)
}

/// A client's code: forwards every request to binding `binding`'s object "global".
pub fn client_code(binding: &str) -> String {
    fixture("client.js").replace("__BINDING__", binding)
}

/// Code with no Durable Object at all; answers `{"worker": name}`.
pub fn plain_code(name: &str) -> String {
    fixture("plain.js").replace("__NAME__", name)
}

/// What one cfdo run gave back.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "expected exit code {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// stderr with miette's line wrapping undone, for `contains` checks.
    pub fn err(&self) -> String {
        flat(&self.stderr)
    }

    /// Every JSON line of stdout.
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| l.trim_start().starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {e}: {l}")))
            .collect()
    }

    /// The JSON events of one type.
    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["type"] == kind)
            .collect()
    }

    /// The `plan_change` event of `script`.
    #[track_caller]
    pub fn change(&self, script: &str) -> Value {
        self.events_of("plan_change")
            .into_iter()
            .find(|e| e["script"] == script)
            .unwrap_or_else(|| panic!("no plan_change for {script} in\n{}", self.stdout))
    }

    /// The one `plan_summary` event.
    #[track_caller]
    pub fn summary(&self) -> Value {
        let mut all = self.events_of("plan_summary");
        assert_eq!(
            all.len(),
            1,
            "one plan_summary expected in\n{}",
            self.stdout
        );
        all.remove(0)
    }
}

/// A list field of a plan_change (absent means empty), as strings.
pub fn strings(change: &Value, field: &str) -> Vec<String> {
    change[field]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `fields` of a plan_change as "field: before -> after" lines.
pub fn field_lines(change: &Value) -> Vec<String> {
    change["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    format!(
                        "{}: {} -> {}",
                        f["field"].as_str().unwrap_or(""),
                        f["before"].as_str().unwrap_or("(none)"),
                        f["after"].as_str().unwrap_or("(none)")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The names of the fields a plan_change touches.
pub fn field_names(change: &Value) -> Vec<String> {
    change["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// One test's world: a project directory and a private edge state directory.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub edge_dir: tempfile::TempDir,
    http: reqwest::blocking::Client,
    api: std::cell::OnceCell<Api>,
}

/// The edge's API coordinates, from `cfdo edge env`.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    pub token: String,
    pub account: String,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().expect("project tempdir"),
            edge_dir: tempfile::tempdir().expect("edge tempdir"),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            api: std::cell::OnceCell::new(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `text` to `rel` inside the project, creating directories.
    pub fn write(&self, rel: &str, text: &str) -> &Project {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dirs");
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self
    }

    /// A `cfdo` command as a user runs it against this project's edge.
    pub fn command(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(cfdo_bin());
        cmd.current_dir(self.dir.path())
            .env("CFDO_EDGE_DIR", self.edge_dir.path())
            .env("NO_COLOR", "1")
            .env_remove("CLOUDFLARE_API_TOKEN")
            .env_remove("CLOUDFLARE_ACCOUNT_ID")
            .env_remove("CLOUDFLARE_API_BASE_URL")
            .timeout(Duration::from_secs(180));
        cmd
    }

    /// Runs `cfdo <args>` (stdin closed, so there is no terminal).
    pub fn cfdo(&self, args: &[&str]) -> Run {
        let out = self
            .command()
            .args(args)
            .write_stdin("")
            .output()
            .expect("run cfdo");
        Run::from(out)
    }

    /// Runs `cfdo <args> -f <manifest>`.
    pub fn cfdo_with(&self, manifest: &str, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-f", manifest]);
        self.cfdo(&all)
    }

    /// `cfdo apply --yes -f manifest`, which must succeed.
    #[track_caller]
    pub fn apply_ok(&self, manifest: &str) -> Run {
        let run = self.cfdo_with(manifest, &["apply", "--yes"]);
        run.expect_code(0);
        run
    }

    /// Starts the edge explicitly (with extra flags such as `--rate-limit`).
    #[track_caller]
    pub fn start_edge(&self, flags: &[&str]) {
        let mut args = vec!["edge", "start", "--port", "0"];
        args.extend_from_slice(flags);
        self.cfdo(&args).expect_code(0);
    }

    /// The edge's API URL, token and account (the edge must run).
    #[track_caller]
    pub fn api(&self) -> Api {
        self.api.get_or_init(|| self.read_api()).clone()
    }

    #[track_caller]
    fn read_api(&self) -> Api {
        let run = self.cfdo(&["edge", "env"]);
        run.expect_code(0);
        let mut api = Api {
            base: String::new(),
            token: String::new(),
            account: String::new(),
        };
        for line in run.stdout.lines() {
            let Some((key, value)) = line.strip_prefix("export ").and_then(|a| a.split_once('='))
            else {
                continue;
            };
            match key {
                "CLOUDFLARE_API_BASE_URL" => api.base = value.to_string(),
                "CLOUDFLARE_API_TOKEN" => api.token = value.to_string(),
                "CLOUDFLARE_ACCOUNT_ID" => api.account = value.to_string(),
                _ => {}
            }
        }
        assert!(
            api.base.ends_with("/client/v4"),
            "edge env printed {}",
            run.stdout
        );
        api
    }

    fn account_url(&self, path: &str) -> String {
        let api = self.api();
        format!("{}/accounts/{}{path}", api.base, api.account)
    }

    /// Sends a request to the edge's API. A 429 (an edge started with
    /// `--rate-limit`) is retried after its Retry-After, for a bounded time;
    /// requests whose body cannot be cloned are sent once.
    fn send(&self, request: reqwest::blocking::RequestBuilder) -> (u16, Value) {
        let request = request.bearer_auth(self.api().token);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut next = Some(request);
        loop {
            let current = next.take().expect("a request to send");
            next = current.try_clone();
            let response = current.send().expect("edge request");
            let status = response.status().as_u16();
            let wait = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1);
            let text = response.text().unwrap_or_default();
            if status == 429 && next.is_some() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_secs(wait.min(10)));
                continue;
            }
            return (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            );
        }
    }

    /// GET on the account's API; panics unless 200.
    #[track_caller]
    pub fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(self.http.get(self.account_url(path)));
        assert_eq!(status, 200, "GET {path}: {body}");
        body["result"].clone()
    }

    pub fn get_status(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(self.account_url(path)))
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(self.account_url(path)))
    }

    pub fn patch_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.http.patch(self.account_url(path)).json(body))
    }

    /// Uploads a script as another tool would: `PUT /workers/scripts/{script}`
    /// with `metadata` and one ES module `index.js`.
    #[track_caller]
    pub fn upload(&self, script: &str, metadata: Value, code: &str) {
        let form = reqwest::blocking::multipart::Form::new()
            .part(
                "metadata",
                reqwest::blocking::multipart::Part::text(metadata.to_string())
                    .mime_str("application/json")
                    .expect("mime"),
            )
            .part(
                "index.js",
                reqwest::blocking::multipart::Part::text(code.to_string())
                    .file_name("index.js")
                    .mime_str("application/javascript+module")
                    .expect("mime"),
            );
        let url = self.account_url(&format!("/workers/scripts/{script}"));
        let (status, body) = self.send(self.http.put(url).multipart(form));
        assert_eq!(status, 200, "upload of {script} refused: {body}");
    }

    /// Every script of the account, by name.
    pub fn scripts(&self) -> Vec<Value> {
        self.get("/workers/scripts")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn script_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .scripts()
            .iter()
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// The account's listing of one script (tags, etag, modified_on, migration_tag).
    pub fn script(&self, name: &str) -> Option<Value> {
        self.scripts().into_iter().find(|s| s["id"] == name)
    }

    /// The script's settings (bindings, compatibility date and flags).
    #[track_caller]
    pub fn settings(&self, script: &str) -> Value {
        self.get(&format!("/workers/scripts/{script}/settings"))
    }

    /// The names of the script's bindings, sorted.
    #[track_caller]
    pub fn binding_names(&self, script: &str) -> Vec<String> {
        let mut names: Vec<String> = self.settings(script)["bindings"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|b| b["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// How many versions the script has had.
    #[track_caller]
    pub fn version_count(&self, script: &str) -> usize {
        self.get(&format!("/workers/scripts/{script}/versions"))["items"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    }

    /// Every Durable Object namespace of the account.
    pub fn namespaces(&self) -> Vec<Value> {
        self.get("/workers/durable_objects/namespaces?per_page=1000")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The namespace of `class` hosted by `script`.
    pub fn namespace(&self, script: &str, class: &str) -> Option<Value> {
        self.namespaces()
            .into_iter()
            .find(|n| n["script"] == script && n["class"] == class)
    }

    /// `cfdo --json edge status`.
    #[track_caller]
    pub fn status(&self) -> Value {
        let run = self.cfdo(&["--json", "edge", "status"]);
        serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("edge status --json: {e}: {run:?}"))
    }

    /// The local URL the edge serves `script` on.
    #[track_caller]
    pub fn url(&self, script: &str) -> String {
        let status = self.status();
        status["workers"][script]
            .as_str()
            .unwrap_or_else(|| panic!("no URL for {script} in {status}"))
            .to_string()
    }

    /// GETs `path` on the worker; retries a refused connection or a 5xx for a
    /// bounded time (workerd may be restarting after a deploy).
    #[track_caller]
    pub fn call(&self, script: &str, path: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let url = format!("{}{path}", self.url(script));
            let last = match self.http.get(&url).send() {
                Ok(response) if response.status().is_success() => {
                    let text = response.text().unwrap_or_default();
                    return serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("{script}{path}: {e}: {text}"));
                }
                Ok(response) => format!(
                    "HTTP {}: {}",
                    response.status(),
                    response.text().unwrap_or_default()
                ),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                let logs = self.cfdo(&["edge", "logs", "-n", "60"]);
                panic!(
                    "{script}{path} did not answer: {last}\nedge status: {}\n--- edge log (last lines)\n{}",
                    self.status(),
                    logs.stdout
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The `count` the worker answers on `path`.
    #[track_caller]
    pub fn count(&self, script: &str, path: &str) -> i64 {
        let body = self.call(script, path);
        body["count"]
            .as_i64()
            .unwrap_or_else(|| panic!("{script}{path} answered no count: {body}"))
    }
}

impl Default for Project {
    fn default() -> Self {
        Project::new()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // Stop the edge (and its workerd) whether the test passed or not.
        let _ = std::process::Command::new(cfdo_bin())
            .args(["edge", "stop", "--state-dir"])
            .arg(self.edge_dir.path())
            .env_remove("CFDO_EDGE_DIR")
            .output();
    }
}

/// Metadata of an upload as another tool sends it.
pub fn metadata(bindings: Value, migrations: Option<Value>) -> Value {
    let mut m = json!({
        "main_module": "index.js",
        "compatibility_date": "2026-11-01",
        "bindings": bindings,
    });
    if let Some(migrations) = migrations {
        m["migrations"] = migrations;
    }
    m
}

/// A Durable Object namespace binding in wire form.
pub fn do_binding(name: &str, class: &str, script: Option<&str>) -> Value {
    let mut b = json!({"type": "durable_object_namespace", "name": name, "class_name": class});
    if let Some(s) = script {
        b["script_name"] = json!(s);
    }
    b
}

/// A rendered diagnostic as one line: miette wraps at 80 columns (with a
/// `|` gutter for the message, indentation for the help); this joins the pieces.
pub fn flat(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix('|').map(str::trim_start).unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if !out.is_empty() && !out.ends_with('-') {
            out.push(' ');
        }
        out.push_str(line);
    }
    out
}

/// How often `needle` occurs in `haystack`.
pub fn occurrences(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}
