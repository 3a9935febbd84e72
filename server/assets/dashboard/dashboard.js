// Ludus operator dashboard. Plain JavaScript, no framework, no build step.
//
// Data comes from the operator routes (protocol/PROTOCOL.md §2), each sent with
// `Authorization: Bearer <token>`. The token is asked for once and kept in this tab's
// sessionStorage only. The cluster overview arrives as server-sent events read with fetch
// (EventSource cannot send the header); the room list and the open room are fetched each second.
"use strict";

const TOKEN_KEY = "ludus.operatorToken";
const REFRESH_MS = 1000;
const STREAM_RETRY_MS = 2000;
const PAGE_SIZE = 25;

const $ = (selector) => document.querySelector(selector);

const view = {
  sort: "created",
  filter: "",
  roomType: "",
  cursors: [null], // the cursor of each page seen so far; the last is the current page's
  nextCursor: null,
  roomId: null, // the room whose page is open
  streamAbort: null,
  timer: null,
};

// ---- token and requests -------------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

class AuthError extends Error {}

async function api(method, path) {
  const response = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${token()}` },
    cache: "no-store",
  });
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => ({}));
    const code = body.error ? body.error.code : response.status;
    throw new AuthError(`The operator token was refused (${response.status} ${code}).`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? body.error.message : response.statusText;
    const error = new Error(`${method} ${path}: ${response.status} ${message}`);
    error.code = body && body.error ? body.error.code : null;
    throw error;
  }
  return body;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopLive();
  $("#dashboard").hidden = true;
  $("#sign-out").hidden = true;
  $("#token-form").hidden = false;
  $("#connection").textContent = "signed out";
  const error = $("#auth-error");
  error.textContent = message || "";
  error.hidden = !message;
}

function handleError(error) {
  if (error instanceof AuthError) {
    signOut(error.message);
  } else {
    status(error.message);
  }
}

function status(text) {
  $("#status").textContent = text;
}

// ---- formatting ---------------------------------------------------------------------------

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (className) td.className = className;
  return td;
}

function micros(us) {
  if (us === null || us === undefined) return "—";
  return us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us} µs`;
}

function bytesPerSecond(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB/s`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KiB/s`;
  return `${bytes} B/s`;
}

// ---- cluster overview (live stream) -------------------------------------------------------

function renderOverview(overview) {
  const container = $("#cluster");
  container.replaceChildren();
  for (const region of overview.regions) {
    const title = document.createElement("h3");
    title.textContent = `region ${region.region}`;
    const table = document.createElement("table");
    table.className = "cluster-table";
    table.innerHTML =
      "<thead><tr><th>node</th><th>health</th><th class=num>rooms</th><th class=num>CCU</th>" +
      "<th class=num>CPU</th><th class=num>tick p99</th><th class=num>overruns/s</th>" +
      "<th class=num>bytes out</th><th>lease</th><th>region file</th></tr></thead>";
    const body = document.createElement("tbody");
    for (const node of region.nodes) {
      const report = node.report || {};
      const load = report.load || {};
      const row = document.createElement("tr");
      row.dataset.node = node.node;
      const name = cell(node.node + (node.this_node ? " (this node)" : ""));
      if (node.http_url && !node.this_node) {
        name.replaceChildren();
        const link = document.createElement("a");
        link.href = new URL("/dashboard", node.http_url).href;
        link.textContent = node.node;
        name.append(link);
      }
      row.append(
        name,
        cell(node.live ? "live" : "down", node.live ? "good" : "bad"),
        cell(node.rooms, "num"),
        cell(report.sessions, "num"),
        cell(load.cpu_percent === null || load.cpu_percent === undefined ? null : `${load.cpu_percent}%`, "num"),
        cell(micros(load.tick_p99_us), "num"),
        cell(load.tick_overruns, load.tick_overruns > 0 ? "num bad" : "num"),
        cell(bytesPerSecond(load.bytes_out_per_sec), "num"),
        cell(overview.clustered ? (report.lease_held ? "held" : "not held") : "n/a (single node)",
          overview.clustered && !report.lease_held ? "bad" : ""),
        cell(regionFile(node), node.region_file_agrees === false ? "bad" : ""),
      );
      body.append(row);
    }
    table.append(body);
    container.append(title, table);
  }
  $("#overview-at").textContent = `Updated ${new Date(overview.at_ms).toLocaleTimeString()}.`;
  $("#drain-node").disabled = !overview.drain.supported || overview.drain.draining;
  $("#drain-reason").textContent = overview.drain.draining
    ? "Draining: its rooms move to other nodes, and it takes no new ones."
    : overview.drain.reason;
  $("#rooms-node").textContent = overview.clustered ? `node ${overview.node}` : "this node";
}

function regionFile(node) {
  if (!node.region_file_hash) return node.this_node ? "single node" : "—";
  const short = node.region_file_hash.slice(0, 12);
  return node.region_file_agrees ? `${short} (agrees)` : `${short} (DIFFERS)`;
}

// Reads `text/event-stream` from a fetch body, calling `onEvent(name, data)` per event.
async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      onEvent(name, data.join("\n"));
    }
  }
}

async function streamOverview() {
  while (token()) {
    const abort = new AbortController();
    view.streamAbort = abort;
    try {
      const response = await fetch("/v1/dashboard/stream", {
        headers: { authorization: `Bearer ${token()}` },
        signal: abort.signal,
      });
      if (response.status === 401 || response.status === 403) {
        throw new AuthError(`The operator token was refused (${response.status}).`);
      }
      if (!response.ok) throw new Error(`live stream: ${response.status}`);
      $("#connection").textContent = "live";
      await readEvents(response, (name, data) => {
        if (name === "overview") renderOverview(JSON.parse(data));
      });
    } catch (error) {
      if (abort.signal.aborted) return;
      if (error instanceof AuthError) return handleError(error);
      $("#connection").textContent = "reconnecting";
      status(error.message);
    }
    await new Promise((resolve) => setTimeout(resolve, STREAM_RETRY_MS));
  }
}

// ---- rooms --------------------------------------------------------------------------------

async function refreshRooms() {
  const query = new URLSearchParams({ sort: view.sort, limit: String(PAGE_SIZE) });
  if (view.filter) query.set("q", view.filter);
  if (view.roomType) query.set("room_type", view.roomType);
  const cursor = view.cursors[view.cursors.length - 1];
  if (cursor) query.set("cursor", cursor);
  const page = await api("GET", `/v1/dashboard/rooms?${query}`);
  const body = $("#rooms-table tbody");
  body.replaceChildren();
  for (const room of page.rooms) {
    const row = document.createElement("tr");
    row.className = "clickable";
    row.dataset.roomId = room.room_id;
    row.append(
      cell(room.room_id),
      cell(room.room_type),
      cell(`${room.players}/${room.max_players}`, "num"),
      cell(room.reserved, "num"),
      cell(micros(room.ticks.tick_p99_us), "num"),
      cell(room.ticks.bytes_per_tick, "num"),
      cell(JSON.stringify(room.state)),
    );
    row.addEventListener("click", () => openRoom(room.room_id));
    body.append(row);
  }
  if (page.rooms.length === 0) {
    const row = document.createElement("tr");
    row.append(cell("no rooms"));
    body.append(row);
  }
  view.nextCursor = page.next_cursor;
  $("#rooms-next").disabled = !page.next_cursor;
  $("#rooms-prev").disabled = view.cursors.length <= 1;
  $("#rooms-page").textContent = `page ${view.cursors.length}`;
}

function resetPaging() {
  view.cursors = [null];
  refreshRooms().catch(handleError);
}

// ---- one room -----------------------------------------------------------------------------

function openRoom(roomId) {
  view.roomId = roomId;
  location.hash = `room=${encodeURIComponent(roomId)}`;
  $("#room-detail").hidden = false;
  $("#rooms-section").hidden = true;
  refreshRoom().catch(handleError);
}

function closeRoom() {
  view.roomId = null;
  history.replaceState(null, "", location.pathname);
  $("#room-detail").hidden = true;
  $("#rooms-section").hidden = false;
  refreshRooms().catch(handleError);
}

async function refreshRoom() {
  const roomId = view.roomId;
  let room;
  try {
    room = await api("GET", `/v1/dashboard/rooms/${encodeURIComponent(roomId)}`);
  } catch (error) {
    if (error instanceof AuthError) throw error;
    $("#room-state").textContent = `This room is gone: ${error.message}`;
    $("#seats tbody").replaceChildren();
    return;
  }
  if (roomId !== view.roomId) return;
  $("#room-id").textContent = room.room.room_id;
  $("#room-type").textContent = `${room.room_type} · ${room.tick_hz} Hz · on ${room.node}`;
  const ticks = room.ticks;
  const stats = $("#room-ticks");
  stats.replaceChildren();
  for (const [name, value] of [
    ["tick", room.tick], ["epoch", room.epoch], ["players", `${room.room.players}/${room.room.max_players}`],
    ["tick p50", micros(ticks.tick_p50_us)], ["tick p99", micros(ticks.tick_p99_us)],
    ["tick max", micros(ticks.tick_max_us)], ["bytes/tick", ticks.bytes_per_tick],
    ["ticks sampled", ticks.ticks],
  ]) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    stats.append(dt, dd);
  }
  const body = $("#seats tbody");
  body.replaceChildren();
  for (const seat of room.seats) {
    const row = document.createElement("tr");
    row.dataset.playerId = String(seat.player);
    const kick = document.createElement("button");
    kick.type = "button";
    kick.className = "kick danger";
    kick.textContent = "Kick";
    kick.addEventListener("click", () => kickPlayer(roomId, seat.player));
    const actions = document.createElement("td");
    actions.append(kick);
    row.append(
      cell(seat.player),
      cell(seat.status, seat.status === "connected" ? "good" : "warn"),
      cell(seat.session),
      cell(seat.protocol),
      cell(seat.flow, seat.flow === "paused" ? "bad" : ""),
      cell(seat.acked_tick, "num"),
      cell(seat.sent_tick, "num"),
      cell(seat.queued_bytes, "num"),
      actions,
    );
    body.append(row);
  }
  $("#room-state").textContent = room.state
    ? JSON.stringify(room.state, null, 2)
    : `(state not shown: ${room.state_omitted})`;
}

async function kickPlayer(roomId, player) {
  if (!confirm(`Kick player ${player} from room ${roomId}? Their connection closes with 4016 (kicked).`)) return;
  try {
    await api("DELETE", `/v1/rooms/${encodeURIComponent(roomId)}/players/${player}`);
    status(`Kicked player ${player} from ${roomId}.`);
    await refreshRoom();
  } catch (error) {
    handleError(error);
  }
}

async function drainNode() {
  if (!confirm("Drain this node? Every room moves, with its state, to its next owner (members resume there); the node takes no new rooms until restarted.")) return;
  try {
    const answer = await api("POST", "/v1/admin/drain");
    status(`Draining: ${answer.rooms} rooms to move.`);
  } catch (error) {
    handleError(error);
  }
}

async function disposeRoom() {
  const roomId = view.roomId;
  if (!roomId || !confirm(`Dispose room ${roomId}? Every member is closed with 4009 (room_disposed).`)) return;
  try {
    await api("DELETE", `/v1/rooms/${encodeURIComponent(roomId)}`);
    status(`Disposed room ${roomId}.`);
    closeRoom();
  } catch (error) {
    handleError(error);
  }
}

// ---- wiring -------------------------------------------------------------------------------

function stopLive() {
  if (view.streamAbort) view.streamAbort.abort();
  clearInterval(view.timer);
  view.timer = null;
}

async function start() {
  try {
    renderOverview(await api("GET", "/v1/dashboard/overview"));
  } catch (error) {
    if (error.code === "not_found") {
      // A node with `operator.listen` serves operator routes on that listener only.
      return signOut("This address does not serve operator routes: open /dashboard on the node's operator listener.");
    }
    return handleError(error);
  }
  $("#auth-error").hidden = true;
  $("#token-form").hidden = true;
  $("#dashboard").hidden = false;
  $("#sign-out").hidden = false;
  const match = /^#room=(.+)$/.exec(location.hash);
  if (match) openRoom(decodeURIComponent(match[1]));
  else refreshRooms().catch(handleError);
  streamOverview();
  view.timer = setInterval(() => {
    const refresh = view.roomId ? refreshRoom() : refreshRooms();
    refresh.catch(handleError);
  }, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
    $("#token").value = "";
    start();
  });
  $("#sign-out").addEventListener("click", () => signOut(""));
  $("#room-close").addEventListener("click", closeRoom);
  $("#dispose-room").addEventListener("click", disposeRoom);
  $("#drain-node").addEventListener("click", drainNode);
  $("#room-sort").addEventListener("change", (event) => {
    view.sort = event.target.value;
    resetPaging();
  });
  $("#room-filter").addEventListener("input", (event) => {
    view.filter = event.target.value.trim();
    resetPaging();
  });
  $("#room-type-filter").addEventListener("input", (event) => {
    view.roomType = event.target.value.trim();
    resetPaging();
  });
  $("#rooms-filter").addEventListener("submit", (event) => event.preventDefault());
  $("#rooms-next").addEventListener("click", () => {
    if (!view.nextCursor) return;
    view.cursors.push(view.nextCursor);
    refreshRooms().catch(handleError);
  });
  $("#rooms-prev").addEventListener("click", () => {
    if (view.cursors.length > 1) view.cursors.pop();
    refreshRooms().catch(handleError);
  });
  if (token()) start();
  else signOut("");
});
