//! The version 2 client mirror: a [`RoomState`] plus the schema that decodes packed deltas.
//!
//! Decoding and applying are one step because an update names fields by index within its
//! entity's kind, and only the state knows each entity's kind. The packed delta is decoded in
//! full (and checked against the state) before anything changes, then applied with the same
//! rules as version 1, so a version 2 mirror holds exactly what a version 1 mirror holds, except
//! that departed players' acks are dropped (the ack table is the member list).

use super::bits::BitReader;
use super::codec::{read_created, read_fields, CompactSnapshot, DeltaBody};
use super::schema::Schema;
use crate::error::{ApplyError, CompactError};
use crate::ids::{EntityId, PlayerId};
use crate::messages::{Delta, EntityUpdate, InputAck};
use crate::state::RoomState;

/// A room's state as a version 2 client sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct CompactRoomState {
    schema: Schema,
    state: RoomState,
}

impl CompactRoomState {
    /// Starts from a version 2 snapshot.
    pub fn from_snapshot(snapshot: CompactSnapshot) -> Self {
        Self {
            schema: snapshot.schema,
            state: RoomState::from_snapshot(snapshot.snapshot),
        }
    }

    /// The mirrored state (entities with named fields, acks), as in version 1.
    pub fn state(&self) -> &RoomState {
        &self.state
    }

    /// The schema the last snapshot carried.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Decodes `body` against the state and applies it; returns the delta in version 1 form
    /// (acks absolute, `epoch` the state's). On error the state is unchanged and the client
    /// should resync.
    pub fn apply_delta(&mut self, body: &DeltaBody) -> Result<Delta, CompactError> {
        let (delta, left) = self.decode(body)?;
        self.state.apply_with_departures(&delta, &left)?;
        Ok(delta)
    }

    fn decode(&self, body: &DeltaBody) -> Result<(Delta, Vec<PlayerId>), CompactError> {
        let mut reader = BitReader::new(&body.packed);
        let tick = reader.read_varu()?;
        let base_tick = tick
            .checked_sub(reader.read_varu()?)
            .ok_or(CompactError::Malformed("base tick below zero"))?;
        if base_tick != self.state.tick() {
            return Err(ApplyError::Gap {
                state_tick: self.state.tick(),
                base_tick,
            }
            .into());
        }
        let removed = entity_ids(reader.read_ascending()?)?;
        let left: Vec<PlayerId> = reader.read_ascending()?.into_iter().map(PlayerId).collect();
        let joined: Vec<PlayerId> = reader.read_ascending()?.into_iter().map(PlayerId).collect();
        let acks = self.read_acks(&mut reader, &left, &joined)?;
        let extras = reader.read_bool()?;
        let ids = entity_ids(reader.read_ascending()?)?;
        let mut upserts = Vec::with_capacity(ids.len());
        for id in ids {
            let update = if reader.read_bool()? {
                let (kind, fields) = read_created(&mut reader, &self.schema, extras)?;
                EntityUpdate {
                    id,
                    kind: Some(kind),
                    fields,
                }
            } else {
                let entity = self
                    .state
                    .entity(id)
                    .filter(|_| removed.binary_search(&id).is_err())
                    .ok_or(ApplyError::UnknownEntity(id))?;
                let kind = self.schema.kind(&entity.kind).map(|(_, kind)| kind);
                EntityUpdate {
                    id,
                    kind: None,
                    fields: read_fields(&mut reader, kind, extras)?,
                }
            };
            upserts.push(update);
        }
        reader.finish()?;
        let delta = Delta {
            epoch: self.state.epoch(),
            tick,
            base_tick,
            upserts,
            removed,
            left: Vec::new(),
            acks,
            events: body.events.clone(),
        };
        Ok((delta, left))
    }

    /// Reads the ack section: the table after the tick is the members before it, minus `left`,
    /// plus `joined` (at 0); a bit per member says whether its sequence advanced, and by how much.
    fn read_acks(
        &self,
        reader: &mut BitReader<'_>,
        left: &[PlayerId],
        joined: &[PlayerId],
    ) -> Result<Vec<InputAck>, CompactError> {
        let mut table: Vec<(PlayerId, u32)> = self
            .state
            .acks()
            .filter(|(player, _)| left.binary_search(player).is_err())
            .collect();
        table.extend(joined.iter().map(|player| (*player, 0)));
        table.sort_unstable_by_key(|(player, _)| *player);
        // A joined player the state still had (it left and came back) starts again at 0.
        table.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                earlier.1 = 0;
            }
            same
        });
        let mut acks: Vec<InputAck> = Vec::new();
        let changed = reader.read_bool()?;
        for (player, seq) in table {
            let step = if changed && reader.read_bool()? {
                reader.read_varu32()?
            } else {
                0
            };
            if step != 0 || joined.binary_search(&player).is_ok() {
                acks.push(InputAck {
                    player,
                    seq: seq.wrapping_add(step),
                });
            }
        }
        Ok(acks)
    }
}

fn entity_ids(ids: Vec<u64>) -> Result<Vec<EntityId>, CompactError> {
    ids.into_iter()
        .map(|id| {
            u32::try_from(id)
                .map(EntityId)
                .map_err(|_| CompactError::Malformed("entity id above u32"))
        })
        .collect()
}
