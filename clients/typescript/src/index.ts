// @ludus/client: a Ludus game client for browsers and Node 20+.
//
//   LobbyClient  — the lobby HTTP API (§2): matchmake, seat, create, list; operator routes
//   RoomSession  — one player's WebSocket session: hello, redirects, mirror, acks, inputs,
//                  pings, resume (§3–§10, §20)
//   Mirror       — the room state, from snapshots and deltas of protocol 1 and 2 (§7, §19)
//   codec        — the MessagePack envelope (§4), for those who drive a socket themselves

export { LobbyClient } from "./lobby.js";
export type { Seat, RoomListing, RoomPage, MatchmakeRequest, CreateRoomRequest, ListRoomsQuery, LobbyOptions, OperatorAnswer } from "./lobby.js";
export { RoomSession } from "./session.js";
export type { SessionOptions, ResumeOptions, SessionState, SessionEvents, WebSocketLike, WebSocketConstructor } from "./session.js";
export { Mirror } from "./mirror.js";
export type { ApplyOutcome, NotApplied, MirrorContent } from "./mirror.js";
export { decodeServerFrame, encodeClientMessage } from "./codec.js";
export { BitReader } from "./bits.js";
export { backoffBound, backoffDelay } from "./backoff.js";
export type { Backoff } from "./backoff.js";
export { LobbyError, ProtocolError, SessionError } from "./errors.js";
export type { ProtocolErrorKind, SessionEnd } from "./errors.js";
export {
  CLOSE_CODES,
  ERROR_CODES,
  LOBBY_ERROR_CODES,
  closeKeepsSeat,
  closeReasonOf,
  isErrorCode,
  isLobbyErrorCode,
  isResumeRefusal,
} from "./messages.js";
export type * from "./messages.js";
