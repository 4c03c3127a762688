//! Capped exponential backoff with jitter (SPEC A12, A26). Nothing retries forever: every loop
//! is bounded by a deadline, and optionally by an attempt count.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// 0: no limit but the deadline.
    pub max_attempts: u32,
}

impl Backoff {
    /// The delay before attempt `attempt + 1` (attempt counts from 1): initial · 2^(n-1),
    /// capped, times a random factor in [0.8, 1.2).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)));
        let capped = exp.min(self.max);
        capped.mul_f64(rand::rng().random_range(0.8..1.2))
    }

    /// The wait before the next attempt, or `None` when attempts or time ran out.
    pub fn next_delay(&self, attempt: u32, deadline: Instant) -> Option<Duration> {
        if self.max_attempts > 0 && attempt >= self.max_attempts {
            return None;
        }
        let delay = self.delay(attempt);
        (Instant::now() + delay < deadline).then_some(delay)
    }

    /// Sleeps before the next attempt unless attempts or time ran out; false means give up.
    pub async fn wait(&self, attempt: u32, deadline: Instant) -> bool {
        match self.next_delay(attempt, deadline) {
            Some(delay) => {
                tokio::time::sleep(delay).await;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_jitters() {
        let b = Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(4),
            max_attempts: 5,
        };
        for _ in 0..50 {
            let d1 = b.delay(1).as_secs_f64();
            assert!((0.4..0.6).contains(&d1), "{d1}");
            let d3 = b.delay(3).as_secs_f64();
            assert!((1.6..2.4).contains(&d3), "{d3}");
            let d9 = b.delay(9).as_secs_f64();
            assert!((3.2..4.8).contains(&d9), "{d9}");
        }
    }

    #[tokio::test]
    async fn gives_up_on_attempts_and_deadline() {
        let b = Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
            max_attempts: 2,
        };
        let far = Instant::now() + Duration::from_secs(60);
        assert!(b.wait(1, far).await);
        assert!(!b.wait(2, far).await);
        assert!(!b.wait(1, Instant::now()).await);
        // Without an attempt limit only the deadline ends the retries.
        let unlimited = Backoff {
            max_attempts: 0,
            ..b
        };
        assert!(unlimited.next_delay(10_000, far).is_some());
        assert!(unlimited.next_delay(10_000, Instant::now()).is_none());
    }
}
