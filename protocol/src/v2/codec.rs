//! Encoding of version 2's compact `snapshot` (`s`) and `delta` (`d`) messages, and decoding of
//! version 2 frames. The layouts are specified in PROTOCOL.md §19; this file must match it.
//!
//! Encoding is a pure function of the schema and the room's (already normalized) state or
//! changes, so a room encodes each tick once per protocol version and shares the bytes. A delta
//! is built from a [`Delta`] plus the tick's [`Roster`] change, which is also how a delta from an
//! older base tick (session resumption) can be encoded later: merge the changes since that tick
//! and call [`encode_delta`] on the result.
//!
//! Decoding a delta's packed body needs the client's state (an update names its entity's fields
//! by index, and the kind is known from the state), so it happens in
//! [`super::CompactRoomState::apply_delta`]; here frames are only split into messages.

use super::bits::{BitReader, BitWriter};
use super::schema::{FieldType, KindSchema, Schema, TypeMismatch};
use crate::codec::MAX_DEPTH;
use crate::error::CompactError;
use crate::ids::{EntityId, PlayerId};
use crate::messages::{Delta, Entity, InputAck, ServerMessage, Snapshot};
use rmpv::Value;
use std::collections::BTreeMap;
use std::ops::Range;

/// The key of a version 2 snapshot message.
pub const SNAPSHOT_KEY: &str = "s";
/// The key of a version 2 delta message.
pub const DELTA_KEY: &str = "d";

/// How the room's members changed in a tick, as version 2 sends acks: the ack table of a
/// version 2 client holds exactly the current members, so departures are announced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    /// Players who left since the base tick (whether or not they came back).
    pub left: Vec<PlayerId>,
    /// Players who joined since the base tick and are members now; their ack starts at 0.
    pub joined: Vec<PlayerId>,
    /// Every member after the tick, ascending by id, with how far its applied input sequence
    /// advanced since the base tick (wrapping; 0 = unchanged).
    pub ack_steps: Vec<(PlayerId, u32)>,
}

/// Why the server could not encode a version 2 message. Both variants mean the server broke
/// its own invariant (values are normalized when stored; updated entities are alive).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// A field value that does not fit its declared type.
    #[error("field `{field}`: {mismatch}")]
    Type {
        /// The field's name.
        field: String,
        /// What did not fit.
        mismatch: TypeMismatch,
    },
    /// An update of an entity whose kind is unknown.
    #[error("entity {0} is updated but its kind is unknown")]
    UnknownKind(EntityId),
    /// Two entries for one entity in one message.
    #[error("entity {0} appears twice")]
    DuplicateEntity(EntityId),
}

/// The order of `count` entities by ascending id (`id_of` an entity's position), refusing
/// duplicates: packed ids are strictly increasing.
fn ascending_order(
    count: usize,
    id_of: impl Fn(usize) -> EntityId,
) -> Result<Vec<usize>, EncodeError> {
    let mut order: Vec<usize> = (0..count).collect();
    order.sort_unstable_by_key(|&index| id_of(index));
    match order
        .windows(2)
        .find(|pair| id_of(pair[0]) == id_of(pair[1]))
    {
        Some(pair) => Err(EncodeError::DuplicateEntity(id_of(pair[0]))),
        None => Ok(order),
    }
}

/// `ids` ascending without duplicates (removing twice is removing once).
fn ascending<T: Ord + Copy>(ids: &[T]) -> Vec<T> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}

/// The packed form of one entity's fields, shared by snapshots, creations and updates.
///
/// Built in one pass over the entity's fields: which declared fields are present (the mask),
/// their values in index order (kept in a list shared by every entity of the message, so
/// writing needs no lookup and no allocation per entity), and how many are undeclared.
struct EntityFields<'a> {
    kind: Option<(usize, &'a KindSchema)>,
    fields: &'a BTreeMap<String, Value>,
    /// Present declared fields, most significant bit = field 0.
    mask: u64,
    /// Where this entity's present declared fields are in the shared list, by index.
    declared: Range<usize>,
    /// Undeclared fields, sent by name.
    undeclared: usize,
}

/// Present declared fields of a message's entities: (field index, value), each entity's run in
/// index order.
type DeclaredValues<'a> = Vec<(usize, &'a Value)>;

impl<'a> EntityFields<'a> {
    fn new(
        kind: Option<(usize, &'a KindSchema)>,
        fields: &'a BTreeMap<String, Value>,
        values: &mut DeclaredValues<'a>,
    ) -> Self {
        let declared = kind.map_or(0, |(_, kind)| kind.fields.len());
        let start = values.len();
        let mut mask = 0u64;
        let mut undeclared = 0;
        for (name, value) in fields {
            match kind.and_then(|(_, kind)| kind.field(name)) {
                Some((index, _)) => {
                    mask |= 1 << (declared - 1 - index);
                    values.push((index, value));
                }
                None => undeclared += 1,
            }
        }
        values[start..].sort_unstable_by_key(|(index, _)| *index);
        Self {
            kind,
            fields,
            mask,
            declared: start..values.len(),
            undeclared,
        }
    }

    fn write_kind(&self, writer: &mut BitWriter, name: &str) {
        match self.kind {
            Some((index, _)) => writer.write_varu(index as u64 + 1),
            None => {
                writer.write_varu(0);
                writer.write_bytes(name.as_bytes());
            }
        }
    }

    fn write(
        &self,
        writer: &mut BitWriter,
        extras: bool,
        values: &DeclaredValues<'a>,
    ) -> Result<(), EncodeError> {
        let declared = self
            .kind
            .map(|(_, kind)| kind.fields.as_slice())
            .unwrap_or_default();
        writer.write_bits(self.mask, declared.len() as u32);
        for &(index, value) in &values[self.declared.clone()] {
            let field = &declared[index];
            field
                .ty
                .write(writer, value)
                .map_err(|mismatch| EncodeError::Type {
                    field: field.name.clone(),
                    mismatch,
                })?;
        }
        if extras {
            writer.write_varu(self.undeclared as u64);
            let undeclared = self
                .fields
                .iter()
                .filter(|(name, _)| !declared.iter().any(|field| &field.name == *name));
            for (name, value) in undeclared {
                writer.write_bytes(name.as_bytes());
                FieldType::Any
                    .write(writer, value)
                    .map_err(|mismatch| EncodeError::Type {
                        field: name.clone(),
                        mismatch,
                    })?;
            }
        }
        Ok(())
    }
}

/// Writes `prefix` then `{key: [head..., packed, tail...]}` straight into bytes: the packed part
/// as a `bin`, the rest as MessagePack values, without building a value tree first (a room does
/// this every tick). `prefix` is empty for a message alone, or a batch header.
fn message(prefix: &[u8], key: &str, head: &[Value], packed: &[u8], tail: &[Value]) -> Vec<u8> {
    fn write(
        out: &mut Vec<u8>,
        key: &str,
        head: &[Value],
        packed: &[u8],
        tail: &[Value],
    ) -> Result<(), Box<dyn std::error::Error>> {
        let parts = u32::try_from(head.len() + 1 + tail.len())?;
        rmp::encode::write_map_len(out, 1)?;
        rmp::encode::write_str(out, key)?;
        rmp::encode::write_array_len(out, parts)?;
        for value in head {
            rmpv::encode::write_value(out, value)?;
        }
        rmp::encode::write_bin(out, packed)?;
        for value in tail {
            rmpv::encode::write_value(out, value)?;
        }
        Ok(())
    }
    let mut bytes = Vec::with_capacity(prefix.len() + 16 + packed.len());
    bytes.extend_from_slice(prefix);
    // expect: writing into a Vec cannot fail, and a message never has 2^32 parts.
    write(&mut bytes, key, head, packed, tail).expect("writing into a Vec");
    bytes
}

/// Encodes `{"s": [epoch, tick, schema, packed]}`, a version 2 snapshot message (to be put in a
/// batch frame with [`crate::codec::batch_frame`]).
pub fn encode_snapshot(schema: &Schema, snapshot: &Snapshot) -> Result<Vec<u8>, EncodeError> {
    let mut values = DeclaredValues::new();
    let entities: Vec<EntityFields<'_>> = snapshot
        .entities
        .iter()
        .map(|entity| EntityFields::new(schema.kind(&entity.kind), &entity.fields, &mut values))
        .collect();
    let id_of = |index: usize| snapshot.entities[index].id;
    let order = ascending_order(snapshot.entities.len(), id_of)?;
    let extras = entities.iter().any(|entity| entity.undeclared > 0);
    let mut writer = BitWriter::with_capacity(16 + 16 * entities.len());
    writer.write_bool(extras);
    writer.write_ascending(order.iter().map(|&index| u64::from(id_of(index).0)));
    for &index in &order {
        entities[index].write_kind(&mut writer, &snapshot.entities[index].kind);
        entities[index].write(&mut writer, extras, &values)?;
    }
    let mut acks = snapshot.acks.clone();
    acks.sort_unstable_by_key(|ack| ack.player);
    acks.dedup_by_key(|ack| ack.player);
    writer.write_ascending(acks.iter().map(|ack| ack.player.0));
    for ack in &acks {
        writer.write_varu(u64::from(ack.seq));
    }
    let head = [
        Value::from(snapshot.epoch),
        Value::from(snapshot.tick),
        schema.to_wire(),
    ];
    Ok(message(&[], SNAPSHOT_KEY, &head, &writer.finish(), &[]))
}

/// Encodes `{"d": [packed, event...]}`, a version 2 delta message, from the tick's delta (its
/// `acks` are ignored: `roster` says the same relative to the base) and roster change.
/// `kind_of` names the kind of each updated (not created) entity.
pub fn encode_delta<'a>(
    schema: &'a Schema,
    delta: &'a Delta,
    roster: &Roster,
    kind_of: impl Fn(EntityId) -> Option<&'a str>,
) -> Result<Vec<u8>, EncodeError> {
    encode_delta_after(&[], schema, delta, roster, kind_of)
}

/// The MessagePack header of an array of one element: a batch frame of one message.
const BATCH_OF_ONE: [u8; 1] = [0x91];

/// [`encode_delta`]'s message as a whole batch frame (`[d]`), the frame a room sends every
/// tick, written in one buffer (no copy into a frame afterwards).
pub fn encode_delta_frame<'a>(
    schema: &'a Schema,
    delta: &'a Delta,
    roster: &Roster,
    kind_of: impl Fn(EntityId) -> Option<&'a str>,
) -> Result<Vec<u8>, EncodeError> {
    encode_delta_after(&BATCH_OF_ONE, schema, delta, roster, kind_of)
}

/// The delta message after `prefix`.
fn encode_delta_after<'a>(
    prefix: &[u8],
    schema: &'a Schema,
    delta: &'a Delta,
    roster: &Roster,
    kind_of: impl Fn(EntityId) -> Option<&'a str>,
) -> Result<Vec<u8>, EncodeError> {
    let mut values = DeclaredValues::with_capacity(4 * delta.upserts.len());
    let entities = delta
        .upserts
        .iter()
        .map(|update| {
            let kind = match &update.kind {
                Some(kind) => kind.as_str(),
                None => kind_of(update.id).ok_or(EncodeError::UnknownKind(update.id))?,
            };
            Ok(EntityFields::new(
                schema.kind(kind),
                &update.fields,
                &mut values,
            ))
        })
        .collect::<Result<Vec<_>, EncodeError>>()?;
    let id_of = |index: usize| delta.upserts[index].id;
    let order = ascending_order(delta.upserts.len(), id_of)?;
    let extras = entities.iter().any(|entity| entity.undeclared > 0);
    let mut writer = BitWriter::with_capacity(16 + 8 * entities.len());
    writer.write_varu(delta.tick);
    writer.write_varu(delta.tick.wrapping_sub(delta.base_tick));
    let removed = ascending(&delta.removed);
    writer.write_ascending(removed.iter().map(|id| u64::from(id.0)));
    let left = ascending(&roster.left);
    writer.write_ascending(left.iter().map(|player| player.0));
    let joined = ascending(&roster.joined);
    writer.write_ascending(joined.iter().map(|player| player.0));
    let acks_changed = roster.ack_steps.iter().any(|(_, step)| *step != 0);
    writer.write_bool(acks_changed);
    if acks_changed {
        for (_, step) in &roster.ack_steps {
            writer.write_bool(*step != 0);
            if *step != 0 {
                writer.write_varu(u64::from(*step));
            }
        }
    }
    writer.write_bool(extras);
    writer.write_ascending(order.iter().map(|&index| u64::from(id_of(index).0)));
    for &index in &order {
        let update = &delta.upserts[index];
        writer.write_bool(update.kind.is_some());
        if let Some(kind) = &update.kind {
            entities[index].write_kind(&mut writer, kind);
        }
        entities[index].write(&mut writer, extras, &values)?;
    }
    Ok(message(
        prefix,
        DELTA_KEY,
        &[],
        &writer.finish(),
        &delta.events,
    ))
}

/// A version 2 delta as received: its packed body and its events, applied with
/// [`super::CompactRoomState::apply_delta`].
#[derive(Clone, Debug, PartialEq)]
pub struct DeltaBody {
    /// The packed changes.
    pub packed: Vec<u8>,
    /// Events broadcast this tick, in order.
    pub events: Vec<Value>,
}

/// A version 2 snapshot as received.
#[derive(Clone, Debug, PartialEq)]
pub struct CompactSnapshot {
    /// The room's schema.
    pub schema: Schema,
    /// The state, with field names restored.
    pub snapshot: Snapshot,
}

/// One message of a version 2 frame.
#[derive(Clone, Debug, PartialEq)]
pub enum CompactMessage {
    /// `s`: the full state and the schema.
    Snapshot(CompactSnapshot),
    /// `d`: one tick's changes.
    Delta(DeltaBody),
    /// Any other message, as in version 1 (`welcome`, `event`, `error`, `pong`, `redirect`).
    Other(ServerMessage),
}

/// Decodes a version 2 server frame into its messages. Never panics, whatever the bytes.
pub fn decode_frame(bytes: &[u8]) -> Result<Vec<CompactMessage>, CompactError> {
    let mut rest = bytes;
    let frame = rmpv::decode::read_value_with_max_depth(&mut rest, MAX_DEPTH)
        .map_err(|_| CompactError::Malformed("a frame is not one MessagePack value"))?;
    if !rest.is_empty() {
        return Err(CompactError::Malformed("trailing bytes after the frame"));
    }
    let Value::Array(messages) = frame else {
        return Err(CompactError::Malformed("a frame is not an array"));
    };
    messages.into_iter().map(decode_message).collect()
}

fn decode_message(message: Value) -> Result<CompactMessage, CompactError> {
    let key = match &message {
        Value::Map(entries) if entries.len() == 1 => entries[0].0.as_str(),
        _ => None,
    };
    let body = || match &message {
        Value::Map(entries) => entries[0].1.as_array().map(Vec::as_slice),
        _ => None,
    };
    match key {
        Some(SNAPSHOT_KEY) => {
            decode_snapshot(body().unwrap_or_default()).map(CompactMessage::Snapshot)
        }
        Some(DELTA_KEY) => match body() {
            Some([Value::Binary(packed), events @ ..]) => Ok(CompactMessage::Delta(DeltaBody {
                packed: packed.clone(),
                events: events.to_vec(),
            })),
            _ => Err(CompactError::Malformed("a delta is not [packed, event...]")),
        },
        _ => {
            // Other messages are version 1's: decode them with version 1's own decoder.
            let mut bytes = Vec::new();
            // expect: writing into a Vec cannot fail.
            rmpv::encode::write_value(&mut bytes, &message).expect("writing into a Vec");
            crate::codec::decode_server(&bytes)
                .map(CompactMessage::Other)
                .map_err(|_| CompactError::Malformed("unknown message"))
        }
    }
}

fn decode_snapshot(body: &[Value]) -> Result<CompactSnapshot, CompactError> {
    let [epoch, tick, schema, Value::Binary(packed)] = body else {
        return Err(CompactError::Malformed(
            "a snapshot is not [epoch, tick, schema, packed]",
        ));
    };
    let (Some(epoch), Some(tick)) = (epoch.as_u64(), tick.as_u64()) else {
        return Err(CompactError::Malformed(
            "snapshot epoch and tick must be integers",
        ));
    };
    let schema = Schema::from_wire(schema)?;
    let mut reader = BitReader::new(packed);
    let extras = reader.read_bool()?;
    let ids = reader.read_ascending()?;
    let mut entities = Vec::with_capacity(ids.len());
    for id in ids {
        let id = EntityId(
            u32::try_from(id).map_err(|_| CompactError::Malformed("entity id above u32"))?,
        );
        let (kind, fields) = read_created(&mut reader, &schema, extras)?;
        entities.push(Entity { id, kind, fields });
    }
    let players = reader.read_ascending()?;
    let acks = players
        .into_iter()
        .map(|player| {
            Ok(InputAck {
                player: PlayerId(player),
                seq: reader.read_varu32()?,
            })
        })
        .collect::<Result<_, CompactError>>()?;
    reader.finish()?;
    Ok(CompactSnapshot {
        schema,
        snapshot: Snapshot {
            epoch,
            tick,
            entities,
            acks,
        },
    })
}

/// Reads a kind code and the fields of a new entity.
pub(crate) fn read_created(
    reader: &mut BitReader<'_>,
    schema: &Schema,
    extras: bool,
) -> Result<(String, BTreeMap<String, Value>), CompactError> {
    let code = reader.read_varu()?;
    let kind = match code.checked_sub(1) {
        None => None,
        Some(index) => Some(
            usize::try_from(index)
                .ok()
                .and_then(|index| schema.kind_at(index))
                .ok_or(CompactError::UnknownKind(code))?,
        ),
    };
    let name = match kind {
        Some(kind) => kind.name.clone(),
        None => String::from_utf8(reader.read_bytes()?)
            .map_err(|_| CompactError::Malformed("kind name is not UTF-8"))?,
    };
    let fields = read_fields(reader, kind, extras)?;
    Ok((name, fields))
}

/// Reads a field mask, the values it announces, and the undeclared fields when `extras`.
pub(crate) fn read_fields(
    reader: &mut BitReader<'_>,
    kind: Option<&KindSchema>,
    extras: bool,
) -> Result<BTreeMap<String, Value>, CompactError> {
    let (declared, extras) = read_declared(reader, kind, extras)?;
    let names = kind.map(|kind| kind.fields.as_slice()).unwrap_or_default();
    let mut fields: BTreeMap<String, Value> = declared
        .into_iter()
        .filter_map(|(index, value)| Some((names.get(index)?.name.clone(), value)))
        .collect();
    fields.extend(extras);
    Ok(fields)
}

/// An update's fields as sent: the declared ones by index (ascending), then the undeclared ones
/// by name, in the order sent.
pub(crate) type FieldsSent = (Vec<(usize, Value)>, Vec<(String, Value)>);

/// As [`read_fields`], with the declared fields by index.
pub(crate) fn read_declared(
    reader: &mut BitReader<'_>,
    kind: Option<&KindSchema>,
    extras: bool,
) -> Result<FieldsSent, CompactError> {
    let declared = kind.map(|kind| kind.fields.as_slice()).unwrap_or_default();
    let mask = reader.read_bits(declared.len() as u32)?;
    let mut values = Vec::new();
    for (index, field) in declared.iter().enumerate() {
        if mask >> (declared.len() - 1 - index) & 1 == 1 {
            values.push((index, field.ty.read(reader)?));
        }
    }
    let mut named = Vec::new();
    if extras {
        let count = reader.read_count(8)?;
        for _ in 0..count {
            let name = String::from_utf8(reader.read_bytes()?)
                .map_err(|_| CompactError::Malformed("field name is not UTF-8"))?;
            let value = FieldType::Any.read(reader)?;
            named.push((name, value));
        }
    }
    Ok((values, named))
}
