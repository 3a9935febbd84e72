//! One room's simulation as plain data: the game, its entities, the input queue and the input
//! acknowledgements. No actix here.
//!
//! The room actor owns a `Simulation` and calls [`Simulation::step`] on every tick; everything
//! that decides *what* a tick produces lives here, so it is tested as ordinary functions (the
//! property test at the bottom proves that snapshot + deltas reproduce the state exactly).
//!
//! Every call into game code is guarded with `catch_unwind`: a panicking game yields
//! [`GamePanicked`] and the room ends with `room_crashed`, while the thread and every other room
//! on it carry on.

mod restore;

pub use restore::RestoreError;

use crate::entities::EntityStore;
use crate::game::{Game, GameContext};
use ludus_protocol::v2::{Roster, Schema};
use ludus_protocol::{Delta, EntityId, InputAck, PlayerId, Snapshot, Value};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// A game hook panicked; the simulation must not be used again.
#[derive(Debug, Clone, thiserror::Error)]
#[error("game panicked in `{hook}`: {message}")]
pub struct GamePanicked {
    /// The hook that panicked.
    pub hook: &'static str,
    /// The panic's message, when it had a string payload.
    pub message: String,
}

/// Why an input was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputRefused {
    /// The sequence number is not above the last one queued for this player.
    Stale,
    /// The player is not a member.
    NotMember,
    /// The room's input queue is full for this tick.
    QueueFull,
}

/// What a game said to one player during a tick, beside the shared delta.
#[derive(Debug, Clone, PartialEq)]
pub enum PrivateMessage {
    /// A private game event.
    Event(Value),
    /// An input the game refused, with its reason.
    Rejected(String),
}

/// Everything one tick produced.
#[derive(Debug)]
pub struct TickOutput {
    /// The shared delta, the same for every member.
    pub delta: Delta,
    /// Per-player extras, in the order the game produced them.
    pub private: Vec<(PlayerId, PrivateMessage)>,
    /// Members and ack steps since the previous tick, as protocol version 2 sends acks.
    pub roster: Roster,
}

#[derive(Debug, Default, Clone, Copy)]
struct InputSequence {
    queued: u32,
    applied: u32,
    /// `applied` as of the last completed tick: what every mirror holds.
    published: u32,
}

struct QueuedInput {
    player: PlayerId,
    seq: u32,
    payload: Value,
}

/// A room's game state and rules, stepped one tick at a time.
pub struct Simulation {
    game: Box<dyn Game>,
    entities: EntityStore,
    events: Vec<Value>,
    private_events: Vec<(PlayerId, Value)>,
    rejections: Vec<(PlayerId, String)>,
    rng: fastrand::Rng,
    epoch: u64,
    tick: u64,
    dt: Duration,
    inputs: Vec<QueuedInput>,
    max_queued_inputs: usize,
    sequences: HashMap<PlayerId, InputSequence>,
    acks_changed: Vec<PlayerId>,
    /// Players who joined since the last tick.
    joined: Vec<PlayerId>,
    /// Players who left since the last tick.
    left: Vec<PlayerId>,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

impl Simulation {
    /// Creates the simulation and runs the game's `on_create`.
    ///
    /// `max_queued_inputs` bounds the inputs held between two ticks, so a flood of inputs can
    /// never grow the room's memory without limit.
    pub fn new(
        game: Box<dyn Game>,
        epoch: u64,
        seed: u64,
        dt: Duration,
        max_queued_inputs: usize,
    ) -> Result<Self, GamePanicked> {
        let schema = Arc::new(game.schema());
        let mut simulation = Self {
            game,
            entities: EntityStore::with_schema(schema),
            events: Vec::new(),
            private_events: Vec::new(),
            rejections: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
            epoch,
            tick: 0,
            dt,
            inputs: Vec::new(),
            max_queued_inputs,
            sequences: HashMap::new(),
            acks_changed: Vec::new(),
            joined: Vec::new(),
            left: Vec::new(),
        };
        simulation.call("on_create", |game, ctx| game.on_create(ctx))?;
        Ok(simulation)
    }

    fn call<R>(
        &mut self,
        hook: &'static str,
        body: impl FnOnce(&mut dyn Game, &mut GameContext<'_>) -> R,
    ) -> Result<R, GamePanicked> {
        let mut ctx = GameContext::new(
            &mut self.entities,
            &mut self.events,
            &mut self.private_events,
            &mut self.rng,
            self.tick + 1,
        );
        let game = self.game.as_mut();
        catch_unwind(AssertUnwindSafe(|| body(game, &mut ctx))).map_err(|payload| GamePanicked {
            hook,
            message: panic_message(payload.as_ref()),
        })
    }

    /// The room epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The last completed tick.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// Seats `player` in the game.
    pub fn join(&mut self, player: PlayerId, name: &str) -> Result<(), GamePanicked> {
        self.sequences.insert(player, InputSequence::default());
        // Announce the newcomer's (zero) ack so every mirror knows every member.
        self.acks_changed.push(player);
        self.joined.push(player);
        self.call("on_join", |game, ctx| game.on_join(ctx, player, name))
    }

    /// Removes `player` from the game; their queued inputs are dropped.
    pub fn leave(&mut self, player: PlayerId) -> Result<(), GamePanicked> {
        if self.sequences.remove(&player).is_none() {
            return Ok(());
        }
        self.left.push(player);
        self.inputs.retain(|input| input.player != player);
        self.call("on_leave", |game, ctx| game.on_leave(ctx, player))
    }

    /// `player`'s connection dropped; the seat and entity stay until the resume window passes
    /// (then [`Simulation::leave`]).
    pub fn disconnect(&mut self, player: PlayerId) -> Result<(), GamePanicked> {
        self.call("on_disconnect", |game, ctx| game.on_disconnect(ctx, player))
    }

    /// `player` resumed its session.
    pub fn reconnect(&mut self, player: PlayerId) -> Result<(), GamePanicked> {
        self.call("on_reconnect", |game, ctx| game.on_reconnect(ctx, player))
    }

    /// Queues an input for the next tick.
    pub fn queue_input(
        &mut self,
        player: PlayerId,
        seq: u32,
        payload: Value,
    ) -> Result<(), InputRefused> {
        let Some(sequence) = self.sequences.get_mut(&player) else {
            return Err(InputRefused::NotMember);
        };
        if seq <= sequence.queued {
            return Err(InputRefused::Stale);
        }
        if self.inputs.len() >= self.max_queued_inputs {
            return Err(InputRefused::QueueFull);
        }
        sequence.queued = seq;
        self.inputs.push(QueuedInput {
            player,
            seq,
            payload,
        });
        Ok(())
    }

    /// Runs one tick: applies queued inputs in arrival order, then `on_tick`, then collects the
    /// delta from `tick - 1` to `tick`.
    pub fn step(&mut self) -> Result<TickOutput, GamePanicked> {
        for input in std::mem::take(&mut self.inputs) {
            let QueuedInput {
                player,
                seq,
                payload,
            } = input;
            let outcome =
                self.call("on_input", |game, ctx| game.on_input(ctx, player, &payload))?;
            if let Err(rejected) = outcome {
                self.rejections.push((player, rejected.0));
            }
            if let Some(sequence) = self.sequences.get_mut(&player) {
                if sequence.applied != seq {
                    sequence.applied = seq;
                    self.acks_changed.push(player);
                }
            }
        }
        let dt = self.dt;
        self.call("on_tick", |game, ctx| game.on_tick(ctx, dt))?;
        let base_tick = self.tick;
        self.tick += 1;
        let changes = self.entities.take_changes();
        let mut acks_changed = std::mem::take(&mut self.acks_changed);
        acks_changed.sort_unstable();
        acks_changed.dedup();
        let acks = acks_changed
            .into_iter()
            .filter_map(|player| {
                let sequence = self.sequences.get(&player)?;
                Some(InputAck {
                    player,
                    seq: sequence.applied,
                })
            })
            .collect();
        let mut private: Vec<(PlayerId, PrivateMessage)> = self
            .rejections
            .drain(..)
            .map(|(player, reason)| (player, PrivateMessage::Rejected(reason)))
            .collect();
        private.extend(
            self.private_events
                .drain(..)
                .map(|(player, event)| (player, PrivateMessage::Event(event))),
        );
        let roster = self.take_roster();
        let left = roster.left.clone();
        Ok(TickOutput {
            roster,
            delta: Delta {
                epoch: self.epoch,
                tick: self.tick,
                base_tick,
                upserts: changes.upserts,
                removed: changes.removed,
                left,
                acks,
                events: std::mem::take(&mut self.events),
            },
            private,
        })
    }

    /// Collects membership changes since the last tick and publishes every member's ack.
    fn take_roster(&mut self) -> Roster {
        let mut left = std::mem::take(&mut self.left);
        left.sort_unstable();
        left.dedup();
        let mut joined = std::mem::take(&mut self.joined);
        joined.retain(|player| self.sequences.contains_key(player));
        joined.sort_unstable();
        joined.dedup();
        let mut ack_steps: Vec<(PlayerId, u32)> = self
            .sequences
            .iter_mut()
            .map(|(player, sequence)| {
                let step = sequence.applied.wrapping_sub(sequence.published);
                sequence.published = sequence.applied;
                (*player, step)
            })
            .collect();
        ack_steps.sort_unstable_by_key(|(player, _)| *player);
        Roster {
            left,
            joined,
            ack_steps,
        }
    }

    /// The schema the game declared, which the store normalizes values through.
    pub fn schema(&self) -> &Schema {
        self.entities.schema()
    }

    /// The kind of a live entity.
    pub fn entity_kind(&self, id: EntityId) -> Option<&str> {
        self.entities.kind(id)
    }

    /// Queues an event for every member in the next delta (e.g. a message from another node).
    pub fn broadcast(&mut self, event: Value) {
        self.events.push(event);
    }

    /// The full state as of the last completed tick plus any changes made since (joins and
    /// leaves between ticks); the next delta re-applies cleanly on top of it.
    pub fn snapshot(&self) -> Snapshot {
        let mut acks: Vec<InputAck> = self
            .sequences
            .iter()
            .map(|(player, sequence)| InputAck {
                player: *player,
                seq: sequence.applied,
            })
            .collect();
        acks.sort_unstable_by_key(|ack| ack.player);
        Snapshot {
            epoch: self.epoch,
            tick: self.tick,
            entities: self.entities.snapshot(),
            acks,
        }
    }

    /// The game's listing summary.
    pub fn listing(&mut self) -> Result<serde_json::Value, GamePanicked> {
        let game = self.game.as_ref();
        catch_unwind(AssertUnwindSafe(|| game.listing())).map_err(|payload| GamePanicked {
            hook: "listing",
            message: panic_message(payload.as_ref()),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::game::InputRejected;
    use ludus_protocol::{codec, EntityId, RoomState, ServerMessage};
    use proptest::prelude::*;

    /// A game whose inputs are entity operations, so proptest can drive arbitrary changes.
    /// Payload: `[op, target, field, value]` with op 0 = spawn, 1 = set, 2 = remove.
    #[derive(Default)]
    pub(crate) struct ScriptedGame {
        live: Vec<EntityId>,
        avatars: HashMap<PlayerId, EntityId>,
        /// Declared to the room; empty (everything undeclared) by default.
        pub(crate) schema: Schema,
    }

    /// The value a script writes into `field`: `a` is a fraction (quantized when declared),
    /// `b` and `c` integers.
    fn scripted_value(field: &str, value: u64) -> Value {
        match field {
            "a" => Value::F64(value as f64 * 0.37 - 0.2),
            _ => Value::from(value),
        }
    }

    impl Game for ScriptedGame {
        fn schema(&self) -> Schema {
            self.schema.clone()
        }

        fn on_join(&mut self, ctx: &mut GameContext<'_>, player: PlayerId, name: &str) {
            let id = ctx.entities.spawn("player", [("name", Value::from(name))]);
            self.avatars.insert(player, id);
        }

        fn on_leave(&mut self, ctx: &mut GameContext<'_>, player: PlayerId) {
            if let Some(id) = self.avatars.remove(&player) {
                ctx.entities.remove(id);
            }
        }

        fn on_input(
            &mut self,
            ctx: &mut GameContext<'_>,
            _player: PlayerId,
            payload: &Value,
        ) -> Result<(), InputRejected> {
            let numbers: Vec<u64> = payload
                .as_array()
                .map(|items| items.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let [op, target, field, value] = numbers[..] else {
                return Err(InputRejected("bad script".to_owned()));
            };
            let field_name = ["a", "b", "c"][field as usize % 3];
            let pick =
                |live: &Vec<EntityId>| live.get(target as usize % live.len().max(1)).copied();
            match op % 3 {
                0 => {
                    let id = ctx
                        .entities
                        .spawn("thing", [(field_name, scripted_value(field_name, value))]);
                    self.live.push(id);
                }
                1 => {
                    if let Some(id) = pick(&self.live) {
                        ctx.entities
                            .set(id, field_name, scripted_value(field_name, value));
                    }
                }
                _ => {
                    if let Some(id) = pick(&self.live) {
                        self.live.retain(|live| *live != id);
                        ctx.entities.remove(id);
                    }
                }
            }
            Ok(())
        }
    }

    #[derive(Debug, Clone)]
    pub(crate) struct TickPlan {
        pub(crate) join: bool,
        pub(crate) leave: bool,
        pub(crate) inputs: Vec<(u64, u64, u64, u64)>,
    }

    pub(crate) fn tick_plan() -> impl Strategy<Value = TickPlan> {
        (
            any::<bool>(),
            prop::bool::weighted(0.2),
            prop::collection::vec((0u64..3, 0u64..8, 0u64..3, 0u64..4), 0..6),
        )
            .prop_map(|(join, leave, inputs)| TickPlan {
                join,
                leave,
                inputs,
            })
    }

    fn new_simulation() -> Simulation {
        Simulation::new(
            Box::<ScriptedGame>::default(),
            42,
            1,
            Duration::from_millis(50),
            1024,
        )
        .expect("scripted game does not panic")
    }

    /// Sends a message through the real codec, as it would cross the wire.
    fn over_the_wire(message: ServerMessage) -> ServerMessage {
        let frame = codec::encode_batch(&[message]);
        let mut decoded = codec::decode_batch(&frame).expect("server frames decode");
        decoded.pop().expect("one message")
    }

    proptest! {
        #[test]
        fn snapshot_plus_deltas_reproduce_the_server_state(plans in prop::collection::vec(tick_plan(), 1..40)) {
            let mut simulation = new_simulation();
            let mut mirrors: Vec<RoomState> = Vec::new();
            let mut members: Vec<PlayerId> = Vec::new();
            let mut next_player = 1;
            let mut seq = 0;
            for plan in plans {
                if plan.join {
                    let player = PlayerId(next_player);
                    next_player += 1;
                    simulation.join(player, "p").expect("join");
                    members.push(player);
                    let ServerMessage::Snapshot(snapshot) = over_the_wire(ServerMessage::Snapshot(simulation.snapshot())) else {
                        unreachable!("a snapshot decodes as a snapshot")
                    };
                    mirrors.push(RoomState::from_snapshot(snapshot));
                }
                if plan.leave && members.len() > 1 {
                    let player = members.remove(0);
                    simulation.leave(player).expect("leave");
                }
                for (op, target, field, value) in plan.inputs {
                    let Some(player) = members.first().copied() else { break };
                    seq += 1;
                    let payload = Value::Array(vec![op.into(), target.into(), field.into(), value.into()]);
                    simulation.queue_input(player, seq, payload).expect("queued");
                }
                let output = simulation.step().expect("step");
                let ServerMessage::Delta(delta) = over_the_wire(ServerMessage::Delta(output.delta)) else {
                    unreachable!("a delta decodes as a delta")
                };
                for mirror in &mut mirrors {
                    prop_assert_eq!(mirror.apply(&delta), Ok(()));
                }
            }
            // Acks are per-member metadata: a departed player's last ack may linger in a
            // mirror, so compare them for current members; everything else must be identical.
            let truth = RoomState::from_snapshot(simulation.snapshot());
            for mirror in &mirrors {
                prop_assert_eq!(mirror.epoch(), truth.epoch());
                prop_assert_eq!(mirror.tick(), truth.tick());
                prop_assert_eq!(mirror.entities().collect::<Vec<_>>(), truth.entities().collect::<Vec<_>>());
                for player in &members {
                    prop_assert_eq!(mirror.ack(*player), truth.ack(*player));
                }
            }
        }
    }

    #[test]
    fn inputs_are_acknowledged_in_the_next_delta() {
        let mut simulation = new_simulation();
        let player = PlayerId(9);
        simulation.join(player, "p").expect("join");
        simulation
            .queue_input(player, 3, Value::Array(vec![0u64.into(); 4]))
            .expect("queued");
        let output = simulation.step().expect("step");
        assert_eq!(output.delta.acks, vec![InputAck { player, seq: 3 }]);
        assert_eq!(
            simulation.queue_input(player, 3, Value::Nil),
            Err(InputRefused::Stale)
        );
    }

    #[test]
    fn rejected_inputs_are_acknowledged_and_reported_privately() {
        let mut simulation = new_simulation();
        let player = PlayerId(9);
        simulation.join(player, "p").expect("join");
        simulation
            .queue_input(player, 1, Value::Nil)
            .expect("queued");
        let output = simulation.step().expect("step");
        assert_eq!(output.delta.acks, vec![InputAck { player, seq: 1 }]);
        assert_eq!(
            output.private,
            vec![(player, PrivateMessage::Rejected("bad script".to_owned()))]
        );
    }

    struct Exploding;

    impl Game for Exploding {
        fn on_input(
            &mut self,
            _: &mut GameContext<'_>,
            _: PlayerId,
            _: &Value,
        ) -> Result<(), InputRejected> {
            panic!("boom")
        }
    }

    #[test]
    fn a_panicking_game_is_reported_not_propagated() {
        let mut simulation =
            Simulation::new(Box::new(Exploding), 1, 1, Duration::from_millis(50), 8)
                .expect("create");
        simulation.join(PlayerId(1), "p").expect("join");
        simulation
            .queue_input(PlayerId(1), 1, Value::Nil)
            .expect("queued");
        let panicked = simulation.step().expect_err("the game panics");
        assert_eq!(panicked.hook, "on_input");
        assert_eq!(panicked.message, "boom");
    }
}
