//! Protocol version 2: golden bytes, round trips, and a decoder that never panics.
//!
//! The golden frames are the ones dumped in `protocol/PROTOCOL.md` §19 (the same scenario as
//! the version 1 dumps of §16), so a client author can check their decoder against them; any
//! change here is a wire change and needs a protocol version bump.

mod common;

use common::{example_delta as delta, example_snapshot as snapshot, expected, hex};
use ludus_protocol::v2::{
    self, CompactMessage, CompactRoomState, CompactSnapshot, FieldType, Quantization, Roster,
    Schema,
};
use ludus_protocol::{codec, EntityId, PlayerId};
use proptest::prelude::*;

/// `arena`'s schema, as the server declares it.
fn arena_schema() -> Schema {
    let position = FieldType::Quantized(Quantization::new(0.0, 1000.0, 0.05).expect("valid"));
    Schema::new()
        .with_kind(
            "player",
            [
                ("player", FieldType::UInt),
                ("name", FieldType::Str),
                ("x", position),
                ("y", position),
                ("score", FieldType::UInt),
            ],
        )
        .and_then(|schema| schema.with_kind("coin", [("x", position), ("y", position)]))
        .expect("valid")
}

fn roster() -> Roster {
    Roster {
        left: vec![],
        joined: vec![],
        ack_steps: vec![(PlayerId(42), 7)],
    }
}

fn snapshot_frame() -> Vec<u8> {
    let part = v2::encode_snapshot(&arena_schema(), &snapshot()).expect("encodes");
    codec::batch_frame(&[&part])
}

fn delta_frame() -> Vec<u8> {
    let kind_of = |id: EntityId| (id == EntityId(5)).then_some("player");
    let part = v2::encode_delta(&arena_schema(), &delta(), &roster(), kind_of).expect("encodes");
    codec::batch_frame(&[&part])
}

fn received_snapshot() -> CompactSnapshot {
    match v2::decode_frame(&snapshot_frame()).expect("decodes").pop() {
        Some(CompactMessage::Snapshot(snapshot)) => snapshot,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

fn mirror() -> CompactRoomState {
    CompactRoomState::from_snapshot(received_snapshot())
}

#[test]
fn snapshot_encodes_to_the_documented_bytes() {
    assert_eq!(hex(&snapshot_frame()), expected(SNAPSHOT_DUMP));
}

#[test]
fn delta_encodes_to_the_documented_bytes() {
    assert_eq!(hex(&delta_frame()), expected(DELTA_DUMP));
}

#[test]
fn a_snapshot_decodes_to_the_state_and_schema_it_was_made_from() {
    let received = received_snapshot();
    assert_eq!(received.schema, arena_schema());
    assert_eq!(received.snapshot, snapshot());
}

#[test]
fn a_delta_applies_like_its_version_1_twin() {
    let mut compact = mirror();
    let Some(CompactMessage::Delta(body)) =
        v2::decode_frame(&delta_frame()).expect("decodes").pop()
    else {
        panic!("expected a delta")
    };
    let decoded = compact.apply_delta(&body).expect("applies");
    assert_eq!(decoded, v2::AppliedDelta::from(delta()));
    let mut plain = ludus_protocol::RoomState::from_snapshot(snapshot());
    plain.apply(&delta()).expect("applies");
    assert_eq!(compact.state(), &plain);
}

#[test]
fn a_delta_for_another_base_tick_is_a_gap_and_changes_nothing() {
    let mut compact = mirror();
    let mut late = delta();
    late.base_tick = 99;
    let part =
        v2::encode_delta(&arena_schema(), &late, &roster(), |_| Some("player")).expect("encodes");
    let Some(CompactMessage::Delta(body)) = v2::decode_frame(&codec::batch_frame(&[&part]))
        .expect("decodes")
        .pop()
    else {
        panic!("expected a delta")
    };
    let before = compact.clone();
    assert!(compact.apply_delta(&body).is_err());
    assert_eq!(compact, before);
}

/// Runs both decoding steps a client runs; only the absence of panics is checked.
fn decode_and_apply(bytes: &[u8]) {
    if let Ok(messages) = v2::decode_frame(bytes) {
        let mut state = mirror();
        for message in messages {
            if let CompactMessage::Delta(body) = message {
                let _ = state.apply_delta(&body);
            }
        }
    }
    let _ = mirror().apply_delta(&v2::DeltaBody {
        packed: bytes.to_vec(),
        events: vec![],
    });
}

proptest! {
    #[test]
    fn decoding_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_and_apply(&bytes);
    }

    #[test]
    fn decoding_mutated_frames_never_panics(
        snapshot in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut frame = if snapshot { snapshot_frame() } else { delta_frame() };
        for (position, bit) in flips {
            let at = position.index(frame.len());
            frame[at] ^= 1 << bit;
        }
        decode_and_apply(&frame);
        decode_and_apply(&frame[..cut.index(frame.len())]);
    }
}

/// `[{"s": [9, 100, schema, packed]}]`, as in PROTOCOL.md §19.
const SNAPSHOT_DUMP: &str = "
    9181a1739409649292a6706c617965729592a6706c61796572a475696e7492a4
    6e616d65a373747295a178a97175616e74697a6564cb0000000000000000cb3f
    a999999999999acd4e2095a179a97175616e74697a6564cb0000000000000000
    cb3fa999999999999acd4e2092a573636f7265a475696e7492a4636f696e9295
    a178a97175616e74697a6564cb0000000000000000cb3fa999999999999acd4e
    2095a179a97175616e74697a6564cb0000000000000000cb3fa999999999999a
    cd4e20c4121021603200c80fe94d85b9b8078019001a50
";

/// `[{"d": [packed, event]}]`, as in PROTOCOL.md §19.
const DELTA_DUMP: &str = "
    9181a16492c40fdc111000dc4a0280c81969c409c40083a474797065a4636f69
    6ea6706c617965722aa573636f726501
";

#[test]
fn version_1_messages_decode_inside_version_2_frames() {
    let pong = ludus_protocol::ServerMessage::Pong(ludus_protocol::Pong { nonce: 1, tick: 2 });
    let part = codec::encode_server(&pong);
    let decoded = v2::decode_frame(&codec::batch_frame(&[&part]));
    assert_eq!(decoded, Ok(vec![CompactMessage::Other(pong)]));
}
