//! The error every Cloudflare API call returns: which endpoint failed, the
//! HTTP status, Cloudflare's own error codes and messages, and what to do.

use std::fmt;

use super::types::{ApiMessage, codes};

/// What kind of failure an [`ApiError`] is; decides the advice given and
/// whether the client retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiErrorKind {
    /// Cloudflare refused the request (`success: false`, a 4xx): a validation error.
    Api,
    /// The token is invalid or lacks a permission (401, 403, code 10000).
    Auth,
    /// The thing asked for does not exist (404, code 10007 or 10090).
    NotFound,
    /// HTTP 429 after every attempt.
    RateLimited,
    /// HTTP 5xx after every attempt.
    Server,
    /// No response: connection refused or reset, DNS, TLS, timeout.
    Network,
    /// The response is not the JSON Cloudflare sends: an HTML page, truncated
    /// JSON, fields of the wrong type or missing.
    Malformed,
    /// The API asked to wait (`Retry-After`) longer than the configured ceiling.
    RetryAfterTooLong,
}

/// A failed Cloudflare API call. Never holds the API token: the endpoint is
/// the method and the path under `/client/v4`, and every message is scrubbed
/// of the token before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// `PUT /accounts/{account}/workers/scripts/{script}` (with the query, if any).
    pub endpoint: String,
    /// The HTTP status of the last response; `None` when there was none.
    pub status: Option<u16>,
    /// Cloudflare's `errors` from the envelope.
    pub errors: Vec<ApiMessage>,
    pub kind: ApiErrorKind,
    /// What went wrong when the envelope does not say it (network error,
    /// malformed body, Retry-After above the ceiling).
    pub detail: Option<String>,
    /// How many times the request was sent.
    pub attempts: u32,
}

impl ApiError {
    pub(crate) fn new(endpoint: &str, kind: ApiErrorKind) -> Self {
        ApiError {
            endpoint: endpoint.to_string(),
            status: None,
            errors: Vec::new(),
            kind,
            detail: None,
            attempts: 1,
        }
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Whether Cloudflare answered with this error code.
    pub fn has_code(&self, code: i64) -> bool {
        self.errors.iter().any(|e| e.code == code)
    }

    fn help_text(&self) -> Option<String> {
        let text = match self.kind {
            ApiErrorKind::Auth => "check that CLOUDFLARE_API_TOKEN is a valid API token with the \
                 \"Workers Scripts: Edit\" permission on the account in CLOUDFLARE_ACCOUNT_ID"
                .to_string(),
            ApiErrorKind::NotFound => {
                "check the name, and that CLOUDFLARE_ACCOUNT_ID is the account that holds it"
                    .to_string()
            }
            ApiErrorKind::RateLimited => {
                "Cloudflare allows 1200 API requests per 5 minutes per token; wait a few \
                 minutes and run again (a new run converges), or lower the client's rate budget"
                    .to_string()
            }
            ApiErrorKind::Server => {
                "Cloudflare's API is failing; run again later (a new run converges)".to_string()
            }
            ApiErrorKind::Network => {
                "check the network connection and CLOUDFLARE_API_BASE_URL, then run again"
                    .to_string()
            }
            ApiErrorKind::Malformed => {
                "the answer is not Cloudflare's JSON API response; check that \
                 CLOUDFLARE_API_BASE_URL ends with /client/v4 and that no proxy rewrites \
                 the answers"
                    .to_string()
            }
            ApiErrorKind::RetryAfterTooLong => {
                "the API is rate limiting this token; wait the time it asked for and run \
                 again (a new run converges)"
                    .to_string()
            }
            ApiErrorKind::Api => {
                if self.has_code(codes::MIGRATION_TAG) {
                    "the account's Durable Object migration tag changed since it was read; \
                     plan again"
                        .to_string()
                } else {
                    return None;
                }
            }
        };
        Some(text)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.endpoint)?;
        if let Some(status) = self.status {
            write!(f, " with HTTP {status}")?;
        }
        let mut sep = ": ";
        for e in &self.errors {
            write!(f, "{sep}{} [code: {}]", e.message, e.code)?;
            sep = "; ";
        }
        if let Some(detail) = &self.detail {
            write!(f, "{sep}{detail}")?;
        }
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl miette::Diagnostic for ApiError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let code = match self.kind {
            ApiErrorKind::Api => "cfdo::api",
            ApiErrorKind::Auth => "cfdo::api::auth",
            ApiErrorKind::NotFound => "cfdo::api::not_found",
            ApiErrorKind::RateLimited => "cfdo::api::rate_limited",
            ApiErrorKind::Server => "cfdo::api::server",
            ApiErrorKind::Network => "cfdo::api::network",
            ApiErrorKind::Malformed => "cfdo::api::malformed",
            ApiErrorKind::RetryAfterTooLong => "cfdo::api::retry_after_too_long",
        };
        Some(Box::new(code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help_text()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_renders_cloudflare_errors_with_their_codes_and_the_endpoint() {
        let mut e = ApiError::new("PUT /accounts/acc/workers/scripts/web", ApiErrorKind::Api)
            .with_status(400);
        e.errors = vec![
            ApiMessage {
                code: 10021,
                message: "Uncaught SyntaxError".into(),
            },
            ApiMessage {
                code: 10079,
                message: "Migration tag precondition failed".into(),
            },
        ];
        e.attempts = 2;
        assert_eq!(
            e.to_string(),
            "PUT /accounts/acc/workers/scripts/web failed with HTTP 400: \
             Uncaught SyntaxError [code: 10021]; Migration tag precondition failed \
             [code: 10079] (after 2 attempts)"
        );
        assert!(e.has_code(10079));
        assert!(!e.has_code(10007));
        let help = miette::Diagnostic::help(&e).map(|h| h.to_string());
        assert_eq!(
            help.as_deref(),
            Some(
                "the account's Durable Object migration tag changed since it was read; plan again"
            )
        );
    }
}
