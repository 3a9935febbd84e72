//! Protocol version 2: the same session, messages and rules as version 1, with compact state.
//!
//! Version 1 sends entities as MessagePack maps of field names, which costs about 53 bytes per
//! moving `arena` player per tick. Version 2 keeps MessagePack as the envelope but replaces the
//! `snapshot` and `delta` messages with `s` and `d`, whose state travels as a bit-packed `bin`:
//! entities by id gap, fields by index from a per-kind [`Schema`] sent in every snapshot, numbers
//! quantized by the schema (the server stores the quantized values, so every client sees the
//! same state bit for bit), acks as steps over the member list. An unchanged entity costs nothing.
//!
//! Every other message (`welcome`, `event`, `error`, `pong`, `redirect`) is unchanged; the
//! layout is specified in PROTOCOL.md §19.
//!
//! ```
//! use ludus_protocol::v2::{self, CompactMessage, CompactRoomState, Roster, Schema};
//! use ludus_protocol::{codec, Delta, Snapshot};
//!
//! let schema = Schema::new();
//! let snapshot = Snapshot { epoch: 1, tick: 4, entities: vec![], acks: vec![] };
//! let part = v2::encode_snapshot(&schema, &snapshot).unwrap();
//! let mut messages = v2::decode_frame(&codec::batch_frame(&[&part])).unwrap();
//! let Some(CompactMessage::Snapshot(received)) = messages.pop() else { panic!("a snapshot") };
//! let mut state = CompactRoomState::from_snapshot(received);
//!
//! let delta = Delta { epoch: 1, tick: 5, base_tick: 4, upserts: vec![], removed: vec![],
//!                     left: vec![], acks: vec![], events: vec![] };
//! let part = v2::encode_delta(&schema, &delta, &Roster::default(), |_| None).unwrap();
//! let mut messages = v2::decode_frame(&codec::batch_frame(&[&part])).unwrap();
//! let Some(CompactMessage::Delta(body)) = messages.pop() else { panic!("a delta") };
//! state.apply_delta(&body).unwrap();
//! assert_eq!(state.state().tick(), 5);
//! ```

mod bits;
mod codec;
mod mirror;
mod quantization;
mod schema;

pub use bits::{BitError, BitReader, BitWriter};
pub use codec::{
    decode_frame, encode_delta, encode_delta_frame, encode_snapshot, CompactMessage,
    CompactSnapshot, DeltaBody, EncodeError, Roster, DELTA_KEY, SNAPSHOT_KEY,
};
pub use mirror::{AppliedDelta, CompactRoomState};
pub use quantization::Quantization;
pub use schema::{
    FieldError, FieldSchema, FieldType, KindSchema, Schema, SchemaError, TypeMismatch, MAX_FIELDS,
};
