//! Hostile input: the edge's multipart upload parser and settings parser
//! over random and mutated bodies (no panic, no hang, bounded memory),
//! oversized uploads refused with Cloudflare's size-limit message, and the
//! manifest parser and dependency graph over generated manifests.

mod reliability_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cfdo::edge::{
    ApiError, MAX_METADATA_BYTES, MAX_SCRIPT_BYTES, MAX_UPLOAD_PARTS, ParsedUpload,
    SCRIPT_TOO_LARGE, read_upload, settings_from_multipart,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reliability_support::Edge;

const BOUNDARY: &str = "cfdoBoundary7MA4YWxkTrZu0gW";
const BAD_REQUEST: i64 = 10014;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

/// Parses a body given as chunks; a parse that does not end is a failure.
fn parse(
    rt: &tokio::runtime::Runtime,
    content_type: Option<&str>,
    chunks: Vec<Vec<u8>>,
) -> Result<ParsedUpload, ApiError> {
    let stream = futures::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
    );
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), read_upload(content_type, stream))
            .await
            .expect("the parser hung")
    })
}

fn part(name: &str, file: Option<&str>, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"");
    if let Some(f) = file {
        out.push_str(&format!("; filename=\"{f}\""));
    }
    out.push_str(&format!("\r\nContent-Type: {content_type}\r\n\r\n"));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(b"\r\n");
    bytes
}

fn content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// A valid upload: metadata and two ES modules.
fn valid_body() -> Vec<u8> {
    let mut body = part(
        "metadata",
        Some("blob"),
        "application/json",
        br#"{"main_module":"index.js","compatibility_date":"2026-01-01","bindings":[{"type":"plain_text","name":"A","text":"x"}]}"#,
    );
    body.extend(part(
        "index.js",
        Some("index.js"),
        "application/javascript+module",
        b"import { f } from \"./lib.js\";\nexport default { fetch() { return new Response(f()); } };\n",
    ));
    body.extend(part(
        "lib.js",
        Some("lib.js"),
        "application/javascript+module",
        b"export function f() { return \"ok\"; }\n",
    ));
    body.extend(format!("--{BOUNDARY}--\r\n").into_bytes());
    body
}

/// Splits `body` into chunks whose sizes cycle through `sizes`.
fn chunked(body: &[u8], sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < body.len() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(body.len())
            .max(1);
        let end = (at + size).min(body.len());
        out.push(body[at..end].to_vec());
        at = end;
        i += 1;
    }
    out
}

fn check_outcome(result: &Result<ParsedUpload, ApiError>) -> Result<(), TestCaseError> {
    match result {
        Ok(parsed) => {
            let total: usize = parsed.modules.iter().map(|m| m.2.len()).sum();
            prop_assert!(total <= MAX_SCRIPT_BYTES);
            prop_assert!(parsed.modules.len() < MAX_UPLOAD_PARTS);
        }
        Err(e) => {
            prop_assert_eq!(e.status, 400, "{}", e.message);
            prop_assert!(
                e.code == BAD_REQUEST || e.code == SCRIPT_TOO_LARGE,
                "code {} ({})",
                e.code,
                e.message
            );
        }
    }
    Ok(())
}

/// Fragments that matter to a multipart parser.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\r\n\r\n".to_vec()),
        Just(b"--".to_vec()),
        Just(format!("--{BOUNDARY}").into_bytes()),
        Just(format!("\r\n--{BOUNDARY}--\r\n").into_bytes()),
        Just(b"Content-Disposition: form-data; name=\"".to_vec()),
        Just(b"\"; filename=\"".to_vec()),
        Just(b"name=\"metadata\"".to_vec()),
        Just(b"Content-Type: ".to_vec()),
        Just(b"{\"main_module\":".to_vec()),
        Just(vec![0u8; 3]),
        Just(vec![0xff, 0xfe, 0xc3]),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0usize..1000).prop_map(Mutation::Truncate),
        (0usize..1000, any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        (0usize..1000, fragment()).prop_map(|(at, f)| Mutation::Insert(at, f)),
        (0usize..1000, 0usize..80).prop_map(|(at, n)| Mutation::Remove(at, n)),
        (0usize..1000, 0usize..200).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
    ]
}

fn mutate(mut body: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = body.len();
        match m {
            Mutation::Truncate(at) => body.truncate(*at % (len + 1)),
            Mutation::Flip(at, b) if len > 0 => body[*at % len] ^= b | 1,
            Mutation::Flip(..) => {}
            Mutation::Insert(at, f) => {
                let at = *at % (len + 1);
                body.splice(at..at, f.iter().copied());
            }
            Mutation::Remove(at, n) => {
                let at = *at % (len + 1);
                let end = (at + n).min(len);
                body.drain(at..end);
            }
            Mutation::Duplicate(at, n) => {
                let at = *at % (len + 1);
                let end = (at + n).min(len);
                let copy = body[at..end].to_vec();
                body.splice(end..end, copy);
            }
        }
    }
    body
}

/// Content types, well formed or not.
fn content_type_strategy() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(Some(content_type())),
        1 => Just(None),
        1 => Just(Some("multipart/form-data".to_string())),
        1 => Just(Some("multipart/form-data; boundary=".to_string())),
        1 => Just(Some(format!("multipart/form-data; boundary=\"{BOUNDARY}\""))),
        1 => "\\PC{0,60}".prop_map(Some),
    ]
}

#[test]
fn the_valid_upload_parses() {
    let rt = runtime();
    let parsed = parse(&rt, Some(&content_type()), vec![valid_body()]).expect("valid");
    assert_eq!(parsed.metadata.main_module.as_deref(), Some("index.js"));
    let names: Vec<&str> = parsed.modules.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(names, ["index.js", "lib.js"]);
    // The same body in one-byte chunks reads the same.
    let body = valid_body();
    let parsed = parse(&rt, Some(&content_type()), chunked(&body, &[1])).expect("valid");
    assert_eq!(parsed.modules.len(), 2);
}

#[test]
fn mutated_and_random_upload_bodies_never_panic_or_hang() {
    let rt = runtime();
    let executions = AtomicUsize::new(0);
    let accepted = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        content_type_strategy(),
        proptest::collection::vec(mutation(), 0..6),
        proptest::collection::vec(1usize..300, 1..4),
    );
    runner
        .run(&strategy, |(ct, mutations, sizes)| {
            let body = mutate(valid_body(), &mutations);
            let result = parse(&rt, ct.as_deref(), chunked(&body, &sizes));
            executions.fetch_add(1, Ordering::Relaxed);
            if result.is_ok() {
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            check_outcome(&result)
        })
        .unwrap_or_else(|e| panic!("{e}"));

    let mut runner = TestRunner::new(Config {
        cases: 1500,
        failure_persistence: None,
        ..Config::default()
    });
    let random = (
        content_type_strategy(),
        proptest::collection::vec(any::<u8>(), 0..2048),
        proptest::collection::vec(1usize..512, 1..4),
    );
    runner
        .run(&random, |(ct, body, sizes)| {
            let result = parse(&rt, ct.as_deref(), chunked(&body, &sizes));
            executions.fetch_add(1, Ordering::Relaxed);
            check_outcome(&result)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "upload parser: {} bodies parsed ({} mutated bodies still accepted), no panic, no hang",
        executions.load(Ordering::Relaxed),
        accepted.load(Ordering::Relaxed)
    );
}

#[test]
fn settings_bodies_never_panic() {
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        failure_persistence: None,
        ..Config::default()
    });
    let settings = b"{\"tags\":[\"a\"]}";
    let mut valid =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"settings\"\r\n\r\n")
            .into_bytes();
    valid.extend_from_slice(settings);
    valid.extend(format!("\r\n--{BOUNDARY}--\r\n").into_bytes());
    let parsed = settings_from_multipart(&content_type(), &valid).expect("valid settings");
    assert_eq!(parsed["tags"][0], "a");
    let strategy = (
        content_type_strategy(),
        proptest::collection::vec(mutation(), 0..6),
    );
    runner
        .run(&strategy, |(ct, mutations)| {
            let body = mutate(valid.clone(), &mutations);
            if let Err(e) = settings_from_multipart(ct.as_deref().unwrap_or(""), &body) {
                prop_assert_eq!(e.status, 400);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("settings parser: 2000 bodies, no panic");
}

/// A stream that yields `head`, then `filler` forever, counting what is
/// pulled. Like a network body it is not always ready: it yields to the
/// runtime before each chunk.
fn endless(
    head: Vec<u8>,
    filler: Vec<u8>,
    pulled: Arc<AtomicUsize>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let filler = Bytes::from(filler);
    futures::stream::unfold(Some(Bytes::from(head)), move |head| {
        let pulled = pulled.clone();
        let filler = filler.clone();
        async move {
            tokio::task::yield_now().await;
            let chunk = head.unwrap_or(filler);
            pulled.fetch_add(chunk.len(), Ordering::Relaxed);
            Some((Ok(chunk), None))
        }
    })
}

fn endless_parse(head: Vec<u8>, filler: Vec<u8>) -> (ApiError, usize) {
    let rt = runtime();
    let pulled = Arc::new(AtomicUsize::new(0));
    let stream = endless(head, filler, pulled.clone());
    let ct = content_type();
    let result = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), read_upload(Some(&ct), stream))
            .await
            .expect("the parser read an endless body without stopping")
    });
    let error = result.expect_err("an endless body is refused");
    (error, pulled.load(Ordering::Relaxed))
}

#[test]
fn endless_bodies_are_refused_after_reading_a_bounded_amount() {
    const CHUNK: usize = 256 * 1024;
    let bound = MAX_SCRIPT_BYTES + MAX_METADATA_BYTES + (2 << 20) + CHUNK;

    // A module that never ends: Cloudflare's size-limit error, code 10027.
    let mut head = part(
        "metadata",
        None,
        "application/json",
        br#"{"main_module":"index.js"}"#,
    );
    let module = part(
        "index.js",
        Some("index.js"),
        "application/javascript+module",
        b"",
    );
    head.extend_from_slice(&module[..module.len() - 2]);
    let (error, pulled) = endless_parse(head, vec![b'a'; CHUNK]);
    assert_eq!(error.code, SCRIPT_TOO_LARGE, "{}", error.message);
    assert_eq!(
        error.message,
        "Your Worker exceeded the size limit of 64 MiB. Refer to the Workers documentation (https://developers.cloudflare.com/workers/observability/errors/#errors-on-worker-upload) for more details."
    );
    assert!(pulled <= bound, "read {pulled} bytes of an endless module");
    let module_pulled = pulled;

    // Metadata that never ends: refused after 1 MiB.
    let meta = part("metadata", None, "application/json", b"");
    let (error, pulled) = endless_parse(meta[..meta.len() - 2].to_vec(), vec![b' '; CHUNK]);
    assert_eq!(error.code, BAD_REQUEST, "{}", error.message);
    assert!(
        error.message.contains("metadata part is larger than 1 MiB"),
        "{}",
        error.message
    );
    assert!(
        pulled <= MAX_METADATA_BYTES + 2 * CHUNK + 4096,
        "read {pulled} bytes"
    );

    // No boundary ever, or a part header that never ends.
    let (error, garbage_pulled) = endless_parse(Vec::new(), vec![b'x'; CHUNK]);
    assert_eq!(error.status, 400, "{}", error.message);
    assert!(
        garbage_pulled <= bound,
        "read {garbage_pulled} bytes of garbage"
    );
    let (error, header_pulled) = endless_parse(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"").into_bytes(),
        vec![b'n'; CHUNK],
    );
    assert_eq!(error.status, 400, "{}", error.message);
    assert!(
        header_pulled <= bound,
        "read {header_pulled} bytes of a header"
    );

    // Endless empty parts: refused at the part limit.
    let (error, parts_pulled) = endless_parse(
        Vec::new(),
        part("m.js", Some("m.js"), "application/javascript+module", b""),
    );
    assert_eq!(error.code, BAD_REQUEST, "{}", error.message);
    assert!(
        error.message.contains("more than 1000 parts"),
        "{}",
        error.message
    );
    assert!(parts_pulled <= bound);
    eprintln!(
        "endless bodies: module refused after {} MiB, garbage after {} MiB, header after {} MiB, parts after {} KiB",
        module_pulled >> 20,
        garbage_pulled >> 20,
        header_pulled >> 20,
        parts_pulled >> 10
    );
}

#[test]
fn the_edge_refuses_oversized_and_malformed_uploads_over_http() {
    let edge = Edge::start(&[]);
    let (api, token, account) = edge.env();
    let url = format!("{api}/accounts/{account}/workers/scripts/hostile");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let put = |content_type: &str, body: Vec<u8>| {
        let response = client
            .put(&url)
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .expect("the edge answers");
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().expect("a JSON envelope");
        (status, body)
    };

    // A Worker one byte over the limit.
    let mut big = part(
        "metadata",
        None,
        "application/json",
        br#"{"main_module":"index.js","compatibility_date":"2026-01-01"}"#,
    );
    let mut code = b"export default {};\n//".to_vec();
    code.resize(MAX_SCRIPT_BYTES + 1, b'a');
    big.extend(part(
        "index.js",
        Some("index.js"),
        "application/javascript+module",
        &code,
    ));
    big.extend(format!("--{BOUNDARY}--\r\n").into_bytes());
    let (status, body) = put(&content_type(), big);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["code"], SCRIPT_TOO_LARGE, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Your Worker exceeded the size limit of 64 MiB."),
        "{body}"
    );

    let (status, body) = put("text/plain", b"hello".to_vec());
    assert_eq!(
        (status, body["errors"][0]["code"].as_i64()),
        (400, Some(BAD_REQUEST))
    );

    // Mutated bodies: always an envelope, never a 5xx; the edge keeps serving.
    let mut runner = TestRunner::new(Config {
        cases: 40,
        failure_persistence: None,
        ..Config::default()
    });
    let tried = AtomicUsize::new(0);
    runner
        .run(&proptest::collection::vec(mutation(), 1..5), |mutations| {
            let body = mutate(valid_body(), &mutations);
            let (status, envelope) = put(&content_type(), body);
            tried.fetch_add(1, Ordering::Relaxed);
            prop_assert!(status < 500, "{} {}", status, envelope);
            prop_assert_eq!(envelope["success"].as_bool(), Some(status == 200));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, body) = put(&content_type(), valid_body());
    assert_eq!(status, 200, "{body}");
    eprintln!(
        "edge over HTTP: a {} MiB Worker refused with 10027, {} mutated uploads answered without a 5xx",
        (MAX_SCRIPT_BYTES + 1) >> 20,
        tried.load(Ordering::Relaxed)
    );
}

// ------------------------------------------------------------- manifests

/// A generated manifest: `workers` workers, `namespaces` namespaces each hosted
/// by one of them, bindings between them (cycles included), and with
/// `corruption` one defect among those cfdo must explain.
#[derive(Debug, Clone)]
struct GenManifest {
    workers: usize,
    /// (host worker, sqlite, renamed/transferred/protected)
    namespaces: Vec<(usize, Option<bool>, u8)>,
    /// (worker, kind, target): kind 0 namespace, 1 service, 2 text, 3 json, 4 secret
    bindings: Vec<(usize, u8, usize)>,
    workers_dev: Vec<bool>,
    overlay: bool,
    corruption: Option<u8>,
}

const CORRUPTIONS: u8 = 12;

fn gen_manifest() -> impl Strategy<Value = GenManifest> {
    (1usize..7, 0usize..5)
        .prop_flat_map(|(workers, namespaces)| {
            (
                Just(workers),
                proptest::collection::vec(
                    (0..workers, proptest::option::of(any::<bool>()), 0u8..8),
                    namespaces,
                ),
                proptest::collection::vec((0..workers, 0u8..5, 0usize..8), 0..10),
                proptest::collection::vec(any::<bool>(), workers),
                proptest::bool::weighted(0.2),
                proptest::option::weighted(0.3, 0..CORRUPTIONS),
            )
        })
        .prop_map(
            |(workers, namespaces, bindings, workers_dev, overlay, corruption)| GenManifest {
                workers,
                namespaces,
                bindings,
                workers_dev,
                overlay,
                corruption,
            },
        )
}

impl GenManifest {
    fn text(&self) -> String {
        let c = self.corruption;
        let mut t = "[stack]\nname = \"gen\"\ncompatibility_date = \"2026-11-01\"\n\n".to_string();
        for w in 0..self.workers {
            let main = match (c, w) {
                (Some(0), 0) => "missing.js",
                (Some(1), 0) => "../a.js",
                _ => "a.js",
            };
            t.push_str(&format!(
                "[workers.w{w}]\nmain = \"{main}\"\nworkers_dev = {}\n",
                self.workers_dev[w]
            ));
            match (c, w) {
                (Some(2), 0) => t.push_str("name = \"UPPER\"\n"),
                (Some(3), _) if w < 2 => t.push_str("name = \"same-name\"\n"),
                (Some(4), 0) => t.push_str(&format!("name = \"{}\"\n", "x".repeat(64))),
                _ => {}
            }
            t.push_str(&format!("[workers.w{w}.bindings]\n"));
            for (j, (_, kind, target)) in self.bindings.iter().enumerate().filter(|(_, b)| b.0 == w)
            {
                let value = match kind {
                    0 if !self.namespaces.is_empty() => {
                        format!("durable_object = \"n{}\"", target % self.namespaces.len())
                    }
                    1 => format!("service = \"w{}\"", target % self.workers),
                    3 => "json = { a = [1, { b = true }] }".to_string(),
                    4 => "secret = \"CFDO_TEST_SECRET\"".to_string(),
                    _ => "text = \"x\"".to_string(),
                };
                t.push_str(&format!("B{j} = {{ {value} }}\n"));
            }
            if w == 0 {
                match c {
                    Some(5) => t.push_str("\"bad name\" = { text = \"x\" }\n"),
                    Some(6) => t.push_str("EMPTY = {}\n"),
                    Some(7) => t.push_str("TWO = { text = \"x\", service = \"w0\" }\n"),
                    Some(8) => t.push_str("GONE = { durable_object = \"nowhere\" }\n"),
                    Some(9) => t.push_str("UNSET = { secret = \"CFDO_UNSET_VARIABLE\" }\n"),
                    _ => {}
                }
            }
            t.push('\n');
        }
        for (i, (host, sqlite, extra)) in self.namespaces.iter().enumerate() {
            let class = if c == Some(10) {
                "C".to_string()
            } else {
                format!("C{i}")
            };
            t.push_str(&format!(
                "[durable_objects.n{i}]\nclass_name = \"{class}\"\n"
            ));
            if c == Some(11) && i == 0 {
                t.push_str("script = \"outside-host\"\n");
            }
            t.push_str(&format!("worker = \"w{host}\"\n"));
            if let Some(s) = sqlite {
                t.push_str(&format!("sqlite = {s}\n"));
            }
            match extra {
                0 => t.push_str("renamed_from = \"Old\"\n"),
                1 => t.push_str("transferred_from = \"old-script\"\n"),
                2 => t.push_str("protect = true\n"),
                _ => {}
            }
            t.push('\n');
        }
        if self.overlay {
            t.push_str("[env.staging]\nvars = { VAR = \"s\" }\n[env.staging.workers.w0]\nname = \"w0-staging\"\n");
        }
        t
    }
}

#[test]
fn generated_manifests_validate_or_explain_and_levels_put_hosts_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.js"), "export default {};\n").expect("write a.js");
    let lookup = |name: &str| (name == "CFDO_TEST_SECRET").then(|| "value".to_string());
    let mut runner = TestRunner::new(Config {
        cases: 1500,
        failure_persistence: None,
        ..Config::default()
    });
    let (valid, invalid, cycles) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    runner
        .run(&gen_manifest(), |generated| {
            let text = generated.text();
            let env = text.contains("[env.staging]").then_some("staging");
            match cfdo::manifest::parse(
                &text,
                std::path::Path::new("cfdo.toml"),
                dir.path(),
                env,
                &lookup,
            ) {
                Err(errors) => {
                    prop_assert!(!errors.problems.is_empty());
                    // The diagnostics render without panicking.
                    let rendered = format!("{:?}", miette::Report::new(errors));
                    prop_assert!(!rendered.is_empty());
                    if rendered.contains("dependency cycle") {
                        cycles.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // Only a planted defect is refused.
                        prop_assert!(generated.corruption.is_some(), "{}\n{}", text, rendered);
                        invalid.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(manifest) => match cfdo::graph::Graph::new(&manifest) {
                    Ok(graph) => {
                        let placed: usize = graph.levels.iter().map(Vec::len).sum();
                        prop_assert_eq!(placed, manifest.workers.len());
                        for edge in &graph.edges {
                            let client = graph.level_of(&edge.client);
                            let host = graph.level_of(&edge.host);
                            prop_assert!(host < client, "{:?} in {}", edge, text);
                        }
                        valid.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(problem) => {
                        let rendered =
                            format!("{:?}", miette::Report::new(manifest.errors(vec![problem])));
                        prop_assert!(rendered.contains("cycle"), "{}", rendered);
                        cycles.fetch_add(1, Ordering::Relaxed);
                    }
                },
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "manifests: 1500 generated: {} valid with hosts levelled first, {} refused with diagnostics, {} cycles spelled out",
        valid.load(Ordering::Relaxed),
        invalid.load(Ordering::Relaxed),
        cycles.load(Ordering::Relaxed)
    );
}
