// MessagePack envelope (§4): client messages out, server batches in. Decoding validates every
// field it hands on, so a malformed frame becomes a `ProtocolError`, never a TypeError later.

import { decode, encode } from "@msgpack/msgpack";
import { ProtocolError } from "./errors.js";
import type {
  ClientMessage,
  CompactDelta,
  CompactSnapshot,
  Delta,
  Entity,
  EntityUpdate,
  Fields,
  InputAck,
  SchemaField,
  SchemaKind,
  ServerMessage,
  Snapshot,
  Value,
  Welcome,
} from "./messages.js";

/** Encodes one client message as one MessagePack value (a one-entry map, structs as maps). */
export function encodeClientMessage(message: ClientMessage): Uint8Array {
  return encode(message);
}

/** Decodes one server frame: an array of one-entry maps, processed in order (§4). */
export function decodeServerFrame(frame: Uint8Array): ServerMessage[] {
  let batch: unknown;
  try {
    batch = decode(frame);
  } catch (error) {
    throw new ProtocolError("msgpack", `frame is not one MessagePack value: ${String(error)}`);
  }
  if (!Array.isArray(batch)) throw shape("a server frame must be an array of messages");
  return batch.map(decodeServerMessage);
}

function decodeServerMessage(message: unknown): ServerMessage {
  if (!isMap(message)) throw shape("a message must be a one-entry map");
  const keys = Object.keys(message);
  if (keys.length !== 1) throw shape(`a message must have one entry, got ${keys.length}`);
  const name = keys[0] as string;
  const body = message[name];
  switch (name) {
    case "welcome":
      return { type: "welcome", body: welcome(map(body, "welcome")) };
    case "snapshot":
      return { type: "snapshot", body: snapshot(map(body, "snapshot")) };
    case "delta":
      return { type: "delta", body: delta(map(body, "delta")) };
    case "s":
      return { type: "s", body: compactSnapshot(body) };
    case "d":
      return { type: "d", body: compactDelta(body) };
    case "event": {
      const event = map(body, "event");
      return { type: "event", body: { payload: (event["payload"] ?? null) as Value } };
    }
    case "error": {
      const error = map(body, "error");
      return {
        type: "error",
        body: { code: str(error, "code", "error"), message: optStr(error, "message") ?? "" },
      };
    }
    case "pong": {
      const pong = map(body, "pong");
      return { type: "pong", body: { nonce: uint(pong, "nonce", "pong"), tick: uint(pong, "tick", "pong") } };
    }
    case "redirect": {
      const redirect = map(body, "redirect");
      return {
        type: "redirect",
        body: {
          room: str(redirect, "room", "redirect"),
          node: str(redirect, "node", "redirect"),
          ws_url: str(redirect, "ws_url", "redirect"),
        },
      };
    }
    default:
      return { type: "unknown", name, body: (body ?? null) as Value };
  }
}

function welcome(body: Record<string, unknown>): Welcome {
  const at = "welcome";
  const token = optStr(body, "resume_token");
  const ticksLost = body["ticks_lost"] === undefined || body["ticks_lost"] === null
    ? undefined
    : uint(body, "ticks_lost", at);
  const resumed = body["resumed"];
  if (resumed !== undefined && resumed !== null && typeof resumed !== "boolean") {
    throw shape("welcome.resumed must be a boolean");
  }
  return {
    session: uint(body, "session", at),
    player: uint(body, "player", at),
    room: str(body, "room", at),
    room_type: str(body, "room_type", at),
    epoch: uint(body, "epoch", at),
    tick_hz: uint(body, "tick_hz", at),
    window: uint(body, "window", at),
    ...(token === undefined ? {} : { resume_token: token }),
    resumed: resumed === true,
    ...(ticksLost === undefined ? {} : { ticks_lost: ticksLost }),
  };
}

function snapshot(body: Record<string, unknown>): Snapshot {
  const at = "snapshot";
  return {
    epoch: uint(body, "epoch", at),
    tick: uint(body, "tick", at),
    entities: array(body["entities"], "snapshot.entities").map(entity),
    acks: array(body["acks"], "snapshot.acks").map(inputAck),
  };
}

function delta(body: Record<string, unknown>): Delta {
  const at = "delta";
  const left = body["left"];
  return {
    epoch: uint(body, "epoch", at),
    tick: uint(body, "tick", at),
    base_tick: uint(body, "base_tick", at),
    upserts: array(body["upserts"], "delta.upserts").map(entityUpdate),
    removed: array(body["removed"], "delta.removed").map((id) => uintValue(id, "delta.removed")),
    left: left === undefined || left === null ? [] : array(left, "delta.left").map((id) => uintValue(id, "delta.left")),
    acks: array(body["acks"], "delta.acks").map(inputAck),
    events: array(body["events"], "delta.events") as Value[],
  };
}

function entity(value: unknown): Entity {
  const body = map(value, "entity");
  return { id: uint(body, "id", "entity"), kind: str(body, "kind", "entity"), fields: fields(body["fields"]) };
}

function entityUpdate(value: unknown): EntityUpdate {
  const body = map(value, "entity_update");
  const kind = optStr(body, "kind");
  return {
    id: uint(body, "id", "entity_update"),
    ...(kind === undefined ? {} : { kind }),
    fields: fields(body["fields"]),
  };
}

function fields(value: unknown): Fields {
  return map(value, "entity fields") as Fields;
}

function inputAck(value: unknown): InputAck {
  const body = map(value, "input_ack");
  return { player: uint(body, "player", "input_ack"), seq: uint(body, "seq", "input_ack") };
}

function compactSnapshot(value: unknown): CompactSnapshot {
  const parts = array(value, "s");
  if (parts.length !== 4) throw shape(`s must have 4 elements, got ${parts.length}`);
  const packed = parts[3];
  if (!(packed instanceof Uint8Array)) throw shape("s[3] must be a bin");
  return {
    epoch: uintValue(parts[0], "s.epoch"),
    tick: uintValue(parts[1], "s.tick"),
    schema: array(parts[2], "s.schema").map(schemaKind),
    packed,
  };
}

function schemaKind(value: unknown): SchemaKind {
  const kind = array(value, "schema kind");
  if (kind.length < 2) throw shape("a schema kind is [name, fields]");
  return { name: strValue(kind[0], "schema kind name"), fields: array(kind[1], "schema fields").map(schemaField) };
}

const PLAIN_FIELD_TYPES = ["bool", "uint", "int", "str", "f32", "any"] as const;

function schemaField(value: unknown): SchemaField {
  const field = array(value, "schema field");
  const name = strValue(field[0], "schema field name");
  const type = strValue(field[1], "schema field type");
  if (type === "quantized") {
    const min = numberValue(field[2], "quantized min");
    const step = numberValue(field[3], "quantized step");
    const steps = uintValue(field[4], "quantized steps");
    return { name, type, min, step, steps, bits: bitLength(steps) };
  }
  if ((PLAIN_FIELD_TYPES as readonly string[]).includes(type)) {
    return { name, type: type as (typeof PLAIN_FIELD_TYPES)[number] };
  }
  // §19.2 lists the types; a type added later could not be skipped in the bit stream.
  throw new ProtocolError("packed", `schema field \`${name}\` has unknown type \`${type}\``);
}

/** `bits(n)`: the number of bits of n, bits(0) = 0 (§19.2). */
export function bitLength(n: number): number {
  let bits = 0;
  let rest = n;
  while (rest >= 1) {
    rest = Math.floor(rest / 2);
    bits += 1;
  }
  return bits;
}

function compactDelta(value: unknown): CompactDelta {
  const parts = array(value, "d");
  const packed = parts[0];
  if (!(packed instanceof Uint8Array)) throw shape("d[0] must be a bin");
  return { packed, events: parts.slice(1) as Value[] };
}

// --- small validators ------------------------------------------------------------------------

function shape(message: string): ProtocolError {
  return new ProtocolError("shape", message);
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function map(value: unknown, what: string): Record<string, unknown> {
  if (!isMap(value)) throw shape(`${what} must be a map`);
  return value;
}

function array(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw shape(`${what} must be an array`);
  return value;
}

function uintValue(value: unknown, what: string): number {
  if (typeof value === "bigint" && value >= 0n) return Number(value);
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw shape(`${what} must be an unsigned integer`);
  }
  return value;
}

function uint(body: Record<string, unknown>, key: string, at: string): number {
  return uintValue(body[key], `${at}.${key}`);
}

function numberValue(value: unknown, what: string): number {
  if (typeof value !== "number") throw shape(`${what} must be a number`);
  return value;
}

function strValue(value: unknown, what: string): string {
  if (typeof value !== "string") throw shape(`${what} must be a string`);
  return value;
}

function str(body: Record<string, unknown>, key: string, at: string): string {
  return strValue(body[key], `${at}.${key}`);
}

function optStr(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  return strValue(value, key);
}
