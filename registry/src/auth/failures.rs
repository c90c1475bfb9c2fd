//! Refused requests, counted: each refusal is logged by the caller with the
//! counts this returns. Bad credentials and bad tokens are also counted per
//! client address, and a client that keeps presenting them waits before
//! its answer, longer each time up to a bound; its count is forgotten
//! after a quiet spell.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const QUIET: Duration = Duration::from_secs(300);
const FIRST_DELAY: Duration = Duration::from_millis(100);
pub const MAX_DELAY: Duration = Duration::from_secs(2);
const TRACKED_CAP: usize = 10_000;

#[derive(Default)]
pub struct Failures {
    clients: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    total: AtomicU64,
}

/// One refusal, as counted.
pub struct Counted {
    /// Refusals of this client in its current spell, this one included.
    pub client: u32,
    /// Refusals since start.
    pub total: u64,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Failures {
    pub fn record(&self, client: IpAddr) -> Counted {
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if clients.len() >= TRACKED_CAP {
            clients.retain(|_, (_, last)| now.duration_since(*last) < QUIET);
            if clients.len() >= TRACKED_CAP {
                clients.clear();
            }
        }
        let entry = clients.entry(client).or_insert((0, now));
        if now.duration_since(entry.1) >= QUIET {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        Counted {
            client: entry.0,
            total,
            delay: delay_for(entry.0),
        }
    }

    /// A refusal that earns no delay (an action denied to a caller who is
    /// who they say): counted in the total only.
    pub fn record_denial(&self) -> Counted {
        Counted {
            client: 0,
            total: self.total.fetch_add(1, Ordering::Relaxed) + 1,
            delay: Duration::ZERO,
        }
    }

    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// No wait for a first refusal, then 100 ms doubling up to [`MAX_DELAY`].
fn delay_for(count: u32) -> Duration {
    if count <= 1 {
        return Duration::ZERO;
    }
    let doublings = (count - 2).min(16);
    (FIRST_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_and_is_bounded() {
        let failures = Failures::default();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let delays: Vec<Duration> = (0..8).map(|_| failures.record(a).delay).collect();
        assert_eq!(delays[0], Duration::ZERO);
        assert_eq!(delays[1], FIRST_DELAY);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(delays[7], MAX_DELAY);
        assert_eq!(
            failures.record(b).delay,
            Duration::ZERO,
            "other clients unaffected"
        );
        assert_eq!(failures.total(), 9);
    }
}
