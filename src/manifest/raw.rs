//! The manifest's TOML shape, as serde and JSON Schema types: the one source
//! of truth for which keys exist. Values keep their spans for diagnostics.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// A cfdo manifest (`cfdo.toml`).
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "cfdo manifest")]
pub struct RawManifest {
    /// The stack: its name, and defaults for every worker.
    #[schemars(with = "RawStack")]
    pub stack: Spanned<RawStack>,
    /// Workers, by key. The key is how bindings refer to a worker; the script name defaults to it.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawWorker>")]
    pub workers: BTreeMap<Spanned<String>, Spanned<RawWorker>>,
    /// Durable Object namespaces, by key. Bindings refer to a namespace by its key.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawNamespace>")]
    pub durable_objects: BTreeMap<Spanned<String>, Spanned<RawNamespace>>,
    /// Environment overlays (`--env NAME`), e.g. staging and production.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawEnv>")]
    pub env: BTreeMap<Spanned<String>, Spanned<RawEnv>>,
}

/// `[stack]`
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawStack {
    /// The stack's name. cfdo tags every script it owns with it.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The Cloudflare account; defaults to CLOUDFLARE_ACCOUNT_ID.
    #[schemars(with = "Option<String>")]
    pub account_id: Option<Spanned<String>>,
    /// The default compatibility date of every worker (YYYY-MM-DD).
    #[schemars(with = "Option<String>")]
    pub compatibility_date: Option<Spanned<String>>,
    /// The default compatibility flags of every worker.
    #[schemars(with = "Option<Vec<String>>")]
    pub compatibility_flags: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[workers.<key>]`
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawWorker {
    /// The script name on Cloudflare (lowercase letters, digits and dashes; at most 63 characters). Defaults to the key.
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// The entrypoint, relative to the manifest file.
    #[schemars(with = "String")]
    pub main: Spanned<String>,
    /// Compatibility date (YYYY-MM-DD); defaults to the stack's.
    #[schemars(with = "Option<String>")]
    pub compatibility_date: Option<Spanned<String>>,
    /// Compatibility flags; default to the stack's.
    #[schemars(with = "Option<Vec<String>>")]
    pub compatibility_flags: Option<Spanned<Vec<Spanned<String>>>>,
    /// Serve the worker on its workers.dev subdomain.
    #[schemars(with = "Option<bool>")]
    pub workers_dev: Option<Spanned<bool>>,
    /// Upload the modules as they are instead of bundling them.
    #[schemars(with = "Option<bool>")]
    pub no_bundle: Option<Spanned<bool>>,
    /// A command run (with `sh -c`, in the manifest's directory) before bundling.
    #[schemars(with = "Option<String>")]
    pub build: Option<Spanned<String>>,
    /// Bindings, by the name the code sees them under.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawBinding>")]
    pub bindings: BTreeMap<Spanned<String>, Spanned<RawBinding>>,
}

/// One binding: exactly one of its keys.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawBinding {
    /// The key of a `[durable_objects.<key>]` namespace.
    #[schemars(with = "Option<String>")]
    pub durable_object: Option<Spanned<String>>,
    /// The key of a worker in this manifest, or the script name of a worker outside it.
    #[schemars(with = "Option<String>")]
    pub service: Option<Spanned<String>>,
    /// A plain text variable.
    #[schemars(with = "Option<String>")]
    pub text: Option<Spanned<String>>,
    /// A JSON variable (any TOML value).
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Spanned<serde_json::Value>>,
    /// The name of an environment variable whose value becomes a secret at apply time; never stored.
    #[schemars(with = "Option<String>")]
    pub secret: Option<Spanned<String>>,
}

/// `[durable_objects.<key>]`
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawNamespace {
    /// The exported class that implements the Durable Object.
    #[schemars(with = "String")]
    pub class_name: Spanned<String>,
    /// The key of the manifest worker whose code exports the class.
    #[schemars(with = "Option<String>")]
    pub worker: Option<Spanned<String>>,
    /// The script name of a worker outside this manifest that hosts the class.
    #[schemars(with = "Option<String>")]
    pub script: Option<Spanned<String>>,
    /// SQLite-backed storage (true, the default) or key-value storage (false). Cannot change once created.
    #[schemars(with = "Option<bool>")]
    pub sqlite: Option<Spanned<bool>>,
    /// The class's former name: the class is renamed, keeping its data.
    #[schemars(with = "Option<String>")]
    pub renamed_from: Option<Spanned<String>>,
    /// The script the class moves from: it is transferred, keeping its data.
    #[schemars(with = "Option<String>")]
    pub transferred_from: Option<Spanned<String>>,
    /// Refuse any plan that would delete this namespace, destroy included.
    #[schemars(with = "Option<bool>")]
    pub protect: Option<Spanned<bool>>,
}

/// `[env.<name>]`: an overlay applied with `--env NAME`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawEnv {
    /// Appended to every script name of the stack; default `-<env name>`.
    #[schemars(with = "Option<String>")]
    pub name_suffix: Option<Spanned<String>>,
    /// The Cloudflare account for this environment.
    #[schemars(with = "Option<String>")]
    pub account_id: Option<Spanned<String>>,
    /// Compatibility date for every worker in this environment.
    #[schemars(with = "Option<String>")]
    pub compatibility_date: Option<Spanned<String>>,
    /// Compatibility flags for every worker in this environment.
    #[schemars(with = "Option<Vec<String>>")]
    pub compatibility_flags: Option<Spanned<Vec<Spanned<String>>>>,
    /// Plain text variables added to (or replacing bindings of) every worker.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub vars: BTreeMap<Spanned<String>, Spanned<String>>,
    /// Per-worker overlays.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawWorkerOverlay>")]
    pub workers: BTreeMap<Spanned<String>, Spanned<RawWorkerOverlay>>,
}

/// `[env.<name>.workers.<key>]`
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawWorkerOverlay {
    /// The script name in this environment (replaces name plus suffix).
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub compatibility_date: Option<Spanned<String>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub compatibility_flags: Option<Spanned<Vec<Spanned<String>>>>,
    #[schemars(with = "Option<bool>")]
    pub workers_dev: Option<Spanned<bool>>,
    /// Plain text variables for this worker in this environment.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub vars: BTreeMap<Spanned<String>, Spanned<String>>,
    /// Bindings added, or replacing those of the same name.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawBinding>")]
    pub bindings: BTreeMap<Spanned<String>, Spanned<RawBinding>>,
}

/// The manifest's JSON Schema, as committed in `schema/cfdo.schema.json`.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawManifest)).unwrap_or_default()
}
