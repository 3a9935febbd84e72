//! Swarm-wide resume figures that cannot wait for a bot's next flush: the `storm` scenario
//! must know the moment the last bot is back, so each settled resume is counted at once (one
//! atomic add; resumes are rare next to frames). Resume latency samples go through the bots'
//! buffered flush like input latency.

use super::latency_histogram;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Immediate resume counts and the resume latency histogram.
#[derive(Debug)]
pub(crate) struct ResumeTotals {
    /// Origin of `last_resume_us`.
    created: Instant,
    resumed: AtomicU64,
    settled: AtomicU64,
    /// Microseconds from `created` to the latest successful resume, plus one (0: none yet).
    last_resume_us: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

impl Default for ResumeTotals {
    fn default() -> Self {
        Self {
            created: Instant::now(),
            resumed: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            last_resume_us: AtomicU64::new(0),
            latency: Mutex::new(latency_histogram()),
        }
    }
}

impl ResumeTotals {
    /// Counts one ended resume attempt (after all its retries).
    pub(crate) fn settle(&self, resumed: bool) {
        if resumed {
            let since = u64::try_from(self.created.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.last_resume_us
                .fetch_max(since.saturating_add(1), Ordering::Relaxed);
            self.resumed.fetch_add(1, Ordering::Relaxed);
        }
        self.settled.fetch_add(1, Ordering::Relaxed);
    }

    /// `(resumed, settled)` so far.
    pub(crate) fn settled(&self) -> (u64, u64) {
        (
            self.resumed.load(Ordering::Relaxed),
            self.settled.load(Ordering::Relaxed),
        )
    }

    /// When the latest successful resume completed.
    pub(crate) fn last_resume_at(&self) -> Option<Instant> {
        match self.last_resume_us.load(Ordering::Relaxed) {
            0 => None,
            plus_one => Some(self.created + Duration::from_micros(plus_one - 1)),
        }
    }

    /// The resume latency histogram (microseconds).
    pub(crate) fn latency(&self) -> MutexGuard<'_, Histogram<u64>> {
        // Recording cannot leave the histogram half-updated in a way that matters for the
        // report, so a poisoned lock is still used.
        self.latency.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_resumes_are_counted_at_once_and_timed() {
        let totals = ResumeTotals::default();
        assert_eq!(totals.last_resume_at(), None);
        totals.settle(false);
        assert_eq!(totals.settled(), (0, 1));
        assert_eq!(totals.last_resume_at(), None);
        totals.settle(true);
        assert_eq!(totals.settled(), (1, 2));
        assert!(totals
            .last_resume_at()
            .is_some_and(|at| at >= totals.created));
    }
}
