//! When and how long to wait before trying a request again: connection
//! errors, 408, 429 (honouring `Retry-After`) and 5xx, with exponential
//! backoff, a bounded number of times.

use std::time::Duration;

/// The retry policy of a transport.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, None), Duration::from_millis(200));
        assert_eq!(p.delay(3, None), Duration::from_millis(800));
        assert_eq!(p.delay(30, None), Duration::from_secs(10));
        assert_eq!(p.delay(1, Some("3")), Duration::from_secs(3));
        assert_eq!(p.delay(1, Some("999")), Duration::from_secs(10));
        assert!(RetryPolicy::retryable_status(503) && RetryPolicy::retryable_status(429));
        assert!(!RetryPolicy::retryable_status(404) && !RetryPolicy::retryable_status(501));
    }
}
