//! `tictactoe`: the turn-based demo game, proving the [`Game`] trait is not shaped around
//! real-time movement.
//!
//! Two seats. The first player to join plays `X` and moves first. A player who does not move
//! within [`TURN_TIMEOUT`] forfeits, as does one who leaves mid-game. After a finished game either
//! player may send `{"restart": true}` to play again.
//!
//! Input payload: `{"cell": 0..=8}` (row-major) or `{"restart": true}`.
//! Entities: one `board {cells: [0|1|2; 9], turn: player id or nil, status, winner}` where
//! `status` is `waiting`, `playing`, `won` or `draw`; and `player {player, name, mark}`.
//! Refused moves are answered privately with an `invalid_input` error.

use super::{
    payload_f64, payload_field, restore_from_value, save_as_value, Game, GameContext,
    InputRejected, RestoreRefused,
};
use ludus_protocol::v2::{FieldType, Schema};
use ludus_protocol::{EntityId, PlayerId, Value};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The room type name.
pub const NAME: &str = "tictactoe";
/// A player who does not move within this time loses.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(30);

const LINES: [[usize; 3]; 8] = [
    [0, 1, 2],
    [3, 4, 5],
    [6, 7, 8],
    [0, 3, 6],
    [1, 4, 7],
    [2, 5, 8],
    [0, 4, 8],
    [2, 4, 6],
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Status {
    Waiting,
    Playing { turn: usize, waited: Duration },
    Won { winner: usize },
    Draw,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Seat {
    player: PlayerId,
    entity: EntityId,
}

/// What a checkpoint keeps of a game beyond its entities.
#[derive(Serialize, Deserialize)]
struct Saved {
    board: Option<EntityId>,
    cells: [u8; 9],
    seats: Vec<Seat>,
    status: Status,
}

/// Version of [`Saved`]'s layout.
const STATE_VERSION: u32 = 1;

/// State of one tic-tac-toe room.
pub struct TicTacToe {
    board: Option<EntityId>,
    cells: [u8; 9],
    seats: Vec<Seat>,
    status: Status,
}

impl Default for TicTacToe {
    fn default() -> Self {
        Self::new()
    }
}

impl TicTacToe {
    /// A new room waiting for two players.
    pub fn new() -> Self {
        Self {
            board: None,
            cells: [0; 9],
            seats: Vec::with_capacity(2),
            status: Status::Waiting,
        }
    }

    fn seat_of(&self, player: PlayerId) -> Option<usize> {
        self.seats.iter().position(|seat| seat.player == player)
    }

    fn publish(&self, ctx: &mut GameContext<'_>) {
        let Some(board) = self.board else { return };
        let cells = Value::Array(self.cells.iter().map(|&cell| Value::from(cell)).collect());
        let (status, turn, winner) = match self.status {
            Status::Waiting => ("waiting", Value::Nil, Value::Nil),
            Status::Playing { turn, .. } => ("playing", self.player_value(turn), Value::Nil),
            Status::Won { winner } => ("won", Value::Nil, self.player_value(winner)),
            Status::Draw => ("draw", Value::Nil, Value::Nil),
        };
        ctx.entities.set(board, "cells", cells);
        ctx.entities.set(board, "status", status);
        ctx.entities.set(board, "turn", turn);
        ctx.entities.set(board, "winner", winner);
    }

    fn player_value(&self, seat: usize) -> Value {
        self.seats
            .get(seat)
            .map_or(Value::Nil, |seat| Value::from(seat.player.0))
    }

    fn start(&mut self) {
        self.cells = [0; 9];
        self.status = Status::Playing {
            turn: 0,
            waited: Duration::ZERO,
        };
    }

    fn play(&mut self, seat: usize, cell: usize) -> Result<(), InputRejected> {
        let Status::Playing { turn, .. } = self.status else {
            return Err(InputRejected("the game is not in progress".to_owned()));
        };
        if turn != seat {
            return Err(InputRejected("it is not your turn".to_owned()));
        }
        match self.cells.get(cell) {
            None => return Err(InputRejected(format!("cell {cell} is off the board"))),
            Some(&0) => {}
            Some(_) => return Err(InputRejected(format!("cell {cell} is taken"))),
        }
        let mark = if seat == 0 { 1 } else { 2 };
        self.cells[cell] = mark;
        let won = LINES
            .iter()
            .any(|line| line.iter().all(|&index| self.cells[index] == mark));
        self.status = if won {
            Status::Won { winner: seat }
        } else if self.cells.iter().all(|&cell| cell != 0) {
            Status::Draw
        } else {
            Status::Playing {
                turn: 1 - seat,
                waited: Duration::ZERO,
            }
        };
        Ok(())
    }
}

/// The entity kinds: `cells`, `turn` and `winner` are arrays or nil, so they travel as `any`.
fn schema() -> Schema {
    Schema::new()
        .with_kind(
            "board",
            [
                ("cells", FieldType::Any),
                ("status", FieldType::Str),
                ("turn", FieldType::Any),
                ("winner", FieldType::Any),
            ],
        )
        .and_then(|schema| {
            schema.with_kind(
                "player",
                [
                    ("player", FieldType::UInt),
                    ("name", FieldType::Str),
                    ("mark", FieldType::Str),
                ],
            )
        })
        // expect: constant declarations, checked by `schema_is_valid` below.
        .expect("tictactoe's schema is valid")
}

impl Game for TicTacToe {
    fn schema(&self) -> Schema {
        schema()
    }

    fn state_version(&self) -> u32 {
        STATE_VERSION
    }

    fn save(&self) -> Value {
        save_as_value(&Saved {
            board: self.board,
            cells: self.cells,
            seats: self.seats.clone(),
            status: self.status,
        })
    }

    fn restore(&mut self, state: &Value) -> Result<(), RestoreRefused> {
        let saved: Saved = restore_from_value(state)?;
        let seat_out_of_range = match saved.status {
            Status::Playing { turn: seat, .. } | Status::Won { winner: seat } => seat > 1,
            Status::Waiting | Status::Draw => false,
        };
        if saved.cells.iter().any(|&cell| cell > 2) || saved.seats.len() > 2 || seat_out_of_range {
            return Err(RestoreRefused("board or seats out of range".to_owned()));
        }
        self.board = saved.board;
        self.cells = saved.cells;
        self.seats = saved.seats;
        self.status = saved.status;
        Ok(())
    }

    fn on_create(&mut self, ctx: &mut GameContext<'_>) {
        self.board = Some(ctx.entities.spawn(
            "board",
            [
                ("cells", Value::Array(vec![Value::from(0); 9])),
                ("status", Value::from("waiting")),
                ("turn", Value::Nil),
                ("winner", Value::Nil),
            ],
        ));
    }

    fn on_join(&mut self, ctx: &mut GameContext<'_>, player: PlayerId, name: &str) {
        let mark = if self.seats.is_empty() { "X" } else { "O" };
        let entity = ctx.entities.spawn(
            "player",
            [
                ("player", Value::from(player.0)),
                ("name", Value::from(name)),
                ("mark", Value::from(mark)),
            ],
        );
        self.seats.push(Seat { player, entity });
        if self.seats.len() == 2 {
            // A newcomer always starts a fresh game, even after a forfeit.
            self.start();
        }
        self.publish(ctx);
    }

    fn on_leave(&mut self, ctx: &mut GameContext<'_>, player: PlayerId) {
        let Some(seat) = self.seat_of(player) else {
            return;
        };
        let mid_game = matches!(self.status, Status::Playing { .. });
        let leaver = self.seats.remove(seat);
        ctx.entities.remove(leaver.entity);
        // The remaining player now sits in seat 0 and plays X next game.
        if let Some(remaining) = self.seats.first() {
            ctx.entities.set(remaining.entity, "mark", "X");
        }
        self.status = if mid_game && !self.seats.is_empty() {
            ctx.broadcast(Value::Map(vec![
                (Value::from("type"), Value::from("forfeit")),
                (Value::from("player"), Value::from(player.0)),
            ]));
            Status::Won { winner: 0 }
        } else {
            Status::Waiting
        };
        self.publish(ctx);
    }

    fn on_input(
        &mut self,
        ctx: &mut GameContext<'_>,
        player: PlayerId,
        payload: &Value,
    ) -> Result<(), InputRejected> {
        let Some(seat) = self.seat_of(player) else {
            return Err(InputRejected("you have no seat".to_owned()));
        };
        if payload_field(payload, "restart").and_then(Value::as_bool) == Some(true) {
            if !matches!(self.status, Status::Won { .. } | Status::Draw) {
                return Err(InputRejected("only a finished game can restart".to_owned()));
            }
            self.start();
        } else {
            let Some(cell) = payload_f64(payload, "cell") else {
                return Err(InputRejected(
                    "tictactoe input must be {\"cell\": 0..8} or {\"restart\": true}".to_owned(),
                ));
            };
            if cell.fract() != 0.0 || !(0.0..9.0).contains(&cell) {
                return Err(InputRejected(format!("cell {cell} is off the board")));
            }
            self.play(seat, cell as usize)?;
        }
        self.publish(ctx);
        Ok(())
    }

    fn on_tick(&mut self, ctx: &mut GameContext<'_>, dt: Duration) {
        let Status::Playing { turn, waited } = self.status else {
            return;
        };
        let waited = waited + dt;
        if waited < TURN_TIMEOUT {
            self.status = Status::Playing { turn, waited };
            return;
        }
        self.status = Status::Won { winner: 1 - turn };
        ctx.broadcast(Value::Map(vec![
            (Value::from("type"), Value::from("timeout")),
            (Value::from("player"), self.player_value(turn)),
        ]));
        self.publish(ctx);
    }

    fn listing(&self) -> serde_json::Value {
        let status = match self.status {
            Status::Waiting => "waiting",
            Status::Playing { .. } => "playing",
            Status::Won { .. } => "won",
            Status::Draw => "draw",
        };
        serde_json::json!({ "status": status })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::tests::Harness;

    fn cell(index: u8) -> Value {
        Value::Map(vec![(Value::from("cell"), Value::from(index))])
    }

    fn started() -> (Harness, TicTacToe) {
        let mut harness = Harness::new();
        let mut game = TicTacToe::new();
        harness.run(|ctx| game.on_create(ctx));
        harness.run(|ctx| game.on_join(ctx, PlayerId(1), "x"));
        harness.run(|ctx| game.on_join(ctx, PlayerId(2), "o"));
        (harness, game)
    }

    #[test]
    fn moves_out_of_turn_are_refused() {
        let (mut harness, mut game) = started();
        let refused = harness.run(|ctx| game.on_input(ctx, PlayerId(2), &cell(0)));
        assert_eq!(
            refused,
            Err(InputRejected("it is not your turn".to_owned()))
        );
    }

    #[test]
    fn three_in_a_row_wins() {
        let (mut harness, mut game) = started();
        for (player, index) in [(1, 0), (2, 3), (1, 1), (2, 4), (1, 2)] {
            harness
                .run(|ctx| game.on_input(ctx, PlayerId(player), &cell(index)))
                .expect("legal move");
        }
        assert_eq!(game.status, Status::Won { winner: 0 });
        assert_eq!(game.listing()["status"], "won");
    }

    #[test]
    fn a_taken_cell_is_refused() {
        let (mut harness, mut game) = started();
        harness
            .run(|ctx| game.on_input(ctx, PlayerId(1), &cell(4)))
            .expect("legal move");
        assert!(harness
            .run(|ctx| game.on_input(ctx, PlayerId(2), &cell(4)))
            .is_err());
    }

    #[test]
    fn leaving_mid_game_forfeits_to_the_other_player() {
        let (mut harness, mut game) = started();
        harness.run(|ctx| game.on_leave(ctx, PlayerId(1)));
        assert_eq!(game.status, Status::Won { winner: 0 });
        assert_eq!(game.player_value(0), Value::from(2u64));
        assert_eq!(harness.events.len(), 1);
        harness.run(|ctx| game.on_join(ctx, PlayerId(3), "new"));
        assert!(matches!(game.status, Status::Playing { turn: 0, .. }));
    }

    #[test]
    fn an_idle_player_forfeits() {
        let (mut harness, mut game) = started();
        let steps = TURN_TIMEOUT.as_millis() / 100 + 1;
        for _ in 0..steps {
            harness.run(|ctx| game.on_tick(ctx, Duration::from_millis(100)));
        }
        assert_eq!(game.status, Status::Won { winner: 1 });
    }

    #[test]
    fn schema_is_valid() {
        assert!(schema().kind("board").is_some());
    }
}
