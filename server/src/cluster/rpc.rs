//! Node-to-node requests over NATS request/reply, as JSON.
//!
//! Each node answers on `ludus.node.<node_id>.rpc`. Requests are few and small (create a room,
//! reserve a seat, deliver an event); a missing responder means the node is down, a timeout that
//! it is overloaded or partitioned. Errors travel as the lobby's stable `{code, message}` pair so
//! the asking node can answer its HTTP client exactly as the owning node would have.

use crate::directory::RoomInfo;
use crate::lobby::{SeatFor, SeatGrant};
use serde::{Deserialize, Serialize};

/// The subject a node answers requests on.
pub fn node_subject(node_id: &str) -> String {
    format!("ludus.node.{node_id}.rpc")
}

/// The subject regional announcements are published on.
pub fn announce_subject(region: &str) -> String {
    format!("ludus.region.{region}.announce")
}

/// The subject heartbeats are published on.
pub const HEARTBEAT_SUBJECT: &str = "ludus.heartbeat";

/// A request to another node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum NodeRequest {
    /// Create a room here (claiming its lease), optionally reserving a first seat.
    Create {
        /// Room type.
        room_type: String,
        /// The room id chosen by the placing node.
        room_id: String,
        /// Seats, if not the type's default.
        max_players: Option<u32>,
        /// Listing metadata.
        metadata: serde_json::Value,
        /// Also reserve a first seat (matchmaking).
        reserve: Option<SeatFor>,
    },
    /// Reserve a seat in a room hosted here.
    Reserve {
        /// The room.
        room_id: String,
        /// Who the seat is for (`name`, and `player` when the lobby knows the player).
        #[serde(flatten)]
        seat: SeatFor,
    },
    /// End a room hosted here.
    Dispose {
        /// The room.
        room_id: String,
    },
    /// Deliver an event into a room hosted here.
    Deliver {
        /// The room.
        room_id: String,
        /// The event, as JSON.
        event: serde_json::Value,
    },
}

/// The answer to a [`NodeRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum NodeResponse {
    /// A room was created (and maybe a seat reserved).
    Created {
        /// The room's listing.
        info: RoomInfo,
        /// The seat, when one was asked for.
        seat: Option<SeatGrant>,
    },
    /// A seat was reserved.
    Reserved {
        /// The seat.
        seat: SeatGrant,
    },
    /// The event was queued for the room's next tick, or the room was told to end.
    Done,
    /// The request failed with a lobby error code.
    Failed {
        /// Stable code (`room_full`, `room_not_found`, ...).
        code: String,
        /// Human-readable explanation.
        message: String,
    },
}
