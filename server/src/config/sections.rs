//! The config sections that tune one node's rooms, sessions and cluster membership: plain
//! serde structs whose doc comments are the reference for every knob (default, unit, consequence).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `[cluster]`: joining a multi-node cluster over NATS. Leave `regions_file` unset to run one
/// node alone with the embedded in-memory directory (no NATS needed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    /// The operator's region file (regions, nodes, NATS URL; see `region-config/README.md`).
    /// Default: none, single-node mode.
    pub regions_file: Option<PathBuf>,
    /// This node's id in the region file. Required with `regions_file`.
    pub node_id: Option<String>,
    /// The node lease, in milliseconds, covering all of a node's rooms: renewed every tenth of
    /// this; peers restore the node's rooms elsewhere after this long without a renewal (so a
    /// crashed node's rooms tick again about a lease after the crash); the node itself stops
    /// them (4013) a fifth earlier when it cannot renew, so NATS may be unreachable for about
    /// 0.7 of this without any room stopping. Default 2000: rooms back ≤ 3 s after a crash,
    /// and a NATS restart shorter than 1.4 s goes unnoticed.
    pub lease_ms: u64,
    /// Longest wait for another node to answer (create, reserve, message, take over a room),
    /// in milliseconds. Default 2000.
    pub request_timeout_ms: u64,
    /// Drain on SIGTERM/SIGINT: hand every room to its next owner (exact state, members resume
    /// there with no tick lost) before shutting down. Default true; false closes rooms with
    /// 4011 at once (other nodes then restore them from their last checkpoints).
    pub drain_on_shutdown: bool,
    /// Longest a shutdown waits for the drain, in milliseconds; rooms still here then close
    /// with 4011 and come back elsewhere from their checkpoints. Default 15000.
    pub drain_timeout_ms: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            regions_file: None,
            node_id: None,
            lease_ms: 2_000,
            request_timeout_ms: 2_000,
            drain_on_shutdown: true,
            drain_timeout_ms: 15_000,
        }
    }
}

/// `[server]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on. Default `127.0.0.1:7878` (loopback only: expose deliberately).
    pub listen: SocketAddr,
    /// Base URL clients reach this node at (`https://eu1.example.com`), used to build the
    /// `ws_url` returned by matchmaking. Default: none, derived from each request's `Host`.
    pub public_url: Option<String>,
    /// Secret for signing seat tokens (at least 16 bytes). Every node of a cluster needs the same
    /// one. Default: none, a random secret from the OS per process (tokens die with the process).
    pub secret: Option<String>,
    /// Secrets that signed seat tokens before `secret` (a rotation): tokens they signed are
    /// still accepted until they expire; new tokens are signed with `secret` only. Default none.
    pub previous_secrets: Vec<String>,
    /// HTTP worker threads: they accept connections, serve the lobby API and answer WebSocket
    /// handshakes (sessions then move to their room's thread). Default 0 = one per core.
    pub workers: usize,
    /// Threads that run room actors, and their players' sessions and sockets. Default 0 = one
    /// per core.
    pub room_threads: usize,
    /// The deadline of a whole graceful shutdown, in milliseconds: sessions are closed with 4011,
    /// the cluster is left and HTTP workers stop, all within it. Default 5000.
    pub shutdown_timeout_ms: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            public_url: None,
            secret: None,
            previous_secrets: Vec::new(),
            workers: 0,
            room_threads: 0,
            shutdown_timeout_ms: 5_000,
        }
    }
}

/// `[session]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSection {
    /// Largest client message accepted, in bytes; larger frames close the session with 4006.
    /// Default 4096.
    pub max_message_bytes: usize,
    /// Time a new connection has to send `hello`, in milliseconds; then 4007. Default 5000.
    pub hello_timeout_ms: u64,
    /// Interval between server WebSocket pings, in milliseconds. Default 5000.
    pub heartbeat_interval_ms: u64,
    /// Close a session from which nothing (not even a pong) arrived for this long, in
    /// milliseconds, with 4007. Default 15000; must exceed the heartbeat interval.
    pub idle_timeout_ms: u64,
    /// Sustained client messages per second allowed. Default 60 (three per tick at 20 Hz).
    pub input_rate_per_sec: u32,
    /// Messages allowed in a burst above the rate. Default 30.
    pub input_burst: u32,
    /// Flow-control window as time, converted to ticks per room: the server stops sending to a
    /// client whose unacknowledged frames span this long. Default 2000 ms (40 ticks at 20 Hz).
    pub flow_window_ms: u64,
    /// Close a client paused by flow control for this long with 4008, in milliseconds.
    /// Default 10000.
    pub slow_client_timeout_ms: u64,
}

impl Default for SessionSection {
    fn default() -> Self {
        Self {
            max_message_bytes: 4096,
            hello_timeout_ms: 5_000,
            heartbeat_interval_ms: 5_000,
            idle_timeout_ms: 15_000,
            input_rate_per_sec: 60,
            input_burst: 30,
            flow_window_ms: 2_000,
            slow_client_timeout_ms: 10_000,
        }
    }
}

/// `[rooms]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsSection {
    /// How long a reserved seat (and its token) stays valid, in milliseconds. Default 15000;
    /// at least 1000 because token expiry has one-second resolution.
    pub seat_reservation_ms: u64,
    /// How long an empty room (no players, no reservations) lives before it is disposed, in
    /// milliseconds. Default 30000.
    pub empty_grace_ms: u64,
    /// Rooms this node hosts at most; creation beyond answers 503. Default 10000.
    pub max_rooms: usize,
    /// Inputs one room holds between two ticks, per seat; excess inputs are dropped with
    /// `server_busy`. Default 8.
    pub max_queued_inputs_per_player: usize,
    /// Largest payload of an operator message or announcement, in bytes of MessagePack; larger
    /// ones are refused with 413 `payload_too_large`. Default 4096.
    pub max_event_bytes: usize,
    /// Operator events (messages, announcements) one room sends per tick at most, in bytes;
    /// the rest wait for later ticks, so members never get more than this per tick from
    /// outside the game. Default 8192.
    pub event_bytes_per_tick: usize,
    /// Operator events one room holds waiting for their tick, in bytes; beyond, messages are
    /// refused with 429 `room_busy`. Default 65536.
    pub max_queued_event_bytes: usize,
    /// How long a disconnected player's seat and entity stay for it to resume, in
    /// milliseconds; 0 disables resume (a drop leaves the room at once). Default 30000.
    pub resume_window_ms: u64,
    /// Encoded deltas a room keeps for resuming clients, in bytes; a client that missed more
    /// resumes with a snapshot. Default 262144.
    pub resume_history_bytes: usize,
    /// In a cluster, how often each room writes a checkpoint to JetStream, in milliseconds
    /// (at most once per tick); 0 disables checkpoints. Ignored on a node without NATS.
    /// Default 1000.
    pub checkpoint_interval_ms: u64,
    /// Largest encoded checkpoint, in bytes (1024 to 700000: NATS refuses messages over its
    /// `max_payload`, 1 MiB by default, and a drain sends the state base64-encoded, a third
    /// larger). A room whose checkpoint is larger writes none and counts `too_large` in
    /// `ludus_checkpoints_total` (and cannot be handed over by a drain). Default 262144.
    pub max_checkpoint_bytes: usize,
}

impl Default for RoomsSection {
    fn default() -> Self {
        Self {
            seat_reservation_ms: 15_000,
            empty_grace_ms: 30_000,
            max_rooms: 10_000,
            max_queued_inputs_per_player: 8,
            max_event_bytes: 4_096,
            event_bytes_per_tick: 8_192,
            max_queued_event_bytes: 65_536,
            resume_window_ms: 30_000,
            resume_history_bytes: 262_144,
            checkpoint_interval_ms: 1_000,
            max_checkpoint_bytes: 262_144,
        }
    }
}

/// `[room_types.<name>]`: overrides of a registered game's defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomTypeSection {
    /// Ticks per second (1 to 240).
    pub tick_hz: Option<u16>,
    /// Seats per room, 1 to the game's own maximum (arena 16, tictactoe 2): an override can
    /// only lower it.
    pub max_players: Option<u32>,
    /// This room type's resume window, in milliseconds (0 to 600000; 0 disables resume).
    pub resume_window_ms: Option<u64>,
    /// This room type's checkpoint interval, in milliseconds (0 to 600000; 0 disables).
    pub checkpoint_interval_ms: Option<u64>,
}

impl SessionSection {
    /// The hello timeout as a duration.
    pub fn hello_timeout(&self) -> Duration {
        Duration::from_millis(self.hello_timeout_ms)
    }
    /// The heartbeat interval as a duration.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }
    /// The idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
    /// The slow-client timeout as a duration.
    pub fn slow_client_timeout(&self) -> Duration {
        Duration::from_millis(self.slow_client_timeout_ms)
    }
}
