//! Fuzzes the lobby's JSON request bodies through [`ludus_server::http::bodies::decode_any`],
//! which runs every body decoder the HTTP API has (create room, seat, matchmake, room message and
//! region announcement) with the server's size limit and the depth checks its handlers apply.
//!
//! These bodies come from anyone who can reach the lobby port (matchmake, seats) or hold an
//! operator token (messages, announcements), so whatever the bytes, decoding must return an
//! error or a value and never panic or recurse without bound; a panic there would cost a worker.
//!
//! The target also checks the promise of `MAX_PAYLOAD_DEPTH` in `server/src/http/bodies.rs`: a
//! message payload that passes the depth check, once converted to MessagePack and broadcast as a
//! room message or an announcement, as deep as a delta nests its events, gives a frame that a
//! client's
//! [`ludus_protocol::codec::decode_batch`] accepts and decodes to the same event. A payload the
//! server accepts but clients refuse would disconnect every member of the room.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ludus_protocol::{codec, Event, ServerMessage, Value};
use ludus_server::http::bodies::{check_depth, decode_any, decode_json, MessageBody};
use ludus_server::lobby::{announcement_event, json_value, message_event};

fuzz_target!(|body: &[u8]| {
    decode_any(body);

    let Ok(message) = decode_json::<MessageBody>(body) else {
        return;
    };
    if check_depth("payload", &message.payload).is_err() {
        return;
    }
    let events = [
        json_value(&message_event(message.payload.clone())),
        json_value(&announcement_event("eu", message.payload)),
    ];
    for event in events {
        // The first copy sits as deep as an event in a delta's `events` list (batch, message,
        // body, list, event) without naming every field of `Delta`, which grows with the
        // protocol; the second is an event addressed to one player.
        let as_in_a_delta = ServerMessage::Event(Event {
            payload: Value::Array(vec![event.clone()]),
        });
        let addressed = ServerMessage::Event(Event { payload: event });
        let batch = [as_in_a_delta, addressed];
        let frame = codec::encode_batch(&batch);
        match codec::decode_batch(&frame) {
            Ok(decoded) => assert_eq!(decoded, batch, "the event changed on its way to clients"),
            Err(error) => panic!("clients refuse the frame of an accepted payload: {error}"),
        }
    }
});
