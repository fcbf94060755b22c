//! Builds each worker's modules: bundling with esbuild (or collecting modules
//! as they are), a content hash, and a scan of the classes the code exports.
