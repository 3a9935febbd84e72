// The mirror and codec against the frames PROTOCOL.md prints (§16, §19.7), and against bad
// input: every malformed case is a typed error or a "not applied", never an exception escaping.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encode } from "@msgpack/msgpack";
import { BitReader, Mirror, ProtocolError, decodeServerFrame, encodeClientMessage, type Delta, type ServerMessage, type Snapshot } from "../src/index.js";

function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g)?.map((pair) => parseInt(pair, 16)) ?? []);
}

function only<T extends ServerMessage["type"]>(frame: ServerMessage[], type: T): Extract<ServerMessage, { type: T }>["body"] {
  assert.equal(frame.length, 1);
  const message = frame[0] as ServerMessage;
  assert.equal(message.type, type);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return (message as any).body;
}

const QUANTIZED = ["quantized", 0.0, 0.05, 20000];
const ARENA_SCHEMA = [
  ["player", [["player", "uint"], ["name", "str"], ["x", ...QUANTIZED], ["y", ...QUANTIZED], ["score", "uint"]]],
  ["coin", [["x", ...QUANTIZED], ["y", ...QUANTIZED]]],
];

/** §19.7 `[s]`: the packed bytes as printed, in a frame encoded around them. */
function compactSnapshotFrame(): Uint8Array {
  return encode([{ s: [9, 100, ARENA_SCHEMA, hex("1021603200c80fe94d85b9b8078019001a50")] }]);
}

/** §19.7 `[d]`, byte for byte as printed (48 bytes). */
const COMPACT_DELTA_FRAME = hex(`
  91 81 a1 64 92 c4 0f dc111000dc4a0280c81969c409c400
  83 a4 74797065 a4 636f696e a6 706c61796572 2a a5 73636f7265 01`);

/** §16 as JSON (the same state as the §19.7 frames). */
const SNAPSHOT: Snapshot = {
  epoch: 9,
  tick: 100,
  entities: [
    { id: 0, kind: "coin", fields: { x: 10, y: 20 } },
    { id: 5, kind: "player", fields: { name: "ann", player: 42, score: 0, x: 12, y: 20 } },
  ],
  acks: [{ player: 42, seq: 0 }],
};
const DELTA: Delta = {
  epoch: 9,
  tick: 101,
  base_tick: 100,
  upserts: [
    { id: 5, fields: { score: 1, x: 10 } },
    { id: 6, kind: "coin", fields: { x: 500, y: 250 } },
  ],
  removed: [0],
  left: [],
  acks: [{ player: 42, seq: 7 }],
  events: [{ type: "coin", player: 42, score: 1 }],
};

describe("codec", () => {
  it("encodes hello and input byte for byte as §16 prints them", () => {
    assert.deepEqual(
      encodeClientMessage({ hello: { protocol: 1, token: "tok" } }),
      hex("81 a5 68656c6c6f 82 a8 70726f746f636f6c 01 a5 746f6b656e a3 746f6b"),
    );
    assert.deepEqual(
      encodeClientMessage({ input: { seq: 7, ack_tick: 100, payload: { dx: 1.0, dy: -0.5 } } }),
      // @msgpack/msgpack writes 1.0 as the integer 1: §15 allows integers or floats of any width.
      hex("81 a5 696e707574 83 a3 736571 07 a8 61636b5f7469636b 64 a7 7061796c6f6164 82 a2 6478 01 a2 6479 cb bfe0000000000000"),
    );
  });

  it("decodes the §16 welcome and snapshot frame", () => {
    const frame = decodeServerFrame(
      hex(`92 81 a7 77656c636f6d65 87 a7 73657373696f6e 03 a6 706c61796572 2a a4 726f6f6d a3 722d31
        a9 726f6f6d5f74797065 a5 6172656e61 a5 65706f6368 09 a7 7469636b5f687a 14 a6 77696e646f77 28
        81 a8 736e617073686f74 84 a5 65706f6368 09 a4 7469636b 64 a8 656e746974696573 92
        83 a2 6964 00 a4 6b696e64 a4 636f696e a6 6669656c6473 82 a1 78 ca 41200000 a1 79 ca 41a00000
        83 a2 6964 05 a4 6b696e64 a6 706c61796572 a6 6669656c6473 85 a4 6e616d65 a3 616e6e
        a6 706c61796572 2a a5 73636f7265 00 a1 78 ca 41400000 a1 79 ca 41a00000
        a4 61636b73 91 82 a6 706c61796572 2a a3 736571 00`),
    );
    assert.equal(frame.length, 2);
    const [welcome, snapshot] = frame;
    assert.deepEqual(welcome, {
      type: "welcome",
      body: { session: 3, player: 42, room: "r-1", room_type: "arena", epoch: 9, tick_hz: 20, window: 40, resumed: false },
    });
    assert.deepEqual(snapshot, { type: "snapshot", body: SNAPSHOT });
  });

  it("reads ticks_lost from the welcome of a resume into a restored room (§20.6)", () => {
    const body = { session: 4, player: 42, room: "r-1", room_type: "arena", epoch: 10, tick_hz: 20, window: 40 };
    const [restored] = decodeServerFrame(encode([{ welcome: { ...body, resumed: true, ticks_lost: 3 } }]));
    assert.deepEqual(restored, { type: "welcome", body: { ...body, resumed: true, ticks_lost: 3 } });
    assert.throws(
      () => decodeServerFrame(encode([{ welcome: { ...body, resumed: true, ticks_lost: -1 } }])),
      ProtocolError,
    );
  });

  it("turns bad frames into ProtocolError of the right kind", () => {
    const cases: [Uint8Array, string][] = [
      [hex("c1"), "msgpack"], // never used
      [hex("92 01"), "msgpack"], // truncated
      [encode({ welcome: {} }), "shape"], // not an array
      [encode([{ welcome: { session: 1 } }]), "shape"], // fields missing
      [encode([{ delta: { epoch: -1 } }]), "shape"],
      [encode([{ s: [1, 2, [], "not bin"] }]), "shape"],
      [encode([{ s: [1, 2, [["k", [["f", "float128"]]]], new Uint8Array()] }]), "packed"],
      [encode([{ a: 1, b: 2 }]), "shape"],
    ];
    for (const [bytes, kind] of cases) {
      assert.throws(() => decodeServerFrame(bytes), (error: unknown) => error instanceof ProtocolError && error.kind === kind);
    }
  });

  it("keeps unknown messages and unknown keys harmless", () => {
    const frame = decodeServerFrame(encode([{ future: { x: 1 } }, { pong: { nonce: 5, tick: 3, extra: true } }]));
    assert.deepEqual(frame, [
      { type: "unknown", name: "future", body: { x: 1 } },
      { type: "pong", body: { nonce: 5, tick: 3 } },
    ]);
  });
});

describe("bit reader (§19.3)", () => {
  it("reads varu as §19.3 spells 101", () => {
    // 1101 1100 0001 then zero padding.
    const reader = new BitReader(hex("dc 10"));
    assert.equal(reader.varu(), 101);
    reader.finish();
  });

  it("refuses non-zero padding, trailing bytes, and over-long varu", () => {
    assert.throws(() => new BitReader(hex("01")).finish(), ProtocolError);
    assert.throws(() => new BitReader(hex("00 00")).finish(), ProtocolError);
    assert.throws(() => new BitReader(new Uint8Array(12).fill(0xff)).varu(), ProtocolError);
    assert.throws(() => new BitReader(hex("88")).varu(), ProtocolError); // ends inside a group chain
  });

  it("reads values of 51 bits and more exactly up to 2^53", () => {
    // varu of 2^53 - 1: 53 one bits = 18 groups (17 full ones, then 2 bits).
    const value = 2n ** 53n - 1n;
    const bits: number[] = [];
    for (let group = 0; group < 18; group += 1) {
      const chunk = Number((value >> BigInt(3 * group)) & 7n);
      bits.push(group < 17 ? 1 : 0, (chunk >> 2) & 1, (chunk >> 1) & 1, chunk & 1);
    }
    while (bits.length % 8 !== 0) bits.push(0);
    const bytes = new Uint8Array(bits.length / 8);
    bits.forEach((bit, index) => {
      bytes[index >> 3] = (bytes[index >> 3] as number) | (bit << (7 - (index & 7)));
    });
    assert.equal(new BitReader(bytes).varu(), Number.MAX_SAFE_INTEGER);
  });
});

describe("mirror", () => {
  it("applies the §16 snapshot and delta (version 1)", () => {
    const mirror = new Mirror();
    mirror.loadSnapshot(SNAPSHOT);
    const outcome = mirror.applyDelta(DELTA);
    assert.deepEqual(outcome, { applied: true, tick: 101, events: DELTA.events });
    assert.deepEqual(mirror.content(), {
      epoch: 9,
      tick: 101,
      entities: [
        { id: 5, kind: "player", fields: { name: "ann", player: 42, score: 1, x: 10, y: 20 } },
        { id: 6, kind: "coin", fields: { x: 500, y: 250 } },
      ],
      acks: [{ player: 42, seq: 7 }],
    });
  });

  it("decodes the §19.7 s and d to the same state as version 1", () => {
    const version1 = new Mirror();
    version1.loadSnapshot(SNAPSHOT);
    const version2 = new Mirror();
    version2.loadCompactSnapshot(only(decodeServerFrame(compactSnapshotFrame()), "s"));
    assert.deepEqual(version2.content(), version1.content());
    assert.deepEqual(version2.schema.map((kind) => kind.name), ["player", "coin"]);

    const frame = decodeServerFrame(COMPACT_DELTA_FRAME);
    const outcome = version2.applyCompactDelta(only(frame, "d"));
    assert.deepEqual(outcome, { applied: true, tick: 101, events: [{ type: "coin", player: 42, score: 1 }] });
    version1.applyDelta(DELTA);
    assert.deepEqual(version2.content(), version1.content());
  });

  it("refuses a gap, another epoch and an update of an unknown entity, leaving the state untouched", () => {
    const mirror = new Mirror();
    assert.equal(mirror.applyDelta(DELTA).applied, false); // no snapshot yet
    mirror.loadSnapshot(SNAPSHOT);
    const before = mirror.content();
    assert.deepEqual(mirror.applyDelta({ ...DELTA, base_tick: 99 }), { applied: false, reason: "gap", tick: 100, base: 99 });
    assert.deepEqual(mirror.applyDelta({ ...DELTA, epoch: 8 }), { applied: false, reason: "epoch", expected: 9, got: 8 });
    const ghost = { ...DELTA, upserts: [{ id: 5, fields: { x: 1 } }, { id: 77, fields: { x: 1 } }] };
    assert.deepEqual(mirror.applyDelta(ghost), { applied: false, reason: "unknown_entity", id: 77 });
    const removedThenSet = { ...DELTA, removed: [5], upserts: [{ id: 5, fields: { x: 1 } }] };
    assert.equal(mirror.applyDelta(removedThenSet).applied, false);
    assert.deepEqual(mirror.content(), before);
  });

  it("drops the acks of players in `left` before applying `acks` (§7 step 6)", () => {
    const mirror = new Mirror();
    mirror.loadSnapshot({ ...SNAPSHOT, acks: [{ player: 42, seq: 3 }, { player: 43, seq: 9 }] });
    mirror.applyDelta({ ...DELTA, upserts: [], removed: [], left: [42, 43], acks: [{ player: 42, seq: 0 }], events: [] });
    assert.deepEqual(mirror.content().acks, [{ player: 42, seq: 0 }]);
  });

  it("reports a truncated or corrupted d as malformed, and changes nothing", () => {
    const mirror = new Mirror();
    mirror.loadCompactSnapshot(only(decodeServerFrame(compactSnapshotFrame()), "s"));
    const before = mirror.content();
    const packed = hex("dc111000dc4a0280c81969c409c400");
    for (const broken of [packed.slice(0, 9), Uint8Array.from([...packed, 0]), Uint8Array.from(packed, (byte, index) => (index === 14 ? 1 : byte))]) {
      const outcome = mirror.applyCompactDelta({ packed: broken, events: [] });
      assert.equal(outcome.applied, false);
      assert.equal(outcome.applied === false && outcome.reason, "malformed");
    }
    // An update (not "new") of entity 5 after removing it: malformed, resync.
    assert.deepEqual(mirror.content(), before);
  });

  it("reports a d whose base is not the mirror's tick as a gap", () => {
    const mirror = new Mirror();
    mirror.loadCompactSnapshot(only(decodeServerFrame(compactSnapshotFrame()), "s"));
    mirror.tick = 99;
    const outcome = mirror.applyCompactDelta(only(decodeServerFrame(COMPACT_DELTA_FRAME), "d"));
    assert.deepEqual(outcome, { applied: false, reason: "gap", tick: 99, base: 100 });
  });
});
