// Test harness: a real `ludus-server` process on 127.0.0.1 port 0, and bounded waits.
//
// The binary is `$LUDUS_SERVER_BIN`, else `<repo root>/target/debug/ludus-server`. The server
// binds port 0 itself (no port is guessed) and logs `ludus listening address=...` (stdout);
// the harness reads the address from that line. Its operator token is set in the config, so the
// tests can call the operator routes.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer, connect } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { LobbyClient, type RoomSession, type SessionEvents, type WebSocketConstructor, type WebSocketLike } from "../src/index.js";

/** clients/typescript/build/test/harness.js → the repository root. */
const REPO_ROOT = resolve(fileURLToPath(import.meta.url), "../../../../..");
export const SERVER_BIN = process.env["LUDUS_SERVER_BIN"] ?? join(REPO_ROOT, "target/debug/ludus-server");
export const OPERATOR_TOKEN = "ts-client-tests-operator-token-0123456789";
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export interface TestServer {
  httpUrl: string;
  lobby: LobbyClient;
  operator: LobbyClient;
  /** The end of what the server wrote (its log), for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts a server; `extraToml` is appended to the config file (whole sections). `listen` is
 * port 0 unless a cluster test must name the port in a region file beforehand.
 */
export async function startServer(extraToml = "", listen = "127.0.0.1:0"): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "ludus-ts-"));
  const configFile = join(dir, "ludus.toml");
  writeFileSync(
    configFile,
    [
      "[server]",
      `listen = "${listen}"`,
      "workers = 1",
      "room_threads = 1",
      "shutdown_timeout_ms = 1000",
      // Shared by the nodes of a test cluster, so that each accepts the others' seat tokens.
      'secret = "ts-client-tests-signing-secret"',
      "[operator]",
      `tokens = ["${OPERATOR_TOKEN}"]`,
      extraToml,
    ].join("\n"),
  );
  const child = spawn(SERVER_BIN, ["--config", configFile], {
    // The log goes to stdout (tracing's default writer); read both streams, and keep reading,
    // so that a full pipe never blocks the server.
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", RUST_LOG: "info" },
  });
  let stderr = "";
  const address = await new Promise<string>((resolveAddress, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`ludus-server did not report its address within ${START_TIMEOUT_MS} ms:\n${stderr}`));
    }, START_TIMEOUT_MS);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${SERVER_BIN} (set LUDUS_SERVER_BIN): ${error.message}`));
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`ludus-server exited with ${code} before listening:\n${stderr}`));
    });
    const onOutput = (chunk: string): void => {
      stderr = (stderr + chunk).slice(-200_000);
      const plain = stderr.replace(/\x1b\[[0-9;]*m/g, "");
      const match = /ludus listening address=(\S+)/.exec(plain);
      if (match !== null) {
        clearTimeout(timer);
        resolveAddress(match[1] as string);
      }
    };
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding("utf8");
      stream?.on("data", onOutput);
    }
  });
  child.removeAllListeners("exit");
  const httpUrl = `http://${address}`;
  return {
    httpUrl,
    lobby: new LobbyClient({ baseUrl: httpUrl }),
    operator: new LobbyClient({ baseUrl: httpUrl, operatorToken: OPERATOR_TOKEN }),
    log: () => stderr,
    stop: () => stopChild(child).finally(() => rmSync(dir, { recursive: true, force: true })),
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    child.once("exit", () => {
      clearTimeout(timer);
      resolveStop();
    });
    child.kill("SIGTERM");
  });
}

/**
 * The `ws` package's WebSocket, recording every socket it opens, so a test can cut one
 * abruptly (`terminate()`: the TCP connection is destroyed, no close frame).
 */
export function recordingWebSocket(): { WebSocket: WebSocketConstructor; sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  class Recording extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  return { WebSocket: Recording as unknown as new (url: string) => WebSocketLike, sockets };
}

export const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

/** Resolves once `condition()` is truthy (it may be async), polling every 10 ms; rejects after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  condition: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolveTick) => setTimeout(resolveTick, 10));
  }
}

/** Resolves with the first `name` event of `session` that passes `filter`; rejects after `timeoutMs`. */
export function nextEvent<K extends keyof SessionEvents & string>(
  session: RoomSession,
  name: K,
  filter: (value: SessionEvents[K]) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<SessionEvents[K]> {
  return new Promise((resolveEvent, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for a \`${name}\` event`));
    }, timeoutMs);
    const off = session.on(name, (value) => {
      if (!filter(value)) return;
      clearTimeout(timer);
      off();
      resolveEvent(value);
    });
  });
}

// --- a two-node cluster, for redirects ----------------------------------------------------------

export interface TestCluster {
  nodes: [TestServer, TestServer];
  stop(): Promise<void>;
}

/** `nats-server` from `$NATS_SERVER_BIN`, the PATH, or Debian's /usr/sbin; null if none. */
export function natsServerBinary(): string | null {
  for (const candidate of [process.env["NATS_SERVER_BIN"], "nats-server", "/usr/sbin/nats-server"]) {
    if (candidate === undefined) continue;
    const probe = spawnSync(candidate, ["--version"], { stdio: "ignore" });
    if (probe.status === 0) return candidate;
  }
  return null;
}

/**
 * A free loopback port. A region file names every node's URL before the nodes start, so here a
 * port must be chosen and released before the node binds it again: a race with any other
 * process taking it meanwhile, accepted for this one test (the single-node tests bind port 0).
 */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as { port: number }).port;
      probe.close(() => resolvePort(port));
    });
  });
}

async function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolveProbe) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolveProbe(true);
    });
    socket.once("error", () => resolveProbe(false));
  });
}

/** nats-server (JetStream) and two Ludus nodes of one region, both holding their lease. */
export async function startCluster(natsBinary: string): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), "ludus-ts-cluster-"));
  const [natsPort, port1, port2] = [await freePort(), await freePort(), await freePort()];
  const nats = spawn(natsBinary, ["-a", "127.0.0.1", "-p", String(natsPort), "-js", "-sd", join(dir, "store")], {
    stdio: "ignore",
  });
  const nodes: TestServer[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.stop()));
    await stopChild(nats);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor("nats-server to accept connections", () => portAccepts(natsPort).then((up) => up || null), 10_000);
    const regions = join(dir, "regions.toml");
    writeFileSync(
      regions,
      [
        "version = 1",
        'default_region = "local"',
        "[cluster]",
        `nats_url = "nats://127.0.0.1:${natsPort}"`,
        "heartbeat_interval_ms = 200",
        "node_timeout_ms = 2000",
        "[regions.local]",
        ...[port1, port2].flatMap((port, index) => [
          "[[nodes]]",
          `id = "n${index + 1}"`,
          'region = "local"',
          `ws_url = "ws://127.0.0.1:${port}"`,
          `http_url = "http://127.0.0.1:${port}"`,
        ]),
      ].join("\n"),
    );
    for (const [index, port] of [port1, port2].entries()) {
      // A short lease: a node's directory settles one lease and a fifth after it connects.
      const cluster = `[cluster]\nregions_file = "${regions}"\nnode_id = "n${index + 1}"\nlease_ms = 2000`;
      nodes.push(await startServer(`${cluster}\n[lobby]\nrooms_per_minute_per_ip = 6000`, `127.0.0.1:${port}`));
    }
    for (const node of nodes) {
      await waitFor(`${node.httpUrl} to hold its lease and settle its directory`, async () => {
        const health = (await (await fetch(`${node.httpUrl}/healthz`)).json()) as {
          cluster?: { lease_held?: boolean; directory_settled?: boolean };
        };
        return (health.cluster?.lease_held === true && health.cluster.directory_settled === true) || null;
      }, 20_000);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes: nodes as [TestServer, TestServer], stop };
}
