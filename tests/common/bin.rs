//! The cfdo binary for tests that run it as a user does.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where a test process keeps its copy of the binary; the name ends in its pid.
const COPY_PREFIX: &str = "cfdo-test-bin-";

/// The cfdo binary (`CFDO_TEST_BIN`, else the one cargo built), copied once per
/// test process so that a rebuild of the shared target directory during the
/// run cannot replace it.
pub fn cfdo_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(explicit) = std::env::var_os("CFDO_TEST_BIN") {
            return PathBuf::from(explicit);
        }
        let built = PathBuf::from(env!("CARGO_BIN_EXE_cfdo"));
        remove_stale_copies();
        let dir = std::env::temp_dir().join(format!("{COPY_PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the binary copy directory");
        let copy = dir.join("cfdo");
        std::fs::copy(&built, &copy).expect("copy the cfdo binary");
        copy
    })
}

/// Removes binary copies left by earlier test processes that have exited.
fn remove_stale_copies() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix(COPY_PREFIX) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
