//! `arena`: the real-time demo game.
//!
//! Players move in a square world with a direction input; the server enforces speed and
//! bounds (a client can only choose a direction, never a position). Coins appear at random
//! places; touching one scores a point and moves the coin.
//!
//! Input payload: `{"dx": number, "dy": number}`, a direction whose length is clamped to 1.
//! Entities: `player {player, name, x, y, score}` and `coin {x, y}`; positions are `f32`.
//! Broadcast event on pickup: `{"type": "coin", "player": id, "score": n}`.
//!
//! Positions are declared quantized to [`POSITION_STEP`] over the world (15 bits each in protocol
//! version 2), so the entity store holds them snapped to that grid and every client sees exactly
//! what the server stores. The avatars keep their exact positions for movement, so a slow
//! direction still moves a player across grid points instead of snapping back every tick.

use super::{
    payload_f64, restore_from_value, save_as_value, Game, GameContext, InputRejected,
    RestoreRefused, RoomOptions,
};
use crate::entities::EntityStore;
use ludus_protocol::v2::{FieldType, Quantization, Schema};
use ludus_protocol::{EntityId, PlayerId, Value};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// The room type name.
pub const NAME: &str = "arena";
/// Side of the square world, in world units.
pub const WORLD_SIZE: f32 = 1000.0;
/// Top speed, in world units per second.
pub const SPEED: f32 = 200.0;
/// A player within this distance of a coin collects it.
pub const PICKUP_RADIUS: f32 = 20.0;
/// How many coins are in play at any time.
pub const COINS: usize = 5;
/// Grid of stored and sent positions, in world units: 20,001 points per axis, 15 bits.
pub const POSITION_STEP: f64 = 0.05;

/// The entity kinds and their quantization.
fn schema() -> Schema {
    let position =
        Quantization::new(0.0, f64::from(WORLD_SIZE), POSITION_STEP).map(FieldType::Quantized);
    position
        .and_then(|position| {
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
                )?
                .with_kind("coin", [("x", position), ("y", position)])
        })
        // expect: constant declarations, checked by `schema_is_valid` below.
        .expect("arena's schema is valid")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Avatar {
    entity: EntityId,
    x: f32,
    y: f32,
    dx: f32,
    dy: f32,
    score: u32,
}

/// State of one arena room.
pub struct Arena {
    avatars: HashMap<PlayerId, Avatar>,
    coins: Vec<(EntityId, f32, f32)>,
}

/// What a checkpoint keeps of an arena beyond its entities (directions are not in entities).
#[derive(Serialize, Deserialize)]
struct Saved {
    avatars: Vec<(PlayerId, Avatar)>,
    coins: Vec<(EntityId, f32, f32)>,
}

/// Version of [`Saved`]'s layout.
const STATE_VERSION: u32 = 1;

impl Arena {
    /// A new, empty arena.
    pub fn new(_options: &RoomOptions) -> Self {
        Self {
            avatars: HashMap::new(),
            coins: Vec::with_capacity(COINS),
        }
    }

    fn random_point(ctx: &mut GameContext<'_>) -> (f32, f32) {
        let rng = ctx.rng();
        (rng.f32() * WORLD_SIZE, rng.f32() * WORLD_SIZE)
    }

    fn spawn_coin(ctx: &mut GameContext<'_>) -> (EntityId, f32, f32) {
        let (x, y) = Self::random_point(ctx);
        let id = ctx
            .entities
            .spawn("coin", [("x", Value::F32(x)), ("y", Value::F32(y))]);
        (id, x, y)
    }

    fn collect_coins(&mut self, ctx: &mut GameContext<'_>) {
        for (player, avatar) in &mut self.avatars {
            let Some(index) = self
                .coins
                .iter()
                .position(|&(_, x, y)| (x - avatar.x).hypot(y - avatar.y) <= PICKUP_RADIUS)
            else {
                continue;
            };
            let (coin, _, _) = self.coins.swap_remove(index);
            ctx.entities.remove(coin);
            avatar.score += 1;
            ctx.entities.set(avatar.entity, "score", avatar.score);
            ctx.broadcast(Value::Map(vec![
                (Value::from("type"), Value::from("coin")),
                (Value::from("player"), Value::from(player.0)),
                (Value::from("score"), Value::from(avatar.score)),
            ]));
            let replacement = Self::spawn_coin(ctx);
            self.coins.push(replacement);
        }
    }
}

fn set_position(entities: &mut EntityStore, avatar: &Avatar) {
    entities.set(avatar.entity, "x", Value::F32(avatar.x));
    entities.set(avatar.entity, "y", Value::F32(avatar.y));
}

impl Game for Arena {
    fn schema(&self) -> Schema {
        schema()
    }

    fn state_version(&self) -> u32 {
        STATE_VERSION
    }

    fn save(&self) -> Value {
        let mut avatars: Vec<(PlayerId, Avatar)> = self
            .avatars
            .iter()
            .map(|(player, avatar)| (*player, avatar.clone()))
            .collect();
        avatars.sort_unstable_by_key(|(player, _)| *player);
        save_as_value(&Saved {
            avatars,
            coins: self.coins.clone(),
        })
    }

    fn restore(&mut self, state: &Value) -> Result<(), RestoreRefused> {
        let saved: Saved = restore_from_value(state)?;
        self.avatars = saved.avatars.into_iter().collect();
        self.coins = saved.coins;
        Ok(())
    }

    fn on_create(&mut self, ctx: &mut GameContext<'_>) {
        while self.coins.len() < COINS {
            let coin = Self::spawn_coin(ctx);
            self.coins.push(coin);
        }
    }

    fn on_join(&mut self, ctx: &mut GameContext<'_>, player: PlayerId, name: &str) {
        let (x, y) = Self::random_point(ctx);
        let entity = ctx.entities.spawn(
            "player",
            [
                ("player", Value::from(player.0)),
                ("name", Value::from(name)),
                ("x", Value::F32(x)),
                ("y", Value::F32(y)),
                ("score", Value::from(0u32)),
            ],
        );
        let avatar = Avatar {
            entity,
            x,
            y,
            dx: 0.0,
            dy: 0.0,
            score: 0,
        };
        self.avatars.insert(player, avatar);
    }

    fn on_leave(&mut self, ctx: &mut GameContext<'_>, player: PlayerId) {
        if let Some(avatar) = self.avatars.remove(&player) {
            ctx.entities.remove(avatar.entity);
        }
    }

    fn on_input(
        &mut self,
        _ctx: &mut GameContext<'_>,
        player: PlayerId,
        payload: &Value,
    ) -> Result<(), InputRejected> {
        let (Some(dx), Some(dy)) = (payload_f64(payload, "dx"), payload_f64(payload, "dy")) else {
            return Err(InputRejected(
                "arena input must be a map with numeric `dx` and `dy`".to_owned(),
            ));
        };
        if !dx.is_finite() || !dy.is_finite() {
            return Err(InputRejected("`dx` and `dy` must be finite".to_owned()));
        }
        let length = dx.hypot(dy);
        let scale = if length > 1.0 { 1.0 / length } else { 1.0 };
        if let Some(avatar) = self.avatars.get_mut(&player) {
            avatar.dx = (dx * scale) as f32;
            avatar.dy = (dy * scale) as f32;
        }
        Ok(())
    }

    fn on_tick(&mut self, ctx: &mut GameContext<'_>, dt: Duration) {
        let step = SPEED * dt.as_secs_f32();
        for avatar in self.avatars.values_mut() {
            if avatar.dx == 0.0 && avatar.dy == 0.0 {
                continue;
            }
            avatar.x = (avatar.x + avatar.dx * step).clamp(0.0, WORLD_SIZE);
            avatar.y = (avatar.y + avatar.dy * step).clamp(0.0, WORLD_SIZE);
            set_position(ctx.entities, avatar);
        }
        self.collect_coins(ctx);
    }

    fn listing(&self) -> serde_json::Value {
        let top_score = self.avatars.values().map(|avatar| avatar.score).max();
        serde_json::json!({ "top_score": top_score.unwrap_or(0) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::tests::Harness;

    fn direction(dx: f64, dy: f64) -> Value {
        Value::Map(vec![
            (Value::from("dx"), Value::F64(dx)),
            (Value::from("dy"), Value::F64(dy)),
        ])
    }

    fn position(harness: &Harness, player: PlayerId, arena: &Arena) -> (f32, f32) {
        let avatar = &arena.avatars[&player];
        let x = harness
            .entities
            .get(avatar.entity, "x")
            .and_then(Value::as_f64);
        let y = harness
            .entities
            .get(avatar.entity, "y")
            .and_then(Value::as_f64);
        (x.unwrap_or(f64::NAN) as f32, y.unwrap_or(f64::NAN) as f32)
    }

    #[test]
    fn speed_is_enforced_whatever_the_input_length() {
        let mut harness = Harness::new();
        let mut arena = Arena::new(&harness.options());
        let player = PlayerId(1);
        harness.run(|ctx| arena.on_join(ctx, player, "ann"));
        let before = position(&harness, player, &arena);
        harness
            .run(|ctx| arena.on_input(ctx, player, &direction(1000.0, 0.0)))
            .expect("valid input");
        harness.run(|ctx| arena.on_tick(ctx, Duration::from_millis(50)));
        let after = position(&harness, player, &arena);
        let moved = (after.0 - before.0).hypot(after.1 - before.1);
        // Stored positions are snapped to the grid: allow half a step on each axis, twice.
        let grid_slack = (POSITION_STEP * std::f64::consts::SQRT_2) as f32;
        assert!(moved <= SPEED * 0.05 + grid_slack, "moved {moved}");
    }

    #[test]
    fn players_stay_inside_the_world() {
        let mut harness = Harness::new();
        let mut arena = Arena::new(&harness.options());
        let player = PlayerId(1);
        harness.run(|ctx| arena.on_join(ctx, player, "ann"));
        harness
            .run(|ctx| arena.on_input(ctx, player, &direction(-1.0, -1.0)))
            .expect("valid input");
        for _ in 0..200 {
            harness.run(|ctx| arena.on_tick(ctx, Duration::from_millis(50)));
        }
        assert_eq!(position(&harness, player, &arena), (0.0, 0.0));
    }

    #[test]
    fn malformed_input_is_rejected() {
        let mut harness = Harness::new();
        let mut arena = Arena::new(&harness.options());
        harness.run(|ctx| arena.on_join(ctx, PlayerId(1), "ann"));
        let rejected = harness.run(|ctx| arena.on_input(ctx, PlayerId(1), &Value::from("left")));
        assert!(rejected.is_err());
        let nan = harness.run(|ctx| arena.on_input(ctx, PlayerId(1), &direction(f64::NAN, 0.0)));
        assert!(nan.is_err());
    }

    #[test]
    fn touching_a_coin_scores_and_respawns_it() {
        let mut harness = Harness::new();
        let mut arena = Arena::new(&harness.options());
        harness.run(|ctx| arena.on_create(ctx));
        harness.run(|ctx| arena.on_join(ctx, PlayerId(1), "ann"));
        let (_, coin_x, coin_y) = arena.coins[0];
        if let Some(avatar) = arena.avatars.get_mut(&PlayerId(1)) {
            avatar.x = coin_x;
            avatar.y = coin_y;
        }
        harness.run(|ctx| arena.on_tick(ctx, Duration::from_millis(50)));
        assert_eq!(arena.avatars[&PlayerId(1)].score, 1);
        assert_eq!(arena.coins.len(), COINS);
        assert_eq!(harness.events.len(), 1);
    }

    #[test]
    fn schema_is_valid() {
        let schema = schema();
        let (_, player) = schema.kind("player").expect("declared");
        assert_eq!(player.fields.len(), 5);
    }
}
