//! The lobby: creates rooms, reserves seats and matchmakes.
//!
//! Not an actor on purpose: HTTP requests on every worker thread use it concurrently, and the
//! only state needing serialisation — a room's seats — is owned by the room actor itself
//! (seat reservations are admitted inside [`Room`]). The lobby holds the directory, the game
//! registry, the token signer and the room threads.

mod prepare;

use crate::checkpoint::CheckpointSink;
use crate::config::PerRoomType;
use crate::directory::{RoomDirectory, RoomExists, RoomInfo};
use crate::game::{GameRegistry, RoomType};
use crate::metrics::Metrics;
use crate::room::{
    CloseRoom, DeliverEvent, InspectRoom, JoinRefused, KickPlayer, ReserveSeat, Room,
    RoomInspection,
};
use crate::stats::{process_cpu_seconds, LoadSampler, NodeLoad};
use crate::token::SeatTokens;
use actix::{Actor, ArbiterHandle};
use ludus_protocol::{CloseCode, PlayerId, RoomId, Value};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// Matchmaking tries this many open rooms before creating a new one.
pub const MATCHMAKE_CANDIDATES: usize = 3;
/// Largest id a lobby hands out, so ids stay exact in JavaScript numbers (2^53 - 1).
pub const MAX_SAFE_ID: u64 = (1 << 53) - 1;

/// Why a lobby operation failed; each variant has a stable code and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LobbyError {
    /// No such room type.
    #[error("unknown room type `{0}`")]
    UnknownRoomType(String),
    /// The requested room id is malformed.
    #[error(transparent)]
    InvalidRoomId(#[from] ludus_protocol::InvalidRoomId),
    /// A request field is out of range.
    #[error("{field}: {message}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The room id is taken.
    #[error("room `{0}` already exists")]
    RoomExists(RoomId),
    /// No such room on this node.
    #[error("room `{0}` does not exist")]
    RoomNotFound(RoomId),
    /// Every seat is taken or reserved.
    #[error("room `{0}` is full")]
    RoomFull(RoomId),
    /// The player already sits in the room.
    #[error("you already have a seat in room `{0}`")]
    AlreadySeated(RoomId),
    /// The room's queue of operator events is full.
    #[error("room `{0}` has too many messages waiting; retry shortly")]
    RoomBusy(RoomId),
    /// The node hosts its maximum number of rooms.
    #[error("this server hosts its maximum of {0} rooms")]
    AtCapacity(usize),
    /// The node is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The room's game panicked while being created or seating a player.
    #[error("room `{0}` crashed")]
    RoomCrashed(RoomId),
    /// A checkpoint could not be restored (another game state version, unreadable state).
    #[error("room `{0}` cannot be restored from its checkpoint: {1}")]
    Unrestorable(RoomId, String),
    /// The player has no seat (nor a held seat or reservation) in the room.
    #[error("player {player} is not in room `{room_id}`")]
    PlayerNotFound {
        /// The room.
        room_id: RoomId,
        /// The player.
        player: PlayerId,
    },
}

impl LobbyError {
    /// Stable machine-readable code for JSON errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownRoomType(_) => "unknown_room_type",
            Self::InvalidRoomId(_) => "invalid_room_id",
            Self::InvalidField { .. } => "invalid_request",
            Self::RoomExists(_) => "room_exists",
            Self::RoomNotFound(_) => "room_not_found",
            Self::RoomFull(_) => "room_full",
            Self::AlreadySeated(_) => "already_seated",
            Self::RoomBusy(_) => "room_busy",
            Self::AtCapacity(_) => "at_capacity",
            Self::ShuttingDown => "shutting_down",
            Self::RoomCrashed(_) => "room_crashed",
            Self::Unrestorable(..) => "room_crashed",
            Self::PlayerNotFound { .. } => "player_not_found",
        }
    }
}

/// A request to create a room.
#[derive(Debug, Clone, Default)]
pub struct CreateRoom {
    /// Room type name.
    pub room_type: String,
    /// Wanted id; generated when absent.
    pub room_id: Option<String>,
    /// Seats; the type's default when absent, never above it.
    pub max_players: Option<u32>,
    /// Free-form metadata shown in listings.
    pub metadata: serde_json::Value,
    /// The room's epoch; chosen at random when absent (a cluster passes the one it leased).
    pub epoch: Option<u64>,
}

/// A validated room, built but not yet started.
pub struct PreparedRoom {
    /// Its listing.
    pub info: RoomInfo,
    room: Room,
}

/// A reserved seat and the token to take it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeatGrant {
    /// The room.
    pub room_id: RoomId,
    /// Its type.
    pub room_type: String,
    /// The player the seat is for.
    pub player_id: PlayerId,
    /// The signed seat token.
    pub token: String,
    /// When the reservation and token expire, Unix milliseconds.
    pub expires_at_ms: u64,
}

/// Who a seat is reserved for.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeatFor {
    /// The player's display name; the lobby picks one when absent.
    pub name: Option<String>,
    /// The player, when the caller proved who it is (a player token's `sub`); a fresh random
    /// id when absent. A known player holds at most one seat per room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player: Option<PlayerId>,
}

/// Lobby-wide settings.
#[derive(Debug, Clone)]
pub struct LobbySettings {
    /// Lifetime of seat reservations.
    pub seat_ttl: Duration,
    /// Empty-room grace period.
    pub empty_grace: Duration,
    /// Room limit.
    pub max_rooms: usize,
    /// Input queue bound per seat.
    pub max_queued_inputs_per_player: usize,
    /// Flow-control window, in milliseconds (converted to ticks per room type).
    pub flow_window_ms: u64,
    /// Operator events a room sends per tick at most, in encoded bytes.
    pub event_bytes_per_tick: usize,
    /// Operator events a room holds waiting at most, in encoded bytes.
    pub max_queued_event_bytes: usize,
    /// Connection limits of the rooms' members.
    pub session_limits: Arc<crate::session::SessionLimits>,
    /// How long a disconnected player's seat waits for a resume, per room type.
    pub resume_window: PerRoomType,
    /// Encoded deltas each room keeps for resuming clients, in bytes.
    pub resume_history_bytes: usize,
    /// In a cluster: where rooms send checkpoints, and how often per room type.
    pub checkpoints: Option<(CheckpointSink, PerRoomType)>,
}

/// Rooms, seats and matchmaking for one node.
pub struct Lobby {
    directory: Arc<RoomDirectory>,
    registry: GameRegistry,
    tokens: SeatTokens,
    metrics: Metrics,
    settings: LobbySettings,
    room_threads: Vec<ArbiterHandle>,
    next_thread: AtomicUsize,
    next_session: AtomicU64,
    /// Whether shutdown has begun; a watch so that every session, whatever its phase, can close
    /// the moment it begins ([`Lobby::shutdown_signal`]).
    shutdown_tx: watch::Sender<bool>,
    /// The node's load, shared by the dashboard and the cluster heartbeat.
    load: LoadSampler,
}

/// A fresh room id: `r-` and ten random lowercase letters and digits.
pub fn random_room_id() -> RoomId {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let suffix: String = (0..10)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect();
    // expect: `r-` plus ten alphanumerics always satisfies the id rules.
    RoomId::parse(&format!("r-{suffix}")).expect("generated ids are valid")
}

/// Converts JSON (as HTTP clients and other nodes send it) to the MessagePack value a room
/// broadcasts.
pub fn json_value(json: &serde_json::Value) -> Value {
    rmpv::ext::to_value(json).unwrap_or(Value::Nil)
}

/// The event a room broadcasts for an operator's message: `{"type": "message", "payload": ...}`.
pub fn message_event(payload: serde_json::Value) -> serde_json::Value {
    serde_json::json!({ "type": "message", "payload": payload })
}

/// The event every room of `region` broadcasts for an announcement.
pub fn announcement_event(region: &str, payload: serde_json::Value) -> serde_json::Value {
    serde_json::json!({ "type": "announcement", "region": region, "payload": payload })
}

/// The size of `value` encoded as MessagePack, as it will weigh in a frame.
pub fn encoded_len(value: &Value) -> usize {
    let mut out = Vec::new();
    // A write into a Vec cannot fail; an unencodable value weighs nothing and is never sent.
    match rmpv::encode::write_value(&mut out, value) {
        Ok(()) => out.len(),
        Err(_) => 0,
    }
}

/// A fresh room epoch (below 2^53, like every id the lobby hands out).
pub fn new_epoch() -> u64 {
    fastrand::u64(1..MAX_SAFE_ID)
}

/// The epoch after `epoch`, staying within 1 to 2^53 − 1 like every epoch.
pub fn next_epoch(epoch: u64) -> u64 {
    epoch % (MAX_SAFE_ID - 1) + 1
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

impl Lobby {
    /// A lobby that runs rooms on `room_threads` (at least one).
    pub fn new(
        registry: GameRegistry,
        tokens: SeatTokens,
        metrics: Metrics,
        settings: LobbySettings,
        room_threads: Vec<ArbiterHandle>,
    ) -> Self {
        let load = LoadSampler::primed(Instant::now(), metrics.counters(process_cpu_seconds()));
        Self {
            directory: Arc::new(RoomDirectory::new()),
            registry,
            tokens,
            metrics,
            settings,
            room_threads,
            next_thread: AtomicUsize::new(0),
            next_session: AtomicU64::new(1),
            shutdown_tx: watch::Sender::new(false),
            load,
        }
    }

    /// The room directory.
    pub fn directory(&self) -> &RoomDirectory {
        &self.directory
    }

    /// The seat token signer.
    pub fn tokens(&self) -> &SeatTokens {
        &self.tokens
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The node's load over about the last second.
    pub fn load(&self) -> NodeLoad {
        self.load.sample(Instant::now(), || {
            self.metrics.counters(process_cpu_seconds())
        })
    }

    /// A fresh session id.
    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown_tx.borrow()
    }

    /// Turns `true` when shutdown begins (it may already have).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown_tx.subscribe()
    }

    fn room_type(&self, name: &str) -> Result<&RoomType, LobbyError> {
        self.registry
            .get(name)
            .ok_or_else(|| LobbyError::UnknownRoomType(name.to_owned()))
    }

    /// Creates a room on the next room thread and lists it.
    pub fn create_room(&self, request: CreateRoom) -> Result<RoomInfo, LobbyError> {
        let prepared = self.prepare_room(request)?;
        self.start_room(prepared)
    }

    /// Starts a prepared room on the next room thread and lists it.
    pub fn start_room(&self, prepared: PreparedRoom) -> Result<RoomInfo, LobbyError> {
        let PreparedRoom { info, room } = prepared;
        let thread = self.next_room_thread();
        self.directory
            .insert_with(info.clone(), thread, move |thread| {
                Room::start_in_arbiter(thread, move |_| room)
            })
            .map_err(|RoomExists(id)| LobbyError::RoomExists(id))?;
        Ok(info)
    }

    /// Ends a room: its members are closed with `room_disposed` (4009) and it is unlisted.
    pub fn dispose(&self, room_id: &RoomId) -> Result<(), LobbyError> {
        let room = self
            .directory
            .addr(room_id)
            .ok_or_else(|| LobbyError::RoomNotFound(room_id.clone()))?;
        room.do_send(CloseRoom {
            reason: CloseCode::RoomDisposed,
        });
        Ok(())
    }

    /// Removes `player` from a room on this node: its connection is closed with 4016 `kicked`
    /// and its seat freed.
    pub async fn kick(&self, room_id: &RoomId, player: PlayerId) -> Result<(), LobbyError> {
        let room = self
            .directory
            .addr(room_id)
            .ok_or_else(|| LobbyError::RoomNotFound(room_id.clone()))?;
        room.send(KickPlayer { player })
            .await
            .map_err(|_| LobbyError::RoomNotFound(room_id.clone()))?
            .map_err(|_| LobbyError::PlayerNotFound {
                room_id: room_id.clone(),
                player,
            })
    }

    /// A look inside a room on this node (for the operator dashboard).
    pub async fn inspect(&self, room_id: &RoomId) -> Result<RoomInspection, LobbyError> {
        let room = self
            .directory
            .addr(room_id)
            .ok_or_else(|| LobbyError::RoomNotFound(room_id.clone()))?;
        room.send(InspectRoom)
            .await
            .map_err(|_| LobbyError::RoomNotFound(room_id.clone()))
    }

    /// Queues `event` for the room's coming ticks; `room_busy` when its event queue is full.
    pub async fn deliver(&self, room_id: &RoomId, event: Value) -> Result<(), LobbyError> {
        let room = self
            .directory
            .addr(room_id)
            .ok_or_else(|| LobbyError::RoomNotFound(room_id.clone()))?;
        let size = encoded_len(&event);
        room.send(DeliverEvent { event, size })
            .await
            .map_err(|_| LobbyError::RoomNotFound(room_id.clone()))?
            .map_err(|_| LobbyError::RoomBusy(room_id.clone()))
    }

    /// Queues `event` for the coming ticks of every room on this node; a room whose event
    /// queue is full skips it (counted in `ludus_events_refused_total`).
    pub fn deliver_to_all(&self, event: &Value) -> usize {
        let rooms = self.directory.addrs();
        let size = encoded_len(event);
        for room in &rooms {
            // do_send: one bounded message per room; the room refuses it if its queue is full.
            room.do_send(DeliverEvent {
                event: event.clone(),
                size,
            });
        }
        rooms.len()
    }

    /// Whether `name` is a registered room type.
    pub fn has_room_type(&self, name: &str) -> bool {
        self.registry.get(name).is_some()
    }

    fn next_room_thread(&self) -> ArbiterHandle {
        let index = self.next_thread.fetch_add(1, Ordering::Relaxed) % self.room_threads.len();
        self.room_threads[index].clone()
    }

    /// Reserves a seat in `room_id` for `seat.player` (a new player when unknown).
    pub async fn reserve_seat(
        &self,
        room_id: &RoomId,
        seat: SeatFor,
    ) -> Result<SeatGrant, LobbyError> {
        if self.is_shutting_down() {
            return Err(LobbyError::ShuttingDown);
        }
        let (Some(addr), Some(info)) = (self.directory.addr(room_id), self.directory.info(room_id))
        else {
            return Err(LobbyError::RoomNotFound(room_id.clone()));
        };
        let player = seat
            .player
            .unwrap_or_else(|| PlayerId(fastrand::u64(1..MAX_SAFE_ID)));
        let reserved = addr
            .send(ReserveSeat { player })
            .await
            .map_err(|_| LobbyError::RoomNotFound(room_id.clone()))?
            .map_err(|refused| match refused {
                JoinRefused::RoomFull => LobbyError::RoomFull(room_id.clone()),
                JoinRefused::AlreadySeated => LobbyError::AlreadySeated(room_id.clone()),
                JoinRefused::SeatNotReserved | JoinRefused::RoomCrashed => {
                    LobbyError::RoomNotFound(room_id.clone())
                }
            })?;
        let name = seat
            .name
            .unwrap_or_else(|| format!("player-{}", player.0 % 100_000));
        let token = self
            .tokens
            .issue(player, room_id, &name, reserved.expires_at);
        Ok(SeatGrant {
            room_id: room_id.clone(),
            room_type: info.room_type,
            player_id: player,
            token,
            expires_at_ms: unix_millis(reserved.expires_at),
        })
    }

    /// Joins the fullest open room of `room_type`, or creates one.
    pub async fn matchmake(&self, room_type: &str, seat: SeatFor) -> Result<SeatGrant, LobbyError> {
        self.room_type(room_type)?;
        let mut candidates = self
            .directory
            .list(|info| info.room_type == room_type && info.has_free_seat());
        candidates.sort_by_key(|info| std::cmp::Reverse(info.seats_taken()));
        for candidate in candidates.into_iter().take(MATCHMAKE_CANDIDATES) {
            match self.reserve_seat(&candidate.room_id, seat.clone()).await {
                Err(
                    LobbyError::RoomFull(_)
                    | LobbyError::RoomNotFound(_)
                    | LobbyError::AlreadySeated(_),
                ) => continue,
                outcome => return outcome,
            }
        }
        let created = self.create_room(CreateRoom {
            room_type: room_type.to_owned(),
            ..CreateRoom::default()
        })?;
        self.reserve_seat(&created.room_id, seat).await
    }

    /// Refuses new rooms, seats and hellos, and closes every room and every session with
    /// `server_shutdown`.
    pub fn begin_shutdown(&self) {
        self.shutdown_tx.send_replace(true);
        for room in self.directory.addrs() {
            room.do_send(CloseRoom {
                reason: CloseCode::ServerShutdown,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_room_ids_are_valid_and_distinct() {
        let first = random_room_id();
        assert_ne!(first, random_room_id());
        assert!(first.as_str().starts_with("r-"));
    }
}
