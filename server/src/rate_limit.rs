//! Per-session message rate limiting: a token bucket plus a kick rule for sustained abuse.
//!
//! The bucket allows `burst` messages at once and `rate` per second on average; excess
//! messages are dropped and the client is told (`rate_limited`, at most once a second so the
//! error itself cannot become a flood). A client that keeps sending at more than twice the
//! allowed rate for a whole second — `rate` drops within one second — is disconnected with
//! close code 4005: at that point it is broken or hostile, and every dropped message still
//! costs the server a decode.

use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

/// What to do with one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Within the limit.
    Allow,
    /// Over the limit: drop it; `notify` is true for the first drop in the current second.
    Drop {
        /// Whether to send the client a `rate_limited` error now.
        notify: bool,
    },
    /// Sustained abuse: close the session.
    Kick,
}

/// A token bucket for one session.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    refilled_at: Instant,
    window_start: Instant,
    dropped_in_window: u32,
    kick_after: u32,
}

impl RateLimiter {
    /// `rate_per_sec` messages per second on average, up to `burst` at once.
    pub fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        Self {
            rate_per_sec: f64::from(rate_per_sec),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            refilled_at: now,
            window_start: now,
            dropped_in_window: 0,
            kick_after: rate_per_sec.max(1),
        }
    }

    /// Accounts for one message arriving at `now`.
    pub fn check(&mut self, now: Instant) -> RateDecision {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.burst);
        self.refilled_at = now;
        if now.saturating_duration_since(self.window_start) >= WINDOW {
            self.window_start = now;
            self.dropped_in_window = 0;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return RateDecision::Allow;
        }
        self.dropped_in_window += 1;
        if self.dropped_in_window >= self.kick_after {
            return RateDecision::Kick;
        }
        RateDecision::Drop {
            notify: self.dropped_in_window == 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_excess_dropped_with_one_notice() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 3, start);
        for _ in 0..3 {
            assert_eq!(limiter.check(start), RateDecision::Allow);
        }
        assert_eq!(limiter.check(start), RateDecision::Drop { notify: true });
        assert_eq!(limiter.check(start), RateDecision::Drop { notify: false });
    }

    #[test]
    fn tokens_refill_at_the_configured_rate() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 1, start);
        assert_eq!(limiter.check(start), RateDecision::Allow);
        assert!(matches!(limiter.check(start), RateDecision::Drop { .. }));
        let later = start + Duration::from_millis(100);
        assert_eq!(limiter.check(later), RateDecision::Allow);
    }

    #[test]
    fn sustained_abuse_is_kicked() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(5, 1, start);
        let decisions: Vec<_> = (0..7).map(|_| limiter.check(start)).collect();
        assert_eq!(decisions.last(), Some(&RateDecision::Kick));
    }

    #[test]
    fn a_client_at_the_rate_is_never_dropped() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(20, 5, start);
        for step in 0..200 {
            let now = start + Duration::from_millis(50 * step);
            assert_eq!(limiter.check(now), RateDecision::Allow);
        }
    }
}
