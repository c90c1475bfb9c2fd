//! When and how long to wait before trying again: connection errors, 408,
//! 429 (honouring `Retry-After`) and 5xx, with exponential backoff to a
//! cap, for as long as a time budget lasts (one minute by default, so a
//! registry restart or a short outage is ridden out), never forever.
//! `RCTL_RETRY_TIMEOUT` (seconds) sets the budget.

use std::time::{Duration, Instant};

/// The environment variable that sets [`RetryPolicy::budget`], in seconds.
pub const BUDGET_ENV: &str = "RCTL_RETRY_TIMEOUT";

/// The retry policy of a transport.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long one operation keeps retrying, from its first failure: no
    /// retry starts after this much time has gone by.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            budget: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The default policy with the budget `RCTL_RETRY_TIMEOUT` gives, if any.
    pub fn from_env() -> RetryPolicy {
        let mut policy = RetryPolicy::default();
        if let Some(seconds) = std::env::var(BUDGET_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
        {
            policy.budget = Duration::from_secs_f64(seconds);
        }
        policy
    }

    /// Whether a response status is worth another attempt.
    pub fn retryable_status(status: u16) -> bool {
        matches!(status, 408 | 429) || (500..600).contains(&status) && status != 501
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 1),
    /// `Retry-After` (seconds) taking precedence, capped at `max_delay`.
    pub fn delay(&self, attempt: u32, retry_after: Option<&str>) -> Duration {
        if let Some(seconds) = retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
            return Duration::from_secs(seconds).min(self.max_delay);
        }
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// A fresh count of attempts for one operation.
    pub fn start(&self) -> Retries {
        Retries {
            policy: *self,
            attempt: 0,
            first_failure: None,
        }
    }
}

/// The attempts of one operation under a [`RetryPolicy`].
#[derive(Debug)]
pub struct Retries {
    policy: RetryPolicy,
    attempt: u32,
    first_failure: Option<Instant>,
}

impl Retries {
    /// The attempt that failed last (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Records a failed attempt; the wait before the next one, or `None`
    /// when the budget is spent.
    pub fn failed(&mut self, retry_after: Option<&str>) -> Option<Duration> {
        self.attempt = self.attempt.saturating_add(1);
        let first = *self.first_failure.get_or_insert_with(Instant::now);
        let delay = self.policy.delay(self.attempt, retry_after);
        (first.elapsed() + delay <= self.policy.budget).then_some(delay)
    }

    /// Progress was made: the next failure starts a new budget and backoff.
    pub fn progressed(&mut self) {
        self.attempt = 0;
        self.first_failure = None;
    }

    /// Waits `delay` after saying on stderr (a warning) what failed and what comes next.
    pub async fn wait(&self, what: &str, why: &str, delay: Duration) {
        tracing::warn!(
            "{what}: retrying in {:.1}s after {why} (attempt {})",
            delay.as_secs_f64(),
            self.attempt + 1
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, None), Duration::from_millis(200));
        assert_eq!(p.delay(3, None), Duration::from_millis(800));
        assert_eq!(p.delay(30, None), Duration::from_secs(5));
        assert_eq!(p.delay(1, Some("3")), Duration::from_secs(3));
        assert_eq!(p.delay(1, Some("999")), Duration::from_secs(5));
        assert!(RetryPolicy::retryable_status(503) && RetryPolicy::retryable_status(429));
        assert!(!RetryPolicy::retryable_status(404) && !RetryPolicy::retryable_status(501));
    }

    #[test]
    fn the_budget_bounds_the_retries_and_covers_thirty_seconds() {
        let p = RetryPolicy::default();
        // The waits alone of a default budget span more than 30 s.
        let mut total = Duration::ZERO;
        let mut attempt = 1;
        while total + p.delay(attempt, None) <= p.budget {
            total += p.delay(attempt, None);
            attempt += 1;
        }
        assert!(total >= Duration::from_secs(30), "{total:?}");
        let none = RetryPolicy {
            budget: Duration::ZERO,
            ..p
        };
        assert_eq!(none.start().failed(None), None);
        let mut retries = p.start();
        assert_eq!(retries.failed(None), Some(Duration::from_millis(200)));
        assert_eq!(retries.failed(None), Some(Duration::from_millis(400)));
        retries.progressed();
        assert_eq!(retries.failed(None), Some(Duration::from_millis(200)));
    }
}
