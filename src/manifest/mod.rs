//! The manifest: TOML text to a validated model, with spans for diagnostics.
