// A minimal Ludus player that runs inside a browser page (injected by the tests), for the
// dashboard tests that need seated players before or without the play page: it says `hello`
// in protocol 1 (MessagePack, PROTOCOL.md §4 and §6), acknowledges every tick as flow control
// requires (§9), and records how its socket closed. Only the MessagePack it needs: maps,
// arrays, strings, integers, floats, booleans, nil and binary.
//
// In the page: `await window.ludusTestPlayer.join(seat)` with a seat from /v1/matchmake;
// `window.ludusTestPlayer.players[playerId]` then holds `{ tick, closeCode, closeReason }`.
(() => {
  "use strict";

  function encode(value, out) {
    if (value === null || value === undefined) out.push(0xc0);
    else if (value === true) out.push(0xc3);
    else if (value === false) out.push(0xc2);
    else if (typeof value === "number" && Number.isInteger(value) && value >= 0) {
      if (value < 0x80) out.push(value);
      else if (value < 0x100) out.push(0xcc, value);
      else if (value < 0x10000) out.push(0xcd, value >> 8, value & 0xff);
      else if (value < 0x100000000) out.push(0xce, ...bytesOf(value, 4));
      else out.push(0xcf, ...bytesOf(value, 8));
    } else if (typeof value === "string") {
      const bytes = new TextEncoder().encode(value);
      if (bytes.length < 32) out.push(0xa0 | bytes.length);
      else if (bytes.length < 0x100) out.push(0xd9, bytes.length);
      else out.push(0xda, bytes.length >> 8, bytes.length & 0xff);
      out.push(...bytes);
    } else if (typeof value === "object" && !Array.isArray(value)) {
      const keys = Object.keys(value);
      out.push(0x80 | keys.length);
      for (const key of keys) {
        encode(key, out);
        encode(value[key], out);
      }
    } else {
      throw new Error(`test player cannot encode ${JSON.stringify(value)}`);
    }
    return out;
  }

  function bytesOf(value, count) {
    const bytes = [];
    let rest = BigInt(value);
    for (let i = 0; i < count; i += 1) {
      bytes.unshift(Number(rest & 0xffn));
      rest >>= 8n;
    }
    return bytes;
  }

  function decode(view, state) {
    const byte = view.getUint8(state.at++);
    const take = (n) => {
      const at = state.at;
      state.at += n;
      return at;
    };
    const str = (n) => new TextDecoder().decode(new Uint8Array(view.buffer, view.byteOffset + take(n), n));
    const bin = (n) => new Uint8Array(view.buffer, view.byteOffset + take(n), n);
    const array = (n) => Array.from({ length: n }, () => decode(view, state));
    const map = (n) => {
      const object = {};
      for (let i = 0; i < n; i += 1) {
        const key = decode(view, state);
        object[key] = decode(view, state);
      }
      return object;
    };
    if (byte < 0x80) return byte;
    if (byte >= 0xe0) return byte - 0x100;
    if ((byte & 0xf0) === 0x80) return map(byte & 0x0f);
    if ((byte & 0xf0) === 0x90) return array(byte & 0x0f);
    if ((byte & 0xe0) === 0xa0) return str(byte & 0x1f);
    switch (byte) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(view.getUint8(take(1)));
      case 0xc5: return bin(view.getUint16(take(2)));
      case 0xca: return view.getFloat32(take(4));
      case 0xcb: return view.getFloat64(take(8));
      case 0xcc: return view.getUint8(take(1));
      case 0xcd: return view.getUint16(take(2));
      case 0xce: return view.getUint32(take(4));
      case 0xcf: return Number(view.getBigUint64(take(8)));
      case 0xd0: return view.getInt8(take(1));
      case 0xd1: return view.getInt16(take(2));
      case 0xd2: return view.getInt32(take(4));
      case 0xd3: return Number(view.getBigInt64(take(8)));
      case 0xd9: return str(view.getUint8(take(1)));
      case 0xda: return str(view.getUint16(take(2)));
      case 0xdb: return str(view.getUint32(take(4)));
      case 0xdc: return array(view.getUint16(take(2)));
      case 0xdd: return array(view.getUint32(take(4)));
      case 0xde: return map(view.getUint16(take(2)));
      case 0xdf: return map(view.getUint32(take(4)));
      default: throw new Error(`test player cannot decode 0x${byte.toString(16)}`);
    }
  }

  const players = {};

  function join(seat) {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(seat.ws_url);
      socket.binaryType = "arraybuffer";
      const me = { tick: 0, closeCode: null, closeReason: null, welcomed: false };
      players[seat.player_id] = me;
      socket.onopen = () => {
        socket.send(new Uint8Array(encode({ hello: { protocol: 1, token: seat.token } }, [])));
      };
      socket.onmessage = (message) => {
        const batch = decode(new DataView(message.data), { at: 0 });
        for (const item of batch) {
          const tick = (item.snapshot || item.delta || {}).tick;
          if (item.welcome) {
            me.welcomed = true;
            resolve(seat.player_id);
          }
          if (tick !== undefined) me.tick = tick;
        }
        socket.send(new Uint8Array(encode({ ack: { tick: me.tick } }, [])));
      };
      socket.onclose = (event) => {
        me.closeCode = event.code;
        me.closeReason = event.reason;
        if (!me.welcomed) reject(new Error(`closed before welcome: ${event.code} ${event.reason}`));
      };
    });
  }

  window.ludusTestPlayer = { join, players };
})();
