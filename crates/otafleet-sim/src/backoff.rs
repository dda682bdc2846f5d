//! How a device waits when the server is away (a restart, an outage): exponential back-off with
//! "equal jitter", the policy of the reference client (`firmware/src/core/ofc_backoff.h`). The
//! first wait is the check-in interval, every failure in a row doubles it up to a cap, and each
//! wait is drawn uniformly from the upper half of its ceiling, so a fleet that lost its server at
//! one moment does not come back in lock-step (and does not hammer it once it is back).

use std::time::Duration;

use rand::Rng;

/// The longest wait between two tries, unless the interval itself is longer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    /// Failures in a row since the last success.
    failures: u32,
}

impl Backoff {
    /// Back-off from `interval`, capped at [`MAX_BACKOFF`] (or `interval` when longer).
    pub fn new(interval: Duration) -> Self {
        Backoff {
            base: interval,
            cap: MAX_BACKOFF.max(interval),
            failures: 0,
        }
    }

    /// The wait before the next try; every call counts one more failure.
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.cap);
        self.failures = self.failures.saturating_add(1);
        ceiling.mul_f64(0.5 + 0.5 * rand::thread_rng().gen::<f64>())
    }

    /// Back to the first wait (the server answered).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_interval_up_to_the_cap_with_equal_jitter() {
        let mut b = Backoff::new(Duration::from_secs(2));
        let ceilings = [2, 4, 8, 16, 30, 30, 30];
        for c in ceilings {
            let d = b.next_wait();
            let c = Duration::from_secs(c);
            assert!(d >= c / 2 && d <= c, "{d:?} within [{:?}, {c:?}]", c / 2);
        }
        assert_eq!(b.failures(), 7);
        b.reset();
        assert!(b.next_wait() <= Duration::from_secs(2));
        // An interval above the cap is the cap.
        let mut slow = Backoff::new(Duration::from_secs(60));
        for _ in 0..5 {
            assert!(slow.next_wait() <= Duration::from_secs(60));
        }
    }
}
