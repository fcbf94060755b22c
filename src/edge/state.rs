//! The edge's persistent state: the account (scripts, their versions, Durable
//! Object namespaces), the API token, and the files of the state directory,
//! all written atomically (write a temporary file, then rename).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use serde::{Deserialize, Serialize};

use crate::cloudflare::types::Binding;

/// The files of one edge state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
}

impl StateDir {
    pub fn new(root: PathBuf) -> Self {
        StateDir { root }
    }
    /// The account: scripts, versions, namespaces (JSON, mode 0600: it holds secret bindings).
    pub fn state_file(&self) -> PathBuf {
        self.root.join("state.json")
    }
    /// The API bearer token (mode 0600).
    pub fn token_file(&self) -> PathBuf {
        self.root.join("token")
    }
    /// The API port last used, reused by the next start unless `--port` says otherwise.
    pub fn port_file(&self) -> PathBuf {
        self.root.join("port")
    }
    /// Written by the running server: its pid, API port, workerd's pid.
    pub fn server_file(&self) -> PathBuf {
        self.root.join("server.json")
    }
    /// Held (exclusive lock) by the one server of this state directory.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("edge.lock")
    }
    /// The server's and workerd's output when started in the background.
    pub fn log_file(&self) -> PathBuf {
        self.root.join("edge.log")
    }
    /// Uploaded modules, content-addressed by SHA-256.
    pub fn modules_dir(&self) -> PathBuf {
        self.root.join("modules")
    }
    /// Durable Object storage: one subdirectory per namespace id.
    pub fn storage_dir(&self) -> PathBuf {
        self.root.join("storage")
    }
    /// The generated workerd configuration.
    pub fn workerd_config(&self) -> PathBuf {
        self.root.join("workerd.capnp")
    }

    pub fn create(&self) -> Result<()> {
        for dir in [self.root.clone(), self.modules_dir(), self.storage_dir()] {
            std::fs::create_dir_all(&dir)
                .into_diagnostic()
                .wrap_err_with(|| {
                    format!("cannot create the edge state directory {}", dir.display())
                })?;
        }
        Ok(())
    }

    /// The token, generated at first use.
    pub fn token(&self) -> Result<String> {
        let path = self.token_file();
        if let Ok(text) = std::fs::read_to_string(&path) {
            let token = text.trim().to_string();
            if !token.is_empty() {
                return Ok(token);
            }
        }
        self.create()?;
        let token = random_hex(20);
        write_atomic(&path, token.as_bytes(), true)?;
        Ok(token)
    }

    /// The token if one was generated already.
    pub fn existing_token(&self) -> Option<String> {
        std::fs::read_to_string(self.token_file())
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    }

    pub fn load(&self) -> Result<AccountState> {
        let path = self.state_file();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                miette!(
                    help = "the file was not written by this version of cfdo; move it away to start with an empty edge",
                    "cannot read the edge state {}: {e}",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AccountState {
                account_id: random_hex(16),
                subdomain: format!("edge-{}", random_hex(3)),
                ..AccountState::default()
            }),
            Err(e) => Err(miette!("cannot read the edge state {}: {e}", path.display())),
        }
    }

    /// The state as stored, without creating an account when none exists.
    pub fn load_existing(&self) -> Option<AccountState> {
        let bytes = std::fs::read(self.state_file()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn save(&self, state: &AccountState) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(state).into_diagnostic()?;
        write_atomic(&self.state_file(), &bytes, true)
    }

    /// Stores a module's bytes; returns its content hash (the file name).
    pub fn store_module(&self, content: &[u8]) -> Result<String> {
        use sha2::Digest;
        let hash = hex::encode(sha2::Sha256::digest(content));
        let path = self.modules_dir().join(&hash);
        if !path.is_file() {
            write_atomic(&path, content, false)?;
        }
        Ok(hash)
    }

    pub fn module_path(&self, hash: &str) -> PathBuf {
        self.modules_dir().join(hash)
    }

    pub fn namespace_storage(&self, namespace_id: &str) -> PathBuf {
        self.storage_dir().join(namespace_id)
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader never sees half a file. `private` makes the file mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id(),
        random_hex(4)
    ));
    let result = (|| -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(miette!("cannot write {}: {e}", path.display()));
    }
    Ok(())
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::Rng::fill(&mut rand::rng(), buf.as_mut_slice());
    hex::encode(buf)
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The local account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountState {
    pub account_id: String,
    /// The account's workers.dev-style subdomain (informational).
    pub subdomain: String,
    pub scripts: BTreeMap<String, Script>,
    /// Durable Object namespaces by id.
    pub namespaces: BTreeMap<String, NamespaceRecord>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Script {
    pub created_on: String,
    pub modified_on: String,
    pub etag: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub migration_tag: Option<String>,
    /// The local port serving this script (stable for the script's life).
    pub port: u16,
    #[serde(default)]
    pub subdomain_enabled: bool,
    #[serde(default)]
    pub previews_enabled: bool,
    /// Every uploaded version, oldest first.
    pub versions: Vec<Version>,
    /// The deployed version's id.
    pub deployed: String,
    /// Deployments made, oldest first.
    #[serde(default)]
    pub deployments: Vec<Deployment>,
}

impl Script {
    pub fn current(&self) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == self.deployed)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Version {
    pub id: String,
    pub number: u32,
    pub created_on: String,
    pub main_module: String,
    pub modules: Vec<StoredModule>,
    pub compatibility_date: Option<String>,
    #[serde(default)]
    pub compatibility_flags: Vec<String>,
    pub bindings: Vec<Binding>,
    /// Names the main module exports (classes and others), found by scanning its text.
    pub exported: Vec<String>,
    /// `"upload"` for a script PUT, `"version"` for a version upload.
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub annotations: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredModule {
    pub name: String,
    pub content_type: String,
    /// The content hash: the file under `modules/`.
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub created_on: String,
    pub version_id: String,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamespaceRecord {
    pub id: String,
    pub class: String,
    pub script: String,
    pub use_sqlite: bool,
}

impl AccountState {
    /// The namespace hosted by `script` for `class`.
    pub fn namespace_of(&self, script: &str, class: &str) -> Option<&NamespaceRecord> {
        self.namespaces
            .values()
            .find(|n| n.script == script && n.class == class)
    }
}

/// What the running server records about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub pid: u32,
    pub api_port: u16,
    #[serde(default)]
    pub workerd_pid: Option<u32>,
}
