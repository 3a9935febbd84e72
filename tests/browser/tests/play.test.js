// /play in a real headless Chromium against a real ludus-server, through the page's contract
// (window.ludusPlay, the #overlay ids, arrow keys and WASD): a page joins and moves its own
// avatar, shows its latency, two pages see each other, and /dashboard lists what they made and
// ends it for both with 4009 room_disposed (PROTOCOL.md §13).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, OPERATOR_TOKEN, screenshot, startServer, WAIT_MS } from "../lib/harness.js";

/** Waits until `predicate(window.ludusPlay, arg)` holds in `page`, and returns the view. */
async function until(page, predicate, arg) {
  await page.waitForFunction(
    ({ source, arg: value }) => {
      // The predicate travels as source text: playwright runs it inside the page.
      const check = new Function("play", "arg", `return (${source})(play, arg);`);
      return check(window.ludusPlay, value);
    },
    { source: predicate.toString(), arg },
    { timeout: WAIT_MS },
  );
  return page.evaluate(() => ({ ...window.ludusPlay }));
}

/** Player entities the page mirrors (a count or a list, as the page exposes them). */
const playerCount = (play) => (Array.isArray(play.players) ? play.players.length : play.players);

describe("/play", () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("pages join, move with the keyboard, see each other; the dashboard disposes their room", async () => {
    const ann = await browser.newPage();
    await ann.goto(`${server.base}/play?name=ann`);
    const joined = await until(ann, (play) => play.state === "playing" && play.tick > 0 && play.ownPosition !== null);
    assert.match(joined.roomId, /\S/);

    // Arrow keys, then WASD: the page's own avatar moves that way in the room's state.
    await ann.bringToFront();
    await ann.keyboard.down("ArrowRight");
    await until(ann, (play, start) => play.ownPosition.x > start.x + 20, joined.ownPosition);
    await ann.keyboard.up("ArrowRight");
    const right = await until(ann, (play) => play.ownPosition !== null);
    await ann.keyboard.down("s");
    await until(ann, (play, start) => play.ownPosition.y > start.y + 20, right.ownPosition);
    await ann.keyboard.up("s");

    // Latency is measured and shown.
    const measured = await until(ann, (play) => play.rttMs !== null && play.ackLatencyMs !== null && play.bytesPerSecond > 0);
    assert.ok(measured.rttMs >= 0 && measured.ackLatencyMs >= 0);
    await ann.waitForFunction(() => /\d+ ms/.test(document.querySelector("#rtt").textContent), null, { timeout: WAIT_MS });
    await ann.waitForFunction(() => /\d+ ms/.test(document.querySelector("#ack-latency").textContent), null, { timeout: WAIT_MS });
    assert.match(await ann.textContent("#status"), /playing/);

    // A second page in the same room: each sees two players.
    const bob = await browser.newPage();
    await bob.goto(`${server.base}/play?room=${encodeURIComponent(joined.roomId)}&name=bob`);
    const second = await until(bob, (play) => play.state === "playing" && play.tick > 0);
    assert.equal(second.roomId, joined.roomId);
    for (const page of [ann, bob]) {
      await page.waitForFunction(
        ({ source }) => new Function("play", `return (${source})(play);`)(window.ludusPlay) >= 2,
        { source: playerCount.toString() },
        { timeout: WAIT_MS },
      );
    }
    await screenshot(ann, "play");

    // The dashboard lists the room and both players, and disposing it ends both pages.
    const dashboard = await browser.newPage();
    dashboard.on("dialog", (dialog) => dialog.accept());
    await dashboard.goto(`${server.base}/dashboard`);
    await dashboard.fill("#token", OPERATOR_TOKEN);
    await dashboard.click("#token-submit");
    const row = dashboard.locator(`#rooms-table tr[data-room-id="${joined.roomId}"]`);
    await row.waitFor({ timeout: WAIT_MS });
    await row.click();
    for (const play of [joined, second]) {
      await dashboard.locator(`#seats tr[data-player-id="${play.playerId}"]`).waitFor({ timeout: WAIT_MS });
    }
    await screenshot(dashboard, "dashboard-play-room");
    await dashboard.click("#dispose-room");
    for (const page of [ann, bob]) {
      const closed = await until(page, (play) => play.state === "closed");
      assert.equal(closed.closeCode, 4009);
      assert.equal(closed.closeReason, "room_disposed");
    }
    await dashboard.locator(`#rooms-table tr[data-room-id="${joined.roomId}"]`).waitFor({ state: "detached", timeout: WAIT_MS });
    await screenshot(ann, "play-closed");
  });
});
