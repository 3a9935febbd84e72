// The client's typed code lists against PROTOCOL.md itself: a code added to the spec's tables
// (§2 lobby errors, §12 error codes, §13 close codes) fails here until the client knows it.
// Also the reconnect timing of §20.5 and which closes keep the seat (§5, §20.2).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { CLOSE_CODES, ERROR_CODES, LOBBY_ERROR_CODES, backoffBound, backoffDelay, closeKeepsSeat, isResumeRefusal } from "../src/index.js";

const SPEC = readFileSync(resolve(fileURLToPath(import.meta.url), "../../../../../protocol/PROTOCOL.md"), "utf8");

/** The body of the section whose heading starts with `heading`, up to the next `## `. */
function section(heading: string): string {
  const start = SPEC.indexOf(`\n${heading}`);
  assert.ok(start >= 0, `section ${heading} in PROTOCOL.md`);
  const end = SPEC.indexOf("\n## ", start + 1);
  return SPEC.slice(start, end < 0 ? undefined : end);
}

/** The distinct backticked words in the given column of a Markdown table's rows. */
function column(text: string, index: number): string[] {
  const words = new Set<string>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("|") || line.startsWith("| ---")) continue;
    const cell = line.split("|")[index + 1]?.trim() ?? "";
    const match = /^`([a-z_0-9]+)`$/.exec(cell) ?? /^([0-9]{4})$/.exec(cell);
    if (match) words.add(match[1] as string);
  }
  return [...words].sort();
}

describe("codes match PROTOCOL.md", () => {
  it("knows every §12 error code", () => {
    assert.deepEqual([...ERROR_CODES].sort(), column(section("## 12. Error codes"), 0));
  });

  it("knows every §13 close code with its reason word", () => {
    const table = section("## 13. WebSocket close codes");
    const rows = table.split("\n").filter((line) => /^\| [0-9]{4} \|/.test(line));
    const fromSpec = Object.fromEntries(rows.map((line) => {
      const cells = line.split("|").map((cell) => cell.trim());
      return [cells[1], (cells[2] as string).replace(/`/g, "")];
    }));
    assert.deepEqual(Object.fromEntries(Object.entries(CLOSE_CODES).map(([code, reason]) => [code, reason])), fromSpec);
  });

  it("knows every §2 lobby error code", () => {
    const errors = section("## 2. Lobby HTTP API");
    const header = "| status | `code` | when |";
    const table = errors.slice(errors.indexOf(header) + header.length, errors.indexOf("In a single-node deployment"));
    assert.deepEqual([...LOBBY_ERROR_CODES].sort(), column(table, 1));
  });
});

describe("resume rules", () => {
  it("backs off with full jitter: 250 ms doubling up to 5 s (§20.5)", () => {
    const backoff = { baseDelayMs: 250, maxDelayMs: 5000 };
    assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map((attempt) => backoffBound(attempt, backoff)), [250, 500, 1000, 2000, 4000, 5000, 5000]);
    assert.equal(backoffDelay(3, backoff, () => 0), 0);
    assert.equal(backoffDelay(3, backoff, () => 0.5), 1000);
  });

  it("resumes after closes that keep the seat, not after the others (§20.2)", () => {
    const keeps = [1001, 1005, 1006, 4007, 4008];
    const ends = [1000, 4000, 4001, 4002, 4003, 4004, 4005, 4006, 4009, 4010, 4011, 4012, 4013, 4014, 4015, 4016, 4099];
    assert.deepEqual(keeps.filter((code) => !closeKeepsSeat(code)), []);
    assert.deepEqual(ends.filter((code) => closeKeepsSeat(code)), []);
    assert.deepEqual(ERROR_CODES.filter(isResumeRefusal), ["resume_invalid", "resume_wrong_room", "resume_epoch_changed", "resume_expired", "resume_used"]);
  });
});
