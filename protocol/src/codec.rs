//! MessagePack encoding of protocol messages.
//!
//! Structs are encoded as maps with field names (rmp-serde's `to_vec_named`), enums as a
//! one-entry map from the snake_case variant name to the body. A server frame is a MessagePack
//! array of server messages; because a MessagePack array is just a header followed by its
//! elements, the server encodes a tick's shared delta once and assembles each recipient's frame
//! by prefixing a header ([`batch_frame`]), never re-encoding the shared part.

use crate::error::DecodeError;
use crate::messages::{ClientMessage, Delta, ServerMessage};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How deeply nested a decoded value may be. Game payloads are shallow; the limit keeps a
/// hostile frame of nested arrays from exhausting the decoder's stack.
pub const MAX_DEPTH: usize = 32;

fn encode_named<T: Serialize>(message: &T, out: &mut Vec<u8>) {
    let mut serializer = rmp_serde::Serializer::new(out).with_struct_map();
    // expect: writing into a Vec cannot fail, and every protocol type (string map keys,
    // rmpv values) is representable in MessagePack.
    message
        .serialize(&mut serializer)
        .expect("protocol messages always encode");
}

fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut cursor = std::io::Cursor::new(bytes);
    let mut deserializer = rmp_serde::Deserializer::new(&mut cursor);
    deserializer.set_max_depth(MAX_DEPTH);
    let value = T::deserialize(&mut deserializer)?;
    let consumed = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
    match bytes.len().saturating_sub(consumed) {
        0 => Ok(value),
        trailing => Err(DecodeError::TrailingBytes(trailing)),
    }
}

/// Encodes one client message as the payload of a binary frame.
pub fn encode_client(message: &ClientMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_named(message, &mut out);
    out
}

/// Decodes one client frame. Never panics, whatever the bytes.
pub fn decode_client(bytes: &[u8]) -> Result<ClientMessage, DecodeError> {
    decode_exact(bytes)
}

/// Encodes one server message (not yet wrapped in a batch) and appends it to `out`.
pub fn encode_server_into(message: &ServerMessage, out: &mut Vec<u8>) {
    encode_named(message, out);
}

/// Encodes one server message (not yet wrapped in a batch).
pub fn encode_server(message: &ServerMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    encode_named(message, &mut out);
    out
}

/// Encodes `{"delta": delta}`, byte for byte what [`encode_server`] writes for
/// `ServerMessage::Delta`, without cloning the delta (a room encodes one per tick).
///
/// ```
/// use ludus_protocol::{codec, Delta, ServerMessage};
///
/// let delta = Delta { epoch: 1, tick: 2, base_tick: 1, upserts: vec![], removed: vec![],
///                     acks: vec![], events: vec![] };
/// let owned = codec::encode_server(&ServerMessage::Delta(delta.clone()));
/// assert_eq!(codec::encode_delta(&delta), owned);
/// ```
pub fn encode_delta(delta: &Delta) -> Vec<u8> {
    struct Tagged<'a>(&'a Delta);
    impl Serialize for Tagged<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(std::iter::once(("delta", self.0)))
        }
    }
    let mut out = Vec::with_capacity(128);
    encode_named(&Tagged(delta), &mut out);
    out
}

/// Assembles a batch frame from already-encoded server messages.
///
/// ```
/// use ludus_protocol::{codec, Pong, ServerMessage};
///
/// let pong = ServerMessage::Pong(Pong { nonce: 1, tick: 2 });
/// let part = codec::encode_server(&pong);
/// let frame = codec::batch_frame(&[&part]);
/// assert_eq!(codec::decode_batch(&frame).unwrap(), vec![pong]);
/// ```
pub fn batch_frame(parts: &[&[u8]]) -> Vec<u8> {
    let body_len: usize = parts.iter().map(|part| part.len()).sum();
    let mut frame = Vec::with_capacity(body_len + 5);
    // expect: a batch never holds 2^32 messages.
    let count = u32::try_from(parts.len()).expect("batch length fits in u32");
    rmp::encode::write_array_len(&mut frame, count).expect("writing into a Vec cannot fail");
    for part in parts {
        frame.extend_from_slice(part);
    }
    frame
}

/// Encodes a whole batch frame.
pub fn encode_batch(messages: &[ServerMessage]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(128);
    encode_named(&messages, &mut frame);
    frame
}

/// Decodes one server message (not wrapped in a batch).
pub(crate) fn decode_server(bytes: &[u8]) -> Result<ServerMessage, DecodeError> {
    decode_exact(bytes)
}

/// Decodes a server frame into its messages. Never panics, whatever the bytes.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<ServerMessage>, DecodeError> {
    decode_exact(bytes)
}
