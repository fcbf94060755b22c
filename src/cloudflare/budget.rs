//! The client-side request budget: a sliding window shared by every clone of
//! the client, so parallel uploads never exceed Cloudflare's per-token limit.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// How many requests may start within a window of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateBudget {
    pub requests: u32,
    pub per: Duration,
}

impl RateBudget {
    /// Cloudflare's documented limit: 1200 requests per 5 minutes per token.
    pub const CLOUDFLARE: RateBudget = RateBudget {
        requests: 1200,
        per: Duration::from_secs(300),
    };

    pub fn new(requests: u32, per: Duration) -> Self {
        RateBudget { requests, per }
    }
}

impl Default for RateBudget {
    fn default() -> Self {
        RateBudget::CLOUDFLARE
    }
}

/// The live state of a [`RateBudget`]: the start times of the requests made
/// within the last window. Waiters queue on a fair mutex, so they are served
/// in the order they asked.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    budget: RateBudget,
    recent: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    /// `budget.requests` must be at least 1 (checked by `Client::new`).
    pub(crate) fn new(budget: RateBudget) -> Self {
        RateLimiter {
            budget,
            recent: Mutex::new(VecDeque::with_capacity(budget.requests.min(4096) as usize)),
        }
    }

    /// Waits until one more request fits in the window, takes its slot and
    /// returns how long it waited.
    pub(crate) async fn acquire(&self) -> Duration {
        let start = Instant::now();
        let mut recent = self.recent.lock().await;
        loop {
            let now = Instant::now();
            while let Some(&oldest) = recent.front() {
                if now.duration_since(oldest) >= self.budget.per {
                    recent.pop_front();
                } else {
                    break;
                }
            }
            if recent.len() < self.budget.requests.max(1) as usize {
                recent.push_back(now);
                return start.elapsed();
            }
            match recent.front() {
                Some(&oldest) => tokio::time::sleep_until(oldest + self.budget.per).await,
                None => {
                    recent.push_back(now);
                    return start.elapsed();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_request_past_the_budget_waits_for_the_window() {
        let limiter = RateLimiter::new(RateBudget::new(2, Duration::from_secs(10)));
        assert_eq!(limiter.acquire().await, Duration::ZERO);
        assert_eq!(limiter.acquire().await, Duration::ZERO);
        let waited = limiter.acquire().await;
        assert_eq!(waited, Duration::from_secs(10));
    }
}
