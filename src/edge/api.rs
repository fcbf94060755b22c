//! The edge's HTTP API: the subset of Cloudflare's `/client/v4` that deploys
//! use, with Cloudflare's envelope, bearer-token authentication and optional
//! fault injection (latency, random 500s, rate limiting).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::rules::{self, ApiError, BAD_REQUEST, UploadKind};
use super::runtime::{PendingChange, Runtime, Storage, Trials, generate_config, startup_closure};
use super::state::{AccountState, Script, StateDir, StoredModule};
use crate::cloudflare::types::{Binding, UploadMetadata, codes};

/// Fault injection settings of `cfdo edge serve`.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub latency: Duration,
    pub fail_rate: f64,
    /// At most this many requests per window.
    pub rate_limit: Option<(u32, Duration)>,
}

pub struct App {
    pub dir: StateDir,
    pub token: String,
    pub newest_date: String,
    pub state: tokio::sync::Mutex<AccountState>,
    pub runtime: Runtime,
    pub faults: Faults,
    trials: Trials,
    /// The sequence number of the last account change (taken holding the account).
    change_seq: std::sync::atomic::AtomicU64,
    /// The sequence number of the account last written to state.json.
    saved_seq: std::sync::Mutex<u64>,
    rate_window: std::sync::Mutex<(Instant, u32)>,
}

impl App {
    pub fn new(
        dir: StateDir,
        token: String,
        workerd: PathBuf,
        newest_date: String,
        state: AccountState,
        runtime: Runtime,
        faults: Faults,
    ) -> Self {
        App {
            trials: Trials::new(dir.clone(), workerd),
            change_seq: std::sync::atomic::AtomicU64::new(0),
            saved_seq: std::sync::Mutex::new(0),
            dir,
            token,
            newest_date,
            state: tokio::sync::Mutex::new(state),
            runtime,
            faults,
            rate_window: std::sync::Mutex::new((Instant::now(), 0)),
        }
    }
}

type Shared = Arc<App>;

pub fn router(app: Shared) -> Router {
    let scripts = "/client/v4/accounts/{account}/workers/scripts";
    let api = Router::new()
        .route("/client/v4/user/tokens/verify", get(verify_token))
        .route(scripts, get(list_scripts))
        .route(
            &format!("{scripts}/{{script}}"),
            get(get_script).put(put_script).delete(delete_script),
        )
        .route(
            &format!("{scripts}/{{script}}/settings"),
            get(get_settings).patch(patch_settings),
        )
        .route(
            &format!("{scripts}/{{script}}/script-settings"),
            get(get_settings).patch(patch_settings),
        )
        .route(
            &format!("{scripts}/{{script}}/references"),
            get(get_references),
        )
        .route(
            &format!("{scripts}/{{script}}/subdomain"),
            get(get_script_subdomain).post(post_script_subdomain),
        )
        .route(
            &format!("{scripts}/{{script}}/versions"),
            get(list_versions).post(post_version),
        )
        .route(
            &format!("{scripts}/{{script}}/versions/{{version}}"),
            get(get_version),
        )
        .route(
            &format!("{scripts}/{{script}}/secrets"),
            get(list_secrets).put(put_secret),
        )
        .route(
            &format!("{scripts}/{{script}}/secrets/{{name}}"),
            axum::routing::delete(delete_secret),
        )
        .route(
            &format!("{scripts}/{{script}}/deployments"),
            get(list_deployments).post(post_deployment),
        )
        .route(
            "/client/v4/accounts/{account}/workers/deployments/by-script/{script}",
            get(list_deployments),
        )
        .route(
            "/client/v4/accounts/{account}/workers/services/{script}",
            get(get_service),
        )
        .route(
            "/client/v4/accounts/{account}/workers/durable_objects/namespaces",
            get(list_namespaces),
        )
        .route(
            "/client/v4/accounts/{account}/workers/subdomain",
            get(get_account_subdomain),
        )
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .layer(middleware::from_fn_with_state(app.clone(), inject_faults));
    Router::new()
        .route("/cfdo/health", get(health))
        .merge(api)
        .layer(DefaultBodyLimit::max(128 * 1024 * 1024))
        .layer(middleware::from_fn(log_request))
        .with_state(app)
}

// ---------------------------------------------------------------- envelope

fn ok(result: Value) -> Response {
    envelope_response(
        StatusCode::OK,
        json!({"success": true, "errors": [], "messages": [], "result": result}),
    )
}

fn ok_paged(result: Value, page: u32, per_page: u32, count: usize, total: usize) -> Response {
    let total_pages = if per_page == 0 {
        0
    } else {
        total.div_ceil(per_page as usize)
    };
    envelope_response(
        StatusCode::OK,
        json!({"success": true, "errors": [], "messages": [], "result": result,
               "result_info": {"page": page, "per_page": per_page, "count": count,
                               "total_count": total, "total_pages": total_pages}}),
    )
}

fn envelope_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        envelope_response(
            status,
            json!({"success": false, "errors": [{"code": self.code, "message": self.message}],
                   "messages": [], "result": null}),
        )
    }
}

type ApiResult = Result<Response, ApiError>;

// -------------------------------------------------------------- middleware

async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    if path != "/cfdo/health" {
        // One write per line: workerd writes to the same log, and a line
        // written in pieces can be split by its output.
        let line = format!(
            "cfdo edge: {method} {path} -> {} ({} ms)\n",
            response.status().as_u16(),
            started.elapsed().as_millis()
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    }
    response
}

async fn authenticate(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => ApiError::new(
            401,
            codes::AUTH,
            "Authentication error: send the edge's token as `Authorization: Bearer <token>` (see `cfdo edge env`)",
        )
        .into_response(),
        Some(token) if !constant_time_eq(token.as_bytes(), app.token.as_bytes()) => {
            ApiError::new(403, codes::AUTH, "Authentication error: unknown API token")
                .into_response()
        }
        Some(_) => next.run(request).await,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn inject_faults(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let faults = &app.faults;
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    if let Some((limit, window)) = faults.rate_limit {
        let retry_after = {
            let mut slot = app.rate_window.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if now.duration_since(slot.0) >= window {
                *slot = (now, 0);
            }
            slot.1 += 1;
            (slot.1 > limit).then(|| window.saturating_sub(now.duration_since(slot.0)))
        };
        if let Some(wait) = retry_after {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut response = ApiError::new(
                429,
                971,
                "Please wait and consider throttling your request speed",
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
    }
    if faults.fail_rate > 0.0 && rand::random::<f64>() < faults.fail_rate {
        return ApiError::new(
            500,
            10013,
            "An unknown error has occurred (injected by the edge's --fail-rate)",
        )
        .into_response();
    }
    next.run(request).await
}

async fn health(State(app): State<Shared>) -> Response {
    let (wanted, served) = app.runtime.generations();
    envelope_response(
        StatusCode::OK,
        json!({"ok": true, "service": "cfdo-edge", "pid": std::process::id(),
               "wanted_generation": wanted, "served_generation": served}),
    )
}

/// A request carrying this header is answered once its change is saved and
/// trial-started, without waiting for workerd to serve it: a burst of such
/// changes then shares few workerd restarts. `/cfdo/health` tells when
/// everything is served (`served_generation` reaches `wanted_generation`).
pub const DEFER_SERVING_HEADER: &str = "cfdo-edge-defer-serving";

fn defers_serving(headers: &HeaderMap) -> bool {
    headers.contains_key(DEFER_SERVING_HEADER)
}

async fn no_route(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::new(
        404,
        7003,
        format!(
            "No route for that URI: {method} {} (not implemented by the local edge)",
            uri.path()
        ),
    )
    .into_response()
}

// ------------------------------------------------------------------ helpers

fn check_account(state: &AccountState, account: &str) -> Result<(), ApiError> {
    if account != state.account_id {
        return Err(ApiError::new(
            403,
            codes::AUTH,
            format!(
                "Authentication error: this edge's account is {}, not {account}",
                state.account_id
            ),
        ));
    }
    Ok(())
}

/// The script `name` of the account, or Cloudflare's "script not found" (10007).
fn script_of<'a>(state: &'a AccountState, name: &str) -> Result<&'a Script, ApiError> {
    state
        .scripts
        .get(name)
        .ok_or_else(|| ApiError::script_not_found(name))
}

fn script_of_mut<'a>(state: &'a mut AccountState, name: &str) -> Result<&'a mut Script, ApiError> {
    state
        .scripts
        .get_mut(name)
        .ok_or_else(|| ApiError::script_not_found(name))
}

fn handlers(version: &super::state::Version) -> Vec<String> {
    if version.exported.iter().any(|e| e == "default") {
        vec!["fetch".to_string()]
    } else {
        Vec::new()
    }
}

fn script_info(name: &str, script: &super::state::Script) -> Value {
    let current = script.current();
    json!({
        "id": name,
        "etag": script.etag,
        "tags": script.tags,
        "migration_tag": script.migration_tag,
        "compatibility_date": current.and_then(|v| v.compatibility_date.clone()),
        "compatibility_flags": current.map(|v| v.compatibility_flags.clone()).unwrap_or_default(),
        "created_on": script.created_on,
        "modified_on": script.modified_on,
        "handlers": current.map(handlers).unwrap_or_default(),
        "has_modules": true,
        "usage_model": "standard",
        "last_deployed_from": "api",
    })
}

/// Bindings as the settings endpoint shows them: secrets without their text,
/// namespace bindings with the namespace id.
fn public_bindings(state: &AccountState, holder: &str, bindings: &[Binding]) -> Vec<Binding> {
    bindings
        .iter()
        .map(|b| match b {
            Binding::SecretText { name, .. } => Binding::SecretText {
                name: name.clone(),
                text: None,
            },
            Binding::DurableObjectNamespace {
                name,
                class_name,
                script_name,
                ..
            } => Binding::DurableObjectNamespace {
                name: name.clone(),
                class_name: class_name.clone(),
                script_name: script_name.clone(),
                namespace_id: state
                    .namespace_of(script_name.as_deref().unwrap_or(holder), class_name)
                    .map(|n| n.id.clone()),
            },
            other => other.clone(),
        })
        .collect()
}

/// A port free on 127.0.0.1 and not assigned to any script of `state`: a
/// script accepted but not yet served holds no socket, so the operating
/// system alone could hand its port out again.
fn free_port(state: &AccountState) -> u16 {
    let taken: std::collections::BTreeSet<u16> = state.scripts.values().map(|s| s.port).collect();
    super::free_worker_port(&taken)
}

/// What an upload's multipart body holds: the metadata and each module
/// (name, content type, bytes).
#[derive(Debug)]
pub struct ParsedUpload {
    pub metadata: UploadMetadata,
    pub modules: Vec<(String, String, Vec<u8>)>,
}

/// The largest Worker the edge accepts: its modules' bytes, uncompressed
/// (Cloudflare's Worker size limit, 64 MiB).
pub const MAX_SCRIPT_BYTES: usize = 64 << 20;
/// The largest `metadata` part.
pub const MAX_METADATA_BYTES: usize = 1 << 20;
/// The most parts an upload may have.
pub const MAX_UPLOAD_PARTS: usize = 1000;
/// Cloudflare's code for a Worker over the size limit.
pub const SCRIPT_TOO_LARGE: i64 = 10027;

fn too_large() -> ApiError {
    ApiError::bad_request(
        SCRIPT_TOO_LARGE,
        format!(
            "Your Worker exceeded the size limit of {} MiB. Refer to the Workers documentation (https://developers.cloudflare.com/workers/observability/errors/#errors-on-worker-upload) for more details.",
            MAX_SCRIPT_BYTES >> 20
        ),
    )
}

/// Reads a script upload (`multipart/form-data`) from a body stream. Reading
/// stops as soon as the body is malformed or holds more than
/// [`MAX_SCRIPT_BYTES`] of modules, so memory stays bounded by the limits.
pub async fn read_upload<S, E>(
    content_type: Option<&str>,
    body: S,
) -> Result<ParsedUpload, ApiError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let boundary = content_type
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                BAD_REQUEST,
                "a script upload must be multipart/form-data with a boundary",
            )
        })?;
    let limits = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream((MAX_SCRIPT_BYTES + MAX_METADATA_BYTES + (1 << 20)) as u64),
    );
    let mut multipart = multer::Multipart::with_constraints(body, boundary, limits);
    let malformed = |e: multer::Error| match e {
        multer::Error::StreamSizeExceeded { .. } => too_large(),
        e => ApiError::bad_request(BAD_REQUEST, format!("malformed multipart upload: {e}")),
    };
    let mut metadata = None;
    let mut modules = Vec::new();
    let mut total = 0usize;
    loop {
        let Some(mut field) = multipart.next_field().await.map_err(malformed)? else {
            break;
        };
        if modules.len() + usize::from(metadata.is_some()) >= MAX_UPLOAD_PARTS {
            return Err(ApiError::bad_request(
                BAD_REQUEST,
                format!("the upload has more than {MAX_UPLOAD_PARTS} parts"),
            ));
        }
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(|m| m.to_string());
        let is_metadata = name == "metadata";
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            bytes.extend_from_slice(&chunk);
            if is_metadata && bytes.len() > MAX_METADATA_BYTES {
                return Err(ApiError::bad_request(
                    BAD_REQUEST,
                    format!(
                        "the metadata part is larger than {} MiB",
                        MAX_METADATA_BYTES >> 20
                    ),
                ));
            }
            if !is_metadata && total + bytes.len() > MAX_SCRIPT_BYTES {
                return Err(too_large());
            }
        }
        if is_metadata {
            let parsed: UploadMetadata = serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::bad_request(
                    BAD_REQUEST,
                    format!("the metadata part is not valid upload metadata: {e}"),
                )
            })?;
            metadata = Some(parsed);
            continue;
        }
        total += bytes.len();
        // The part's name is the module's name (clients send the same as filename).
        let module_name = if name.is_empty() {
            file_name.unwrap_or_default()
        } else {
            name
        };
        let content_type = content_type.unwrap_or_else(|| {
            if module_name.ends_with(".wasm") {
                "application/wasm".to_string()
            } else if module_name.ends_with(".js") || module_name.ends_with(".mjs") {
                "application/javascript+module".to_string()
            } else {
                "application/octet-stream".to_string()
            }
        });
        modules.push((module_name, content_type, bytes));
    }
    let Some(metadata) = metadata else {
        return Err(ApiError::bad_request(
            BAD_REQUEST,
            "the upload has no 'metadata' part",
        ));
    };
    Ok(ParsedUpload { metadata, modules })
}

/// Reads the upload of a request to the API.
async fn parse_upload(request: Request) -> Result<ParsedUpload, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    read_upload(
        content_type.as_deref(),
        request.into_body().into_data_stream(),
    )
    .await
}

fn store_modules(
    app: &App,
    modules: &[(String, String, Vec<u8>)],
) -> Result<(Vec<StoredModule>, BTreeMap<String, String>), ApiError> {
    let mut stored = Vec::new();
    let mut texts = BTreeMap::new();
    for (name, content_type, bytes) in modules {
        let hash = app
            .dir
            .store_module(bytes)
            .map_err(|e| ApiError::new(500, 10013, format!("cannot store module '{name}': {e}")))?;
        if content_type.contains("javascript") {
            texts.insert(name.clone(), String::from_utf8_lossy(bytes).to_string());
        }
        stored.push(StoredModule {
            name: name.clone(),
            content_type: content_type.clone(),
            hash,
        });
    }
    Ok((stored, texts))
}

/// Test-starts `script` of `candidate` (with what it binds) in workerd; a
/// failure is Cloudflare's 10021.
async fn trial(app: &Shared, candidate: &AccountState, script: &str) -> Result<(), ApiError> {
    app.trials
        .run(startup_closure(candidate, script))
        .await
        .map_err(|message| {
            ApiError::bad_request(
                codes::SCRIPT_STARTUP,
                format!("Script startup failed for '{script}': {message}"),
            )
        })
}

/// The sequence number of a change; call it holding the account.
fn next_change(app: &App) -> u64 {
    app.change_seq
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        + 1
}

/// Writes change `seq` of the account to state.json, unless a later change
/// is written already: saves may finish out of order, the file never goes back.
fn save_ordered(app: &App, seq: u64, state: &AccountState) -> Result<(), ApiError> {
    let mut saved = app.saved_seq.lock().unwrap_or_else(|e| e.into_inner());
    if seq <= *saved {
        return Ok(());
    }
    app.dir
        .save(state)
        .map_err(|e| ApiError::new(500, 10013, format!("cannot save the edge state: {e}")))?;
    *saved = seq;
    Ok(())
}

/// Makes `next` the account, saves it, has workerd serve it, and waits until
/// it does (unless `defer`; a change that deletes namespace storage always
/// waits). The account is let go before the save, so that concurrent
/// changes do not queue behind the disk.
async fn commit(
    app: &Shared,
    mut guard: tokio::sync::MutexGuard<'_, AccountState>,
    next: AccountState,
    deleted_namespaces: Vec<String>,
    defer: bool,
    change: PendingChange,
) -> Result<(), ApiError> {
    let seq = next_change(app);
    let generation = app.runtime.request(next.clone());
    drop(change);
    *guard = next;
    let snapshot = guard.clone();
    drop(guard);
    let saver = app.clone();
    tokio::task::spawn_blocking(move || save_ordered(&saver, seq, &snapshot))
        .await
        .map_err(|e| ApiError::new(500, 10013, format!("cannot save the edge state: {e}")))??;
    if !defer || !deleted_namespaces.is_empty() {
        app.runtime.wait_served(generation).await;
    }
    for id in deleted_namespaces {
        let _ = std::fs::remove_dir_all(app.dir.namespace_storage(&id));
    }
    Ok(())
}

// ----------------------------------------------------------------- handlers

async fn verify_token() -> Response {
    ok(json!({"id": "cfdo-edge-token", "status": "active"}))
}

async fn list_scripts(State(app): State<Shared>, Path(account): Path<String>) -> ApiResult {
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let list: Vec<Value> = state
        .scripts
        .iter()
        .map(|(name, script)| script_info(name, script))
        .collect();
    Ok(ok(Value::Array(list)))
}

async fn get_script(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
) -> ApiResult {
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let entry = script_of(&state, &script)?;
    let version = entry
        .current()
        .ok_or_else(|| ApiError::script_not_found(&script))?;
    let main = version
        .modules
        .iter()
        .find(|m| m.name == version.main_module)
        .ok_or_else(|| ApiError::script_not_found(&script))?;
    let content = std::fs::read(app.dir.module_path(&main.hash))
        .map_err(|e| ApiError::new(500, 10013, format!("cannot read module: {e}")))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, main.content_type.clone())],
        Body::from(content),
    )
        .into_response())
}

async fn put_script(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
    headers: HeaderMap,
    request: Request,
) -> ApiResult {
    let defer = defers_serving(&headers);
    upload(app, account, script, request, UploadKind::Script, defer).await
}

async fn post_version(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
    headers: HeaderMap,
    request: Request,
) -> ApiResult {
    let defer = defers_serving(&headers);
    upload(app, account, script, request, UploadKind::Version, defer).await
}

async fn upload(
    app: Shared,
    account: String,
    script: String,
    request: Request,
    kind: UploadKind,
    defer: bool,
) -> ApiResult {
    let parsed = parse_upload(request).await?;
    let change = app.runtime.begin_change();
    // The trial start runs without holding the account, so that concurrent
    // uploads share workerd runs. The account may move meanwhile: the upload
    // is accepted again and committed only when what it needs to start is
    // exactly what was tried; after a few such moves it is tried holding the
    // account.
    let mut passed: Option<String> = None;
    let mut attempts = 0;
    // Modules are stored by content: that needs no hold on the account.
    let (stored, texts) = store_modules(&app, &parsed.modules)?;
    let (state, accepted) = loop {
        let state = app.state.lock().await;
        check_account(&state, &account)?;
        let stored = stored.clone();
        let accepted = rules::accept_upload(
            &state,
            &script,
            &parsed.metadata,
            stored,
            &texts,
            kind,
            &app.newest_date,
            || free_port(&state),
        )?;
        let mut candidate = accepted.state.clone();
        if kind == UploadKind::Version {
            // A version is checked alone, as if deployed.
            if let Some(entry) = candidate.scripts.get_mut(&script) {
                entry.deployed = accepted.version_id.clone();
            }
        }
        let needs = generate_config(
            &startup_closure(&candidate, &script),
            Storage::Memory,
            false,
        );
        if passed.as_deref() == Some(needs.as_str()) {
            break (state, accepted);
        }
        attempts += 1;
        // New namespaces get new ids on every acceptance: such an upload
        // (a migration) is tried once, holding the account.
        let creates_namespaces = accepted
            .state
            .namespaces
            .keys()
            .any(|id| !state.namespaces.contains_key(id));
        if attempts > 3 || creates_namespaces {
            trial(&app, &candidate, &script).await?;
            break (state, accepted);
        }
        drop(state);
        trial(&app, &candidate, &script).await?;
        passed = Some(needs);
    };
    let next = accepted.state;
    let entry = script_of(&next, &script)?;
    let result = match kind {
        UploadKind::Script => {
            let mut info = script_info(&script, entry);
            info["available_on_subdomain"] = json!(entry.subdomain_enabled);
            info["deployment_id"] = json!(entry.deployments.last().map(|d| d.id.clone()));
            info["startup_time_ms"] = json!(0);
            info
        }
        UploadKind::Version => entry
            .versions
            .iter()
            .find(|v| v.id == accepted.version_id)
            .map(|v| version_json(&next, &script, v))
            .unwrap_or(Value::Null),
    };
    commit(
        &app,
        state,
        next,
        accepted.deleted_namespaces,
        defer,
        change,
    )
    .await?;
    Ok(ok(result))
}

fn version_json(state: &AccountState, script: &str, version: &super::state::Version) -> Value {
    json!({
        "id": version.id,
        "number": version.number,
        "metadata": {
            "created_on": version.created_on,
            "modified_on": version.created_on,
            "source": version.source,
            "author_email": "edge@localhost",
        },
        "annotations": version.annotations,
        "resources": {
            "script": {"etag": version.id, "handlers": handlers(version)},
            "script_runtime": {
                "compatibility_date": version.compatibility_date,
                "compatibility_flags": version.compatibility_flags,
                "usage_model": "standard",
            },
            "bindings": public_bindings(state, script, &version.bindings),
        },
        "startup_time_ms": 0,
    })
}

#[derive(Deserialize)]
struct DeleteQuery {
    #[serde(default)]
    force: Option<String>,
}

async fn delete_script(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<DeleteQuery>,
) -> ApiResult {
    let change = app.runtime.begin_change();
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let force = matches!(query.force.as_deref(), Some("true") | Some("1") | Some(""));
    let (next, deleted) = rules::accept_delete(&state, &script, force)?;
    commit(&app, state, next, deleted, defers_serving(&headers), change).await?;
    Ok(ok(json!({"id": script})))
}

async fn get_settings(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
) -> ApiResult {
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    settings_json(&state, &script).map(ok)
}

fn settings_json(state: &AccountState, script: &str) -> Result<Value, ApiError> {
    let entry = script_of(state, script)?;
    let version = entry.current();
    Ok(json!({
        "bindings": version.map(|v| public_bindings(state, script, &v.bindings)).unwrap_or_default(),
        "compatibility_date": version.and_then(|v| v.compatibility_date.clone()),
        "compatibility_flags": version.map(|v| v.compatibility_flags.clone()).unwrap_or_default(),
        "tags": entry.tags,
        "logpush": false,
        "placement": {},
        "tail_consumers": [],
        "usage_model": "standard",
        "observability": {"enabled": false},
        "migration_tag": entry.migration_tag,
    }))
}

async fn patch_settings(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
    request: Request,
) -> ApiResult {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = axum::body::to_bytes(request.into_body(), 16 * 1024 * 1024)
        .await
        .map_err(|e| ApiError::bad_request(BAD_REQUEST, format!("cannot read the body: {e}")))?;
    let settings: Value = if content_type.starts_with("multipart/form-data") {
        settings_from_multipart(&content_type, &body)?
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(BAD_REQUEST, format!("the settings are not valid JSON: {e}"))
        })?
    };
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let mut next = state.clone();
    let entry = script_of_mut(&mut next, &script)?;
    if let Some(tags) = settings.get("tags")
        && !tags.is_null()
    {
        entry.tags = serde_json::from_value(tags.clone()).map_err(|e| {
            ApiError::bad_request(BAD_REQUEST, format!("tags must be a list of strings: {e}"))
        })?;
    }
    if settings.get("bindings").is_some() {
        return Err(ApiError::bad_request(
            BAD_REQUEST,
            "changing bindings through settings is not supported by the local edge: upload the script",
        ));
    }
    let result = settings_json(&next, &script)?;
    save_ordered(&app, next_change(&app), &next)?;
    let mut guard = state;
    *guard = next;
    Ok(ok(result))
}

/// The `settings` part of a multipart settings PATCH, read with the same
/// multipart parser as uploads. The body is already in memory, so the parse
/// runs to its end at once.
pub fn settings_from_multipart(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| ApiError::bad_request(BAD_REQUEST, "multipart body without a boundary"))?;
    let malformed = |e: multer::Error| {
        ApiError::bad_request(BAD_REQUEST, format!("malformed multipart body: {e}"))
    };
    let body = bytes::Bytes::copy_from_slice(body);
    futures::executor::block_on(async move {
        let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
        let mut multipart = multer::Multipart::new(stream, boundary);
        while let Some(field) = multipart.next_field().await.map_err(malformed)? {
            if field.name() == Some("settings") {
                let content = field.bytes().await.map_err(malformed)?;
                return serde_json::from_slice(&content).map_err(|e| {
                    ApiError::bad_request(
                        BAD_REQUEST,
                        format!("the settings part is not valid JSON: {e}"),
                    )
                });
            }
        }
        Err(ApiError::bad_request(
            BAD_REQUEST,
            "the multipart body has no 'settings' part",
        ))
    })
}

async fn get_references(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
) -> ApiResult {
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    if !state.scripts.contains_key(&script) {
        return Err(ApiError::script_not_found(&script));
    }
    let refs = rules::references(&state, &script);
    Ok(ok(json!({
        "services": refs.services,
        "durable_objects": refs.durable_objects,
        "dispatch_namespace_outbounds": [],
        "tails": [],
    })))
}

async fn get_script_subdomain(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
) -> ApiResult {
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let entry = script_of(&state, &script)?;
    Ok(ok(
        json!({"enabled": entry.subdomain_enabled, "previews_enabled": entry.previews_enabled}),
    ))
}

async fn post_script_subdomain(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    let wanted: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(BAD_REQUEST, format!("invalid JSON body: {e}")))?;
    let mut state = app.state.lock().await;
    check_account(&state, &account)?;
    let mut next = state.clone();
    let entry = script_of_mut(&mut next, &script)?;
    if let Some(enabled) = wanted.get("enabled").and_then(Value::as_bool) {
        entry.subdomain_enabled = enabled;
        entry.previews_enabled = enabled;
    }
    if let Some(previews) = wanted.get("previews_enabled").and_then(Value::as_bool) {
        entry.previews_enabled = previews;
    }
    let result =
        json!({"enabled": entry.subdomain_enabled, "previews_enabled": entry.previews_enabled});
    save_ordered(&app, next_change(&app), &next)?;
    *state = next;
    Ok(ok(result))
}

async fn get_account_subdomain(
    State(app): State<Shared>,
    Path(account): Path<String>,
) -> ApiResult {
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    Ok(ok(json!({"subdomain": state.subdomain})))
}

async fn get_service(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
) -> ApiResult {
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let Some(entry) = state.scripts.get(&script) else {
        return Err(ApiError::new(
            404,
            codes::SERVICE_NOT_FOUND,
            format!("workers.api.error.service_not_found: service '{script}' does not exist"),
        ));
    };
    let info = script_info(&script, entry);
    Ok(ok(json!({
        "id": script,
        "created_on": entry.created_on,
        "modified_on": entry.modified_on,
        "default_environment": {
            "environment": "production",
            "created_on": entry.created_on,
            "modified_on": entry.modified_on,
            "script": info,
        },
        "environments": [{"environment": "production", "created_on": entry.created_on, "modified_on": entry.modified_on}],
    })))
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<u32>,
    per_page: Option<u32>,
}

async fn list_namespaces(
    State(app): State<Shared>,
    Path(account): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult {
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let page = query.page.unwrap_or(1).max(1);
    let per_page = query.per_page.unwrap_or(20).clamp(1, 1000);
    let all: Vec<Value> = state
        .namespaces
        .values()
        .map(|n| {
            json!({"id": n.id, "name": format!("{}_{}", n.script, n.class),
                   "class": n.class, "script": n.script, "use_sqlite": n.use_sqlite})
        })
        .collect();
    let start = ((page - 1) as usize).saturating_mul(per_page as usize);
    let items: Vec<Value> = all
        .iter()
        .skip(start)
        .take(per_page as usize)
        .cloned()
        .collect();
    Ok(ok_paged(
        Value::Array(items.clone()),
        page,
        per_page,
        items.len(),
        all.len(),
    ))
}

async fn list_versions(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
) -> ApiResult {
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let entry = script_of(&state, &script)?;
    let items: Vec<Value> = entry
        .versions
        .iter()
        .rev()
        .map(|v| version_json(&state, &script, v))
        .collect();
    Ok(ok(json!({"items": items})))
}

async fn get_version(
    State(app): State<Shared>,
    Path((account, script, version)): Path<(String, String, String)>,
) -> ApiResult {
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let entry = script_of(&state, &script)?;
    let found = entry
        .versions
        .iter()
        .find(|v| v.id == version)
        .ok_or_else(|| {
            ApiError::new(
                404,
                10220,
                format!("version '{version}' of script '{script}' not found"),
            )
        })?;
    Ok(ok(version_json(&state, &script, found)))
}

fn deployment_json(deployment: &super::state::Deployment) -> Value {
    json!({
        "id": deployment.id,
        "created_on": deployment.created_on,
        "source": "api",
        "strategy": "percentage",
        "author_email": "edge@localhost",
        "annotations": {"workers/message": deployment.message},
        "versions": [{"version_id": deployment.version_id, "percentage": 100.0}],
    })
}

async fn list_deployments(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
) -> ApiResult {
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let entry = script_of(&state, &script)?;
    let items: Vec<Value> = entry
        .deployments
        .iter()
        .rev()
        .map(deployment_json)
        .collect();
    Ok(ok(json!({"deployments": items})))
}

async fn post_deployment(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    let wanted: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(BAD_REQUEST, format!("invalid JSON body: {e}")))?;
    let versions = wanted
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let chosen = versions
        .iter()
        .max_by(|a, b| {
            let pa = a.get("percentage").and_then(Value::as_f64).unwrap_or(0.0);
            let pb = b.get("percentage").and_then(Value::as_f64).unwrap_or(0.0);
            pa.total_cmp(&pb)
        })
        .and_then(|v| v.get("version_id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request(BAD_REQUEST, "the deployment names no version"))?;
    let change = app.runtime.begin_change();
    let message = wanted
        .pointer("/annotations/workers~1message")
        .and_then(Value::as_str)
        .map(str::to_string);
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let mut next = state.clone();
    let entry = script_of_mut(&mut next, &script)?;
    if !entry.versions.iter().any(|v| v.id == chosen) {
        return Err(ApiError::new(
            404,
            10220,
            format!("version '{chosen}' of script '{script}' not found"),
        ));
    }
    rules::deploy_version(entry, &chosen, message);
    let deployment = entry
        .deployments
        .last()
        .map(deployment_json)
        .unwrap_or(Value::Null);
    // The version must still fit the account: its bindings and exports.
    if let Some(version) = next.scripts.get(&script).and_then(|s| s.current()) {
        for ns in next.namespaces.values() {
            if ns.script == script && !version.exported.contains(&ns.class) {
                return Err(ApiError::bad_request(
                    codes::CLASS_NOT_EXPORTED_LIVE,
                    format!(
                        "version {chosen} does not export class '{}' which is depended on by existing Durable Objects",
                        ns.class
                    ),
                ));
            }
        }
    }
    trial(&app, &next, &script).await?;
    commit(&app, state, next, Vec::new(), false, change).await?;
    Ok(ok(deployment))
}

async fn list_secrets(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
) -> ApiResult {
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let entry = script_of(&state, &script)?;
    let secrets: Vec<Value> = entry
        .current()
        .map(|v| v.bindings.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|b| matches!(b, Binding::SecretText { .. }))
        .map(|b| json!({"name": b.name(), "type": "secret_text"}))
        .collect();
    Ok(ok(Value::Array(secrets)))
}

#[derive(Deserialize)]
struct SecretBody {
    name: String,
    text: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

async fn put_secret(
    State(app): State<Shared>,
    Path((account, script)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    let secret: SecretBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            BAD_REQUEST,
            format!("expected {{\"name\", \"text\", \"type\"}}: {e}"),
        )
    })?;
    if secret.kind.as_deref().is_some_and(|k| k != "secret_text") {
        return Err(ApiError::bad_request(
            BAD_REQUEST,
            "only secret_text secrets are supported by the local edge",
        ));
    }
    let change = app.runtime.begin_change();
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let name = secret.name.clone();
    let next = rules::redeploy_with_bindings(&state, &script, "secret put", |bindings| {
        if bindings
            .iter()
            .any(|b| b.name() == name && !matches!(b, Binding::SecretText { .. }))
        {
            return Err(ApiError::bad_request(
                BAD_REQUEST,
                format!("binding '{name}' exists and is not a secret"),
            ));
        }
        bindings.retain(|b| b.name() != name);
        bindings.push(Binding::SecretText {
            name: name.clone(),
            text: Some(crate::cloudflare::types::Sensitive(secret.text)),
        });
        Ok(())
    })?;
    trial(&app, &next, &script).await?;
    commit(&app, state, next, Vec::new(), false, change).await?;
    Ok(ok(json!({"name": secret.name, "type": "secret_text"})))
}

async fn delete_secret(
    State(app): State<Shared>,
    Path((account, script, name)): Path<(String, String, String)>,
) -> ApiResult {
    let change = app.runtime.begin_change();
    let state = app.state.lock().await;
    check_account(&state, &account)?;
    let next = rules::redeploy_with_bindings(&state, &script, "secret deleted", |bindings| {
        let before = bindings.len();
        bindings.retain(|b| !(b.name() == name && matches!(b, Binding::SecretText { .. })));
        if bindings.len() == before {
            return Err(ApiError::new(
                404,
                10056,
                format!("secret '{name}' of script '{script}' not found"),
            ));
        }
        Ok(())
    })?;
    trial(&app, &next, &script).await?;
    commit(&app, state, next, Vec::new(), false, change).await?;
    Ok(ok(Value::Null))
}
