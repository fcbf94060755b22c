//! The one Cloudflare API client: authentication, the response envelope,
//! typed errors, retries with backoff and `Retry-After`, and the shared
//! client-side rate budget. Every call cfdo makes to `/client/v4` goes here.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use miette::miette;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use super::budget::RateBudget;
use super::budget::RateLimiter;
pub use super::error::{ApiError, ApiErrorKind};
use super::retry::{Backoff, parse_retry_after};
pub use super::types::{
    ApiMessage, Binding, Module, Namespace, References, ScriptInfo, ScriptSettings,
    ScriptSubdomain, UploadMetadata,
};
use super::types::{ResultInfo, codes};

/// The public Cloudflare API.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

/// The largest answer read; anything bigger is refused rather than held in memory.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Where verbose request lines go instead of stderr (tests capture them).
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// What the account held for a script just before an upload, as listed then.
/// With it, an upload whose answer was lost (a 5xx or a broken connection
/// after the API acted) is recognised in the account and not sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prior {
    Absent,
    Listed { etag: String, modified_on: String },
}

/// Asked before a retry: did the failed attempt take effect after all? The
/// answer's `result` if so.
type Landed<'a> =
    &'a (dyn Fn() -> futures::future::BoxFuture<'a, Option<Value>> + Send + Sync + 'a);

/// How to reach the API and how patiently to talk to it.
#[derive(Clone)]
pub struct ClientConfig {
    /// Ends with `/client/v4`.
    pub base_url: String,
    pub token: String,
    pub account_id: String,
    /// Log each request (method, path, status, time) to stderr; the
    /// `Authorization` header is never logged.
    pub verbose: bool,
    /// Requests allowed per window, shared by every clone of the client.
    pub rate_limit: RateBudget,
    /// The longest `Retry-After` cfdo agrees to wait; above it the call
    /// stops with [`ApiErrorKind::RetryAfterTooLong`].
    pub max_retry_after: Duration,
    /// How many times a request is sent at most (first try included).
    pub max_attempts: u32,
    /// Backoff between retries when the API gives no `Retry-After`.
    pub backoff: Backoff,
    /// Timeout of one attempt, upload included.
    pub request_timeout: Duration,
    /// Receives the verbose lines instead of stderr when set.
    pub log_sink: Option<LogSink>,
    /// Extra headers sent with every request (extensions of the local edge).
    pub headers: Vec<(String, String)>,
}

impl ClientConfig {
    /// A configuration with the default limits.
    pub fn new(
        base_url: impl Into<String>,
        token: impl Into<String>,
        account_id: impl Into<String>,
    ) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            token: token.into(),
            account_id: account_id.into(),
            verbose: false,
            rate_limit: RateBudget::default(),
            max_retry_after: Duration::from_secs(120),
            max_attempts: 5,
            backoff: Backoff::default(),
            request_timeout: Duration::from_secs(120),
            log_sink: None,
            headers: Vec::new(),
        }
    }

    /// Reads `CLOUDFLARE_API_TOKEN`, `CLOUDFLARE_ACCOUNT_ID` and
    /// `CLOUDFLARE_API_BASE_URL` (default `https://api.cloudflare.com/client/v4`)
    /// through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> miette::Result<Self> {
        let token = required(
            &lookup,
            "CLOUDFLARE_API_TOKEN",
            "an API token with the \"Workers Scripts: Edit\" permission (My Profile → API Tokens in the Cloudflare dashboard)",
        )?;
        let account_id = required(
            &lookup,
            "CLOUDFLARE_ACCOUNT_ID",
            "the account id shown on the Workers overview page of the Cloudflare dashboard",
        )?;
        let base_url = lookup("CLOUDFLARE_API_BASE_URL")
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        Ok(Self::new(base_url, token, account_id))
    }
}

fn required(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    what: &str,
) -> miette::Result<String> {
    match lookup(name).map(|v| v.trim().to_string()) {
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) => Err(miette!(
            help = format!("set {name} to {what}"),
            "{name} is set but empty"
        )),
        None => Err(miette!(
            help = format!("set {name} to {what}"),
            "{name} is not set; cfdo needs it to talk to the Cloudflare API"
        )),
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("token", &"(redacted)")
            .field("account_id", &self.account_id)
            .field("verbose", &self.verbose)
            .field("rate_limit", &self.rate_limit)
            .field("max_retry_after", &self.max_retry_after)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("request_timeout", &self.request_timeout)
            .field("log_sink", &self.log_sink.as_ref().map(|_| "(set)"))
            .field("headers", &self.headers)
            .finish()
    }
}

/// What the client did so far, summed over every clone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Requests sent again after a 429, a 5xx or a connection error.
    pub retries: u64,
    /// Time spent waiting for the client-side rate budget.
    pub budget_wait: Duration,
    /// Time spent waiting as told by `Retry-After`.
    pub retry_after_wait: Duration,
    /// Time spent in backoff between retries without `Retry-After`.
    pub backoff_wait: Duration,
}

/// The Cloudflare API client. Cheap to clone; clones share the connection
/// pool, the rate budget and the statistics.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    base_path: String,
    token: String,
    account_id: String,
    verbose: bool,
    log_sink: Option<LogSink>,
    max_retry_after: Duration,
    max_attempts: u32,
    backoff: Backoff,
    limiter: RateLimiter,
    stats: Mutex<ClientStats>,
    /// Set when the API answered with `Retry-After`: no clone sends anything
    /// before this instant, since the limit is per token, not per task.
    paused_until: Mutex<Option<tokio::time::Instant>>,
    /// Secret values this client has sent: scrubbed, like the token, from
    /// any text that came back (an answer may echo what it was sent).
    secrets: Mutex<Vec<String>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("account_id", &self.inner.account_id)
            .field("token", &"(redacted)")
            .finish()
    }
}

/// The body of one request, rebuilt for every attempt.
enum Payload<'a> {
    Empty,
    Json(&'a Value),
    Upload {
        metadata: String,
        modules: &'a [Module],
    },
}

/// A successful answer: the HTTP status and the envelope, absent for an
/// empty body (204).
struct Answer {
    status: u16,
    envelope: Option<RawEnvelope>,
    attempts: u32,
}

/// The envelope as received, lenient where Cloudflare is loose (`null` lists).
#[derive(Deserialize)]
struct RawEnvelope {
    success: bool,
    #[serde(default)]
    errors: Option<Vec<RawMessage>>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// What a failed attempt means for the next one.
enum Failure {
    /// Try again (after the given `Retry-After`, or after backoff).
    Retry(ApiError, Option<Duration>),
    /// Give up now.
    Fatal(ApiError),
}

#[derive(Deserialize)]
struct TokenStatus {
    #[serde(default)]
    status: String,
}

#[derive(Deserialize)]
struct AccountSubdomain {
    subdomain: String,
}

impl Client {
    pub fn new(config: ClientConfig) -> miette::Result<Client> {
        let base = Url::parse(config.base_url.trim()).map_err(|e| {
            miette!(
                help = "set CLOUDFLARE_API_BASE_URL to a URL such as https://api.cloudflare.com/client/v4",
                "the API base URL {:?} is not a valid URL: {e}",
                config.base_url
            )
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(miette!(
                help = "set CLOUDFLARE_API_BASE_URL to a URL such as https://api.cloudflare.com/client/v4",
                "the API base URL {:?} is not an http(s) URL",
                config.base_url
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(miette!(
                help = "pass the token in CLOUDFLARE_API_TOKEN, not in the URL",
                "the API base URL must not carry credentials"
            ));
        }
        if config.token.trim().is_empty() {
            return Err(miette!(
                help = "set CLOUDFLARE_API_TOKEN to an API token",
                "the API token is empty"
            ));
        }
        if HeaderValue::from_str(&format!("Bearer {}", config.token.trim())).is_err() {
            return Err(miette!(
                help =
                    "copy the token again from the Cloudflare dashboard into CLOUDFLARE_API_TOKEN",
                "CLOUDFLARE_API_TOKEN holds characters that cannot go in an HTTP header"
            ));
        }
        if config.account_id.trim().is_empty() {
            return Err(miette!(
                help = "set CLOUDFLARE_ACCOUNT_ID to the account id",
                "the account id is empty"
            ));
        }
        if config.rate_limit.requests == 0 || config.rate_limit.per.is_zero() {
            return Err(miette!(
                "the rate budget must allow at least one request in a non-empty window (got {} per {:?})",
                config.rate_limit.requests,
                config.rate_limit.per
            ));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &config.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| miette!("cannot send header {name:?}: {e}"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| miette!("cannot send header {name}: {e}"))?;
            headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("cfdo/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(15).min(config.request_timeout))
            .timeout(config.request_timeout)
            // The API never redirects; following one could carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| miette!("cannot start the HTTP client: {e}"))?;
        let base_path = base.path().trim_end_matches('/').to_string();
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                base_path,
                token: config.token.trim().to_string(),
                account_id: config.account_id.trim().to_string(),
                verbose: config.verbose,
                log_sink: config.log_sink,
                max_retry_after: config.max_retry_after,
                max_attempts: config.max_attempts.max(1),
                backoff: config.backoff,
                limiter: RateLimiter::new(config.rate_limit),
                stats: Mutex::new(ClientStats::default()),
                paused_until: Mutex::new(None),
                secrets: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The API base URL, ending with `/client/v4`.
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    pub fn account_id(&self) -> &str {
        &self.inner.account_id
    }

    /// Counters summed over every clone of this client.
    pub fn stats(&self) -> ClientStats {
        *self.lock_stats()
    }

    /// Checks the token once, before anything changes (`GET /user/tokens/verify`,
    /// then `/accounts/{a}/tokens/verify` for account-owned tokens).
    pub async fn verify_token(&self) -> Result<(), ApiError> {
        let user = self
            .get_result::<TokenStatus>(&["user", "tokens", "verify"], &[])
            .await;
        let status = match user {
            Ok(status) => status,
            Err(e) if matches!(e.kind, ApiErrorKind::Auth | ApiErrorKind::NotFound) => {
                let account = self.account_id().to_string();
                match self
                    .get_result::<TokenStatus>(&["accounts", &account, "tokens", "verify"], &[])
                    .await
                {
                    Ok(status) => status,
                    // Neither verify endpoint exists there: the base URL is
                    // not the API's root.
                    Err(again)
                        if e.kind == ApiErrorKind::NotFound
                            && again.kind == ApiErrorKind::NotFound =>
                    {
                        let mut e = e;
                        e.kind = ApiErrorKind::Malformed;
                        return Err(e.with_detail(format!(
                            "{} does not answer the token check: CLOUDFLARE_API_BASE_URL must be the API's root, ending in /client/v4",
                            self.base_url()
                        )));
                    }
                    Err(_) => {
                        let mut e = e;
                        e.kind = ApiErrorKind::Auth;
                        return Err(e);
                    }
                }
            }
            Err(e) => return Err(e),
        };
        if status.status.is_empty() || status.status == "active" {
            Ok(())
        } else {
            Err(ApiError::new("GET /user/tokens/verify", ApiErrorKind::Auth)
                .with_status(200)
                .with_detail(format!("the API token is {}, not active", status.status)))
        }
    }

    /// Every script of the account.
    pub async fn list_scripts(&self) -> Result<Vec<ScriptInfo>, ApiError> {
        let account = self.account_id().to_string();
        self.get_result(&["accounts", &account, "workers", "scripts"], &[])
            .await
    }

    /// A script's bindings, compatibility settings and tags; `None` when the
    /// script does not exist (code 10007, or a 404 naming no other error).
    /// Any other failure is an error, never "absent".
    pub async fn script_settings(&self, script: &str) -> Result<Option<ScriptSettings>, ApiError> {
        let account = self.account_id().to_string();
        match self
            .get_result(
                &[
                    "accounts", &account, "workers", "scripts", script, "settings",
                ],
                &[],
            )
            .await
        {
            Ok(settings) => Ok(Some(settings)),
            Err(e) if is_script_missing(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Uploads a module Worker (`PUT …/scripts/{s}`, multipart): creates or
    /// replaces it.
    ///
    /// Retried like a read: uploading the same form again leaves the account
    /// in the same state. A migration in `metadata` cannot apply twice: once
    /// an attempt has landed, the account's tag no longer equals `old_tag`
    /// and a repeat is refused (10079); the client then checks that the
    /// account holds the `new_tag` this upload sets and counts it as done.
    pub async fn upload_script(
        &self,
        script: &str,
        metadata: &UploadMetadata,
        modules: &[Module],
    ) -> Result<ScriptInfo, ApiError> {
        self.upload(script, metadata, modules, None).await
    }

    /// As [`Client::upload_script`], knowing what the account held just
    /// before: before a retry after a 5xx or a broken connection, the account
    /// is listed, and if the script has moved on from `prior` to exactly this
    /// upload's tags (and migration tag), the lost attempt took effect and
    /// the upload is not sent again.
    pub async fn upload_script_after(
        &self,
        script: &str,
        metadata: &UploadMetadata,
        modules: &[Module],
        prior: &Prior,
    ) -> Result<ScriptInfo, ApiError> {
        self.upload(script, metadata, modules, Some(prior)).await
    }

    async fn upload(
        &self,
        script: &str,
        metadata: &UploadMetadata,
        modules: &[Module],
        prior: Option<&Prior>,
    ) -> Result<ScriptInfo, ApiError> {
        let account = self.account_id().to_string();
        let segments = ["accounts", &account, "workers", "scripts", script];
        let (url, endpoint) = self.url(Method::PUT, &segments, &[]);
        let new_tag = metadata.migrations.as_ref().and_then(|m| m.new_tag.clone());
        let metadata_tags = metadata.tags.clone();
        if let Ok(mut secrets) = self.inner.secrets.lock() {
            for binding in &metadata.bindings {
                if let Binding::SecretText {
                    text: Some(value), ..
                } = binding
                    && !value.0.is_empty()
                    && !secrets.contains(&value.0)
                {
                    secrets.push(value.0.clone());
                }
            }
        }
        let metadata = serde_json::to_string(metadata).map_err(|e| {
            ApiError::new(&endpoint, ApiErrorKind::Api)
                .with_detail(format!("cannot encode the upload metadata: {e}"))
        })?;
        // Refuse a form that cannot be built before spending any budget on it.
        upload_form(&metadata, modules)
            .map_err(|detail| ApiError::new(&endpoint, ApiErrorKind::Api).with_detail(detail))?;
        let mut tags = metadata_tags.clone().unwrap_or_default();
        tags.sort();
        let landed = |prior: &Prior| {
            let prior = prior.clone();
            let tags = tags.clone();
            let new_tag = new_tag.clone();
            move || -> futures::future::BoxFuture<'_, Option<Value>> {
                let prior = prior.clone();
                let tags = tags.clone();
                let new_tag = new_tag.clone();
                Box::pin(async move {
                    if tags.is_empty() {
                        return None;
                    }
                    let listed = self.list_scripts().await.ok()?;
                    let now = listed.into_iter().find(|s| s.id == script)?;
                    let moved = match &prior {
                        Prior::Absent => true,
                        Prior::Listed { etag, modified_on } => {
                            &now.etag != etag || &now.modified_on != modified_on
                        }
                    };
                    let mut now_tags = now.tags.clone();
                    now_tags.sort();
                    let migrated =
                        new_tag.is_none() || now.migration_tag.as_deref() == new_tag.as_deref();
                    (moved && now_tags == tags && migrated)
                        .then(|| serde_json::to_value(&now).ok())
                        .flatten()
                })
            }
        };
        let check = prior.map(landed);
        let outcome = self
            .execute_checked(
                Method::PUT,
                url,
                &endpoint,
                Payload::Upload { metadata, modules },
                check.as_ref().map(|c| c as Landed<'_>),
            )
            .await;
        match outcome {
            Ok(answer) => self.result_of(answer, &endpoint),
            // A retry refused with "migration tag precondition failed": the
            // first attempt may have landed (its answer lost in transit) and
            // moved the tag. If the account now holds exactly the tag this
            // upload sets, that attempt applied the step; it is not applied
            // again and the upload counts as done.
            Err(e) if e.attempts > 1 && e.has_code(codes::MIGRATION_TAG) => {
                let Some(new_tag) = new_tag else {
                    return Err(e);
                };
                match self.list_scripts().await {
                    Ok(scripts) => match scripts.into_iter().find(|s| {
                        s.id == script && s.migration_tag.as_deref() == Some(new_tag.as_str())
                    }) {
                        Some(info) => {
                            self.log(&format!(
                                "{endpoint}: an earlier attempt already applied migration tag {new_tag}"
                            ));
                            Ok(info)
                        }
                        None => Err(e),
                    },
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Changes script settings such as `tags` without an upload
    /// (`PATCH …/script-settings`). Setting the same values twice is harmless.
    pub async fn patch_script_settings(
        &self,
        script: &str,
        settings: &Value,
    ) -> Result<(), ApiError> {
        let account = self.account_id().to_string();
        let (url, endpoint) = self.url(
            Method::PATCH,
            &[
                "accounts",
                &account,
                "workers",
                "scripts",
                script,
                "script-settings",
            ],
            &[],
        );
        self.execute(Method::PATCH, url, &endpoint, Payload::Json(settings))
            .await?;
        Ok(())
    }

    /// Deletes a script. A "not found" answer to a retry counts as done: an
    /// earlier attempt that failed in transit may have deleted it. A "not
    /// found" on the first attempt is returned as [`ApiErrorKind::NotFound`].
    pub async fn delete_script(&self, script: &str, force: bool) -> Result<(), ApiError> {
        let account = self.account_id().to_string();
        let force = if force { "true" } else { "false" };
        let (url, endpoint) = self.url(
            Method::DELETE,
            &["accounts", &account, "workers", "scripts", script],
            &[("force", force)],
        );
        match self
            .execute(Method::DELETE, url, &endpoint, Payload::Empty)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.attempts > 1 && is_script_missing(&e) => {
                self.log(&format!(
                    "{endpoint}: not found on attempt {}, an earlier attempt deleted it",
                    e.attempts
                ));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The scripts that bind this one (services and Durable Objects).
    pub async fn references(&self, script: &str) -> Result<References, ApiError> {
        let account = self.account_id().to_string();
        self.get_result(
            &[
                "accounts",
                &account,
                "workers",
                "scripts",
                script,
                "references",
            ],
            &[],
        )
        .await
    }

    /// Every Durable Object namespace of the account, following pagination.
    pub async fn list_namespaces(&self) -> Result<Vec<Namespace>, ApiError> {
        const PER_PAGE: usize = 1000;
        const MAX_PAGES: u32 = 1000;
        let account = self.account_id().to_string();
        let segments = [
            "accounts",
            &account,
            "workers",
            "durable_objects",
            "namespaces",
        ];
        let mut all: Vec<Namespace> = Vec::new();
        for page in 1..=MAX_PAGES {
            let page_str = page.to_string();
            let per_page = PER_PAGE.to_string();
            let (url, endpoint) = self.url(
                Method::GET,
                &segments,
                &[("per_page", &per_page), ("page", &page_str)],
            );
            let answer = self
                .execute(Method::GET, url, &endpoint, Payload::Empty)
                .await?;
            let info = answer.envelope.as_ref().and_then(|e| e.result_info.clone());
            let items: Vec<Namespace> = self.result_of(answer, &endpoint)?;
            let received = items.len();
            all.extend(items);
            let more = match info {
                None => false,
                Some(_) if received == 0 => false,
                Some(info) if info.total_count > 0 => all.len() < info.total_count as usize,
                Some(info) => {
                    let page_size = if info.per_page > 0 {
                        info.per_page as usize
                    } else {
                        PER_PAGE
                    };
                    received >= page_size
                }
            };
            if !more {
                return Ok(all);
            }
        }
        let (_, endpoint) = self.url(Method::GET, &segments, &[]);
        Err(ApiError::new(&endpoint, ApiErrorKind::Malformed)
            .with_detail(format!("pagination did not end after {MAX_PAGES} pages")))
    }

    /// Whether the script answers on workers.dev.
    pub async fn script_subdomain(&self, script: &str) -> Result<ScriptSubdomain, ApiError> {
        let account = self.account_id().to_string();
        self.get_result(
            &[
                "accounts",
                &account,
                "workers",
                "scripts",
                script,
                "subdomain",
            ],
            &[],
        )
        .await
    }

    /// Turns the script's workers.dev route on or off; setting the same
    /// value twice is harmless.
    pub async fn set_script_subdomain(&self, script: &str, enabled: bool) -> Result<(), ApiError> {
        let account = self.account_id().to_string();
        let (url, endpoint) = self.url(
            Method::POST,
            &[
                "accounts",
                &account,
                "workers",
                "scripts",
                script,
                "subdomain",
            ],
            &[],
        );
        let body = serde_json::json!({ "enabled": enabled });
        self.execute(Method::POST, url, &endpoint, Payload::Json(&body))
            .await?;
        Ok(())
    }

    /// The account's workers.dev subdomain; `None` when it has none (10007).
    pub async fn account_subdomain(&self) -> Result<Option<String>, ApiError> {
        let account = self.account_id().to_string();
        match self
            .get_result::<AccountSubdomain>(&["accounts", &account, "workers", "subdomain"], &[])
            .await
        {
            Ok(s) => Ok(Some(s.subdomain)),
            Err(e) if e.has_code(codes::SCRIPT_NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    // ---- plumbing ----

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, ClientStats> {
        self.inner
            .stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes every clone hold its next request until `wait` from now.
    fn pause_all(&self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        let mut paused = self
            .inner
            .paused_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    /// Sleeps through a pause set by [`Client::pause_all`]; returns the time slept.
    async fn wait_out_pause(&self) -> Duration {
        let mut slept = Duration::ZERO;
        loop {
            let until = *self
                .inner
                .paused_until
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = tokio::time::Instant::now();
            match until {
                Some(until) if until > now => {
                    tokio::time::sleep_until(until).await;
                    slept += until - now;
                }
                _ => return slept,
            }
        }
    }

    fn log(&self, line: &str) {
        if !self.inner.verbose {
            return;
        }
        let line = self.scrub(line);
        match &self.inner.log_sink {
            Some(sink) => sink(&line),
            None => eprintln!("cfdo: {line}"),
        }
    }

    /// Removes the token and every secret value sent from any text that came
    /// from outside or from a library error, so none can leak into an error
    /// or a log.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        if !self.inner.token.is_empty() && out.contains(&self.inner.token) {
            out = out.replace(&self.inner.token, "(redacted)");
        }
        if let Ok(secrets) = self.inner.secrets.lock() {
            for secret in secrets.iter() {
                if out.contains(secret.as_str()) {
                    out = out.replace(secret.as_str(), "(sensitive)");
                }
            }
        }
        out
    }

    /// The URL of an API path and its endpoint label (`GET /accounts/…`).
    fn url(&self, method: Method, segments: &[&str], query: &[(&str, &str)]) -> (Url, String) {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let path = url.path();
        let relative = path.strip_prefix(&self.inner.base_path).unwrap_or(path);
        let endpoint = match url.query() {
            Some(q) => format!("{method} {relative}?{q}"),
            None => format!("{method} {relative}"),
        };
        (url, endpoint)
    }

    async fn get_result<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        let (url, endpoint) = self.url(Method::GET, segments, query);
        let answer = self
            .execute(Method::GET, url, &endpoint, Payload::Empty)
            .await?;
        self.result_of(answer, &endpoint)
    }

    /// Decodes the envelope's `result` into `T`; a missing or mistyped result
    /// is a malformed answer naming the endpoint and the field.
    fn result_of<T: DeserializeOwned>(
        &self,
        answer: Answer,
        endpoint: &str,
    ) -> Result<T, ApiError> {
        let malformed = |detail: String| {
            let mut e = ApiError::new(endpoint, ApiErrorKind::Malformed)
                .with_status(answer.status)
                .with_detail(self.scrub(&detail));
            e.attempts = answer.attempts;
            e
        };
        let result = match answer.envelope.as_ref().and_then(|e| e.result.clone()) {
            Some(Value::Null) | None => {
                return Err(malformed("the response has no `result`".to_string()));
            }
            Some(v) => v,
        };
        serde_path_to_error::deserialize::<_, T>(result).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." {
                "result".to_string()
            } else if path.starts_with('[') {
                format!("result{path}")
            } else {
                format!("result.{path}")
            };
            malformed(format!("unexpected `{at}`: {}", e.inner()))
        })
    }

    /// Sends a request until it succeeds, fails for good, or runs out of
    /// attempts. Every caller is a safe operation to repeat (reads, the
    /// idempotent upload, settings, delete).
    async fn execute(
        &self,
        method: Method,
        url: Url,
        endpoint: &str,
        payload: Payload<'_>,
    ) -> Result<Answer, ApiError> {
        self.execute_checked(method, url, endpoint, payload, None)
            .await
    }

    /// As [`Client::execute`]; before retrying after a 5xx or a connection
    /// failure (which may have taken effect), asks `landed` whether it did,
    /// and if so answers with its result instead of sending the request again.
    async fn execute_checked(
        &self,
        method: Method,
        url: Url,
        endpoint: &str,
        payload: Payload<'_>,
        landed: Option<Landed<'_>>,
    ) -> Result<Answer, ApiError> {
        let max = self.inner.max_attempts;
        let mut attempt = 1;
        loop {
            let paused = self.wait_out_pause().await;
            if !paused.is_zero() {
                self.lock_stats().retry_after_wait += paused;
                self.log(&format!(
                    "held {endpoint} for {} ms: the API asked to slow down (Retry-After)",
                    paused.as_millis()
                ));
            }
            let waited = self.inner.limiter.acquire().await;
            {
                let mut stats = self.lock_stats();
                stats.requests += 1;
                stats.budget_wait += waited;
            }
            if waited >= Duration::from_millis(1) {
                self.log(&format!(
                    "waited {} ms for the rate budget before {endpoint}",
                    waited.as_millis()
                ));
            }
            let outcome = self
                .attempt(method.clone(), url.clone(), endpoint, &payload)
                .await;
            let (mut error, retry_after) = match outcome {
                Ok(mut answer) => {
                    answer.attempts = attempt;
                    return Ok(answer);
                }
                Err(Failure::Fatal(mut e)) => {
                    e.attempts = attempt;
                    return Err(e);
                }
                Err(Failure::Retry(e, retry_after)) => (e, retry_after),
            };
            error.attempts = attempt;
            if attempt >= max {
                return Err(error);
            }
            let wait = match retry_after {
                Some(wait) if wait > self.inner.max_retry_after => {
                    error.kind = ApiErrorKind::RetryAfterTooLong;
                    let told = format!(
                        "the API asked to wait {} s before retrying (Retry-After), more than the {} s ceiling, so cfdo stopped",
                        wait.as_secs_f64().ceil() as u64,
                        self.inner.max_retry_after.as_secs()
                    );
                    error.detail = Some(match error.detail.take() {
                        Some(d) => format!("{d}; {told}"),
                        None => told,
                    });
                    return Err(error);
                }
                Some(wait) => {
                    self.pause_all(wait);
                    self.lock_stats().retry_after_wait += wait;
                    wait
                }
                None => {
                    let wait = self.inner.backoff.delay(attempt);
                    self.lock_stats().backoff_wait += wait;
                    wait
                }
            };
            self.log(&format!(
                "retrying {endpoint} in {} ms (attempt {} of {max}): {error}",
                wait.as_millis(),
                attempt + 1
            ));
            tokio::time::sleep(wait).await;
            if let Some(landed) = landed
                && matches!(error.kind, ApiErrorKind::Server | ApiErrorKind::Network)
                && let Some(result) = landed().await
            {
                self.log(&format!(
                    "{endpoint}: attempt {attempt} took effect although its answer was lost; not sent again"
                ));
                return Ok(Answer {
                    status: 200,
                    envelope: Some(RawEnvelope {
                        success: true,
                        errors: None,
                        result: Some(result),
                        result_info: None,
                    }),
                    attempts: attempt,
                });
            }
            self.lock_stats().retries += 1;
            attempt += 1;
        }
    }

    /// One HTTP exchange, classified.
    async fn attempt(
        &self,
        method: Method,
        url: Url,
        endpoint: &str,
        payload: &Payload<'_>,
    ) -> Result<Answer, Failure> {
        let mut request = self
            .inner
            .http
            .request(method, url)
            .bearer_auth(&self.inner.token);
        request = match payload {
            Payload::Empty => request,
            Payload::Json(value) => request.json(value),
            Payload::Upload { metadata, modules } => {
                request.multipart(upload_form(metadata, modules).map_err(|detail| {
                    Failure::Fatal(ApiError::new(endpoint, ApiErrorKind::Api).with_detail(detail))
                })?)
            }
        };
        let started = Instant::now();
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let detail = self.scrub(&describe_reqwest(&e));
                self.log(&format!(
                    "{endpoint} error after {} ms: {detail}",
                    started.elapsed().as_millis()
                ));
                return Err(Failure::Retry(
                    ApiError::new(endpoint, ApiErrorKind::Network).with_detail(detail),
                    None,
                ));
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after_of(response.headers());
        let mut response = response;
        let mut body: Vec<u8> = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(Failure::Fatal(
                            ApiError::new(endpoint, ApiErrorKind::Malformed)
                                .with_status(status)
                                .with_detail(format!(
                                    "the response is larger than {} MiB, more than any answer of this API",
                                    MAX_RESPONSE_BYTES >> 20
                                )),
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    let detail = self.scrub(&format!(
                        "the response body was cut off: {}",
                        describe_reqwest(&e)
                    ));
                    self.log(&format!(
                        "{endpoint} {status} {} ms, body failed: {detail}",
                        started.elapsed().as_millis()
                    ));
                    return Err(Failure::Retry(
                        ApiError::new(endpoint, ApiErrorKind::Network)
                            .with_status(status)
                            .with_detail(detail),
                        None,
                    ));
                }
            }
        }
        self.log(&format!(
            "{endpoint} {status} {} ms",
            started.elapsed().as_millis()
        ));
        self.classify(endpoint, status, retry_after, &body)
    }

    fn classify(
        &self,
        endpoint: &str,
        status: u16,
        retry_after: Option<Duration>,
        body: &[u8],
    ) -> Result<Answer, Failure> {
        let ok_status = (200..300).contains(&status);
        let retryable = status == 429 || (500..600).contains(&status);
        if ok_status && body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Answer {
                status,
                envelope: None,
                attempts: 1,
            });
        }
        let parsed = parse_envelope(body);
        let envelope = match parsed {
            Ok(envelope) => envelope,
            Err(reason) => {
                let detail = self.scrub(&format!(
                    "the response is not Cloudflare's JSON envelope ({reason}); it starts with {}",
                    snippet(body)
                ));
                let kind = if status == 429 {
                    ApiErrorKind::RateLimited
                } else if retryable {
                    ApiErrorKind::Server
                } else {
                    ApiErrorKind::Malformed
                };
                let error = ApiError::new(endpoint, kind)
                    .with_status(status)
                    .with_detail(detail);
                return Err(if retryable {
                    Failure::Retry(error, retry_after)
                } else {
                    Failure::Fatal(error)
                });
            }
        };
        if envelope.success && ok_status {
            return Ok(Answer {
                status,
                envelope: Some(envelope),
                attempts: 1,
            });
        }
        let errors: Vec<ApiMessage> = envelope
            .errors
            .unwrap_or_default()
            .into_iter()
            .map(|m| ApiMessage {
                code: m.code,
                message: self.scrub(&m.message),
            })
            .collect();
        let has = |code: i64| errors.iter().any(|e| e.code == code);
        let kind = if status == 429 {
            ApiErrorKind::RateLimited
        } else if retryable {
            ApiErrorKind::Server
        } else if status == 401 || status == 403 || has(codes::AUTH) || has(9106) || has(9109) {
            ApiErrorKind::Auth
        } else if status == 404 || has(codes::SCRIPT_NOT_FOUND) || has(codes::SERVICE_NOT_FOUND) {
            ApiErrorKind::NotFound
        } else {
            ApiErrorKind::Api
        };
        let mut error = ApiError::new(endpoint, kind).with_status(status);
        if errors.is_empty() {
            error.detail = Some(if envelope.success {
                format!("unexpected HTTP status {status}")
            } else {
                "the API reported a failure without an error message".to_string()
            });
        }
        error.errors = errors;
        Err(if retryable {
            Failure::Retry(error, retry_after)
        } else {
            Failure::Fatal(error)
        })
    }
}

/// Parses a body as the envelope; the error says where and why it is not one.
fn parse_envelope(body: &[u8]) -> Result<RawEnvelope, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let envelope: RawEnvelope = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || !e.inner().is_data() {
            e.inner().to_string()
        } else {
            format!("`{path}`: {}", e.inner())
        }
    })?;
    de.end().map_err(|e| e.to_string())?;
    Ok(envelope)
}

/// A script that does not exist: code 10007, or a 404 that names no other
/// error (a 404 with, say, code 7003 "could not route" means a wrong account
/// or URL, which must not read as "absent").
fn is_script_missing(e: &ApiError) -> bool {
    e.has_code(codes::SCRIPT_NOT_FOUND)
        || (e.status == Some(404) && e.errors.is_empty() && e.kind == ApiErrorKind::NotFound)
}

/// The multipart form of a module upload: a `metadata` part holding JSON,
/// then one part per module whose part name and filename are the module's
/// name, with its content type.
fn upload_form(metadata: &str, modules: &[Module]) -> Result<reqwest::multipart::Form, String> {
    let metadata_part = reqwest::multipart::Part::text(metadata.to_string())
        .mime_str("application/json")
        .map_err(|e| format!("cannot build the metadata part: {e}"))?;
    let mut form = reqwest::multipart::Form::new().part("metadata", metadata_part);
    for module in modules {
        let part = reqwest::multipart::Part::bytes(module.content.clone())
            .file_name(module.name.clone())
            .mime_str(&module.content_type)
            .map_err(|e| {
                format!(
                    "module {:?} has an invalid content type {:?}: {e}",
                    module.name, module.content_type
                )
            })?;
        form = form.part(module.name.clone(), part);
    }
    Ok(form)
}

fn retry_after_of(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

/// A reqwest error with its causes (`connection refused`, `timed out`).
fn describe_reqwest(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the response body failed"
    } else {
        "the request failed"
    };
    let mut text = what.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The first characters of a body, on one line, for an error message.
fn snippet(body: &[u8]) -> String {
    const MAX: usize = 120;
    if body.is_empty() {
        return "nothing (an empty body)".to_string();
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX * 4)]);
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX)
        .collect();
    let more = if text.chars().count() > MAX || body.len() > MAX * 4 {
        "…"
    } else {
        ""
    };
    format!("`{}{more}`", flat.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lookup_names_the_missing_variable() {
        let err = ClientConfig::from_lookup(|name| match name {
            "CLOUDFLARE_API_TOKEN" => Some("t".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("CLOUDFLARE_ACCOUNT_ID is not set"),
            "{err}"
        );

        let err = ClientConfig::from_lookup(|name| match name {
            "CLOUDFLARE_API_TOKEN" => Some("  ".into()),
            _ => Some("x".into()),
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("CLOUDFLARE_API_TOKEN is set but empty"),
            "{err}"
        );

        let cfg = ClientConfig::from_lookup(|name| match name {
            "CLOUDFLARE_API_TOKEN" => Some("secret-token".into()),
            "CLOUDFLARE_ACCOUNT_ID" => Some("acc".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(cfg.base_url, DEFAULT_BASE_URL);
        assert!(!format!("{cfg:?}").contains("secret-token"));
    }

    #[test]
    fn endpoints_are_relative_to_the_base_and_encoded() {
        let client = Client::new(ClientConfig::new(
            "http://127.0.0.1:9/client/v4/",
            "tok",
            "acc",
        ))
        .unwrap();
        let (url, endpoint) = client.url(
            Method::DELETE,
            &["accounts", "acc", "workers", "scripts", "a b/c"],
            &[("force", "true")],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/client/v4/accounts/acc/workers/scripts/a%20b%2Fc?force=true"
        );
        assert_eq!(
            endpoint,
            "DELETE /accounts/acc/workers/scripts/a%20b%2Fc?force=true"
        );
    }

    #[test]
    fn snippet_is_short_and_on_one_line() {
        assert_eq!(snippet(b"<html>\n<body>"), "`<html> <body>`");
        let long = vec![b'x'; 1000];
        assert!(snippet(&long).ends_with("…`"));
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z0-9 ]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("success".to_string()),
                        Just("errors".to_string()),
                        Just("result".to_string()),
                        Just("result_info".to_string()),
                        Just("id".to_string()),
                        Just("code".to_string()),
                        Just("message".to_string()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..5,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    use proptest::prelude::*;
    use serde_json::json;

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever comes back, reading it gives a value or an error naming
        /// the endpoint and the status, never a panic.
        #[test]
        fn any_answer_is_read_without_panicking(
            status in 100u16..600,
            body in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..200),
                any_json().prop_map(|v| v.to_string().into_bytes()),
                any_json().prop_map(|v| {
                    let text = json!({"success": true, "errors": [], "result": v}).to_string();
                    let cut = text.len() * 2 / 3;
                    text.into_bytes()[..cut].to_vec()
                }),
                any_json().prop_map(|v| json!({"success": true, "errors": [], "result": v}).to_string().into_bytes()),
            ],
        ) {
            let client = Client::new(ClientConfig::new("http://127.0.0.1:9/client/v4", "tok", "acc")).unwrap();
            let endpoint = "GET /accounts/acc/workers/scripts";
            match client.classify(endpoint, status, None, &body) {
                Ok(answer) => {
                    let status = answer.status;
                    match client.result_of::<Vec<ScriptInfo>>(answer, endpoint) {
                        Ok(_) => {}
                        Err(e) => {
                            prop_assert_eq!(e.kind, ApiErrorKind::Malformed);
                            prop_assert_eq!(e.status, Some(status));
                            let text = e.to_string();
                            prop_assert!(text.starts_with(endpoint), "{}", text);
                        }
                    }
                }
                Err(Failure::Retry(e, _)) | Err(Failure::Fatal(e)) => {
                    prop_assert_eq!(e.status, Some(status));
                    let text = e.to_string();
                    prop_assert!(text.starts_with(endpoint), "{}", text);
                }
            }
        }
    }
}
