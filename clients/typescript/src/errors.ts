// Typed errors. Callers match `kind`/`code`/`reason`, never message text (STYLE.md, Errors).

import type {
  LobbyErrorCode,
  ServerError,
  SessionEndReason,
  UnknownCode,
} from "./messages.js";

/** Where bad input from the server was found. */
export type ProtocolErrorKind =
  /** Not one MessagePack value, or trailing bytes. */
  | "msgpack"
  /** Valid MessagePack, but not the shape PROTOCOL.md gives (a field missing or mistyped). */
  | "shape"
  /** A version 2 bit stream that §19.3–§19.6 call malformed. */
  | "packed";

/** The server sent something this client cannot read. The session survives it (resync). */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(
    readonly kind: ProtocolErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** A lobby answer that was not 2xx (§2 Errors), or a lobby that could not be reached. */
export class LobbyError extends Error {
  override readonly name = "LobbyError";
  constructor(
    /** HTTP status; 0 when the request never got an answer (network error). */
    readonly status: number,
    /** The stable code; `network_error` or `invalid_answer` when the server gave none. */
    readonly code: LobbyErrorCode | "network_error" | "invalid_answer" | UnknownCode,
    message: string,
    /** Seconds to wait before retrying (every 429 carries it). */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

/** How a session ended: the close code, its reason, and the `error` that came before it. */
export interface SessionEnd {
  reason: SessionEndReason;
  /** The WebSocket close code; null when none was received (a connection lost). */
  code: number | null;
  /** The `error` message the server sent before closing, if any (§12). */
  error: ServerError | null;
  /** The close frame's reason text as received. */
  text: string;
}

/** A session that could not be joined or resumed, or ended while waiting for an answer. */
export class SessionError extends Error {
  override readonly name = "SessionError";
  constructor(readonly end: SessionEnd) {
    super(
      end.error
        ? `session refused: ${end.error.code} (${end.reason}${end.code === null ? "" : ` ${end.code}`})`
        : `session ended: ${end.reason}${end.code === null ? "" : ` (${end.code})`}`,
    );
  }
}
