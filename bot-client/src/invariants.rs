//! What a room must never do to its players, checked over plain data, so chaos tests (node
//! kills, pauses, NATS restarts, drains) can assert it from what clients saw.
//!
//! - [`TickOrder`], per bot and room: within an epoch ticks strictly increase (a snapshot may
//!   restate the last tick, never go below it); epochs never go back.
//! - [`EpochOwners`], across bots: one `(room, epoch)` is served by one node. Two nodes sending
//!   frames for the same room in the same epoch is split brain: each would step its own copy.
//! - [`SeatHolders`], across bots: one `(room, player)` is held by at most one live connection.
//! - [`Spread`]: p50/p99/max of drop → back times, for the failover and drain figures.
//!
//! No I/O, no clock and no locks here: the bot and the swarm's ledger
//! ([`crate::ledger`]) feed these with what they observed and keep what comes out.

use serde::Serialize;
use std::collections::HashMap;

/// A broken invariant, as reported in the swarm's JSON and summary.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Within one epoch a delta did not advance past the last tick seen, or a snapshot went
    /// below it.
    #[error("room `{room}` epoch {epoch}: tick {tick} after tick {last_tick}")]
    TickNotIncreasing {
        /// The room.
        room: String,
        /// The epoch both ticks belong to.
        epoch: u64,
        /// The last tick seen.
        last_tick: u64,
        /// The tick that did not advance.
        tick: u64,
    },
    /// A frame of an older epoch arrived after a newer one.
    #[error("room `{room}`: epoch {epoch} after epoch {last_epoch}")]
    EpochWentBack {
        /// The room.
        room: String,
        /// The newest epoch seen before.
        last_epoch: u64,
        /// The older epoch that arrived.
        epoch: u64,
    },
    /// Two nodes sent frames for the same room in the same epoch.
    #[error("room `{room}` epoch {epoch} served by `{first}` and by `{second}`")]
    EpochServedTwice {
        /// The room.
        room: String,
        /// The epoch.
        epoch: u64,
        /// The node seen first.
        first: String,
        /// The other node.
        second: String,
    },
    /// One seat was connected through two live connections at once.
    #[error("room `{room}` player {player} held by `{holder}` and by `{other}` at once")]
    SeatHeldTwice {
        /// The room.
        room: String,
        /// The player id.
        player: u64,
        /// The connection that held the seat.
        holder: String,
        /// The connection that got it too.
        other: String,
    },
}

impl Violation {
    /// The violation's key in the report's counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TickNotIncreasing { .. } => "tick_not_increasing",
            Self::EpochWentBack { .. } => "epoch_went_back",
            Self::EpochServedTwice { .. } => "epoch_served_twice",
            Self::SeatHeldTwice { .. } => "seat_held_twice",
        }
    }
}

/// Which kind of state message carried a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateKind {
    /// A full state: may restate the last tick (a resync or a resume answer).
    Snapshot,
    /// One step: must be a new tick.
    Delta,
}

/// The order of ticks one bot saw in one room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickOrder {
    /// `(epoch, tick)` of the last state applied.
    last: Option<(u64, u64)>,
}

impl TickOrder {
    /// Checks the state `(epoch, tick)` of `room`, carried by `kind`, against what came before,
    /// and remembers it unless it went back (so one stale frame is reported once).
    pub fn observe(
        &mut self,
        room: &str,
        kind: StateKind,
        epoch: u64,
        tick: u64,
    ) -> Result<(), Violation> {
        if let Some((last_epoch, last_tick)) = self.last {
            if epoch < last_epoch {
                return Err(Violation::EpochWentBack {
                    room: room.to_owned(),
                    last_epoch,
                    epoch,
                });
            }
            let advanced = match kind {
                StateKind::Delta => tick > last_tick,
                StateKind::Snapshot => tick >= last_tick,
            };
            if epoch == last_epoch && !advanced {
                return Err(Violation::TickNotIncreasing {
                    room: room.to_owned(),
                    epoch,
                    last_tick,
                    tick,
                });
            }
        }
        self.last = Some((epoch, tick));
        Ok(())
    }
}

/// Which node served each `(room, epoch)`, across every bot.
#[derive(Clone, Debug, Default)]
pub struct EpochOwners {
    owners: HashMap<(String, u64), String>,
}

impl EpochOwners {
    /// Records that `node` sent state of `room` in `epoch`.
    pub fn record(&mut self, room: &str, epoch: u64, node: &str) -> Result<(), Violation> {
        let key = (room.to_owned(), epoch);
        match self.owners.get(&key) {
            None => {
                self.owners.insert(key, node.to_owned());
                Ok(())
            }
            Some(first) if first == node => Ok(()),
            Some(first) => Err(Violation::EpochServedTwice {
                room: room.to_owned(),
                epoch,
                first: first.clone(),
                second: node.to_owned(),
            }),
        }
    }

    /// `(room, epoch)` pairs seen.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Whether no epoch was seen yet.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

/// Which connection holds each `(room, player)` right now, across every bot.
#[derive(Clone, Debug, Default)]
pub struct SeatHolders {
    holders: HashMap<(String, u64), String>,
}

impl SeatHolders {
    /// `connection` was welcomed into `room` as `player`. A seat already held by another live
    /// connection is a violation; the newcomer is not recorded then, so the holder's own
    /// [`disconnect`](Self::disconnect) still releases it.
    pub fn connect(&mut self, room: &str, player: u64, connection: &str) -> Result<(), Violation> {
        let key = (room.to_owned(), player);
        match self.holders.get(&key) {
            Some(holder) if holder != connection => Err(Violation::SeatHeldTwice {
                room: room.to_owned(),
                player,
                holder: holder.clone(),
                other: connection.to_owned(),
            }),
            _ => {
                self.holders.insert(key, connection.to_owned());
                Ok(())
            }
        }
    }

    /// `connection`'s connection to the seat ended (closed, reset or cut).
    pub fn disconnect(&mut self, room: &str, player: u64, connection: &str) {
        let key = (room.to_owned(), player);
        if self
            .holders
            .get(&key)
            .is_some_and(|holder| holder == connection)
        {
            self.holders.remove(&key);
        }
    }

    /// Seats held now.
    pub fn len(&self) -> usize {
        self.holders.len()
    }

    /// Whether no seat is held.
    pub fn is_empty(&self) -> bool {
        self.holders.is_empty()
    }
}

/// Median, 99th percentile and largest of a set of durations, in milliseconds (nearest rank).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Spread {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50_ms: u64,
    /// 99th percentile.
    pub p99_ms: u64,
    /// Largest.
    pub max_ms: u64,
}

impl Spread {
    /// The spread of `samples_ms` (any order); all zero when empty.
    pub fn of(samples_ms: &[u64]) -> Self {
        let mut sorted = samples_ms.to_vec();
        sorted.sort_unstable();
        let rank = |quantile: f64| -> u64 {
            // Nearest rank: the smallest sample with at least `quantile` of them at or below.
            let position = (quantile * sorted.len() as f64).ceil() as usize;
            sorted
                .get(
                    position
                        .saturating_sub(1)
                        .min(sorted.len().saturating_sub(1)),
                )
                .copied()
                .unwrap_or(0)
        };
        Self {
            count: sorted.len(),
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: sorted.last().copied().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_must_increase_within_an_epoch_and_may_restart_in_a_new_one() {
        let mut order = TickOrder::default();
        assert_eq!(order.observe("r", StateKind::Snapshot, 1, 10), Ok(()));
        assert_eq!(order.observe("r", StateKind::Delta, 1, 11), Ok(()));
        // A snapshot may restate the tick (a resync); a delta may not.
        assert_eq!(order.observe("r", StateKind::Snapshot, 1, 11), Ok(()));
        assert_eq!(
            order.observe("r", StateKind::Delta, 1, 11),
            Err(Violation::TickNotIncreasing {
                room: "r".into(),
                epoch: 1,
                last_tick: 11,
                tick: 11
            })
        );
        assert!(order.observe("r", StateKind::Snapshot, 1, 9).is_err());
        // A restored room is a new epoch from an older checkpoint: fine.
        assert_eq!(order.observe("r", StateKind::Snapshot, 2, 5), Ok(()));
        assert_eq!(order.observe("r", StateKind::Delta, 2, 6), Ok(()));
    }

    #[test]
    fn an_older_epoch_after_a_newer_one_is_reported_once_and_not_remembered() {
        let mut order = TickOrder::default();
        assert_eq!(order.observe("r", StateKind::Snapshot, 3, 10), Ok(()));
        let stale = order.observe("r", StateKind::Delta, 2, 50);
        assert_eq!(
            stale,
            Err(Violation::EpochWentBack {
                room: "r".into(),
                last_epoch: 3,
                epoch: 2
            })
        );
        assert_eq!(stale.map_err(|v| v.kind()), Err("epoch_went_back"));
        assert_eq!(order.observe("r", StateKind::Delta, 3, 11), Ok(()));
    }

    #[test]
    fn one_room_epoch_served_by_two_nodes_is_split_brain() {
        let mut owners = EpochOwners::default();
        assert_eq!(owners.record("r", 1, "127.0.0.1:1"), Ok(()));
        assert_eq!(owners.record("r", 1, "127.0.0.1:1"), Ok(()));
        assert_eq!(owners.record("r", 2, "127.0.0.1:2"), Ok(()));
        assert_eq!(owners.record("s", 1, "127.0.0.1:2"), Ok(()));
        assert_eq!(
            owners.record("r", 1, "127.0.0.1:2"),
            Err(Violation::EpochServedTwice {
                room: "r".into(),
                epoch: 1,
                first: "127.0.0.1:1".into(),
                second: "127.0.0.1:2".into()
            })
        );
        assert_eq!(owners.len(), 3);
    }

    #[test]
    fn a_seat_is_held_by_one_live_connection_at_a_time() {
        let mut seats = SeatHolders::default();
        assert_eq!(seats.connect("r", 7, "bot-1"), Ok(()));
        // The same connection welcomed again (a resume after its own drop) is fine.
        assert_eq!(seats.connect("r", 7, "bot-1"), Ok(()));
        assert!(matches!(
            seats.connect("r", 7, "bot-2"),
            Err(Violation::SeatHeldTwice { player: 7, .. })
        ));
        // Someone else's disconnect does not release the seat; the holder's does.
        seats.disconnect("r", 7, "bot-2");
        assert_eq!(seats.len(), 1);
        seats.disconnect("r", 7, "bot-1");
        assert!(seats.is_empty());
        assert_eq!(seats.connect("r", 7, "bot-2"), Ok(()));
        assert_eq!(seats.connect("s", 7, "bot-3"), Ok(()));
    }

    #[test]
    fn spreads_use_the_nearest_rank() {
        assert_eq!(Spread::of(&[]), Spread::default());
        let one = Spread::of(&[40]);
        assert_eq!(
            (one.count, one.p50_ms, one.p99_ms, one.max_ms),
            (1, 40, 40, 40)
        );
        let hundred: Vec<u64> = (1..=100).rev().collect();
        let spread = Spread::of(&hundred);
        assert_eq!(
            spread,
            Spread {
                count: 100,
                p50_ms: 50,
                p99_ms: 99,
                max_ms: 100
            }
        );
    }
}
