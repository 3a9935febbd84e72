//! When a bot reconnects after its connection dropped, and what a resume's answer means. No I/O
//! and no clock: the caller passes elapsed time and random numbers, so the schedule is
//! unit-tested exactly.
//!
//! A bot reconnects only after a drop it did not cause with a close (reset, EOF, read timeout,
//! or a socket it cut on purpose to test resume). It waits [`Backoff::next_delay`] before each
//! attempt: exponential from [`BackoffPolicy::first_delay`] up to [`BackoffPolicy::max_delay`],
//! with jitter so a thousand bots cut at once do not all knock on the same millisecond, and it
//! gives up after [`BackoffPolicy::max_attempts`] attempts or [`BackoffPolicy::max_total`]
//! since the drop, whichever comes first. The total stays below the server's default resume
//! window (30 s): past it, the seat is gone anyway.

use ludus_protocol::ErrorCode;
use std::fmt;
use std::time::Duration;

/// The reconnect schedule's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Upper bound of the first wait. Short: most drops are one lost socket, and the server
    /// answers a resume at once.
    pub first_delay: Duration,
    /// Largest upper bound of one wait; the bound doubles per attempt until it reaches this.
    pub max_delay: Duration,
    /// Attempts at most (each is connect + `hello` + wait for the answer).
    pub max_attempts: u32,
    /// Longest time from the drop to the start of the last attempt.
    pub max_total: Duration,
}

impl Default for BackoffPolicy {
    /// 50 ms doubling to 2 s, 20 s in all (under the 30 s default resume window, leaving time
    /// for the last attempt's own join timeout to matter less than the window), and at most 40
    /// attempts: enough that the time bound decides even when every attempt fails at once (a
    /// dead node refuses connections immediately, and its rooms come back elsewhere only after
    /// a lease).
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            max_attempts: 40,
            max_total: Duration::from_secs(20),
        }
    }
}

/// The reconnect schedule of one drop.
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempts: u32,
}

impl Backoff {
    /// A fresh schedule (call again for the next drop).
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            attempts: 0,
        }
    }

    /// Attempts handed out so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How long to wait before the next attempt, or `None` when the bot must give up.
    /// `since_drop` is the time since the connection dropped; `jitter` is a uniform random
    /// number in `0..1` (clamped). The wait is "equal jitter": between half and all of the
    /// exponential bound, so it never collapses to zero and never exceeds the bound.
    pub fn next_delay(&mut self, since_drop: Duration, jitter: f64) -> Option<Duration> {
        if self.attempts >= self.policy.max_attempts {
            return None;
        }
        let exponent = self.attempts.min(20);
        let bound = self
            .policy
            .first_delay
            .saturating_mul(1 << exponent)
            .min(self.policy.max_delay);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let delay = bound.mul_f64(0.5 + 0.5 * jitter);
        if since_drop.saturating_add(delay) > self.policy.max_total {
            return None;
        }
        self.attempts += 1;
        Some(delay)
    }
}

/// Why the server refused a resume: the `error` code before close 4014.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResumeRefusal {
    /// `resume_expired`: the resume window passed; the player left the room.
    Expired,
    /// `resume_invalid`: the token is not one the server issued.
    Invalid,
    /// `resume_wrong_room`: the token is for another room.
    WrongRoom,
    /// `resume_epoch_changed`: the room was re-created since.
    EpochChanged,
    /// `resume_used`: the token was already used.
    Used,
}

impl ResumeRefusal {
    /// The error code the server sent.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Expired => ErrorCode::ResumeExpired,
            Self::Invalid => ErrorCode::ResumeInvalid,
            Self::WrongRoom => ErrorCode::ResumeWrongRoom,
            Self::EpochChanged => ErrorCode::ResumeEpochChanged,
            Self::Used => ErrorCode::ResumeUsed,
        }
    }

    /// The refusal an error code stands for, if it is a resume refusal.
    pub fn from_code(code: ErrorCode) -> Option<Self> {
        Some(match code {
            ErrorCode::ResumeExpired => Self::Expired,
            ErrorCode::ResumeInvalid => Self::Invalid,
            ErrorCode::ResumeWrongRoom => Self::WrongRoom,
            ErrorCode::ResumeEpochChanged => Self::EpochChanged,
            ErrorCode::ResumeUsed => Self::Used,
            _ => return None,
        })
    }
}

impl fmt::Display for ResumeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code().as_str())
    }
}

/// How the server took the session back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeOutcome {
    /// `[welcome(resumed), delta, ...]`: the missed deltas, applied to the mirror kept.
    Delta,
    /// `[welcome(resumed), snapshot]`: the history no longer reached back; state replaced.
    Snapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn delays_double_up_to_the_cap_and_stay_within_their_jitter_band() {
        let mut backoff = Backoff::new(BackoffPolicy::default());
        let upper: Vec<_> = (0..8)
            .map(|_| backoff.next_delay(Duration::ZERO, 1.0))
            .collect();
        let expected = [50, 100, 200, 400, 800, 1600, 2000, 2000].map(|m| Some(ms(m)));
        assert_eq!(upper, expected);
        let mut backoff = Backoff::new(BackoffPolicy::default());
        assert_eq!(backoff.next_delay(Duration::ZERO, 0.0), Some(ms(25)));
        assert_eq!(backoff.next_delay(Duration::ZERO, f64::NAN), Some(ms(75)));
        assert_eq!(backoff.next_delay(Duration::ZERO, 7.0), Some(ms(200)));
    }

    #[test]
    fn attempts_are_bounded_in_count() {
        let mut backoff = Backoff::new(BackoffPolicy::default());
        let granted = std::iter::from_fn(|| backoff.next_delay(Duration::ZERO, 0.5)).count();
        assert_eq!(granted, 40);
        assert_eq!(backoff.attempts(), 40);
        assert_eq!(backoff.next_delay(Duration::ZERO, 0.5), None);
    }

    #[test]
    fn attempts_are_bounded_in_total_time() {
        let mut backoff = Backoff::new(BackoffPolicy::default());
        assert_eq!(backoff.next_delay(ms(19_960), 1.0), None);
        assert_eq!(backoff.next_delay(ms(19_950), 1.0), Some(ms(50)));
        // A schedule whose own waits add up past the budget stops before it.
        let mut backoff = Backoff::new(BackoffPolicy::default());
        let mut since_drop = Duration::ZERO;
        while let Some(delay) = backoff.next_delay(since_drop, 1.0) {
            // Each attempt also costs time (a join timeout, at worst).
            since_drop += delay + Duration::from_secs(3);
        }
        assert!(since_drop <= BackoffPolicy::default().max_total + ms(5_000));
        assert!(backoff.attempts() < 10);
    }

    #[test]
    fn only_resume_codes_are_refusals() {
        assert_eq!(
            ResumeRefusal::from_code(ErrorCode::ResumeUsed),
            Some(ResumeRefusal::Used)
        );
        assert_eq!(
            ResumeRefusal::from_code(ErrorCode::ResumeEpochChanged),
            Some(ResumeRefusal::EpochChanged)
        );
        assert_eq!(ResumeRefusal::from_code(ErrorCode::RoomFull), None);
    }
}
