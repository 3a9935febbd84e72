//! The game plug-in boundary: the [`Game`] trait, the context a game sees, and the registry of
//! room types.
//!
//! A game never touches sockets, actors or timers. The room calls its hooks in a fixed order
//! every tick (inputs first, then `on_tick`) and turns whatever the game wrote into the
//! [`EntityStore`] into one delta. That keeps games testable as plain functions and keeps the
//! room in charge of timing, fan-out and failure: a panic in a hook ends only that room.

pub mod arena;
pub mod tictactoe;

use crate::config::GameLimits;
use crate::entities::EntityStore;
use ludus_protocol::v2::Schema;
use ludus_protocol::{PlayerId, RoomId, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What a game hook may do besides mutating entities.
pub struct GameContext<'a> {
    /// The room's entities; every change is sent to clients in the next delta.
    pub entities: &'a mut EntityStore,
    events: &'a mut Vec<Value>,
    private: &'a mut Vec<(PlayerId, Value)>,
    rng: &'a mut fastrand::Rng,
    tick: u64,
}

impl<'a> GameContext<'a> {
    /// Builds a context over the room's state; the room owns every borrowed part.
    pub fn new(
        entities: &'a mut EntityStore,
        events: &'a mut Vec<Value>,
        private: &'a mut Vec<(PlayerId, Value)>,
        rng: &'a mut fastrand::Rng,
        tick: u64,
    ) -> Self {
        Self {
            entities,
            events,
            private,
            rng,
            tick,
        }
    }

    /// Sends `event` to every member in this tick's delta.
    pub fn broadcast(&mut self, event: Value) {
        self.events.push(event);
    }

    /// Sends `payload` to one player only, in the same frame as this tick's delta.
    pub fn send_to(&mut self, player: PlayerId, payload: Value) {
        self.private.push((player, payload));
    }

    /// The room's random number generator (seeded per room, so a room replays deterministically
    /// from its seed and inputs).
    pub fn rng(&mut self) -> &mut fastrand::Rng {
        self.rng
    }

    /// The tick being computed (the tick number the next delta will carry).
    pub fn tick(&self) -> u64 {
        self.tick
    }
}

/// A game refused an input; the player gets an `invalid_input` error with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputRejected(pub String);

/// A game could not read a checkpoint's state (see [`Game::restore`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("game state not restorable: {0}")]
pub struct RestoreRefused(pub String);

/// A game's saved state as a MessagePack value, for games that keep it in serde types.
pub fn save_as_value<T: serde::Serialize>(state: &T) -> Value {
    // A serde type MessagePack cannot hold (e.g. a 128-bit integer) is a bug in the game: it
    // saves nothing, which its `restore` then refuses, rather than panicking inside the room.
    rmpv::ext::to_value(state).unwrap_or_else(|error| {
        tracing::warn!(%error, "game state cannot be saved as MessagePack");
        Value::Nil
    })
}

/// Reads a state written by [`save_as_value`].
pub fn restore_from_value<T: serde::de::DeserializeOwned>(
    state: &Value,
) -> Result<T, RestoreRefused> {
    rmpv::ext::from_value(state.clone()).map_err(|error| RestoreRefused(error.to_string()))
}

/// The rules of one room type. One value per room, owned by that room's actor.
///
/// Hooks run in this order within a tick: `on_join`/`on_leave` as members come and go (between
/// ticks), then every queued `on_input` in arrival order, then `on_tick`.
pub trait Game: Send + 'static {
    /// Called once when the room is created.
    fn on_create(&mut self, _ctx: &mut GameContext<'_>) {}

    /// A player took their seat. Default: nothing (a game that needs no per-player state).
    fn on_join(&mut self, _ctx: &mut GameContext<'_>, _player: PlayerId, _name: &str) {}

    /// A player left: by `leave`, or its connection dropped and its resume window passed.
    /// Default: nothing.
    fn on_leave(&mut self, _ctx: &mut GameContext<'_>, _player: PlayerId) {}

    /// A player's connection dropped without `leave`; its seat and entity stay for the room's
    /// resume window (a game may mark the player away or freeze it). Default: nothing.
    fn on_disconnect(&mut self, _ctx: &mut GameContext<'_>, _player: PlayerId) {}

    /// A disconnected player resumed its session. Default: nothing.
    fn on_reconnect(&mut self, _ctx: &mut GameContext<'_>, _player: PlayerId) {}

    /// One input from `player`; an `Err` is reported to that player only.
    fn on_input(
        &mut self,
        ctx: &mut GameContext<'_>,
        player: PlayerId,
        payload: &Value,
    ) -> Result<(), InputRejected>;

    /// Advances the simulation by one fixed step of `dt`. Default: nothing (a game driven by
    /// inputs alone).
    fn on_tick(&mut self, _ctx: &mut GameContext<'_>, _dt: Duration) {}

    /// The entity kinds this game writes: field names, types and quantization. Called once per
    /// room. The store normalizes values through it (quantized numbers are snapped as they are
    /// stored) and protocol version 2 packs fields by it. Default: nothing declared, so every
    /// field travels by name (correct, only less compact in version 2).
    fn schema(&self) -> Schema {
        Schema::new()
    }

    /// Version of the state [`Game::save`] writes. A node restoring a checkpoint whose game
    /// state has another version refuses it (the room is not restored) rather than misread it;
    /// bump it whenever `save`'s layout changes. Default: 0.
    fn state_version(&self) -> u32 {
        0
    }

    /// The game's own state beyond its entities, for checkpoints: the room saves the entities,
    /// seats, tick and random generator itself. Default: nothing (a game whose whole state is
    /// its entities).
    fn save(&self) -> Value {
        Value::Nil
    }

    /// Restores what [`Game::save`] wrote (same [`Game::state_version`]) into a game fresh from
    /// its factory, in place of `on_create`; the room's entities are already restored.
    /// Default: accepts anything (for games that save nothing).
    fn restore(&mut self, _state: &Value) -> Result<(), RestoreRefused> {
        Ok(())
    }

    /// A small JSON summary shown in room listings (e.g. `{"status": "waiting"}`).
    fn listing(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// What a game factory knows about the room it creates a game for.
#[derive(Clone, Debug)]
pub struct RoomOptions {
    /// The room's id.
    pub room_id: RoomId,
    /// Seats in the room.
    pub max_players: u32,
}

/// Creates the game of a new room.
pub type GameFactory = Arc<dyn Fn(&RoomOptions) -> Box<dyn Game> + Send + Sync>;

/// A registered room type: its name, defaults and factory.
#[derive(Clone)]
pub struct RoomType {
    /// Name clients matchmake with (`arena`).
    pub name: String,
    /// Ticks per second.
    pub tick_hz: u16,
    /// Default and largest number of seats: config overrides and region defaults may lower it,
    /// never raise it.
    pub max_players: u32,
    /// Creates the game for each new room.
    pub factory: GameFactory,
}

impl std::fmt::Debug for RoomType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomType")
            .field("name", &self.name)
            .field("tick_hz", &self.tick_hz)
            .field("max_players", &self.max_players)
            .finish_non_exhaustive()
    }
}

/// Room types by name. Built once at start-up, then shared read-only.
#[derive(Clone, Debug, Default)]
pub struct GameRegistry {
    types: BTreeMap<String, RoomType>,
}

impl GameRegistry {
    /// An empty registry (for embedders registering only their own games).
    pub fn new() -> Self {
        Self::default()
    }

    /// The games Ludus ships: `arena` (real-time) and `tictactoe` (turn-based).
    pub fn builtin() -> Self {
        let mut registry = Self::new();
        registry.register(RoomType {
            name: arena::NAME.to_owned(),
            tick_hz: 20,
            max_players: 16,
            factory: Arc::new(|options| Box::new(arena::Arena::new(options))),
        });
        registry.register(RoomType {
            name: tictactoe::NAME.to_owned(),
            tick_hz: 10,
            max_players: 2,
            factory: Arc::new(|_| Box::new(tictactoe::TicTacToe::new())),
        });
        registry
    }

    /// Adds or replaces a room type.
    pub fn register(&mut self, room_type: RoomType) {
        self.types.insert(room_type.name.clone(), room_type);
    }

    /// Looks a room type up by name.
    pub fn get(&self, name: &str) -> Option<&RoomType> {
        self.types.get(name)
    }

    /// Mutable access, for applying configured overrides.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut RoomType> {
        self.types.get_mut(name)
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    /// What each registered game allows, for validating the config's overrides.
    pub fn limits(&self) -> Vec<GameLimits<'_>> {
        self.types
            .values()
            .map(|room_type| GameLimits {
                name: &room_type.name,
                max_players: room_type.max_players,
            })
            .collect()
    }
}

/// Reads a numeric field of a MessagePack map payload as `f64`.
pub(crate) fn payload_f64(payload: &Value, key: &str) -> Option<f64> {
    let value = payload_field(payload, key)?;
    value
        .as_f64()
        .or_else(|| value.as_i64().map(|number| number as f64))
        .or_else(|| value.as_u64().map(|number| number as f64))
}

/// Reads a field of a MessagePack map payload.
pub(crate) fn payload_field<'a>(payload: &'a Value, key: &str) -> Option<&'a Value> {
    payload
        .as_map()?
        .iter()
        .find(|(name, _)| name.as_str() == Some(key))
        .map(|(_, value)| value)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Owns everything a [`GameContext`] borrows, so game hooks run as plain function calls.
    pub(crate) struct Harness {
        pub(crate) entities: EntityStore,
        pub(crate) events: Vec<Value>,
        pub(crate) private: Vec<(PlayerId, Value)>,
        rng: fastrand::Rng,
    }

    impl Harness {
        pub(crate) fn new() -> Self {
            Self {
                entities: EntityStore::new(),
                events: Vec::new(),
                private: Vec::new(),
                rng: fastrand::Rng::with_seed(7),
            }
        }

        pub(crate) fn options(&self) -> RoomOptions {
            RoomOptions {
                room_id: RoomId::parse("test").expect("valid id"),
                max_players: 16,
            }
        }

        pub(crate) fn run<R>(&mut self, hook: impl FnOnce(&mut GameContext<'_>) -> R) -> R {
            let mut ctx = GameContext::new(
                &mut self.entities,
                &mut self.events,
                &mut self.private,
                &mut self.rng,
                1,
            );
            hook(&mut ctx)
        }
    }
}
