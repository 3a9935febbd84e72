// The client's copy of a room (§7): epoch, tick, entities by id, acks by player. It applies
// version 1 snapshots and deltas (§7) and version 2 `s` and `d` (§19), and says when it cannot:
// the caller then sends `resync`. Plain data, no I/O: it can be tested without a socket.
//
// Ordering rule for both versions: check everything first, change nothing until the whole
// message has been read and found applicable.

import { decode as decodeMsgpack } from "@msgpack/msgpack";
import { BitReader, malformed } from "./bits.js";
import { ProtocolError } from "./errors.js";
import type {
  CompactDelta,
  CompactSnapshot,
  Delta,
  Entity,
  Fields,
  SchemaField,
  SchemaKind,
  Snapshot,
  Value,
} from "./messages.js";

/** Why a delta was not applied; every one of them means: send `resync`. */
export type NotApplied =
  | { reason: "no_state" }
  | { reason: "epoch"; expected: number; got: number }
  | { reason: "gap"; tick: number; base: number }
  | { reason: "unknown_entity"; id: number }
  | { reason: "malformed"; error: ProtocolError };

export type ApplyOutcome = { applied: true; tick: number; events: Value[] } | ({ applied: false } & NotApplied);

/** A mirror's content in a canonical order, for comparing two mirrors or a mirror and a snapshot. */
export interface MirrorContent {
  epoch: number;
  tick: number;
  entities: Entity[];
  acks: { player: number; seq: number }[];
}

const U32 = 2n ** 32n;

export class Mirror {
  /** False until the first snapshot: deltas cannot apply before it. */
  hasState = false;
  epoch = 0;
  tick = 0;
  readonly entities = new Map<number, Entity>();
  /** Each member's highest applied input seq (§8). */
  readonly acks = new Map<number, number>();
  /** The version 2 schema of the last `s` (empty in version 1). */
  schema: SchemaKind[] = [];

  // --- version 1 -------------------------------------------------------------------------------

  /** Replaces everything (§7 "On a snapshot"). */
  loadSnapshot(snapshot: Snapshot): void {
    this.entities.clear();
    for (const entity of snapshot.entities) {
      this.entities.set(entity.id, { id: entity.id, kind: entity.kind, fields: { ...entity.fields } });
    }
    this.acks.clear();
    for (const ack of snapshot.acks) this.acks.set(ack.player, ack.seq);
    this.epoch = snapshot.epoch;
    this.tick = snapshot.tick;
    this.schema = [];
    this.hasState = true;
  }

  /** §7 "On a delta", steps 1 to 9. */
  applyDelta(delta: Delta): ApplyOutcome {
    if (!this.hasState) return { applied: false, reason: "no_state" };
    if (delta.epoch !== this.epoch) return { applied: false, reason: "epoch", expected: this.epoch, got: delta.epoch };
    if (delta.base_tick !== this.tick) return { applied: false, reason: "gap", tick: this.tick, base: delta.base_tick };
    const removed = new Set(delta.removed);
    for (const update of delta.upserts) {
      if (update.kind === undefined && (!this.entities.has(update.id) || removed.has(update.id))) {
        return { applied: false, reason: "unknown_entity", id: update.id };
      }
    }
    for (const id of removed) this.entities.delete(id);
    for (const update of delta.upserts) {
      if (update.kind !== undefined) {
        this.entities.set(update.id, { id: update.id, kind: update.kind, fields: { ...update.fields } });
      } else {
        // Validated above: the entity exists.
        Object.assign((this.entities.get(update.id) as Entity).fields, update.fields);
      }
    }
    for (const player of delta.left) this.acks.delete(player);
    for (const ack of delta.acks) this.acks.set(ack.player, ack.seq);
    this.tick = delta.tick;
    return { applied: true, tick: this.tick, events: delta.events };
  }

  // --- version 2 -------------------------------------------------------------------------------

  /** Replaces everything with a version 2 snapshot (§19.5). Throws `ProtocolError` if malformed. */
  loadCompactSnapshot(snapshot: CompactSnapshot): void {
    const reader = new BitReader(snapshot.packed);
    const extras = reader.bit();
    const ids = reader.ascending();
    const entities: Entity[] = [];
    for (const id of ids) {
      const { kind, fields } = readNewEntity(reader, snapshot.schema, extras);
      entities.push({ id, kind, fields });
    }
    const players = reader.ascending();
    const acks = players.map((player) => ({ player, seq: reader.varu() }));
    reader.finish();
    this.loadSnapshot({ epoch: snapshot.epoch, tick: snapshot.tick, entities, acks });
    this.schema = snapshot.schema;
  }

  /** Applies a version 2 delta (§19.6, steps 1 to 4). A malformed one is reported, not thrown. */
  applyCompactDelta(delta: CompactDelta): ApplyOutcome {
    if (!this.hasState) return { applied: false, reason: "no_state" };
    try {
      return this.applyCompactDeltaOrThrow(delta);
    } catch (error) {
      if (error instanceof ProtocolError) return { applied: false, reason: "malformed", error };
      throw error;
    }
  }

  private applyCompactDeltaOrThrow(delta: CompactDelta): ApplyOutcome {
    const reader = new BitReader(delta.packed);
    // 1. tick and gap.
    const tick = reader.varu();
    const gap = reader.varu();
    const base = tick - gap;
    if (base !== this.tick) return { applied: false, reason: "gap", tick: this.tick, base };
    // 2. Read everything, check before changing anything.
    const removed = reader.ascending();
    const left = reader.ascending();
    const joined = reader.ascending();
    // 3. The ack table after the tick: minus left, plus joined at 0, then steps in player order.
    const acks = new Map(this.acks);
    for (const player of left) acks.delete(player);
    for (const player of joined) acks.set(player, 0);
    if (reader.bit()) {
      const players = [...acks.keys()].sort((a, b) => a - b);
      for (const player of players) {
        if (!reader.bit()) continue;
        const step = reader.varuBig();
        const seq = Number((BigInt(acks.get(player) as number) + step) % U32);
        acks.set(player, seq);
      }
    }
    const extras = reader.bit();
    const ids = reader.ascending();
    const removedSet = new Set(removed);
    const upserts: { id: number; isNew: boolean; kind: string; fields: Fields }[] = [];
    for (const id of ids) {
      if (reader.bit()) {
        const { kind, fields } = readNewEntity(reader, this.schema, extras);
        upserts.push({ id, isNew: true, kind, fields });
      } else {
        const existing = this.entities.get(id);
        if (existing === undefined || removedSet.has(id)) {
          throw malformed(`update of entity ${id}, which the mirror does not hold`);
        }
        const kind = this.schema.find((candidate) => candidate.name === existing.kind);
        const fields = readFields(reader, kind?.fields ?? [], extras);
        upserts.push({ id, isNew: false, kind: existing.kind, fields });
      }
    }
    reader.finish();
    // 4. Apply.
    for (const id of removed) this.entities.delete(id);
    for (const upsert of upserts) {
      if (upsert.isNew) {
        this.entities.set(upsert.id, { id: upsert.id, kind: upsert.kind, fields: upsert.fields });
      } else {
        Object.assign((this.entities.get(upsert.id) as Entity).fields, upsert.fields);
      }
    }
    this.acks.clear();
    for (const [player, seq] of acks) this.acks.set(player, seq);
    this.tick = tick;
    return { applied: true, tick, events: delta.events };
  }

  // --- reading -----------------------------------------------------------------------------------

  /** The content in canonical order (entities by id, acks by player), fields as plain objects. */
  content(): MirrorContent {
    return {
      epoch: this.epoch,
      tick: this.tick,
      entities: [...this.entities.values()]
        .sort((a, b) => a.id - b.id)
        .map((entity) => ({ id: entity.id, kind: entity.kind, fields: sortKeys(entity.fields) })),
      acks: [...this.acks.entries()].sort((a, b) => a[0] - b[0]).map(([player, seq]) => ({ player, seq })),
    };
  }
}

function sortKeys(fields: Fields): Fields {
  const out: Fields = {};
  for (const key of Object.keys(fields).sort()) out[key] = fields[key] as Value;
  return out;
}

/** A new entity (§19.4): kind code, then its fields. */
function readNewEntity(reader: BitReader, schema: SchemaKind[], extras: boolean): { kind: string; fields: Fields } {
  const code = reader.varu();
  if (code === 0) {
    const kind = reader.string();
    return { kind, fields: readFields(reader, [], extras) };
  }
  const kind = schema[code - 1];
  if (kind === undefined) throw malformed(`kind code ${code} is not in the schema`);
  return { kind: kind.name, fields: readFields(reader, kind.fields, extras) };
}

/** Mask, values, then extras when the message's extras flag is set (§19.4). */
function readFields(reader: BitReader, declared: SchemaField[], extras: boolean): Fields {
  const present = declared.map(() => reader.bit());
  const fields: Fields = {};
  declared.forEach((field, index) => {
    if (present[index]) fields[field.name] = readValue(reader, field);
  });
  if (extras) {
    const count = reader.varu();
    for (let index = 0; index < count; index += 1) {
      const name = reader.string();
      fields[name] = readAny(reader);
    }
  }
  return fields;
}

const f32View = new DataView(new ArrayBuffer(4));

function readValue(reader: BitReader, field: SchemaField): Value {
  switch (field.type) {
    case "bool":
      return reader.bit();
    case "uint":
      return reader.varu();
    case "int": {
      const zigzag = reader.varuBig();
      const value = zigzag % 2n === 0n ? zigzag / 2n : -(zigzag + 1n) / 2n;
      return Number(value);
    }
    case "str":
      return reader.string();
    case "f32":
      f32View.setUint32(0, reader.bits(32));
      return f32View.getFloat32(0);
    case "quantized": {
      const index = reader.bits(field.bits);
      if (index > field.steps) throw malformed(`grid index ${index} above ${field.steps} for \`${field.name}\``);
      return Math.fround(field.min + index * field.step);
    }
    case "any":
      return readAny(reader);
  }
}

function readAny(reader: BitReader): Value {
  const bytes = reader.byteString();
  try {
    return decodeMsgpack(bytes) as Value;
  } catch (error) {
    throw malformed(`an \`any\` value is not one MessagePack value: ${String(error)}`);
  }
}
