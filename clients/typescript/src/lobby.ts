// The lobby HTTP API (§2): JSON over fetch. Every non-2xx answer becomes a `LobbyError` with the
// stable `code`; a request that gets no answer becomes `network_error`.

import { LobbyError } from "./errors.js";

/** A reserved seat (§2 `POST /v1/matchmake`). Connect to `ws_url` within 15 s. */
export interface Seat {
  room_id: string;
  room_type: string;
  player_id: number;
  ws_url: string;
  token: string;
  expires_at_ms: number;
  node?: string;
  region?: string;
  placement?: string;
}

/** A room's listing entry (§2 `POST /v1/rooms`, `GET /v1/rooms`). */
export interface RoomListing {
  room_id: string;
  room_type: string;
  players: number;
  reserved: number;
  max_players: number;
  metadata: unknown;
  state: unknown;
  created_at_ms: number;
  epoch: number;
  node?: string;
  region?: string;
}

export interface RoomPage {
  rooms: RoomListing[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  next_cursor: string | null;
}

export interface MatchmakeRequest {
  room_type: string;
  name?: string;
  region?: string;
}

export interface CreateRoomRequest {
  room_type: string;
  room_id?: string;
  max_players?: number;
  metadata?: unknown;
  region?: string;
}

export interface ListRoomsQuery {
  room_type?: string;
  region?: string;
  limit?: number;
  cursor?: string;
}

/** The answer of the operator routes (`DELETE /v1/rooms/{id}`, messages). */
export interface OperatorAnswer {
  room_id: string;
  node?: string;
  region?: string;
}

export interface LobbyOptions {
  /**
   * The server's base URL, e.g. `http://127.0.0.1:7878`. Empty (the default) means the page's
   * own origin: requests go to `/v1/...`, as a page served by the Ludus node itself wants.
   */
  baseUrl?: string;
  /** A `jwt` lobby's player token, sent on seat and room requests (§2 Lobby modes). */
  playerToken?: string;
  /** An operator token, for the operator routes only (§2 Operator routes). */
  operatorToken?: string;
  /** `fetch` to use; defaults to the global one (browsers, Node 18+). */
  fetch?: typeof fetch;
}

export class LobbyClient {
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: LobbyOptions = {}) {
    this.baseUrl = (options.baseUrl ?? "").replace(/\/+$/, "");
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") throw new Error("no fetch: pass LobbyOptions.fetch");
    this.fetchImpl = fetchImpl.bind(globalThis);
  }

  /** Joins the fullest open room of `room_type`, or creates one; reserves a seat. */
  matchmake(request: MatchmakeRequest): Promise<Seat> {
    return this.request<Seat>("POST", "/v1/matchmake", request, "player");
  }

  /** Reserves a seat in a given room. */
  seat(roomId: string, request: { name?: string } = {}): Promise<Seat> {
    return this.request<Seat>("POST", `/v1/rooms/${encodeURIComponent(roomId)}/seats`, request, "player");
  }

  /** Creates a room (no seat is reserved). */
  createRoom(request: CreateRoomRequest): Promise<RoomListing> {
    return this.request<RoomListing>("POST", "/v1/rooms", request, "player");
  }

  /** One page of the room listing. */
  listRooms(query: ListRoomsQuery = {}): Promise<RoomPage> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) params.set(key, String(value));
    }
    const search = params.toString();
    return this.request<RoomPage>("GET", `/v1/rooms${search ? `?${search}` : ""}`, undefined, "none");
  }

  /** Operator: ends a room; its members are closed with 4009 `room_disposed`. */
  deleteRoom(roomId: string): Promise<OperatorAnswer> {
    return this.request<OperatorAnswer>("DELETE", `/v1/rooms/${encodeURIComponent(roomId)}`, undefined, "operator");
  }

  /** Operator: removes a player; its WebSocket is closed with 4016 `kicked`, its seat freed. */
  kickPlayer(roomId: string, playerId: number): Promise<OperatorAnswer & { player_id: number }> {
    return this.request<OperatorAnswer & { player_id: number }>(
      "DELETE",
      `/v1/rooms/${encodeURIComponent(roomId)}/players/${playerId}`,
      undefined,
      "operator",
    );
  }

  /**
   * Operator: drains the node this client talks to (§2 `POST /v1/admin/drain`): its rooms move
   * with their state to other nodes (members get 4017 and resume there); it takes no new rooms.
   */
  drainNode(): Promise<{ draining: boolean; rooms: number }> {
    return this.request<{ draining: boolean; rooms: number }>("POST", "/v1/admin/drain", undefined, "operator");
  }

  /** Operator: queues `{"type": "message", payload}` into a coming delta's events. */
  sendMessage(roomId: string, payload: unknown): Promise<OperatorAnswer> {
    return this.request<OperatorAnswer>(
      "POST",
      `/v1/rooms/${encodeURIComponent(roomId)}/messages`,
      { payload },
      "operator",
    );
  }

  private async request<T>(
    method: "GET" | "POST" | "DELETE",
    path: string,
    body: unknown,
    credential: "player" | "operator" | "none",
  ): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    const token =
      credential === "player" ? this.options.playerToken : credential === "operator" ? this.options.operatorToken : undefined;
    if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
    let answer: Response;
    try {
      answer = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      throw new LobbyError(0, "network_error", `${method} ${path}: ${String(error)}`);
    }
    let parsed: unknown;
    try {
      parsed = await answer.json();
    } catch {
      throw new LobbyError(answer.status, "invalid_answer", `${method} ${path}: answer ${answer.status} is not JSON`);
    }
    if (answer.ok) return parsed as T;
    const error = (parsed as { error?: { code?: unknown; message?: unknown; retry_after?: unknown } } | null)?.error;
    const code = typeof error?.code === "string" ? error.code : "invalid_answer";
    const message = typeof error?.message === "string" ? error.message : `${method} ${path}: status ${answer.status}`;
    const header = Number(answer.headers.get("retry-after"));
    const retryAfter =
      typeof error?.retry_after === "number" ? error.retry_after : Number.isFinite(header) && header > 0 ? header : null;
    throw new LobbyError(answer.status, code, message, retryAfter);
  }
}
