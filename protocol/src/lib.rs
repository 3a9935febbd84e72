//! The Ludus wire protocol.
//!
//! This crate is the single source of truth for what travels over a Ludus WebSocket: typed
//! messages ([`ClientMessage`], [`ServerMessage`]), their MessagePack encoding ([`codec`]), the
//! documented error and close codes ([`codes`]), and the client-side mirror of a room's state
//! ([`RoomState`]) that applies snapshots and deltas exactly as every client must. Protocol
//! version 2 ([`v2`]) packs snapshots and deltas compactly; everything else is shared.
//!
//! It deliberately depends on no runtime (no actix, no tokio): the server, the bot client and
//! any test harness share it, and a client in another language needs only `PROTOCOL.md`.
//!
//! ```
//! use ludus_protocol::{codec, ClientMessage, Hello, PROTOCOL_VERSION};
//!
//! let hello = ClientMessage::Hello(Hello {
//!     protocol: PROTOCOL_VERSION,
//!     token: "t".into(),
//!     resume: None,
//! });
//! let bytes = codec::encode_client(&hello);
//! assert_eq!(codec::decode_client(&bytes).unwrap(), hello);
//! ```

pub mod codec;
pub mod codes;
mod error;
mod ids;
mod messages;
mod state;
pub mod v2;

pub use codes::{CloseCode, ErrorCode};
pub use error::{ApplyError, CompactError, DecodeError};
pub use ids::{EntityId, InvalidRoomId, PlayerId, RoomId};
pub use messages::{
    Ack, ClientMessage, Delta, Entity, EntityUpdate, ErrorMessage, Event, Hello, Input, InputAck,
    Leave, Ping, Pong, Redirect, Resume, Resync, ServerMessage, Snapshot, Welcome,
};
pub use rmpv::Value;
pub use state::RoomState;

/// Protocol version 1, the baseline (named field maps). A server refuses a `hello` carrying a
/// version it does not speak with [`CloseCode::ProtocolVersion`].
pub const PROTOCOL_VERSION: u16 = 1;

/// A protocol version this crate speaks, as announced in `hello.protocol`.
///
/// ```
/// use ludus_protocol::ProtocolVersion;
/// assert_eq!(ProtocolVersion::from_hello(2), Some(ProtocolVersion::V2));
/// assert_eq!(ProtocolVersion::from_hello(3), None);
/// assert_eq!(ProtocolVersion::V1.number(), 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// Version 1: snapshots and deltas as maps of named fields.
    V1,
    /// Version 2: compact, schema-driven snapshots and deltas ([`v2`]).
    V2,
}

impl ProtocolVersion {
    /// Every version, oldest first.
    pub const ALL: [Self; 2] = [Self::V1, Self::V2];

    /// The version a client announced, if this crate speaks it.
    pub fn from_hello(protocol: u16) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|version| version.number() == protocol)
    }

    /// The number sent in `hello.protocol`.
    pub fn number(self) -> u16 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }
}
