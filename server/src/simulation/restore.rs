//! Saving a simulation into a checkpoint and re-creating it from one.
//!
//! Saving happens between ticks, so the saved state is exactly the state of the last completed
//! tick (no half-applied inputs: inputs queued for the next tick are not saved, and a client
//! re-sends what its acks do not cover, PROTOCOL.md §20.5). A restored simulation continues
//! from that tick in a new epoch with the same entities, entity ids, random generator, input
//! acknowledgements and game state, so it produces the same ticks the old one would have
//! produced for the same inputs.

use super::{panic_message, InputSequence, Simulation};
use crate::checkpoint::{SeatRecord, SimulationState};
use crate::entities::EntityStore;
use crate::game::{Game, RestoreRefused};
use ludus_protocol::PlayerId;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use super::GamePanicked;

/// Why a checkpoint could not become a simulation.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The checkpoint's game state has another version than this build's game reads.
    #[error("game state version {found} cannot be restored by this build (reads {expected})")]
    StateVersion {
        /// Version in the checkpoint.
        found: u32,
        /// Version this build's game writes and reads.
        expected: u32,
    },
    /// The entities cannot be a store's (duplicate ids, or ids not below the next id).
    #[error("checkpoint entities are inconsistent")]
    Entities,
    /// The game refused its saved state.
    #[error(transparent)]
    Game(#[from] RestoreRefused),
    /// The game panicked while restoring.
    #[error(transparent)]
    Panicked(#[from] GamePanicked),
}

impl Simulation {
    /// The simulation's part of a checkpoint, taken between ticks.
    pub fn save(&self) -> Result<SimulationState, GamePanicked> {
        let game = self.game.as_ref();
        let (game_version, game_state) =
            catch_unwind(AssertUnwindSafe(|| (game.state_version(), game.save()))).map_err(
                |payload| GamePanicked {
                    hook: "save",
                    message: panic_message(payload.as_ref()),
                },
            )?;
        Ok(SimulationState {
            tick: self.tick,
            rng_state: self.rng.get_seed(),
            next_entity_id: self.entities.next_id(),
            entities: self.entities.snapshot(),
            game_version,
            game_state,
        })
    }

    /// Every member with the last input sequence number the room applied for it as of the last
    /// completed tick, for a checkpoint's seats.
    pub fn applied_inputs(&self) -> impl Iterator<Item = (PlayerId, u32)> + '_ {
        self.sequences
            .iter()
            .map(|(player, sequence)| (*player, sequence.published))
    }

    /// Re-creates a simulation from a checkpoint's `state` and `seats`, in `epoch`, with a
    /// `game` fresh from its factory (its `on_create` is not called: `restore` replaces it).
    /// Every seat keeps its input acknowledgement.
    pub fn restore(
        mut game: Box<dyn Game>,
        state: &SimulationState,
        seats: &[SeatRecord],
        epoch: u64,
        dt: Duration,
        max_queued_inputs: usize,
    ) -> Result<Self, RestoreError> {
        let expected = game.state_version();
        if state.game_version != expected {
            return Err(RestoreError::StateVersion {
                found: state.game_version,
                expected,
            });
        }
        let schema = Arc::new(game.schema());
        let entities = EntityStore::restored(schema, &state.entities, state.next_entity_id)
            .ok_or(RestoreError::Entities)?;
        catch_unwind(AssertUnwindSafe(|| game.restore(&state.game_state))).map_err(
            |payload| GamePanicked {
                hook: "restore",
                message: panic_message(payload.as_ref()),
            },
        )??;
        let sequences: HashMap<_, _> = seats
            .iter()
            .map(|seat| {
                let applied = seat.applied_seq;
                let sequence = InputSequence {
                    queued: applied,
                    applied,
                    published: applied,
                };
                (seat.player, sequence)
            })
            .collect();
        Ok(Self {
            game,
            entities,
            events: Vec::new(),
            private_events: Vec::new(),
            rejections: Vec::new(),
            rng: fastrand::Rng::with_seed(state.rng_state),
            epoch,
            tick: state.tick,
            dt,
            inputs: Vec::new(),
            max_queued_inputs,
            sequences,
            acks_changed: Vec::new(),
            joined: Vec::new(),
            left: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::game::arena::Arena;
    use crate::game::tictactoe::TicTacToe;
    use crate::game::RoomOptions;
    use ludus_protocol::{PlayerId, RoomId, Value};

    const DT: Duration = Duration::from_millis(50);

    fn arena() -> Box<dyn Game> {
        Box::new(Arena::new(&RoomOptions {
            room_id: RoomId::parse("r").expect("id"),
            max_players: 16,
        }))
    }

    fn direction(dx: f64, dy: f64) -> Value {
        Value::Map(vec![
            (Value::from("dx"), Value::F64(dx)),
            (Value::from("dy"), Value::F64(dy)),
        ])
    }

    fn seats_of(simulation: &Simulation, players: &[PlayerId]) -> Vec<SeatRecord> {
        players
            .iter()
            .map(|player| SeatRecord {
                player: *player,
                session: player.0,
                protocol: 1,
                applied_seq: simulation.sequences[player].published,
                away: false,
            })
            .collect()
    }

    /// Feeds both simulations the same inputs and checks they produce the same ticks.
    fn assert_same_future(
        original: &mut Simulation,
        restored: &mut Simulation,
        players: &[PlayerId],
    ) {
        for round in 0..40u32 {
            for (index, player) in players.iter().enumerate() {
                let seq = 100 + round;
                let angle = f64::from(round) * 0.3 + index as f64;
                for simulation in [&mut *original, &mut *restored] {
                    simulation
                        .queue_input(*player, seq, direction(angle.cos(), angle.sin()))
                        .expect("queue");
                }
            }
            let one = original.step().expect("step");
            let other = restored.step().expect("step");
            assert_eq!(one.delta.tick, other.delta.tick);
            assert_eq!(
                one.delta.upserts, other.delta.upserts,
                "tick {}",
                one.delta.tick
            );
            assert_eq!(one.delta.removed, other.delta.removed);
            assert_eq!(one.delta.events, other.delta.events);
        }
        assert_eq!(original.snapshot().entities, restored.snapshot().entities);
    }

    #[test]
    fn a_restored_arena_continues_exactly_as_the_original_would() {
        let mut original = Simulation::new(arena(), 1, 42, DT, 64).expect("create");
        let players = [PlayerId(1), PlayerId(2), PlayerId(3)];
        for player in players {
            original.join(player, "p").expect("join");
        }
        for seq in 1..=30u32 {
            for player in players {
                let angle = f64::from(seq) + player.0 as f64;
                original
                    .queue_input(player, seq, direction(angle.cos(), angle.sin()))
                    .expect("queue");
            }
            original.step().expect("step");
        }
        let checkpoint = Checkpoint {
            format: crate::checkpoint::CHECKPOINT_FORMAT,
            room_id: "r".into(),
            room_type: "arena".into(),
            max_players: 16,
            metadata: serde_json::Value::Null,
            epoch: 1,
            written_at_ms: 0,
            seats: seats_of(&original, &players),
            reservations: Vec::new(),
            events: Vec::new(),
            simulation: original.save().expect("save"),
        };
        let bytes = checkpoint.encode(1 << 20).expect("encode");
        let read = Checkpoint::decode(&bytes).expect("decode");
        let mut restored = Simulation::restore(arena(), &read.simulation, &read.seats, 2, DT, 64)
            .expect("restore");
        assert_eq!(restored.tick(), original.tick());
        assert_eq!(restored.epoch(), 2);
        assert_eq!(restored.snapshot().entities, original.snapshot().entities);
        assert_eq!(restored.snapshot().acks, original.snapshot().acks);
        assert_same_future(&mut original, &mut restored, &players);
    }

    #[test]
    fn a_game_state_of_another_version_is_refused() {
        let original = Simulation::new(arena(), 1, 42, DT, 64).expect("create");
        let mut state = original.save().expect("save");
        state.game_version += 1;
        let refused = Simulation::restore(arena(), &state, &[], 2, DT, 64);
        assert!(matches!(refused, Err(RestoreError::StateVersion { .. })));
    }

    #[test]
    fn a_state_the_game_cannot_read_is_refused_not_a_panic() {
        let original = Simulation::new(arena(), 1, 42, DT, 64).expect("create");
        let mut state = original.save().expect("save");
        state.game_state = Value::from("not an arena");
        let refused = Simulation::restore(arena(), &state, &[], 2, DT, 64);
        assert!(matches!(refused, Err(RestoreError::Game(_))));
        let mut state = original.save().expect("save");
        state.next_entity_id = 0;
        let refused = Simulation::restore(arena(), &state, &[], 2, DT, 64);
        assert!(matches!(refused, Err(RestoreError::Entities)));
        let game: Box<dyn Game> = Box::new(TicTacToe::new());
        let mut tictactoe = Simulation::new(game, 1, 1, DT, 64)
            .expect("create")
            .save()
            .expect("save");
        tictactoe.game_state = Value::Map(vec![(Value::from("cells"), Value::from(9))]);
        let refused = Simulation::restore(Box::new(TicTacToe::new()), &tictactoe, &[], 2, DT, 64);
        assert!(matches!(refused, Err(RestoreError::Game(_))));
    }
}
