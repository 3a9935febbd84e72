//! Recorded-frame builders shared by the session's unit tests and the resume tests.

use super::Session;
use ludus_protocol::{
    codec, Ack, ClientMessage, Delta, Entity, EntityId, EntityUpdate, InputAck, PlayerId,
    ProtocolVersion, RoomId, ServerMessage, Snapshot, Value, Welcome,
};
use std::collections::BTreeMap;
use std::time::Instant;

/// The room's epoch in every fixture.
pub(super) const EPOCH: u64 = 7;
/// The player the session under test plays as.
pub(super) const ME: PlayerId = PlayerId(42);

/// A first `welcome` carrying resume token `t1`.
pub(super) fn welcome(window: u32) -> ServerMessage {
    ServerMessage::Welcome(Welcome {
        session: 1,
        player: ME,
        room: RoomId::parse("r1").expect("valid id"),
        room_type: "arena".into(),
        epoch: EPOCH,
        tick_hz: 20,
        window,
        resume_token: Some("t1".into()),
        resumed: false,
        ticks_lost: None,
    })
}

/// The `welcome` answering a resume, carrying the next token.
pub(super) fn resumed_welcome(epoch: u64, next_token: &str) -> ServerMessage {
    ServerMessage::Welcome(Welcome {
        session: 2,
        player: ME,
        room: RoomId::parse("r1").expect("valid id"),
        room_type: "arena".into(),
        epoch,
        tick_hz: 20,
        window: 32,
        resume_token: Some(next_token.into()),
        resumed: true,
        ticks_lost: None,
    })
}

/// A snapshot with one entity.
pub(super) fn snapshot(epoch: u64, tick: u64, acks: Vec<InputAck>) -> ServerMessage {
    let fields = BTreeMap::from([("x".to_owned(), Value::from(0.0))]);
    ServerMessage::Snapshot(Snapshot {
        epoch,
        tick,
        entities: vec![Entity {
            id: EntityId(1),
            kind: "player".into(),
            fields,
        }],
        acks,
    })
}

/// The delta from `base_tick` to the next tick, moving entity 1.
pub(super) fn delta(epoch: u64, base_tick: u64, acks: Vec<InputAck>) -> ServerMessage {
    let fields = BTreeMap::from([("x".to_owned(), Value::from(base_tick as f64))]);
    ServerMessage::Delta(Delta {
        epoch,
        tick: base_tick + 1,
        base_tick,
        upserts: vec![EntityUpdate {
            id: EntityId(1),
            kind: None,
            fields,
        }],
        removed: vec![],
        left: Vec::new(),
        acks,
        events: vec![],
    })
}

/// Acks of another player and of [`ME`] at `seq`.
pub(super) fn my_ack(seq: u32) -> Vec<InputAck> {
    vec![
        InputAck {
            player: PlayerId(1),
            seq: 999,
        },
        InputAck { player: ME, seq },
    ]
}

/// One version 1 frame.
pub(super) fn frame(messages: &[ServerMessage]) -> Vec<u8> {
    codec::encode_batch(messages)
}

/// A session that received `[welcome, snapshot at tick 10]`.
pub(super) fn joined(now: Instant) -> Session {
    let mut session = Session::new(ProtocolVersion::V1);
    let reply = session.handle_frame(&frame(&[welcome(32), snapshot(EPOCH, 10, vec![])]), now);
    assert_eq!(reply, Some(ClientMessage::Ack(Ack { tick: 10 })));
    session
}
