// Resume outcomes that need a server configured for them (§20): a room keeping no delta
// history answers a resume with `[welcome, snapshot]`, and a seat whose resume window passed
// is refused with `resume_expired` (4014).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RoomSession } from "../src/index.js";
import { nextEvent, recordingWebSocket, startServer, type TestServer } from "./harness.js";

describe("resume with no history and a 1 s window", () => {
  let server: TestServer;
  const sessions: RoomSession[] = [];

  before(async () => {
    server = await startServer("[rooms]\nresume_history_bytes = 0\nresume_window_ms = 1000");
  });

  after(async () => {
    for (const session of sessions) session.close();
    await server?.stop();
  });

  async function joined(protocol: 1 | 2, options: Parameters<typeof RoomSession.join>[1]) {
    const room = await server.lobby.createRoom({ room_type: "arena" });
    const seat = await server.lobby.seat(room.room_id);
    const recording = recordingWebSocket();
    const session = await RoomSession.join(seat, { protocol, WebSocket: recording.WebSocket, ...options });
    sessions.push(session);
    return { session, sockets: recording.sockets };
  }

  for (const protocol of [1, 2] as const) {
    it(`gets a snapshot answer and the same player back (protocol ${protocol})`, async () => {
      const { session, sockets } = await joined(protocol, { resume: { baseDelayMs: 10, maxDelayMs: 50 } });
      session.sendInput({ dx: 1, dy: 1 });
      await nextEvent(session, "ack", ({ seq }) => seq === 1);
      const snapshot = nextEvent(session, "tick", ({ snapshot }) => snapshot);
      const resumed = nextEvent(session, "resumed");
      sockets[0]!.terminate();
      const welcome = await resumed;
      await snapshot; // the resume frame is [welcome, snapshot]: nothing to replay from
      assert.equal(welcome.resumed, true);
      assert.equal(welcome.player, session.playerId);
      assert.equal(session.mirror.acks.get(session.playerId as number), 1, "the applied seq survived");
      assert.equal(session.sendInput({ dx: 0, dy: 0 }), 2);
      await nextEvent(session, "ack", ({ seq }) => seq >= 2);
    });
  }

  it("is refused with resume_expired (4014) once the window has passed", async () => {
    // random() = 1: the first attempt waits its whole bound, 1.5 s, past the 1 s window.
    const { session, sockets } = await joined(2, { resume: { baseDelayMs: 1500, maxDelayMs: 1500 }, random: () => 1 });
    const closed = nextEvent(session, "closed", () => true, 10_000);
    sockets[0]!.terminate();
    const end = await closed;
    assert.deepEqual([end.reason, end.code, end.error?.code], ["resume_refused", 4014, "resume_expired"]);
    assert.equal(session.resumes, 0);
  });
});
