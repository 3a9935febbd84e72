//! What the operator dashboard shows about load, computed as plain data: a room's recent ticks
//! ([`TickWindow`]) and a node's rates between two readings of its counters ([`NodeLoad`]).
//!
//! Why a module of its own: rooms and the HTTP layer only record and read; every number the
//! dashboard shows (a p99, a rate, a percentage) comes from a pure function here, tested
//! without actors, sockets or clocks. Nothing here reads a clock or the operating system
//! except [`process_cpu_seconds`], which the caller passes in as a number.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Ticks a room remembers for its dashboard numbers: a few seconds at 20 Hz, a fixed 1.5 KiB.
pub const TICK_WINDOW: usize = 128;

/// The last [`TICK_WINDOW`] ticks of one room: how long each took and how many bytes it wrote.
///
/// A ring of fixed size, so a room's bookkeeping costs the same at its thousandth tick as at
/// its first, and recording is two stores.
#[derive(Debug, Clone)]
pub struct TickWindow {
    /// Microseconds per tick (saturating at `u32::MAX`, over an hour).
    micros: [u32; TICK_WINDOW],
    /// Bytes written to members per tick (saturating).
    bytes: [u32; TICK_WINDOW],
    /// Ticks recorded so far (the ring is full past [`TICK_WINDOW`]).
    recorded: u64,
}

impl Default for TickWindow {
    fn default() -> Self {
        Self {
            micros: [0; TICK_WINDOW],
            bytes: [0; TICK_WINDOW],
            recorded: 0,
        }
    }
}

/// A summary of a room's recent ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickSummary {
    /// Ticks summarized (at most [`TICK_WINDOW`]).
    pub ticks: u32,
    /// Median tick duration, microseconds.
    pub tick_p50_us: u32,
    /// 99th percentile tick duration, microseconds.
    pub tick_p99_us: u32,
    /// Longest tick, microseconds.
    pub tick_max_us: u32,
    /// Mean bytes written to members per tick.
    pub bytes_per_tick: u32,
}

impl TickWindow {
    /// Records one tick that took `took` and wrote `bytes` to the room's members.
    pub fn record(&mut self, took: Duration, bytes: u64) {
        // The ring index is below TICK_WINDOW, so the cast cannot truncate.
        let slot = (self.recorded % TICK_WINDOW as u64) as usize;
        self.micros[slot] = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        self.bytes[slot] = u32::try_from(bytes).unwrap_or(u32::MAX);
        self.recorded += 1;
    }

    /// The recorded ticks' percentiles and mean bytes.
    pub fn summary(&self) -> TickSummary {
        let held = usize::try_from(self.recorded)
            .unwrap_or(usize::MAX)
            .min(TICK_WINDOW);
        if held == 0 {
            return TickSummary::default();
        }
        let mut micros = self.micros[..held].to_vec();
        micros.sort_unstable();
        let total_bytes: u64 = self.bytes[..held].iter().map(|&b| u64::from(b)).sum();
        TickSummary {
            ticks: u32::try_from(held).unwrap_or(u32::MAX),
            tick_p50_us: nearest_rank(&micros, 0.50),
            tick_p99_us: nearest_rank(&micros, 0.99),
            tick_max_us: micros[held - 1],
            bytes_per_tick: u32::try_from(total_bytes / held as u64).unwrap_or(u32::MAX),
        }
    }
}

/// The `quantile` (0 to 1) of `sorted` by the nearest-rank method; 0 when empty.
pub fn nearest_rank(sorted: &[u32], quantile: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (quantile.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A node's cumulative counters at one moment; two readings give its rates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeCounters {
    /// CPU time the process used since it started, seconds (`None` where unknown).
    pub cpu_seconds: Option<f64>,
    /// Payload bytes written to clients.
    pub bytes_sent: u64,
    /// Ticks that overran their interval.
    pub tick_overruns: u64,
    /// The tick-duration histogram: (upper bound in seconds, cumulative count) per bucket.
    pub tick_buckets: Vec<(f64, u64)>,
    /// Ticks observed in that histogram.
    pub ticks: u64,
}

/// A node's load over the last interval, in whole units so it travels in heartbeats as is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLoad {
    /// Process CPU use, in percent of one core (200 is two cores busy); `None` where unknown.
    pub cpu_percent: Option<u32>,
    /// Bytes written to clients per second.
    pub bytes_out_per_sec: u64,
    /// Tick overruns in the interval.
    pub tick_overruns: u64,
    /// 99th percentile tick duration in the interval, microseconds (the upper bound of its
    /// histogram bucket; 0 without ticks).
    pub tick_p99_us: u64,
}

impl NodeLoad {
    /// The load between `before` and `after`, read `elapsed` apart. Counters that went
    /// backwards (a restart) count as zero rather than wrapping.
    pub fn between(before: &NodeCounters, after: &NodeCounters, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64().max(0.001);
        let cpu_percent = match (before.cpu_seconds, after.cpu_seconds) {
            (Some(before), Some(after)) if after >= before => {
                Some(((after - before) / seconds * 100.0).round() as u32)
            }
            _ => None,
        };
        let bytes = after.bytes_sent.saturating_sub(before.bytes_sent);
        Self {
            cpu_percent,
            bytes_out_per_sec: (bytes as f64 / seconds).round() as u64,
            tick_overruns: after.tick_overruns.saturating_sub(before.tick_overruns),
            tick_p99_us: (histogram_quantile(
                (&before.tick_buckets, before.ticks),
                (&after.tick_buckets, after.ticks),
                0.99,
            ) * 1e6)
                .round() as u64,
        }
    }
}

/// The `quantile` of the observations made between two readings of a cumulative histogram
/// (`(upper bound, cumulative count)` per finite bucket, and the count of all observations),
/// as the upper bound of the bucket it falls in; the largest finite bound when it falls past
/// them, 0 without observations. Buckets are matched by position: both readings come from the
/// same histogram.
pub fn histogram_quantile(
    before: (&[(f64, u64)], u64),
    after: (&[(f64, u64)], u64),
    quantile: f64,
) -> f64 {
    let total = after.1.saturating_sub(before.1);
    if total == 0 {
        return 0.0;
    }
    let wanted = ((quantile.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut largest_bound = 0.0;
    for (index, &(bound, count)) in after.0.iter().enumerate() {
        let earlier = before.0.get(index).map_or(0, |&(_, count)| count);
        if count.saturating_sub(earlier) >= wanted {
            return bound;
        }
        largest_bound = bound;
    }
    largest_bound
}

/// Shortest interval a [`LoadSampler`] computes rates over: readers asking more often (several
/// dashboards, the heartbeat) share the last result instead of measuring noise.
pub const MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(900);

/// The node's load, refreshed at most once per [`MIN_SAMPLE_INTERVAL`] whoever asks: the
/// previous reading and the last result, behind a lock held only to swap them.
#[derive(Debug, Default)]
pub struct LoadSampler {
    state: Mutex<Option<Sampled>>,
}

#[derive(Debug)]
struct Sampled {
    at: Instant,
    counters: NodeCounters,
    load: NodeLoad,
}

impl LoadSampler {
    /// A sampler whose first reading, `counters`, was taken at `at`: its first answer is then
    /// a real rate rather than zeros.
    pub fn primed(at: Instant, counters: NodeCounters) -> Self {
        Self {
            state: Mutex::new(Some(Sampled {
                at,
                counters,
                load: NodeLoad::default(),
            })),
        }
    }

    /// The load over the last interval at `now`; `read` takes a reading when one is due. The
    /// first call only takes its reading, and answers zeros.
    pub fn sample(&self, now: Instant, read: impl FnOnce() -> NodeCounters) -> NodeLoad {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match state.as_mut() {
            Some(sampled) if now.saturating_duration_since(sampled.at) < MIN_SAMPLE_INTERVAL => {
                sampled.load
            }
            Some(sampled) => {
                let counters = read();
                let elapsed = now.saturating_duration_since(sampled.at);
                sampled.load = NodeLoad::between(&sampled.counters, &counters, elapsed);
                sampled.counters = counters;
                sampled.at = now;
                sampled.load
            }
            None => {
                *state = Some(Sampled {
                    at: now,
                    counters: read(),
                    load: NodeLoad::default(),
                });
                NodeLoad::default()
            }
        }
    }
}

/// CPU time (user + system) this process used so far, in seconds, from `/proc/self/stat`;
/// `None` where that file does not exist (not Linux) or cannot be read.
///
/// The kernel reports it in clock ticks of `USER_HZ`, which is 100 on every Linux architecture
/// Ludus builds for.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / 100.0)
}

/// `utime + stime` from a `/proc/<pid>/stat` line. The command name (field 2) may hold spaces
/// and parentheses, so fields are counted after its last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // After the name: state (3) ... utime is field 14, stime 15, i.e. the 12th and 13th here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_window_summarizes_to_zeros() {
        assert_eq!(TickWindow::default().summary(), TickSummary::default());
    }

    #[test]
    fn the_window_keeps_only_the_latest_ticks() {
        let mut window = TickWindow::default();
        for _ in 0..TICK_WINDOW {
            window.record(Duration::from_millis(40), 1_000);
        }
        for tick in 0..TICK_WINDOW as u64 {
            window.record(Duration::from_micros(100 + tick), 200);
        }
        let summary = window.summary();
        assert_eq!(summary.ticks, TICK_WINDOW as u32);
        assert_eq!(summary.tick_max_us, 100 + TICK_WINDOW as u32 - 1);
        assert_eq!(summary.tick_p50_us, 100 + TICK_WINDOW as u32 / 2 - 1);
        assert_eq!(summary.bytes_per_tick, 200);
    }

    #[test]
    fn one_slow_tick_in_a_hundred_shows_in_the_p99_only_beyond_it() {
        let mut window = TickWindow::default();
        for _ in 0..99 {
            window.record(Duration::from_micros(50), 10);
        }
        window.record(Duration::from_millis(30), 10);
        let summary = window.summary();
        assert_eq!(summary.tick_p50_us, 50);
        assert_eq!(summary.tick_p99_us, 50);
        assert_eq!(summary.tick_max_us, 30_000);
        window.record(Duration::from_millis(30), 10);
        assert_eq!(window.summary().tick_p99_us, 30_000);
    }

    #[test]
    fn nearest_rank_follows_its_definition() {
        assert_eq!(nearest_rank(&[], 0.99), 0);
        assert_eq!(nearest_rank(&[7], 0.0), 7);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 0.5), 2);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 0.75), 3);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 1.0), 4);
    }

    #[test]
    fn histogram_quantile_reads_the_interval_only() {
        let before = [(0.001, 90), (0.01, 100), (0.1, 100)];
        // In the interval: 10 ticks within 1 ms, 80 more within 10 ms, none slower.
        let after = [(0.001, 100), (0.01, 190), (0.1, 190)];
        assert_eq!(histogram_quantile((&before, 100), (&after, 190), 0.5), 0.01);
        assert_eq!(
            histogram_quantile((&before, 100), (&after, 190), 0.05),
            0.001
        );
        assert_eq!(histogram_quantile((&after, 190), (&after, 190), 0.99), 0.0);
        assert_eq!(histogram_quantile((&[], 0), (&[], 0), 0.99), 0.0);
        // Ten more ticks past every bound: the p99 shows as the largest bound.
        assert_eq!(histogram_quantile((&before, 100), (&after, 200), 0.99), 0.1);
    }

    #[test]
    fn node_load_turns_counters_into_rates() {
        let before = NodeCounters {
            cpu_seconds: Some(10.0),
            bytes_sent: 1_000,
            tick_overruns: 3,
            tick_buckets: vec![(0.001, 0), (0.01, 0)],
            ticks: 0,
        };
        let after = NodeCounters {
            cpu_seconds: Some(10.5),
            bytes_sent: 3_000,
            tick_overruns: 5,
            tick_buckets: vec![(0.001, 99), (0.01, 100)],
            ticks: 100,
        };
        let load = NodeLoad::between(&before, &after, Duration::from_secs(2));
        assert_eq!(
            load,
            NodeLoad {
                cpu_percent: Some(25),
                bytes_out_per_sec: 1_000,
                tick_overruns: 2,
                tick_p99_us: 1_000,
            }
        );
        let restarted = NodeLoad::between(&after, &before, Duration::from_secs(1));
        assert_eq!(restarted.cpu_percent, None);
        assert_eq!(restarted.bytes_out_per_sec, 0);
    }

    #[test]
    fn the_sampler_measures_at_most_once_per_interval() {
        let sampler = LoadSampler::default();
        let start = Instant::now();
        let reading = |bytes_sent| NodeCounters {
            bytes_sent,
            ..NodeCounters::default()
        };
        assert_eq!(sampler.sample(start, || reading(0)), NodeLoad::default());
        let soon = start + Duration::from_millis(100);
        assert_eq!(
            sampler.sample(soon, || panic!("not due")),
            NodeLoad::default()
        );
        let later = start + Duration::from_secs(2);
        assert_eq!(
            sampler.sample(later, || reading(4_000)).bytes_out_per_sec,
            2_000
        );
        let again = later + Duration::from_millis(10);
        assert_eq!(
            sampler
                .sample(again, || panic!("not due"))
                .bytes_out_per_sec,
            2_000
        );
    }

    #[test]
    fn cpu_ticks_are_read_past_a_name_with_spaces() {
        let stat = "4242 (ludus (server) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 123 45 0 0 20 0";
        assert_eq!(parse_cpu_ticks(stat), Some(168));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert!(process_cpu_seconds().is_some_and(|seconds| seconds >= 0.0));
    }
}
