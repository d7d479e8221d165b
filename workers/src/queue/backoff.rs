//! Retry delays: exponential backoff with jitter.
//!
//! The n-th failed attempt waits `base * 2^(n-1)`, capped, then scaled by a random factor in
//! [0.5, 1.0] ("equal jitter"): retries of jobs that failed together spread out instead of
//! hammering a recovering dependency in lockstep, and no retry comes sooner than half the nominal
//! delay.

use std::time::Duration;

pub const BASE: Duration = Duration::from_secs(2);
pub const CAP: Duration = Duration::from_secs(3600);

/// The nominal (un-jittered) delay after `attempt` failures (1-based).
pub fn nominal(attempt: i32, base: Duration, cap: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).clamp(0, 30) as u32;
    base.saturating_mul(2u32.saturating_pow(exp)).min(cap)
}

/// The delay to wait after `attempt` failures, with `unit` a random number in [0, 1).
pub fn delay(attempt: i32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let factor = 0.5 + 0.5 * unit.clamp(0.0, 1.0);
    nominal(attempt, base, cap).mul_f64(factor)
}

/// The delay with fresh randomness.
pub fn jittered(attempt: i32) -> Duration {
    delay(attempt, BASE, CAP, rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_per_attempt_up_to_the_cap() {
        let s = Duration::from_secs;
        assert_eq!(nominal(1, s(2), s(3600)), s(2));
        assert_eq!(nominal(2, s(2), s(3600)), s(4));
        assert_eq!(nominal(5, s(2), s(3600)), s(32));
        assert_eq!(nominal(20, s(2), s(3600)), s(3600));
        assert_eq!(nominal(i32::MAX, s(2), s(3600)), s(3600));
        assert_eq!(nominal(0, s(2), s(3600)), s(2), "a zero attempt count is treated as the first");
    }

    #[test]
    fn jitter_stays_between_half_and_full() {
        let s = Duration::from_secs;
        assert_eq!(delay(3, s(2), s(3600), 0.0), s(4));
        assert_eq!(delay(3, s(2), s(3600), 1.0), s(8));
        assert_eq!(delay(3, s(2), s(3600), 7.0), s(8), "out-of-range randomness is clamped");
        for _ in 0..1000 {
            let d = jittered(4);
            assert!(d >= s(8) && d <= s(16), "{d:?}");
        }
    }
}
