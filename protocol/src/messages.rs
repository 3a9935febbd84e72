//! Every message of the protocol, as typed structs grouped under two enums.
//!
//! On the wire a message is a MessagePack map with one key, the message's snake_case name, whose
//! value is the message body as a map of named fields (`{"input": {"seq": 7, ...}}`). Field
//! names rather than positional arrays cost a few bytes but let clients in any language decode
//! with a stock MessagePack library and let the protocol add optional fields compatibly.

use crate::codes::ErrorCode;
use crate::ids::{EntityId, PlayerId, RoomId};
use rmpv::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything a client may send, one message per binary WebSocket frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message on every connection: protocol version and seat token.
    Hello(Hello),
    /// A game input, applied at the room's next tick.
    Input(Input),
    /// Flow control: the last tick the client has applied.
    Ack(Ack),
    /// Asks for a fresh snapshot after the client detected a gap.
    Resync(Resync),
    /// Leaves the room; the server closes with code 1000.
    Leave(Leave),
    /// Application-level ping; answered by a `pong` in the next frame.
    Ping(Ping),
}

/// Opens a session: must be the first message, within the hello timeout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the client speaks; must equal the server's.
    pub protocol: u16,
    /// The seat token returned by `POST /v1/matchmake` (or a seat reservation) for this room.
    /// Ignored (send `""`) when resuming.
    pub token: String,
    /// Resume a session whose connection dropped, instead of taking a new seat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
}

/// Where a resuming client left off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The `resume_token` of the session's last `welcome`.
    pub token: String,
    /// The last tick the client applied.
    pub last_tick: u64,
}

/// One game input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Input {
    /// Client sequence number, strictly increasing per session; the server applies each
    /// sequence number at most once and ignores older ones.
    pub seq: u32,
    /// The last tick the client applied (same meaning as [`Ack::tick`]); 0 before any.
    pub ack_tick: u64,
    /// Game-specific payload (for `arena`: `{"dx": f, "dy": f}`).
    pub payload: Value,
}

/// Acknowledges every tick up to and including `tick`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The last tick the client applied.
    pub tick: u64,
}

/// Asks the server for a full snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resync {}

/// Leaves the room for good.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leave {}

/// Application ping; the nonce comes back in the pong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Any value the client likes (a send timestamp, typically).
    pub nonce: u64,
}

/// Everything the server sends. A server frame is always a MessagePack **array** of these
/// (a batch), so that one frame carries everything a client gets in one tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerMessage {
    /// Answer to a valid `hello`.
    Welcome(Welcome),
    /// The complete room state; replaces whatever the client had.
    Snapshot(Snapshot),
    /// Changes from `base_tick` to `tick`.
    Delta(Delta),
    /// A game event addressed to this player only.
    Event(Event),
    /// Something the client did was refused; a close may follow.
    Error(ErrorMessage),
    /// Answer to a `ping`.
    Pong(Pong),
    /// The room lives on another node: reconnect there with the same token.
    Redirect(Redirect),
}

/// Sent instead of a welcome when the room is hosted by another node of the cluster; the server
/// then closes with code 4012. The seat token stays valid: send the same `hello` to `ws_url`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// The room.
    pub room: RoomId,
    /// The node hosting it.
    pub node: String,
    /// The room's WebSocket URL on that node.
    pub ws_url: String,
}

/// Confirms the seat: the client is now a member of the room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Server-assigned session id, unique on this node (for logs and support).
    pub session: u64,
    /// The player this session plays as.
    pub player: PlayerId,
    /// The room joined.
    pub room: RoomId,
    /// The room's type name (`arena`, `tictactoe`, ...).
    pub room_type: String,
    /// The room's epoch; see [`Delta::epoch`].
    pub epoch: u64,
    /// Ticks per second of this room.
    pub tick_hz: u16,
    /// Flow-control window: the server stops sending deltas once this many ticks are unacked.
    pub window: u32,
    /// Resumes this session after its connection drops (`hello.resume`); absent when the
    /// room keeps no seat for disconnected players (a resume window of 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_token: Option<String>,
    /// This welcome answers a resume: the seat, the entity and the input sequence are the ones
    /// the client had.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
    /// Present only when a resume lands in a room restored on another node after its node
    /// failed (the epoch changed): how many ticks the client had seen that the restored room
    /// never reached (its last checkpoint was older). The answer is then always a snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticks_lost: Option<u64>,
}

/// One entity in full.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Entity id.
    pub id: EntityId,
    /// Entity kind (`player`, `coin`, `board`, ...).
    pub kind: String,
    /// Every field of the entity.
    pub fields: BTreeMap<String, Value>,
}

/// Acknowledges the last input a player's session had applied by this tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputAck {
    /// The player.
    pub player: PlayerId,
    /// The highest input sequence number applied for that player.
    pub seq: u32,
}

/// The full state of a room at `tick`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Room epoch.
    pub epoch: u64,
    /// The tick this state belongs to; the next delta has `base_tick == tick`.
    pub tick: u64,
    /// Every entity.
    pub entities: Vec<Entity>,
    /// The last applied input of every player in the room.
    pub acks: Vec<InputAck>,
}

/// A changed entity: new entities carry their `kind` and every field, existing ones only
/// their changed fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityUpdate {
    /// Entity id.
    pub id: EntityId,
    /// Present when the entity was created (or re-created) since `base_tick`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Fields to set.
    pub fields: BTreeMap<String, Value>,
}

/// What changed in a room from `base_tick` to `tick`.
///
/// Apply order: check `epoch` and `base_tick`, then remove `removed`, then apply `upserts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// Changes whenever the room is re-created or moves; a delta of another epoch never applies.
    pub epoch: u64,
    /// The tick this delta brings the client to.
    pub tick: u64,
    /// The tick the delta applies to; a client whose tick differs has a gap and must resync.
    pub base_tick: u64,
    /// Entities created or changed.
    pub upserts: Vec<EntityUpdate>,
    /// Entities removed (removing an unknown id is a no-op).
    pub removed: Vec<EntityId>,
    /// Players who left the room since `base_tick`: their acks are dropped from the mirror
    /// (before `acks` apply, so a player who left and joined again starts over), so a mirror built
    /// from deltas always equals a snapshot of the same tick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left: Vec<PlayerId>,
    /// Players whose applied input sequence advanced.
    pub acks: Vec<InputAck>,
    /// Game events broadcast to every member this tick, in order.
    pub events: Vec<Value>,
}

/// A game event for one player.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Game-specific payload.
    pub payload: Value,
}

/// A refusal, with a stable machine-readable code and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// Stable code; match on this, not on `message`.
    pub code: ErrorCode,
    /// Explanation for humans; may change between releases.
    pub message: String,
}

/// Answer to a [`Ping`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The ping's nonce.
    pub nonce: u64,
    /// The tick of the last frame the server sent this client (0 before joining).
    pub tick: u64,
}
