// Bad input from the peer: a real server never sends it, so a stand-in peer (a `ws` server
// on loopback) answers `hello` with a valid join and then sends broken frames. Each must become
// a typed `protocolError` or a `resync`, never an exception, and the session must stay usable.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createServer } from "node:net";
import { decode, encode } from "@msgpack/msgpack";
import { WebSocketServer, type WebSocket } from "ws";
import { RoomSession, SessionError, type ProtocolError } from "../src/index.js";
import { NodeWebSocket, waitFor } from "./harness.js";

const WELCOME = { session: 1, player: 42, room: "r-1", room_type: "arena", epoch: 9, tick_hz: 20, window: 40 };
const SNAPSHOT = {
  epoch: 9,
  tick: 100,
  entities: [{ id: 5, kind: "player", fields: { player: 42, name: "ann", x: 12, y: 20, score: 0 } }],
  acks: [{ player: 42, seq: 0 }],
};
const delta = (base: number, tick: number, x: number) => ({
  delta: { epoch: 9, tick, base_tick: base, upserts: [{ id: 5, fields: { x } }], removed: [], acks: [], events: [] },
});

describe("a hostile peer", () => {
  it("turns every broken frame into a typed error or a resync, and keeps the session open", async () => {
    const peer = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((ready) => peer.once("listening", ready));
    const received: Record<string, unknown>[] = [];
    let socket: WebSocket | null = null;
    peer.on("connection", (connection) => {
      socket = connection;
      connection.on("message", (data) => {
        const message = decode(data as Buffer) as Record<string, unknown>;
        received.push(message);
        if ("hello" in message) connection.send(encode([{ welcome: WELCOME }, { snapshot: SNAPSHOT }]));
      });
    });
    const port = (peer.address() as { port: number }).port;
    const session = await RoomSession.join(
      { ws_url: `ws://127.0.0.1:${port}/v1/rooms/r-1/ws`, token: "tok" },
      { protocol: 1, WebSocket: NodeWebSocket, resume: false },
    );
    const errors: ProtocolError[] = [];
    const resyncs: string[] = [];
    session.on("protocolError", (error) => errors.push(error));
    session.on("resync", (why) => resyncs.push(why.reason));
    const peerSocket = socket as unknown as WebSocket;
    const frames: (Uint8Array | string)[] = [
      encode([delta(100, 101, 13)]), // fine: applies
      encode([delta(99, 102, 14)]), // a gap: resync, then deltas wait for a snapshot
      Uint8Array.of(0xc1), // not MessagePack
      "a text frame",
      encode(SNAPSHOT).slice(0, 5), // truncated
      encode([{ delta: { epoch: "nine" } }]), // wrong types
      encode([{ s: [9, 103, [["player", [["x", "quantized", 0, 0.05, 20000]]]], Uint8Array.of(0xff, 0xff)] }]), // bad bits
      encode([{ snapshot: { ...SNAPSHOT, tick: 110 } }]), // recovery
      encode([delta(110, 111, 15), { future_message: { x: 1 } }]), // applies; unknown message ignored
    ];
    try {
      for (const frame of frames) peerSocket.send(frame);
      await waitFor("the last delta", () => session.mirror.tick === 111);
      assert.equal(session.state, "open");
      assert.deepEqual(
        errors.map((error) => error.kind),
        ["msgpack", "shape", "msgpack", "shape", "packed"],
      );
      assert.deepEqual(resyncs, ["gap"]);
      assert.equal(session.mirror.entities.get(5)?.fields["x"], 15);
      // One resync for the gap, one per unreadable frame (each may have hidden a tick).
      await waitFor("resync requests at the peer", () => received.filter((message) => "resync" in message).length >= 6);
      await waitFor("an ack of the recovered tick", () => received.some((message) => (message["ack"] as { tick?: number } | undefined)?.tick === 110));
    } finally {
      session.close();
      for (const client of peer.clients) client.terminate();
      peer.close();
    }
  });

  it("rejects a join that gets no answer in time with connection_lost, and nothing leaks", async () => {
    // A TCP peer that accepts and never answers the upgrade: the socket is given up while still
    // connecting (the `ws` package then emits an error, which must not go unhandled).
    const silent = createServer(() => {});
    await new Promise<void>((ready) => silent.listen(0, "127.0.0.1", ready));
    try {
      const port = (silent.address() as { port: number }).port;
      const refused = await RoomSession.join(
        { ws_url: `ws://127.0.0.1:${port}/v1/rooms/r-1/ws`, token: "tok" },
        { WebSocket: NodeWebSocket, answerTimeoutMs: 300 },
      ).then(() => null, (error: unknown) => error);
      assert.ok(refused instanceof SessionError);
      assert.deepEqual([refused.end.reason, refused.end.code], ["connection_lost", null]);
    } finally {
      silent.close();
    }
  });
});
