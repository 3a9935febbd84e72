//! The entity store: a room's game state with per-field change tracking.
//!
//! Games mutate entities through this store only, so every change is recorded as it happens and
//! the room can build each tick's delta from the dirty set alone, without diffing the world.
//! Entity ids are never reused within a store, so "removed" and "created" can never be confused
//! by a client that missed a tick.
//!
//! Deltas are idempotent "set" operations (a created entity carries every field, removals of
//! unknown ids are no-ops), which is what lets the room hand a joining player a snapshot taken
//! between ticks: the next delta re-applies cleanly on top of it.
//!
//! Values are normalized through the game's [`Schema`] as they are stored: a quantized field
//! holds its snapped float32, so the state every client mirrors (version 1 or 2) is exactly the
//! server's, and a version 2 encoder never loses precision. A value that does not fit its
//! declared type is a bug in the game: the store panics with the field's name, which the
//! simulation turns into `room_crashed` like any other panic in a game hook.

use ludus_protocol::v2::Schema;
use ludus_protocol::{Entity, EntityId, EntityUpdate, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What changed in one entity since the last [`EntityStore::take_changes`].
#[derive(Clone, Debug, PartialEq)]
enum Dirty {
    Clean,
    /// Created since the last delta: send it whole.
    Created,
    /// Existing entity: send only these fields.
    Fields(Vec<String>),
}

#[derive(Clone, Debug)]
struct StoredEntity {
    kind: String,
    fields: BTreeMap<String, Value>,
    dirty: Dirty,
}

/// The changes collected since the previous call to [`EntityStore::take_changes`].
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Entities created or changed, in id order.
    pub upserts: Vec<EntityUpdate>,
    /// Entities removed, in removal order.
    pub removed: Vec<EntityId>,
}

/// A room's entities with change tracking.
#[derive(Debug, Default)]
pub struct EntityStore {
    next_id: u32,
    entities: BTreeMap<EntityId, StoredEntity>,
    /// Ids whose `dirty` is not `Clean`, so building a delta never scans the whole world.
    dirty_ids: Vec<EntityId>,
    removed: Vec<EntityId>,
    /// Shared with the room's encoder, which packs fields by this schema's indices.
    schema: Arc<Schema>,
}

impl EntityStore {
    /// An empty store whose kinds are all undeclared (values stored as given).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store normalizing values through `schema`.
    pub fn with_schema(schema: Arc<Schema>) -> Self {
        Self {
            schema,
            ..Self::default()
        }
    }

    /// The schema values are normalized through.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// `value` as stored for `field` of a `kind` entity.
    fn normalize(schema: &Schema, kind: &str, field: &str, value: Value) -> Value {
        match schema.normalize(kind, field, value) {
            Ok(value) => value,
            // panic: a game writing a value its own schema forbids is a bug in the game; the
            // simulation catches it and ends only this room (`room_crashed`).
            Err(mismatch) => panic!("field `{field}` of `{kind}`: {mismatch}"),
        }
    }

    /// Creates an entity of `kind` with `fields` and returns its fresh id.
    pub fn spawn<K, I, N>(&mut self, kind: K, fields: I) -> EntityId
    where
        K: Into<String>,
        I: IntoIterator<Item = (N, Value)>,
        N: Into<String>,
    {
        let id = EntityId(self.next_id);
        self.next_id += 1;
        let kind = kind.into();
        let fields = fields
            .into_iter()
            .map(|(name, value)| {
                let name = name.into();
                let value = Self::normalize(&self.schema, &kind, &name, value);
                (name, value)
            })
            .collect();
        self.entities.insert(
            id,
            StoredEntity {
                kind,
                fields,
                dirty: Dirty::Created,
            },
        );
        self.dirty_ids.push(id);
        id
    }

    /// Sets one field; a no-op (and no change recorded) when the value is unchanged.
    /// Returns `false` when the entity does not exist.
    pub fn set(&mut self, id: EntityId, field: &str, value: impl Into<Value>) -> bool {
        let Some(entity) = self.entities.get_mut(&id) else {
            return false;
        };
        let value = Self::normalize(&self.schema, &entity.kind, field, value.into());
        match entity.fields.get_mut(field) {
            Some(current) if *current == value => return true,
            Some(current) => *current = value,
            None => {
                entity.fields.insert(field.to_owned(), value);
            }
        }
        match &mut entity.dirty {
            Dirty::Created => {}
            Dirty::Fields(names) => {
                if !names.iter().any(|name| name == field) {
                    names.push(field.to_owned());
                }
            }
            Dirty::Clean => {
                entity.dirty = Dirty::Fields(vec![field.to_owned()]);
                self.dirty_ids.push(id);
            }
        }
        true
    }

    /// Reads one field.
    pub fn get(&self, id: EntityId, field: &str) -> Option<&Value> {
        self.entities.get(&id)?.fields.get(field)
    }

    /// The kind of an entity.
    pub fn kind(&self, id: EntityId) -> Option<&str> {
        self.entities.get(&id).map(|entity| entity.kind.as_str())
    }

    /// Whether the entity exists.
    pub fn contains(&self, id: EntityId) -> bool {
        self.entities.contains_key(&id)
    }

    /// Ids of every entity of `kind`, in id order.
    pub fn ids_of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = EntityId> + 'a {
        self.entities
            .iter()
            .filter(move |(_, entity)| entity.kind == kind)
            .map(|(id, _)| *id)
    }

    /// Removes an entity. Returns `false` when it did not exist.
    pub fn remove(&mut self, id: EntityId) -> bool {
        if self.entities.remove(&id).is_none() {
            return false;
        }
        // Always reported, even when created this tick: a client may hold it from a snapshot
        // taken between ticks.
        self.removed.push(id);
        true
    }

    /// Number of entities.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Every entity in full, in id order (a snapshot's body).
    pub fn snapshot(&self) -> Vec<Entity> {
        self.entities
            .iter()
            .map(|(id, entity)| Entity {
                id: *id,
                kind: entity.kind.clone(),
                fields: entity.fields.clone(),
            })
            .collect()
    }

    /// The id the next spawned entity gets (for checkpoints: ids are never reused).
    pub fn next_id(&self) -> u32 {
        self.next_id
    }

    /// A store holding `entities` (as a checkpoint saved them, all clean) whose next entity
    /// gets `next_id`. `None` when two entities share an id or one is not below `next_id`
    /// (a checkpoint that cannot be the state of any store).
    pub fn restored(schema: Arc<Schema>, entities: &[Entity], next_id: u32) -> Option<Self> {
        let mut store = Self::with_schema(schema);
        store.next_id = next_id;
        for entity in entities {
            if entity.id.0 >= next_id {
                return None;
            }
            let stored = StoredEntity {
                kind: entity.kind.clone(),
                fields: entity.fields.clone(),
                dirty: Dirty::Clean,
            };
            if store.entities.insert(entity.id, stored).is_some() {
                return None;
            }
        }
        Some(store)
    }

    /// Returns the changes since the previous call and marks everything clean.
    pub fn take_changes(&mut self) -> Changes {
        let mut dirty_ids = std::mem::take(&mut self.dirty_ids);
        dirty_ids.sort_unstable();
        let mut upserts = Vec::with_capacity(dirty_ids.len());
        for id in dirty_ids {
            let Some(entity) = self.entities.get_mut(&id) else {
                continue; // removed after it changed: the removal says it all
            };
            match std::mem::replace(&mut entity.dirty, Dirty::Clean) {
                Dirty::Clean => {}
                Dirty::Created => upserts.push(EntityUpdate {
                    id,
                    kind: Some(entity.kind.clone()),
                    fields: entity.fields.clone(),
                }),
                Dirty::Fields(names) => {
                    let fields = names
                        .into_iter()
                        .filter_map(|name| {
                            let value = entity.fields.get(&name)?.clone();
                            Some((name, value))
                        })
                        .collect();
                    upserts.push(EntityUpdate {
                        id,
                        kind: None,
                        fields,
                    });
                }
            }
        }
        Changes {
            upserts,
            removed: std::mem::take(&mut self.removed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_set_records_nothing() {
        let mut store = EntityStore::new();
        let id = store.spawn("coin", [("x", Value::from(1))]);
        store.take_changes();
        assert!(store.set(id, "x", 1));
        assert_eq!(store.take_changes(), Changes::default());
    }

    #[test]
    fn created_entity_is_sent_whole_then_only_changed_fields() {
        let mut store = EntityStore::new();
        let id = store.spawn("player", [("x", Value::from(1)), ("y", Value::from(2))]);
        store.set(id, "x", 5);
        let first = store.take_changes();
        assert_eq!(first.upserts.len(), 1);
        assert_eq!(first.upserts[0].kind.as_deref(), Some("player"));
        assert_eq!(first.upserts[0].fields.len(), 2);
        store.set(id, "y", 9);
        let second = store.take_changes();
        assert_eq!(second.upserts[0].kind, None);
        assert_eq!(second.upserts[0].fields.keys().collect::<Vec<_>>(), ["y"]);
    }

    #[test]
    fn entity_created_and_removed_in_one_tick_is_reported_removed() {
        let mut store = EntityStore::new();
        let id = store.spawn("coin", Vec::<(String, Value)>::new());
        store.remove(id);
        let changes = store.take_changes();
        assert!(changes.upserts.is_empty());
        assert_eq!(changes.removed, vec![id]);
    }

    #[test]
    fn declared_numbers_are_stored_quantized() {
        use ludus_protocol::v2::{FieldType, Quantization};
        let grid = Quantization::new(0.0, 10.0, 0.5).expect("valid");
        let schema = Schema::new()
            .with_kind("coin", [("x", FieldType::Quantized(grid))])
            .expect("valid");
        let mut store = EntityStore::with_schema(Arc::new(schema));
        let id = store.spawn("coin", [("x", Value::F32(1.3))]);
        assert_eq!(store.get(id, "x"), Some(&Value::F32(1.5)));
        store.set(id, "x", Value::F64(99.0));
        assert_eq!(store.get(id, "x"), Some(&Value::F32(10.0)));
    }

    #[test]
    #[should_panic(expected = "field `x` of `coin`")]
    fn a_value_of_the_wrong_type_is_a_game_bug() {
        use ludus_protocol::v2::FieldType;
        let schema = Schema::new()
            .with_kind("coin", [("x", FieldType::UInt)])
            .expect("valid");
        let mut store = EntityStore::with_schema(Arc::new(schema));
        store.spawn("coin", [("x", Value::from("left"))]);
    }

    #[test]
    fn ids_are_never_reused() {
        let mut store = EntityStore::new();
        let first = store.spawn("coin", Vec::<(String, Value)>::new());
        store.remove(first);
        let second = store.spawn("coin", Vec::<(String, Value)>::new());
        assert_ne!(first, second);
    }
}
