//! The swarm's 1 Hz sampler: the timeline points of the report and the live progress line,
//! plus the totals at each end of the hold.

use super::{unix_ms, SAMPLE_EVERY};
use crate::report::{HoldWindow, TimelinePoint};
use crate::stats::{Counter, SwarmStats};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The totals at one end of the hold.
pub(super) struct HoldMark {
    unix_ms: u64,
    at: Instant,
    deltas: u64,
    messages: u64,
    bytes: u64,
}

impl HoldMark {
    pub(super) fn now(stats: &SwarmStats) -> Self {
        Self {
            unix_ms: unix_ms(),
            at: Instant::now(),
            deltas: stats.get(Counter::Deltas),
            messages: stats.get(Counter::Messages),
            bytes: stats.get(Counter::Bytes),
        }
    }

    pub(super) fn window_until(&self, end: &HoldMark) -> HoldWindow {
        let seconds = end.at.duration_since(self.at).as_secs_f64();
        let per_second = |count: u64| {
            if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            }
        };
        let deltas = end.deltas - self.deltas;
        let messages = end.messages - self.messages;
        let bytes = end.bytes - self.bytes;
        HoldWindow {
            started_unix_ms: self.unix_ms,
            ended_unix_ms: end.unix_ms,
            seconds,
            deltas,
            messages,
            bytes,
            deltas_per_s: per_second(deltas),
            messages_per_s: per_second(messages),
            bytes_per_s: per_second(bytes),
        }
    }
}

pub(super) fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    // The template is a constant; if indicatif ever rejected it the default style is kept.
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}") {
        bar.set_style(style);
    }
    bar
}

/// Samples the totals once a second until told to stop, then once more; returns the timeline.
pub(super) async fn sample(
    stats: Arc<SwarmStats>,
    bar: ProgressBar,
    target_bots: u64,
    mut stop_rx: oneshot::Receiver<()>,
) -> Vec<TimelinePoint> {
    let start = Instant::now();
    let mut timeline = Vec::new();
    let mut previous = HoldMark::now(&stats);
    let mut ticker = tokio::time::interval_at(start + SAMPLE_EVERY, SAMPLE_EVERY);
    loop {
        let stopping = tokio::select! {
            _ = ticker.tick() => false,
            _ = &mut stop_rx => true,
        };
        let current = HoldMark::now(&stats);
        let window = previous.window_until(&current);
        let latency = stats.take_interval_latency();
        let point = TimelinePoint {
            t_s: current.at.duration_since(start).as_secs_f64(),
            unix_ms: current.unix_ms,
            connected: stats.connected(),
            messages_per_s: window.messages_per_s,
            deltas_per_s: window.deltas_per_s,
            bytes_per_s: window.bytes_per_s,
            p50_ms: latency.p50_ms,
            p99_ms: latency.p99_ms,
            max_ms: latency.max_ms,
            errors: stats.errors(),
        };
        bar.set_message(format!(
            "connected {}/{target_bots} | {:.0} msg/s | p99 so far {:.1} ms | errors {}",
            point.connected,
            point.messages_per_s,
            stats.total_latency().p99_ms,
            point.errors,
        ));
        bar.tick();
        timeline.push(point);
        previous = current;
        if stopping {
            bar.finish_and_clear();
            return timeline;
        }
    }
}
