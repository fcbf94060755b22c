//! Builds each worker's modules: bundling with esbuild (or collecting modules
//! as they are), a content hash, and a scan of the classes the code exports.

mod bundle;
mod collect;
mod command;
mod scan;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use miette::{Result, miette};
use sha2::{Digest, Sha256};

use crate::cloudflare::types::Module;

pub use collect::exported_classes_of_modules;
pub use scan::{exported_classes, exports_default};

/// One worker to build, as the manifest describes it.
#[derive(Debug, Clone)]
pub struct BuildInput {
    /// The manifest key, for messages.
    pub worker: String,
    /// Absolute path of the entrypoint.
    pub main: PathBuf,
    /// The manifest's directory: custom build commands run here, and bundle
    /// paths are relative to it.
    pub root: PathBuf,
    /// Upload the modules as they are instead of bundling.
    pub no_bundle: bool,
    /// A shell command run in `root` before bundling.
    pub build_command: Option<String>,
}

/// A worker's built code, ready to upload.
#[derive(Debug, Clone)]
pub struct BuiltWorker {
    pub worker: String,
    /// The main module's name, e.g. `index.js`.
    pub main_module: String,
    /// The main module first, then the others; a bundle's source map is the
    /// module `<main>.map`, content type `application/source-map`.
    pub modules: Vec<Module>,
    /// Hex SHA-256 over module names, content types and bytes: the "code
    /// changed" signal. It does not depend on where the sources are checked out.
    pub hash: String,
    /// Names of the classes the main module exports, under their exported names.
    pub exports: BTreeSet<String>,
    /// The entrypoint whose exports were scanned (for error messages).
    pub entry: PathBuf,
}

/// Where the build finds esbuild and keeps its cache. `None` means the
/// defaults: `tools::ESBUILD.locate()` and `tools::cache_dir()/build`.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub esbuild: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
}

/// Builds every worker, independent workers in parallel (at most one per
/// core). The result is in the order of `inputs`. If any worker fails, the
/// error names every failure and no result is returned.
pub fn build_all(inputs: &[BuildInput]) -> Result<Vec<BuiltWorker>> {
    build_all_with(inputs, &BuildOptions::default())
}

/// [`build_all`] with an explicit esbuild binary and cache directory.
pub fn build_all_with(inputs: &[BuildInput], options: &BuildOptions) -> Result<Vec<BuiltWorker>> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    // Custom build commands first, each distinct (directory, command) once:
    // two workers built by the same command must not run it twice at once.
    command::run_all(inputs)?;

    let bundler = if inputs.iter().any(|i| !i.no_bundle) {
        Some(bundle::Bundler::new(options)?)
    } else {
        None
    };

    let results: Vec<Mutex<Option<Result<BuiltWorker>>>> =
        inputs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(inputs.len());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    let Some(input) = inputs.get(index) else {
                        break;
                    };
                    let built = build_one(input, bundler.as_ref());
                    if let Ok(mut slot) = results[index].lock() {
                        *slot = Some(built);
                    }
                }
            });
        }
    });

    let mut built = Vec::with_capacity(inputs.len());
    let mut failures = Vec::new();
    for (input, slot) in inputs.iter().zip(results) {
        let outcome = slot.into_inner().ok().flatten().unwrap_or_else(|| {
            Err(miette!(
                "worker `{}`: the build stopped unexpectedly",
                input.worker
            ))
        });
        match outcome {
            Ok(worker) => built.push(worker),
            Err(error) => failures.push(error),
        }
    }
    match failures.len() {
        0 => Ok(built),
        1 => Err(failures.remove(0)),
        n => {
            let text = failures
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n\n");
            Err(miette!(
                help = "fix the errors above and run again; nothing was uploaded",
                "{n} workers failed to build:\n\n{text}"
            ))
        }
    }
}

fn build_one(input: &BuildInput, bundler: Option<&bundle::Bundler>) -> Result<BuiltWorker> {
    if !input.main.is_file() {
        return Err(miette!(
            help = "check the worker's `main` in the manifest (it is relative to the manifest's directory)",
            "worker `{}`: entrypoint {} does not exist",
            input.worker,
            input.main.display()
        ));
    }
    let (main_module, modules, exports) = if input.no_bundle {
        let collected = collect::collect(input)?;
        (collected.main_module, collected.modules, collected.exports)
    } else {
        let bundler = bundler.ok_or_else(|| miette!("esbuild was not prepared"))?;
        let bundled = bundler.bundle(input)?;
        let exports = exported_classes(&String::from_utf8_lossy(&bundled.modules[0].content));
        (bundled.main_module, bundled.modules, exports)
    };
    Ok(BuiltWorker {
        worker: input.worker.clone(),
        hash: modules_hash(&modules),
        main_module,
        modules,
        exports,
        entry: input.main.clone(),
    })
}

/// Hex SHA-256 over each module's name, content type and bytes, each
/// length-prefixed so that no two module lists hash alike.
pub fn modules_hash(modules: &[Module]) -> String {
    let mut hasher = Sha256::new();
    for module in modules {
        for part in [
            module.name.as_bytes(),
            module.content_type.as_bytes(),
            &module.content,
        ] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    hex::encode(hasher.finalize())
}
