// Harness for the browser tests: a real `ludus-server` process on a loopback port it chose
// itself, and a headless Chromium driven by playwright-core.
//
// The server binds 127.0.0.1:0 and logs the address it got ("ludus listening address=..."),
// which the harness reads from its output: no port is probed and bound later. Every wait here
// is bounded; a server or browser that does not answer fails the test instead of hanging it.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, "..", "..", "..");
export const ARTIFACTS = join(REPO, "tests", "browser", "artifacts");

/** The operator token the test servers accept. */
export const OPERATOR_TOKEN = "ludus-browser-test-operator-token-0123456789";

/** How long any single wait may take. */
export const WAIT_MS = 15_000;

const SERVER_BIN = process.env.LUDUS_SERVER_BIN || join(REPO, "target", "debug", "ludus-server");
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

/** Rejects after `ms` with `what` unless `promise` settles first. */
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Starts `ludus-server` on 127.0.0.1:0 with a known operator token; resolves to
 * `{ base, stop(), logs() }` once it listens.
 */
export async function startServer() {
  if (!existsSync(SERVER_BIN)) {
    throw new Error(`no server binary at ${SERVER_BIN}: run \`cargo build -p ludus-server\` or set LUDUS_SERVER_BIN`);
  }
  const child = spawn(SERVER_BIN, ["--listen", "127.0.0.1:0"], {
    env: {
      PATH: process.env.PATH,
      RUST_LOG: "info",
      NO_COLOR: "1",
      LUDUS__OPERATOR__TOKENS: JSON.stringify([OPERATOR_TOKEN]),
      LUDUS__SERVER__SECRET: "ludus-browser-test-secret-0123456789",
      LUDUS__SERVER__WORKERS: "2",
      LUDUS__SERVER__ROOM_THREADS: "2",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let logs = "";
  const address = new Promise((resolveAddress, reject) => {
    // The log goes to stdout, start-up notices to stderr: both are kept for failures.
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        logs += chunk;
        // Escape sequences stripped in case the log is coloured anyway.
        const plain = logs.replace(/\x1b\[[0-9;]*m/g, "");
        const match = /ludus listening address=(127\.0\.0\.1:\d+)/.exec(plain);
        if (match) resolveAddress(match[1]);
      });
    }
    child.on("exit", (code) => reject(new Error(`ludus-server exited (${code}) before listening:\n${logs}`)));
    child.on("error", reject);
  });
  const bound = await within(WAIT_MS, "ludus-server to listen", address);
  const exited = new Promise((resolveExit) => child.on("exit", resolveExit));
  return {
    base: `http://${bound}`,
    logs: () => logs,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      try {
        await within(WAIT_MS, "ludus-server to shut down", exited);
      } catch {
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
}

/** A headless Chromium (Debian's package). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM_BIN,
    headless: true,
    // Root in a container has no user namespace for Chromium's sandbox.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
    timeout: WAIT_MS,
  });
}

/** A JSON request to the server, with the operator token unless `token` says otherwise. */
export async function api(base, method, path, { token = OPERATOR_TOKEN, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await within(WAIT_MS, `${method} ${path}`, fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  }));
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, json, text };
}

/** Saves a full-page screenshot under tests/browser/artifacts/ and returns its path. */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
