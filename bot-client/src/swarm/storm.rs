//! `storm`'s hold: every bot in play, then every connection cut at once without a close (as
//! when a Wi-Fi access point or a NAT drops), then the wait until every bot has resumed or
//! given up, then a short hold to see the room carry on.
//!
//! The wait is bounded by the bots' own reconnect bounds (backoff total + one join timeout +
//! a margin), so a server that never answers still ends the run. The figures say how many bots
//! were cut, how many resumed, and the time from the cut to the last resume.

use super::{unix_ms, Interrupt, Swarm};
use crate::bot::JOIN_TIMEOUT;
use crate::cli::StormArgs;
use crate::reconnect::BackoffPolicy;
use crate::stats::SwarmStats;
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

/// How often the storm checks whether every bot is back. The time to the last resume does not
/// depend on it (each resume is timestamped when it completes).
const POLL_EVERY: Duration = Duration::from_millis(10);

/// Margin over the bots' own reconnect bounds before the storm stops waiting.
const WAIT_MARGIN: Duration = Duration::from_secs(2);

/// What the storm measured (the `storm` field of the report).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StormFigures {
    /// Bots in play whose connection was cut.
    pub bots_cut: u64,
    /// Of those, resumes that completed (resumed `welcome` + first state).
    pub resumed: u64,
    /// Resume attempts that ended without resuming (refused, gave up, stopped).
    pub not_resumed: u64,
    /// Every cut bot resumed.
    pub all_resumed: bool,
    /// When the connections were cut, in Unix milliseconds (null when the storm never cut), so
    /// a benchmark can line the storm up with the server's own CPU samples.
    pub cut_unix_ms: Option<u64>,
    /// From the cut to the last completed resume, in milliseconds (null when none resumed).
    pub time_to_last_resume_ms: Option<f64>,
    /// Whether the wait for resumes hit its bound (some bots neither resumed nor gave up).
    pub wait_timed_out: bool,
}

/// Holds `before_s`, cuts every bot, waits for the resumes, holds `after_s`.
pub(super) async fn hold(
    swarm: &mut Swarm,
    storm: &StormArgs,
    stats: &SwarmStats,
    interrupt: &mut Interrupt,
) -> StormFigures {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs_f64(storm.before_s)) => {}
        () = interrupt.wait() => return StormFigures::default(),
    }
    swarm.prune();
    let bots_cut = swarm.bots.len() as u64;
    let (resumed_before, settled_before) = stats.resumes_settled();
    let cut_at = Instant::now();
    let cut_unix_ms = unix_ms();
    for position in 0..swarm.bots.len() {
        swarm.cut(position);
    }
    let wait_limit = BackoffPolicy::default().max_total + JOIN_TIMEOUT + WAIT_MARGIN;
    let deadline = cut_at + wait_limit;
    let mut poll = tokio::time::interval(POLL_EVERY);
    let mut wait_timed_out = false;
    loop {
        let (_, settled) = stats.resumes_settled();
        let ended = swarm
            .bots
            .iter()
            .filter(|bot| bot.task.is_finished())
            .count() as u64;
        // A bot that ended without settling (no resume token) would never be counted.
        if settled - settled_before + ended >= bots_cut {
            break;
        }
        if Instant::now() >= deadline {
            wait_timed_out = true;
            break;
        }
        tokio::select! {
            _ = poll.tick() => {}
            () = interrupt.wait() => break,
        }
    }
    let (resumed_after, settled_after) = stats.resumes_settled();
    let resumed = resumed_after - resumed_before;
    let not_resumed = (settled_after - settled_before).saturating_sub(resumed);
    let time_to_last_resume_ms = stats
        .last_resume_at()
        .filter(|_| resumed > 0)
        .map(|at| tokio::time::Instant::from_std(at).saturating_duration_since(cut_at))
        .map(|elapsed| elapsed.as_secs_f64() * 1000.0);
    tracing::info!(bots_cut, resumed, not_resumed, "storm: resumes settled");
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs_f64(storm.after_s)) => {}
        () = interrupt.wait() => {}
    }
    StormFigures {
        bots_cut,
        resumed,
        not_resumed,
        all_resumed: bots_cut > 0 && resumed == bots_cut,
        cut_unix_ms: Some(cut_unix_ms),
        time_to_last_resume_ms,
        wait_timed_out,
    }
}
