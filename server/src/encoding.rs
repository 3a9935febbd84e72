//! What a room sends, encoded once per protocol version in use: the pure part of the fan-out.
//!
//! A room's members may speak protocol version 1 (named field maps) or 2 (packed, see
//! `ludus_protocol::v2`). Each tick the room encodes its delta **at most once per version**, and
//! only for versions some member speaks, then hands every member of that version the same bytes.
//! [`PerVersion`] is that cache; [`delta_frame`] and [`snapshot_part`] are the encoders. No actix
//! here, so both are tested as plain functions.
//!
//! Version 2 encoding cannot fail for a state the [`Simulation`] holds: the entity store
//! normalizes every value through the schema the encoder packs with, and only live entities are
//! updated. A failure is therefore a server bug, reported by a panic naming the invariant.

use crate::simulation::Simulation;
use bytes::Bytes;
use ludus_protocol::v2::{self, Roster};
use ludus_protocol::{codec, Delta, ProtocolVersion, ServerMessage};
use std::cell::OnceCell;

/// One value per protocol version, computed on first use.
#[derive(Debug)]
pub struct PerVersion<T> {
    v1: OnceCell<T>,
    v2: OnceCell<T>,
}

impl<T> Default for PerVersion<T> {
    fn default() -> Self {
        Self {
            v1: OnceCell::new(),
            v2: OnceCell::new(),
        }
    }
}

impl<T> PerVersion<T> {
    /// The value for `version`, computing it with `encode` the first time.
    pub fn get_or_init(&self, version: ProtocolVersion, encode: impl FnOnce() -> T) -> &T {
        match version {
            ProtocolVersion::V1 => self.v1.get_or_init(encode),
            ProtocolVersion::V2 => self.v2.get_or_init(encode),
        }
    }
}

/// A tick's delta in one protocol version.
#[derive(Debug)]
pub struct DeltaFrame {
    /// `[delta]`: the frame every member without private messages gets ([`Self::part`] is the
    /// message alone).
    pub shared: Bytes,
}

/// Encodes the tick's `delta` (with its `roster` change) for `version`.
pub fn delta_frame(
    simulation: &Simulation,
    delta: &Delta,
    roster: &Roster,
    version: ProtocolVersion,
) -> DeltaFrame {
    let frame = match version {
        ProtocolVersion::V1 => codec::batch_frame(&[&codec::encode_delta(delta)]),
        ProtocolVersion::V2 => {
            let kind_of = |id| simulation.entity_kind(id);
            v2::encode_delta_frame(simulation.schema(), delta, roster, kind_of)
                // expect: see the module doc; the store normalized every value it holds.
                .expect("a room's delta always fits its own schema")
        }
    };
    DeltaFrame {
        shared: Bytes::from(frame),
    }
}

impl DeltaFrame {
    /// The delta message alone, to batch with a member's private messages or keep for resuming
    /// clients: `shared` past its array header, which for one message is one byte (`0x91`).
    /// Shares `shared`'s bytes; nothing is copied.
    pub fn part(&self) -> Bytes {
        self.shared.slice(1..)
    }
}

/// Encodes the room's current state as a snapshot message for `version`.
pub fn snapshot_part(simulation: &Simulation, version: ProtocolVersion) -> Vec<u8> {
    let snapshot = simulation.snapshot();
    match version {
        ProtocolVersion::V1 => codec::encode_server(&ServerMessage::Snapshot(snapshot)),
        ProtocolVersion::V2 => v2::encode_snapshot(simulation.schema(), &snapshot)
            // expect: see the module doc; the store normalized every value it holds.
            .expect("a room's state always fits its own schema"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::arena::Arena;
    use crate::game::{Game, RoomOptions};
    use crate::simulation::tests::{tick_plan, ScriptedGame};
    use ludus_protocol::v2::{CompactMessage, CompactRoomState, FieldType, Quantization, Schema};
    use ludus_protocol::{PlayerId, RoomId, RoomState, Value};
    use proptest::prelude::*;
    use std::time::Duration;

    fn decode_v2(frame: &[u8]) -> CompactMessage {
        let mut messages = v2::decode_frame(frame).expect("server frames decode");
        assert_eq!(messages.len(), 1);
        messages.remove(0)
    }

    fn v2_mirror(simulation: &Simulation) -> CompactRoomState {
        let part = snapshot_part(simulation, ProtocolVersion::V2);
        match decode_v2(&codec::batch_frame(&[&part])) {
            CompactMessage::Snapshot(snapshot) => CompactRoomState::from_snapshot(snapshot),
            other => panic!("expected a snapshot, got {other:?}"),
        }
    }

    /// `thing.a` quantized (and clamped: scripts write up to 0.91), `thing.b` an integer,
    /// `thing.c` undeclared (travels by name), `player.name` a string.
    fn scripted_schema() -> Schema {
        let fraction = Quantization::new(0.0, 0.5, 0.1).expect("valid");
        Schema::new()
            .with_kind(
                "thing",
                [
                    ("a", FieldType::Quantized(fraction)),
                    ("b", FieldType::UInt),
                ],
            )
            .and_then(|schema| schema.with_kind("player", [("name", FieldType::Str)]))
            .expect("valid")
    }

    /// Entities compared through `Debug`, which prints every float exactly: equal text is equal
    /// bits (`-0.0` and `0.0` differ), stricter than `==`.
    fn exact(state: &RoomState) -> String {
        format!("{:?}", state.entities().collect::<Vec<_>>())
    }

    #[test]
    fn a_frames_part_is_the_message_alone_in_both_versions() {
        let mut game = ScriptedGame::default();
        game.schema = scripted_schema();
        let mut simulation =
            Simulation::new(Box::new(game), 42, 1, Duration::from_millis(50), 64).expect("create");
        simulation.join(PlayerId(1), "p").expect("join");
        let output = simulation.step().expect("step");
        let frame = delta_frame(
            &simulation,
            &output.delta,
            &output.roster,
            ProtocolVersion::V1,
        );
        assert_eq!(&frame.part()[..], &codec::encode_delta(&output.delta)[..]);
        assert_eq!(&codec::batch_frame(&[&frame.part()])[..], &frame.shared[..]);
        let compact = delta_frame(
            &simulation,
            &output.delta,
            &output.roster,
            ProtocolVersion::V2,
        );
        let kind_of = |id| simulation.entity_kind(id);
        let message = v2::encode_delta(simulation.schema(), &output.delta, &output.roster, kind_of)
            .expect("encode");
        assert_eq!(&compact.part()[..], &message[..]);
        assert_eq!(&codec::batch_frame(&[&message])[..], &compact.shared[..]);
    }

    proptest! {
        #[test]
        fn v2_snapshot_plus_deltas_equal_the_servers_quantized_state(
            plans in prop::collection::vec(tick_plan(), 1..40)
        ) {
            let mut game = ScriptedGame::default();
            game.schema = scripted_schema();
            let mut simulation =
                Simulation::new(Box::new(game), 42, 1, Duration::from_millis(50), 1024).expect("create");
            let mut mirrors: Vec<CompactRoomState> = Vec::new();
            let mut members: Vec<PlayerId> = Vec::new();
            let (mut next_player, mut seq) = (1, 0);
            for plan in plans {
                if plan.join {
                    let player = PlayerId(next_player);
                    next_player += 1;
                    simulation.join(player, "p").expect("join");
                    members.push(player);
                    // Taken between ticks, like a room's join snapshot.
                    mirrors.push(v2_mirror(&simulation));
                }
                if plan.leave && members.len() > 1 {
                    simulation.leave(members.remove(0)).expect("leave");
                }
                for (op, target, field, value) in plan.inputs {
                    let Some(player) = members.first().copied() else { break };
                    seq += 1;
                    let payload = Value::Array(vec![op.into(), target.into(), field.into(), value.into()]);
                    simulation.queue_input(player, seq, payload).expect("queued");
                }
                let output = simulation.step().expect("step");
                let frame = delta_frame(&simulation, &output.delta, &output.roster, ProtocolVersion::V2);
                let CompactMessage::Delta(body) = decode_v2(&frame.shared) else {
                    panic!("expected a delta")
                };
                let truth = RoomState::from_snapshot(simulation.snapshot());
                for mirror in &mut mirrors {
                    prop_assert!(mirror.apply_delta(&body).is_ok());
                    prop_assert_eq!(mirror.state(), &truth);
                    prop_assert_eq!(exact(mirror.state()), exact(&truth));
                }
            }
        }
    }

    fn arena_room(players: u64) -> Simulation {
        let options = RoomOptions {
            room_id: RoomId::parse("bench").expect("valid id"),
            max_players: 16,
        };
        let game: Box<dyn Game> = Box::new(Arena::new(&options));
        let mut simulation =
            Simulation::new(game, 7, 3, Duration::from_millis(50), 1024).expect("create");
        for player in 1..=players {
            simulation
                .join(PlayerId(player * 7919), "bot")
                .expect("join");
        }
        simulation.step().expect("step");
        simulation
    }

    fn direction(angle: f64) -> Value {
        Value::Map(vec![
            (Value::from("dx"), Value::F64(angle.cos())),
            (Value::from("dy"), Value::F64(angle.sin())),
        ])
    }

    /// Frame sizes of one arena tick in both versions, after `ticks` ticks of `moving` players
    /// sending an input each tick.
    fn arena_frames(players: u64, moving: bool, ticks: u32) -> (usize, usize) {
        let mut simulation = arena_room(players);
        let mut sizes = (0, 0);
        for tick in 1..=ticks {
            if moving {
                for player in 1..=players {
                    let angle = f64::from(tick) * 0.1 + player as f64;
                    simulation
                        .queue_input(PlayerId(player * 7919), tick, direction(angle))
                        .expect("queued");
                }
            }
            let output = simulation.step().expect("step");
            let v1 = delta_frame(
                &simulation,
                &output.delta,
                &output.roster,
                ProtocolVersion::V1,
            );
            let v2 = delta_frame(
                &simulation,
                &output.delta,
                &output.roster,
                ProtocolVersion::V2,
            );
            sizes = (v1.shared.len(), v2.shared.len());
        }
        sizes
    }

    #[test]
    fn ten_moving_arena_players_fit_in_80_bytes() {
        let (v1, v2) = arena_frames(10, true, 100);
        assert!(v2 <= 80, "v2 frame of {v2} bytes (v1: {v1})");
        assert!(v2 * 5 < v1, "v2 {v2} bytes, v1 {v1} bytes");
    }

    #[test]
    fn idle_arena_players_cost_under_2_bytes_each() {
        let (_, v2) = arena_frames(10, false, 100);
        assert!(v2 <= 20, "v2 idle frame of {v2} bytes");
    }

    #[test]
    fn each_version_is_encoded_once_however_many_members_speak_it() {
        let cache: PerVersion<u32> = PerVersion::default();
        let mut calls = 0;
        for version in [
            ProtocolVersion::V2,
            ProtocolVersion::V1,
            ProtocolVersion::V2,
        ] {
            cache.get_or_init(version, || {
                calls += 1;
                calls
            });
        }
        assert_eq!(calls, 2);
        assert_eq!(cache.get_or_init(ProtocolVersion::V2, || 0), &1);
    }
}
