//! Fuzzes the protocol version 2 client side: [`ludus_protocol::v2::decode_frame`] and
//! [`ludus_protocol::v2::CompactRoomState::apply_delta`].
//!
//! A version 2 client decodes whatever a server (or a man in the middle) sends: the frame
//! envelope, the schema inside a snapshot, and packed bits whose meaning depends on the client's
//! state. Whatever the bytes, both steps must return `Ok` or `Err` and never panic, overflow or
//! allocate what the bytes only claim to hold. A delta is applied to the frame's own snapshot when
//! it has one, else to a fixed `arena`-like state, so the packed-delta decoder is reached with
//! known entities and kinds; a failed apply must leave the state as it was.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ludus_protocol::v2::{self, CompactMessage, CompactRoomState, CompactSnapshot};
use ludus_protocol::v2::{FieldType, Quantization, Schema};
use ludus_protocol::{Entity, EntityId, InputAck, PlayerId, Snapshot, Value};
use std::collections::BTreeMap;

fuzz_target!(|frame: &[u8]| {
    let Ok(messages) = v2::decode_frame(frame) else {
        return;
    };
    let mut state = fixed_state();
    for message in messages {
        match message {
            CompactMessage::Snapshot(snapshot) => state = CompactRoomState::from_snapshot(snapshot),
            CompactMessage::Delta(body) => {
                let before = state.clone();
                if state.apply_delta(&body).is_err() {
                    assert_eq!(state, before, "a failed apply changed the state");
                }
            }
            CompactMessage::Other(_) => {}
        }
    }
});

/// Tick 100 of a room with a coin (entity 0) and a player (entity 5), `arena`'s schema.
fn fixed_state() -> CompactRoomState {
    let position = FieldType::Quantized(
        Quantization::new(0.0, 1000.0, 0.05).expect("arena's quantization is valid"),
    );
    let schema = Schema::new()
        .with_kind("player", [("player", FieldType::UInt), ("x", position)])
        .and_then(|schema| schema.with_kind("coin", [("x", position), ("y", position)]))
        .expect("a valid schema");
    let entity = |id, kind: &str, fields: &[(&str, Value)]| Entity {
        id: EntityId(id),
        kind: kind.to_owned(),
        fields: fields
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect::<BTreeMap<_, _>>(),
    };
    CompactRoomState::from_snapshot(CompactSnapshot {
        schema,
        snapshot: Snapshot {
            epoch: 9,
            tick: 100,
            entities: vec![
                entity(0, "coin", &[("x", Value::F32(10.0)), ("y", Value::F32(20.0))]),
                entity(5, "player", &[("player", Value::from(42u64)), ("x", Value::F32(12.0))]),
            ],
            acks: vec![InputAck {
                player: PlayerId(42),
                seq: 0,
            }],
        },
    })
}
