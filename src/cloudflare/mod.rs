//! The Cloudflare API: wire types shared with the edge, and the one HTTP client.

pub mod types;
