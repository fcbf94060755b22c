//! The ChangeSet: what apply will do, worker by worker, in order, with
//! field-level diffs, Durable Object migrations and data-loss flags. It is
//! what `plan` renders and what `plan --out` saves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cloudflare::types::Migrations;

/// The version of the saved plan format.
pub const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    /// The script exists but is not owned by this stack; apply takes it over only with `--adopt`.
    Adopt,
    Delete,
    NoOp,
}

impl Action {
    /// The plan's symbol for the action.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Adopt => "<=",
            Action::Delete => "-",
            Action::NoOp => " ",
        }
    }

    /// How a finished change is described: "created", "destroyed", …
    pub fn past_tense(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Adopt => "adopted",
            Action::Delete => "destroyed",
            Action::NoOp => "left as it is",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Adopt => "adopt",
            Action::Delete => "delete",
            Action::NoOp => "no change",
        }
    }
}

/// One field that changes: before and after as the plan shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDiff {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// What must hold in the account for a saved plan to still apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub etag: String,
    pub modified_on: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_tag: Option<String>,
}

impl From<&crate::cloudflare::types::ScriptInfo> for Fingerprint {
    fn from(info: &crate::cloudflare::types::ScriptInfo) -> Self {
        Fingerprint {
            etag: info.etag.clone(),
            modified_on: info.modified_on.clone(),
            migration_tag: info.migration_tag.clone(),
        }
    }
}

/// The change to one script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The manifest key of the worker; None for a script owned by the stack but gone from the manifest.
    pub worker: Option<String>,
    pub script: String,
    pub action: Action,
    /// Apply runs phase by phase, level by level; a level's changes run in parallel.
    pub phase: usize,
    pub level: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldDiff>,
    /// The migration the upload carries, exactly as it will be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<Migrations>,
    /// Stored data this change destroys, spelled out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_loss: Vec<String>,
    /// Differences between the account and what cfdo last applied (changes made outside cfdo).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    /// Notes for the reader (e.g. an adopted namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The code hash the upload carries (checked again at apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_hash: Option<String>,
    /// The workers.dev setting to send after the upload, when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers_dev: Option<bool>,
}

impl Change {
    pub fn is_noop(&self) -> bool {
        self.action == Action::NoOp
    }
}

/// Everything one plan decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub format_version: u32,
    pub stack: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Where it was planned against: the API base URL and account.
    pub api: String,
    pub account_id: String,
    /// Whether this is a destroy plan.
    #[serde(default)]
    pub destroy: bool,
    /// In apply order.
    pub changes: Vec<Change>,
    /// The account's state the plan was computed from, per script it touches.
    pub fingerprints: BTreeMap<String, Option<Fingerprint>>,
    /// Fingerprints of secret values (salted hashes), never the values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_fingerprints: BTreeMap<String, String>,
    /// The settings each worker's upload carries (bindings, compatibility, workers.dev), hashed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_fingerprints: BTreeMap<String, String>,
}

/// The plan's closing counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    pub data_loss: bool,
}

impl ChangeSet {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update | Action::Adopt => s.change += 1,
                Action::Delete => s.destroy += 1,
                Action::NoOp => {}
            }
            s.data_loss |= !c.data_loss.is_empty();
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| !c.is_noop())
    }

    /// The changes grouped by (phase, level), in order.
    pub fn steps(&self) -> Vec<Vec<&Change>> {
        let mut groups: BTreeMap<(usize, usize), Vec<&Change>> = BTreeMap::new();
        for c in self.changes.iter().filter(|c| !c.is_noop()) {
            groups.entry((c.phase, c.level)).or_default().push(c);
        }
        groups.into_values().collect()
    }
}
