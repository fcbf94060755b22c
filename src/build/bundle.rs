//! Bundling with esbuild, and the bundle cache.
//!
//! esbuild runs in the manifest's directory with relative paths, so its output
//! names no absolute path; the source map's `sources` are rewritten relative
//! to that directory too. The same sources then give the same bytes wherever
//! they are checked out.
//!
//! Cache: `<cache>/inputs/<options key>.json` lists the files the last build
//! of that entrypoint read (from esbuild's metafile); `<cache>/bundles/<input
//! hash>/` holds the bundle. The input hash covers the esbuild version and
//! options, the content of every input, the names in every directory on the
//! way from the manifest's directory to each input (so a new file that would
//! resolve differently is noticed), and the `package.json`/`tsconfig.json`/
//! `jsconfig.json` files in those directories and above the manifest's
//! directory (which steer resolution but are not listed as inputs).

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{BuildInput, BuildOptions};
use crate::cloudflare::types::{ESM_CONTENT_TYPE, Module, SOURCE_MAP_CONTENT_TYPE};

/// Bumped when the cache layout or the meaning of the options changes.
const CACHE_FORMAT: &str = "cfdo-bundle-1";

/// Files that steer esbuild's resolution without being bundle inputs.
const RESOLUTION_CONFIGS: &[&str] = &["package.json", "tsconfig.json", "jsconfig.json"];

/// The esbuild options every bundle uses (paths come separately).
const ESBUILD_OPTIONS: &[&str] = &[
    "--bundle",
    "--format=esm",
    "--platform=neutral",
    "--target=es2022",
    "--external:cloudflare:*",
    "--external:node:*",
    "--conditions=workerd,worker,browser",
    "--main-fields=browser,module,main",
    "--sourcemap=linked",
    "--sources-content=false",
    "--loader:.txt=text",
    "--loader:.html=text",
    "--loader:.bin=binary",
    "--log-level=warning",
    "--log-limit=20",
    "--color=false",
];

static WORK_COUNTER: AtomicU64 = AtomicU64::new(0);

pub(super) struct Bundler {
    esbuild: PathBuf,
    version: String,
    cache: PathBuf,
}

pub(super) struct Bundled {
    pub main_module: String,
    /// The bundle, then its source map.
    pub modules: Vec<Module>,
}

/// What the cache remembers about the last build of one entrypoint.
#[derive(Serialize, Deserialize)]
struct InputRecord {
    /// The files esbuild read, relative to the manifest's directory.
    inputs: Vec<String>,
}

impl Bundler {
    pub fn new(options: &BuildOptions) -> Result<Self> {
        let esbuild = match &options.esbuild {
            Some(path) => path.clone(),
            None => crate::tools::ESBUILD.locate()?,
        };
        let version = esbuild_version(&esbuild)?;
        let cache = options
            .cache_dir
            .clone()
            .unwrap_or_else(|| crate::tools::cache_dir().join("build"));
        Ok(Bundler {
            esbuild,
            version,
            cache,
        })
    }

    pub fn bundle(&self, input: &BuildInput) -> Result<Bundled> {
        let worker = &input.worker;
        let root = input.root.canonicalize().map_err(|e| {
            miette!(
                "worker `{worker}`: cannot open the manifest's directory {}: {e}",
                input.root.display()
            )
        })?;
        let main = input.main.canonicalize().map_err(|e| {
            miette!(
                "worker `{worker}`: cannot open the entrypoint {}: {e}",
                input.main.display()
            )
        })?;
        let entry = relative_path(&root, &main);
        let entry_arg = if entry.starts_with("../") {
            entry.clone()
        } else {
            format!("./{entry}")
        };
        let stem = main
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "index".to_string());
        let main_module = format!("{stem}.js");
        let map_module = format!("{main_module}.map");

        let mut key = Sha256::new();
        for part in [CACHE_FORMAT, &self.version, &root.to_string_lossy(), &entry]
            .into_iter()
            .chain(ESBUILD_OPTIONS.iter().copied())
        {
            key.update((part.len() as u64).to_le_bytes());
            key.update(part.as_bytes());
        }
        let options_key = hex::encode(key.finalize());

        if let Some(hit) = self.lookup(&root, &options_key, &main_module, &map_module) {
            return Ok(hit);
        }

        let work = self.cache.join("tmp").join(format!(
            "{}-{}-{}",
            &options_key[..16],
            std::process::id(),
            WORK_COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&work)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot create the build directory {}", work.display()))?;
        let result = self.run_esbuild(input, &root, &entry, &entry_arg, &work, &main_module);
        let outcome = result.and_then(|(inputs, started)| {
            let js = std::fs::read(work.join(&main_module))
                .into_diagnostic()
                .wrap_err_with(|| format!("worker `{worker}`: esbuild wrote no {main_module}"))?;
            let raw_map = std::fs::read(work.join(&map_module))
                .into_diagnostic()
                .wrap_err_with(|| format!("worker `{worker}`: esbuild wrote no {map_module}"))?;
            let map = rewrite_sources(&raw_map, &work, &root).map_err(|e| {
                miette!("worker `{worker}`: esbuild's source map is unreadable: {e}")
            })?;
            self.store(
                &root,
                &options_key,
                &inputs,
                started,
                &work,
                &main_module,
                &map_module,
                &map,
            );
            Ok(Bundled {
                main_module: main_module.clone(),
                modules: modules(&main_module, js, &map_module, map),
            })
        });
        let _ = std::fs::remove_dir_all(&work);
        outcome
    }

    /// Runs esbuild into `work`; returns the inputs it read and when it started.
    fn run_esbuild(
        &self,
        input: &BuildInput,
        root: &Path,
        entry: &str,
        entry_arg: &str,
        work: &Path,
        main_module: &str,
    ) -> Result<(Vec<String>, SystemTime)> {
        let worker = &input.worker;
        let work = work.canonicalize().into_diagnostic()?;
        let started = SystemTime::now();
        let output = Command::new(&self.esbuild)
            .arg(entry_arg)
            .args(ESBUILD_OPTIONS)
            .arg(format!("--outfile={}", work.join(main_module).display()))
            .arg(format!("--metafile={}", work.join("meta.json").display()))
            .current_dir(root)
            .output()
            .map_err(|e| {
                miette!(
                    help = "set CFDO_ESBUILD to a working esbuild binary, or unset it",
                    "worker `{worker}`: cannot run esbuild at {}: {e}",
                    self.esbuild.display()
                )
            })?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(miette!(
                help = format!(
                    "fix the error in the source (paths are relative to {}); nothing was uploaded",
                    root.display()
                ),
                "worker `{worker}`: esbuild could not bundle {entry}:\n\n{}",
                stderr.trim_end()
            ));
        }
        if !stderr.trim().is_empty() {
            for line in stderr.trim_end().lines() {
                eprintln!("[{worker}] {line}");
            }
        }
        let meta = std::fs::read(work.join("meta.json"))
            .into_diagnostic()
            .wrap_err_with(|| format!("worker `{worker}`: esbuild wrote no metafile"))?;
        let meta: serde_json::Value = serde_json::from_slice(&meta)
            .into_diagnostic()
            .wrap_err_with(|| format!("worker `{worker}`: esbuild's metafile is not JSON"))?;
        let inputs = meta
            .get("inputs")
            .and_then(|i| i.as_object())
            .map(|i| i.keys().cloned().collect())
            .unwrap_or_default();
        Ok((inputs, started))
    }

    fn record_path(&self, options_key: &str) -> PathBuf {
        self.cache
            .join("inputs")
            .join(format!("{options_key}.json"))
    }

    /// The cached bundle, if the files the last build read are unchanged.
    fn lookup(
        &self,
        root: &Path,
        options_key: &str,
        main_module: &str,
        map_module: &str,
    ) -> Option<Bundled> {
        let record = std::fs::read(self.record_path(options_key)).ok()?;
        let record: InputRecord = serde_json::from_slice(&record).ok()?;
        let key = input_hash(root, options_key, &record.inputs);
        let dir = self.cache.join("bundles").join(key);
        let js = std::fs::read(dir.join(main_module)).ok()?;
        let map = std::fs::read(dir.join(map_module)).ok()?;
        Some(Bundled {
            main_module: main_module.to_string(),
            modules: modules(main_module, js, map_module, map),
        })
    }

    /// Saves a fresh bundle. Skipped when an input changed while esbuild ran
    /// (the bundle might not match the content the hash covers). A cache that
    /// cannot be written only costs a rebuild next time.
    #[allow(clippy::too_many_arguments)]
    fn store(
        &self,
        root: &Path,
        options_key: &str,
        inputs: &[String],
        started: SystemTime,
        work: &Path,
        main_module: &str,
        map_module: &str,
        map: &[u8],
    ) {
        let changed_meanwhile = inputs.iter().any(|rel| {
            std::fs::metadata(normalize(&root.join(rel)))
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified >= started)
        });
        if changed_meanwhile {
            return;
        }
        let key = input_hash(root, options_key, inputs);
        let bundles = self.cache.join("bundles");
        let target = bundles.join(&key);
        let staged = work.join("bundle");
        let saved = (|| -> std::io::Result<()> {
            if !target.join(map_module).is_file() {
                std::fs::create_dir_all(&staged)?;
                std::fs::rename(work.join(main_module), staged.join(main_module))?;
                std::fs::write(staged.join(map_module), map)?;
                std::fs::create_dir_all(&bundles)?;
                if let Err(e) = std::fs::rename(&staged, &target) {
                    // Another build of the same sources got there first.
                    if !target.join(map_module).is_file() {
                        return Err(e);
                    }
                }
            }
            let record = serde_json::to_vec(&InputRecord {
                inputs: inputs.to_vec(),
            })
            .map_err(std::io::Error::other)?;
            let record_path = self.record_path(options_key);
            if let Some(dir) = record_path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let partial = work.join("record.json");
            std::fs::write(&partial, record)?;
            std::fs::rename(&partial, &record_path)
        })();
        if let Err(e) = saved {
            eprintln!(
                "cfdo: could not save the bundle in the cache {}: {e}",
                self.cache.display()
            );
        }
    }
}

/// `esbuild --version`, asked once per binary per process.
fn esbuild_version(esbuild: &Path) -> Result<String> {
    static KNOWN: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());
    if let Ok(known) = KNOWN.lock()
        && let Some((_, version)) = known.iter().find(|(path, _)| path == esbuild)
    {
        return Ok(version.clone());
    }
    let output = Command::new(esbuild)
        .arg("--version")
        .output()
        .map_err(|e| {
            miette!(
                help = "set CFDO_ESBUILD to a working esbuild binary, or unset it",
                "cannot run esbuild at {}: {e}",
                esbuild.display()
            )
        })?;
    if !output.status.success() {
        return Err(miette!(
            help = "set CFDO_ESBUILD to a working esbuild binary, or unset it",
            "esbuild at {} failed to report its version: {}",
            esbuild.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if let Ok(mut known) = KNOWN.lock() {
        known.push((esbuild.to_path_buf(), version.clone()));
    }
    Ok(version)
}

fn modules(main_module: &str, js: Vec<u8>, map_module: &str, map: Vec<u8>) -> Vec<Module> {
    vec![
        Module {
            name: main_module.to_string(),
            content_type: ESM_CONTENT_TYPE.to_string(),
            content: js,
        },
        Module {
            name: map_module.to_string(),
            content_type: SOURCE_MAP_CONTENT_TYPE.to_string(),
            content: map,
        },
    ]
}

/// The hash of everything a bundle depends on (see the module docs).
fn input_hash(root: &Path, options_key: &str, inputs: &[String]) -> String {
    let mut hasher = Sha256::new();
    let mut part = |tag: &str, bytes: &[u8]| {
        hasher.update(tag.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    part("options", options_key.as_bytes());
    let mut sorted: Vec<&String> = inputs.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for rel in sorted {
        part("file", rel.as_bytes());
        let path = normalize(&root.join(rel));
        match std::fs::read(&path) {
            Ok(bytes) => part("content", &Sha256::digest(&bytes)),
            Err(_) => part("absent", b""),
        }
        let mut dir = path.parent();
        while let Some(d) = dir {
            dirs.insert(d.to_path_buf());
            if root.starts_with(d) {
                break;
            }
            dir = d.parent();
        }
    }
    for dir in &dirs {
        part("dir", relative_path(root, dir).as_bytes());
        let mut names: Vec<String> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        part("names", names.join("\0").as_bytes());
        for config in RESOLUTION_CONFIGS {
            if names.iter().any(|n| n == config)
                && let Ok(bytes) = std::fs::read(dir.join(config))
            {
                part(config, &Sha256::digest(&bytes));
            }
        }
    }
    for ancestor in root.ancestors().skip(1) {
        if dirs.contains(ancestor) {
            continue;
        }
        for config in RESOLUTION_CONFIGS {
            if let Ok(bytes) = std::fs::read(ancestor.join(config)) {
                part("above", ancestor.to_string_lossy().as_bytes());
                part(config, &Sha256::digest(&bytes));
            }
        }
    }
    hex::encode(hasher.finalize())
}

/// Folds `.` and `..` out of a path without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `to` relative to the directory `from`, both absolute, with `/` separators.
fn relative_path(from: &Path, to: &Path) -> String {
    let (from, to) = (normalize(from), normalize(to));
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> =
        std::iter::repeat_n("..".to_string(), from.len() - common).collect();
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

/// Rewrites a source map's `sources` (relative to where esbuild wrote it)
/// to be relative to the manifest's directory.
fn rewrite_sources(
    map: &[u8],
    written_in: &Path,
    root: &Path,
) -> std::result::Result<Vec<u8>, String> {
    let written_in = written_in.canonicalize().map_err(|e| e.to_string())?;
    let mut value: serde_json::Value = serde_json::from_slice(map).map_err(|e| e.to_string())?;
    if let Some(sources) = value.get_mut("sources").and_then(|s| s.as_array_mut()) {
        for source in sources.iter_mut() {
            if let Some(s) = source.as_str() {
                let absolute = normalize(&written_in.join(s));
                *source = serde_json::Value::String(relative_path(root, &absolute));
            }
        }
    }
    let mut bytes = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/a/b"), Path::new("/a/b/c/d.ts")),
            "c/d.ts"
        );
        assert_eq!(
            relative_path(Path::new("/a/b"), Path::new("/a/x/y.ts")),
            "../x/y.ts"
        );
        assert_eq!(relative_path(Path::new("/a/b"), Path::new("/a/b")), ".");
    }

    #[test]
    fn source_map_sources_become_root_relative() {
        let tmp = std::env::temp_dir().join(format!("cfdo-map-test-{}", std::process::id()));
        let out = tmp.join("cache/tmp/x");
        let root = tmp.join("project");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        let root = root.canonicalize().unwrap();
        let map = br#"{"version":3,"sources":["../../../project/src/a.ts","../../../shared/b.ts"],"mappings":"AAAA"}"#;
        let rewritten = rewrite_sources(map, &out, &root).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&rewritten).unwrap();
        assert_eq!(
            value["sources"],
            serde_json::json!(["src/a.ts", "../shared/b.ts"])
        );
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
