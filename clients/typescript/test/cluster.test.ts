// A redirect from a real cluster (§5 step 4): two Ludus nodes and their nats-server. A seat's
// `ws_url` names the node hosting the room, so the test connects to the other node on purpose;
// that node answers `redirect` and close 4012, and the client must open the redirect's `ws_url`
// with the same `hello`. Skipped (with the reason) when no nats-server is installed.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { LobbyClient, RoomSession } from "../src/index.js";
import { NodeWebSocket, natsServerBinary, nextEvent, startCluster, waitFor, type TestCluster } from "./harness.js";

const nats = natsServerBinary();

describe("cluster", { skip: nats === null ? "nats-server not found (set NATS_SERVER_BIN)" : false }, () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startCluster(nats as string);
  });

  after(async () => {
    await cluster?.stop();
  });

  it("follows a redirect from the node that does not host the room to the one that does", async () => {
    const [first, second] = cluster.nodes;
    const seat = await new LobbyClient({ baseUrl: first.httpUrl }).matchmake({ room_type: "arena", name: "hop" });
    const hosting = seat.ws_url.startsWith(first.httpUrl.replace("http", "ws")) ? first : second;
    const other = hosting === first ? second : first;
    const wrongUrl = `${other.httpUrl.replace("http", "ws")}/v1/rooms/${seat.room_id}/ws`;
    // The other node learns of a new room through the directory, within about a quarter of a
    // second (§2 listings); before that it answers room_not_found (4004) instead of redirect.
    const otherLobby = new LobbyClient({ baseUrl: other.httpUrl });
    await waitFor(`${other.httpUrl} to list ${seat.room_id}`, async () =>
      (await otherLobby.listRooms({ limit: 100 })).rooms.some((room) => room.room_id === seat.room_id),
    );
    const session = await RoomSession.join({ ...seat, ws_url: wrongUrl }, { WebSocket: NodeWebSocket });
    try {
      assert.equal(session.wsUrl, seat.ws_url, "the session ends up on the hosting node");
      assert.equal(session.playerId, seat.player_id);
      assert.equal(session.welcome?.room, seat.room_id);
      const start = session.mirror.tick;
      await nextEvent(session, "tick", ({ tick }) => tick > start + 2);
    } finally {
      await session.leave();
    }
  });

  // Last: the drained node takes no new rooms for the rest of the file.
  it("resumes at once on the new owner when the room's node drains (4017), losing no tick", async () => {
    const [first] = cluster.nodes;
    const seat = await new LobbyClient({ baseUrl: first.httpUrl }).matchmake({ room_type: "arena", name: "mover" });
    const hosting = cluster.nodes.find((node) => seat.ws_url.startsWith(node.httpUrl.replace("http", "ws")));
    assert.ok(hosting, `a node hosts ${seat.ws_url}`);
    const session = await RoomSession.join(seat, { WebSocket: NodeWebSocket });
    try {
      const epoch = session.welcome?.epoch as number;
      await nextEvent(session, "tick", ({ tick }) => tick > 2);
      const resumed = nextEvent(session, "resumed");
      const answer = await hosting.operator.drainNode();
      assert.equal(answer.draining, true);
      const welcome = await resumed;
      assert.equal(welcome.epoch, epoch + 1, "the new owner runs the next epoch");
      assert.equal(welcome.ticks_lost, 0, "a drain moves the exact state");
      assert.equal(welcome.player, seat.player_id);
      assert.notEqual(session.wsUrl, seat.ws_url, "the session followed the redirect to the new owner");
      const start = session.mirror.tick;
      await nextEvent(session, "tick", ({ tick }) => tick > start + 2);
    } finally {
      await session.leave();
    }
  });
});
