// The bit stream of protocol version 2 (§19.3): MSB first, varu in 4-bit groups (a continuation
// bit then 3 value bits, least significant group first), byte strings, ascending id lists.
// Every malformed case of §19.3 throws a `ProtocolError` of kind "packed".

import { ProtocolError } from "./errors.js";

const MAX_VARU_GROUPS = 22;
const U64_MAX = (1n << 64n) - 1n;
const utf8 = new TextDecoder("utf-8", { fatal: true });

export class BitReader {
  private position = 0; // in bits
  private readonly length: number; // in bits

  constructor(private readonly bytes: Uint8Array) {
    this.length = bytes.length * 8;
  }

  /** One bit. */
  bit(): boolean {
    if (this.position >= this.length) throw malformed("bit stream ends early");
    const byte = this.bytes[this.position >> 3] as number;
    const value = (byte >> (7 - (this.position & 7))) & 1;
    this.position += 1;
    return value === 1;
  }

  /** `count` bits, most significant first, as a number (count ≤ 53 stays exact). */
  bits(count: number): number {
    if (count > 53) {
      const big = this.bigBits(count);
      return Number(big);
    }
    let value = 0;
    for (let index = 0; index < count; index += 1) value = value * 2 + (this.bit() ? 1 : 0);
    return value;
  }

  private bigBits(count: number): bigint {
    let value = 0n;
    for (let index = 0; index < count; index += 1) value = (value << 1n) | (this.bit() ? 1n : 0n);
    return value;
  }

  /** A `varu` as a bigint (exact up to 2^64 − 1). */
  varuBig(): bigint {
    let value = 0n;
    for (let group = 0; group < MAX_VARU_GROUPS; group += 1) {
      const more = this.bit();
      value |= BigInt(this.bits(3)) << BigInt(3 * group);
      if (!more) {
        if (value > U64_MAX) throw malformed("varu above 2^64 - 1");
        return value;
      }
    }
    throw malformed(`varu longer than ${MAX_VARU_GROUPS} groups`);
  }

  /** A `varu` as a number: exact below 2^53, which every id, tick and seq of Ludus is. */
  varu(): number {
    // Fast path: up to 17 groups (51 bits) fit a double exactly.
    let value = 0;
    let scale = 1;
    for (let group = 0; group < 17; group += 1) {
      const more = this.bit();
      value += this.bits(3) * scale;
      if (!more) return value;
      scale *= 8;
    }
    // Rare: a value of 51 bits or more. Finish in bigint, then round like MessagePack does.
    let big = BigInt(value);
    for (let group = 17; group < MAX_VARU_GROUPS; group += 1) {
      const more = this.bit();
      big |= BigInt(this.bits(3)) << BigInt(3 * group);
      if (!more) {
        if (big > U64_MAX) throw malformed("varu above 2^64 - 1");
        return Number(big);
      }
    }
    throw malformed(`varu longer than ${MAX_VARU_GROUPS} groups`);
  }

  /** A byte string: its length as a varu, then each byte as 8 bits (not aligned). */
  byteString(): Uint8Array {
    const length = this.varu();
    if (length * 8 > this.length - this.position) throw malformed("byte string runs past the end");
    const out = new Uint8Array(length);
    for (let index = 0; index < length; index += 1) out[index] = this.bits(8);
    return out;
  }

  /** A byte string holding UTF-8. */
  string(): string {
    try {
      return utf8.decode(this.byteString());
    } catch (error) {
      if (error instanceof ProtocolError) throw error;
      throw malformed("string is not valid UTF-8");
    }
  }

  /** An ascending list of ids: count, first id, then `id − previous − 1` for each next one. */
  ascending(): number[] {
    const count = this.varu();
    // Every element costs at least 4 bits: a count beyond what is left is malformed, not a
    // reason to allocate.
    if (count * 4 > this.length - this.position) throw malformed("id list runs past the end");
    const ids: number[] = [];
    let previous = -1;
    for (let index = 0; index < count; index += 1) {
      const id = index === 0 ? this.varu() : previous + 1 + this.varu();
      ids.push(id);
      previous = id;
    }
    return ids;
  }

  /** The stream must end here, with zero padding to the byte boundary (§19.3). */
  finish(): void {
    const remaining = this.length - this.position;
    if (remaining >= 8) throw malformed(`${remaining} bits left after the end`);
    for (let index = 0; index < remaining; index += 1) {
      if (this.bit()) throw malformed("non-zero padding");
    }
  }
}

export function malformed(message: string): ProtocolError {
  return new ProtocolError("packed", message);
}
