//! The Ludus wire protocol.
//!
//! This crate is the single source of truth for what travels over a Ludus WebSocket: typed
//! messages ([`ClientMessage`], [`ServerMessage`]), their MessagePack encoding ([`codec`]), the
//! documented error and close codes ([`codes`]), and the client-side mirror of a room's state
//! ([`RoomState`]) that applies snapshots and deltas exactly as every client must.
//!
//! It deliberately depends on no runtime (no actix, no tokio): the server, the bot client and
//! any test harness share it, and a client in another language needs only `PROTOCOL.md`.
//!
//! ```
//! use ludus_protocol::{codec, ClientMessage, Hello, PROTOCOL_VERSION};
//!
//! let hello = ClientMessage::Hello(Hello { protocol: PROTOCOL_VERSION, token: "t".into() });
//! let bytes = codec::encode_client(&hello);
//! assert_eq!(codec::decode_client(&bytes).unwrap(), hello);
//! ```

pub mod codec;
pub mod codes;
mod error;
mod ids;
mod messages;
mod state;

pub use codes::{CloseCode, ErrorCode};
pub use error::{ApplyError, DecodeError};
pub use ids::{EntityId, InvalidRoomId, PlayerId, RoomId};
pub use messages::{
    Ack, ClientMessage, Delta, Entity, EntityUpdate, ErrorMessage, Event, Hello, Input, InputAck,
    Leave, Ping, Pong, Redirect, Resync, ServerMessage, Snapshot, Welcome,
};
pub use rmpv::Value;
pub use state::RoomState;

/// The protocol version this crate speaks. A server refuses a `hello` carrying any other
/// version with [`CloseCode::ProtocolVersion`]; bump it on every incompatible change.
pub const PROTOCOL_VERSION: u16 = 1;
