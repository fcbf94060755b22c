//! A private edge for one test: `cfdo edge start` on a temporary state
//! directory and a free port, an API client, and a guard that stops the edge.
#![allow(dead_code)]

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};

#[path = "../common/bin.rs"]
mod bin;
pub use bin::cfdo_bin;

pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/edge")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub struct Edge {
    pub dir: tempfile::TempDir,
    pub api: String,
    pub token: String,
    pub account: String,
    client: reqwest::blocking::Client,
    /// Environment of every `cfdo edge` command (e.g. CFDO_WORKERD).
    env: Vec<(String, String)>,
}

impl Edge {
    pub fn start() -> Edge {
        Self::start_with(&[])
    }

    /// Starts an edge with extra `cfdo edge start` flags (fault injection).
    pub fn start_with(flags: &[&str]) -> Edge {
        Self::start_in_env(flags, &[])
    }

    /// Starts an edge whose commands run with extra environment variables.
    pub fn start_in_env(flags: &[&str], env: &[(&str, &str)]) -> Edge {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut edge = Edge {
            dir,
            api: String::new(),
            token: String::new(),
            account: String::new(),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let mut args = vec!["start", "--port", "0"];
        args.extend_from_slice(flags);
        let out = edge.edge(&args);
        assert!(
            out.status.success(),
            "cfdo edge start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        edge.read_env();
        edge
    }

    fn read_env(&mut self) {
        let out = self.edge(&["env"]);
        assert!(out.status.success(), "cfdo edge env failed: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        for line in text.lines() {
            let Some(assignment) = line.strip_prefix("export ") else {
                continue;
            };
            let (key, value) = assignment.split_once('=').expect("KEY=VALUE");
            match key {
                "CLOUDFLARE_API_BASE_URL" => self.api = value.to_string(),
                "CLOUDFLARE_API_TOKEN" => self.token = value.to_string(),
                "CLOUDFLARE_ACCOUNT_ID" => self.account = value.to_string(),
                _ => {}
            }
        }
        assert!(self.api.ends_with("/client/v4"), "env printed {text}");
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `cfdo edge <args> --state-dir <dir>`.
    pub fn edge(&self, args: &[&str]) -> Output {
        std::process::Command::new(cfdo_bin())
            .arg("edge")
            .args(args)
            .arg("--state-dir")
            .arg(self.dir.path())
            .env_remove("CFDO_EDGE_DIR")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run cfdo")
    }

    /// The workerd binary the running edge runs: the executable of its child
    /// process named workerd (the edge must serve a script).
    pub fn workerd_binary(&self) -> std::path::PathBuf {
        let server: Value = serde_json::from_slice(
            &std::fs::read(self.dir.path().join("server.json")).expect("server.json"),
        )
        .expect("server.json is JSON");
        let edge_pid = server["pid"].as_u64().expect("pid").to_string();
        for entry in std::fs::read_dir("/proc").expect("/proc") {
            let path = entry.expect("/proc entry").path();
            let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...
            let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            let ppid = after_comm.split_whitespace().nth(1);
            if ppid == Some(edge_pid.as_str()) && stat.contains("(workerd)") {
                return std::fs::read_link(path.join("exe")).expect("workerd's executable");
            }
        }
        panic!("no workerd process under the edge (pid {edge_pid})");
    }

    pub fn stop(&self) {
        let out = self.edge(&["stop"]);
        assert!(out.status.success(), "cfdo edge stop failed: {out:?}");
    }

    /// Starts the stopped edge again (same state directory, its recorded port).
    pub fn restart(&mut self) {
        self.stop();
        let out = self.edge(&["start"]);
        assert!(out.status.success(), "cfdo edge start failed: {out:?}");
        self.read_env();
    }

    pub fn account_url(&self, path: &str) -> String {
        format!("{}/accounts/{}{path}", self.api, self.account)
    }

    fn send(&self, request: reqwest::blocking::RequestBuilder) -> (u16, Value) {
        let response = request.bearer_auth(&self.token).send().expect("request");
        let status = response.status().as_u16();
        let text = response.text().expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.client.get(self.account_url(path)))
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.client.delete(self.account_url(path)))
    }

    pub fn patch_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.client.patch(self.account_url(path)).json(body))
    }

    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.client.post(self.account_url(path)).json(body))
    }

    pub fn raw(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    fn form(metadata: &Value, modules: &[(&str, &str)]) -> reqwest::blocking::multipart::Form {
        let mut form = reqwest::blocking::multipart::Form::new().part(
            "metadata",
            reqwest::blocking::multipart::Part::text(metadata.to_string())
                .mime_str("application/json")
                .expect("mime"),
        );
        for (name, code) in modules {
            form = form.part(
                name.to_string(),
                reqwest::blocking::multipart::Part::text(code.to_string())
                    .file_name(name.to_string())
                    .mime_str("application/javascript+module")
                    .expect("mime"),
            );
        }
        form
    }

    /// `PUT /workers/scripts/{script}` with `metadata` and ES modules (name, code).
    pub fn upload(&self, script: &str, metadata: Value, modules: &[(&str, &str)]) -> (u16, Value) {
        let url = self.account_url(&format!("/workers/scripts/{script}"));
        self.send(
            self.client
                .put(url)
                .multipart(Self::form(&metadata, modules)),
        )
    }

    /// `POST /workers/scripts/{script}/versions`.
    pub fn upload_version(
        &self,
        script: &str,
        metadata: Value,
        modules: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = self.account_url(&format!("/workers/scripts/{script}/versions"));
        self.send(
            self.client
                .post(url)
                .multipart(Self::form(&metadata, modules)),
        )
    }

    /// Uploads one module `index.js` with the given bindings and migrations.
    pub fn deploy(
        &self,
        script: &str,
        code: &str,
        bindings: Value,
        migrations: Option<Value>,
    ) -> (u16, Value) {
        let mut metadata = json!({
            "main_module": "index.js",
            "compatibility_date": "2026-01-01",
            "bindings": bindings,
        });
        if let Some(m) = migrations {
            metadata["migrations"] = m;
        }
        self.upload(script, metadata, &[("index.js", code)])
    }

    /// The script's URL from `cfdo edge status --json`.
    pub fn worker_url(&self, script: &str) -> String {
        let status = self.status_json();
        status["workers"][script]
            .as_str()
            .unwrap_or_else(|| panic!("no URL for {script} in {status}"))
            .to_string()
    }

    pub fn status_json(&self) -> Value {
        let out = std::process::Command::new(cfdo_bin())
            .args(["--json", "edge", "status", "--state-dir"])
            .arg(self.dir.path())
            .output()
            .expect("run cfdo");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json: {e}: {out:?}"))
    }

    /// GETs `path` on the script's URL; returns the status and body text.
    pub fn call(&self, script: &str, path: &str) -> (u16, String) {
        let url = format!("{}{path}", self.worker_url(script));
        let response = self.client.get(url).send().expect("call worker");
        (
            response.status().as_u16(),
            response.text().unwrap_or_default(),
        )
    }

    pub fn call_json(&self, script: &str, path: &str) -> Value {
        let (status, text) = self.call(script, path);
        assert_eq!(status, 200, "{script}{path} answered {status}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{script}{path}: {e}: {text}"))
    }

    pub fn namespaces(&self) -> Vec<Value> {
        let (status, body) = self.get("/workers/durable_objects/namespaces?per_page=1000");
        assert_eq!(status, 200, "{body}");
        body["result"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.edge(&["stop"]);
    }
}

/// The first error code of an envelope.
pub fn code(body: &Value) -> i64 {
    body["errors"][0]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

pub fn message(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

pub fn do_binding(name: &str, class: &str, script: Option<&str>) -> Value {
    let mut b = json!({"type": "durable_object_namespace", "name": name, "class_name": class});
    if let Some(s) = script {
        b["script_name"] = json!(s);
    }
    b
}

pub fn new_sqlite(tag: &str, old: Option<&str>, classes: &[&str]) -> Value {
    json!({"old_tag": old, "new_tag": tag, "steps": [{"new_sqlite_classes": classes}]})
}
