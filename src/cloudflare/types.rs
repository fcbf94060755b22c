//! Wire types of the Cloudflare Workers API subset cfdo speaks, shared by the
//! client (which sends them) and the local edge (which serves them).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiMessage {
    pub code: i64,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResultInfo {
    #[serde(default)]
    pub page: u32,
    #[serde(default)]
    pub per_page: u32,
    #[serde(default)]
    pub count: u32,
    #[serde(default)]
    pub total_count: u32,
}

/// A secret's value: serialised as the plain string it holds, never shown by
/// `Debug`, so no log line or error built from a value that carries it can
/// print it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive(pub String);

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(sensitive)")
    }
}

/// One binding, in the shape the upload metadata and the settings endpoint use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Binding {
    #[serde(rename = "durable_object_namespace")]
    DurableObjectNamespace {
        name: String,
        class_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        script_name: Option<String>,
        /// Present in settings read back from the account.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace_id: Option<String>,
    },
    #[serde(rename = "service")]
    Service {
        name: String,
        service: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        environment: Option<String>,
    },
    #[serde(rename = "plain_text")]
    PlainText { name: String, text: String },
    /// `text` is absent when read back from the account.
    #[serde(rename = "secret_text")]
    SecretText {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<Sensitive>,
    },
    #[serde(rename = "json")]
    Json { name: String, json: Value },
    /// Any binding type cfdo does not manage; kept so nothing is lost on read.
    #[serde(untagged)]
    Other(Value),
}

impl Binding {
    pub fn name(&self) -> &str {
        match self {
            Binding::DurableObjectNamespace { name, .. }
            | Binding::Service { name, .. }
            | Binding::PlainText { name, .. }
            | Binding::SecretText { name, .. }
            | Binding::Json { name, .. } => name,
            Binding::Other(v) => v.get("name").and_then(Value::as_str).unwrap_or(""),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenamedClass {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferredClass {
    pub from: String,
    pub from_script: String,
    pub to: String,
}

/// One Durable Object migration step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationStep {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_classes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_sqlite_classes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renamed_classes: Vec<RenamedClass>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_classes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transferred_classes: Vec<TransferredClass>,
}

impl MigrationStep {
    pub fn is_empty(&self) -> bool {
        self.new_classes.is_empty()
            && self.new_sqlite_classes.is_empty()
            && self.renamed_classes.is_empty()
            && self.deleted_classes.is_empty()
            && self.transferred_classes.is_empty()
    }
}

/// The `migrations` field of an upload. Cloudflare also accepts a single
/// step written inline (`{"old_tag", "new_tag", "new_classes": …}`); the
/// edge folds that form into `steps`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migrations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<MigrationStep>,
    #[serde(flatten)]
    pub inline: MigrationStep,
}

/// The `metadata` part of a script upload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UploadMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_module: Option<String>,
    /// Service-worker syntax scripts name their single part here; cfdo never sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_part: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility_date: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compatibility_flags: Vec<String>,
    #[serde(default)]
    pub bindings: Vec<Binding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrations: Option<Migrations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exports: Option<serde_json::Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_bindings: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<Value>,
}

/// One item of `GET /accounts/{a}/workers/scripts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScriptInfo {
    pub id: String,
    #[serde(default)]
    pub etag: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility_date: Option<String>,
    #[serde(default)]
    pub compatibility_flags: Vec<String>,
    #[serde(default)]
    pub created_on: String,
    #[serde(default)]
    pub modified_on: String,
    #[serde(default)]
    pub handlers: Vec<String>,
}

/// `GET /accounts/{a}/workers/scripts/{s}/settings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScriptSettings {
    #[serde(default)]
    pub bindings: Vec<Binding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility_date: Option<String>,
    #[serde(default)]
    pub compatibility_flags: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `GET /accounts/{a}/workers/durable_objects/namespaces` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub class: String,
    #[serde(default)]
    pub script: String,
    #[serde(default)]
    pub use_sqlite: bool,
}

/// `GET /accounts/{a}/workers/scripts/{s}/references`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct References {
    #[serde(default)]
    pub services: Vec<ServiceReference>,
    #[serde(default)]
    pub durable_objects: Vec<DurableObjectReference>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceReference {
    /// The script holding the service binding.
    pub service: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DurableObjectReference {
    pub namespace_id: String,
    #[serde(default)]
    pub namespace_name: String,
    /// The script holding the binding.
    pub dependent_service: String,
}

/// `GET`/`POST /accounts/{a}/workers/scripts/{s}/subdomain`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptSubdomain {
    pub enabled: bool,
    #[serde(default)]
    pub previews_enabled: bool,
}

/// One module of an upload: the multipart part's name, content type and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

pub const ESM_CONTENT_TYPE: &str = "application/javascript+module";
pub const SOURCE_MAP_CONTENT_TYPE: &str = "application/source-map";

/// Error codes cfdo and the edge both use.
pub mod codes {
    pub const AUTH: i64 = 10000;
    pub const SCRIPT_NOT_FOUND: i64 = 10007;
    pub const SCRIPT_STARTUP: i64 = 10021;
    pub const DO_BINDING: i64 = 10061;
    pub const CLASS_NOT_EXPORTED_LIVE: i64 = 10064;
    pub const NEW_CLASS_NOT_EXPORTED: i64 = 10070;
    pub const NEW_CLASS_EXISTS: i64 = 10074;
    pub const MIGRATION_TAG: i64 = 10079;
    pub const SERVICE_NOT_FOUND: i64 = 10090;
    pub const VERSION_WITH_MIGRATION: i64 = 10211;
}

#[cfg(test)]
mod tests {
    use super::{Binding, Sensitive};

    #[test]
    fn a_secret_binding_debugs_without_its_value_and_serialises_with_it() {
        let binding = Binding::SecretText {
            name: "API_KEY".into(),
            text: Some(Sensitive("hunter2".into())),
        };
        let shown = format!("{binding:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("API_KEY") && shown.contains("(sensitive)"),
            "{shown}"
        );
        let sent = serde_json::to_value(&binding).expect("serialise");
        assert_eq!(
            sent,
            serde_json::json!({"type": "secret_text", "name": "API_KEY", "text": "hunter2"})
        );
    }
}
