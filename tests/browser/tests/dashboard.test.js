// /dashboard in a real headless Chromium against a real ludus-server: the token gate, the rooms
// and players real WebSocket clients made, and the kick and dispose actions with the close
// codes PROTOCOL.md §13 documents (4016 kicked, 4009 room_disposed).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { api, launchBrowser, OPERATOR_TOKEN, REPO, screenshot, startServer, WAIT_MS } from "../lib/harness.js";

const TEST_PLAYER = join(REPO, "tests", "browser", "lib", "test-player.js");

describe("/dashboard", () => {
  let server;
  let browser;
  let players; // a page on the server's origin that holds the test players' sockets

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    players = await browser.newPage();
    await players.goto(`${server.base}/v1/ping`);
    await players.addScriptTag({ path: TEST_PLAYER });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  async function seat(path, body) {
    const answer = await api(server.base, "POST", path, { token: null, body });
    assert.equal(answer.status, 200, answer.text);
    return answer.json;
  }

  async function join(seatGrant) {
    return players.evaluate((grant) => window.ludusTestPlayer.join(grant), seatGrant);
  }

  async function closeOf(playerId) {
    const handle = await players.waitForFunction(
      (id) => window.ludusTestPlayer.players[id].closeCode,
      playerId,
      { timeout: WAIT_MS },
    );
    return handle.jsonValue();
  }

  async function signIn(page, token) {
    await page.goto(`${server.base}/dashboard`);
    await page.fill("#token", token);
    await page.click("#token-submit");
  }

  test("a wrong token shows an authorization error and no data", async () => {
    const page = await browser.newPage();
    await signIn(page, "not-the-operator-token-0123456789");
    const error = page.locator("#auth-error");
    await error.waitFor({ state: "visible", timeout: WAIT_MS });
    assert.match(await error.textContent(), /refused \(403 forbidden\)/);
    assert.equal(await page.locator("#dashboard").isHidden(), true);
    await page.close();
  });

  test("lists rooms and players, kicks one (4016) and disposes a room (4009)", async () => {
    const ann = await seat("/v1/matchmake", { room_type: "arena", name: "ann" });
    const bob = await seat("/v1/matchmake", { room_type: "arena", name: "bob" });
    assert.equal(ann.room_id, bob.room_id);
    const board = await api(server.base, "POST", "/v1/rooms", {
      token: null,
      body: { room_type: "tictactoe", room_id: "table-1" },
    });
    assert.equal(board.status, 201, board.text);
    const carl = await seat("/v1/rooms/table-1/seats", { name: "carl" });
    for (const grant of [ann, bob, carl]) await join(grant);

    const page = await browser.newPage();
    page.on("dialog", (dialog) => dialog.accept());
    await signIn(page, OPERATOR_TOKEN);
    const arenaRow = page.locator(`#rooms-table tr[data-room-id="${ann.room_id}"]`);
    await arenaRow.waitFor({ timeout: WAIT_MS });
    await page.locator('#rooms-table tr[data-room-id="table-1"]').waitFor({ timeout: WAIT_MS });
    await page.waitForFunction(
      (roomId) => document.querySelector(`#rooms-table tr[data-room-id="${roomId}"]`)?.textContent.includes("2/16"),
      ann.room_id,
      { timeout: WAIT_MS },
    );
    // The live overview names this node with its rooms.
    await page.waitForFunction(
      () => document.querySelector('#cluster tr[data-node="local"]')?.textContent.includes("live"),
      null,
      { timeout: WAIT_MS },
    );

    // The room page: both players, their flow control, the state.
    await arenaRow.click();
    for (const grant of [ann, bob]) {
      await page.locator(`#seats tr[data-player-id="${grant.player_id}"]`).waitFor({ timeout: WAIT_MS });
    }
    await page.waitForFunction(
      () => document.querySelector("#room-state").textContent.includes('"entities"'),
      null,
      { timeout: WAIT_MS },
    );
    await page.waitForFunction(
      () => [...document.querySelectorAll("#seats tbody tr")].every((row) => row.textContent.includes("streaming")),
      null,
      { timeout: WAIT_MS },
    );
    await screenshot(page, "dashboard-room");

    // Kick bob: his socket closes with 4016, and his seat is gone.
    await page.click(`#seats tr[data-player-id="${bob.player_id}"] button.kick`);
    assert.deepEqual(await closeOf(bob.player_id), 4016);
    assert.equal(await players.evaluate((id) => window.ludusTestPlayer.players[id].closeReason, bob.player_id), "kicked");
    await page.locator(`#seats tr[data-player-id="${bob.player_id}"]`).waitFor({ state: "detached", timeout: WAIT_MS });
    assert.equal(await players.evaluate((id) => window.ludusTestPlayer.players[id].closeCode, ann.player_id), null);

    // Dispose the tic-tac-toe room from its page: carl gets 4009, the room leaves the list.
    await page.click("#room-close");
    await page.locator('#rooms-table tr[data-room-id="table-1"]').click();
    await page.locator(`#seats tr[data-player-id="${carl.player_id}"]`).waitFor({ timeout: WAIT_MS });
    await page.click("#dispose-room");
    assert.equal(await closeOf(carl.player_id), 4009);
    await page.locator('#rooms-table tr[data-room-id="table-1"]').waitFor({ state: "detached", timeout: WAIT_MS });
    await page.locator("#rooms-section").waitFor({ state: "visible", timeout: WAIT_MS });
    // The live overview follows: one room left on this node, one player connected.
    await page.waitForFunction(
      () => {
        const cells = document.querySelectorAll('#cluster tr[data-node="local"] td');
        return cells.length > 3 && cells[2].textContent === "1" && cells[3].textContent === "1";
      },
      null,
      { timeout: WAIT_MS },
    );
    await screenshot(page, "dashboard");
    await page.close();
  });

  test("on a single node the drain action is shown disabled, saying why", async () => {
    const page = await browser.newPage();
    await signIn(page, OPERATOR_TOKEN);
    await page.locator("#dashboard").waitFor({ state: "visible", timeout: WAIT_MS });
    assert.equal(await page.locator("#drain-node").isDisabled(), true);
    assert.match(await page.locator("#drain-reason").textContent(), /nowhere to move its rooms/);
    await page.close();
  });
});
