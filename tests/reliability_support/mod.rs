//! Shared pieces of the reliability tests: a private edge started with fault
//! injection, a generator of many-worker stacks (hosts with Durable Object
//! classes, clients binding them), and runners for the cfdo commands.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

#[path = "../common/bin.rs"]
mod bin;
pub use bin::cfdo_bin;

/// A private edge on a temporary state directory; stopped when dropped.
pub struct Edge {
    pub dir: tempfile::TempDir,
}

impl Edge {
    /// `cfdo edge start --port 0 <flags>` on a fresh state directory.
    pub fn start(flags: &[&str]) -> Edge {
        let edge = Edge {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        edge.start_again(
            &["--port", "0"]
                .iter()
                .chain(flags)
                .copied()
                .collect::<Vec<_>>(),
        );
        edge
    }

    /// Starts the (stopped or killed) edge again on its state directory.
    pub fn start_again(&self, flags: &[&str]) {
        let mut args = vec!["start"];
        args.extend_from_slice(flags);
        let out = self.edge(&args);
        assert!(
            out.status.success(),
            "cfdo edge start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the edge and starts it again with other fault injection flags.
    pub fn restart_with(&self, flags: &[&str]) {
        self.stop();
        self.start_again(flags);
    }

    pub fn stop(&self) {
        let out = self.edge(&["stop"]);
        assert!(out.status.success(), "cfdo edge stop failed: {out:?}");
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `cfdo edge <args> --state-dir <dir>`.
    pub fn edge(&self, args: &[&str]) -> Output {
        Command::new(cfdo_bin())
            .arg("edge")
            .args(args)
            .arg("--state-dir")
            .arg(self.dir.path())
            .env_remove("CFDO_EDGE_DIR")
            .output()
            .expect("run cfdo")
    }

    pub fn status(&self) -> Value {
        let out = Command::new(cfdo_bin())
            .args(["--json", "edge", "status", "--state-dir"])
            .arg(self.dir.path())
            .output()
            .expect("run cfdo");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("edge status --json: {e}: {out:?}"))
    }

    /// The pid of the edge's API server.
    pub fn pid(&self) -> u32 {
        let status = self.status();
        status["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or_else(|| panic!("no pid in {status}"))
    }

    /// The API token and base URL, from `cfdo edge env`.
    pub fn env(&self) -> (String, String, String) {
        let out = self.edge(&["env"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {key}=")))
                .unwrap_or_else(|| panic!("no {key} in {text}"))
                .to_string()
        };
        (
            get("CLOUDFLARE_API_BASE_URL"),
            get("CLOUDFLARE_API_TOKEN"),
            get("CLOUDFLARE_ACCOUNT_ID"),
        )
    }

    /// The edge's log (API requests and workerd output).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("edge.log")).unwrap_or_default()
    }

    /// Waits until the edge's log has not grown for a moment (at most a few
    /// seconds): a cfdo run that stopped on an error may leave requests in
    /// flight, and their lines belong to it, not to the next run.
    pub fn wait_log_quiet(&self) {
        let mut last = self.log().len();
        let mut quiet = 0;
        for _ in 0..100 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let now = self.log().len();
            quiet = if now == last { quiet + 1 } else { 0 };
            last = now;
            if quiet >= 6 {
                return;
            }
        }
    }

    /// API requests the edge answered with an injected 500, in `log`.
    pub fn injected_faults(log: &str) -> usize {
        log.lines()
            .filter(|l| l.starts_with("cfdo edge: ") && l.contains(" -> 500 "))
            .count()
    }

    /// API requests in `log` (health checks are not logged).
    pub fn api_requests(log: &str) -> usize {
        log.lines()
            .filter(|l| l.starts_with("cfdo edge: ") && l.contains(" -> "))
            .count()
    }

    /// Runs a cfdo command against this edge.
    pub fn cfdo(&self, args: &[&str], manifest: &Path) -> Output {
        self.cfdo_env(args, manifest, &[])
    }

    pub fn cfdo_env(&self, args: &[&str], manifest: &Path, env: &[(&str, &str)]) -> Output {
        self.command(args, manifest, env)
            .output()
            .expect("run cfdo")
    }

    /// The command line of `cfdo <args> -f <manifest> --state-dir <dir>`.
    pub fn command(&self, args: &[&str], manifest: &Path, env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(cfdo_bin());
        command
            .args(args)
            .arg("-f")
            .arg(manifest)
            .arg("--state-dir")
            .arg(self.dir.path())
            .env_remove("CFDO_EDGE_DIR")
            .env_remove("CLOUDFLARE_API_TOKEN")
            .env_remove("CLOUDFLARE_ACCOUNT_ID")
            .env_remove("CLOUDFLARE_API_BASE_URL")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        command
    }

    /// Starts a cfdo command in the background, its output captured.
    pub fn spawn(&self, args: &[&str], manifest: &Path) -> Child {
        self.command(args, manifest, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cfdo")
    }

    /// The URL of a deployed script.
    pub fn worker_url(&self, script: &str) -> String {
        let status = self.status();
        status["workers"][script]
            .as_str()
            .unwrap_or_else(|| panic!("no URL for {script} in {status}"))
            .to_string()
    }

    /// GETs `path` on a script's URL and reads the JSON `count` it answers.
    pub fn count(&self, script: &str, path: &str) -> i64 {
        let url = format!("{}{path}", self.worker_url(script));
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let response = client
            .get(&url)
            .send()
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        assert_eq!(status, 200, "{url} answered {status}: {text}");
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"));
        body["count"]
            .as_i64()
            .unwrap_or_else(|| panic!("{url} answered {body}"))
    }

    /// Every script of the account, by name, as the API lists it.
    pub fn scripts(&self) -> Vec<Value> {
        let (api, token, account) = self.env();
        let client = reqwest::blocking::Client::new();
        // The edge may inject faults: ask until it answers.
        for _ in 0..50 {
            let Ok(response) = client
                .get(format!("{api}/accounts/{account}/workers/scripts"))
                .bearer_auth(&token)
                .send()
            else {
                continue;
            };
            if response.status().as_u16() != 200 {
                continue;
            }
            let body: Value = response.json().expect("json");
            return body["result"].as_array().cloned().unwrap_or_default();
        }
        panic!("the edge never listed its scripts");
    }

    /// The migration tag of each script.
    pub fn migration_tags(&self) -> std::collections::BTreeMap<String, Option<String>> {
        self.scripts()
            .into_iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap_or_default().to_string(),
                    s["migration_tag"].as_str().map(str::to_string),
                )
            })
            .collect()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.edge(&["stop"]);
    }
}

/// Everything a command printed.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `apply_summary` event of `--json` output.
pub fn apply_summary(out: &Output) -> Value {
    try_apply_summary(out).unwrap_or_else(|| panic!("no apply_summary in: {}", text(out)))
}

/// The `apply_summary` event, if the apply got that far (a failed read
/// before any change ends with a diagnostic alone).
pub fn try_apply_summary(out: &Output) -> Option<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "apply_summary")
}

/// A stack of `hosts` workers each hosting a Durable Object class `Counter<i>`
/// and `clients` workers each binding one host's class. `version` goes into
/// every worker as a text binding, so a new version updates every script.
/// With `extra`, the first `extra` hosts also host a second class `Extra<i>`
/// (a new-class migration on a script that already has one).
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub hosts: usize,
    pub clients: usize,
}

const HOST_JS: &str = r#"import { DurableObject } from "cloudflare:workers";
export class Counter__N__ extends DurableObject {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    let count = (await this.ctx.storage.get("count")) ?? 0;
    if (pathname === "/increment") {
      count += 1;
      await this.ctx.storage.put("count", count);
    }
    return Response.json({ count });
  }
}
export class Extra__N__ extends DurableObject {
  async fetch() {
    return Response.json({ count: 0 });
  }
}
export default {
  async fetch(request, env) {
    return env.NS.get(env.NS.idFromName("one")).fetch(request);
  },
};
"#;

const CLIENT_JS: &str = r#"export default {
  async fetch(request, env) {
    return env.NS.get(env.NS.idFromName("one")).fetch(request);
  },
};
"#;

impl Stack {
    pub fn new(name: &str, hosts: usize, clients: usize) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("src")).expect("mkdir src");
        for h in 0..hosts {
            std::fs::write(
                dir.path().join(format!("src/h{h}.js")),
                HOST_JS.replace("__N__", &h.to_string()),
            )
            .expect("write host");
        }
        std::fs::write(dir.path().join("src/client.js"), CLIENT_JS).expect("write client");
        let stack = Stack {
            dir,
            hosts,
            clients,
        };
        stack.write(name, "1", 0, &[]);
        stack
    }

    pub fn manifest(&self) -> PathBuf {
        self.dir.path().join("cfdo.toml")
    }

    /// Rewrites the manifest; `extra_bindings` go to every worker (e.g. secrets).
    pub fn write(&self, name: &str, version: &str, extra: usize, extra_bindings: &[&str]) {
        let mut t = format!("[stack]\nname = \"{name}\"\ncompatibility_date = \"2026-11-01\"\n\n");
        let more: String = extra_bindings.iter().map(|b| format!(", {b}")).collect();
        for h in 0..self.hosts {
            let extra_binding = if h < extra {
                format!(", EXTRA = {{ durable_object = \"x{h}\" }}")
            } else {
                String::new()
            };
            t.push_str(&format!(
                "[workers.h{h}]\nmain = \"src/h{h}.js\"\nno_bundle = true\nbindings = {{ NS = {{ durable_object = \"ns{h}\" }}, VERSION = {{ text = \"{version}\" }}{extra_binding}{more} }}\n\n[durable_objects.ns{h}]\nclass_name = \"Counter{h}\"\nworker = \"h{h}\"\n\n"
            ));
            if h < extra {
                t.push_str(&format!(
                    "[durable_objects.x{h}]\nclass_name = \"Extra{h}\"\nworker = \"h{h}\"\n\n"
                ));
            }
        }
        for c in 0..self.clients {
            t.push_str(&format!(
                "[workers.c{c}]\nmain = \"src/client.js\"\nno_bundle = true\nbindings = {{ NS = {{ durable_object = \"ns{}\" }}, VERSION = {{ text = \"{version}\" }}{more} }}\n\n",
                c % self.hosts.max(1)
            ));
        }
        std::fs::write(self.manifest(), t).expect("write manifest");
    }

    pub fn host_names(&self) -> Vec<String> {
        (0..self.hosts).map(|h| format!("h{h}")).collect()
    }
}

/// Waits until `cond` holds, polling every 50 ms, at most `tries` times.
pub fn wait_until(tries: usize, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..tries {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// Error codes that mean a migration was sent twice or against a moved tag.
pub fn replayed_migration_codes(text: &str) -> Vec<&'static str> {
    ["10074", "10079"]
        .into_iter()
        .filter(|c| text.contains(c))
        .collect()
}

impl Edge {
    /// How many versions the account holds of a script (one per upload).
    pub fn versions(&self, script: &str) -> usize {
        let (api, token, account) = self.env();
        let client = reqwest::blocking::Client::new();
        // The edge may be rate limiting (`--rate-limit`): wait as it says, a few times.
        let mut body = Value::Null;
        for _ in 0..10 {
            let response = client
                .get(format!(
                    "{api}/accounts/{account}/workers/scripts/{script}/versions"
                ))
                .bearer_auth(&token)
                .send()
                .unwrap_or_else(|e| panic!("versions of {script}: {e}"));
            let retry_after = (response.status().as_u16() == 429).then(|| {
                response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1)
            });
            body = response
                .json()
                .unwrap_or_else(|e| panic!("versions of {script}: {e}"));
            match retry_after {
                Some(seconds) => std::thread::sleep(std::time::Duration::from_secs(seconds.min(5))),
                None => break,
            }
        }
        body["result"]["items"]
            .as_array()
            .unwrap_or_else(|| panic!("versions of {script}: {body}"))
            .len()
    }
}

/// Lines of `log` that record a finished upload (`PUT …/scripts/<name> -> <status>`).
pub fn uploads_in(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.starts_with("cfdo edge: PUT ") && l.contains("/workers/scripts/"))
        .collect()
}

/// Sends a signal to a process with `kill`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// A TCP proxy in front of the edge that loses answers: the first request
/// whose request line starts with each of `request_lines` reaches the edge,
/// but its answer is swallowed and the connection closed, as when a network
/// drops a response after the server acted on the request.
pub struct LossyProxy {
    pub port: u16,
    pub dropped: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LossyProxy {
    pub fn start(upstream: u16, request_lines: &[String]) -> LossyProxy {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let dropped = Arc::new(AtomicUsize::new(0));
        let remaining: Arc<std::sync::Mutex<Vec<Vec<u8>>>> = Arc::new(std::sync::Mutex::new(
            request_lines
                .iter()
                .map(|l| l.as_bytes().to_vec())
                .collect(),
        ));
        let counter = dropped.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(edge) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let armed = Arc::new(AtomicBool::new(false));
                let (mut c_read, mut e_write) = (
                    client.try_clone().expect("clone"),
                    edge.try_clone().expect("clone"),
                );
                let (mut e_read, mut c_write) = (edge, client);
                let (arm, remaining) = (armed.clone(), remaining.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match c_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let chunk = &buf[..n];
                        let mut lines = remaining.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(i) = lines.iter().position(|l| chunk.starts_with(l)) {
                            lines.remove(i);
                            arm.store(true, Ordering::SeqCst);
                        }
                        drop(lines);
                        if e_write.write_all(chunk).is_err() {
                            break;
                        }
                    }
                    let _ = e_write.shutdown(Shutdown::Write);
                });
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match e_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if armed.load(Ordering::SeqCst) {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let _ = c_write.shutdown(Shutdown::Both);
                            let _ = e_read.shutdown(Shutdown::Both);
                            break;
                        }
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_write.shutdown(Shutdown::Both);
                });
            }
        });
        LossyProxy { port, dropped }
    }
}
