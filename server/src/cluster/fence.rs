//! The fence every room checks before it sends a tick's frames.
//!
//! The node's lease task moves the deadline forward after each acknowledged renewal
//! ([`super::lease::LeaseTiming::fence_after`]); a room whose tick starts at or after the deadline
//! sends nothing more and closes its members with 4013 `room_moved`. The check is one atomic load
//! against the monotonic clock, done by the room itself, so a node resumed after a pause (SIGSTOP,
//! a VM freeze) cannot send one stale delta before the lease task has run again.
//!
//! A node outside a cluster has no lease: its fence never closes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

/// The instant all fences count from (monotonic, per process).
static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);

const NEVER: u64 = u64::MAX;

/// A shared, cheaply cloned fence deadline.
#[derive(Clone, Debug)]
pub struct Fence {
    /// Microseconds after [`ORIGIN`] at which rooms must stop; `NEVER` outside a cluster,
    /// `0` before the first lease is taken.
    deadline_us: Arc<AtomicU64>,
}

impl Default for Fence {
    fn default() -> Self {
        Self::never()
    }
}

fn micros_since_origin(instant: Instant) -> u64 {
    u64::try_from(instant.saturating_duration_since(*ORIGIN).as_micros()).unwrap_or(NEVER - 1)
}

impl Fence {
    /// A fence that never closes (a node outside a cluster).
    pub fn never() -> Self {
        // Pin the origin before any deadline is computed from an instant.
        LazyLock::force(&ORIGIN);
        Self {
            deadline_us: Arc::new(AtomicU64::new(NEVER)),
        }
    }

    /// Sets the deadline to `deadline`.
    pub fn close_at(&self, deadline: Instant) {
        self.deadline_us
            .store(micros_since_origin(deadline), Ordering::Release);
    }

    /// Closes the fence now.
    pub fn close(&self) {
        self.deadline_us.store(0, Ordering::Release);
    }

    /// Whether rooms must stop at `now`.
    pub fn is_closed_at(&self, now: Instant) -> bool {
        micros_since_origin(now) >= self.deadline_us.load(Ordering::Acquire)
    }

    /// Whether rooms must stop now.
    pub fn is_closed(&self) -> bool {
        self.is_closed_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_fence_closes_at_its_deadline_and_never_outside_a_cluster() {
        let now = Instant::now();
        let fence = Fence::never();
        assert!(!fence.is_closed_at(now + Duration::from_secs(3_600)));
        fence.close_at(now + Duration::from_millis(100));
        assert!(!fence.is_closed_at(now));
        assert!(fence.is_closed_at(now + Duration::from_millis(100)));
        fence.close();
        assert!(fence.is_closed_at(now));
    }
}
