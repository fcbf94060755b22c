//! The local edge: a Cloudflare-API-compatible control plane that keeps its
//! state on disk and runs every deployed Worker in workerd.

use miette::Result;

use crate::cli::{EdgeArgs, GlobalArgs};
use crate::commands::Outcome;

/// Runs one `cfdo edge …` command.
pub fn run(_args: &EdgeArgs, _global: &GlobalArgs) -> Result<Outcome> {
    Err(miette::miette!(
        "the local edge is not available in this build"
    ))
}
