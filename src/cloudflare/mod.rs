//! The Cloudflare API: wire types shared with the edge, and the one HTTP client.

pub mod budget;
pub mod client;
pub mod error;
pub mod retry;
pub mod types;

pub use client::{Client, ClientConfig, ClientStats, Prior};
pub use error::{ApiError, ApiErrorKind};
