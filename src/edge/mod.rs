//! The local edge: a Cloudflare-API-compatible control plane that keeps its
//! state on disk and runs every deployed Worker in workerd.
//!
//! Layout of a state directory (default `<data dir>/cfdo/edge`):
//! `state.json` (the account: scripts, versions, namespaces; mode 0600),
//! `token` (the API bearer token; mode 0600), `port` (the API port last used),
//! `server.json` (the running server's pid and port), `edge.lock` (held by the
//! running server), `edge.log` (API and workerd output of a background edge),
//! `modules/<sha256>` (uploaded modules), `storage/<namespace id>/` (Durable
//! Object storage), `workerd.capnp` (the generated workerd configuration).
//!
//! Each Worker is served on its own port on 127.0.0.1, assigned when the
//! script is first uploaded and kept for its life: `http://127.0.0.1:<port>/`.

mod api;
mod rules;
mod runtime;
mod state;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;
use miette::{IntoDiagnostic, Result, WrapErr, miette};

use crate::cli::{EdgeArgs, EdgeCommand, EdgeLocation, EdgeServeArgs, GlobalArgs};
use crate::commands::Outcome;
use state::{ServerInfo, StateDir};

pub use api::DEFER_SERVING_HEADER;
pub use api::{
    MAX_METADATA_BYTES, MAX_SCRIPT_BYTES, MAX_UPLOAD_PARTS, ParsedUpload, SCRIPT_TOO_LARGE,
    read_upload, settings_from_multipart,
};
pub use rules::ApiError;

/// How to reach a running edge's API. Its `Debug` form hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct EdgeConnection {
    /// The API base URL; ends with `/client/v4`.
    pub api_base_url: String,
    pub token: String,
    pub account_id: String,
}

impl std::fmt::Debug for EdgeConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeConnection")
            .field("api_base_url", &self.api_base_url)
            .field("token", &"<redacted>")
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// Starts the edge in the background when it is not running (as `cfdo edge
/// start` does, saying so on stderr unless `quiet`) and returns how to reach it.
pub fn ensure_running(location: &EdgeLocation, quiet: bool) -> Result<EdgeConnection> {
    let dir = state_dir(location)?;
    let info = match running(&dir) {
        Some(info) => info,
        None => {
            let info = start_background(location, &dir, &ServeOptions::default())?;
            if !quiet {
                eprintln!(
                    "cfdo: started the local edge in the background (API {}, state in {}); `cfdo edge stop` stops it",
                    api_url(info.api_port),
                    dir.root.display()
                );
            }
            info
        }
    };
    connection(&dir, &info)
}

/// Waits until the running edge serves every change it has accepted (changes
/// sent with [`DEFER_SERVING_HEADER`] are answered before workerd serves them).
pub fn wait_until_served(location: &EdgeLocation, timeout: Duration) -> Result<()> {
    let dir = state_dir(location)?;
    let info = running(&dir).ok_or_else(|| not_running(&dir))?;
    // `Err`: the edge did not answer; `Ok(None)`: it answered without
    // generations (an edge that serves before it answers).
    let generations = || -> std::result::Result<Option<(u64, u64)>, ()> {
        let body = http_get(info.api_port, "/cfdo/health").ok_or(())?;
        let value: serde_json::Value = serde_json::from_str(&body).map_err(|_| ())?;
        let health = value.get("result").unwrap_or(&value);
        Ok(health
            .get("wanted_generation")
            .and_then(serde_json::Value::as_u64)
            .zip(
                health
                    .get("served_generation")
                    .and_then(serde_json::Value::as_u64),
            ))
    };
    let deadline = Instant::now() + timeout;
    let mut wanted = None;
    loop {
        match generations() {
            Ok(None) => return Ok(()),
            Ok(Some((now_wanted, served))) => {
                // The changes to wait for are those accepted before the first answer.
                let wanted = *wanted.get_or_insert(now_wanted);
                if served >= wanted {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(miette!(
                        help = format!("see the edge log {}", dir.log_file().display()),
                        "the edge accepted the changes but workerd does not serve them after {} seconds",
                        timeout.as_secs()
                    ));
                }
            }
            Err(()) if Instant::now() > deadline || running(&dir).is_none() => {
                return Err(miette!(
                    help = format!(
                        "see the edge log {}; `cfdo edge status` tells whether it runs",
                        dir.log_file().display()
                    ),
                    "the edge accepted the changes but stopped answering before it served them"
                ));
            }
            Err(()) => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each deployed script's URL (script name -> URL a user can curl), from the
/// state directory; the URLs answer while the edge runs.
pub fn worker_urls(location: &EdgeLocation) -> Result<BTreeMap<String, String>> {
    let dir = state_dir(location)?;
    Ok(urls_of(&dir))
}

fn urls_of(dir: &StateDir) -> BTreeMap<String, String> {
    dir.load_existing()
        .map(|state| {
            state
                .scripts
                .iter()
                .filter(|(_, s)| s.current().is_some())
                .map(|(name, s)| (name.clone(), worker_url(s.port)))
                .collect()
        })
        .unwrap_or_default()
}

fn worker_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn api_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/client/v4")
}

/// Runs one `cfdo edge …` command.
pub fn run(args: &EdgeArgs, global: &GlobalArgs) -> Result<Outcome> {
    match &args.command {
        EdgeCommand::Start(serve_args) => start(serve_args, global),
        EdgeCommand::Serve(serve_args) => serve(serve_args),
        EdgeCommand::Stop(location) => stop(location, global),
        EdgeCommand::Status(location) => status(location, global),
        EdgeCommand::Logs(logs) => {
            let dir = state_dir(&logs.location)?;
            let text = match std::fs::read_to_string(dir.log_file()) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(miette!(
                        help = "start it with `cfdo edge start` (or any plan, apply or destroy on the local target)",
                        "no edge log in {}: no edge has run with this state directory",
                        dir.root.display()
                    ));
                }
                Err(e) => {
                    return Err(miette!(
                        "cannot read the edge log {}: {e}",
                        dir.log_file().display()
                    ));
                }
            };
            let lines: Vec<&str> = text.lines().collect();
            let from = logs
                .lines
                .map(|n| lines.len().saturating_sub(n))
                .unwrap_or(0);
            let mut out = std::io::stdout().lock();
            for line in &lines[from..] {
                let _ = writeln!(out, "{line}");
            }
            Ok(Outcome::Success)
        }
        EdgeCommand::Env(location) => {
            let dir = state_dir(location)?;
            let info = running(&dir).ok_or_else(|| not_running(&dir))?;
            let conn = connection(&dir, &info)?;
            let vars = [
                ("CLOUDFLARE_API_BASE_URL", &conn.api_base_url),
                ("CLOUDFLARE_API_TOKEN", &conn.token),
                ("CLOUDFLARE_ACCOUNT_ID", &conn.account_id),
            ];
            if global.json {
                let object: serde_json::Map<String, serde_json::Value> = vars
                    .iter()
                    .map(|(k, v)| (k.to_string(), serde_json::Value::from(v.as_str())))
                    .collect();
                println!("{}", serde_json::Value::Object(object));
            } else {
                for (k, v) in vars {
                    println!("export {k}={v}");
                }
            }
            Ok(Outcome::Success)
        }
    }
}

fn not_running(dir: &StateDir) -> miette::Report {
    miette!(
        help = format!(
            "start it with `cfdo edge start --state-dir {}`",
            dir.root.display()
        ),
        "the edge of state directory {} is not running",
        dir.root.display()
    )
}

/// The state directory: `--state-dir`/`CFDO_EDGE_DIR`, else `<data dir>/cfdo/edge`.
fn state_dir(location: &EdgeLocation) -> Result<StateDir> {
    if let Some(dir) = &location.state_dir {
        let absolute = if dir.is_absolute() {
            dir.clone()
        } else {
            std::env::current_dir().into_diagnostic()?.join(dir)
        };
        return Ok(StateDir::new(absolute));
    }
    let data = dirs::data_dir().ok_or_else(|| {
        miette!(
            help = "pass --state-dir DIR or set CFDO_EDGE_DIR",
            "cannot find the user's data directory for the edge's state"
        )
    })?;
    Ok(StateDir::new(data.join("cfdo").join("edge")))
}

fn connection(dir: &StateDir, info: &ServerInfo) -> Result<EdgeConnection> {
    let token = dir.existing_token().ok_or_else(|| {
        miette!(
            "the edge's token file {} is missing",
            dir.token_file().display()
        )
    })?;
    let account_id = dir.load_existing().map(|s| s.account_id).ok_or_else(|| {
        miette!(
            "the edge's state file {} is missing",
            dir.state_file().display()
        )
    })?;
    Ok(EdgeConnection {
        api_base_url: api_url(info.api_port),
        token,
        account_id,
    })
}

fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: kill with signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Whether some process holds the state directory's lock.
fn lock_held(dir: &StateDir) -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.lock_file())
        .ok()
        .is_some_and(|f| {
            let free = f.try_lock_exclusive().unwrap_or(false);
            if free {
                let _ = FileExt::unlock(&f);
            }
            !free
        })
}

/// Whether `pid` runs `… edge serve …` (true where that cannot be checked).
fn is_edge_server(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.windows(2).any(|w| w[0] == b"edge" && w[1] == b"serve")
        }
        Err(_) => !cfg!(target_os = "linux"),
    }
}

/// The running server of `dir`, if it answers its health check.
fn running(dir: &StateDir) -> Option<ServerInfo> {
    let bytes = std::fs::read(dir.server_file()).ok()?;
    let info: ServerInfo = serde_json::from_slice(&bytes).ok()?;
    if !process_alive(info.pid) {
        return None;
    }
    let body = http_get(info.api_port, "/cfdo/health")?;
    body.contains(&format!("\"pid\":{}", info.pid))
        .then_some(info)
}

/// A plain HTTP/1.0 GET on 127.0.0.1 (no runtime needed); the body on 200.
fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

#[derive(Debug, Clone, Default)]
struct ServeOptions {
    latency_ms: u64,
    fail_rate: f64,
    rate_limit: Option<String>,
}

impl From<&EdgeServeArgs> for ServeOptions {
    fn from(args: &EdgeServeArgs) -> Self {
        ServeOptions {
            latency_ms: args.latency_ms,
            fail_rate: args.fail_rate,
            rate_limit: args.rate_limit.clone(),
        }
    }
}

/// Spawns `cfdo edge serve` detached, its output appended to the log, and
/// waits until it answers.
fn start_background(
    location: &EdgeLocation,
    dir: &StateDir,
    options: &ServeOptions,
) -> Result<ServerInfo> {
    dir.create()?;
    // Find (or install, saying so) workerd here, where the user sees it.
    crate::tools::WORKERD.locate()?;
    let exe = std::env::current_exe()
        .into_diagnostic()
        .wrap_err("cannot find the cfdo executable to start the edge")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.log_file())
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot open the edge log {}", dir.log_file().display()))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut command = Command::new(exe);
    command
        .args(["edge", "serve", "--state-dir"])
        .arg(&dir.root)
        .stdin(Stdio::null())
        .stdout(log.try_clone().into_diagnostic()?)
        .stderr(log);
    if let Some(port) = location.port {
        command.arg("--port").arg(port.to_string());
    }
    if options.latency_ms > 0 {
        command
            .arg("--latency-ms")
            .arg(options.latency_ms.to_string());
    }
    if options.fail_rate > 0.0 {
        command
            .arg("--fail-rate")
            .arg(options.fail_rate.to_string());
    }
    if let Some(limit) = &options.rate_limit {
        command.arg("--rate-limit").arg(limit);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: a Ctrl-C in the terminal does not stop it.
        command.process_group(0);
    }
    let mut child = command
        .spawn()
        .into_diagnostic()
        .wrap_err("cannot start `cfdo edge serve`")?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            // Another start won the race for the lock: use that edge.
            let other_deadline = Instant::now() + Duration::from_secs(300);
            while lock_held(dir) && Instant::now() < other_deadline {
                if let Some(info) = running(dir) {
                    return Ok(info);
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let log_text = std::fs::read(dir.log_file()).unwrap_or_default();
            let tail =
                String::from_utf8_lossy(log_text.get(log_start as usize..).unwrap_or_default())
                    .trim()
                    .to_string();
            return Err(miette!(
                help = format!("the edge log is {}", dir.log_file().display()),
                "the edge exited while starting ({status}):\n{tail}"
            ));
        }
        if let Some(info) = running(dir)
            && info.pid == child.id()
        {
            return Ok(info);
        }
        if Instant::now() > deadline {
            return Err(miette!(
                help = format!("see the edge log {}", dir.log_file().display()),
                "the edge did not answer within 300 seconds of starting"
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn start(args: &EdgeServeArgs, global: &GlobalArgs) -> Result<Outcome> {
    let dir = state_dir(&args.location)?;
    let (info, already) = match running(&dir) {
        Some(info) => (info, true),
        None => (
            start_background(&args.location, &dir, &ServeOptions::from(args))?,
            false,
        ),
    };
    print_status(
        &dir,
        &info,
        global,
        if already {
            "already running"
        } else {
            "started"
        },
    );
    Ok(Outcome::Success)
}

fn print_status(dir: &StateDir, info: &ServerInfo, global: &GlobalArgs, what: &str) {
    let workers = urls_of(dir);
    if global.json {
        let value = serde_json::json!({
            "running": true,
            "api": api_url(info.api_port),
            "pid": info.pid,
            "state_dir": dir.root,
            "workers": workers,
        });
        println!("{value}");
        return;
    }
    println!(
        "edge {what} (pid {}), state in {}",
        info.pid,
        dir.root.display()
    );
    println!("API:     {}", api_url(info.api_port));
    if workers.is_empty() {
        println!("Workers: none deployed; each is served at http://127.0.0.1:<its port>");
    } else {
        println!("Workers:");
        let width = workers.keys().map(String::len).max().unwrap_or(0);
        for (name, url) in &workers {
            println!("  {name:width$}  {url}");
        }
    }
}

fn status(location: &EdgeLocation, global: &GlobalArgs) -> Result<Outcome> {
    let dir = state_dir(location)?;
    match running(&dir) {
        Some(info) => {
            print_status(&dir, &info, global, "running");
            Ok(Outcome::Success)
        }
        None => {
            if global.json {
                let value = serde_json::json!({
                    "running": false,
                    "api": null,
                    "state_dir": dir.root,
                    "workers": urls_of(&dir),
                });
                println!("{value}");
            } else {
                println!("edge not running (state in {})", dir.root.display());
            }
            Ok(Outcome::Failure)
        }
    }
}

fn stop(location: &EdgeLocation, global: &GlobalArgs) -> Result<Outcome> {
    let dir = state_dir(location)?;
    // Only a live process that holds the state directory's lock and runs
    // `edge serve` is signalled: a stale server.json never hits another process.
    let info = std::fs::read(dir.server_file())
        .ok()
        .and_then(|b| serde_json::from_slice::<ServerInfo>(&b).ok())
        .filter(|info| process_alive(info.pid) && is_edge_server(info.pid) && lock_held(&dir));
    let Some(info) = info else {
        if !global.quiet {
            println!("edge not running (state in {})", dir.root.display());
        }
        return Ok(Outcome::Success);
    };
    let lock_free = || !lock_held(&dir);
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(info.pid) {
        // SAFETY: sends SIGTERM to the edge server recorded in server.json.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while process_alive(info.pid) && !lock_free() {
        if Instant::now() > deadline {
            #[cfg(unix)]
            if let Ok(pid) = libc::pid_t::try_from(info.pid) {
                // SAFETY: the server did not stop on SIGTERM; force it.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(dir.server_file());
    if !global.quiet {
        println!("edge stopped (pid {})", info.pid);
    }
    Ok(Outcome::Success)
}

/// The newest compatibility date `workerd` accepts: its build date, as
/// `workerd --version` prints it (`workerd 2026-11-23`). A binary that does
/// not say is taken to be the pinned version (1.YYYYMMDD.N).
fn newest_compatibility_date(workerd: &std::path::Path) -> String {
    let said = std::process::Command::new(workerd)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.split_whitespace()
                .find(|w| rules::is_date(w))
                .map(str::to_string)
        });
    said.unwrap_or_else(|| {
        let digits = crate::tools::WORKERD
            .version
            .split('.')
            .nth(1)
            .filter(|d| d.len() == 8)
            .unwrap_or("20240101");
        format!("{}-{}-{}", &digits[0..4], &digits[4..6], &digits[6..8])
    })
}

/// A port for a Worker: free on 127.0.0.1 now and not in `taken`. A Worker's
/// port is chosen before workerd binds it, so it comes from outside the
/// system's ephemeral range when there is room: ports other programs get by
/// binding port 0 never come from there, so none can take it meanwhile.
pub(crate) fn free_worker_port(taken: &std::collections::BTreeSet<u16>) -> u16 {
    use rand::Rng;
    let (low, high) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((49152, 65535));
    let range = if low > 12000 {
        Some(10000..low)
    } else if high < 63000 {
        Some(high + 1..65535)
    } else {
        None
    };
    let free = |port: u16| {
        port != 0
            && !taken.contains(&port)
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    };
    if let Some(range) = range {
        let mut rng = rand::rng();
        for _ in 0..256 {
            let port = rng.random_range(range.clone());
            if free(port) {
                return port;
            }
        }
    }
    let mut last = 0;
    for _ in 0..64 {
        last = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0);
        if free(last) {
            return last;
        }
    }
    last
}

fn parse_rate_limit(text: &str) -> Result<(u32, Duration)> {
    let parsed = text
        .split_once('/')
        .and_then(|(n, s)| Some((n.trim().parse::<u32>().ok()?, s.trim().parse::<u64>().ok()?)));
    match parsed {
        Some((n, s)) if s > 0 => Ok((n, Duration::from_secs(s))),
        _ => Err(miette!(
            help = "write it as REQUESTS/SECONDS, e.g. --rate-limit 1200/300",
            "invalid --rate-limit '{text}'"
        )),
    }
}

/// `cfdo edge serve`: runs the API and workerd in the foreground until SIGTERM/SIGINT.
fn serve(args: &EdgeServeArgs) -> Result<Outcome> {
    let dir = state_dir(&args.location)?;
    dir.create()?;
    if !(0.0..=1.0).contains(&args.fail_rate) {
        return Err(miette!(
            "--fail-rate must be between 0.0 and 1.0, not {}",
            args.fail_rate
        ));
    }
    let faults = api::Faults {
        latency: Duration::from_millis(args.latency_ms),
        fail_rate: args.fail_rate,
        rate_limit: args
            .rate_limit
            .as_deref()
            .map(parse_rate_limit)
            .transpose()?,
    };
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(dir.lock_file())
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot open the lock file {}", dir.lock_file().display()))?;
    if !lock.try_lock_exclusive().unwrap_or(false) {
        let pid = std::fs::read(dir.server_file())
            .ok()
            .and_then(|b| serde_json::from_slice::<ServerInfo>(&b).ok())
            .map(|i| format!(" (pid {})", i.pid))
            .unwrap_or_default();
        return Err(miette!(
            help = "stop it with `cfdo edge stop`, or use another --state-dir",
            "another edge{pid} already serves the state directory {}",
            dir.root.display()
        ));
    }
    let token = dir.token()?;
    let mut account = dir.load()?;
    // A script's port taken by another program since the last run moves to a free one.
    // Two scripts never share a port either.
    let mut assigned = std::collections::BTreeSet::new();
    for (name, script) in account.scripts.iter_mut() {
        if !assigned.insert(script.port)
            || std::net::TcpListener::bind(("127.0.0.1", script.port)).is_err()
        {
            let free = free_worker_port(&assigned);
            assigned.insert(free);
            eprintln!(
                "cfdo edge: port {} of script {name} is in use by another program or script; serving it on {free} instead",
                script.port
            );
            script.port = free;
        }
    }
    dir.save(&account)?;
    let workerd = crate::tools::WORKERD.locate()?;
    let newest_date = newest_compatibility_date(&workerd);
    let port = match args.location.port {
        Some(port) => port,
        None => std::fs::read_to_string(dir.port_file())
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()?;
    let result = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| {
                miette!(
                    help = "pick another port with --port N, or --port 0 for a free one",
                    "cannot listen on 127.0.0.1:{port}: {e}"
                )
            })?;
        let port = listener.local_addr().into_diagnostic()?.port();
        state::write_atomic(&dir.port_file(), port.to_string().as_bytes(), false)?;
        let runtime = runtime::Runtime::start(dir.clone(), workerd.clone(), account.clone());
        runtime.wait_served(1).await;
        let app = Arc::new(api::App::new(
            dir.clone(),
            token,
            workerd,
            newest_date,
            account,
            runtime.clone(),
            faults,
        ));
        let info = ServerInfo {
            pid: std::process::id(),
            api_port: port,
            workerd_pid: runtime.workerd_pid(),
        };
        state::write_atomic(
            &dir.server_file(),
            &serde_json::to_vec(&info).into_diagnostic()?,
            false,
        )?;
        eprintln!(
            "cfdo edge: API {} (state in {}), workers at http://127.0.0.1:<port> per script",
            api_url(port),
            dir.root.display()
        );
        let served = axum::serve(listener, api::router(app))
            .with_graceful_shutdown(shutdown_signal())
            .await;
        eprintln!("cfdo edge: stopping");
        let stopper = runtime.clone();
        let _ = tokio::task::spawn_blocking(move || stopper.shutdown()).await;
        served.into_diagnostic()
    });
    let _ = std::fs::remove_file(dir.server_file());
    drop(lock);
    result.map(|_| Outcome::Success)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
