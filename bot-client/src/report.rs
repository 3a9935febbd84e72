//! What a run produced: the figures, the gate verdict, a plain-text summary and the JSON file.
//!
//! The JSON field names are a contract with scripts (`scripts/bench` reads them) and are
//! documented in `bot-client/README.md`; add fields, never rename them.

use crate::error::ScenarioError;
use crate::ledger::LedgerSummary;
use crate::stats::{Counter, LatencySummary, SwarmStats};
use crate::swarm::{unix_ms, Gates, RunOptions, Scenario, StormFigures};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// One sample of the swarm, taken once a second.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelinePoint {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Wall-clock time of the sample (Unix milliseconds), to line up with server samples.
    pub unix_ms: u64,
    /// Sessions open.
    pub connected: u64,
    /// Server messages received per second since the previous sample.
    pub messages_per_s: f64,
    /// Deltas received per second since the previous sample.
    pub deltas_per_s: f64,
    /// Frame bytes received per second since the previous sample.
    pub bytes_per_s: f64,
    /// Median input latency of the samples since the previous sample (0 if none).
    pub p50_ms: f64,
    /// 99th percentile input latency since the previous sample (0 if none).
    pub p99_ms: f64,
    /// Largest input latency since the previous sample (0 if none).
    pub max_ms: f64,
    /// Errors so far (cumulative).
    pub errors: u64,
}

/// Throughput over the hold: after the ramp-up and the joins settled, before the drain.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HoldWindow {
    /// When the hold started (Unix milliseconds).
    pub started_unix_ms: u64,
    /// When the hold ended (Unix milliseconds).
    pub ended_unix_ms: u64,
    /// Its length in seconds.
    pub seconds: f64,
    /// Deltas received during the hold.
    pub deltas: u64,
    /// Server messages received during the hold.
    pub messages: u64,
    /// Frame bytes received during the hold.
    pub bytes: u64,
    /// `deltas / seconds`.
    pub deltas_per_s: f64,
    /// `messages / seconds`.
    pub messages_per_s: f64,
    /// `bytes / seconds`.
    pub bytes_per_s: f64,
}

/// How bots took their sessions back after dropped connections.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ResumeSummary {
    /// Connections the bots cut on purpose (`soak --drop-fraction`, `storm`).
    pub drops_injected: u64,
    /// `hello`s sent with `resume` (retries and redirects included).
    pub attempts: u64,
    /// Resumes answered with the missed deltas.
    pub by_delta: u64,
    /// Resumes answered with a snapshot.
    pub by_snapshot: u64,
    /// Of those, resumes into a room restored on another node after its node failed.
    pub restored: u64,
    /// Refused resumes by error code (`resume_expired`, ...); each bot then took a new seat.
    pub refused: BTreeMap<String, u64>,
    /// Drops after which every attempt failed within the backoff's bounds.
    pub gave_up: u64,
    /// Drops of sessions without a resume token (resume disabled for the room).
    pub unavailable: u64,
    /// Resume answers that did not continue the mirror; must be 0.
    pub mismatches: u64,
    /// Gaps over the whole run (deltas that did not apply); must be 0 in resume tests.
    pub gaps: u64,
    /// Resume latency: connect start → first state message after the resumed `welcome`.
    pub latency: LatencySummary,
}

impl ResumeSummary {
    fn of(stats: &SwarmStats) -> Self {
        let refused = [
            Counter::ResumeRefusedExpired,
            Counter::ResumeRefusedInvalid,
            Counter::ResumeRefusedWrongRoom,
            Counter::ResumeRefusedEpochChanged,
            Counter::ResumeRefusedUsed,
        ]
        .into_iter()
        .filter(|counter| stats.get(*counter) > 0)
        .map(|counter| {
            let code = counter.name().trim_start_matches("resume_refused_");
            (format!("resume_{code}"), stats.get(counter))
        })
        .collect();
        Self {
            drops_injected: stats.get(Counter::DropsInjected),
            attempts: stats.get(Counter::ResumeAttempts),
            by_delta: stats.get(Counter::ResumedByDelta),
            by_snapshot: stats.get(Counter::ResumedBySnapshot),
            restored: stats.get(Counter::ResumedRestored),
            refused,
            gave_up: stats.get(Counter::ResumeGaveUp),
            unavailable: stats.get(Counter::ResumeUnavailable),
            mismatches: stats.get(Counter::ResumeMismatches),
            gaps: stats.get(Counter::Gaps),
            latency: stats.resume_latency(),
        }
    }
}

/// The verdict of the gates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateVerdict {
    /// The thresholds given.
    #[serde(flatten)]
    pub gates: Gates,
    /// One line per gate crossed; empty when every gate passed.
    pub failures: Vec<String>,
    /// `failures.is_empty()`.
    pub passed: bool,
}

impl GateVerdict {
    fn check(
        gates: Gates,
        latency: &LatencySummary,
        error_rate: f64,
        invariants: &LedgerSummary,
    ) -> Self {
        let mut failures = Vec::new();
        // Not a threshold: one room served by two nodes, or one seat held twice, is a bug
        // however rare.
        if invariants.violations > 0 {
            failures.push(format!(
                "invariant gate: {} violations ({})",
                invariants.violations,
                invariants.violation_examples.join("; ")
            ));
        }
        if let Some(max_p99_ms) = gates.max_p99_ms {
            if latency.count == 0 {
                failures.push("p99 gate: no latency samples (no input was acknowledged)".into());
            } else if latency.p99_ms > max_p99_ms {
                failures.push(format!(
                    "p99 gate: {:.2} ms exceeds --max-p99-ms {max_p99_ms}",
                    latency.p99_ms
                ));
            }
        }
        if let Some(max_error_rate) = gates.max_error_rate {
            if error_rate > max_error_rate {
                failures.push(format!(
                    "error-rate gate: {error_rate:.4} exceeds --max-error-rate {max_error_rate}"
                ));
            }
        }
        Self {
            gates,
            passed: failures.is_empty(),
            failures,
        }
    }
}

/// Everything a run measured. Serialized as the `--report` JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The scenario and its arguments (`name` is `load`, `soak` or `idle`).
    pub scenario: Scenario,
    /// The server's lobby URL.
    pub server: String,
    /// When the run started (Unix milliseconds).
    pub started_unix_ms: u64,
    /// When the report was built (Unix milliseconds).
    pub ended_unix_ms: u64,
    /// Seconds from start to report, ramp-up and drain included.
    pub elapsed_s: f64,
    /// Bots the scenario asked for at once.
    pub target_bots: u64,
    /// Bots started over the run (more than `target_bots` with churn).
    pub bots_started: u64,
    /// Bots that did not finish within the drain timeout and were aborted (their last second
    /// of counts is lost).
    pub bots_aborted: u64,
    /// Most sessions open at one sample.
    pub peak_connected: u64,
    /// Whether Ctrl-C cut the run short.
    pub interrupted: bool,
    /// Why the ramp-up stopped early (`load` could not create a room), or null. The bots never
    /// started count as failed joins.
    pub ramp_error: Option<String>,
    /// Throughput over the hold.
    pub hold: HoldWindow,
    /// Every counter by name (see `Counter::name`).
    pub counters: BTreeMap<&'static str, u64>,
    /// Ended sessions by reason.
    pub disconnects: BTreeMap<String, u64>,
    /// Input latency over the whole run.
    pub latency: LatencySummary,
    /// Resumes after dropped connections.
    pub resume: ResumeSummary,
    /// The `storm` scenario's figures (null for the other scenarios).
    pub storm: Option<StormFigures>,
    /// Cross-bot invariants (tick order, one node per room epoch, one connection per seat) and
    /// drop → back times.
    pub invariants: LedgerSummary,
    /// Failed joins + decode errors + tick regressions + resume mismatches + unplanned
    /// disconnects + invariant violations.
    pub errors: u64,
    /// `errors / max(join_attempts, 1)`.
    pub error_rate: f64,
    /// Gate thresholds and verdict.
    pub gates: GateVerdict,
    /// One point per second.
    pub timeline: Vec<TimelinePoint>,
}

impl Report {
    /// Collects the final figures and checks the gates.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        stats: &SwarmStats,
        options: &RunOptions,
        scenario: &Scenario,
        started_unix_ms: u64,
        elapsed: Duration,
        bots_started: u64,
        bots_aborted: u64,
        interrupted: bool,
        ramp_error: Option<String>,
        hold: HoldWindow,
        timeline: Vec<TimelinePoint>,
    ) -> Self {
        let latency = stats.total_latency();
        let errors = stats.errors();
        let error_rate = errors as f64 / stats.get(Counter::JoinAttempts).max(1) as f64;
        let invariants = stats.ledger.summary();
        Self {
            scenario: scenario.clone(),
            server: options.server.clone(),
            started_unix_ms,
            ended_unix_ms: unix_ms(),
            elapsed_s: elapsed.as_secs_f64(),
            target_bots: u64::from(scenario.bots()),
            bots_started,
            bots_aborted,
            peak_connected: timeline
                .iter()
                .map(|point| point.connected)
                .max()
                .unwrap_or(0),
            interrupted,
            ramp_error,
            hold,
            counters: stats.counters(),
            disconnects: stats.disconnects(),
            gates: GateVerdict::check(options.gates, &latency, error_rate, &invariants),
            invariants,
            latency,
            resume: ResumeSummary::of(stats),
            storm: None,
            errors,
            error_rate,
            timeline,
        }
    }

    /// Sets the `storm` figures.
    pub(crate) fn set_storm(&mut self, storm: Option<StormFigures>) {
        self.storm = storm;
    }

    /// A counter's final value.
    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters.get(counter.name()).copied().unwrap_or(0)
    }

    /// The human-readable summary printed at the end of a run.
    pub fn summary_table(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![
            ("scenario".into(), self.scenario.name().into()),
            ("server".into(), self.server.clone()),
            ("elapsed".into(), format!("{:.1} s", self.elapsed_s)),
            (
                "bots joined / started".into(),
                format!("{} / {}", self.counter(Counter::Joined), self.bots_started),
            ),
            ("peak connected".into(), self.peak_connected.to_string()),
            ("hold".into(), format!("{:.1} s", self.hold.seconds)),
            (
                "deltas/s (hold)".into(),
                format!("{:.0}", self.hold.deltas_per_s),
            ),
            (
                "messages/s (hold)".into(),
                format!("{:.0}", self.hold.messages_per_s),
            ),
            (
                "KiB/s (hold)".into(),
                format!("{:.1}", self.hold.bytes_per_s / 1024.0),
            ),
            (
                "latency p50/p90/p99/max".into(),
                format!(
                    "{:.2} / {:.2} / {:.2} / {:.2} ms ({} samples)",
                    self.latency.p50_ms,
                    self.latency.p90_ms,
                    self.latency.p99_ms,
                    self.latency.max_ms,
                    self.latency.count
                ),
            ),
        ];
        for counter in [
            Counter::InputsSent,
            Counter::InputsAcked,
            Counter::Gaps,
            Counter::Resyncs,
            Counter::DecodeErrors,
            Counter::FailedJoins,
            Counter::TickRegressions,
            Counter::ServerErrors,
        ] {
            rows.push((
                counter.name().replace('_', " "),
                self.counter(counter).to_string(),
            ));
        }
        if self.resume.attempts > 0 || self.resume.drops_injected > 0 {
            let resume = &self.resume;
            let refused = resume
                .refused
                .iter()
                .map(|(reason, count)| format!(" {reason}={count}"))
                .collect::<String>();
            rows.push((
                "resumes delta/snapshot".into(),
                format!(
                    "{} / {} of {} drops ({} attempts), refused:{} gave up {}",
                    resume.by_delta,
                    resume.by_snapshot,
                    resume.drops_injected,
                    resume.attempts,
                    if refused.is_empty() {
                        " 0".into()
                    } else {
                        refused
                    },
                    resume.gave_up
                ),
            ));
            rows.push((
                "resume latency p50/p99".into(),
                format!(
                    "{:.2} / {:.2} ms ({} samples)",
                    resume.latency.p50_ms, resume.latency.p99_ms, resume.latency.count
                ),
            ));
            rows.push(("resume mismatches".into(), resume.mismatches.to_string()));
        }
        if let Some(storm) = &self.storm {
            let time = storm
                .time_to_last_resume_ms
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms"));
            rows.push((
                "storm resumed / cut".into(),
                format!(
                    "{} / {} (last resume after {time}{})",
                    storm.resumed,
                    storm.bots_cut,
                    if storm.wait_timed_out {
                        ", wait timed out"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let disconnects = self
            .disconnects
            .iter()
            .map(|(reason, count)| format!("{reason}={count}"))
            .collect::<Vec<_>>()
            .join(" ");
        rows.push(("disconnects".into(), disconnects));
        let back = &self.invariants.drop_to_back;
        rows.push((
            "drop → back p50/p99/max".into(),
            format!(
                "{} / {} / {} ms ({} drops)",
                back.p50_ms, back.p99_ms, back.max_ms, back.count
            ),
        ));
        rows.push((
            "invariant violations".into(),
            self.invariants.violations.to_string(),
        ));
        if let Some(ramp_error) = &self.ramp_error {
            rows.push(("ramp-up stopped".into(), ramp_error.clone()));
        }
        rows.push((
            "errors (rate)".into(),
            format!("{} ({:.4})", self.errors, self.error_rate),
        ));
        let verdict = if self.gates.passed {
            "passed".to_owned()
        } else {
            self.gates.failures.join("; ")
        };
        rows.push(("gates".into(), verdict));

        let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        let mut table = String::new();
        for (name, value) in rows {
            // Writing to a String cannot fail.
            let _ = writeln!(table, "{name:<width$}  {value}");
        }
        table
    }

    /// Writes the report as pretty JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), ScenarioError> {
        let json = serde_json::to_vec_pretty(self).map_err(|error| ScenarioError::WriteReport {
            path: path.display().to_string(),
            source: std::io::Error::other(error),
        })?;
        write_file(path, &json)
    }
}

/// Writes `contents` to `path`, naming the path in the error.
pub(crate) fn write_file(path: &Path, contents: &[u8]) -> Result<(), ScenarioError> {
    std::fs::write(path, contents).map_err(|source| ScenarioError::WriteReport {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(count: u64, p99_ms: f64) -> LatencySummary {
        LatencySummary {
            count,
            p99_ms,
            ..LatencySummary::default()
        }
    }

    #[test]
    fn gates_fail_with_a_reason_each() {
        let gates = Gates {
            max_p99_ms: Some(60.0),
            max_error_rate: Some(0.01),
        };
        let clean = LedgerSummary::default();
        assert!(GateVerdict::check(gates, &latency(10, 59.0), 0.0, &clean).passed);
        let verdict = GateVerdict::check(gates, &latency(10, 61.0), 0.5, &clean);
        assert_eq!(verdict.failures.len(), 2);
        let no_samples = GateVerdict::check(gates, &latency(0, 0.0), 0.0, &clean);
        assert!(!no_samples.passed);
        assert!(GateVerdict::check(Gates::default(), &latency(0, 0.0), 1.0, &clean).passed);
    }

    #[test]
    fn any_invariant_violation_fails_the_run_even_without_gates() {
        let violated = LedgerSummary {
            violations: 1,
            violation_examples: vec!["room `r` epoch 2 served by `a` and by `b`".into()],
            ..LedgerSummary::default()
        };
        let verdict = GateVerdict::check(Gates::default(), &latency(10, 1.0), 0.0, &violated);
        assert!(!verdict.passed);
        assert!(verdict.failures[0].contains("served by `a` and by `b`"));
    }
}
