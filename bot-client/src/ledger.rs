//! The swarm's ledger of what no single bot can check alone: which node served each
//! `(room, epoch)`, which connection holds each seat, every invariant broken, each bot's
//! drop → back time, the last state each room delivered, and where each bot sits now.
//!
//! Bots write to it only on rare events (a welcome, a new epoch, a drop, a resume) and at
//! their periodic flush (room activity), never per frame, so one mutex is enough for a swarm.
//! The checks themselves are the pure functions of [`crate::invariants`]; this module only
//! keeps their state in one place and summarises it for the report. A chaos test also reads
//! it while the swarm runs: which rooms delivered state since a fault, which bots are back.

use crate::invariants::{EpochOwners, SeatHolders, Spread, Violation};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Violations kept word for word in the report; beyond this only the counts grow.
const MAX_KEPT_VIOLATIONS: usize = 50;

/// Drop → back samples kept (one per drop: bounded by drops, not frames; the cap only guards a
/// run that drops forever).
const MAX_DROP_SAMPLES: usize = 1_000_000;

/// Where one bot's seat is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BotPlace {
    /// The room.
    pub room: String,
    /// The player id of the seat.
    pub player: u64,
    /// The node (`host:port`) of the connection.
    pub node: String,
    /// Whether that connection is up now.
    pub connected: bool,
}

#[derive(Debug, Default)]
struct LedgerState {
    epoch_owners: EpochOwners,
    seats: SeatHolders,
    kept: Vec<String>,
    counts: BTreeMap<&'static str, u64>,
    drop_to_back_ms: Vec<u64>,
    room_last_state: HashMap<String, Instant>,
    bots: BTreeMap<String, BotPlace>,
}

impl LedgerState {
    fn note(&mut self, violation: Violation) {
        tracing::warn!(%violation, "invariant violated");
        *self.counts.entry(violation.kind()).or_default() += 1;
        if self.kept.len() < MAX_KEPT_VIOLATIONS {
            self.kept.push(violation.to_string());
        }
    }
}

/// The swarm-wide ledger; shared by every bot through [`crate::stats::SwarmStats`].
#[derive(Debug, Default)]
pub struct Ledger {
    state: Mutex<LedgerState>,
}

/// The ledger's figures for the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LedgerSummary {
    /// Invariant violations in all; must be 0.
    pub violations: u64,
    /// Violations by kind (`tick_not_increasing`, `epoch_went_back`, `epoch_served_twice`,
    /// `seat_held_twice`).
    pub violations_by_kind: BTreeMap<String, u64>,
    /// The first violations, word for word.
    pub violation_examples: Vec<String>,
    /// `(room, epoch)` pairs seen served, across bots.
    pub epochs_seen: usize,
    /// Drop (connection closed or failed) → back (first state applied after the resume).
    pub drop_to_back: Spread,
}

impl Ledger {
    fn state(&self) -> MutexGuard<'_, LedgerState> {
        // Every update leaves the state whole between statements; a panic elsewhere while the
        // lock was held does not make it unusable for the report.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `bot` was welcomed into `room` as `player` on a connection to `node`.
    pub fn welcomed(&self, bot: &str, room: &str, player: u64, node: &str) {
        let mut state = self.state();
        if let Err(violation) = state.seats.connect(room, player, bot) {
            state.note(violation);
        }
        let place = BotPlace {
            room: room.to_owned(),
            player,
            node: node.to_owned(),
            connected: true,
        };
        state.bots.insert(bot.to_owned(), place);
    }

    /// `bot`'s connection ended (closed, reset, timed out or cut); its seat may be resumed.
    pub fn connection_lost(&self, bot: &str) {
        let mut state = self.state();
        let Some(place) = state.bots.get_mut(bot) else {
            return;
        };
        place.connected = false;
        let (room, player) = (place.room.clone(), place.player);
        state.seats.disconnect(&room, player, bot);
    }

    /// `node` sent state of `room` in `epoch`.
    pub fn served(&self, room: &str, epoch: u64, node: &str) {
        let mut state = self.state();
        if let Err(violation) = state.epoch_owners.record(room, epoch, node) {
            state.note(violation);
        }
    }

    /// A violation a bot found on its own (tick order).
    pub fn violated(&self, violation: Violation) {
        self.state().note(violation);
    }

    /// One bot was back `after` its drop.
    pub fn back_after(&self, after: Duration) {
        let mut state = self.state();
        if state.drop_to_back_ms.len() < MAX_DROP_SAMPLES {
            let millis = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
            state.drop_to_back_ms.push(millis);
        }
    }

    /// `room` delivered state to some bot at `at`.
    pub fn room_state_at(&self, room: &str, at: Instant) {
        let mut state = self.state();
        let last = state.room_last_state.entry(room.to_owned()).or_insert(at);
        *last = (*last).max(at);
    }

    /// Rooms that delivered state to some bot at or after `since`.
    pub fn rooms_with_state_since(&self, since: Instant) -> BTreeSet<String> {
        self.state()
            .room_last_state
            .iter()
            .filter(|(_, at)| **at >= since)
            .map(|(room, _)| room.clone())
            .collect()
    }

    /// Where every bot sits now, by bot name.
    pub fn places(&self) -> BTreeMap<String, BotPlace> {
        self.state().bots.clone()
    }

    /// Every drop → back time so far, in milliseconds, in the order they happened (a test
    /// slices it by phase).
    pub fn drop_to_back_ms(&self) -> Vec<u64> {
        self.state().drop_to_back_ms.clone()
    }

    /// Invariant violations so far.
    pub fn violations(&self) -> u64 {
        self.state().counts.values().sum()
    }

    /// The figures for the report.
    pub fn summary(&self) -> LedgerSummary {
        let state = self.state();
        LedgerSummary {
            violations: state.counts.values().sum(),
            violations_by_kind: state
                .counts
                .iter()
                .map(|(kind, count)| ((*kind).to_owned(), *count))
                .collect(),
            violation_examples: state.kept.clone(),
            epochs_seen: state.epoch_owners.len(),
            drop_to_back: Spread::of(&state.drop_to_back_ms),
        }
    }
}

/// `host:port` of a `ws://host:port/...` URL (the whole URL if it has no such shape): the
/// name of the node a connection went to.
pub fn node_of_ws_url(ws_url: &str) -> &str {
    let rest = ws_url.split_once("://").map_or(ws_url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_taken_twice_and_an_epoch_served_twice_are_counted_and_kept() {
        let ledger = Ledger::default();
        ledger.welcomed("bot-1", "r", 1, "n1");
        ledger.welcomed("bot-2", "r", 1, "n2");
        ledger.served("r", 4, "n1");
        ledger.served("r", 4, "n2");
        let summary = ledger.summary();
        assert_eq!(summary.violations, 2);
        assert_eq!(summary.violations_by_kind["seat_held_twice"], 1);
        assert_eq!(summary.violations_by_kind["epoch_served_twice"], 1);
        assert_eq!(summary.violation_examples.len(), 2);
        assert_eq!(summary.epochs_seen, 1);
    }

    #[test]
    fn a_lost_connection_frees_the_seat_for_its_resume_elsewhere() {
        let ledger = Ledger::default();
        ledger.welcomed("bot-1", "r", 1, "n1");
        ledger.connection_lost("bot-1");
        assert!(!ledger.places()["bot-1"].connected);
        ledger.welcomed("bot-1", "r", 1, "n2");
        ledger.back_after(Duration::from_millis(1_500));
        assert_eq!(ledger.violations(), 0);
        let place = &ledger.places()["bot-1"];
        assert_eq!((place.node.as_str(), place.connected), ("n2", true));
        assert_eq!(ledger.summary().drop_to_back.max_ms, 1_500);
    }

    #[test]
    fn rooms_with_state_since_a_fault_are_those_that_delivered_after_it() {
        let ledger = Ledger::default();
        let before = Instant::now();
        let fault = before + Duration::from_millis(10);
        ledger.room_state_at("quiet", before);
        ledger.room_state_at("playing", fault + Duration::from_millis(5));
        ledger.room_state_at("playing", before);
        let rooms = ledger.rooms_with_state_since(fault);
        assert_eq!(rooms.into_iter().collect::<Vec<_>>(), vec!["playing"]);
    }

    #[test]
    fn the_node_of_a_ws_url_is_its_authority() {
        assert_eq!(
            node_of_ws_url("ws://127.0.0.1:7801/v1/rooms/r1/ws"),
            "127.0.0.1:7801"
        );
        assert_eq!(node_of_ws_url("ws://h"), "h");
        assert_eq!(node_of_ws_url("garbage"), "garbage");
    }
}
