//! The version 2 client mirror: the room's entities with their declared fields by schema index,
//! plus the schema that decodes packed deltas.
//!
//! Decoding and applying are one step because an update names fields by index within its
//! entity's kind, and only the state knows each entity's kind. The packed delta is decoded in
//! full (and checked against the state) before anything changes, then applied with the same
//! rules as version 1, so a version 2 mirror holds exactly what a version 1 mirror holds, except
//! that departed players' acks are dropped (the ack table is the member list).
//!
//! Why its own layout rather than a [`RoomState`]: a client applies every tick's delta, and a
//! load generator applies thousands of rooms' deltas a tick, each to a state that has gone cold
//! in the cache since the last one. Entities in one sorted vector with their declared fields in
//! index order are found by a binary search and updated by index, with no field name compared,
//! allocated or freed per update. The named view ([`CompactRoomState::state`]) is built only
//! when asked, and kept until the next change.

use super::bits::BitReader;
use super::codec::{read_created, read_declared, CompactSnapshot, DeltaBody};
use super::schema::{KindSchema, Schema};
use crate::error::{ApplyError, CompactError};
use crate::ids::{EntityId, PlayerId};
use crate::messages::{Delta, Entity, InputAck, Snapshot};
use crate::state::RoomState;
use rmpv::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A room's state as a version 2 client sees it.
#[derive(Clone, Debug)]
pub struct CompactRoomState {
    schema: Schema,
    epoch: u64,
    tick: u64,
    /// Ascending by id.
    entities: Vec<Mirrored>,
    /// Every member's last applied input, ascending by player.
    acks: Vec<(PlayerId, u32)>,
    /// The named (version 1) view, built when asked and dropped by the next change.
    named: OnceLock<RoomState>,
}

/// What a delta brought besides the state change: its ticks and acks. (Its events are the
/// body's own, [`DeltaBody::events`].)
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedDelta {
    /// The room epoch (the state's).
    pub epoch: u64,
    /// The tick the state is now at.
    pub tick: u64,
    /// The tick the delta applied to.
    pub base_tick: u64,
    /// Acks that changed (absolute sequence numbers), and every joined player's.
    pub acks: Vec<InputAck>,
}

impl From<Delta> for AppliedDelta {
    /// A version 1 delta, once applied, brings the same.
    fn from(delta: Delta) -> Self {
        Self {
            epoch: delta.epoch,
            tick: delta.tick,
            base_tick: delta.base_tick,
            acks: delta.acks,
        }
    }
}

/// One entity.
#[derive(Clone, Debug, PartialEq)]
struct Mirrored {
    id: EntityId,
    kind: Kind,
    /// The declared fields by index (`None`: not set).
    declared: Vec<Option<Value>>,
    /// Fields the schema does not declare for the kind, by name.
    extras: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// A kind of the schema, by index.
    Declared(usize),
    /// A kind the schema does not declare: every field is an extra.
    Undeclared(String),
}

/// What one update of a delta does, decoded and checked before anything changes.
enum Change {
    Created(Mirrored),
    Fields {
        index: usize,
        declared: Vec<(usize, Value)>,
        extras: Vec<(String, Value)>,
    },
}

impl Mirrored {
    /// An entity of `kind` with `fields` by name, as a snapshot or a creation carries it.
    fn new(
        schema: &Schema,
        id: EntityId,
        kind: String,
        fields: impl IntoIterator<Item = (String, Value)>,
    ) -> Self {
        let (kind, declared) = match schema.kind(&kind) {
            Some((index, declared)) => (Kind::Declared(index), vec![None; declared.fields.len()]),
            None => (Kind::Undeclared(kind), Vec::new()),
        };
        let mut entity = Self {
            id,
            kind,
            declared,
            extras: BTreeMap::new(),
        };
        let kind = entity.kind_schema(schema);
        for (name, value) in fields {
            entity.set_named(kind, name, value);
        }
        entity
    }

    fn kind_schema<'a>(&self, schema: &'a Schema) -> Option<&'a KindSchema> {
        match self.kind {
            Kind::Declared(index) => schema.kind_at(index),
            Kind::Undeclared(_) => None,
        }
    }

    /// Sets a field by name: in its slot when the kind declares it, as an extra otherwise.
    fn set_named(&mut self, kind: Option<&KindSchema>, name: String, value: Value) {
        match kind.and_then(|kind| kind.field(&name)) {
            Some((index, _)) => {
                if let Some(slot) = self.declared.get_mut(index) {
                    *slot = Some(value);
                }
            }
            None => {
                self.extras.insert(name, value);
            }
        }
    }

    /// The entity with named fields, as version 1 has it.
    fn named(&self, schema: &Schema) -> Entity {
        let kind = self.kind_schema(schema);
        let mut fields = self.extras.clone();
        if let Some(kind) = kind {
            for (field, value) in kind.fields.iter().zip(&self.declared) {
                if let Some(value) = value {
                    fields.insert(field.name.clone(), value.clone());
                }
            }
        }
        let kind = match (&self.kind, kind) {
            (Kind::Undeclared(name), _) => name.clone(),
            (Kind::Declared(_), Some(kind)) => kind.name.clone(),
            (Kind::Declared(_), None) => String::new(),
        };
        Entity {
            id: self.id,
            kind,
            fields,
        }
    }
}

impl CompactRoomState {
    /// Starts from a version 2 snapshot.
    pub fn from_snapshot(snapshot: CompactSnapshot) -> Self {
        let CompactSnapshot { schema, snapshot } = snapshot;
        // As in version 1, a later entry for the same id or player replaces an earlier one.
        let entities: BTreeMap<EntityId, Mirrored> = snapshot
            .entities
            .into_iter()
            .map(|entity| {
                let mirrored = Mirrored::new(&schema, entity.id, entity.kind, entity.fields);
                (entity.id, mirrored)
            })
            .collect();
        let acks: BTreeMap<PlayerId, u32> = snapshot
            .acks
            .into_iter()
            .map(|ack| (ack.player, ack.seq))
            .collect();
        Self {
            schema,
            epoch: snapshot.epoch,
            tick: snapshot.tick,
            entities: entities.into_values().collect(),
            acks: acks.into_iter().collect(),
            named: OnceLock::new(),
        }
    }

    /// The mirrored state (entities with named fields, acks), as in version 1. Built on the
    /// first call after a change: prefer [`Self::tick`] and [`Self::epoch`] on hot paths.
    pub fn state(&self) -> &RoomState {
        self.named.get_or_init(|| {
            RoomState::from_snapshot(Snapshot {
                epoch: self.epoch,
                tick: self.tick,
                entities: self
                    .entities
                    .iter()
                    .map(|entity| entity.named(&self.schema))
                    .collect(),
                acks: self
                    .acks
                    .iter()
                    .map(|&(player, seq)| InputAck { player, seq })
                    .collect(),
            })
        })
    }

    /// The room epoch the state belongs to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The last tick applied.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// The schema the last snapshot carried.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Decodes `body` against the state and applies it; returns its ticks and acks (absolute).
    /// On error the state is unchanged and the client should resync.
    pub fn apply_delta(&mut self, body: &DeltaBody) -> Result<AppliedDelta, CompactError> {
        let mut reader = BitReader::new(&body.packed);
        let tick = reader.read_varu()?;
        let base_tick = tick
            .checked_sub(reader.read_varu()?)
            .ok_or(CompactError::Malformed("base tick below zero"))?;
        if base_tick != self.tick {
            return Err(ApplyError::Gap {
                state_tick: self.tick,
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
        let mut changes = Vec::with_capacity(ids.len());
        // The ids ascend, as the entities do: one forward walk finds them all, reading the
        // entities in memory order (most of a room's entities change every tick).
        let mut cursor = 0;
        for id in ids {
            let change = if reader.read_bool()? {
                let (kind, fields) = read_created(&mut reader, &self.schema, extras)?;
                Change::Created(Mirrored::new(&self.schema, id, kind, fields))
            } else {
                while self
                    .entities
                    .get(cursor)
                    .is_some_and(|entity| entity.id < id)
                {
                    cursor += 1;
                }
                let index = Some(cursor)
                    .filter(|&index| {
                        self.entities
                            .get(index)
                            .is_some_and(|entity| entity.id == id)
                    })
                    .filter(|_| removed.binary_search(&id).is_err())
                    .ok_or(ApplyError::UnknownEntity(id))?;
                let kind = self.entities[index].kind_schema(&self.schema);
                let (declared, extras) = read_declared(&mut reader, kind, extras)?;
                Change::Fields {
                    index,
                    declared,
                    extras,
                }
            };
            changes.push(change);
        }
        reader.finish()?;

        // Decoded and checked: apply.
        self.named.take();
        self.acks
            .retain(|(player, _)| left.binary_search(player).is_err());
        // Updates name entities by their index before the removals shift them: set fields
        // first, then remove, then insert what was created.
        let mut created = Vec::new();
        for change in changes {
            match change {
                Change::Created(entity) => created.push(entity),
                Change::Fields {
                    index,
                    declared,
                    extras,
                } => {
                    let entity = &mut self.entities[index];
                    for (field, value) in declared {
                        if let Some(slot) = entity.declared.get_mut(field) {
                            *slot = Some(value);
                        }
                    }
                    let kind = entity.kind_schema(&self.schema);
                    for (name, value) in extras {
                        entity.set_named(kind, name, value);
                    }
                }
            }
        }
        if !removed.is_empty() {
            self.entities
                .retain(|entity| removed.binary_search(&entity.id).is_err());
        }
        for entity in created {
            match self
                .entities
                .binary_search_by_key(&entity.id, |entity| entity.id)
            {
                Ok(index) => self.entities[index] = entity,
                Err(index) => self.entities.insert(index, entity),
            }
        }
        for ack in &acks {
            match self
                .acks
                .binary_search_by_key(&ack.player, |(player, _)| *player)
            {
                Ok(index) => self.acks[index].1 = ack.seq,
                Err(index) => self.acks.insert(index, (ack.player, ack.seq)),
            }
        }
        self.tick = tick;
        Ok(AppliedDelta {
            epoch: self.epoch,
            tick,
            base_tick,
            acks,
        })
    }

    /// Reads the ack section: the table after the tick is the members before it, minus `left`,
    /// plus `joined` (at 0); a bit per member says whether its sequence advanced, and by how much.
    fn read_acks(
        &self,
        reader: &mut BitReader<'_>,
        left: &[PlayerId],
        joined: &[PlayerId],
    ) -> Result<Vec<InputAck>, CompactError> {
        // Most ticks nobody joins or leaves: the table is the state's own.
        let table: Cow<'_, [(PlayerId, u32)]> = if left.is_empty() && joined.is_empty() {
            Cow::Borrowed(&self.acks)
        } else {
            let mut table: Vec<(PlayerId, u32)> = self
                .acks
                .iter()
                .copied()
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
            Cow::Owned(table)
        };
        let mut acks: Vec<InputAck> = Vec::new();
        let changed = reader.read_bool()?;
        for &(player, seq) in table.iter() {
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

impl PartialEq for CompactRoomState {
    /// Two mirrors are equal when they hold the same state under the same schema (whether the
    /// named view was built yet does not matter).
    fn eq(&self, other: &Self) -> bool {
        self.schema == other.schema
            && self.epoch == other.epoch
            && self.tick == other.tick
            && self.entities == other.entities
            && self.acks == other.acks
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
