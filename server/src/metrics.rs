//! Prometheus metrics: every name in one place, one registry per server.
//!
//! Hot paths touch only atomic counters (cloned handles, no registry lookups), and rooms add
//! per-tick totals once per tick rather than once per recipient.

use crate::stats::{process_cpu_seconds, NodeCounters};
use prometheus::core::Metric;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Metric names, as an operator sees them on `/metrics`.
pub mod names {
    /// Live rooms.
    pub const ROOMS: &str = "ludus_rooms";
    /// Open WebSocket sessions.
    pub const SESSIONS: &str = "ludus_sessions";
    /// Time spent computing, encoding and fanning out one tick.
    pub const TICK_DURATION: &str = "ludus_tick_duration_seconds";
    /// Ticks that took longer than their interval.
    pub const TICK_OVERRUNS: &str = "ludus_tick_overruns_total";
    /// Frames written to clients.
    pub const MESSAGES_SENT: &str = "ludus_messages_sent_total";
    /// Bytes written to clients (WebSocket payloads).
    pub const BYTES_SENT: &str = "ludus_bytes_sent_total";
    /// Deltas not sent to a client because it was behind (flow control) or its mailbox was full.
    pub const DELTAS_SKIPPED: &str = "ludus_deltas_skipped_total";
    /// Inputs accepted from clients.
    pub const INPUTS: &str = "ludus_inputs_total";
    /// Inputs dropped, by reason; `rate_limited` counts every frame over the rate, WebSocket
    /// pings and pongs included.
    pub const INPUTS_DROPPED: &str = "ludus_inputs_dropped_total";
    /// Sessions closed by the server or client, by close reason.
    pub const SESSIONS_CLOSED: &str = "ludus_sessions_closed_total";
    /// Rooms ended by a panic in their game logic.
    pub const ROOM_CRASHES: &str = "ludus_room_crashes_total";
    /// Live cluster nodes in this node's view (1 when running alone).
    pub const CLUSTER_NODES: &str = "ludus_cluster_nodes";
    /// Nodes joining or leaving this node's view, by change.
    pub const CLUSTER_MEMBERSHIP_CHANGES: &str = "ludus_cluster_membership_changes_total";
    /// Rooms this node stopped serving because another node took their lease.
    pub const LEASES_LOST: &str = "ludus_cluster_leases_lost_total";
    /// Times this node fenced itself: its node lease could not be renewed before it might lapse,
    /// so every room it held stopped (4013).
    pub const FENCES: &str = "ludus_cluster_fences_total";
    /// Live peers whose region file hash differs from this node's (should be 0; placement
    /// disagrees between nodes otherwise).
    pub const REGION_FILE_MISMATCHES: &str = "ludus_cluster_region_file_mismatched_peers";
    /// Operator events a room refused because its event queue was full.
    pub const EVENTS_REFUSED: &str = "ludus_events_refused_total";
    /// HTTP requests and connections refused by a limit, by reason (`rate_limited`,
    /// `too_many_reservations`, `too_many_connections`, `unauthorized`, `forbidden`,
    /// `request_timeout`, `origin_not_allowed`, `too_many_streams`).
    pub const HTTP_REFUSED: &str = "ludus_http_refused_total";
    /// Session resumes, by outcome: `delta` (caught up from the history), `snapshot`,
    /// `restored` (into a room restored here after its node failed: a snapshot), or
    /// `refused_<reason>` (`expired`, `used`, `invalid`, `wrong_room`, `epoch_changed`).
    pub const RESUMES: &str = "ludus_resumes_total";
    /// Bytes of encoded deltas all rooms keep for resuming clients.
    pub const RESUME_HISTORY_BYTES: &str = "ludus_resume_history_bytes";
    /// Room checkpoints, by `outcome`: `written` (stored in JetStream), `too_large` (over
    /// `rooms.max_checkpoint_bytes`, not written), `queue_full` (the writer was behind; the
    /// room writes at its next interval), `failed` (JetStream refused or timed out),
    /// `game_panicked` (the game's `save` panicked).
    pub const CHECKPOINTS: &str = "ludus_checkpoints_total";
    /// Bytes of checkpoints written (÷ `written` checkpoints = bytes per checkpoint).
    pub const CHECKPOINT_BYTES: &str = "ludus_checkpoint_bytes_total";
    /// Rooms of lapsed nodes this node tried to restore, by `outcome`: `restored`,
    /// `no_checkpoint`, `stale_checkpoint` (of an older epoch), `unrestorable` (unreadable by
    /// this build), `taken` (another node was first), `failed` (NATS or the lobby refused).
    pub const FAILOVERS: &str = "ludus_failovers_total";
    /// Rooms this node handed to another node while draining, by `outcome`: `moved`, `failed`
    /// (the next owner refused or did not answer; the room ticks on here), `no_next_owner` (no
    /// other live node in the room's region or its fallbacks), `not_saved` (the game's state
    /// could not be saved).
    pub const HANDOFFS: &str = "ludus_handoffs_total";
    /// How long handed-over rooms paused here: from the tick boundary they stopped at until
    /// the next owner held them and this node's view showed it (their members are then told
    /// to move, and resume there).
    pub const HANDOFF_PAUSE: &str = "ludus_handoff_pause_seconds";
    /// 1 while this node drains (its rooms move to other nodes; it takes no new ones).
    pub const DRAINING: &str = "ludus_draining";
    /// Live rooms, by room type. Labelled by type, never by room: the set of types is the
    /// server's registry, so the series stay few however many rooms come and go (per-room
    /// numbers are on the dashboard's own endpoint).
    pub const ROOM_TYPE_ROOMS: &str = "ludus_room_type_rooms";
    /// Seated players (connected or away within the resume window), by room type.
    pub const ROOM_TYPE_PLAYERS: &str = "ludus_room_type_players";
    /// Tick duration, by room type.
    pub const ROOM_TYPE_TICK_DURATION: &str = "ludus_room_type_tick_duration_seconds";
    /// Bytes written to clients in ticks' frames, by room type.
    pub const ROOM_TYPE_BYTES_SENT: &str = "ludus_room_type_bytes_sent_total";
    /// Players an operator removed from their room (close 4016).
    pub const PLAYERS_KICKED: &str = "ludus_players_kicked_total";
    /// CPU time (user + system) the process used since it started, seconds; read at each
    /// scrape (the dashboard's CPU column is its rate). Stays 0 where the OS does not say
    /// (it is read from `/proc`, so on Linux only).
    pub const PROCESS_CPU_SECONDS: &str = "ludus_process_cpu_seconds";
}

/// Buckets of the tick-duration histograms, in seconds: 50 µs to 100 ms.
const TICK_BUCKETS: [f64; 11] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
];

/// The per-room-type handles one room uses, looked up once when it starts.
#[derive(Clone)]
pub struct RoomTypeMetrics {
    /// See [`names::ROOM_TYPE_ROOMS`].
    pub rooms: IntGauge,
    /// See [`names::ROOM_TYPE_PLAYERS`].
    pub players: IntGauge,
    /// See [`names::ROOM_TYPE_TICK_DURATION`].
    pub tick_duration: Histogram,
    /// See [`names::ROOM_TYPE_BYTES_SENT`].
    pub bytes_sent: IntCounter,
}

/// Handles to every metric; cheap to clone (each handle is an `Arc`).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// See [`names::ROOMS`].
    pub rooms: IntGauge,
    /// See [`names::SESSIONS`].
    pub sessions: IntGauge,
    /// See [`names::TICK_DURATION`].
    pub tick_duration: Histogram,
    /// See [`names::TICK_OVERRUNS`].
    pub tick_overruns: IntCounter,
    /// See [`names::MESSAGES_SENT`].
    pub messages_sent: IntCounter,
    /// See [`names::BYTES_SENT`].
    pub bytes_sent: IntCounter,
    /// See [`names::DELTAS_SKIPPED`].
    pub deltas_skipped: IntCounter,
    /// See [`names::INPUTS`].
    pub inputs: IntCounter,
    /// See [`names::INPUTS_DROPPED`].
    pub inputs_dropped: IntCounterVec,
    /// See [`names::SESSIONS_CLOSED`].
    pub sessions_closed: IntCounterVec,
    /// See [`names::ROOM_CRASHES`].
    pub room_crashes: IntCounter,
    /// See [`names::CLUSTER_NODES`].
    pub cluster_nodes: IntGauge,
    /// See [`names::CLUSTER_MEMBERSHIP_CHANGES`].
    pub cluster_membership_changes: IntCounterVec,
    /// See [`names::LEASES_LOST`].
    pub leases_lost: IntCounter,
    /// See [`names::FENCES`].
    pub fences: IntCounter,
    /// See [`names::REGION_FILE_MISMATCHES`].
    pub region_file_mismatches: IntGauge,
    /// See [`names::EVENTS_REFUSED`].
    pub events_refused: IntCounter,
    /// See [`names::HTTP_REFUSED`].
    pub http_refused: IntCounterVec,
    /// See [`names::RESUMES`].
    pub resumes: IntCounterVec,
    /// See [`names::RESUME_HISTORY_BYTES`].
    pub resume_history_bytes: IntGauge,
    /// See [`names::CHECKPOINTS`].
    pub checkpoints: IntCounterVec,
    /// See [`names::CHECKPOINT_BYTES`].
    pub checkpoint_bytes: IntCounter,
    /// See [`names::FAILOVERS`].
    pub failovers: IntCounterVec,
    /// See [`names::HANDOFFS`].
    pub handoffs: IntCounterVec,
    /// See [`names::HANDOFF_PAUSE`].
    pub handoff_pause: Histogram,
    /// See [`names::DRAINING`].
    pub draining: IntGauge,
    /// See [`names::ROOM_TYPE_ROOMS`].
    pub room_type_rooms: IntGaugeVec,
    /// See [`names::ROOM_TYPE_PLAYERS`].
    pub room_type_players: IntGaugeVec,
    /// See [`names::ROOM_TYPE_TICK_DURATION`].
    pub room_type_tick_duration: HistogramVec,
    /// See [`names::ROOM_TYPE_BYTES_SENT`].
    pub room_type_bytes_sent: IntCounterVec,
    /// See [`names::PLAYERS_KICKED`].
    pub players_kicked: IntCounter,
    /// See [`names::PROCESS_CPU_SECONDS`]; set when rendered.
    process_cpu_seconds: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics { .. }")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        // expect: names and options are static and valid, and each is registered exactly once
        // in a fresh registry, so creation and registration cannot fail.
        let counter = |name: &str, help: &str| {
            let counter = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(counter.clone()))
                .expect("unique metric");
            counter
        };
        let gauge = |name: &str, help: &str| {
            let gauge = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(gauge.clone()))
                .expect("unique metric");
            gauge
        };
        let counter_vec = |name: &str, help: &str, label: &str| {
            let counter =
                IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            registry
                .register(Box::new(counter.clone()))
                .expect("unique metric");
            counter
        };
        let gauge_vec = |name: &str, help: &str, label: &str| {
            let gauge = IntGaugeVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            registry
                .register(Box::new(gauge.clone()))
                .expect("unique metric");
            gauge
        };
        let tick_duration = Histogram::with_opts(
            HistogramOpts::new(
                names::TICK_DURATION,
                "time to compute, encode and fan out one tick",
            )
            .buckets(TICK_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        registry
            .register(Box::new(tick_duration.clone()))
            .expect("unique metric");
        let process_cpu_seconds = Gauge::new(
            names::PROCESS_CPU_SECONDS,
            "CPU time the process used since it started, seconds",
        )
        .expect("valid metric");
        registry
            .register(Box::new(process_cpu_seconds.clone()))
            .expect("unique metric");
        let handoff_pause = Histogram::with_opts(
            HistogramOpts::new(
                names::HANDOFF_PAUSE,
                "pause of a room handed to another node, from its last tick here to the claim there",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(handoff_pause.clone()))
            .expect("unique metric");
        let room_type_tick_duration = HistogramVec::new(
            HistogramOpts::new(
                names::ROOM_TYPE_TICK_DURATION,
                "time to compute, encode and fan out one tick, by room type",
            )
            .buckets(TICK_BUCKETS.to_vec()),
            &["room_type"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(room_type_tick_duration.clone()))
            .expect("unique metric");
        Self {
            rooms: gauge(names::ROOMS, "live rooms"),
            sessions: gauge(names::SESSIONS, "open WebSocket sessions"),
            tick_duration,
            tick_overruns: counter(
                names::TICK_OVERRUNS,
                "ticks that took longer than their interval",
            ),
            messages_sent: counter(names::MESSAGES_SENT, "frames written to clients"),
            bytes_sent: counter(names::BYTES_SENT, "payload bytes written to clients"),
            deltas_skipped: counter(
                names::DELTAS_SKIPPED,
                "deltas not sent to a client that was behind or whose mailbox was full",
            ),
            inputs: counter(names::INPUTS, "inputs accepted from clients"),
            inputs_dropped: counter_vec(
                names::INPUTS_DROPPED,
                "inputs dropped, by reason",
                "reason",
            ),
            sessions_closed: counter_vec(
                names::SESSIONS_CLOSED,
                "sessions closed, by close reason",
                "reason",
            ),
            room_crashes: counter(names::ROOM_CRASHES, "rooms ended by a panic in game logic"),
            cluster_nodes: gauge(
                names::CLUSTER_NODES,
                "live cluster nodes in this node's view",
            ),
            cluster_membership_changes: counter_vec(
                names::CLUSTER_MEMBERSHIP_CHANGES,
                "nodes joining or leaving this node's view",
                "change",
            ),
            leases_lost: counter(
                names::LEASES_LOST,
                "rooms stopped because another node took their lease",
            ),
            fences: counter(
                names::FENCES,
                "times this node fenced itself because its lease could not be renewed in time",
            ),
            region_file_mismatches: gauge(
                names::REGION_FILE_MISMATCHES,
                "live peers whose region file hash differs from this node's",
            ),
            events_refused: counter(
                names::EVENTS_REFUSED,
                "operator events refused because the room's event queue was full",
            ),
            http_refused: counter_vec(
                names::HTTP_REFUSED,
                "HTTP requests and connections refused by a limit or a credential check",
                "reason",
            ),
            resumes: counter_vec(names::RESUMES, "session resumes, by outcome", "outcome"),
            resume_history_bytes: gauge(
                names::RESUME_HISTORY_BYTES,
                "bytes of encoded deltas kept for resuming clients",
            ),
            checkpoints: counter_vec(
                names::CHECKPOINTS,
                "room checkpoints, by outcome",
                "outcome",
            ),
            checkpoint_bytes: counter(names::CHECKPOINT_BYTES, "bytes of checkpoints written"),
            failovers: counter_vec(
                names::FAILOVERS,
                "rooms of lapsed nodes restored here, by outcome",
                "outcome",
            ),
            handoffs: counter_vec(
                names::HANDOFFS,
                "rooms handed to another node while draining, by outcome",
                "outcome",
            ),
            handoff_pause,
            draining: gauge(names::DRAINING, "1 while this node drains"),
            room_type_rooms: gauge_vec(
                names::ROOM_TYPE_ROOMS,
                "live rooms, by room type",
                "room_type",
            ),
            room_type_players: gauge_vec(
                names::ROOM_TYPE_PLAYERS,
                "seated players, by room type",
                "room_type",
            ),
            room_type_tick_duration,
            room_type_bytes_sent: counter_vec(
                names::ROOM_TYPE_BYTES_SENT,
                "bytes written to clients in ticks' frames, by room type",
                "room_type",
            ),
            players_kicked: counter(
                names::PLAYERS_KICKED,
                "players an operator removed from their room",
            ),
            process_cpu_seconds,
            registry,
        }
    }

    /// Counts a closed session under its close reason (a `CloseCode` reason, or
    /// `client_closed` when the client hung up first).
    pub fn session_closed(&self, reason: &str) {
        self.sessions_closed.with_label_values(&[reason]).inc();
    }

    /// The handles of one room type's metrics.
    pub fn room_type(&self, room_type: &str) -> RoomTypeMetrics {
        RoomTypeMetrics {
            rooms: self.room_type_rooms.with_label_values(&[room_type]),
            players: self.room_type_players.with_label_values(&[room_type]),
            tick_duration: self.room_type_tick_duration.with_label_values(&[room_type]),
            bytes_sent: self.room_type_bytes_sent.with_label_values(&[room_type]),
        }
    }

    /// The node's cumulative counters now, for [`crate::stats::NodeLoad::between`].
    pub fn counters(&self, cpu_seconds: Option<f64>) -> NodeCounters {
        let histogram = self.tick_duration.metric();
        let histogram = histogram.get_histogram();
        NodeCounters {
            cpu_seconds,
            bytes_sent: self.bytes_sent.get(),
            tick_overruns: self.tick_overruns.get(),
            tick_buckets: histogram
                .get_bucket()
                .iter()
                .map(|bucket| (bucket.upper_bound(), bucket.cumulative_count()))
                .collect(),
            ticks: histogram.get_sample_count(),
        }
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        if let Some(seconds) = process_cpu_seconds() {
            self.process_cpu_seconds.set(seconds);
        }
        let mut buffer = Vec::new();
        // expect: the text encoder only fails on a broken writer, and a Vec never is.
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8_lossy(&buffer).into_owned()
    }
}
