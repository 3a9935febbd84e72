//! The client's mirror of a room: a snapshot plus every delta applied in order.
//!
//! Every client needs exactly this logic, so it lives here rather than in each client: the bot
//! swarm uses it, the server's property tests use it to prove that deltas reproduce the room's
//! state, and `PROTOCOL.md` describes the same algorithm for other languages.

use crate::error::ApplyError;
use crate::ids::{EntityId, PlayerId};
use crate::messages::{Delta, Entity, Snapshot};
use std::collections::BTreeMap;

/// A room's state as a client sees it.
///
/// ```
/// use ludus_protocol::{Delta, RoomState, Snapshot};
///
/// let snapshot = Snapshot { epoch: 9, tick: 4, entities: vec![], acks: vec![] };
/// let mut state = RoomState::from_snapshot(snapshot);
/// let next = Delta { epoch: 9, tick: 5, base_tick: 4, upserts: vec![], removed: vec![],
///                    acks: vec![], events: vec![] };
/// state.apply(&next).unwrap();
/// assert_eq!(state.tick(), 5);
/// // Applying the same delta again is a gap: the state is already at tick 5.
/// assert!(state.apply(&next).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RoomState {
    epoch: u64,
    tick: u64,
    entities: BTreeMap<EntityId, Entity>,
    acks: BTreeMap<PlayerId, u32>,
}

impl RoomState {
    /// Starts from a full snapshot.
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        Self {
            epoch: snapshot.epoch,
            tick: snapshot.tick,
            entities: snapshot
                .entities
                .into_iter()
                .map(|entity| (entity.id, entity))
                .collect(),
            acks: snapshot
                .acks
                .into_iter()
                .map(|ack| (ack.player, ack.seq))
                .collect(),
        }
    }

    /// Applies `delta`, or leaves the state untouched and says why it cannot.
    pub fn apply(&mut self, delta: &Delta) -> Result<(), ApplyError> {
        self.apply_with_departures(delta, &[])
    }

    /// Applies `delta` after dropping the acks of `departed` players (protocol version 2 keeps
    /// acks for members only; version 1 never drops them).
    pub(crate) fn apply_with_departures(
        &mut self,
        delta: &Delta,
        departed: &[PlayerId],
    ) -> Result<(), ApplyError> {
        if delta.epoch != self.epoch {
            return Err(ApplyError::EpochMismatch {
                state: self.epoch,
                delta: delta.epoch,
            });
        }
        if delta.base_tick != self.tick {
            return Err(ApplyError::Gap {
                state_tick: self.tick,
                base_tick: delta.base_tick,
            });
        }
        // Validate before mutating so a failed apply leaves the state as it was.
        for update in &delta.upserts {
            let survives =
                self.entities.contains_key(&update.id) && !delta.removed.contains(&update.id);
            if update.kind.is_none() && !survives {
                return Err(ApplyError::UnknownEntity(update.id));
            }
        }
        for player in departed {
            self.acks.remove(player);
        }
        for id in &delta.removed {
            self.entities.remove(id);
        }
        for update in &delta.upserts {
            match &update.kind {
                Some(kind) => {
                    self.entities.insert(
                        update.id,
                        Entity {
                            id: update.id,
                            kind: kind.clone(),
                            fields: update.fields.clone(),
                        },
                    );
                }
                None => {
                    if let Some(entity) = self.entities.get_mut(&update.id) {
                        for (name, value) in &update.fields {
                            // In place when the field exists (every move): no new key.
                            match entity.fields.get_mut(name) {
                                Some(current) => current.clone_from(value),
                                None => {
                                    entity.fields.insert(name.clone(), value.clone());
                                }
                            }
                        }
                    }
                }
            }
        }
        for player in &delta.left {
            self.acks.remove(player);
        }
        for ack in &delta.acks {
            self.acks.insert(ack.player, ack.seq);
        }
        self.tick = delta.tick;
        Ok(())
    }

    /// The room epoch this state belongs to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The last tick applied.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// One entity, if present.
    pub fn entity(&self, id: EntityId) -> Option<&Entity> {
        self.entities.get(&id)
    }

    /// Every entity, ordered by id.
    pub fn entities(&self) -> impl Iterator<Item = &Entity> {
        self.entities.values()
    }

    /// Every player's last applied input sequence number, ascending by player.
    pub fn acks(&self) -> impl Iterator<Item = (PlayerId, u32)> + '_ {
        self.acks.iter().map(|(player, seq)| (*player, *seq))
    }

    /// The last input sequence number the server applied for `player`.
    pub fn ack(&self, player: PlayerId) -> Option<u32> {
        self.acks.get(&player).copied()
    }
}
