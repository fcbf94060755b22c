//! Finds the npm-distributed programs cfdo runs (workerd, esbuild): an explicit
//! environment variable first, then PATH, then a pinned version that cfdo
//! installs once with npm into its cache directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use fs4::fs_std::FileExt;
use miette::{IntoDiagnostic, Result, WrapErr, miette};

/// An external program shipped on the npm registry as a native binary.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// The command's name, as looked up on PATH.
    pub name: &'static str,
    /// The variable that names the binary explicitly.
    pub env_var: &'static str,
    /// The npm package cfdo installs, and its pinned version.
    pub package: &'static str,
    pub version: &'static str,
    /// The platform package inside `node_modules` whose `bin/` holds the native binary.
    pub native_package: &'static str,
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const PLATFORM: (&str, &str) = ("@cloudflare/workerd-linux-64", "@esbuild/linux-x64");
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
const PLATFORM: (&str, &str) = ("@cloudflare/workerd-linux-arm64", "@esbuild/linux-arm64");
#[cfg(all(target_os = "macos", target_arch = "x86_64"))]
const PLATFORM: (&str, &str) = ("@cloudflare/workerd-darwin-64", "@esbuild/darwin-x64");
#[cfg(all(target_os = "macos", target_arch = "aarch64"))]
const PLATFORM: (&str, &str) = ("@cloudflare/workerd-darwin-arm64", "@esbuild/darwin-arm64");

/// workerd, Cloudflare's Workers runtime. Its version's date is the newest
/// compatibility date it accepts.
pub const WORKERD: Tool = Tool {
    name: "workerd",
    env_var: "CFDO_WORKERD",
    package: "workerd",
    version: "1.20261123.1",
    native_package: PLATFORM.0,
};

/// esbuild, the bundler.
pub const ESBUILD: Tool = Tool {
    name: "esbuild",
    env_var: "CFDO_ESBUILD",
    package: "esbuild",
    version: "0.28.2",
    native_package: PLATFORM.1,
};

impl Tool {
    fn binary_in(&self, node_modules: &Path) -> PathBuf {
        node_modules
            .join(self.native_package)
            .join("bin")
            .join(self.name)
    }

    /// The binary to run: `$ENV_VAR`, then PATH, then the cached pinned install
    /// (installing it with npm on first use).
    pub fn locate(&self) -> Result<PathBuf> {
        if let Some(explicit) = std::env::var_os(self.env_var).filter(|v| !v.is_empty()) {
            let path = PathBuf::from(explicit);
            if path.is_file() {
                return Ok(path);
            }
            return Err(miette!(
                help = format!(
                    "point {} at the {} binary, or unset it so cfdo installs {}@{}",
                    self.env_var, self.name, self.package, self.version
                ),
                "{} is set to {}, which is not a file",
                self.env_var,
                path.display()
            ));
        }
        if let Some(found) = find_on_path(self.name) {
            return Ok(found);
        }
        self.installed()
    }

    /// The pinned version in cfdo's cache, installed with npm if missing.
    pub fn installed(&self) -> Result<PathBuf> {
        let root = cache_dir()
            .join("npm")
            .join(format!("{}@{}", self.package, self.version));
        let binary = self.binary_in(&root.join("node_modules"));
        if binary.is_file() {
            return Ok(binary);
        }
        std::fs::create_dir_all(cache_dir().join("npm"))
            .into_diagnostic()
            .wrap_err_with(|| {
                format!(
                    "cannot create cfdo's cache directory {}",
                    cache_dir().display()
                )
            })?;
        // One installer at a time per tool; others wait, then find it installed.
        let lock_path = cache_dir()
            .join("npm")
            .join(format!("{}@{}.lock", self.package, self.version));
        let lock = std::fs::File::create(&lock_path).into_diagnostic()?;
        lock.lock_exclusive().into_diagnostic()?;
        if binary.is_file() {
            return Ok(binary);
        }
        eprintln!(
            "cfdo: installing {}@{} with npm into {} (first use only)",
            self.package,
            self.version,
            root.display()
        );
        let staging = root.with_extension(format!("partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).into_diagnostic()?;
        let output = Command::new(npm_command())
            .args([
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--no-package-lock",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(&staging)
            .arg(format!("{}@{}", self.package, self.version))
            .output()
            .map_err(|e| {
                miette!(
                    help = format!(
                        "install Node.js (which brings npm), or set {} to a {} binary",
                        self.env_var, self.name
                    ),
                    "cannot run npm to install {}@{}: {e}",
                    self.package,
                    self.version
                )
            })?;
        if !output.status.success() {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(miette!(
                help = format!(
                    "check that the npm registry is reachable, or set {} to a {} binary",
                    self.env_var, self.name
                ),
                "npm could not install {}@{}:\n{}",
                self.package,
                self.version,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        if !self.binary_in(&staging.join("node_modules")).is_file() {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(miette!(
                "npm installed {}@{} but its native binary {} is missing: this platform may not be supported",
                self.package,
                self.version,
                self.native_package
            ));
        }
        let _ = std::fs::remove_dir_all(&root);
        std::fs::rename(&staging, &root).into_diagnostic()?;
        Ok(binary)
    }
}

fn npm_command() -> String {
    std::env::var("CFDO_NPM").unwrap_or_else(|_| "npm".to_string())
}

/// cfdo's cache: `$CFDO_CACHE_DIR`, else the platform cache directory.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CFDO_CACHE_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("cfdo")
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
