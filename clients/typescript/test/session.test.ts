// The client against a real `ludus-server` (see harness.ts): real sockets on loopback, no mock.
// Every wait is bounded; conditions are waited for, never slept on.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { WebSocketServer } from "ws";
import {
  LobbyClient,
  LobbyError,
  RoomSession,
  SessionError,
  type MirrorContent,
  type ProtocolVersion,
  type Seat,
} from "../src/index.js";
import { NodeWebSocket, nextEvent, recordingWebSocket, startServer, waitFor, type TestServer } from "./harness.js";

let server: TestServer;
const sessions: RoomSession[] = [];

before(async () => {
  // Tests create a room each: lift the per-address creation rate (60 a minute, 6 at once).
  server = await startServer("[lobby]\nrooms_per_minute_per_ip = 6000\nseats_per_minute_per_ip = 6000");
});

after(async () => {
  for (const session of sessions) session.close();
  await server?.stop();
});

async function join(seat: Seat, protocol: ProtocolVersion = 2, options: Parameters<typeof RoomSession.join>[1] = {}): Promise<RoomSession> {
  const session = await RoomSession.join(seat, { protocol, WebSocket: NodeWebSocket, ...options });
  sessions.push(session);
  return session;
}

/** A seat in a new arena room of its own, so that tests do not share rooms. */
async function freshSeat(name?: string): Promise<Seat> {
  const room = await server.lobby.createRoom({ room_type: "arena" });
  return server.lobby.seat(room.room_id, name ? { name } : {});
}

function ownPlayer(session: RoomSession): { id: number; x: number; y: number } | null {
  for (const entity of session.mirror.entities.values()) {
    if (entity.kind === "player" && entity.fields["player"] === session.playerId) {
      return { id: entity.id, x: entity.fields["x"] as number, y: entity.fields["y"] as number };
    }
  }
  return null;
}

/** Records the mirror's content at every tick it reaches by a delta. */
function recordDeltaTicks(session: RoomSession): Map<number, MirrorContent> {
  const byTick = new Map<number, MirrorContent>();
  session.on("tick", ({ tick, snapshot }) => {
    if (!snapshot) byTick.set(tick, session.mirror.content());
  });
  return byTick;
}

describe("lobby", () => {
  it("matchmakes a seat, lists the room, and types its errors", async () => {
    const seat = await server.lobby.matchmake({ room_type: "arena", name: "lobby-test" });
    assert.match(seat.ws_url, /^ws:\/\/127\.0\.0\.1:\d+\/v1\/rooms\/.+\/ws$/);
    assert.equal(typeof seat.player_id, "number");
    const page = await server.lobby.listRooms({ room_type: "arena", limit: 100 });
    assert.ok(page.rooms.some((room) => room.room_id === seat.room_id));

    const created = await server.lobby.createRoom({ room_type: "tictactoe", room_id: "ts-lobby-1" });
    assert.equal(created.room_id, "ts-lobby-1");
    assert.equal(created.max_players, 2);
    const again = await server.lobby.createRoom({ room_type: "tictactoe", room_id: "ts-lobby-1" }).catch((error: unknown) => error);
    assert.ok(again instanceof LobbyError);
    assert.equal(again.status, 409);
    assert.equal(again.code, "room_exists");

    const cases: [() => Promise<unknown>, number, string][] = [
      [() => server.lobby.seat("no-such-room"), 404, "room_not_found"],
      [() => server.lobby.matchmake({ room_type: "chess" }), 400, "unknown_room_type"],
      [() => server.lobby.seat("bad id!"), 400, "invalid_room_id"],
      [() => server.lobby.deleteRoom("ts-lobby-1"), 401, "unauthorized"],
      [() => new LobbyClient({ baseUrl: server.httpUrl, operatorToken: "wrong-token-wrong-token-wrong" }).deleteRoom("ts-lobby-1"), 403, "forbidden"],
    ];
    for (const [request, status, code] of cases) {
      const error = await request().then(() => null, (caught: unknown) => caught);
      assert.ok(error instanceof LobbyError, `expected a LobbyError for ${code}`);
      assert.equal(error.status, status);
      assert.equal(error.code, code);
    }
  });
});

describe("session", () => {
  for (const protocol of [1, 2] as const) {
    it(`joins via matchmake in protocol ${protocol}: welcome, snapshot, own player, acks`, async () => {
      const seat = await server.lobby.matchmake({ room_type: "arena", name: `v${protocol}` });
      const session = await join(seat, protocol);
      assert.equal(session.state, "open");
      assert.equal(session.playerId, seat.player_id);
      assert.equal(session.welcome?.room, seat.room_id);
      assert.equal(typeof session.welcome?.resume_token, "string");
      assert.ok(ownPlayer(session), "own player entity in the mirror");
      assert.equal([...session.mirror.entities.values()].filter((entity) => entity.kind === "coin").length, 5);
      assert.equal(session.mirror.acks.get(seat.player_id), 0);
      const start = session.mirror.tick;
      await waitFor("a few deltas", () => session.mirror.tick >= start + 5);
      if (protocol === 2) assert.deepEqual(session.mirror.schema.map((kind) => kind.name).sort(), ["coin", "player"]);
      const end = await session.leave();
      assert.deepEqual([end.reason, end.code], ["normal", 1000]);
    });
  }

  for (const [deltas, snapshots] of [[2, 1], [1, 2]] as const) {
    it(`a v${deltas} mirror built from deltas equals a v${snapshots} snapshot of the same tick`, async () => {
      const room = await server.lobby.createRoom({ room_type: "arena" });
      const mover = await join(await server.lobby.seat(room.room_id, { name: "mover" }), deltas);
      const watcher = await join(await server.lobby.seat(room.room_id, { name: "watcher" }), snapshots);
      const mirrored = recordDeltaTicks(mover);
      // Move, so positions, scores and acks change while we compare.
      mover.sendInput({ dx: 1, dy: 0.5 });
      watcher.sendInput({ dx: -1, dy: 0 });
      await waitFor("both inputs applied", () => mover.mirror.acks.get(watcher.playerId as number) === 1 && mover.mirror.acks.get(mover.playerId as number) === 1);
      // A resync is answered with a snapshot at a tick: the room's exact state at that tick.
      const snapshot = nextEvent(watcher, "tick", ({ snapshot }) => snapshot);
      watcher.resync();
      const { tick } = await snapshot;
      const fresh = watcher.mirror.content();
      const fromDeltas = await waitFor(`the mover's mirror at tick ${tick}`, () => mirrored.get(tick));
      assert.deepEqual(fromDeltas, fresh);
      assert.ok(fresh.entities.length >= 7, "5 coins and 2 players");
    });
  }

  it("mirrors tictactoe's `any` fields (cells, nil turn) in v2 exactly as a v1 snapshot has them", async () => {
    const room = await server.lobby.createRoom({ room_type: "tictactoe" });
    const x = await join(await server.lobby.seat(room.room_id, { name: "x" }), 2);
    const o = await join(await server.lobby.seat(room.room_id, { name: "o" }), 1);
    const mirrored = recordDeltaTicks(x);
    x.sendInput({ cell: 4 });
    await waitFor("X's move applied", () => o.mirror.acks.get(x.playerId as number) === 1);
    o.sendInput({ cell: 0 });
    await waitFor("O's move applied", () => x.mirror.acks.get(o.playerId as number) === 1);
    const board = [...x.mirror.entities.values()].find((entity) => entity.kind === "board");
    assert.deepEqual(board?.fields["cells"], [2, 0, 0, 0, 1, 0, 0, 0, 0]);
    const snapshot = nextEvent(o, "tick", ({ snapshot }) => snapshot);
    o.resync();
    const { tick } = await snapshot;
    assert.deepEqual(await waitFor(`X's mirror at tick ${tick}`, () => mirrored.get(tick)), o.mirror.content());
  });

  it("numbers inputs from 1 and measures input→ack latency", async () => {
    const session = await join(await freshSeat());
    const start = ownPlayer(session);
    const first = session.sendInput({ dx: 1, dy: 0 });
    const second = session.sendInput({ dx: 0, dy: 1 });
    assert.deepEqual([first, second], [1, 2]);
    const ack = await nextEvent(session, "ack", ({ seq }) => seq === 2);
    assert.ok(ack.latencyMs !== null && ack.latencyMs >= 0);
    assert.equal(session.ackLatencyMs, ack.latencyMs);
    assert.equal(session.mirror.acks.get(session.playerId as number), 2);
    await waitFor("the avatar to move", () => {
      const now = ownPlayer(session);
      return now !== null && start !== null && now.y > start.y;
    });
  });

  it("measures the round trip of an application ping", async () => {
    const session = await join(await freshSeat());
    const pong = nextEvent(session, "pong");
    const rtt = await session.ping();
    assert.ok(rtt >= 0 && rtt < 5_000);
    assert.equal(session.rttMs, rtt);
    // The tick of the last state frame sent: 0 in a room that had not ticked when we joined.
    assert.ok((await pong).tick <= session.mirror.tick + 1);
  });

  it("follows a redirect to the node that hosts the room, with the same hello", async () => {
    const seat = await freshSeat();
    // A stand-in for a cluster node that does not host the room: it answers any hello exactly
    // as §5 step 4 says, with a `redirect` frame and close 4012, pointing at the real node.
    const { encode } = await import("@msgpack/msgpack");
    const other = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((ready) => other.once("listening", ready));
    const hellos: unknown[] = [];
    other.on("connection", (socket) => {
      socket.on("message", (data) => {
        hellos.push(data);
        socket.send(encode([{ redirect: { room: seat.room_id, node: "real", ws_url: seat.ws_url } }]));
        socket.close(4012, "redirect");
      });
    });
    try {
      const port = (other.address() as { port: number }).port;
      const session = await join({ ...seat, ws_url: `ws://127.0.0.1:${port}/v1/rooms/${seat.room_id}/ws` });
      assert.equal(session.playerId, seat.player_id);
      assert.equal(session.wsUrl, seat.ws_url);
      assert.equal(hellos.length, 1);
    } finally {
      other.close();
    }
  });

  for (const protocol of [1, 2] as const) {
    it(`resumes the same player after an abrupt drop (protocol ${protocol})`, async () => {
      const recording = recordingWebSocket();
      const session = await join(await freshSeat(), protocol, {
        WebSocket: recording.WebSocket,
        resume: { baseDelayMs: 20, maxDelayMs: 200 },
      });
      const player = session.playerId;
      const entity = ownPlayer(session);
      session.sendInput({ dx: 1, dy: 0 });
      await nextEvent(session, "ack", ({ seq }) => seq === 1);
      const firstToken = session.welcome?.resume_token;
      const dropTick = session.mirror.tick;
      const resumed = nextEvent(session, "resumed");
      recording.sockets[0]!.terminate(); // no close frame: a reset, as a lost network looks
      const welcome = await resumed;
      assert.equal(welcome.resumed, true);
      assert.equal(welcome.player, player);
      assert.notEqual(welcome.resume_token, firstToken);
      assert.equal(session.state, "open");
      assert.equal(session.resumes, 1);
      assert.equal(recording.sockets.length, 2);
      assert.ok(session.mirror.tick >= dropTick);
      assert.equal(ownPlayer(session)?.id, entity?.id, "the same entity kept its seat");
      // Inputs continue the seq (§20.4 step 7); the mirror keeps following the room.
      assert.equal(session.sendInput({ dx: 0, dy: 1 }), 2);
      await nextEvent(session, "ack", ({ seq }) => seq >= 2);
    });
  }

  it("resumes on request when the application says the network changed (reconnect)", async () => {
    const session = await join(await freshSeat(), 2, { resume: { baseDelayMs: 20, maxDelayMs: 200 } });
    const player = session.playerId;
    const resumed = nextEvent(session, "resumed");
    session.reconnect();
    assert.equal(session.state, "resuming");
    assert.equal((await resumed).player, player);
    assert.equal(session.state, "open");
    assert.equal(session.resumes, 1);
  });

  it("reports a forged resume token as a typed refusal (resume_invalid, 4014)", async () => {
    const recording = recordingWebSocket();
    const session = await join(await freshSeat(), 2, {
      WebSocket: recording.WebSocket,
      resume: { baseDelayMs: 10, maxDelayMs: 50 },
    });
    session.welcome!.resume_token = "forged.resume.token";
    const closed = nextEvent(session, "closed");
    recording.sockets[0]!.terminate();
    const end = await closed;
    assert.equal(end.reason, "resume_refused");
    assert.equal(end.code, 4014);
    assert.equal(end.error?.code, "resume_invalid");
    assert.equal(session.state, "closed");
  });

  it("refuses a used seat token with a typed SessionError (seat_not_reserved, 4001)", async () => {
    const seat = await freshSeat();
    await join(seat);
    const refused = await join(seat).then(() => null, (error: unknown) => error);
    assert.ok(refused instanceof SessionError);
    assert.equal(refused.end.reason, "unauthorized");
    assert.equal(refused.end.code, 4001);
    assert.equal(refused.end.error?.code, "seat_not_reserved");
  });

  it("ends with room_disposed (4009) when an operator deletes the room", async () => {
    const seat = await freshSeat();
    const session = await join(seat);
    const closed = nextEvent(session, "closed");
    const answer = await server.operator.deleteRoom(seat.room_id);
    assert.equal(answer.room_id, seat.room_id);
    const end = await closed;
    assert.deepEqual([end.reason, end.code, end.error], ["room_disposed", 4009, null]);
    assert.equal(session.state, "closed");
  });

  it("ends with kicked (4016) when an operator removes the player, without resuming", async () => {
    const seat = await freshSeat();
    const session = await join(seat);
    const closed = nextEvent(session, "closed");
    const answer = await server.operator.kickPlayer(seat.room_id, seat.player_id);
    assert.equal(answer.player_id, seat.player_id);
    const end = await closed;
    assert.deepEqual([end.reason, end.code, session.resumes], ["kicked", 4016, 0]);
    const again = await server.operator.kickPlayer(seat.room_id, seat.player_id).then(() => null, (error: unknown) => error);
    assert.ok(again instanceof LobbyError);
    assert.deepEqual([again.status, again.code], [404, "player_not_found"]);
  });

  it("delivers operator messages as broadcast events", async () => {
    const seat = await freshSeat();
    const session = await join(seat);
    const event = nextEvent(session, "event", ({ payload }) => (payload as { type?: string }).type === "message");
    await server.operator.sendMessage(seat.room_id, { hello: "players" });
    assert.deepEqual((await event).payload, { type: "message", payload: { hello: "players" } });
  });
});
