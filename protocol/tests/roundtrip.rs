//! Property tests of the codec: every message survives encode → decode unchanged, and the
//! decoders never panic on any bytes (random, or valid frames truncated and bit-flipped).
//!
//! Payloads are arbitrary `rmpv::Value` trees of bounded depth, so game data of any shape is
//! covered. Case counts are kept small enough for a debug build to finish in seconds.

use ludus_protocol::{
    codec, Ack, ClientMessage, Delta, Entity, EntityId, EntityUpdate, ErrorCode, ErrorMessage,
    Event, Hello, Input, InputAck, Leave, Ping, PlayerId, Pong, Redirect, Resume, Resync, RoomId,
    ServerMessage, Snapshot, Value, Welcome,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Leaves of a payload tree. NaN is excluded only because NaN != NaN would fail the equality
/// check, not the codec.
fn leaf_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f32>()
            .prop_filter("NaN never equals itself", |x| !x.is_nan())
            .prop_map(Value::F32),
        any::<f64>()
            .prop_filter("NaN never equals itself", |x| !x.is_nan())
            .prop_map(Value::F64),
        ".{0,12}".prop_map(Value::from),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::Binary),
        (any::<i8>(), prop::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(tag, data)| Value::Ext(tag, data)),
    ]
}

/// Payload trees up to 4 levels deep (far below the decoder's depth limit of 32).
fn payload() -> impl Strategy<Value = Value> {
    leaf_value().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((inner.clone(), inner), 0..6).prop_map(Value::Map),
        ]
    })
}

fn fields() -> impl Strategy<Value = BTreeMap<String, Value>> {
    prop::collection::btree_map("[a-z_]{1,8}", payload(), 0..5)
}

fn room_id() -> impl Strategy<Value = RoomId> {
    "[A-Za-z0-9_-]{1,64}".prop_map(|id| RoomId::parse(&id).expect("strategy yields valid ids"))
}

fn input_ack() -> impl Strategy<Value = InputAck> {
    (any::<u64>(), any::<u32>()).prop_map(|(player, seq)| InputAck {
        player: PlayerId(player),
        seq,
    })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop::sample::select(vec![
        ErrorCode::MalformedMessage,
        ErrorCode::MessageTooLarge,
        ErrorCode::UnexpectedMessage,
        ErrorCode::ProtocolVersion,
        ErrorCode::MissingToken,
        ErrorCode::InvalidToken,
        ErrorCode::TokenExpired,
        ErrorCode::TokenWrongRoom,
        ErrorCode::RoomNotFound,
        ErrorCode::RoomFull,
        ErrorCode::SeatNotReserved,
        ErrorCode::RateLimited,
        ErrorCode::InvalidInput,
        ErrorCode::ServerBusy,
    ])
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (
            any::<u16>(),
            ".{0,40}",
            prop::option::of((".{0,40}", any::<u64>()))
        )
            .prop_map(|(protocol, token, resume)| ClientMessage::Hello(Hello {
                protocol,
                token,
                resume: resume.map(|(token, last_tick)| Resume { token, last_tick }),
            })),
        (any::<u32>(), any::<u64>(), payload()).prop_map(|(seq, ack_tick, payload)| {
            ClientMessage::Input(Input {
                seq,
                ack_tick,
                payload,
            })
        }),
        any::<u64>().prop_map(|tick| ClientMessage::Ack(Ack { tick })),
        Just(ClientMessage::Resync(Resync {})),
        Just(ClientMessage::Leave(Leave {})),
        any::<u64>().prop_map(|nonce| ClientMessage::Ping(Ping { nonce })),
    ]
}

fn welcome() -> impl Strategy<Value = Welcome> {
    (
        (any::<u64>(), any::<u64>(), room_id(), "[a-z]{1,12}"),
        (any::<u64>(), any::<u16>(), any::<u32>()),
        (
            prop::option::of(".{0,20}"),
            any::<bool>(),
            prop::option::of(any::<u64>()),
        ),
    )
        .prop_map(
            |(
                (session, player, room, room_type),
                (epoch, tick_hz, window),
                (resume_token, resumed, ticks_lost),
            )| {
                Welcome {
                    session,
                    player: PlayerId(player),
                    room,
                    room_type,
                    epoch,
                    tick_hz,
                    window,
                    resume_token,
                    resumed,
                    ticks_lost,
                }
            },
        )
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    let entity = (any::<u32>(), "[a-z]{1,8}", fields()).prop_map(|(id, kind, fields)| Entity {
        id: EntityId(id),
        kind,
        fields,
    });
    (
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(entity, 0..4),
        prop::collection::vec(input_ack(), 0..4),
    )
        .prop_map(|(epoch, tick, entities, acks)| Snapshot {
            epoch,
            tick,
            entities,
            acks,
        })
}

fn delta() -> impl Strategy<Value = Delta> {
    let update =
        (any::<u32>(), prop::option::of("[a-z]{1,8}"), fields()).prop_map(|(id, kind, fields)| {
            EntityUpdate {
                id: EntityId(id),
                kind,
                fields,
            }
        });
    (
        (any::<u64>(), any::<u64>(), any::<u64>()),
        prop::collection::vec(update, 0..4),
        prop::collection::vec(any::<u32>().prop_map(EntityId), 0..4),
        prop::collection::vec(input_ack(), 0..4),
        prop::collection::vec(payload(), 0..3),
    )
        .prop_map(
            |((epoch, tick, base_tick), upserts, removed, acks, events)| Delta {
                epoch,
                tick,
                base_tick,
                upserts,
                removed,
                left: Vec::new(),
                acks,
                events,
            },
        )
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        welcome().prop_map(ServerMessage::Welcome),
        snapshot().prop_map(ServerMessage::Snapshot),
        delta().prop_map(ServerMessage::Delta),
        payload().prop_map(|payload| ServerMessage::Event(Event { payload })),
        (error_code(), ".{0,40}")
            .prop_map(|(code, message)| ServerMessage::Error(ErrorMessage { code, message })),
        (any::<u64>(), any::<u64>())
            .prop_map(|(nonce, tick)| ServerMessage::Pong(Pong { nonce, tick })),
        (
            "[a-z0-9-]{1,20}",
            "[a-z0-9-]{1,12}",
            "ws://[a-z0-9.:/]{1,40}"
        )
            .prop_map(|(room, node, ws_url)| ServerMessage::Redirect(Redirect {
                room: RoomId::parse(&room).expect("generated ids are valid"),
                node,
                ws_url,
            })),
    ]
}

fn batch() -> impl Strategy<Value = Vec<ServerMessage>> {
    prop::collection::vec(server_message(), 0..4)
}

/// Which decoder a valid frame is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ClientToServer,
    ServerToClient,
}

/// A valid client or server frame, so mutations start from something nearly valid.
fn valid_frame() -> impl Strategy<Value = (Direction, Vec<u8>)> {
    prop_oneof![
        client_message()
            .prop_map(|message| (Direction::ClientToServer, codec::encode_client(&message))),
        batch().prop_map(|messages| (Direction::ServerToClient, codec::encode_batch(&messages))),
    ]
}

fn decodes(direction: Direction, bytes: &[u8]) -> bool {
    match direction {
        Direction::ClientToServer => codec::decode_client(bytes).is_ok(),
        Direction::ServerToClient => codec::decode_batch(bytes).is_ok(),
    }
}

/// Runs both decoders; the only requirement is that they return (`Ok` or `Err`) at all.
fn decode_both(bytes: &[u8]) {
    let _ = codec::decode_client(bytes);
    let _ = codec::decode_batch(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_client_message_round_trips(message in client_message()) {
        let bytes = codec::encode_client(&message);
        prop_assert_eq!(codec::decode_client(&bytes).expect("valid encoding decodes"), message);
    }

    #[test]
    fn any_server_batch_round_trips(messages in batch()) {
        let frame = codec::encode_batch(&messages);
        prop_assert_eq!(&codec::decode_batch(&frame).expect("valid encoding decodes"), &messages);
        // The server's way of building frames (parts encoded once, then a header) is identical.
        let parts: Vec<Vec<u8>> = messages.iter().map(codec::encode_server).collect();
        let part_slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(codec::batch_frame(&part_slices), frame);
    }

    #[test]
    fn decoders_never_panic_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_both(&bytes);
    }

    #[test]
    fn truncated_frames_are_refused_without_panicking(
        (direction, frame) in valid_frame(),
        cut in any::<prop::sample::Index>(),
    ) {
        // Every strict prefix of a MessagePack object is incomplete, so it must be an `Err`.
        let truncated = &frame[..cut.index(frame.len())];
        decode_both(truncated);
        prop_assert!(!decodes(direction, truncated));
    }

    #[test]
    fn decoders_never_panic_on_bit_flips(
        (_direction, frame) in valid_frame(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..8),
    ) {
        let mut mutated = frame;
        if !mutated.is_empty() {
            for (position, bit) in flips {
                let at = position.index(mutated.len());
                mutated[at] ^= 1 << bit;
            }
        }
        decode_both(&mutated);
    }

    #[test]
    fn decoders_never_panic_on_spliced_bytes(
        (_direction, frame) in valid_frame(),
        at in any::<prop::sample::Index>(),
        junk in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let mut mutated = frame;
        let position = at.index(mutated.len() + 1);
        mutated.splice(position..position, junk);
        decode_both(&mutated);
    }
}

#[test]
fn deeply_nested_payloads_are_refused_not_overflowed() {
    // {"input": {"seq": 1, "ack_tick": 0, "payload": [[[[...]]]]}} nested 100 000 deep.
    let mut bytes = vec![0x81, 0xa5];
    bytes.extend_from_slice(b"input");
    bytes.extend_from_slice(&[0x83, 0xa3]);
    bytes.extend_from_slice(b"seq");
    bytes.push(0x01);
    bytes.push(0xa8);
    bytes.extend_from_slice(b"ack_tick");
    bytes.push(0x00);
    bytes.push(0xa7);
    bytes.extend_from_slice(b"payload");
    bytes.extend(std::iter::repeat_n(0x91, 100_000));
    bytes.push(0xc0);
    assert!(codec::decode_client(&bytes).is_err());
    let batch: Vec<u8> = std::iter::repeat_n(0x91, 100_000).collect();
    assert!(codec::decode_batch(&batch).is_err());
}

#[test]
fn huge_length_headers_fail_without_allocating_them() {
    // An array header claiming 2^32 - 1 messages, a map claiming as many fields, a string and a
    // binary claiming 4 GiB: each must fail fast on the missing bytes.
    for bytes in [
        vec![0xdd, 0xff, 0xff, 0xff, 0xff],
        vec![0xdf, 0xff, 0xff, 0xff, 0xff],
        vec![0x91, 0xdb, 0xff, 0xff, 0xff, 0xff, b'x'],
        vec![0x81, 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00],
    ] {
        assert!(codec::decode_client(&bytes).is_err());
        assert!(codec::decode_batch(&bytes).is_err());
    }
}

#[test]
fn trailing_bytes_after_a_message_are_refused() {
    let mut bytes = codec::encode_client(&ClientMessage::Ack(Ack { tick: 1 }));
    bytes.push(0xc0);
    assert!(codec::decode_client(&bytes).is_err());
}

#[test]
fn a_server_frame_must_be_an_array() {
    // A single server message not wrapped in an array is not a frame.
    let pong = codec::encode_server(&ServerMessage::Pong(Pong { nonce: 1, tick: 2 }));
    assert!(codec::decode_batch(&pong).is_err());
}
