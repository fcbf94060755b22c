//! Deploy benchmark: generates stacks of N tiny workers in three shapes,
//! deploys each to a private local edge that adds a fixed latency to every
//! API call, and measures create, no-op plan, a one-worker code change and
//! destroy (wall time, API requests, peak memory of cfdo) against the
//! round-trip bound. Run with `cargo bench --bench deploy` (`-- --quick` for
//! N = 10 and 100 only). Never part of `cargo test`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "\
cfdo deploy benchmark

usage: cargo bench --bench deploy -- [options]

  --quick               only N = 10 and 100
  --sizes 10,100,500    stack sizes (default 10,100,500)
  --shapes host,chain,independent
                        stack shapes (default all three)
  --parallelism N       cfdo apply/destroy --parallelism (default 10, cfdo's default)
  --latency-ms MS       latency the edge adds to every API call (default 50)
  --timeout-secs S      give up on one cfdo command after S seconds (default 600)
  --keep                keep the generated stacks and edge state directories
  --profile             print each phase's requests by endpoint and the edge's time per endpoint
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// One host with a Durable Object class; N-1 clients bind its namespace cross-script.
    Host,
    /// Ten levels; each worker service-binds a worker of the level before.
    Chain,
    /// N workers without bindings.
    Independent,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Host => "host",
            Shape::Chain => "chain",
            Shape::Independent => "independent",
        }
    }

    fn parse(text: &str) -> Option<Shape> {
        match text {
            "host" => Some(Shape::Host),
            "chain" => Some(Shape::Chain),
            "independent" | "indep" => Some(Shape::Independent),
            _ => None,
        }
    }

    /// The dependency levels of a stack of `n` workers.
    fn levels(self, n: usize) -> usize {
        match self {
            Shape::Host => {
                if n > 1 {
                    2
                } else {
                    1
                }
            }
            Shape::Chain => n.min(10),
            Shape::Independent => 1,
        }
    }
}

struct Options {
    sizes: Vec<usize>,
    shapes: Vec<Shape>,
    parallelism: u16,
    latency_ms: u64,
    timeout: Duration,
    keep: bool,
    profile: bool,
}

fn parse_args() -> Result<Option<Options>, String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; anything else running this target (such as
    // `cargo test --benches`) does not, and then nothing is measured.
    let under_cargo_bench = args.iter().any(|a| a == "--bench");
    args.retain(|a| a != "--bench");
    let mut options = Options {
        sizes: vec![10, 100, 500],
        shapes: vec![Shape::Host, Shape::Chain, Shape::Independent],
        parallelism: 10,
        latency_ms: 50,
        timeout: Duration::from_secs(600),
        keep: false,
        profile: false,
    };
    let mut it = args.into_iter();
    let mut explicit_run = false;
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => options.sizes = vec![10, 100],
            "--sizes" => {
                options.sizes = value("--sizes")?
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse::<usize>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| format!("--sizes: `{s}` is not a positive number"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--shapes" => {
                options.shapes = value("--shapes")?
                    .split(',')
                    .map(|s| {
                        Shape::parse(s.trim()).ok_or_else(|| {
                            format!("--shapes: `{s}` is not one of host, chain, independent")
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            "--parallelism" => {
                options.parallelism = value("--parallelism")?
                    .parse()
                    .map_err(|_| "--parallelism needs a number from 1 to 100".to_string())?
            }
            "--latency-ms" => {
                options.latency_ms = value("--latency-ms")?
                    .parse()
                    .map_err(|_| "--latency-ms needs a number".to_string())?
            }
            "--timeout-secs" => {
                options.timeout = Duration::from_secs(
                    value("--timeout-secs")?
                        .parse()
                        .map_err(|_| "--timeout-secs needs a number".to_string())?,
                )
            }
            "--keep" => options.keep = true,
            "--profile" => options.profile = true,
            "--run" => explicit_run = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
    if !under_cargo_bench && !explicit_run {
        println!("deploy benchmark: run it with `cargo bench --bench deploy` (nothing measured)");
        return Ok(None);
    }
    Ok(Some(options))
}

fn main() {
    let options = match parse_args() {
        Ok(Some(options)) => options,
        Ok(None) => return,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if let Err(message) = run(&options) {
        eprintln!("benchmark failed: {message}");
        std::process::exit(1);
    }
}

// ------------------------------------------------------------------ stacks

/// A generated stack on disk.
struct Stack {
    manifest: PathBuf,
    /// The file edited for the code-change phase (the last worker's).
    changed_file: PathBuf,
    levels: usize,
}

fn key(i: usize) -> String {
    format!("w{i:04}")
}

fn generate(root: &Path, shape: Shape, n: usize) -> Result<Stack, String> {
    let dir = root.join("stack");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| format!("cannot create {}: {e}", src.display()))?;
    let levels = shape.levels(n);
    let mut toml = format!(
        "# Generated by the deploy benchmark: {} stack of {n} workers.\n[stack]\nname = \"bench-{}-{n}\"\ncompatibility_date = \"2026-11-01\"\n",
        shape.name(),
        shape.name()
    );
    // For the chain: which level worker i is in, and the first index of each level.
    let level_of = |i: usize| i * levels / n;
    let mut level_start = vec![usize::MAX; levels];
    for i in 0..n {
        let l = level_of(i);
        level_start[l] = level_start[l].min(i);
    }
    for i in 0..n {
        let k = key(i);
        let is_host = shape == Shape::Host && i == 0;
        let code = if is_host {
            format!(
                "export class Counter {{\n  constructor(state) {{ this.state = state; }}\n  async fetch() {{\n    const n = ((await this.state.storage.get(\"n\")) ?? 0) + 1;\n    await this.state.storage.put(\"n\", n);\n    return new Response(String(n));\n  }}\n}}\n\nexport default {{\n  fetch() {{ return new Response(\"{k} v1\"); }},\n}};\n"
            )
        } else {
            format!("export default {{\n  fetch() {{ return new Response(\"{k} v1\"); }},\n}};\n")
        };
        std::fs::write(src.join(format!("{k}.js")), code)
            .map_err(|e| format!("cannot write worker {k}: {e}"))?;
        let _ = writeln!(
            toml,
            "\n[workers.{k}]\nmain = \"src/{k}.js\"\nno_bundle = true"
        );
        match shape {
            Shape::Host if i > 0 => {
                let _ = writeln!(
                    toml,
                    "bindings = {{ COUNTER = {{ durable_object = \"counter\" }} }}"
                );
            }
            Shape::Chain if level_of(i) > 0 => {
                let l = level_of(i);
                let prev_start = level_start[l - 1];
                let prev_len = level_start[l] - prev_start;
                let target = prev_start + (i - level_start[l]) % prev_len;
                let _ = writeln!(
                    toml,
                    "bindings = {{ UP = {{ service = \"{}\" }} }}",
                    key(target)
                );
            }
            _ => {}
        }
    }
    if shape == Shape::Host {
        toml.push_str(
            "\n[durable_objects.counter]\nclass_name = \"Counter\"\nworker = \"w0000\"\n",
        );
    }
    let manifest = dir.join("cfdo.toml");
    std::fs::write(&manifest, toml).map_err(|e| format!("cannot write the manifest: {e}"))?;
    Ok(Stack {
        changed_file: src.join(format!("{}.js", key(n - 1))),
        manifest,
        levels,
    })
}

// ------------------------------------------------------------ processes

/// What one cfdo run did.
struct Run {
    wall: Duration,
    exit: i32,
    /// Peak resident set size of the process, KiB.
    max_rss_kib: i64,
    stdout: String,
    stderr: String,
}

fn cfdo_bin() -> PathBuf {
    std::env::var_os("CFDO_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cfdo")))
}

/// Runs cfdo with `args`, timing it and reading its peak memory from wait4.
fn cfdo(args: &[&str], edge_dir: &Path, timeout: Duration) -> Result<Run, String> {
    let mut command = Command::new(cfdo_bin());
    command
        .args(args)
        .env("CFDO_EDGE_DIR", edge_dir)
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_API_BASE_URL")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", cfdo_bin().display()))?;
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    loop {
        // SAFETY: waits for our own child without blocking.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if r < 0 {
            return Err(format!(
                "waiting for cfdo failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        if !timed_out && started.elapsed() > timeout {
            timed_out = true;
            // SAFETY: signals our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let wall = started.elapsed();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let exit = if timed_out {
        -2
    } else if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok(Run {
        wall,
        exit,
        max_rss_kib: usage.ru_maxrss,
        stdout,
        stderr,
    })
}

/// A private edge: its state directory and API.
struct Edge {
    dir: PathBuf,
    api: String,
    token: String,
    pid: u32,
}

fn start_edge(dir: &Path, latency_ms: u64) -> Result<Edge, String> {
    let latency = latency_ms.to_string();
    let run = cfdo(
        &[
            "edge",
            "start",
            "--json",
            "--port",
            "0",
            "--latency-ms",
            &latency,
        ],
        dir,
        Duration::from_secs(300),
    )?;
    if run.exit != 0 {
        return Err(format!("cfdo edge start failed:\n{}", run.stderr));
    }
    let status: serde_json::Value = serde_json::from_str(run.stdout.trim())
        .map_err(|e| format!("cfdo edge start printed no JSON ({e}): {}", run.stdout))?;
    let api = status["api"]
        .as_str()
        .ok_or("cfdo edge start printed no API URL")?
        .to_string();
    let pid = status["pid"].as_u64().unwrap_or(0) as u32;
    let token = std::fs::read_to_string(dir.join("token"))
        .map_err(|e| format!("cannot read the edge token: {e}"))?
        .trim()
        .to_string();
    Ok(Edge {
        dir: dir.to_path_buf(),
        api,
        token,
        pid,
    })
}

fn stop_edge(edge: &Edge) {
    let _ = cfdo(&["edge", "stop"], &edge.dir, Duration::from_secs(60));
}

/// The median round trip of a trivial API call (token verification).
fn round_trip(edge: &Edge) -> Result<Duration, String> {
    let client = reqwest::blocking::Client::new();
    let url = format!("{}/user/tokens/verify", edge.api);
    let mut samples = Vec::new();
    for _ in 0..15 {
        let started = Instant::now();
        let response = client
            .get(&url)
            .bearer_auth(&edge.token)
            .send()
            .map_err(|e| format!("cannot reach the edge: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("the edge answered {}", response.status()));
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok(samples[samples.len() / 2])
}

/// The edge log from `offset` on, and the new offset.
fn log_since(edge: &Edge, offset: usize) -> (String, usize) {
    let bytes = std::fs::read(edge.dir.join("edge.log")).unwrap_or_default();
    let text = String::from_utf8_lossy(bytes.get(offset..).unwrap_or_default()).to_string();
    (text, bytes.len())
}

/// API requests in an edge log excerpt, by endpoint (ids replaced by `*`):
/// (count, total server milliseconds).
fn requests_by_endpoint(log: &str) -> BTreeMap<String, (usize, u64)> {
    let mut out: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for line in log.lines() {
        let Some(rest) = line.strip_prefix("cfdo edge: ") else {
            continue;
        };
        let Some((request, result)) = rest.split_once(" -> ") else {
            continue;
        };
        let Some((method, path)) = request.split_once(' ') else {
            continue;
        };
        let ms = result
            .split_once('(')
            .and_then(|(_, r)| r.split_once(" ms"))
            .and_then(|(n, _)| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let endpoint = endpoint_label(method, path);
        let entry = out.entry(endpoint).or_default();
        entry.0 += 1;
        entry.1 += ms;
    }
    out
}

fn endpoint_label(method: &str, path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let mut label = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let previous = if i > 0 { segments[i - 1] } else { "" };
        if previous == "accounts" || previous == "scripts" {
            label.push("*");
        } else {
            label.push(segment);
        }
    }
    format!(
        "{method} {}",
        label.join("/").trim_start_matches("/client/v4")
    )
}

fn workerd_restarts(log: &str) -> usize {
    log.lines()
        .filter(|l| l.starts_with("cfdo edge: workerd (pid"))
        .count()
}

/// workerd processes whose parent is the edge server.
fn workerd_children(edge: &Edge) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let Some((head, tail)) = stat.rsplit_once(')') else {
                return false;
            };
            let ppid = tail.split_whitespace().nth(1);
            head.contains("(workerd") && ppid == Some(edge.pid.to_string().as_str())
        })
        .count()
}

/// How many deployed workers answer on their URL.
fn workers_answering(edge: &Edge) -> Result<(usize, usize), String> {
    let run = cfdo(
        &["edge", "status", "--json"],
        &edge.dir,
        Duration::from_secs(60),
    )?;
    let status: serde_json::Value = serde_json::from_str(run.stdout.trim())
        .map_err(|e| format!("cfdo edge status printed no JSON ({e})"))?;
    let workers = status["workers"].as_object().cloned().unwrap_or_default();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let answering = workers
        .values()
        .filter_map(|url| url.as_str())
        .filter(|url| {
            client
                .get(*url)
                .send()
                .is_ok_and(|r| r.status().is_success())
        })
        .count();
    Ok((answering, workers.len()))
}

fn median_wall(args: &[&str], edge_dir: &Path, times: usize) -> Result<Duration, String> {
    let mut samples = Vec::new();
    for _ in 0..times {
        let run = cfdo(args, edge_dir, Duration::from_secs(60))?;
        if run.exit != 0 {
            return Err(format!("cfdo {} failed:\n{}", args.join(" "), run.stderr));
        }
        samples.push(run.wall);
    }
    samples.sort();
    Ok(samples[samples.len() / 2])
}

// ------------------------------------------------------------ measuring

/// One measured phase.
struct Row {
    shape: Shape,
    n: usize,
    phase: &'static str,
    ok: bool,
    levels: usize,
    requests: usize,
    /// Requests cfdo itself counted (from `apply_summary`), when it printed one.
    reported: Option<u64>,
    wall: Duration,
    parallelism: usize,
    rtt: Duration,
    max_rss_kib: i64,
    restarts: usize,
    endpoints: BTreeMap<String, (usize, u64)>,
}

impl Row {
    fn level_bound(&self) -> Duration {
        self.rtt * self.levels as u32
    }

    fn request_bound(&self) -> Duration {
        self.rtt
            .mul_f64(self.requests as f64 / self.parallelism as f64)
    }

    fn bound(&self) -> Duration {
        self.level_bound().max(self.request_bound())
    }

    fn ratio(&self) -> f64 {
        self.wall.as_secs_f64() / self.bound().as_secs_f64().max(1e-9)
    }
}

fn apply_summary_requests(stdout: &str) -> Option<u64> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "apply_summary")
        .and_then(|v| v["requests"].as_u64())
}

struct Extras {
    shape: Shape,
    n: usize,
    validate: Duration,
    graph: Duration,
    status: Duration,
    answering: (usize, usize),
    workerd: usize,
    create_restarts: usize,
}

fn run(options: &Options) -> Result<(), String> {
    let bin = cfdo_bin();
    if !bin.is_file() {
        return Err(format!("no cfdo binary at {}", bin.display()));
    }
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut extras = Vec::new();
    let mut notes = Vec::new();
    for &n in &options.sizes {
        for &shape in &options.shapes {
            eprintln!(
                "[{:>5.0}s] {} stack of {n} workers",
                started.elapsed().as_secs_f64(),
                shape.name()
            );
            let root = tempfile::Builder::new()
                .prefix(&format!("cfdo-bench-{}-{n}-", shape.name()))
                .tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            let result = measure_stack(options, shape, n, root.path(), &mut rows, &mut extras);
            if let Err(message) = result {
                eprintln!("  {message}");
                notes.push(format!("{} N={n}: {message}", shape.name()));
            }
            if options.keep {
                let kept = root.keep();
                eprintln!("  kept {}", kept.display());
            }
        }
    }
    print!("{}", report(options, &rows, &extras, &notes));
    eprintln!(
        "benchmark finished in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn measure_stack(
    options: &Options,
    shape: Shape,
    n: usize,
    root: &Path,
    rows: &mut Vec<Row>,
    extras: &mut Vec<Extras>,
) -> Result<(), String> {
    let stack = generate(root, shape, n)?;
    let edge_dir = root.join("edge");
    let edge = start_edge(&edge_dir, options.latency_ms)?;
    let result = (|| {
        let rtt = round_trip(&edge)?;
        let manifest = stack.manifest.to_string_lossy().to_string();
        let parallelism = options.parallelism.to_string();
        let offset = std::cell::Cell::new(log_since(&edge, 0).1);
        let phase = |name: &'static str,
                     args: Vec<&str>,
                     levels: usize,
                     parallelism_used: usize,
                     rows: &mut Vec<Row>|
         -> Result<(bool, String), String> {
            let run = cfdo(&args, &edge.dir, options.timeout)?;
            // The edge logs a request when it has answered; give it a moment.
            std::thread::sleep(Duration::from_millis(20));
            let (log, next) = log_since(&edge, offset.get());
            offset.set(next);
            let endpoints = requests_by_endpoint(&log);
            let ok = run.exit == 0;
            let row = Row {
                shape,
                n,
                phase: name,
                ok,
                levels,
                requests: endpoints.values().map(|(c, _)| c).sum(),
                reported: apply_summary_requests(&run.stdout),
                wall: run.wall,
                parallelism: parallelism_used,
                rtt,
                max_rss_kib: run.max_rss_kib,
                restarts: workerd_restarts(&log),
                endpoints,
            };
            eprintln!(
                "  {:<12} {:>8.0} ms  {:>5} requests  {:>6.1} MB  exit {}",
                name,
                row.wall.as_secs_f64() * 1000.0,
                row.requests,
                row.max_rss_kib as f64 / 1024.0,
                run.exit
            );
            if !ok {
                let tail: Vec<&str> = run.stderr.lines().rev().take(12).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                eprintln!("  {name} failed (exit {}):\n{}", run.exit, tail.join("\n"));
            }
            rows.push(row);
            Ok((ok, log))
        };
        let p = usize::from(options.parallelism);
        let apply = vec![
            "apply",
            "--yes",
            "--json",
            "--target",
            "local",
            "--parallelism",
            parallelism.as_str(),
            "-f",
            manifest.as_str(),
        ];
        let (created, create_log) = phase("create", apply.clone(), stack.levels, p, rows)?;
        if !created {
            return Err("create failed; the other phases were skipped".into());
        }
        // The edge after create: one workerd serving every worker.
        let extra = Extras {
            shape,
            n,
            validate: median_wall(&["validate", "-f", manifest.as_str()], &edge.dir, 5)?,
            graph: median_wall(&["graph", "-f", manifest.as_str()], &edge.dir, 5)?,
            status: median_wall(&["edge", "status"], &edge.dir, 5)?,
            answering: workers_answering(&edge)?,
            workerd: workerd_children(&edge),
            create_restarts: workerd_restarts(&create_log),
        };
        extras.push(extra);
        // What the extra measurements logged is not part of the next phase.
        offset.set(log_since(&edge, 0).1);
        let plan = vec![
            "plan",
            "--json",
            "--detailed-exitcode",
            "--target",
            "local",
            "-f",
            manifest.as_str(),
        ];
        // `cfdo plan` reads with a fixed parallelism of 10.
        phase("no-op plan", plan, 1, 10, rows)?;
        let code = std::fs::read_to_string(&stack.changed_file)
            .map_err(|e| format!("cannot read {}: {e}", stack.changed_file.display()))?;
        std::fs::write(&stack.changed_file, code.replace(" v1\"", " v2\""))
            .map_err(|e| format!("cannot change {}: {e}", stack.changed_file.display()))?;
        phase("code change", apply, 1, p, rows)?;
        let destroy = vec![
            "destroy",
            "--yes",
            "--json",
            "--target",
            "local",
            "--parallelism",
            parallelism.as_str(),
            "-f",
            manifest.as_str(),
        ];
        phase("destroy", destroy, stack.levels, p, rows)?;
        Ok(())
    })();
    stop_edge(&edge);
    result
}

// ------------------------------------------------------------ reporting

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn report(options: &Options, rows: &[Row], extras: &[Extras], notes: &[String]) -> String {
    let mut out = String::new();
    let rtt = rows.first().map(|r| r.rtt).unwrap_or_default();
    let _ = writeln!(
        out,
        "\nEdge latency {} ms; measured round trip of a trivial call {} ms; parallelism {} (plan: 10).\n",
        options.latency_ms,
        ms(rtt),
        options.parallelism
    );
    let _ = writeln!(
        out,
        "| shape | N | phase | ok | levels | requests | wall ms | level bound ms | request bound ms | ratio | peak MB | workerd starts |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let requests = match r.reported {
            Some(reported) if reported as usize != r.requests => {
                format!("{} (cfdo: {reported})", r.requests)
            }
            _ => r.requests.to_string(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.1} | {} |",
            r.shape.name(),
            r.n,
            r.phase,
            if r.ok { "yes" } else { "NO" },
            r.levels,
            requests,
            ms(r.wall),
            ms(r.level_bound()),
            ms(r.request_bound()),
            r.ratio(),
            r.max_rss_kib as f64 / 1024.0,
            r.restarts
        );
    }
    if !extras.is_empty() {
        let _ = writeln!(
            out,
            "\n| shape | N | validate ms | graph ms | edge status ms | workers answering | workerd processes | workerd starts during create |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for e in extras {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {}/{} | {} | {} |",
                e.shape.name(),
                e.n,
                ms(e.validate),
                ms(e.graph),
                ms(e.status),
                e.answering.0,
                e.answering.1,
                e.workerd,
                e.create_restarts
            );
        }
    }
    if options.profile {
        let _ = writeln!(out, "\nRequests by endpoint (count, mean edge ms):");
        for r in rows {
            let _ = writeln!(out, "\n{} N={} {}:", r.shape.name(), r.n, r.phase);
            for (endpoint, (count, total)) in &r.endpoints {
                let _ = writeln!(
                    out,
                    "  {count:>5}  {:>7.1} ms  {endpoint}",
                    *total as f64 / (*count).max(1) as f64
                );
            }
        }
    }
    for note in notes {
        let _ = writeln!(out, "\nnote: {note}");
    }
    out
}
