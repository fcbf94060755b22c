//! When and how long the client waits before trying a request again:
//! exponential backoff with full jitter, and the `Retry-After` header.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter: attempt `n` (1-based, the attempt
/// that just failed) waits a uniformly random time between zero and
/// `min(cap, base * 2^(n-1))`, so parallel clients that failed together do
/// not come back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The upper bound of the wait after the failed attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(20);
        self.base
            .checked_mul(1u32 << shift)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// A random wait in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt).as_millis() as u64;
        if ceiling == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rand::rng().random_range(0..=ceiling))
    }
}

/// Parses a `Retry-After` value given in seconds (`"30"`, `"1.5"`).
/// The HTTP-date form is not used by Cloudflare's API; it yields `None`, and
/// the caller falls back to its backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    match value.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::try_from_secs_f64(secs).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(2),
        };
        assert_eq!(b.ceiling(1), Duration::from_millis(250));
        assert_eq!(b.ceiling(2), Duration::from_millis(500));
        assert_eq!(b.ceiling(3), Duration::from_millis(1000));
        assert_eq!(b.ceiling(4), Duration::from_secs(2));
        assert_eq!(b.ceiling(40), Duration::from_secs(2));
        for attempt in 1..10 {
            assert!(b.delay(attempt) <= b.ceiling(attempt));
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        assert_eq!(parse_retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("1e400"), None);
    }
}
