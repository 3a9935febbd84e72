//! Room checkpoints: everything needed to re-create a room elsewhere, as plain data.
//!
//! A room writes one every `checkpoint_interval` (per room type) so that when its node dies the
//! next owner can restore it (issue "Rooms outlive their node"). A checkpoint is taken at a
//! tick boundary, between two ticks, and holds the room's identity (id, type, epoch), the
//! tick, the seats (player ids, sessions, the last input each had applied, whether away), the entity store and
//! its next entity id, the room's random generator, and the game's own state from
//! [`crate::game::Game::save`] with the game's state version, so a build whose game reads a
//! different version refuses to restore instead of misreading.
//!
//! The format is MessagePack with named fields (a map per struct), versioned by
//! [`CHECKPOINT_FORMAT`]. Encoding is bounded: a checkpoint larger than the configured maximum
//! is refused with [`CheckpointError::TooLarge`] (the room keeps playing; the operator sees the
//! `too_large` outcome in `/metrics` and a warning naming the room).
//!
//! Everything here is a pure function over data, plus [`CheckpointSink`], the bounded channel
//! a room hands encoded checkpoints to; writing them to JetStream is the cluster's job (a room
//! thread never waits on the network).

use ludus_protocol::{CloseCode, Entity, PlayerId, RoomId, Value};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::mpsc;

/// Version of the checkpoint layout itself (not of any game's state).
pub const CHECKPOINT_FORMAT: u16 = 1;

/// One seat of the room when the checkpoint was taken. (A player's name, like the rest of its
/// game state, is in the entities a game keeps for it.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeatRecord {
    /// The seated player.
    pub player: PlayerId,
    /// The session that held the seat: the one whose resume token may take it back.
    pub session: u64,
    /// The protocol version that session spoke.
    pub protocol: u16,
    /// The last input sequence number the room had applied for this player.
    pub applied_seq: u32,
    /// The player's connection had dropped and its resume window was running.
    pub away: bool,
}

/// The simulation's part of a checkpoint: what [`crate::simulation::Simulation`] needs to
/// continue from the same tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulationState {
    /// The last completed tick.
    pub tick: u64,
    /// The room's random generator, so a restored room draws the same numbers.
    pub rng_state: u64,
    /// The id the next spawned entity gets (ids are never reused).
    pub next_entity_id: u32,
    /// Every entity in full.
    pub entities: Vec<Entity>,
    /// The game's state version ([`crate::game::Game::state_version`]).
    pub game_version: u32,
    /// The game's own state ([`crate::game::Game::save`]).
    pub game_state: Value,
}

/// A room's checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_FORMAT`] of the writer.
    pub format: u16,
    /// The room's id.
    pub room_id: String,
    /// Its room type.
    pub room_type: String,
    /// Its seats in total.
    pub max_players: u32,
    /// The metadata it was created with.
    pub metadata: serde_json::Value,
    /// The epoch the room had when the checkpoint was written; a restored room takes the next.
    pub epoch: u64,
    /// Wall-clock time of writing, in Unix milliseconds (for operators and for counting the
    /// ticks a failover lost; never for ordering).
    pub written_at_ms: u64,
    /// Seats taken (connected members and players inside their resume window).
    pub seats: Vec<SeatRecord>,
    /// Seats reserved and not yet taken, with their expiry in Unix milliseconds, so a player
    /// given a seat just before a handover can still take it on the next owner (absent from
    /// checkpoints written before this field).
    #[serde(default)]
    pub reservations: Vec<(PlayerId, u64)>,
    /// Operator events accepted and not yet sent, oldest first, with their encoded sizes (so
    /// a message answered 202 just before a handover still reaches the players).
    #[serde(default)]
    pub events: Vec<(Value, usize)>,
    /// The simulation.
    pub simulation: SimulationState,
}

/// Why a checkpoint could not be encoded or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The encoded checkpoint exceeds the configured maximum.
    #[error("checkpoint of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Its encoded size.
        size: usize,
        /// `rooms.max_checkpoint_bytes`.
        limit: usize,
    },
    /// Written by a newer (or unknown) layout.
    #[error("checkpoint format {found} is not supported (this build reads {CHECKPOINT_FORMAT})")]
    UnsupportedFormat {
        /// The format found.
        found: u16,
    },
    /// Not a checkpoint at all.
    #[error("checkpoint is malformed: {0}")]
    Malformed(String),
}

impl Checkpoint {
    /// Encodes the checkpoint, refusing one over `limit` bytes.
    pub fn encode(&self, limit: usize) -> Result<Vec<u8>, CheckpointError> {
        let bytes = rmp_serde::to_vec_named(self)
            .map_err(|error| CheckpointError::Malformed(error.to_string()))?;
        if bytes.len() > limit {
            return Err(CheckpointError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        Ok(bytes)
    }

    /// Decodes a checkpoint written by [`Checkpoint::encode`], refusing other formats. Never
    /// panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, CheckpointError> {
        /// Only the format field, read first so a newer layout is named as such rather than
        /// reported as malformed.
        #[derive(Deserialize)]
        struct Format {
            format: u16,
        }
        let Format { format } = rmp_serde::from_slice(bytes)
            .map_err(|error| CheckpointError::Malformed(error.to_string()))?;
        if format != CHECKPOINT_FORMAT {
            return Err(CheckpointError::UnsupportedFormat { found: format });
        }
        rmp_serde::from_slice(bytes).map_err(|error| CheckpointError::Malformed(error.to_string()))
    }
}

/// What a room asks the checkpoint writer to do.
#[derive(Debug)]
pub enum CheckpointWrite {
    /// Store this encoded checkpoint as the room's latest.
    Put {
        /// The room.
        room_id: RoomId,
        /// [`Checkpoint::encode`]'s output.
        bytes: Vec<u8>,
    },
    /// The room ended for good (disposed, not crashed with its node): forget its checkpoint so
    /// no node restores it.
    Forget {
        /// The room.
        room_id: RoomId,
    },
}

/// Where rooms send checkpoints: a bounded queue to the cluster's writer. Cloned into every
/// room of a clustered node.
#[derive(Clone, Debug)]
pub struct CheckpointSink {
    writes_tx: mpsc::Sender<CheckpointWrite>,
    /// `rooms.max_checkpoint_bytes`.
    pub max_bytes: usize,
}

/// The writer's end of a [`CheckpointSink`].
#[derive(Debug)]
pub struct CheckpointQueue {
    /// Writes in the order rooms queued them.
    pub writes_rx: mpsc::Receiver<CheckpointWrite>,
    /// `rooms.max_checkpoint_bytes`, for sizing the store.
    pub max_bytes: usize,
}

impl CheckpointSink {
    /// A sink queueing up to `capacity` writes of at most `max_bytes` each, and the writer's
    /// end.
    pub fn channel(capacity: usize, max_bytes: usize) -> (Self, CheckpointQueue) {
        let (writes_tx, writes_rx) = mpsc::channel(capacity.max(1));
        let sink = Self {
            writes_tx,
            max_bytes,
        };
        let queue = CheckpointQueue {
            writes_rx,
            max_bytes,
        };
        (sink, queue)
    }

    /// Queues `write` without waiting; `false` when the queue is full (the writer is behind:
    /// the room tries again at its next interval) or the writer is gone.
    pub fn offer(&self, write: CheckpointWrite) -> bool {
        self.writes_tx.try_send(write).is_ok()
    }
}

/// Whether a room that ended with `close` keeps its checkpoint for a failover: yes when it
/// lost its node (shutdown, or fenced because its lease could not be renewed: the room lives
/// on elsewhere), no when it ended for good (disposed, emptied, crashed).
pub fn outlives(close: CloseCode) -> bool {
    matches!(
        close,
        CloseCode::ServerShutdown | CloseCode::RoomMoved | CloseCode::RoomMoving
    )
}

/// Whether a room that last wrote a checkpoint at tick `last_written` (None: never) should
/// write one after completing `tick`, writing every `interval` at `tick_interval` per tick,
/// and at once (at most once per tick) when its seats changed since (`seats_changed`: a join,
/// a resume, a leave): a player seated after the last checkpoint would otherwise have no seat
/// in a room restored from it, and its resume would be refused. A zero interval disables
/// checkpoints.
pub fn due(
    last_written: Option<u64>,
    tick: u64,
    interval: Duration,
    tick_interval: Duration,
    seats_changed: bool,
) -> bool {
    if interval.is_zero() {
        return false;
    }
    if seats_changed && last_written != Some(tick) {
        return true;
    }
    let every_ticks = (interval.as_nanos() / tick_interval.as_nanos().max(1)).max(1);
    match last_written {
        None => true,
        Some(last) => u128::from(tick.saturating_sub(last)) >= every_ticks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ludus_protocol::EntityId;
    use std::collections::BTreeMap;

    fn checkpoint() -> Checkpoint {
        let fields = BTreeMap::from([
            ("x".to_owned(), Value::F32(1.5)),
            ("name".to_owned(), Value::from("ada")),
        ]);
        Checkpoint {
            format: CHECKPOINT_FORMAT,
            room_id: "r1".into(),
            room_type: "arena".into(),
            max_players: 16,
            metadata: serde_json::json!({"mode": "ranked"}),
            epoch: 7,
            written_at_ms: 1_700_000_000_000,
            seats: vec![SeatRecord {
                player: PlayerId(3),
                session: 17,
                protocol: 2,
                applied_seq: 41,
                away: false,
            }],
            reservations: vec![(PlayerId(4), 1_700_000_009_000)],
            events: vec![(Value::from("hello"), 6)],
            simulation: SimulationState {
                tick: 120,
                rng_state: 99,
                next_entity_id: 12,
                entities: vec![Entity {
                    id: EntityId(4),
                    kind: "player".into(),
                    fields,
                }],
                game_version: 1,
                game_state: Value::Array(vec![Value::from(1), Value::F32(0.5)]),
            },
        }
    }

    #[test]
    fn a_checkpoint_reads_back_exactly() {
        let original = checkpoint();
        let bytes = original.encode(1 << 20).expect("encode");
        assert_eq!(Checkpoint::decode(&bytes).expect("decode"), original);
    }

    #[test]
    fn a_checkpoint_over_the_limit_is_refused_with_its_size() {
        let error = checkpoint().encode(10).expect_err("too large");
        assert!(
            matches!(error, CheckpointError::TooLarge { size, limit: 10 } if size > 10),
            "{error}"
        );
    }

    #[test]
    fn another_format_is_named_not_misread() {
        let mut newer = checkpoint();
        newer.format = CHECKPOINT_FORMAT + 1;
        let bytes = newer.encode(1 << 20).expect("encode");
        assert!(matches!(
            Checkpoint::decode(&bytes),
            Err(CheckpointError::UnsupportedFormat { found }) if found == CHECKPOINT_FORMAT + 1
        ));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bytes in [&b""[..], b"\xc1", b"\x81\xa6format\xa1x", &[0xff; 64]] {
            assert!(matches!(
                Checkpoint::decode(bytes),
                Err(CheckpointError::Malformed(_) | CheckpointError::UnsupportedFormat { .. })
            ));
        }
    }

    #[test]
    fn only_a_room_that_lost_its_node_keeps_its_checkpoint() {
        assert!(outlives(CloseCode::ServerShutdown));
        assert!(
            outlives(CloseCode::RoomMoved),
            "a fenced room is restored elsewhere"
        );
        assert!(
            outlives(CloseCode::RoomMoving),
            "a handed-over room's next owner writes over it"
        );
        for ended in [CloseCode::RoomDisposed, CloseCode::RoomCrashed] {
            assert!(!outlives(ended), "{ended:?}");
        }
    }

    #[test]
    fn checkpoints_are_due_every_interval_in_ticks() {
        let tick = Duration::from_millis(50);
        let second = Duration::from_secs(1);
        assert!(
            due(None, 0, second, tick, false),
            "the first is due at once"
        );
        assert!(!due(Some(100), 119, second, tick, false));
        assert!(due(Some(100), 120, second, tick, false));
        assert!(
            !due(Some(100), 500, Duration::ZERO, tick, false),
            "zero disables"
        );
        assert!(
            due(Some(5), 6, Duration::from_millis(1), tick, false),
            "at most one per tick"
        );
    }

    #[test]
    fn a_change_of_seats_makes_a_checkpoint_due_at_the_next_tick() {
        let tick = Duration::from_millis(50);
        let second = Duration::from_secs(1);
        assert!(due(Some(100), 101, second, tick, true));
        assert!(!due(Some(101), 101, second, tick, true), "once per tick");
        assert!(
            !due(Some(100), 101, Duration::ZERO, tick, true),
            "zero disables"
        );
    }
}
