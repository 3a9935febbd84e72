//! Fuzzes the decoder of client frames, [`ludus_protocol::codec::decode_client`].
//!
//! Every binary WebSocket frame a client sends reaches this function before anything else looks
//! at it, so it is the first trust boundary of a session: whatever the bytes, it must return
//! `Ok` or `Err` and never panic, overflow the stack or allocate what the frame only claims to
//! hold (libFuzzer's `-rss_limit_mb` and `-malloc_limit_mb` catch the last two).
//!
//! When a frame decodes, the target also checks the round trip the server and the bot client
//! rely on:
//!
//! 1. re-encoding the message with [`ludus_protocol::codec::encode_client`] gives bytes that
//!    decode again to an equal message;
//! 2. encoding that second message gives the same bytes as the first encoding, so the encoding
//!    is canonical after one trip. This also covers payloads holding NaN, where `PartialEq`
//!    cannot (NaN never equals itself), and pins the exact float bits.
//!
//! The input bytes themselves need not come back: MessagePack has several encodings of one value
//! (an integer in a wider format than needed, unknown fields the decoder skips).

#![no_main]

use libfuzzer_sys::fuzz_target;
use ludus_protocol::codec::{decode_client, encode_client};
use ludus_protocol::Value;

fuzz_target!(|frame: &[u8]| {
    let Ok(message) = decode_client(frame) else {
        return;
    };
    let encoded = encode_client(&message);
    let decoded_again = match decode_client(&encoded) {
        Ok(decoded_again) => decoded_again,
        Err(error) => {
            panic!("{message:?} encodes to {encoded:02x?}, which fails to decode: {error}")
        }
    };
    if !holds_nan(&encoded) {
        assert_eq!(decoded_again, message, "round trip changed the message");
    }
    let encoded_again = encode_client(&decoded_again);
    assert_eq!(
        encoded_again, encoded,
        "encoding is not stable across a round trip of {message:?}"
    );
});

/// Whether any float in an encoded message is NaN, which makes `PartialEq` false on equal
/// messages. Reads the encoding as a plain MessagePack tree, so it needs no update when the
/// protocol gains a message or a field.
fn holds_nan(encoded: &[u8]) -> bool {
    let mut rest = encoded;
    // The bytes are `encode_client`'s own output, so reading them back as a tree succeeds.
    rmpv::decode::read_value(&mut rest).is_ok_and(|value| value_holds_nan(&value))
}

fn value_holds_nan(value: &Value) -> bool {
    match value {
        Value::F32(float) => float.is_nan(),
        Value::F64(float) => float.is_nan(),
        Value::Array(elements) => elements.iter().any(value_holds_nan),
        Value::Map(entries) => entries
            .iter()
            .any(|(key, entry)| value_holds_nan(key) || value_holds_nan(entry)),
        Value::Nil
        | Value::Boolean(_)
        | Value::Integer(_)
        | Value::String(_)
        | Value::Binary(_)
        | Value::Ext(..) => false,
    }
}
