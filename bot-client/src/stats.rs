//! Counting what bots see, cheaply enough for ten thousand of them.
//!
//! Each bot counts into its own [`BotCounters`] (plain integers, no sharing) and buffers its
//! latency samples; four times a second, and when it ends, it [`BotCounters::flush`]es them
//! into the swarm-wide [`SwarmStats`]: one atomic add per counter and one short lock for the
//! latency histogram. Nothing takes a lock per message. Disconnects are rare, so they go straight to a
//! locked map keyed by [`DisconnectReason`].

use crate::ledger::Ledger;
use hdrhistogram::Histogram;
use ludus_protocol::CloseCode;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

mod counter;
mod resume_totals;
pub use counter::Counter;

/// Largest latency the histograms track, in microseconds (60 s). Larger samples are clamped.
const MAX_LATENCY_US: u64 = 60_000_000;

/// Latency samples a bot buffers before it must flush (bounds a bot's memory).
const MAX_BUFFERED_SAMPLES: usize = 256;

/// Why a bot's session ended. The report counts disconnects by [`DisconnectReason::key`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The server closed with a documented Ludus close code.
    Server(CloseCode),
    /// The server closed with a code Ludus does not document.
    UnknownCode(u16),
    /// The connection ended without a close frame (reset, EOF).
    NoCloseFrame,
    /// No frame arrived within the bot's read timeout.
    ReadTimeout,
    /// The bot left on purpose with `leave` (end of run or churn).
    ClientLeave,
    /// The bot dropped its socket on purpose without a close (churn).
    ClientDrop,
    /// The connection was lost and every resume attempt failed within the backoff's bounds.
    ResumeGaveUp,
}

impl DisconnectReason {
    /// The reason's key in the report: a close code's reason word (`server_shutdown`), or one of
    /// `code_<n>`, `no_close_frame`, `read_timeout`, `client_leave`, `client_drop`,
    /// `resume_gave_up`.
    pub fn key(self) -> String {
        match self {
            Self::Server(code) => code.reason().to_owned(),
            Self::UnknownCode(code) => format!("code_{code}"),
            Self::NoCloseFrame => "no_close_frame".to_owned(),
            Self::ReadTimeout => "read_timeout".to_owned(),
            Self::ClientLeave => "client_leave".to_owned(),
            Self::ClientDrop => "client_drop".to_owned(),
            Self::ResumeGaveUp => "resume_gave_up".to_owned(),
        }
    }

    /// Maps a received close code.
    pub fn from_close_code(code: u16) -> Self {
        CloseCode::from_code(code).map_or(Self::UnknownCode(code), Self::Server)
    }

    /// Whether the bot chose to end the session. Anything else counts as an error.
    pub fn is_planned(self) -> bool {
        matches!(self, Self::ClientLeave | Self::ClientDrop)
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// One bot's counts and latency samples since its last flush.
#[derive(Debug)]
pub struct BotCounters {
    counts: [u64; Counter::ALL.len()],
    latency_samples_us: Vec<u64>,
    /// Resume latencies (connect → first state frame); one per resume, so a few at most.
    resume_latency_samples_us: Vec<u64>,
}

// Not derived: arrays of more than 32 counts have no `Default`.
impl Default for BotCounters {
    fn default() -> Self {
        Self {
            counts: [0; Counter::ALL.len()],
            latency_samples_us: Vec::new(),
            resume_latency_samples_us: Vec::new(),
        }
    }
}

impl BotCounters {
    /// Adds `amount` to `counter`.
    pub fn add(&mut self, counter: Counter, amount: u64) {
        self.counts[counter.index()] += amount;
    }

    /// Adds one to `counter`.
    pub fn incr(&mut self, counter: Counter) {
        self.add(counter, 1);
    }

    /// The count since the last flush.
    pub fn get(&self, counter: Counter) -> u64 {
        self.counts[counter.index()]
    }

    /// Records one input's latency.
    pub fn record_latency(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_LATENCY_US);
        self.latency_samples_us
            .push(micros.clamp(1, MAX_LATENCY_US));
    }

    /// Records one resume's latency: from the start of the connect that resumed to the first
    /// state frame (delta or snapshot) after the resumed `welcome`.
    pub fn record_resume_latency(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_LATENCY_US);
        self.resume_latency_samples_us
            .push(micros.clamp(1, MAX_LATENCY_US));
    }

    /// Whether the sample buffer is full and the bot should flush now.
    pub fn must_flush(&self) -> bool {
        self.latency_samples_us.len() >= MAX_BUFFERED_SAMPLES
            || self.resume_latency_samples_us.len() >= MAX_BUFFERED_SAMPLES
    }

    /// The latency samples buffered since the last flush, in microseconds.
    #[cfg(test)]
    pub(crate) fn latency_samples_us(&self) -> &[u64] {
        &self.latency_samples_us
    }

    /// Moves everything into `stats` and starts from zero.
    pub fn flush(&mut self, stats: &SwarmStats) {
        for (total, count) in stats.counts.iter().zip(&mut self.counts) {
            if *count != 0 {
                total.fetch_add(*count, Ordering::Relaxed);
                *count = 0;
            }
        }
        if !self.latency_samples_us.is_empty() {
            let mut latency = stats.latency();
            for sample in self.latency_samples_us.drain(..) {
                latency.record(sample);
            }
        }
        if !self.resume_latency_samples_us.is_empty() {
            let mut resume_latency = stats.resume_latency_histogram();
            for sample in self.resume_latency_samples_us.drain(..) {
                resume_latency.saturating_record(sample);
            }
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl LatencySummary {
    pub(crate) fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            count: histogram.len(),
            mean_ms: histogram.mean() / 1000.0,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// The whole run's histogram plus the one for the current sampling interval.
#[derive(Debug)]
pub struct LatencyHistograms {
    total: Histogram<u64>,
    interval: Histogram<u64>,
}

/// An empty latency histogram (1 µs to [`MAX_LATENCY_US`], 3 significant figures).
pub(crate) fn latency_histogram() -> Histogram<u64> {
    // expect: the bounds are constants that hdrhistogram accepts (low >= 1, high >= 2 * low,
    // 3 significant figures).
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

impl LatencyHistograms {
    fn new() -> Self {
        let histogram = latency_histogram();
        Self {
            total: histogram.clone(),
            interval: histogram,
        }
    }

    fn record(&mut self, micros: u64) {
        // Samples are clamped into the histogram's range when buffered, so these cannot fail.
        self.total.saturating_record(micros);
        self.interval.saturating_record(micros);
    }
}

/// Swarm-wide totals, shared by every bot through an `Arc`.
#[derive(Debug)]
pub struct SwarmStats {
    counts: [AtomicU64; Counter::ALL.len()],
    connected: AtomicI64,
    latency: Mutex<LatencyHistograms>,
    disconnects: Mutex<BTreeMap<String, u64>>,
    /// Resume latency and the storm's completion clock.
    pub(crate) resumes: ResumeTotals,
    /// Cross-bot invariants and drop → back times.
    pub ledger: Ledger,
}

impl Default for SwarmStats {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            connected: AtomicI64::new(0),
            latency: Mutex::new(LatencyHistograms::new()),
            disconnects: Mutex::new(BTreeMap::new()),
            resumes: ResumeTotals::default(),
            ledger: Ledger::default(),
        }
    }
}

impl SwarmStats {
    /// The total of `counter` flushed so far.
    pub fn get(&self, counter: Counter) -> u64 {
        self.counts[counter.index()].load(Ordering::Relaxed)
    }

    /// Every counter by its report name.
    pub fn counters(&self) -> BTreeMap<&'static str, u64> {
        Counter::ALL
            .into_iter()
            .map(|counter| (counter.name(), self.get(counter)))
            .collect()
    }

    /// Marks one session as connected (after `welcome`).
    pub fn session_opened(&self) {
        self.connected.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks a session's connection as lost while it reconnects (not an end: no reason counted).
    pub fn connection_paused(&self) {
        self.connected.fetch_sub(1, Ordering::Relaxed);
    }

    /// Marks a paused session's connection as back (or the session as about to be closed).
    pub fn connection_restored(&self) {
        self.connected.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks one session as ended and counts why.
    pub fn session_closed(&self, reason: DisconnectReason) {
        self.connected.fetch_sub(1, Ordering::Relaxed);
        let mut disconnects = self
            .disconnects
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *disconnects.entry(reason.key()).or_default() += 1;
    }

    /// Sessions currently open.
    pub fn connected(&self) -> u64 {
        u64::try_from(self.connected.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Disconnects so far by reason key.
    pub fn disconnects(&self) -> BTreeMap<String, u64> {
        self.disconnects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Disconnects the bots did not choose (server closes, resets, timeouts).
    pub fn unplanned_disconnects(&self) -> u64 {
        let planned =
            [DisconnectReason::ClientLeave, DisconnectReason::ClientDrop].map(|r| r.key());
        self.disconnects()
            .iter()
            .filter(|(reason, _)| !planned.contains(reason))
            .map(|(_, count)| count)
            .sum()
    }

    /// Errors so far: failed joins, undecodable frames, ticks going backwards, resume
    /// mismatches, disconnects the bots did not choose, and the ledger's cross-bot violations
    /// (a bot's own order violations are in it too, so they are not counted twice). Gaps are
    /// not errors: resyncing is the protocol working.
    pub fn errors(&self) -> u64 {
        self.get(Counter::FailedJoins)
            + self.get(Counter::DecodeErrors)
            + self.get(Counter::TickRegressions)
            + self.get(Counter::ResumeMismatches)
            + self.unplanned_disconnects()
            + self.ledger.violations()
    }

    /// Latency over the whole run so far.
    pub fn total_latency(&self) -> LatencySummary {
        LatencySummary::of(&self.latency().total)
    }

    /// Latency since the previous call, then starts a new interval.
    pub fn take_interval_latency(&self) -> LatencySummary {
        let mut latency = self.latency();
        let summary = LatencySummary::of(&latency.interval);
        latency.interval.reset();
        summary
    }

    /// Resume latency over the whole run so far.
    pub fn resume_latency(&self) -> LatencySummary {
        LatencySummary::of(&self.resume_latency_histogram())
    }

    /// Records, at once (not at the next flush), that a resume attempt ended: `resumed` or not.
    /// The `storm` scenario watches these to know when every bot is back.
    pub fn resume_settled(&self, resumed: bool) {
        self.resumes.settle(resumed);
    }

    /// Resumes that succeeded and resume attempts that ended, so far (immediate counts).
    pub fn resumes_settled(&self) -> (u64, u64) {
        self.resumes.settled()
    }

    /// When the latest successful resume completed, if any.
    pub fn last_resume_at(&self) -> Option<std::time::Instant> {
        self.resumes.last_resume_at()
    }

    fn resume_latency_histogram(&self) -> MutexGuard<'_, Histogram<u64>> {
        self.resumes.latency()
    }

    fn latency(&self) -> MutexGuard<'_, LatencyHistograms> {
        // A panic while holding this lock cannot leave a histogram half-updated in a way that
        // matters for reporting, so a poisoned lock is still used.
        self.latency.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

use resume_totals::ResumeTotals;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_indices_match_their_position_in_all() {
        for (position, counter) in Counter::ALL.into_iter().enumerate() {
            assert_eq!(counter.index(), position, "{}", counter.name());
        }
    }

    #[test]
    fn flush_moves_counts_and_latency_into_the_swarm_totals() {
        let stats = SwarmStats::default();
        let mut bot = BotCounters::default();
        bot.add(Counter::Bytes, 100);
        bot.incr(Counter::Frames);
        bot.record_latency(Duration::from_millis(30));
        bot.flush(&stats);
        bot.incr(Counter::Frames);
        bot.flush(&stats);
        assert_eq!(stats.get(Counter::Bytes), 100);
        assert_eq!(stats.get(Counter::Frames), 2);
        assert_eq!(bot.get(Counter::Frames), 0);
        let latency = stats.take_interval_latency();
        assert_eq!(latency.count, 1);
        assert!((latency.p99_ms - 30.0).abs() < 0.1);
        assert_eq!(stats.take_interval_latency().count, 0);
        assert_eq!(stats.total_latency().count, 1);
    }

    #[test]
    fn planned_disconnects_are_not_errors() {
        let stats = SwarmStats::default();
        stats.session_opened();
        stats.session_opened();
        stats.session_opened();
        stats.session_closed(DisconnectReason::ClientLeave);
        stats.session_closed(DisconnectReason::from_close_code(4011));
        stats.session_closed(DisconnectReason::from_close_code(4999));
        assert_eq!(stats.connected(), 0);
        assert_eq!(stats.unplanned_disconnects(), 2);
        let disconnects = stats.disconnects();
        assert_eq!(disconnects.get("server_shutdown"), Some(&1));
        assert_eq!(disconnects.get("code_4999"), Some(&1));
    }
}
