// The /play page: matchmakes into an `arena` room (or takes a seat in `?room=<id>`), mirrors it
// with @ludus/client, draws it on a canvas with other players interpolated between ticks, and
// sends the arrow keys / WASD as arena inputs (§15). A dropped connection resumes the same
// player (§20) through the client.
//
// Contract with the server route and the browser test (keep it exact):
//   window.ludusPlay  read-only, kept current: state, roomId, playerId, tick, rttMs,
//                     ackLatencyMs, bytesPerSecond, ownPosition, players, closeCode,
//                     closeReason, resumes
//   DOM               #arena canvas; #overlay with #tick #rtt #ack-latency #bytes #score #status
//   keyboard          keydown/keyup on window: ArrowUp/Down/Left/Right and WASD

import { LobbyClient, LobbyError, RoomSession, SessionError, type Entity, type Seat } from "@ludus/client";

type PlayState = "connecting" | "playing" | "resuming" | "closed";

const WORLD = 1000;
const PING_EVERY_MS = 1000;
const BANDWIDTH_WINDOW_MS = 1000;

// --- page state, exposed read-only as window.ludusPlay ------------------------------------------

const view = {
  state: "connecting" as PlayState,
  roomId: null as string | null,
  playerId: null as string | null,
  tick: 0,
  rttMs: null as number | null,
  ackLatencyMs: null as number | null,
  bytesPerSecond: 0,
  ownPosition: null as { x: number; y: number } | null,
  players: 0,
  closeCode: null as number | null,
  closeReason: null as string | null,
  resumes: 0,
};

const ludusPlay = {};
for (const key of Object.keys(view) as (keyof typeof view)[]) {
  Object.defineProperty(ludusPlay, key, {
    enumerable: true,
    get: () => {
      const value = view[key];
      // A copy, so that the page's own object cannot be changed from outside.
      return value !== null && typeof value === "object" ? { ...value } : value;
    },
  });
}
Object.freeze(ludusPlay);
(window as unknown as { ludusPlay: unknown }).ludusPlay = ludusPlay;

// --- DOM -----------------------------------------------------------------------------------------

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`#${id} is missing from the page`);
  return found as T;
}

const canvas = element<HTMLCanvasElement>("arena");
const context = canvas.getContext("2d");
const text = {
  tick: element("tick"),
  rtt: element("rtt"),
  ackLatency: element("ack-latency"),
  bytes: element("bytes"),
  score: element("score"),
  status: element("status"),
};

function setState(state: PlayState): void {
  view.state = state;
  text.status.textContent = state === "closed" ? `closed: ${view.closeReason ?? "unknown"}` : state;
}

function closeWith(code: number | null, reason: string): void {
  view.closeCode = code;
  view.closeReason = reason;
  setState("closed");
}

// --- keyboard --------------------------------------------------------------------------------------

const DIRECTIONS: Record<string, [number, number]> = {
  ArrowUp: [0, -1],
  ArrowDown: [0, 1],
  ArrowLeft: [-1, 0],
  ArrowRight: [1, 0],
  KeyW: [0, -1],
  KeyS: [0, 1],
  KeyA: [-1, 0],
  KeyD: [1, 0],
};
const LETTERS: Record<string, string> = { w: "KeyW", s: "KeyS", a: "KeyA", d: "KeyD" };
const held = new Set<string>();

function keyName(event: KeyboardEvent): string | null {
  if (event.key in DIRECTIONS) return event.key;
  if (event.code in DIRECTIONS) return event.code;
  return LETTERS[event.key.toLowerCase()] ?? null;
}

/** The direction of the held keys, length at most 1 (the server clamps it anyway, §15). */
function direction(): { dx: number; dy: number } {
  let dx = 0;
  let dy = 0;
  for (const key of held) {
    const [x, y] = DIRECTIONS[key] as [number, number];
    dx += x;
    dy += y;
  }
  const length = Math.hypot(dx, dy);
  return length > 1 ? { dx: dx / length, dy: dy / length } : { dx, dy };
}

let session: RoomSession | null = null;
let sentDirection = { dx: 0, dy: 0 };

function sendDirection(): void {
  const next = direction();
  if (next.dx === sentDirection.dx && next.dy === sentDirection.dy) return;
  sentDirection = next;
  session?.sendInput(next);
}

window.addEventListener("keydown", (event) => {
  const key = keyName(event);
  if (key === null) return;
  event.preventDefault();
  held.add(key);
  sendDirection();
});
window.addEventListener("keyup", (event) => {
  const key = keyName(event);
  if (key === null) return;
  event.preventDefault();
  held.delete(key);
  sendDirection();
});
window.addEventListener("blur", () => {
  held.clear();
  sendDirection();
});

// --- interpolation: draw between the last two ticks ------------------------------------------------

interface Frame {
  at: number;
  positions: Map<number, { x: number; y: number }>;
}
let previous: Frame | null = null;
let current: Frame | null = null;
let tickMs = 50;

function capture(entities: Map<number, Entity>): Frame {
  const positions = new Map<number, { x: number; y: number }>();
  for (const entity of entities.values()) {
    const x = entity.fields["x"];
    const y = entity.fields["y"];
    if (typeof x === "number" && typeof y === "number") positions.set(entity.id, { x, y });
  }
  return { at: performance.now(), positions };
}

function position(id: number, alpha: number): { x: number; y: number } | null {
  const to = current?.positions.get(id);
  if (to === undefined) return null;
  const from = previous?.positions.get(id) ?? to;
  return { x: from.x + (to.x - from.x) * alpha, y: from.y + (to.y - from.y) * alpha };
}

function draw(): void {
  requestAnimationFrame(draw);
  if (context === null) return;
  const scale = canvas.width / WORLD;
  context.clearRect(0, 0, canvas.width, canvas.height);
  const mirror = session?.mirror;
  if (mirror === undefined || current === null) return;
  const alpha = Math.min(1, Math.max(0, (performance.now() - current.at) / tickMs));
  for (const entity of mirror.entities.values()) {
    const at = position(entity.id, alpha);
    if (at === null) continue;
    const x = at.x * scale;
    const y = at.y * scale;
    if (entity.kind === "coin") {
      context.fillStyle = "#ffd75e";
      context.beginPath();
      context.arc(x, y, 20 * scale, 0, Math.PI * 2);
      context.fill();
    } else if (entity.kind === "player") {
      const own = entity.fields["player"] === session?.playerId;
      context.fillStyle = own ? "#5ec8ff" : "#ff7a7a";
      context.beginPath();
      context.arc(x, y, 14 * scale + 4, 0, Math.PI * 2);
      context.fill();
      context.fillStyle = "#e8e8e8";
      context.font = "12px system-ui, sans-serif";
      context.textAlign = "center";
      context.fillText(`${String(entity.fields["name"] ?? "")} ${String(entity.fields["score"] ?? 0)}`, x, y - 14 * scale - 8);
    }
  }
}

// --- overlay ------------------------------------------------------------------------------------------

const received: { at: number; bytes: number }[] = [];

function refreshView(): void {
  const active = session;
  if (active === null) return;
  const mirror = active.mirror;
  view.tick = mirror.tick;
  view.rttMs = active.rttMs;
  view.ackLatencyMs = active.ackLatencyMs;
  view.resumes = active.resumes;
  let players = 0;
  let own: Entity | null = null;
  for (const entity of mirror.entities.values()) {
    if (entity.kind !== "player") continue;
    players += 1;
    if (entity.fields["player"] === active.playerId) own = entity;
  }
  view.players = players;
  const x = own?.fields["x"];
  const y = own?.fields["y"];
  view.ownPosition = typeof x === "number" && typeof y === "number" ? { x, y } : null;
  text.tick.textContent = String(view.tick);
  text.rtt.textContent = view.rttMs === null ? "–" : `${view.rttMs.toFixed(0)} ms`;
  text.ackLatency.textContent = view.ackLatencyMs === null ? "–" : `${view.ackLatencyMs.toFixed(0)} ms`;
  text.score.textContent = String(own?.fields["score"] ?? 0);
}

function refreshBandwidth(): void {
  const horizon = performance.now() - BANDWIDTH_WINDOW_MS;
  while (received.length > 0 && (received[0] as { at: number }).at < horizon) received.shift();
  view.bytesPerSecond = Math.round((received.reduce((sum, frame) => sum + frame.bytes, 0) * 1000) / BANDWIDTH_WINDOW_MS);
  text.bytes.textContent = String(view.bytesPerSecond);
}

// --- start ------------------------------------------------------------------------------------------

async function start(): Promise<void> {
  const query = new URLSearchParams(location.search);
  const roomId = query.get("room");
  const name = query.get("name") ?? undefined;
  const lobby = new LobbyClient();
  setState("connecting");
  let seat: Seat;
  try {
    seat = roomId ? await lobby.seat(roomId, name ? { name } : {}) : await lobby.matchmake({ room_type: "arena", ...(name ? { name } : {}) });
  } catch (error) {
    closeWith(null, error instanceof LobbyError ? error.code : "network_error");
    return;
  }
  view.roomId = seat.room_id;
  view.playerId = String(seat.player_id);
  try {
    session = await RoomSession.join(seat, {
      protocol: 2,
      // The page goes "resuming" after 2 s without a frame (a room sends 20 a second).
      staleAfterMs: 2000,
      resume: { giveUpAfterMs: 30_000, baseDelayMs: 250, maxDelayMs: 2000 },
    });
  } catch (error) {
    if (error instanceof SessionError) closeWith(error.end.code, error.end.reason);
    else closeWith(null, "connection_lost");
    return;
  }
  const active = session;
  tickMs = 1000 / (active.welcome?.tick_hz ?? 20);
  view.playerId = String(active.playerId);
  current = capture(active.mirror.entities);
  active.on("frame", ({ bytes }) => received.push({ at: performance.now(), bytes }));
  active.on("tick", () => {
    previous = current;
    current = capture(active.mirror.entities);
    refreshView();
  });
  active.on("state", (state) => {
    if (state === "open") {
      setState("playing");
      // A direction chosen while offline goes out now (the client re-sends the latest input).
    } else if (state === "resuming") {
      setState("resuming");
    }
  });
  active.on("resumed", () => refreshView());
  active.on("closed", (end) => {
    refreshView();
    closeWith(end.code, end.reason);
  });
  // The browser knows before TCP does: going offline gives the socket up (the session resumes
  // once a new one gets through); coming back online retries at once instead of backing off.
  window.addEventListener("offline", () => active.reconnect());
  window.addEventListener("online", () => active.reconnect());
  setState("playing");
  refreshView();
  // If keys were held while joining, say so now.
  sentDirection = { dx: 0, dy: 0 };
  sendDirection();
  setInterval(() => {
    if (active.state === "open") active.ping().catch(() => undefined);
  }, PING_EVERY_MS);
  setInterval(refreshBandwidth, 250);
}

requestAnimationFrame(draw);
void start();
