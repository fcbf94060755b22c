//! What the account holds now, read through the provider: every script (with
//! its tags and migration tag), every Durable Object namespace, and the
//! settings of each script the manifest deploys. A failed read is an error.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt, TryStreamExt};
use miette::Result;

use crate::cloudflare::Client;
use crate::cloudflare::types::{Namespace, ScriptInfo, ScriptSettings};

/// The tag prefix that marks a script as owned by a stack.
pub const STACK_TAG: &str = "cfdo:stack=";
/// The tag carrying the hash of the code cfdo last uploaded.
pub const CODE_TAG: &str = "cfdo:code=";
/// The tag carrying the hash of the settings cfdo last uploaded.
pub const CONFIG_TAG: &str = "cfdo:config=";
/// The tag carrying a fingerprint of the secret values cfdo last uploaded.
pub const SECRETS_TAG: &str = "cfdo:secrets=";
/// The tag carrying a hash of the script names of the manifest cfdo last applied.
pub const WORKERS_TAG: &str = "cfdo:workers=";
/// The tag listing the classes the script hosts under `protect = true`
/// (joined by `+`), so a protected class stays protected even when the
/// manifest loses track of it (a class renamed without `renamed_from`, an
/// entry removed).
pub const PROTECT_TAG: &str = "cfdo:protect=";
/// The tag recording the workers.dev setting cfdo last applied.
pub const WORKERS_DEV_TAG: &str = "cfdo:workers_dev=";

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every script of the account, by name.
    pub scripts: BTreeMap<String, ScriptInfo>,
    pub namespaces: Vec<Namespace>,
    /// Settings of the scripts the manifest deploys that exist.
    pub settings: BTreeMap<String, ScriptSettings>,
}

/// The value of a `prefix…` tag on a script.
pub fn tag_value<'a>(script: &'a ScriptInfo, prefix: &str) -> Option<&'a str> {
    script.tags.iter().find_map(|t| t.strip_prefix(prefix))
}

/// The classes a script's tag says are protected.
pub fn protected_classes(script: &ScriptInfo) -> Vec<String> {
    tag_value(script, PROTECT_TAG)
        .map(|v| {
            v.split('+')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl Snapshot {
    /// Reads the account: the script list, the namespaces, and the settings of `scripts` that exist.
    pub async fn read(client: &Client, scripts: &[String], parallelism: usize) -> Result<Snapshot> {
        let (list, namespaces) = tokio::try_join!(client.list_scripts(), client.list_namespaces())?;
        let mut scripts_by_name: BTreeMap<String, ScriptInfo> =
            list.into_iter().map(|s| (s.id.clone(), s)).collect();
        let wanted: Vec<String> = scripts
            .iter()
            .filter(|s| scripts_by_name.contains_key(*s))
            .cloned()
            .collect();
        let settings: Vec<(String, Option<ScriptSettings>)> = stream::iter(wanted)
            .map(|name| async move {
                let settings = client.script_settings(&name).await?;
                Ok((name, settings))
            })
            .buffer_unordered(parallelism.max(1))
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e: crate::cloudflare::ApiError| miette::Report::new(e))?;
        let mut read = BTreeMap::new();
        for (name, found) in settings {
            match found {
                Some(settings) => {
                    read.insert(name, settings);
                }
                // Listed a moment ago, and now the API says explicitly "not
                // found": deleted in between, so it is absent (a failed read
                // is an error above, never absent).
                None => {
                    scripts_by_name.remove(&name);
                }
            }
        }
        Ok(Snapshot {
            scripts: scripts_by_name,
            namespaces,
            settings: read,
        })
    }

    /// Scripts tagged as owned by `stack`.
    pub fn owned_by<'a>(&'a self, stack: &'a str) -> impl Iterator<Item = &'a ScriptInfo> + 'a {
        self.scripts
            .values()
            .filter(move |s| tag_value(s, STACK_TAG) == Some(stack))
    }

    /// The namespaces hosted by a script.
    pub fn namespaces_of<'a>(
        &'a self,
        script: &'a str,
    ) -> impl Iterator<Item = &'a Namespace> + 'a {
        self.namespaces.iter().filter(move |n| n.script == script)
    }

    pub fn namespace(&self, script: &str, class: &str) -> Option<&Namespace> {
        self.namespaces
            .iter()
            .find(|n| n.script == script && n.class == class)
    }
}
