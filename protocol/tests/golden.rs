//! Golden bytes: the exact MessagePack the codec writes for a few concrete messages.
//!
//! These are the dumps printed in `protocol/PROTOCOL.md` ("Hex dumps"). A client author in another
//! language checks their encoder and decoder against them, so any change here is a wire change:
//! it needs a protocol version bump (see the version rule in `PROTOCOL.md`), and the dumps in
//! `PROTOCOL.md` must be updated with it.

mod common;

use common::{example_delta, example_snapshot, expected, hex};
use ludus_protocol::{
    codec, ClientMessage, Hello, Input, PlayerId, RoomId, ServerMessage, Value, Welcome,
};

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(key, value)| (Value::from(*key), value.clone()))
            .collect(),
    )
}

fn room_id() -> RoomId {
    RoomId::parse("r-1").expect("`r-1` is a valid room id")
}

fn hello() -> ClientMessage {
    ClientMessage::Hello(Hello {
        protocol: 1,
        token: "tok".to_owned(),
        resume: None,
    })
}

fn input() -> ClientMessage {
    ClientMessage::Input(Input {
        seq: 7,
        ack_tick: 100,
        payload: map(&[("dx", Value::F64(1.0)), ("dy", Value::F64(-0.5))]),
    })
}

fn welcome() -> ServerMessage {
    ServerMessage::Welcome(Welcome {
        session: 3,
        player: PlayerId(42),
        room: room_id(),
        room_type: "arena".to_owned(),
        epoch: 9,
        tick_hz: 20,
        window: 40,
        resume_token: None,
        resumed: false,
        ticks_lost: None,
    })
}

fn snapshot() -> ServerMessage {
    ServerMessage::Snapshot(example_snapshot())
}

fn delta() -> ServerMessage {
    ServerMessage::Delta(example_delta())
}

const HELLO: &str = "
81 a5 68656c6c6f
   82 a8 70726f746f636f6c 01
      a5 746f6b656e a3 746f6b
";

const INPUT: &str = "
81 a5 696e707574
   83 a3 736571 07
      a8 61636b5f7469636b 64
      a7 7061796c6f6164 82 a2 6478 cb 3ff0000000000000
                           a2 6479 cb bfe0000000000000
";

const WELCOME_AND_SNAPSHOT: &str = "
92
81 a7 77656c636f6d65
   87 a7 73657373696f6e 03
      a6 706c61796572 2a
      a4 726f6f6d a3 722d31
      a9 726f6f6d5f74797065 a5 6172656e61
      a5 65706f6368 09
      a7 7469636b5f687a 14
      a6 77696e646f77 28
81 a8 736e617073686f74
   84 a5 65706f6368 09
      a4 7469636b 64
      a8 656e746974696573 92
         83 a2 6964 00
            a4 6b696e64 a4 636f696e
            a6 6669656c6473 82 a1 78 ca 41200000
                               a1 79 ca 41a00000
         83 a2 6964 05
            a4 6b696e64 a6 706c61796572
            a6 6669656c6473 85 a4 6e616d65 a3 616e6e
                               a6 706c61796572 2a
                               a5 73636f7265 00
                               a1 78 ca 41400000
                               a1 79 ca 41a00000
      a4 61636b73 91 82 a6 706c61796572 2a
                        a3 736571 00
";

const DELTA: &str = "
91
81 a5 64656c7461
   87 a5 65706f6368 09
      a4 7469636b 65
      a9 626173655f7469636b 64
      a7 75707365727473 92
         82 a2 6964 05
            a6 6669656c6473 82 a5 73636f7265 01
                               a1 78 ca 41200000
         83 a2 6964 06
            a4 6b696e64 a4 636f696e
            a6 6669656c6473 82 a1 78 ca 43fa0000
                               a1 79 ca 437a0000
      a7 72656d6f766564 91 00
      a4 61636b73 91 82 a6 706c61796572 2a
                        a3 736571 07
      a6 6576656e7473 91 83 a4 74797065 a4 636f696e
                            a6 706c61796572 2a
                            a5 73636f7265 01
";

#[test]
fn hello_encodes_to_the_documented_bytes() {
    let bytes = codec::encode_client(&hello());
    assert_eq!(hex(&bytes), expected(HELLO));
    assert_eq!(codec::decode_client(&bytes).expect("decodes"), hello());
}

#[test]
fn input_encodes_to_the_documented_bytes() {
    let bytes = codec::encode_client(&input());
    assert_eq!(hex(&bytes), expected(INPUT));
    assert_eq!(codec::decode_client(&bytes).expect("decodes"), input());
}

#[test]
fn welcome_and_snapshot_batch_encodes_to_the_documented_bytes() {
    let messages = [welcome(), snapshot()];
    let whole = codec::encode_batch(&messages);
    assert_eq!(hex(&whole), expected(WELCOME_AND_SNAPSHOT));
    // The server assembles this frame from separately encoded parts; both paths agree.
    let welcome_part = codec::encode_server(&messages[0]);
    let snapshot_part = codec::encode_server(&messages[1]);
    assert_eq!(codec::batch_frame(&[&welcome_part, &snapshot_part]), whole);
    assert_eq!(codec::decode_batch(&whole).expect("decodes"), messages);
}

#[test]
fn delta_batch_encodes_to_the_documented_bytes() {
    let whole = codec::encode_batch(&[delta()]);
    assert_eq!(hex(&whole), expected(DELTA));
    let part = codec::encode_server(&delta());
    assert_eq!(codec::batch_frame(&[&part]), whole);
    assert_eq!(codec::decode_batch(&whole).expect("decodes"), vec![delta()]);
}

#[test]
fn absent_optional_fields_are_omitted_and_accepted_when_missing() {
    // `resume_token` (welcome) and `kind` (upsert) are left out entirely when absent: the
    // welcome above has 7 keys, not 8, and the first upsert has 2, not 3.
    let bytes = codec::encode_server(&welcome());
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("resume_token"));
    // A present `kind` is a string; an explicit nil decodes as absent too.
    let with_nil_kind = expected(
        "91 81 a5 64656c7461 87 a5 65706f6368 09 a4 7469636b 02 a9 626173655f7469636b 01
         a7 75707365727473 91 83 a2 6964 05 a4 6b696e64 c0 a6 6669656c6473 80
         a7 72656d6f766564 90 a4 61636b73 90 a6 6576656e7473 90",
    );
    let bytes: Vec<u8> = (0..with_nil_kind.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&with_nil_kind[at..at + 2], 16).expect("hex"))
        .collect();
    let decoded = codec::decode_batch(&bytes).expect("nil kind decodes");
    let [ServerMessage::Delta(delta)] = decoded.as_slice() else {
        panic!("one delta expected, got {decoded:?}");
    };
    assert_eq!(delta.upserts[0].kind, None);
}

#[test]
fn unknown_fields_are_ignored_so_fields_can_be_added_compatibly() {
    // {"ping": {"nonce": 5, "later": true}}
    let bytes = [
        0x81, 0xa4, b'p', b'i', b'n', b'g', 0x82, 0xa5, b'n', b'o', b'n', b'c', b'e', 0x05, 0xa5,
        b'l', b'a', b't', b'e', b'r', 0xc3,
    ];
    assert_eq!(
        codec::decode_client(&bytes).expect("unknown field ignored"),
        ClientMessage::Ping(ludus_protocol::Ping { nonce: 5 })
    );
}

#[test]
fn empty_messages_are_empty_maps() {
    // {"resync": {}} and {"leave": {}}
    let resync = codec::encode_client(&ClientMessage::Resync(ludus_protocol::Resync {}));
    assert_eq!(hex(&resync), "81a6726573796e6380");
    let leave = codec::encode_client(&ClientMessage::Leave(ludus_protocol::Leave {}));
    assert_eq!(hex(&leave), "81a56c6561766580");
}
