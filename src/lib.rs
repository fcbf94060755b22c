//! cfdo: a declarative deployer for Cloudflare Workers and Durable Objects.
//! The library holds every step of the pipeline; `main.rs` only dispatches.

pub mod apply;
pub mod build;
pub mod cli;
pub mod cloudflare;
pub mod commands;
pub mod deploy;
pub mod edge;
pub mod graph;
pub mod manifest;
pub mod plan;
pub mod render;
pub mod tools;
