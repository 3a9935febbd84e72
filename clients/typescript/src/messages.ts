// The wire messages of PROTOCOL.md as TypeScript types, and every error and close code as a
// typed union. Nothing here does I/O: `codec.ts` turns bytes into these types and back.
//
// Integers are JavaScript numbers: the protocol keeps ids below 2^53 (PROTOCOL.md §2, §4), so
// they are exact. A `u64` that is not an id (a ping nonce, say) is exact up to 2^53 too.

/** `hello.protocol`: the server speaks 1 (§1–§18) and 2 (§19, compact state). */
export type ProtocolVersion = 1 | 2;

/** Any MessagePack value, as `@msgpack/msgpack` decodes it. */
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Value[]
  | { [key: string]: Value };

/** An entity's named fields (§6 `entity.fields`). */
export type Fields = { [field: string]: Value };

// ---------------------------------------------------------------------------------------------
// Client → server (§6)

/** `hello.resume` (§20.4): the last welcome's `resume_token` and the mirror's tick. */
export interface ResumeRequest {
  token: string;
  last_tick: number;
}

export interface Hello {
  protocol: ProtocolVersion;
  /** The seat token; `""` when resuming (the key must be present). */
  token: string;
  resume?: ResumeRequest;
}

export interface Input {
  /** Strictly increasing within a seat, from 1 (§8). */
  seq: number;
  /** Acknowledges like `ack` (0 before any tick). */
  ack_tick: number;
  payload: Value;
}

export type ClientMessage =
  | { hello: Hello }
  | { input: Input }
  | { ack: { tick: number } }
  | { resync: Record<string, never> }
  | { leave: Record<string, never> }
  | { ping: { nonce: number } };

// ---------------------------------------------------------------------------------------------
// Server → client (§6, §19)

export interface Welcome {
  session: number;
  player: number;
  room: string;
  room_type: string;
  epoch: number;
  tick_hz: number;
  /** Flow-control window in ticks (§9): ack at least every `window / 2` ticks. */
  window: number;
  /** Absent when the room's resume window is 0 (§20.1). */
  resume_token?: string;
  /** `true` only when this welcome answers a resume (missing means false, §4). */
  resumed: boolean;
  /**
   * Present only when the resume landed in a room restored on another node after its node
   * failed (§20.6): the ticks this client had seen that the restored room never reached. The
   * welcome is then followed by a snapshot of the new epoch.
   */
  ticks_lost?: number;
}

export interface Entity {
  id: number;
  kind: string;
  fields: Fields;
}

export interface EntityUpdate {
  id: number;
  /** Present: the entity was created, replace it whole; absent: set these fields. */
  kind?: string;
  fields: Fields;
}

export interface InputAck {
  player: number;
  seq: number;
}

export interface Snapshot {
  epoch: number;
  tick: number;
  entities: Entity[];
  acks: InputAck[];
}

export interface Delta {
  epoch: number;
  tick: number;
  base_tick: number;
  upserts: EntityUpdate[];
  removed: number[];
  /** Players who left since `base_tick`; missing means `[]` (§4). */
  left: number[];
  acks: InputAck[];
  events: Value[];
}

/** A field of a version 2 schema kind (§19.2). */
export type SchemaField =
  | { name: string; type: "bool" | "uint" | "int" | "str" | "f32" | "any" }
  | { name: string; type: "quantized"; min: number; step: number; steps: number; bits: number };

export interface SchemaKind {
  name: string;
  fields: SchemaField[];
}

/** Version 2 `s` (§19.5): the packed part is decoded by the mirror, with the schema. */
export interface CompactSnapshot {
  epoch: number;
  tick: number;
  schema: SchemaKind[];
  packed: Uint8Array;
}

/** Version 2 `d` (§19.6): decoding `packed` needs the state it applies to. */
export interface CompactDelta {
  packed: Uint8Array;
  events: Value[];
}

export interface ServerError {
  code: ErrorCode | UnknownCode;
  message: string;
}

export interface Pong {
  nonce: number;
  tick: number;
}

export interface Redirect {
  room: string;
  node: string;
  ws_url: string;
}

/** One message of a server batch, tagged by its wire name. */
export type ServerMessage =
  | { type: "welcome"; body: Welcome }
  | { type: "snapshot"; body: Snapshot }
  | { type: "delta"; body: Delta }
  | { type: "s"; body: CompactSnapshot }
  | { type: "d"; body: CompactDelta }
  | { type: "event"; body: { payload: Value } }
  | { type: "error"; body: ServerError }
  | { type: "pong"; body: Pong }
  | { type: "redirect"; body: Redirect }
  /** A message this client does not know (a later compatible addition): ignored by the session. */
  | { type: "unknown"; name: string; body: Value };

// ---------------------------------------------------------------------------------------------
// Codes (§12, §13). Codes are only ever added: an unknown one arrives as a plain string.

/** A code this client does not know yet; treat it by its kind (error, or its close code). */
export type UnknownCode = string & { readonly __unknownCode?: never };

/** The `code` of an `error` message on the WebSocket (§12). */
export const ERROR_CODES = [
  "malformed_message",
  "message_too_large",
  "unexpected_message",
  "protocol_version",
  "missing_token",
  "invalid_token",
  "token_expired",
  "token_wrong_room",
  "seat_not_reserved",
  "room_not_found",
  "room_full",
  "rate_limited",
  "invalid_input",
  "server_busy",
  "resume_invalid",
  "resume_wrong_room",
  "resume_epoch_changed",
  "resume_expired",
  "resume_used",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** The error codes that refuse a resume (§20.4), each followed by close 4014. */
export type ResumeRefusalCode = Extract<
  ErrorCode,
  "resume_invalid" | "resume_wrong_room" | "resume_epoch_changed" | "resume_expired" | "resume_used"
>;

export function isErrorCode(code: string): code is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(code);
}

export function isResumeRefusal(code: string): code is ResumeRefusalCode {
  return code.startsWith("resume_") && isErrorCode(code);
}

/** Close codes the server sends (§13), with their reason word. */
export const CLOSE_CODES = {
  1000: "normal",
  4000: "protocol_error",
  4001: "unauthorized",
  4002: "protocol_version",
  4003: "room_full",
  4004: "room_not_found",
  4005: "rate_limited",
  4006: "message_too_large",
  4007: "idle_timeout",
  4008: "too_slow",
  4009: "room_disposed",
  4010: "room_crashed",
  4011: "server_shutdown",
  4012: "redirect",
  4013: "room_moved",
  4014: "resume_refused",
  4015: "session_replaced",
  4016: "kicked",
  4017: "room_moving",
} as const;
export type CloseCode = keyof typeof CLOSE_CODES;
export type CloseReason = (typeof CLOSE_CODES)[CloseCode];

/**
 * Why a session ended, as the client sees it. Besides the server's reasons:
 * `connection_lost` (no close frame: a reset, end of stream, or the client's own watchdog),
 * `client_closed` (this client closed without `leave`), `resume_failed` (the resume window
 * passed while reconnecting), `server_close` (a close code this client does not know).
 */
export type SessionEndReason =
  | CloseReason
  | "connection_lost"
  | "client_closed"
  | "resume_failed"
  | "server_close";

export function closeReasonOf(code: number): CloseReason | undefined {
  return (CLOSE_CODES as Record<number, CloseReason>)[code];
}

/**
 * Whether a server close of a joined session keeps the seat for the resume window (§5, §20.2):
 * 4007, 4008 and 4017 (the room moved to another node, seat and all) do; the other codes of §13
 * do not. Codes outside §13's table that are not WebSocket-level (1001, 1005, 1006, 1011...) are
 * treated as a lost connection by the session.
 */
export function closeKeepsSeat(code: number): boolean {
  if (code === 4007 || code === 4008 || code === 4017) return true;
  if (code === 1000) return false;
  if (code >= 4000 && code <= 4999) return false; // §13: other 4xxx are generic server closes
  return true; // 1001, 1005, 1006, 1011, 1012...: the stream ended without a server decision
}

/** Lobby error codes (§2 Errors); codes are only ever added. */
export const LOBBY_ERROR_CODES = [
  "invalid_request",
  "unknown_room_type",
  "invalid_room_id",
  "unauthorized",
  "invalid_token",
  "forbidden",
  "origin_not_allowed",
  "room_not_found",
  "player_not_found",
  "not_found",
  "request_timeout",
  "room_exists",
  "room_full",
  "already_seated",
  "payload_too_large",
  "rate_limited",
  "too_many_reservations",
  "room_busy",
  "room_crashed",
  "at_capacity",
  "shutting_down",
  "too_many_streams",
  "too_many_connections",
  "unknown_region",
  "cluster_unavailable",
  "node_unavailable",
  "node_draining",
  "no_live_node",
  "not_clustered",
] as const;
export type LobbyErrorCode = (typeof LOBBY_ERROR_CODES)[number];

export function isLobbyErrorCode(code: string): code is LobbyErrorCode {
  return (LOBBY_ERROR_CODES as readonly string[]).includes(code);
}
