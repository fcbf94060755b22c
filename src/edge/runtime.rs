//! Runs the edge's Workers: generates workerd's configuration (Cap'n Proto
//! text) from the account state, test-starts candidate configurations, and
//! supervises the one workerd process of a state directory, replacing it when
//! the deployment changes (bursts of changes coalesce into one restart).

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::state::{AccountState, StateDir, write_atomic};
use crate::cloudflare::types::Binding;

/// How long after a change the supervisor waits for more before restarting.
const DEBOUNCE: Duration = Duration::from_millis(60);
/// The longest a stream of changes delays a restart.
const SETTLE_MAX: Duration = Duration::from_millis(1500);

fn service_name(script: &str) -> String {
    format!("script:{script}")
}

const STORAGE_SERVICE: &str = "edge:storage";

/// A Cap'n Proto text literal.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Where Durable Object storage goes in a generated configuration.
pub enum Storage<'a> {
    /// On disk, one subdirectory per namespace id (the serving configuration).
    Disk(&'a Path),
    /// In memory (a trial start).
    Memory,
}

/// workerd's configuration for `state`. Module files are embedded by path
/// relative to the state directory, where the configuration file is written.
/// With `sockets`, each script listens on its own port on 127.0.0.1.
pub fn generate_config(state: &AccountState, storage: Storage<'_>, sockets: bool) -> String {
    let mut services = Vec::new();
    let mut socket_lines = Vec::new();
    for (script_id, script) in &state.scripts {
        let name = script_id;
        let Some(version) = script.current() else {
            continue;
        };
        let mut worker = String::new();
        worker.push_str("(\n      modules = [\n");
        for module in &version.modules {
            let kind = match module.content_type.split(';').next().unwrap_or("").trim() {
                "application/javascript+module" | "text/javascript+module" => "esModule",
                "application/javascript" | "text/javascript" => "commonJsModule",
                "text/plain" => "text",
                "application/wasm" => "wasm",
                "application/json" => "json",
                "application/octet-stream" => "data",
                _ => continue,
            };
            let _ = writeln!(
                worker,
                "        (name = {}, {kind} = embed {}),",
                text(&module.name),
                text(&format!("modules/{}", module.hash))
            );
        }
        worker.push_str("      ],\n");
        let date = version
            .compatibility_date
            .as_deref()
            .unwrap_or("2021-11-02");
        let _ = writeln!(worker, "      compatibilityDate = {},", text(date));
        if !version.compatibility_flags.is_empty() {
            let flags: Vec<String> = version
                .compatibility_flags
                .iter()
                .map(|f| text(f))
                .collect();
            let _ = writeln!(worker, "      compatibilityFlags = [{}],", flags.join(", "));
        }
        worker.push_str("      bindings = [\n");
        for binding in &version.bindings {
            let line = match binding {
                Binding::PlainText { name, text: value } => {
                    format!("(name = {}, text = {})", text(name), text(value))
                }
                Binding::SecretText { name, text: value } => format!(
                    "(name = {}, text = {})",
                    text(name),
                    text(value.as_ref().map_or("", |v| v.0.as_str()))
                ),
                Binding::Json { name, json } => {
                    format!(
                        "(name = {}, json = {})",
                        text(name),
                        text(&json.to_string())
                    )
                }
                Binding::Service { name, service, .. } => {
                    if !state.scripts.contains_key(service) {
                        continue;
                    }
                    format!(
                        "(name = {}, service = {})",
                        text(name),
                        text(&service_name(service))
                    )
                }
                Binding::DurableObjectNamespace {
                    name,
                    class_name,
                    script_name,
                    ..
                } => {
                    let host = script_name.as_deref().unwrap_or(script_id);
                    if state.namespace_of(host, class_name).is_none() {
                        continue;
                    }
                    format!(
                        "(name = {}, durableObjectNamespace = (className = {}, serviceName = {}))",
                        text(name),
                        text(class_name),
                        text(&service_name(host))
                    )
                }
                Binding::Other(_) => continue,
            };
            let _ = writeln!(worker, "        {line},");
        }
        worker.push_str("      ],\n");
        let hosted: Vec<_> = state
            .namespaces
            .values()
            .filter(|n| &n.script == name)
            .collect();
        if !hosted.is_empty() {
            worker.push_str("      durableObjectNamespaces = [\n");
            for ns in hosted {
                let _ = writeln!(
                    worker,
                    "        (className = {}, uniqueKey = {}, enableSql = {}),",
                    text(&ns.class),
                    text(&ns.id),
                    ns.use_sqlite
                );
            }
            worker.push_str("      ],\n");
            match storage {
                Storage::Disk(_) => {
                    let _ = writeln!(
                        worker,
                        "      durableObjectStorage = (localDisk = {}),",
                        text(STORAGE_SERVICE)
                    );
                }
                Storage::Memory => {
                    worker.push_str("      durableObjectStorage = (inMemory = void),\n");
                }
            }
        }
        worker.push_str("    )");
        services.push(format!(
            "    (name = {}, worker = {worker}),",
            text(&service_name(name))
        ));
        if sockets {
            socket_lines.push(format!(
                "    (name = {}, address = {}, http = (), service = {}),",
                text(&service_name(name)),
                text(&format!("127.0.0.1:{}", script.port)),
                text(&service_name(name))
            ));
        }
    }
    if let Storage::Disk(path) = storage {
        services.push(format!(
            "    (name = {}, disk = (path = {}, writable = true)),",
            text(STORAGE_SERVICE),
            text(&path.display().to_string())
        ));
    }
    format!(
        "# Generated by cfdo edge from state.json; rewritten on every deployment change.\nusing Workerd = import \"/workerd/workerd.capnp\";\n\nconst config :Workerd.Config = (\n  services = [\n{}\n  ],\n  sockets = [\n{}\n  ],\n);\n",
        services.join("\n"),
        socket_lines.join("\n")
    )
}

/// The part of `state` that `script` needs to start: the script itself and
/// the scripts hosting the Durable Object classes it binds (workerd checks a
/// namespace binding against its host's classes when it loads the config).
/// Service targets are left out: the trial drops a binding to a script it
/// does not load, no Worker can call a binding while it starts, and each
/// target passed its own trial. A trial start of one upload thus loads one
/// or two Workers, whatever the size of the account or the depth of a chain.
pub fn startup_closure(state: &AccountState, script: &str) -> AccountState {
    let mut keep = std::collections::BTreeSet::new();
    if let Some(entry) = state.scripts.get(script) {
        keep.insert(script.to_string());
        for binding in entry
            .current()
            .map(|v| v.bindings.as_slice())
            .unwrap_or(&[])
        {
            if let Binding::DurableObjectNamespace {
                script_name: Some(host),
                ..
            } = binding
                && state.scripts.contains_key(host)
            {
                keep.insert(host.clone());
            }
        }
    }
    AccountState {
        account_id: state.account_id.clone(),
        subdomain: state.subdomain.clone(),
        scripts: state
            .scripts
            .iter()
            .filter(|(name, _)| keep.contains(*name))
            .map(|(name, entry)| (name.clone(), entry.clone()))
            .collect(),
        namespaces: state
            .namespaces
            .iter()
            .filter(|(_, ns)| keep.contains(&ns.script))
            .map(|(id, ns)| (id.clone(), ns.clone()))
            .collect(),
    }
}

/// Test-starts `state` in workerd with in-memory storage and no sockets:
/// workerd then loads every Worker and exits, 0 when all started. Returns
/// workerd's message when a Worker fails to start.
pub fn trial_start(dir: &StateDir, workerd: &Path, state: &AccountState) -> Result<(), String> {
    if state.scripts.is_empty() {
        return Ok(());
    }
    let config = generate_config(state, Storage::Memory, false);
    let path = dir.root.join(format!(
        "workerd-trial-{}.capnp",
        super::state::random_hex(6)
    ));
    write_atomic(&path, config.as_bytes(), true).map_err(|e| e.to_string())?;
    let result = run_trial(workerd, &path);
    let _ = std::fs::remove_file(&path);
    result
}

/// Trial starts shared by concurrent changes: while workerd trials run,
/// the candidates submitted meanwhile queue up and the next run loads them
/// together. A shared run that fails is repeated for each candidate alone,
/// so every candidate gets its own verdict.
pub struct Trials {
    dir: StateDir,
    workerd: PathBuf,
    queue: Mutex<Vec<Candidate>>,
    /// Trial runs at once (one per core, at most two: workerd's restarts need a core too).
    runners: tokio::sync::Semaphore,
}

type Candidate = (
    AccountState,
    tokio::sync::oneshot::Sender<Result<(), String>>,
);

impl Trials {
    pub fn new(dir: StateDir, workerd: PathBuf) -> Trials {
        Trials {
            dir,
            workerd,
            queue: Mutex::new(Vec::new()),
            runners: tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
                    .clamp(1, 2),
            ),
        }
    }

    /// Trial-starts `candidate`: `Err` holds workerd's message when a Worker fails to start.
    pub async fn run(&self, candidate: AccountState) -> Result<(), String> {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        lock(&self.queue).push((candidate, tx));
        let abandoned = || Err("the trial start was abandoned".to_string());
        loop {
            tokio::select! {
                biased;
                verdict = &mut rx => return verdict.unwrap_or_else(|_| abandoned()),
                permit = self.runners.acquire() => {
                    let batch = std::mem::take(&mut *lock(&self.queue));
                    if batch.is_empty() {
                        // Another runner took this candidate and answers it.
                        drop(permit);
                        return rx.await.unwrap_or_else(|_| abandoned());
                    }
                    let dir = self.dir.clone();
                    let workerd = self.workerd.clone();
                    let _ = tokio::task::spawn_blocking(move || run_batch(&dir, &workerd, batch)).await;
                    drop(permit);
                }
            }
        }
    }
}

/// Runs a batch: candidates that do not disagree about a script are loaded
/// together; a failed shared run falls back to one run per candidate.
fn run_batch(dir: &StateDir, workerd: &Path, batch: Vec<Candidate>) {
    let mut groups: Vec<(AccountState, Vec<Candidate>)> = Vec::new();
    for candidate in batch {
        let fits = |merged: &AccountState| {
            candidate.0.scripts.iter().all(|(name, script)| {
                merged
                    .scripts
                    .get(name)
                    .is_none_or(|other| other.deployed == script.deployed)
            })
        };
        match groups.iter_mut().find(|(merged, _)| fits(merged)) {
            Some((merged, members)) => {
                for (name, script) in &candidate.0.scripts {
                    merged
                        .scripts
                        .entry(name.clone())
                        .or_insert_with(|| script.clone());
                }
                for (id, ns) in &candidate.0.namespaces {
                    merged
                        .namespaces
                        .entry(id.clone())
                        .or_insert_with(|| ns.clone());
                }
                members.push(candidate);
            }
            None => groups.push((candidate.0.clone(), vec![candidate])),
        }
    }
    for (merged, members) in groups {
        if members.len() > 1 && trial_start(dir, workerd, &merged).is_ok() {
            for (_, tx) in members {
                let _ = tx.send(Ok(()));
            }
            continue;
        }
        for (state, tx) in members {
            let _ = tx.send(trial_start(dir, workerd, &state));
        }
    }
}

fn run_trial(workerd: &Path, config: &Path) -> Result<(), String> {
    let mut child = Command::new(workerd)
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run workerd ({}): {e}", workerd.display()))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let output = child.wait_with_output().map_err(|e| e.to_string())?;
                if status.success() {
                    return Ok(());
                }
                let mut message = String::from_utf8_lossy(&output.stderr).trim().to_string();
                let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
                if !stdout.is_empty() {
                    message = format!("{message}\n{stdout}").trim().to_string();
                }
                if message.is_empty() {
                    message = format!("workerd exited with {status}");
                }
                return Err(message);
            }
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("workerd did not finish loading the Workers within 20 seconds".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("cannot wait for workerd: {e}")),
        }
    }
}

struct Wanted {
    generation: u64,
    state: Option<AccountState>,
    shutdown: bool,
}

struct Inner {
    dir: StateDir,
    workerd: PathBuf,
    wanted: Mutex<Wanted>,
    wake: Condvar,
    served: tokio::sync::watch::Sender<u64>,
    child: Mutex<Option<Child>>,
    stopped: Mutex<bool>,
    stopped_cv: Condvar,
    /// Changes under way (an upload being checked): a restart waits for them.
    pending: std::sync::atomic::AtomicUsize,
}

/// Marks a change under way until dropped, so that a burst of changes
/// reaches workerd in one restart.
pub struct PendingChange {
    inner: Arc<Inner>,
}

impl Drop for PendingChange {
    fn drop(&mut self) {
        self.inner
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The supervisor of the one workerd process of a state directory. Only the
/// edge server holding the state directory's lock creates one.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Runtime {
    /// Starts the supervisor thread and asks it to serve `initial`.
    pub fn start(dir: StateDir, workerd: PathBuf, initial: AccountState) -> Runtime {
        let (served, _) = tokio::sync::watch::channel(0u64);
        let inner = Arc::new(Inner {
            dir,
            workerd,
            wanted: Mutex::new(Wanted {
                generation: 0,
                state: None,
                shutdown: false,
            }),
            wake: Condvar::new(),
            served,
            child: Mutex::new(None),
            stopped: Mutex::new(false),
            stopped_cv: Condvar::new(),
            pending: std::sync::atomic::AtomicUsize::new(0),
        });
        let runtime = Runtime { inner };
        let worker = runtime.clone();
        std::thread::Builder::new()
            .name("workerd-supervisor".into())
            .spawn(move || worker.supervise())
            .ok();
        runtime.request(initial);
        runtime
    }

    /// Announces a change that may follow shortly; restarts wait (up to a
    /// few seconds) until every announced change is requested or dropped.
    pub fn begin_change(&self) -> PendingChange {
        self.inner
            .pending
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        PendingChange {
            inner: self.inner.clone(),
        }
    }

    /// Asks for `state` to be served; returns the generation to wait for.
    pub fn request(&self, state: AccountState) -> u64 {
        let mut wanted = lock(&self.inner.wanted);
        wanted.generation += 1;
        wanted.state = Some(state);
        self.inner.wake.notify_all();
        wanted.generation
    }

    /// Waits until generation `generation` (or a later one) is serving.
    pub async fn wait_served(&self, generation: u64) {
        let mut rx = self.inner.served.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_secs(30),
            rx.wait_for(|served| *served >= generation),
        )
        .await;
    }

    /// The latest generation asked for and the latest one served.
    pub fn generations(&self) -> (u64, u64) {
        let wanted = lock(&self.inner.wanted).generation;
        (wanted, *self.inner.served.borrow())
    }

    /// workerd's pid, when it runs.
    pub fn workerd_pid(&self) -> Option<u32> {
        lock(&self.inner.child).as_ref().map(|c| c.id())
    }

    /// Stops workerd and the supervisor; returns when workerd has exited.
    pub fn shutdown(&self) {
        {
            let mut wanted = lock(&self.inner.wanted);
            wanted.shutdown = true;
            self.inner.wake.notify_all();
        }
        let stopped = lock(&self.inner.stopped);
        let _ = self
            .inner
            .stopped_cv
            .wait_timeout_while(stopped, Duration::from_secs(10), |s| !*s);
        stop_child(&mut lock(&self.inner.child));
    }

    fn supervise(&self) {
        let mut served_generation = 0;
        loop {
            {
                let mut wanted = lock(&self.inner.wanted);
                while wanted.generation == served_generation && !wanted.shutdown {
                    wanted = self
                        .inner
                        .wake
                        .wait(wanted)
                        .unwrap_or_else(|e| e.into_inner());
                }
                if wanted.shutdown {
                    break;
                }
            }
            // Let a burst of deployments settle into one restart: wait until
            // no change came for DEBOUNCE and none is under way, but at most
            // SETTLE_MAX.
            let first = Instant::now();
            let mut seen = lock(&self.inner.wanted).generation;
            loop {
                std::thread::sleep(DEBOUNCE);
                let now = lock(&self.inner.wanted).generation;
                let busy = self.inner.pending.load(std::sync::atomic::Ordering::SeqCst) > 0;
                if (now == seen && !busy) || first.elapsed() >= SETTLE_MAX {
                    break;
                }
                seen = now;
            }
            let (generation, state) = {
                let mut wanted = lock(&self.inner.wanted);
                if wanted.shutdown {
                    break;
                }
                (wanted.generation, wanted.state.take())
            };
            if let Some(state) = state {
                self.replace(&state);
            }
            served_generation = generation;
            self.inner.served.send_replace(generation);
        }
        stop_child(&mut lock(&self.inner.child));
        *lock(&self.inner.stopped) = true;
        self.inner.stopped_cv.notify_all();
    }

    /// Stops the running workerd, then starts one serving `state`.
    fn replace(&self, state: &AccountState) {
        let started = Instant::now();
        let storage = self.inner.dir.storage_dir();
        for id in state.namespaces.keys() {
            let _ = std::fs::create_dir_all(storage.join(id));
        }
        let config = generate_config(state, Storage::Disk(&storage), true);
        let config_path = self.inner.dir.workerd_config();
        let mut child_slot = lock(&self.inner.child);
        // An unchanged configuration (a version uploaded but not deployed, a
        // tag changed) keeps the running process.
        let running = child_slot
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)));
        if running && std::fs::read_to_string(&config_path).is_ok_and(|old| old == config) {
            return;
        }
        if let Err(e) = write_atomic(&config_path, config.as_bytes(), true) {
            eprintln!("cfdo edge: {e}");
            return;
        }
        // Never two workerd on one storage directory: the old one exits first.
        stop_child(&mut child_slot);
        let ports: Vec<u16> = state
            .scripts
            .values()
            .filter(|s| s.current().is_some())
            .map(|s| s.port)
            .collect();
        if ports.is_empty() {
            return;
        }
        let mut command = Command::new(&self.inner.workerd);
        command
            .arg("serve")
            .arg(&config_path)
            .current_dir(&self.inner.dir.root)
            .stdin(Stdio::null());
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // workerd dies with the edge server, even when the server is killed.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                eprintln!(
                    "cfdo edge: cannot start workerd ({}): {e}",
                    self.inner.workerd.display()
                );
                return;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut pending = ports;
        while !pending.is_empty() && Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("cfdo edge: workerd exited while starting ({status})");
                return;
            }
            pending.retain(|port| {
                TcpStream::connect_timeout(
                    &SocketAddr::from(([127, 0, 0, 1], *port)),
                    Duration::from_millis(200),
                )
                .is_err()
            });
            if !pending.is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if !pending.is_empty() {
            eprintln!("cfdo edge: workerd is not listening on ports {pending:?} after 15 seconds");
        }
        eprintln!(
            "cfdo edge: workerd (pid {}) serving {} script(s), started in {} ms",
            child.id(),
            state.scripts.len(),
            started.elapsed().as_millis()
        );
        *child_slot = Some(child);
    }
}

fn stop_child(slot: &mut Option<Child>) {
    if let Some(mut child) = slot.take() {
        #[cfg(unix)]
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::state::{NamespaceRecord, Script, StoredModule, Version};

    fn script(port: u16, bindings: Vec<Binding>) -> Script {
        let version = Version {
            id: "v".into(),
            main_module: "index.js".into(),
            modules: vec![StoredModule {
                name: "index.js".into(),
                content_type: "application/javascript+module".into(),
                hash: "abc".into(),
            }],
            compatibility_date: Some("2026-01-01".into()),
            bindings,
            ..Version::default()
        };
        Script {
            port,
            deployed: "v".into(),
            versions: vec![version],
            ..Script::default()
        }
    }

    #[test]
    fn a_trial_loads_the_script_and_the_hosts_of_the_classes_it_binds_and_nothing_else() {
        let service = |to: &str| Binding::Service {
            name: "S".into(),
            service: to.into(),
            environment: None,
        };
        let mut state = AccountState::default();
        state
            .scripts
            .insert("app".into(), script(9001, vec![service("api")]));
        state.scripts.insert(
            "api".into(),
            script(
                9002,
                vec![Binding::DurableObjectNamespace {
                    name: "C".into(),
                    class_name: "Counter".into(),
                    script_name: Some("host".into()),
                    namespace_id: None,
                }],
            ),
        );
        state.scripts.insert("host".into(), script(9003, vec![]));
        state
            .scripts
            .insert("other".into(), script(9004, vec![service("app")]));
        for (id, owner) in [("ns-host", "host"), ("ns-other", "other")] {
            state.namespaces.insert(
                id.into(),
                NamespaceRecord {
                    id: id.into(),
                    class: "Counter".into(),
                    script: owner.into(),
                    use_sqlite: false,
                },
            );
        }
        let closure = startup_closure(&state, "api");
        assert_eq!(
            closure.scripts.keys().collect::<Vec<_>>(),
            vec!["api", "host"],
            "a Durable Object host is loaded, nothing else"
        );
        assert_eq!(
            closure.namespaces.keys().collect::<Vec<_>>(),
            vec!["ns-host"]
        );
        let closure = startup_closure(&state, "app");
        assert_eq!(
            closure.scripts.keys().collect::<Vec<_>>(),
            vec!["app"],
            "a service target is not loaded"
        );
        assert!(closure.namespaces.is_empty());
        let alone = startup_closure(&state, "host");
        assert_eq!(alone.scripts.keys().collect::<Vec<_>>(), vec!["host"]);
    }

    #[test]
    fn text_literals_escape_quotes_backslashes_and_control_characters() {
        assert_eq!(text("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\x01\"");
    }

    #[test]
    fn cross_script_bindings_name_the_host_service_and_storage_is_per_namespace_key() {
        let mut state = AccountState::default();
        state.scripts.insert("host".into(), script(9001, vec![]));
        state.scripts.insert(
            "client".into(),
            script(
                9002,
                vec![
                    Binding::DurableObjectNamespace {
                        name: "C".into(),
                        class_name: "Counter".into(),
                        script_name: Some("host".into()),
                        namespace_id: None,
                    },
                    Binding::DurableObjectNamespace {
                        name: "GONE".into(),
                        class_name: "Missing".into(),
                        script_name: Some("host".into()),
                        namespace_id: None,
                    },
                ],
            ),
        );
        state.namespaces.insert(
            "ns1".into(),
            NamespaceRecord {
                id: "ns1".into(),
                class: "Counter".into(),
                script: "host".into(),
                use_sqlite: false,
            },
        );
        let config = generate_config(&state, Storage::Disk(Path::new("/s")), true);
        assert!(config.contains(
            "(name = \"C\", durableObjectNamespace = (className = \"Counter\", serviceName = \"script:host\"))"
        ));
        assert!(
            !config.contains("GONE"),
            "a binding to no namespace is left out"
        );
        assert!(
            config.contains("(className = \"Counter\", uniqueKey = \"ns1\", enableSql = false)")
        );
        assert!(config.contains("address = \"127.0.0.1:9002\""));
        assert!(config.contains("disk = (path = \"/s\", writable = true)"));
    }
}
