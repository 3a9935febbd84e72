var __defProp = Object.defineProperty;
var __defNormalProp = (obj, key, value) => key in obj ? __defProp(obj, key, { enumerable: true, configurable: true, writable: true, value }) : obj[key] = value;
var __publicField = (obj, key, value) => __defNormalProp(obj, typeof key !== "symbol" ? key + "" : key, value);

// ../typescript/dist/errors.js
var ProtocolError = class extends Error {
  constructor(kind, message) {
    super(message);
    __publicField(this, "kind");
    __publicField(this, "name", "ProtocolError");
    this.kind = kind;
  }
};
var LobbyError = class extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    __publicField(this, "status");
    __publicField(this, "code");
    __publicField(this, "retryAfter");
    __publicField(this, "name", "LobbyError");
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
};
var SessionError = class extends Error {
  constructor(end) {
    super(end.error ? `session refused: ${end.error.code} (${end.reason}${end.code === null ? "" : ` ${end.code}`})` : `session ended: ${end.reason}${end.code === null ? "" : ` (${end.code})`}`);
    __publicField(this, "end");
    __publicField(this, "name", "SessionError");
    this.end = end;
  }
};

// ../typescript/dist/lobby.js
var LobbyClient = class {
  constructor(options = {}) {
    __publicField(this, "options");
    __publicField(this, "baseUrl");
    __publicField(this, "fetchImpl");
    this.options = options;
    this.baseUrl = (options.baseUrl ?? "").replace(/\/+$/, "");
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function")
      throw new Error("no fetch: pass LobbyOptions.fetch");
    this.fetchImpl = fetchImpl.bind(globalThis);
  }
  /** Joins the fullest open room of `room_type`, or creates one; reserves a seat. */
  matchmake(request) {
    return this.request("POST", "/v1/matchmake", request, "player");
  }
  /** Reserves a seat in a given room. */
  seat(roomId, request = {}) {
    return this.request("POST", `/v1/rooms/${encodeURIComponent(roomId)}/seats`, request, "player");
  }
  /** Creates a room (no seat is reserved). */
  createRoom(request) {
    return this.request("POST", "/v1/rooms", request, "player");
  }
  /** One page of the room listing. */
  listRooms(query = {}) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== void 0)
        params.set(key, String(value));
    }
    const search = params.toString();
    return this.request("GET", `/v1/rooms${search ? `?${search}` : ""}`, void 0, "none");
  }
  /** Operator: ends a room; its members are closed with 4009 `room_disposed`. */
  deleteRoom(roomId) {
    return this.request("DELETE", `/v1/rooms/${encodeURIComponent(roomId)}`, void 0, "operator");
  }
  /** Operator: removes a player; its WebSocket is closed with 4016 `kicked`, its seat freed. */
  kickPlayer(roomId, playerId) {
    return this.request("DELETE", `/v1/rooms/${encodeURIComponent(roomId)}/players/${playerId}`, void 0, "operator");
  }
  /**
   * Operator: drains the node this client talks to (§2 `POST /v1/admin/drain`): its rooms move
   * with their state to other nodes (members get 4017 and resume there); it takes no new rooms.
   */
  drainNode() {
    return this.request("POST", "/v1/admin/drain", void 0, "operator");
  }
  /** Operator: queues `{"type": "message", payload}` into a coming delta's events. */
  sendMessage(roomId, payload) {
    return this.request("POST", `/v1/rooms/${encodeURIComponent(roomId)}/messages`, { payload }, "operator");
  }
  async request(method, path, body, credential) {
    const headers = {};
    if (body !== void 0)
      headers["content-type"] = "application/json";
    const token = credential === "player" ? this.options.playerToken : credential === "operator" ? this.options.operatorToken : void 0;
    if (token !== void 0)
      headers["authorization"] = `Bearer ${token}`;
    let answer;
    try {
      answer = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...body === void 0 ? {} : { body: JSON.stringify(body) }
      });
    } catch (error2) {
      throw new LobbyError(0, "network_error", `${method} ${path}: ${String(error2)}`);
    }
    let parsed;
    try {
      parsed = await answer.json();
    } catch {
      throw new LobbyError(answer.status, "invalid_answer", `${method} ${path}: answer ${answer.status} is not JSON`);
    }
    if (answer.ok)
      return parsed;
    const error = parsed?.error;
    const code = typeof error?.code === "string" ? error.code : "invalid_answer";
    const message = typeof error?.message === "string" ? error.message : `${method} ${path}: status ${answer.status}`;
    const header = Number(answer.headers.get("retry-after"));
    const retryAfter = typeof error?.retry_after === "number" ? error.retry_after : Number.isFinite(header) && header > 0 ? header : null;
    throw new LobbyError(answer.status, code, message, retryAfter);
  }
};

// ../typescript/dist/backoff.js
function backoffBound(attempt, backoff) {
  return Math.min(backoff.maxDelayMs, backoff.baseDelayMs * 2 ** attempt);
}
function backoffDelay(attempt, backoff, random) {
  return random() * backoffBound(attempt, backoff);
}

// ../typescript/node_modules/@msgpack/msgpack/dist.esm/utils/utf8.mjs
function utf8Count(str2) {
  const strLength = str2.length;
  let byteLength = 0;
  let pos = 0;
  while (pos < strLength) {
    let value = str2.charCodeAt(pos++);
    if ((value & 4294967168) === 0) {
      byteLength++;
      continue;
    } else if ((value & 4294965248) === 0) {
      byteLength += 2;
    } else {
      if (value >= 55296 && value <= 56319) {
        if (pos < strLength) {
          const extra = str2.charCodeAt(pos);
          if ((extra & 64512) === 56320) {
            ++pos;
            value = ((value & 1023) << 10) + (extra & 1023) + 65536;
          }
        }
      }
      if ((value & 4294901760) === 0) {
        byteLength += 3;
      } else {
        byteLength += 4;
      }
    }
  }
  return byteLength;
}
function utf8EncodeJs(str2, output, outputOffset) {
  const strLength = str2.length;
  let offset = outputOffset;
  let pos = 0;
  while (pos < strLength) {
    let value = str2.charCodeAt(pos++);
    if ((value & 4294967168) === 0) {
      output[offset++] = value;
      continue;
    } else if ((value & 4294965248) === 0) {
      output[offset++] = value >> 6 & 31 | 192;
    } else {
      if (value >= 55296 && value <= 56319) {
        if (pos < strLength) {
          const extra = str2.charCodeAt(pos);
          if ((extra & 64512) === 56320) {
            ++pos;
            value = ((value & 1023) << 10) + (extra & 1023) + 65536;
          }
        }
      }
      if ((value & 4294901760) === 0) {
        output[offset++] = value >> 12 & 15 | 224;
        output[offset++] = value >> 6 & 63 | 128;
      } else {
        output[offset++] = value >> 18 & 7 | 240;
        output[offset++] = value >> 12 & 63 | 128;
        output[offset++] = value >> 6 & 63 | 128;
      }
    }
    output[offset++] = value & 63 | 128;
  }
}
var sharedTextEncoder = new TextEncoder();
var TEXT_ENCODER_THRESHOLD = 50;
function utf8EncodeTE(str2, output, outputOffset) {
  sharedTextEncoder.encodeInto(str2, output.subarray(outputOffset));
}
function utf8Encode(str2, output, outputOffset) {
  if (str2.length > TEXT_ENCODER_THRESHOLD) {
    utf8EncodeTE(str2, output, outputOffset);
  } else {
    utf8EncodeJs(str2, output, outputOffset);
  }
}
var CHUNK_SIZE = 4096;
function utf8DecodeJs(bytes, inputOffset, byteLength) {
  let offset = inputOffset;
  const end = offset + byteLength;
  const units = [];
  let result = "";
  while (offset < end) {
    const byte1 = bytes[offset++];
    if ((byte1 & 128) === 0) {
      units.push(byte1);
    } else if ((byte1 & 224) === 192) {
      const byte2 = bytes[offset++] & 63;
      units.push((byte1 & 31) << 6 | byte2);
    } else if ((byte1 & 240) === 224) {
      const byte2 = bytes[offset++] & 63;
      const byte3 = bytes[offset++] & 63;
      units.push((byte1 & 31) << 12 | byte2 << 6 | byte3);
    } else if ((byte1 & 248) === 240) {
      const byte2 = bytes[offset++] & 63;
      const byte3 = bytes[offset++] & 63;
      const byte4 = bytes[offset++] & 63;
      let unit = (byte1 & 7) << 18 | byte2 << 12 | byte3 << 6 | byte4;
      if (unit > 65535) {
        unit -= 65536;
        units.push(unit >>> 10 & 1023 | 55296);
        unit = 56320 | unit & 1023;
      }
      units.push(unit);
    } else {
      units.push(byte1);
    }
    if (units.length >= CHUNK_SIZE) {
      result += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  if (units.length > 0) {
    result += String.fromCharCode(...units);
  }
  return result;
}
var sharedTextDecoder = new TextDecoder();
var TEXT_DECODER_THRESHOLD = 200;
function utf8DecodeTD(bytes, inputOffset, byteLength) {
  const stringBytes = bytes.subarray(inputOffset, inputOffset + byteLength);
  return sharedTextDecoder.decode(stringBytes);
}
function utf8Decode(bytes, inputOffset, byteLength) {
  if (byteLength > TEXT_DECODER_THRESHOLD) {
    return utf8DecodeTD(bytes, inputOffset, byteLength);
  } else {
    return utf8DecodeJs(bytes, inputOffset, byteLength);
  }
}

// ../typescript/node_modules/@msgpack/msgpack/dist.esm/ExtData.mjs
var ExtData = class {
  constructor(type, data) {
    __publicField(this, "type");
    __publicField(this, "data");
    this.type = type;
    this.data = data;
  }
};

// ../typescript/node_modules/@msgpack/msgpack/dist.esm/DecodeError.mjs
var DecodeError = class _DecodeError extends Error {
  constructor(message) {
    super(message);
    const proto = Object.create(_DecodeError.prototype);
    Object.setPrototypeOf(this, proto);
    Object.defineProperty(this, "name", {
      configurable: true,
      enumerable: false,
      value: _DecodeError.name
    });
  }
};

// ../typescript/node_modules/@msgpack/msgpack/dist.esm/utils/int.mjs
var UINT32_MAX = 4294967295;
function setUint64(view2, offset, value) {
  const high = value / 4294967296;
  const low = value;
  view2.setUint32(offset, high);
  view2.setUint32(offset + 4, low);
}
function setInt64(view2, offset, value) {
  const high = Math.floor(value / 4294967296);
  const low = value;
  view2.setUint32(offset, high);
  view2.setUint32(offset + 4, low);
}
function getInt64(view2, offset) {
  const high = view2.getInt32(offset);
  const low = view2.getUint32(offset + 4);
  return high * 4294967296 + low;
}
function getUint64(view2, offset) {
  const high = view2.getUint32(offset);
  const low = view2.getUint32(offset + 4);
  return high * 4294967296 + low;
}

// ../typescript/node_modules/@msgpack/msgpack/dist.esm/timestamp.mjs
var EXT_TIMESTAMP = -1;
var TIMESTAMP32_MAX_SEC = 4294967296 - 1;
var TIMESTAMP64_MAX_SEC = 17179869184 - 1;
function encodeTimeSpecToTimestamp({ sec, nsec }) {
  if (sec >= 0 && nsec >= 0 && sec <= TIMESTAMP64_MAX_SEC) {
    if (nsec === 0 && sec <= TIMESTAMP32_MAX_SEC) {
      const rv = new Uint8Array(4);
      const view2 = new DataView(rv.buffer);
      view2.setUint32(0, sec);
      return rv;
    } else {
      const secHigh = sec / 4294967296;
      const secLow = sec & 4294967295;
      const rv = new Uint8Array(8);
      const view2 = new DataView(rv.buffer);
      view2.setUint32(0, nsec << 2 | secHigh & 3);
      view2.setUint32(4, secLow);
      return rv;
    }
  } else {
    const rv = new Uint8Array(12);
    const view2 = new DataView(rv.buffer);
    view2.setUint32(0, nsec);
    setInt64(view2, 4, sec);
    return rv;
  }
}
function encodeDateToTimeSpec(date) {
  const msec = date.getTime();
  const sec = Math.floor(msec / 1e3);
  const nsec = (msec - sec * 1e3) * 1e6;
  const nsecInSec = Math.floor(nsec / 1e9);
  return {
    sec: sec + nsecInSec,
    nsec: nsec - nsecInSec * 1e9
  };
}
function encodeTimestampExtension(object) {
  if (object instanceof Date) {
    const timeSpec = encodeDateToTimeSpec(object);
    return encodeTimeSpecToTimestamp(timeSpec);
  } else {
    return null;
  }
}
function decodeTimestampToTimeSpec(data) {
  const view2 = new DataView(data.buffer, data.byteOffset, data.byteLength);
  switch (data.byteLength) {
    case 4: {
      const sec = view2.getUint32(0);
      const nsec = 0;
      return { sec, nsec };
    }
    case 8: {
      const nsec30AndSecHigh2 = view2.getUint32(0);
      const secLow32 = view2.getUint32(4);
      const sec = (nsec30AndSecHigh2 & 3) * 4294967296 + secLow32;
      const nsec = nsec30AndSecHigh2 >>> 2;
      return { sec, nsec };
    }
    case 12: {
      const sec = getInt64(view2, 4);
      const nsec = view2.getUint32(0);
      return { sec, nsec };
    }
    default:
      throw new DecodeError(`Unrecognized data size for timestamp (expected 4, 8, or 12): ${data.length}`);
  }
}
function decodeTimestampExtension(data) {
  const timeSpec = decodeTimestampToTimeSpec(data);
  return new Date(timeSpec.sec * 1e3 + timeSpec.nsec / 1e6);
}
var timestampExtension = {
  type: EXT_TIMESTAMP,
  encode: encodeTimestampExtension,
  decode: decodeTimestampExtension
};

// ../typescript/node_modules/@msgpack/msgpack/dist.esm/ExtensionCodec.mjs
var _ExtensionCodec = class _ExtensionCodec {
  constructor() {
    // ensures ExtensionCodecType<X> matches ExtensionCodec<X>
    // this will make type errors a lot more clear
    // eslint-disable-next-line @typescript-eslint/naming-convention
    __publicField(this, "__brand");
    // built-in extensions
    __publicField(this, "builtInEncoders", []);
    __publicField(this, "builtInDecoders", []);
    // custom extensions
    __publicField(this, "encoders", []);
    __publicField(this, "decoders", []);
    this.register(timestampExtension);
  }
  register({ type, encode: encode2, decode: decode2 }) {
    if (type >= 0) {
      this.encoders[type] = encode2;
      this.decoders[type] = decode2;
    } else {
      const index = -1 - type;
      this.builtInEncoders[index] = encode2;
      this.builtInDecoders[index] = decode2;
    }
  }
  tryToEncode(object, context2) {
    for (let i = 0; i < this.builtInEncoders.length; i++) {
      const encodeExt = this.builtInEncoders[i];
      if (encodeExt != null) {
        const data = encodeExt(object, context2);
        if (data != null) {
          const type = -1 - i;
          return new ExtData(type, data);
        }
      }
    }
    for (let i = 0; i < this.encoders.length; i++) {
      const encodeExt = this.encoders[i];
      if (encodeExt != null) {
        const data = encodeExt(object, context2);
        if (data != null) {
          const type = i;
          return new ExtData(type, data);
        }
      }
    }
    if (object instanceof ExtData) {
      return object;
    }
    return null;
  }
  decode(data, type, context2) {
    const decodeExt = type < 0 ? this.builtInDecoders[-1 - type] : this.decoders[type];
    if (decodeExt) {
      return decodeExt(data, type, context2);
    } else {
      return new ExtData(type, data);
    }
  }
};
__publicField(_ExtensionCodec, "defaultCodec", new _ExtensionCodec());
var ExtensionCodec = _ExtensionCodec;

// ../typescript/node_modules/@msgpack/msgpack/dist.esm/utils/typedArrays.mjs
function isArrayBufferLike(buffer) {
  return buffer instanceof ArrayBuffer || typeof SharedArrayBuffer !== "undefined" && buffer instanceof SharedArrayBuffer;
}
function ensureUint8Array(buffer) {
  if (buffer instanceof Uint8Array) {
    return buffer;
  } else if (ArrayBuffer.isView(buffer)) {
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } else if (isArrayBufferLike(buffer)) {
    return new Uint8Array(buffer);
  } else {
    return Uint8Array.from(buffer);
  }
}

// ../typescript/node_modules/@msgpack/msgpack/dist.esm/Encoder.mjs
var DEFAULT_MAX_DEPTH = 100;
var DEFAULT_INITIAL_BUFFER_SIZE = 2048;
var Encoder = class _Encoder {
  constructor(options) {
    __publicField(this, "extensionCodec");
    __publicField(this, "context");
    __publicField(this, "useBigInt64");
    __publicField(this, "maxDepth");
    __publicField(this, "initialBufferSize");
    __publicField(this, "sortKeys");
    __publicField(this, "forceFloat32");
    __publicField(this, "ignoreUndefined");
    __publicField(this, "forceIntegerToFloat");
    __publicField(this, "pos");
    __publicField(this, "view");
    __publicField(this, "bytes");
    __publicField(this, "entered", false);
    this.extensionCodec = options?.extensionCodec ?? ExtensionCodec.defaultCodec;
    this.context = options?.context;
    this.useBigInt64 = options?.useBigInt64 ?? false;
    this.maxDepth = options?.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.initialBufferSize = options?.initialBufferSize ?? DEFAULT_INITIAL_BUFFER_SIZE;
    this.sortKeys = options?.sortKeys ?? false;
    this.forceFloat32 = options?.forceFloat32 ?? false;
    this.ignoreUndefined = options?.ignoreUndefined ?? false;
    this.forceIntegerToFloat = options?.forceIntegerToFloat ?? false;
    this.pos = 0;
    this.view = new DataView(new ArrayBuffer(this.initialBufferSize));
    this.bytes = new Uint8Array(this.view.buffer);
  }
  clone() {
    return new _Encoder({
      extensionCodec: this.extensionCodec,
      context: this.context,
      useBigInt64: this.useBigInt64,
      maxDepth: this.maxDepth,
      initialBufferSize: this.initialBufferSize,
      sortKeys: this.sortKeys,
      forceFloat32: this.forceFloat32,
      ignoreUndefined: this.ignoreUndefined,
      forceIntegerToFloat: this.forceIntegerToFloat
    });
  }
  reinitializeState() {
    this.pos = 0;
  }
  /**
   * This is almost equivalent to {@link Encoder#encode}, but it returns an reference of the encoder's internal buffer and thus much faster than {@link Encoder#encode}.
   *
   * @returns Encodes the object and returns a shared reference the encoder's internal buffer.
   */
  encodeSharedRef(object) {
    if (this.entered) {
      const instance = this.clone();
      return instance.encodeSharedRef(object);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.doEncode(object, 1);
      return this.bytes.subarray(0, this.pos);
    } finally {
      this.entered = false;
    }
  }
  /**
   * @returns Encodes the object and returns a copy of the encoder's internal buffer.
   */
  encode(object) {
    if (this.entered) {
      const instance = this.clone();
      return instance.encode(object);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.doEncode(object, 1);
      return this.bytes.slice(0, this.pos);
    } finally {
      this.entered = false;
    }
  }
  doEncode(object, depth) {
    if (depth > this.maxDepth) {
      throw new Error(`Too deep objects in depth ${depth}`);
    }
    if (object == null) {
      this.encodeNil();
    } else if (typeof object === "boolean") {
      this.encodeBoolean(object);
    } else if (typeof object === "number") {
      if (!this.forceIntegerToFloat) {
        this.encodeNumber(object);
      } else {
        this.encodeNumberAsFloat(object);
      }
    } else if (typeof object === "string") {
      this.encodeString(object);
    } else if (this.useBigInt64 && typeof object === "bigint") {
      this.encodeBigInt64(object);
    } else {
      this.encodeObject(object, depth);
    }
  }
  ensureBufferSizeToWrite(sizeToWrite) {
    const requiredSize = this.pos + sizeToWrite;
    if (this.view.byteLength < requiredSize) {
      this.resizeBuffer(requiredSize * 2);
    }
  }
  resizeBuffer(newSize) {
    const newBuffer = new ArrayBuffer(newSize);
    const newBytes = new Uint8Array(newBuffer);
    const newView = new DataView(newBuffer);
    newBytes.set(this.bytes);
    this.view = newView;
    this.bytes = newBytes;
  }
  encodeNil() {
    this.writeU8(192);
  }
  encodeBoolean(object) {
    if (object === false) {
      this.writeU8(194);
    } else {
      this.writeU8(195);
    }
  }
  encodeNumber(object) {
    if (!this.forceIntegerToFloat && Number.isSafeInteger(object)) {
      if (object >= 0) {
        if (object < 128) {
          this.writeU8(object);
        } else if (object < 256) {
          this.writeU8(204);
          this.writeU8(object);
        } else if (object < 65536) {
          this.writeU8(205);
          this.writeU16(object);
        } else if (object < 4294967296) {
          this.writeU8(206);
          this.writeU32(object);
        } else if (!this.useBigInt64) {
          this.writeU8(207);
          this.writeU64(object);
        } else {
          this.encodeNumberAsFloat(object);
        }
      } else {
        if (object >= -32) {
          this.writeU8(224 | object + 32);
        } else if (object >= -128) {
          this.writeU8(208);
          this.writeI8(object);
        } else if (object >= -32768) {
          this.writeU8(209);
          this.writeI16(object);
        } else if (object >= -2147483648) {
          this.writeU8(210);
          this.writeI32(object);
        } else if (!this.useBigInt64) {
          this.writeU8(211);
          this.writeI64(object);
        } else {
          this.encodeNumberAsFloat(object);
        }
      }
    } else {
      this.encodeNumberAsFloat(object);
    }
  }
  encodeNumberAsFloat(object) {
    if (this.forceFloat32) {
      this.writeU8(202);
      this.writeF32(object);
    } else {
      this.writeU8(203);
      this.writeF64(object);
    }
  }
  encodeBigInt64(object) {
    if (object >= BigInt(0)) {
      this.writeU8(207);
      this.writeBigUint64(object);
    } else {
      this.writeU8(211);
      this.writeBigInt64(object);
    }
  }
  writeStringHeader(byteLength) {
    if (byteLength < 32) {
      this.writeU8(160 + byteLength);
    } else if (byteLength < 256) {
      this.writeU8(217);
      this.writeU8(byteLength);
    } else if (byteLength < 65536) {
      this.writeU8(218);
      this.writeU16(byteLength);
    } else if (byteLength < 4294967296) {
      this.writeU8(219);
      this.writeU32(byteLength);
    } else {
      throw new Error(`Too long string: ${byteLength} bytes in UTF-8`);
    }
  }
  encodeString(object) {
    const maxHeaderSize = 1 + 4;
    const byteLength = utf8Count(object);
    this.ensureBufferSizeToWrite(maxHeaderSize + byteLength);
    this.writeStringHeader(byteLength);
    utf8Encode(object, this.bytes, this.pos);
    this.pos += byteLength;
  }
  encodeObject(object, depth) {
    const ext = this.extensionCodec.tryToEncode(object, this.context);
    if (ext != null) {
      this.encodeExtension(ext);
    } else if (Array.isArray(object)) {
      this.encodeArray(object, depth);
    } else if (ArrayBuffer.isView(object)) {
      this.encodeBinary(object);
    } else if (typeof object === "object") {
      this.encodeMap(object, depth);
    } else {
      throw new Error(`Unrecognized object: ${Object.prototype.toString.apply(object)}`);
    }
  }
  encodeBinary(object) {
    const size = object.byteLength;
    if (size < 256) {
      this.writeU8(196);
      this.writeU8(size);
    } else if (size < 65536) {
      this.writeU8(197);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(198);
      this.writeU32(size);
    } else {
      throw new Error(`Too large binary: ${size}`);
    }
    const bytes = ensureUint8Array(object);
    this.writeU8a(bytes);
  }
  encodeArray(object, depth) {
    const size = object.length;
    if (size < 16) {
      this.writeU8(144 + size);
    } else if (size < 65536) {
      this.writeU8(220);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(221);
      this.writeU32(size);
    } else {
      throw new Error(`Too large array: ${size}`);
    }
    for (const item of object) {
      this.doEncode(item, depth + 1);
    }
  }
  countWithoutUndefined(object, keys) {
    let count = 0;
    for (const key of keys) {
      if (object[key] !== void 0) {
        count++;
      }
    }
    return count;
  }
  encodeMap(object, depth) {
    const keys = Object.keys(object);
    if (this.sortKeys) {
      keys.sort();
    }
    const size = this.ignoreUndefined ? this.countWithoutUndefined(object, keys) : keys.length;
    if (size < 16) {
      this.writeU8(128 + size);
    } else if (size < 65536) {
      this.writeU8(222);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(223);
      this.writeU32(size);
    } else {
      throw new Error(`Too large map object: ${size}`);
    }
    for (const key of keys) {
      const value = object[key];
      if (!(this.ignoreUndefined && value === void 0)) {
        this.encodeString(key);
        this.doEncode(value, depth + 1);
      }
    }
  }
  encodeExtension(ext) {
    if (typeof ext.data === "function") {
      const data = ext.data(this.pos + 6);
      const size2 = data.length;
      if (size2 >= 4294967296) {
        throw new Error(`Too large extension object: ${size2}`);
      }
      this.writeU8(201);
      this.writeU32(size2);
      this.writeI8(ext.type);
      this.writeU8a(data);
      return;
    }
    const size = ext.data.length;
    if (size === 1) {
      this.writeU8(212);
    } else if (size === 2) {
      this.writeU8(213);
    } else if (size === 4) {
      this.writeU8(214);
    } else if (size === 8) {
      this.writeU8(215);
    } else if (size === 16) {
      this.writeU8(216);
    } else if (size < 256) {
      this.writeU8(199);
      this.writeU8(size);
    } else if (size < 65536) {
      this.writeU8(200);
      this.writeU16(size);
    } else if (size < 4294967296) {
      this.writeU8(201);
      this.writeU32(size);
    } else {
      throw new Error(`Too large extension object: ${size}`);
    }
    this.writeI8(ext.type);
    this.writeU8a(ext.data);
  }
  writeU8(value) {
    this.ensureBufferSizeToWrite(1);
    this.view.setUint8(this.pos, value);
    this.pos++;
  }
  writeU8a(values) {
    const size = values.length;
    this.ensureBufferSizeToWrite(size);
    this.bytes.set(values, this.pos);
    this.pos += size;
  }
  writeI8(value) {
    this.ensureBufferSizeToWrite(1);
    this.view.setInt8(this.pos, value);
    this.pos++;
  }
  writeU16(value) {
    this.ensureBufferSizeToWrite(2);
    this.view.setUint16(this.pos, value);
    this.pos += 2;
  }
  writeI16(value) {
    this.ensureBufferSizeToWrite(2);
    this.view.setInt16(this.pos, value);
    this.pos += 2;
  }
  writeU32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setUint32(this.pos, value);
    this.pos += 4;
  }
  writeI32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setInt32(this.pos, value);
    this.pos += 4;
  }
  writeF32(value) {
    this.ensureBufferSizeToWrite(4);
    this.view.setFloat32(this.pos, value);
    this.pos += 4;
  }
  writeF64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setFloat64(this.pos, value);
    this.pos += 8;
  }
  writeU64(value) {
    this.ensureBufferSizeToWrite(8);
    setUint64(this.view, this.pos, value);
    this.pos += 8;
  }
  writeI64(value) {
    this.ensureBufferSizeToWrite(8);
    setInt64(this.view, this.pos, value);
    this.pos += 8;
  }
  writeBigUint64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setBigUint64(this.pos, value);
    this.pos += 8;
  }
  writeBigInt64(value) {
    this.ensureBufferSizeToWrite(8);
    this.view.setBigInt64(this.pos, value);
    this.pos += 8;
  }
};

// ../typescript/node_modules/@msgpack/msgpack/dist.esm/encode.mjs
function encode(value, options) {
  const encoder = new Encoder(options);
  return encoder.encodeSharedRef(value);
}

// ../typescript/node_modules/@msgpack/msgpack/dist.esm/utils/prettyByte.mjs
function prettyByte(byte) {
  return `${byte < 0 ? "-" : ""}0x${Math.abs(byte).toString(16).padStart(2, "0")}`;
}

// ../typescript/node_modules/@msgpack/msgpack/dist.esm/CachedKeyDecoder.mjs
var DEFAULT_MAX_KEY_LENGTH = 16;
var DEFAULT_MAX_LENGTH_PER_KEY = 16;
var CachedKeyDecoder = class {
  constructor(maxKeyLength = DEFAULT_MAX_KEY_LENGTH, maxLengthPerKey = DEFAULT_MAX_LENGTH_PER_KEY) {
    __publicField(this, "hit", 0);
    __publicField(this, "miss", 0);
    __publicField(this, "caches");
    __publicField(this, "maxKeyLength");
    __publicField(this, "maxLengthPerKey");
    this.maxKeyLength = maxKeyLength;
    this.maxLengthPerKey = maxLengthPerKey;
    this.caches = [];
    for (let i = 0; i < this.maxKeyLength; i++) {
      this.caches.push([]);
    }
  }
  canBeCached(byteLength) {
    return byteLength > 0 && byteLength <= this.maxKeyLength;
  }
  find(bytes, inputOffset, byteLength) {
    const records = this.caches[byteLength - 1];
    FIND_CHUNK: for (const record of records) {
      const recordBytes = record.bytes;
      for (let j = 0; j < byteLength; j++) {
        if (recordBytes[j] !== bytes[inputOffset + j]) {
          continue FIND_CHUNK;
        }
      }
      return record.str;
    }
    return null;
  }
  store(bytes, value) {
    const records = this.caches[bytes.length - 1];
    const record = { bytes, str: value };
    if (records.length >= this.maxLengthPerKey) {
      records[Math.random() * records.length | 0] = record;
    } else {
      records.push(record);
    }
  }
  decode(bytes, inputOffset, byteLength) {
    const cachedValue = this.find(bytes, inputOffset, byteLength);
    if (cachedValue != null) {
      this.hit++;
      return cachedValue;
    }
    this.miss++;
    const str2 = utf8DecodeJs(bytes, inputOffset, byteLength);
    const slicedCopyOfBytes = Uint8Array.prototype.slice.call(bytes, inputOffset, inputOffset + byteLength);
    this.store(slicedCopyOfBytes, str2);
    return str2;
  }
};

// ../typescript/node_modules/@msgpack/msgpack/dist.esm/Decoder.mjs
var STATE_ARRAY = "array";
var STATE_MAP_KEY = "map_key";
var STATE_MAP_VALUE = "map_value";
var mapKeyConverter = (key) => {
  if (typeof key === "string" || typeof key === "number") {
    return key;
  }
  throw new DecodeError("The type of key must be string or number but " + typeof key);
};
var StackPool = class {
  constructor() {
    __publicField(this, "stack", []);
    __publicField(this, "stackHeadPosition", -1);
  }
  get length() {
    return this.stackHeadPosition + 1;
  }
  top() {
    return this.stack[this.stackHeadPosition];
  }
  pushArrayState(size) {
    const state = this.getUninitializedStateFromPool();
    state.type = STATE_ARRAY;
    state.position = 0;
    state.size = size;
    state.array = new Array(size);
  }
  pushMapState(size) {
    const state = this.getUninitializedStateFromPool();
    state.type = STATE_MAP_KEY;
    state.readCount = 0;
    state.size = size;
    state.map = {};
  }
  getUninitializedStateFromPool() {
    this.stackHeadPosition++;
    if (this.stackHeadPosition === this.stack.length) {
      const partialState = {
        type: void 0,
        size: 0,
        array: void 0,
        position: 0,
        readCount: 0,
        map: void 0,
        key: null
      };
      this.stack.push(partialState);
    }
    return this.stack[this.stackHeadPosition];
  }
  release(state) {
    const topStackState = this.stack[this.stackHeadPosition];
    if (topStackState !== state) {
      throw new Error("Invalid stack state. Released state is not on top of the stack.");
    }
    if (state.type === STATE_ARRAY) {
      const partialState = state;
      partialState.size = 0;
      partialState.array = void 0;
      partialState.position = 0;
      partialState.type = void 0;
    }
    if (state.type === STATE_MAP_KEY || state.type === STATE_MAP_VALUE) {
      const partialState = state;
      partialState.size = 0;
      partialState.map = void 0;
      partialState.readCount = 0;
      partialState.type = void 0;
    }
    this.stackHeadPosition--;
  }
  reset() {
    this.stack.length = 0;
    this.stackHeadPosition = -1;
  }
};
var HEAD_BYTE_REQUIRED = -1;
var EMPTY_VIEW = new DataView(new ArrayBuffer(0));
var EMPTY_BYTES = new Uint8Array(EMPTY_VIEW.buffer);
try {
  EMPTY_VIEW.getInt8(0);
} catch (e) {
  if (!(e instanceof RangeError)) {
    throw new Error("This module is not supported in the current JavaScript engine because DataView does not throw RangeError on out-of-bounds access");
  }
}
var MORE_DATA = new RangeError("Insufficient data");
var sharedCachedKeyDecoder = new CachedKeyDecoder();
var Decoder = class _Decoder {
  constructor(options) {
    __publicField(this, "extensionCodec");
    __publicField(this, "context");
    __publicField(this, "useBigInt64");
    __publicField(this, "rawStrings");
    __publicField(this, "maxStrLength");
    __publicField(this, "maxBinLength");
    __publicField(this, "maxArrayLength");
    __publicField(this, "maxMapLength");
    __publicField(this, "maxExtLength");
    __publicField(this, "keyDecoder");
    __publicField(this, "mapKeyConverter");
    __publicField(this, "totalPos", 0);
    __publicField(this, "pos", 0);
    __publicField(this, "view", EMPTY_VIEW);
    __publicField(this, "bytes", EMPTY_BYTES);
    __publicField(this, "headByte", HEAD_BYTE_REQUIRED);
    __publicField(this, "stack", new StackPool());
    __publicField(this, "entered", false);
    this.extensionCodec = options?.extensionCodec ?? ExtensionCodec.defaultCodec;
    this.context = options?.context;
    this.useBigInt64 = options?.useBigInt64 ?? false;
    this.rawStrings = options?.rawStrings ?? false;
    this.maxStrLength = options?.maxStrLength ?? UINT32_MAX;
    this.maxBinLength = options?.maxBinLength ?? UINT32_MAX;
    this.maxArrayLength = options?.maxArrayLength ?? UINT32_MAX;
    this.maxMapLength = options?.maxMapLength ?? UINT32_MAX;
    this.maxExtLength = options?.maxExtLength ?? UINT32_MAX;
    this.keyDecoder = options?.keyDecoder !== void 0 ? options.keyDecoder : sharedCachedKeyDecoder;
    this.mapKeyConverter = options?.mapKeyConverter ?? mapKeyConverter;
  }
  clone() {
    return new _Decoder({
      extensionCodec: this.extensionCodec,
      context: this.context,
      useBigInt64: this.useBigInt64,
      rawStrings: this.rawStrings,
      maxStrLength: this.maxStrLength,
      maxBinLength: this.maxBinLength,
      maxArrayLength: this.maxArrayLength,
      maxMapLength: this.maxMapLength,
      maxExtLength: this.maxExtLength,
      keyDecoder: this.keyDecoder
    });
  }
  reinitializeState() {
    this.totalPos = 0;
    this.headByte = HEAD_BYTE_REQUIRED;
    this.stack.reset();
  }
  setBuffer(buffer) {
    const bytes = ensureUint8Array(buffer);
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }
  appendBuffer(buffer) {
    if (this.headByte === HEAD_BYTE_REQUIRED && !this.hasRemaining(1)) {
      this.setBuffer(buffer);
    } else {
      const remainingData = this.bytes.subarray(this.pos);
      const newData = ensureUint8Array(buffer);
      const newBuffer = new Uint8Array(remainingData.length + newData.length);
      newBuffer.set(remainingData);
      newBuffer.set(newData, remainingData.length);
      this.setBuffer(newBuffer);
    }
  }
  hasRemaining(size) {
    return this.view.byteLength - this.pos >= size;
  }
  createExtraByteError(posToShow) {
    const { view: view2, pos } = this;
    return new RangeError(`Extra ${view2.byteLength - pos} of ${view2.byteLength} byte(s) found at buffer[${posToShow}]`);
  }
  /**
   * @throws {@link DecodeError}
   * @throws {@link RangeError}
   */
  decode(buffer) {
    if (this.entered) {
      const instance = this.clone();
      return instance.decode(buffer);
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.setBuffer(buffer);
      const object = this.doDecodeSync();
      if (this.hasRemaining(1)) {
        throw this.createExtraByteError(this.pos);
      }
      return object;
    } finally {
      this.entered = false;
    }
  }
  *decodeMulti(buffer) {
    if (this.entered) {
      const instance = this.clone();
      yield* instance.decodeMulti(buffer);
      return;
    }
    try {
      this.entered = true;
      this.reinitializeState();
      this.setBuffer(buffer);
      while (this.hasRemaining(1)) {
        yield this.doDecodeSync();
      }
    } finally {
      this.entered = false;
    }
  }
  async decodeAsync(stream) {
    if (this.entered) {
      const instance = this.clone();
      return instance.decodeAsync(stream);
    }
    try {
      this.entered = true;
      let decoded = false;
      let object;
      for await (const buffer of stream) {
        if (decoded) {
          this.entered = false;
          throw this.createExtraByteError(this.totalPos);
        }
        this.appendBuffer(buffer);
        try {
          object = this.doDecodeSync();
          decoded = true;
        } catch (e) {
          if (!(e instanceof RangeError)) {
            throw e;
          }
        }
        this.totalPos += this.pos;
      }
      if (decoded) {
        if (this.hasRemaining(1)) {
          throw this.createExtraByteError(this.totalPos);
        }
        return object;
      }
      const { headByte, pos, totalPos } = this;
      throw new RangeError(`Insufficient data in parsing ${prettyByte(headByte)} at ${totalPos} (${pos} in the current buffer)`);
    } finally {
      this.entered = false;
    }
  }
  decodeArrayStream(stream) {
    return this.decodeMultiAsync(stream, true);
  }
  decodeStream(stream) {
    return this.decodeMultiAsync(stream, false);
  }
  async *decodeMultiAsync(stream, isArray) {
    if (this.entered) {
      const instance = this.clone();
      yield* instance.decodeMultiAsync(stream, isArray);
      return;
    }
    try {
      this.entered = true;
      let isArrayHeaderRequired = isArray;
      let arrayItemsLeft = -1;
      for await (const buffer of stream) {
        if (isArray && arrayItemsLeft === 0) {
          throw this.createExtraByteError(this.totalPos);
        }
        this.appendBuffer(buffer);
        if (isArrayHeaderRequired) {
          arrayItemsLeft = this.readArraySize();
          isArrayHeaderRequired = false;
          this.complete();
        }
        try {
          while (true) {
            yield this.doDecodeSync();
            if (--arrayItemsLeft === 0) {
              break;
            }
          }
        } catch (e) {
          if (!(e instanceof RangeError)) {
            throw e;
          }
        }
        this.totalPos += this.pos;
      }
    } finally {
      this.entered = false;
    }
  }
  doDecodeSync() {
    DECODE: while (true) {
      const headByte = this.readHeadByte();
      let object;
      if (headByte >= 224) {
        object = headByte - 256;
      } else if (headByte < 192) {
        if (headByte < 128) {
          object = headByte;
        } else if (headByte < 144) {
          const size = headByte - 128;
          if (size !== 0) {
            this.pushMapState(size);
            this.complete();
            continue DECODE;
          } else {
            object = {};
          }
        } else if (headByte < 160) {
          const size = headByte - 144;
          if (size !== 0) {
            this.pushArrayState(size);
            this.complete();
            continue DECODE;
          } else {
            object = [];
          }
        } else {
          const byteLength = headByte - 160;
          object = this.decodeString(byteLength, 0);
        }
      } else if (headByte === 192) {
        object = null;
      } else if (headByte === 194) {
        object = false;
      } else if (headByte === 195) {
        object = true;
      } else if (headByte === 202) {
        object = this.readF32();
      } else if (headByte === 203) {
        object = this.readF64();
      } else if (headByte === 204) {
        object = this.readU8();
      } else if (headByte === 205) {
        object = this.readU16();
      } else if (headByte === 206) {
        object = this.readU32();
      } else if (headByte === 207) {
        if (this.useBigInt64) {
          object = this.readU64AsBigInt();
        } else {
          object = this.readU64();
        }
      } else if (headByte === 208) {
        object = this.readI8();
      } else if (headByte === 209) {
        object = this.readI16();
      } else if (headByte === 210) {
        object = this.readI32();
      } else if (headByte === 211) {
        if (this.useBigInt64) {
          object = this.readI64AsBigInt();
        } else {
          object = this.readI64();
        }
      } else if (headByte === 217) {
        const byteLength = this.lookU8();
        object = this.decodeString(byteLength, 1);
      } else if (headByte === 218) {
        const byteLength = this.lookU16();
        object = this.decodeString(byteLength, 2);
      } else if (headByte === 219) {
        const byteLength = this.lookU32();
        object = this.decodeString(byteLength, 4);
      } else if (headByte === 220) {
        const size = this.readU16();
        if (size !== 0) {
          this.pushArrayState(size);
          this.complete();
          continue DECODE;
        } else {
          object = [];
        }
      } else if (headByte === 221) {
        const size = this.readU32();
        if (size !== 0) {
          this.pushArrayState(size);
          this.complete();
          continue DECODE;
        } else {
          object = [];
        }
      } else if (headByte === 222) {
        const size = this.readU16();
        if (size !== 0) {
          this.pushMapState(size);
          this.complete();
          continue DECODE;
        } else {
          object = {};
        }
      } else if (headByte === 223) {
        const size = this.readU32();
        if (size !== 0) {
          this.pushMapState(size);
          this.complete();
          continue DECODE;
        } else {
          object = {};
        }
      } else if (headByte === 196) {
        const size = this.lookU8();
        object = this.decodeBinary(size, 1);
      } else if (headByte === 197) {
        const size = this.lookU16();
        object = this.decodeBinary(size, 2);
      } else if (headByte === 198) {
        const size = this.lookU32();
        object = this.decodeBinary(size, 4);
      } else if (headByte === 212) {
        object = this.decodeExtension(1, 0);
      } else if (headByte === 213) {
        object = this.decodeExtension(2, 0);
      } else if (headByte === 214) {
        object = this.decodeExtension(4, 0);
      } else if (headByte === 215) {
        object = this.decodeExtension(8, 0);
      } else if (headByte === 216) {
        object = this.decodeExtension(16, 0);
      } else if (headByte === 199) {
        const size = this.lookU8();
        object = this.decodeExtension(size, 1);
      } else if (headByte === 200) {
        const size = this.lookU16();
        object = this.decodeExtension(size, 2);
      } else if (headByte === 201) {
        const size = this.lookU32();
        object = this.decodeExtension(size, 4);
      } else {
        throw new DecodeError(`Unrecognized type byte: ${prettyByte(headByte)}`);
      }
      this.complete();
      const stack = this.stack;
      while (stack.length > 0) {
        const state = stack.top();
        if (state.type === STATE_ARRAY) {
          state.array[state.position] = object;
          state.position++;
          if (state.position === state.size) {
            object = state.array;
            stack.release(state);
          } else {
            continue DECODE;
          }
        } else if (state.type === STATE_MAP_KEY) {
          if (object === "__proto__") {
            throw new DecodeError("The key __proto__ is not allowed");
          }
          state.key = this.mapKeyConverter(object);
          state.type = STATE_MAP_VALUE;
          continue DECODE;
        } else {
          state.map[state.key] = object;
          state.readCount++;
          if (state.readCount === state.size) {
            object = state.map;
            stack.release(state);
          } else {
            state.key = null;
            state.type = STATE_MAP_KEY;
            continue DECODE;
          }
        }
      }
      return object;
    }
  }
  readHeadByte() {
    if (this.headByte === HEAD_BYTE_REQUIRED) {
      this.headByte = this.readU8();
    }
    return this.headByte;
  }
  complete() {
    this.headByte = HEAD_BYTE_REQUIRED;
  }
  readArraySize() {
    const headByte = this.readHeadByte();
    switch (headByte) {
      case 220:
        return this.readU16();
      case 221:
        return this.readU32();
      default: {
        if (headByte < 160) {
          return headByte - 144;
        } else {
          throw new DecodeError(`Unrecognized array type byte: ${prettyByte(headByte)}`);
        }
      }
    }
  }
  pushMapState(size) {
    if (size > this.maxMapLength) {
      throw new DecodeError(`Max length exceeded: map length (${size}) > maxMapLengthLength (${this.maxMapLength})`);
    }
    this.stack.pushMapState(size);
  }
  pushArrayState(size) {
    if (size > this.maxArrayLength) {
      throw new DecodeError(`Max length exceeded: array length (${size}) > maxArrayLength (${this.maxArrayLength})`);
    }
    this.stack.pushArrayState(size);
  }
  decodeString(byteLength, headerOffset) {
    if (!this.rawStrings || this.stateIsMapKey()) {
      return this.decodeUtf8String(byteLength, headerOffset);
    }
    return this.decodeBinary(byteLength, headerOffset);
  }
  /**
   * @throws {@link RangeError}
   */
  decodeUtf8String(byteLength, headerOffset) {
    if (byteLength > this.maxStrLength) {
      throw new DecodeError(`Max length exceeded: UTF-8 byte length (${byteLength}) > maxStrLength (${this.maxStrLength})`);
    }
    if (this.bytes.byteLength < this.pos + headerOffset + byteLength) {
      throw MORE_DATA;
    }
    const offset = this.pos + headerOffset;
    let object;
    if (this.stateIsMapKey() && this.keyDecoder?.canBeCached(byteLength)) {
      object = this.keyDecoder.decode(this.bytes, offset, byteLength);
    } else {
      object = utf8Decode(this.bytes, offset, byteLength);
    }
    this.pos += headerOffset + byteLength;
    return object;
  }
  stateIsMapKey() {
    if (this.stack.length > 0) {
      const state = this.stack.top();
      return state.type === STATE_MAP_KEY;
    }
    return false;
  }
  /**
   * @throws {@link RangeError}
   */
  decodeBinary(byteLength, headOffset) {
    if (byteLength > this.maxBinLength) {
      throw new DecodeError(`Max length exceeded: bin length (${byteLength}) > maxBinLength (${this.maxBinLength})`);
    }
    if (!this.hasRemaining(byteLength + headOffset)) {
      throw MORE_DATA;
    }
    const offset = this.pos + headOffset;
    const object = this.bytes.subarray(offset, offset + byteLength);
    this.pos += headOffset + byteLength;
    return object;
  }
  decodeExtension(size, headOffset) {
    if (size > this.maxExtLength) {
      throw new DecodeError(`Max length exceeded: ext length (${size}) > maxExtLength (${this.maxExtLength})`);
    }
    const extType = this.view.getInt8(this.pos + headOffset);
    const data = this.decodeBinary(
      size,
      headOffset + 1
      /* extType */
    );
    return this.extensionCodec.decode(data, extType, this.context);
  }
  lookU8() {
    return this.view.getUint8(this.pos);
  }
  lookU16() {
    return this.view.getUint16(this.pos);
  }
  lookU32() {
    return this.view.getUint32(this.pos);
  }
  readU8() {
    const value = this.view.getUint8(this.pos);
    this.pos++;
    return value;
  }
  readI8() {
    const value = this.view.getInt8(this.pos);
    this.pos++;
    return value;
  }
  readU16() {
    const value = this.view.getUint16(this.pos);
    this.pos += 2;
    return value;
  }
  readI16() {
    const value = this.view.getInt16(this.pos);
    this.pos += 2;
    return value;
  }
  readU32() {
    const value = this.view.getUint32(this.pos);
    this.pos += 4;
    return value;
  }
  readI32() {
    const value = this.view.getInt32(this.pos);
    this.pos += 4;
    return value;
  }
  readU64() {
    const value = getUint64(this.view, this.pos);
    this.pos += 8;
    return value;
  }
  readI64() {
    const value = getInt64(this.view, this.pos);
    this.pos += 8;
    return value;
  }
  readU64AsBigInt() {
    const value = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return value;
  }
  readI64AsBigInt() {
    const value = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return value;
  }
  readF32() {
    const value = this.view.getFloat32(this.pos);
    this.pos += 4;
    return value;
  }
  readF64() {
    const value = this.view.getFloat64(this.pos);
    this.pos += 8;
    return value;
  }
};

// ../typescript/node_modules/@msgpack/msgpack/dist.esm/decode.mjs
function decode(buffer, options) {
  const decoder = new Decoder(options);
  return decoder.decode(buffer);
}

// ../typescript/dist/codec.js
function encodeClientMessage(message) {
  return encode(message);
}
function decodeServerFrame(frame) {
  let batch;
  try {
    batch = decode(frame);
  } catch (error) {
    throw new ProtocolError("msgpack", `frame is not one MessagePack value: ${String(error)}`);
  }
  if (!Array.isArray(batch))
    throw shape("a server frame must be an array of messages");
  return batch.map(decodeServerMessage);
}
function decodeServerMessage(message) {
  if (!isMap(message))
    throw shape("a message must be a one-entry map");
  const keys = Object.keys(message);
  if (keys.length !== 1)
    throw shape(`a message must have one entry, got ${keys.length}`);
  const name = keys[0];
  const body = message[name];
  switch (name) {
    case "welcome":
      return { type: "welcome", body: welcome(map(body, "welcome")) };
    case "snapshot":
      return { type: "snapshot", body: snapshot(map(body, "snapshot")) };
    case "delta":
      return { type: "delta", body: delta(map(body, "delta")) };
    case "s":
      return { type: "s", body: compactSnapshot(body) };
    case "d":
      return { type: "d", body: compactDelta(body) };
    case "event": {
      const event = map(body, "event");
      return { type: "event", body: { payload: event["payload"] ?? null } };
    }
    case "error": {
      const error = map(body, "error");
      return {
        type: "error",
        body: { code: str(error, "code", "error"), message: optStr(error, "message") ?? "" }
      };
    }
    case "pong": {
      const pong = map(body, "pong");
      return { type: "pong", body: { nonce: uint(pong, "nonce", "pong"), tick: uint(pong, "tick", "pong") } };
    }
    case "redirect": {
      const redirect = map(body, "redirect");
      return {
        type: "redirect",
        body: {
          room: str(redirect, "room", "redirect"),
          node: str(redirect, "node", "redirect"),
          ws_url: str(redirect, "ws_url", "redirect")
        }
      };
    }
    default:
      return { type: "unknown", name, body: body ?? null };
  }
}
function welcome(body) {
  const at = "welcome";
  const token = optStr(body, "resume_token");
  const ticksLost = body["ticks_lost"] === void 0 || body["ticks_lost"] === null ? void 0 : uint(body, "ticks_lost", at);
  const resumed = body["resumed"];
  if (resumed !== void 0 && resumed !== null && typeof resumed !== "boolean") {
    throw shape("welcome.resumed must be a boolean");
  }
  return {
    session: uint(body, "session", at),
    player: uint(body, "player", at),
    room: str(body, "room", at),
    room_type: str(body, "room_type", at),
    epoch: uint(body, "epoch", at),
    tick_hz: uint(body, "tick_hz", at),
    window: uint(body, "window", at),
    ...token === void 0 ? {} : { resume_token: token },
    resumed: resumed === true,
    ...ticksLost === void 0 ? {} : { ticks_lost: ticksLost }
  };
}
function snapshot(body) {
  const at = "snapshot";
  return {
    epoch: uint(body, "epoch", at),
    tick: uint(body, "tick", at),
    entities: array(body["entities"], "snapshot.entities").map(entity),
    acks: array(body["acks"], "snapshot.acks").map(inputAck)
  };
}
function delta(body) {
  const at = "delta";
  const left = body["left"];
  return {
    epoch: uint(body, "epoch", at),
    tick: uint(body, "tick", at),
    base_tick: uint(body, "base_tick", at),
    upserts: array(body["upserts"], "delta.upserts").map(entityUpdate),
    removed: array(body["removed"], "delta.removed").map((id) => uintValue(id, "delta.removed")),
    left: left === void 0 || left === null ? [] : array(left, "delta.left").map((id) => uintValue(id, "delta.left")),
    acks: array(body["acks"], "delta.acks").map(inputAck),
    events: array(body["events"], "delta.events")
  };
}
function entity(value) {
  const body = map(value, "entity");
  return { id: uint(body, "id", "entity"), kind: str(body, "kind", "entity"), fields: fields(body["fields"]) };
}
function entityUpdate(value) {
  const body = map(value, "entity_update");
  const kind = optStr(body, "kind");
  return {
    id: uint(body, "id", "entity_update"),
    ...kind === void 0 ? {} : { kind },
    fields: fields(body["fields"])
  };
}
function fields(value) {
  return map(value, "entity fields");
}
function inputAck(value) {
  const body = map(value, "input_ack");
  return { player: uint(body, "player", "input_ack"), seq: uint(body, "seq", "input_ack") };
}
function compactSnapshot(value) {
  const parts = array(value, "s");
  if (parts.length !== 4)
    throw shape(`s must have 4 elements, got ${parts.length}`);
  const packed = parts[3];
  if (!(packed instanceof Uint8Array))
    throw shape("s[3] must be a bin");
  return {
    epoch: uintValue(parts[0], "s.epoch"),
    tick: uintValue(parts[1], "s.tick"),
    schema: array(parts[2], "s.schema").map(schemaKind),
    packed
  };
}
function schemaKind(value) {
  const kind = array(value, "schema kind");
  if (kind.length < 2)
    throw shape("a schema kind is [name, fields]");
  return { name: strValue(kind[0], "schema kind name"), fields: array(kind[1], "schema fields").map(schemaField) };
}
var PLAIN_FIELD_TYPES = ["bool", "uint", "int", "str", "f32", "any"];
function schemaField(value) {
  const field = array(value, "schema field");
  const name = strValue(field[0], "schema field name");
  const type = strValue(field[1], "schema field type");
  if (type === "quantized") {
    const min = numberValue(field[2], "quantized min");
    const step = numberValue(field[3], "quantized step");
    const steps = uintValue(field[4], "quantized steps");
    return { name, type, min, step, steps, bits: bitLength(steps) };
  }
  if (PLAIN_FIELD_TYPES.includes(type)) {
    return { name, type };
  }
  throw new ProtocolError("packed", `schema field \`${name}\` has unknown type \`${type}\``);
}
function bitLength(n) {
  let bits = 0;
  let rest = n;
  while (rest >= 1) {
    rest = Math.floor(rest / 2);
    bits += 1;
  }
  return bits;
}
function compactDelta(value) {
  const parts = array(value, "d");
  const packed = parts[0];
  if (!(packed instanceof Uint8Array))
    throw shape("d[0] must be a bin");
  return { packed, events: parts.slice(1) };
}
function shape(message) {
  return new ProtocolError("shape", message);
}
function isMap(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}
function map(value, what) {
  if (!isMap(value))
    throw shape(`${what} must be a map`);
  return value;
}
function array(value, what) {
  if (!Array.isArray(value))
    throw shape(`${what} must be an array`);
  return value;
}
function uintValue(value, what) {
  if (typeof value === "bigint" && value >= 0n)
    return Number(value);
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw shape(`${what} must be an unsigned integer`);
  }
  return value;
}
function uint(body, key, at) {
  return uintValue(body[key], `${at}.${key}`);
}
function numberValue(value, what) {
  if (typeof value !== "number")
    throw shape(`${what} must be a number`);
  return value;
}
function strValue(value, what) {
  if (typeof value !== "string")
    throw shape(`${what} must be a string`);
  return value;
}
function str(body, key, at) {
  return strValue(body[key], `${at}.${key}`);
}
function optStr(body, key) {
  const value = body[key];
  if (value === void 0 || value === null)
    return void 0;
  return strValue(value, key);
}

// ../typescript/dist/emitter.js
var Emitter = class {
  constructor() {
    __publicField(this, "listeners", {});
  }
  /** Adds a listener; returns a function that removes it. */
  on(name, listener) {
    var _a;
    const set = (_a = this.listeners)[name] ?? (_a[name] = /* @__PURE__ */ new Set());
    set.add(listener);
    return () => set.delete(listener);
  }
  emit(name, value) {
    const set = this.listeners[name];
    if (set === void 0)
      return;
    for (const listener of [...set]) {
      try {
        listener(value);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
};

// ../typescript/dist/messages.js
var CLOSE_CODES = {
  1e3: "normal",
  4e3: "protocol_error",
  4001: "unauthorized",
  4002: "protocol_version",
  4003: "room_full",
  4004: "room_not_found",
  4005: "rate_limited",
  4006: "message_too_large",
  4007: "idle_timeout",
  4008: "too_slow",
  4009: "room_disposed",
  4010: "room_crashed",
  4011: "server_shutdown",
  4012: "redirect",
  4013: "room_moved",
  4014: "resume_refused",
  4015: "session_replaced",
  4016: "kicked",
  4017: "room_moving"
};
function closeReasonOf(code) {
  return CLOSE_CODES[code];
}
function closeKeepsSeat(code) {
  if (code === 4007 || code === 4008 || code === 4017)
    return true;
  if (code === 1e3)
    return false;
  if (code >= 4e3 && code <= 4999)
    return false;
  return true;
}

// ../typescript/dist/bits.js
var MAX_VARU_GROUPS = 22;
var U64_MAX = (1n << 64n) - 1n;
var utf8 = new TextDecoder("utf-8", { fatal: true });
var BitReader = class {
  // in bits
  constructor(bytes) {
    __publicField(this, "bytes");
    __publicField(this, "position", 0);
    // in bits
    __publicField(this, "length");
    this.bytes = bytes;
    this.length = bytes.length * 8;
  }
  /** One bit. */
  bit() {
    if (this.position >= this.length)
      throw malformed("bit stream ends early");
    const byte = this.bytes[this.position >> 3];
    const value = byte >> 7 - (this.position & 7) & 1;
    this.position += 1;
    return value === 1;
  }
  /** `count` bits, most significant first, as a number (count ≤ 53 stays exact). */
  bits(count) {
    if (count > 53) {
      const big = this.bigBits(count);
      return Number(big);
    }
    let value = 0;
    for (let index = 0; index < count; index += 1)
      value = value * 2 + (this.bit() ? 1 : 0);
    return value;
  }
  bigBits(count) {
    let value = 0n;
    for (let index = 0; index < count; index += 1)
      value = value << 1n | (this.bit() ? 1n : 0n);
    return value;
  }
  /** A `varu` as a bigint (exact up to 2^64 − 1). */
  varuBig() {
    let value = 0n;
    for (let group = 0; group < MAX_VARU_GROUPS; group += 1) {
      const more = this.bit();
      value |= BigInt(this.bits(3)) << BigInt(3 * group);
      if (!more) {
        if (value > U64_MAX)
          throw malformed("varu above 2^64 - 1");
        return value;
      }
    }
    throw malformed(`varu longer than ${MAX_VARU_GROUPS} groups`);
  }
  /** A `varu` as a number: exact below 2^53, which every id, tick and seq of Ludus is. */
  varu() {
    let value = 0;
    let scale = 1;
    for (let group = 0; group < 17; group += 1) {
      const more = this.bit();
      value += this.bits(3) * scale;
      if (!more)
        return value;
      scale *= 8;
    }
    let big = BigInt(value);
    for (let group = 17; group < MAX_VARU_GROUPS; group += 1) {
      const more = this.bit();
      big |= BigInt(this.bits(3)) << BigInt(3 * group);
      if (!more) {
        if (big > U64_MAX)
          throw malformed("varu above 2^64 - 1");
        return Number(big);
      }
    }
    throw malformed(`varu longer than ${MAX_VARU_GROUPS} groups`);
  }
  /** A byte string: its length as a varu, then each byte as 8 bits (not aligned). */
  byteString() {
    const length = this.varu();
    if (length * 8 > this.length - this.position)
      throw malformed("byte string runs past the end");
    const out = new Uint8Array(length);
    for (let index = 0; index < length; index += 1)
      out[index] = this.bits(8);
    return out;
  }
  /** A byte string holding UTF-8. */
  string() {
    try {
      return utf8.decode(this.byteString());
    } catch (error) {
      if (error instanceof ProtocolError)
        throw error;
      throw malformed("string is not valid UTF-8");
    }
  }
  /** An ascending list of ids: count, first id, then `id − previous − 1` for each next one. */
  ascending() {
    const count = this.varu();
    if (count * 4 > this.length - this.position)
      throw malformed("id list runs past the end");
    const ids = [];
    let previous2 = -1;
    for (let index = 0; index < count; index += 1) {
      const id = index === 0 ? this.varu() : previous2 + 1 + this.varu();
      ids.push(id);
      previous2 = id;
    }
    return ids;
  }
  /** The stream must end here, with zero padding to the byte boundary (§19.3). */
  finish() {
    const remaining = this.length - this.position;
    if (remaining >= 8)
      throw malformed(`${remaining} bits left after the end`);
    for (let index = 0; index < remaining; index += 1) {
      if (this.bit())
        throw malformed("non-zero padding");
    }
  }
};
function malformed(message) {
  return new ProtocolError("packed", message);
}

// ../typescript/dist/mirror.js
var U32 = 2n ** 32n;
var Mirror = class {
  constructor() {
    /** False until the first snapshot: deltas cannot apply before it. */
    __publicField(this, "hasState", false);
    __publicField(this, "epoch", 0);
    __publicField(this, "tick", 0);
    __publicField(this, "entities", /* @__PURE__ */ new Map());
    /** Each member's highest applied input seq (§8). */
    __publicField(this, "acks", /* @__PURE__ */ new Map());
    /** The version 2 schema of the last `s` (empty in version 1). */
    __publicField(this, "schema", []);
  }
  // --- version 1 -------------------------------------------------------------------------------
  /** Replaces everything (§7 "On a snapshot"). */
  loadSnapshot(snapshot2) {
    this.entities.clear();
    for (const entity2 of snapshot2.entities) {
      this.entities.set(entity2.id, { id: entity2.id, kind: entity2.kind, fields: { ...entity2.fields } });
    }
    this.acks.clear();
    for (const ack of snapshot2.acks)
      this.acks.set(ack.player, ack.seq);
    this.epoch = snapshot2.epoch;
    this.tick = snapshot2.tick;
    this.schema = [];
    this.hasState = true;
  }
  /** §7 "On a delta", steps 1 to 9. */
  applyDelta(delta2) {
    if (!this.hasState)
      return { applied: false, reason: "no_state" };
    if (delta2.epoch !== this.epoch)
      return { applied: false, reason: "epoch", expected: this.epoch, got: delta2.epoch };
    if (delta2.base_tick !== this.tick)
      return { applied: false, reason: "gap", tick: this.tick, base: delta2.base_tick };
    const removed = new Set(delta2.removed);
    for (const update of delta2.upserts) {
      if (update.kind === void 0 && (!this.entities.has(update.id) || removed.has(update.id))) {
        return { applied: false, reason: "unknown_entity", id: update.id };
      }
    }
    for (const id of removed)
      this.entities.delete(id);
    for (const update of delta2.upserts) {
      if (update.kind !== void 0) {
        this.entities.set(update.id, { id: update.id, kind: update.kind, fields: { ...update.fields } });
      } else {
        Object.assign(this.entities.get(update.id).fields, update.fields);
      }
    }
    for (const player of delta2.left)
      this.acks.delete(player);
    for (const ack of delta2.acks)
      this.acks.set(ack.player, ack.seq);
    this.tick = delta2.tick;
    return { applied: true, tick: this.tick, events: delta2.events };
  }
  // --- version 2 -------------------------------------------------------------------------------
  /** Replaces everything with a version 2 snapshot (§19.5). Throws `ProtocolError` if malformed. */
  loadCompactSnapshot(snapshot2) {
    const reader = new BitReader(snapshot2.packed);
    const extras = reader.bit();
    const ids = reader.ascending();
    const entities = [];
    for (const id of ids) {
      const { kind, fields: fields2 } = readNewEntity(reader, snapshot2.schema, extras);
      entities.push({ id, kind, fields: fields2 });
    }
    const players = reader.ascending();
    const acks = players.map((player) => ({ player, seq: reader.varu() }));
    reader.finish();
    this.loadSnapshot({ epoch: snapshot2.epoch, tick: snapshot2.tick, entities, acks });
    this.schema = snapshot2.schema;
  }
  /** Applies a version 2 delta (§19.6, steps 1 to 4). A malformed one is reported, not thrown. */
  applyCompactDelta(delta2) {
    if (!this.hasState)
      return { applied: false, reason: "no_state" };
    try {
      return this.applyCompactDeltaOrThrow(delta2);
    } catch (error) {
      if (error instanceof ProtocolError)
        return { applied: false, reason: "malformed", error };
      throw error;
    }
  }
  applyCompactDeltaOrThrow(delta2) {
    const reader = new BitReader(delta2.packed);
    const tick = reader.varu();
    const gap = reader.varu();
    const base = tick - gap;
    if (base !== this.tick)
      return { applied: false, reason: "gap", tick: this.tick, base };
    const removed = reader.ascending();
    const left = reader.ascending();
    const joined = reader.ascending();
    const acks = new Map(this.acks);
    for (const player of left)
      acks.delete(player);
    for (const player of joined)
      acks.set(player, 0);
    if (reader.bit()) {
      const players = [...acks.keys()].sort((a, b) => a - b);
      for (const player of players) {
        if (!reader.bit())
          continue;
        const step = reader.varuBig();
        const seq = Number((BigInt(acks.get(player)) + step) % U32);
        acks.set(player, seq);
      }
    }
    const extras = reader.bit();
    const ids = reader.ascending();
    const removedSet = new Set(removed);
    const upserts = [];
    for (const id of ids) {
      if (reader.bit()) {
        const { kind, fields: fields2 } = readNewEntity(reader, this.schema, extras);
        upserts.push({ id, isNew: true, kind, fields: fields2 });
      } else {
        const existing = this.entities.get(id);
        if (existing === void 0 || removedSet.has(id)) {
          throw malformed(`update of entity ${id}, which the mirror does not hold`);
        }
        const kind = this.schema.find((candidate) => candidate.name === existing.kind);
        const fields2 = readFields(reader, kind?.fields ?? [], extras);
        upserts.push({ id, isNew: false, kind: existing.kind, fields: fields2 });
      }
    }
    reader.finish();
    for (const id of removed)
      this.entities.delete(id);
    for (const upsert of upserts) {
      if (upsert.isNew) {
        this.entities.set(upsert.id, { id: upsert.id, kind: upsert.kind, fields: upsert.fields });
      } else {
        Object.assign(this.entities.get(upsert.id).fields, upsert.fields);
      }
    }
    this.acks.clear();
    for (const [player, seq] of acks)
      this.acks.set(player, seq);
    this.tick = tick;
    return { applied: true, tick, events: delta2.events };
  }
  // --- reading -----------------------------------------------------------------------------------
  /** The content in canonical order (entities by id, acks by player), fields as plain objects. */
  content() {
    return {
      epoch: this.epoch,
      tick: this.tick,
      entities: [...this.entities.values()].sort((a, b) => a.id - b.id).map((entity2) => ({ id: entity2.id, kind: entity2.kind, fields: sortKeys(entity2.fields) })),
      acks: [...this.acks.entries()].sort((a, b) => a[0] - b[0]).map(([player, seq]) => ({ player, seq }))
    };
  }
};
function sortKeys(fields2) {
  const out = {};
  for (const key of Object.keys(fields2).sort())
    out[key] = fields2[key];
  return out;
}
function readNewEntity(reader, schema, extras) {
  const code = reader.varu();
  if (code === 0) {
    const kind2 = reader.string();
    return { kind: kind2, fields: readFields(reader, [], extras) };
  }
  const kind = schema[code - 1];
  if (kind === void 0)
    throw malformed(`kind code ${code} is not in the schema`);
  return { kind: kind.name, fields: readFields(reader, kind.fields, extras) };
}
function readFields(reader, declared, extras) {
  const present = declared.map(() => reader.bit());
  const fields2 = {};
  declared.forEach((field, index) => {
    if (present[index])
      fields2[field.name] = readValue(reader, field);
  });
  if (extras) {
    const count = reader.varu();
    for (let index = 0; index < count; index += 1) {
      const name = reader.string();
      fields2[name] = readAny(reader);
    }
  }
  return fields2;
}
var f32View = new DataView(new ArrayBuffer(4));
function readValue(reader, field) {
  switch (field.type) {
    case "bool":
      return reader.bit();
    case "uint":
      return reader.varu();
    case "int": {
      const zigzag = reader.varuBig();
      const value = zigzag % 2n === 0n ? zigzag / 2n : -(zigzag + 1n) / 2n;
      return Number(value);
    }
    case "str":
      return reader.string();
    case "f32":
      f32View.setUint32(0, reader.bits(32));
      return f32View.getFloat32(0);
    case "quantized": {
      const index = reader.bits(field.bits);
      if (index > field.steps)
        throw malformed(`grid index ${index} above ${field.steps} for \`${field.name}\``);
      return Math.fround(field.min + index * field.step);
    }
    case "any":
      return readAny(reader);
  }
}
function readAny(reader) {
  const bytes = reader.byteString();
  try {
    return decode(bytes);
  } catch (error) {
    throw malformed(`an \`any\` value is not one MessagePack value: ${String(error)}`);
  }
}

// ../typescript/dist/session.js
var OPEN = 1;
var RESYNC_RETRY_MS = 1e3;
var CLIENT_DROP_CODE = 4100;
var RoomSession = class _RoomSession extends Emitter {
  constructor(seat, options) {
    super();
    __publicField(this, "mirror", new Mirror());
    __publicField(this, "protocol");
    __publicField(this, "state", "connecting");
    /** The last `welcome` (the first one, or the one of the last resume). */
    __publicField(this, "welcome", null);
    /** The URL of the current connection: the seat's, or where a redirect sent us. */
    __publicField(this, "wsUrl");
    /** Successful resumes so far. */
    __publicField(this, "resumes", 0);
    /** The last application round trip, in ms (null before the first pong). */
    __publicField(this, "rttMs", null);
    /** The last input→ack latency, in ms (null before the first ack of an input). */
    __publicField(this, "ackLatencyMs", null);
    /** Bytes of every frame received, for bandwidth displays. */
    __publicField(this, "bytesReceived", 0);
    /** How the session ended, once `state` is "closed". */
    __publicField(this, "end", null);
    __publicField(this, "socket", null);
    __publicField(this, "options");
    __publicField(this, "seq", 0);
    __publicField(this, "inputSentAt", /* @__PURE__ */ new Map());
    __publicField(this, "lastOwnAck", 0);
    /** The latest input, and whether it went out (it did not if the connection was down). */
    __publicField(this, "latestInput", null);
    __publicField(this, "lastAckSent", -1);
    __publicField(this, "awaitingSnapshot", false);
    __publicField(this, "lastError", null);
    __publicField(this, "lastFrameAt", 0);
    __publicField(this, "watchdog", null);
    __publicField(this, "nextNonce", 1);
    __publicField(this, "pings", /* @__PURE__ */ new Map());
    __publicField(this, "leaving", null);
    __publicField(this, "closedByClient", false);
    /** Aborts the connection attempt in flight (when the session is closed meanwhile). */
    __publicField(this, "cancelAttempt", null);
    /** Ends the backoff wait between resume attempts early. */
    __publicField(this, "wakeUp", null);
    __publicField(this, "resendPending", false);
    __publicField(this, "lastResyncAt", 0);
    const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    if (WebSocketImpl === void 0) {
      throw new Error("no WebSocket in this environment: pass SessionOptions.WebSocket (e.g. the `ws` package)");
    }
    const resume = options.resume === false ? null : options.resume === true || options.resume === void 0 ? {} : options.resume;
    this.options = {
      protocol: options.protocol ?? 2,
      WebSocket: WebSocketImpl,
      ackEvery: options.ackEvery ?? 4,
      maxRedirects: options.maxRedirects ?? 4,
      answerTimeoutMs: options.answerTimeoutMs ?? 1e4,
      staleAfterMs: options.staleAfterMs ?? 5e3,
      leaveTimeoutMs: options.leaveTimeoutMs ?? 3e3,
      random: options.random ?? Math.random,
      resume: resume === null ? null : {
        giveUpAfterMs: resume.giveUpAfterMs ?? 3e4,
        baseDelayMs: resume.baseDelayMs ?? 250,
        maxDelayMs: resume.maxDelayMs ?? 5e3,
        resendLatestInput: resume.resendLatestInput ?? true
      }
    };
    this.protocol = this.options.protocol;
    this.wsUrl = seat.ws_url;
  }
  /**
   * Opens the seat's WebSocket, sends `hello`, follows redirects, and resolves once the
   * `[welcome, snapshot]` frame is applied. Rejects with a {@link SessionError} carrying the
   * server's error code and close code when the join is refused.
   */
  static async join(seat, options = {}) {
    const session2 = new _RoomSession(seat, options);
    const hello = { protocol: session2.protocol, token: seat.token };
    let url = seat.ws_url;
    for (let redirects = 0; ; redirects += 1) {
      const attempt = await session2.attempt(url, hello);
      if (attempt.kind === "joined")
        return session2;
      if (attempt.kind === "redirect" && redirects < session2.options.maxRedirects) {
        url = attempt.url;
        continue;
      }
      const end = attempt.kind === "redirect" ? { reason: "redirect", code: 4012, error: null, text: "too many redirects" } : attempt.end;
      session2.finish(end);
      throw new SessionError(end);
    }
  }
  /** This player's id (`welcome.player`). */
  get playerId() {
    return this.welcome?.player ?? null;
  }
  /** Sends an input with the next seq; returns the seq, or null when not connected (resuming). */
  sendInput(payload) {
    if (this.state !== "open") {
      this.latestInput = { seq: this.seq, payload, sent: false };
      return null;
    }
    this.seq += 1;
    const seq = this.seq;
    this.latestInput = { seq, payload, sent: true };
    this.inputSentAt.set(seq, now());
    this.lastAckSent = this.mirror.tick;
    this.send({ input: { seq, ack_tick: this.mirror.tick, payload } });
    return seq;
  }
  /** Sends an application ping (§10) and resolves with the round trip in ms. */
  ping(timeoutMs = 5e3) {
    if (this.state !== "open")
      return Promise.reject(new Error(`cannot ping: session is ${this.state}`));
    const nonce = this.nextNonce++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(nonce);
        reject(new Error(`no pong for nonce ${nonce} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pings.set(nonce, {
        sentAt: now(),
        resolve: (rtt) => {
          clearTimeout(timer);
          resolve(rtt);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        }
      });
      this.send({ ping: { nonce } });
    });
  }
  /** Asks for a fresh snapshot (§7); deltas are ignored until it comes. */
  resync() {
    this.awaitingSnapshot = true;
    this.lastResyncAt = now();
    this.send({ resync: {} });
  }
  /** Leaves the room (the seat is freed) and resolves once the server closed (1000 `normal`). */
  leave() {
    if (this.state === "closed")
      return Promise.resolve(this.end);
    if (this.state !== "open") {
      this.close();
      return Promise.resolve(this.end);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.close(), this.options.leaveTimeoutMs);
      this.leaving = (end) => {
        clearTimeout(timer);
        resolve(end);
      };
      this.send({ leave: {} });
    });
  }
  /**
   * Closes the socket without `leave`: the server keeps the seat for its resume window (§20.2),
   * this object does not resume. The session ends with `client_closed`.
   */
  close() {
    if (this.state === "closed")
      return;
    this.closedByClient = true;
    const socket = this.socket;
    this.detach();
    try {
      socket?.close(1e3, "client closed");
    } catch {
    }
    this.finish({ reason: "client_closed", code: null, error: null, text: "" });
  }
  // --- connecting ------------------------------------------------------------------------------
  /**
   * Opens one socket to `url`, sends `hello`, and waits for the first frame. On a welcome the
   * socket becomes the session's (the frame is processed before this resolves).
   */
  attempt(url, hello) {
    return new Promise((resolve) => {
      let settled = false;
      let error = null;
      let socket;
      const settle = (result) => {
        if (settled)
          return;
        settled = true;
        clearTimeout(timer);
        this.cancelAttempt = null;
        resolve(result);
      };
      const giveUp = (end) => {
        silence(socket);
        try {
          socket.close(CLIENT_DROP_CODE, "gave up");
        } catch {
        }
        settle({ kind: "lost", end });
      };
      const timer = setTimeout(() => giveUp({ reason: "connection_lost", code: null, error, text: "no answer in time" }), this.options.answerTimeoutMs);
      this.cancelAttempt = () => giveUp({ reason: "client_closed", code: null, error: null, text: "" });
      try {
        socket = new this.options.WebSocket(url);
      } catch (constructorError) {
        settle({
          kind: "refused",
          end: { reason: "connection_lost", code: null, error: null, text: String(constructorError) }
        });
        return;
      }
      socket.binaryType = "arraybuffer";
      socket.onopen = () => socket.send(encodeClientMessage({ hello }));
      socket.onerror = () => {
      };
      socket.onclose = (event) => {
        const end = this.endOf(event.code, event.reason, error);
        settle(error === null ? { kind: "lost", end } : { kind: "refused", end });
      };
      socket.onmessage = (event) => {
        const frame = this.readFrame(event.data);
        if (frame === null)
          return;
        const first = frame.messages[0];
        if (first?.type === "welcome") {
          settle({ kind: "joined" });
          this.adopt(socket, url);
          this.onFrame(frame.messages);
          return;
        }
        if (first?.type === "redirect") {
          silence(socket);
          socket.close(1e3, "redirected");
          settle({ kind: "redirect", url: first.body.ws_url });
          return;
        }
        for (const message of frame.messages) {
          if (message.type === "error") {
            error = message.body;
            this.emit("serverError", message.body);
          }
        }
      };
    });
  }
  /** Makes `socket` the session's connection. */
  adopt(socket, url) {
    this.socket = socket;
    this.wsUrl = url;
    this.lastError = null;
    this.lastFrameAt = now();
    socket.onmessage = (event) => {
      const frame = this.readFrame(event.data);
      if (frame !== null)
        this.onFrame(frame.messages);
    };
    socket.onclose = (event) => this.onSocketClosed(socket, event.code, event.reason);
    socket.onerror = () => {
    };
    this.setState("open");
    if (this.options.staleAfterMs > 0 && this.watchdog === null) {
      const period = Math.max(50, Math.floor(this.options.staleAfterMs / 4));
      this.watchdog = setInterval(() => this.checkStale(), period);
    }
  }
  /** Stops listening to the current socket (it may still close later; we no longer care). */
  detach() {
    if (this.socket !== null)
      silence(this.socket);
    this.socket = null;
  }
  /**
   * Tells the session the network changed (a browser's `offline`/`online` events, a mobile
   * network switch): an open session gives its socket up and resumes on a new one (§20.5); a
   * session waiting between resume attempts tries at once. No effect once closed.
   */
  reconnect() {
    if (this.state === "open")
      this.dropSocket("reconnect requested");
    else if (this.state === "resuming")
      this.wakeUp?.();
  }
  checkStale() {
    if (this.state !== "open" || this.socket === null)
      return;
    if (now() - this.lastFrameAt < this.options.staleAfterMs)
      return;
    this.dropSocket("no frames");
  }
  dropSocket(why) {
    const socket = this.socket;
    this.detach();
    try {
      socket?.close(CLIENT_DROP_CODE, why);
    } catch {
    }
    this.lost({ reason: "connection_lost", code: null, error: null, text: why });
  }
  onSocketClosed(socket, code, text2) {
    if (socket !== this.socket)
      return;
    this.detach();
    const end = this.endOf(code, text2, this.lastError);
    if (this.leaving !== null || this.closedByClient || !closeKeepsSeat(code)) {
      this.finish(end);
      return;
    }
    this.lost(end);
  }
  /** The connection is gone but the seat may wait: resume if we can, else end. */
  lost(end) {
    this.rejectPings("connection lost");
    const token = this.welcome?.resume_token;
    if (this.options.resume === null || token === void 0) {
      this.finish(end);
      return;
    }
    void this.resumeLoop(end);
  }
  /** §20.5: full-jitter backoff, redirects at once, stop at the first error or past the window. */
  async resumeLoop(dropped) {
    const settings = this.options.resume;
    this.setState("resuming");
    const deadline = now() + settings.giveUpAfterMs;
    let url = this.wsUrl;
    let attemptNumber = 0;
    let skipWait = dropped.code === 4017;
    while (now() < deadline) {
      if (!skipWait) {
        const delayMs = Math.min(backoffDelay(attemptNumber, settings, this.options.random), Math.max(0, deadline - now()));
        this.emit("resuming", { attempt: attemptNumber, delayMs });
        await this.wait(delayMs);
        if (this.state !== "resuming")
          return;
      }
      skipWait = false;
      attemptNumber += 1;
      const token = this.welcome?.resume_token;
      const hello = {
        protocol: this.protocol,
        token: "",
        resume: { token, last_tick: this.mirror.tick }
      };
      const attempt = await this.attempt(url, hello);
      if (this.state !== "resuming" && attempt.kind !== "joined")
        return;
      switch (attempt.kind) {
        case "joined":
          return;
        // onFrame handled the welcome
        case "redirect":
          url = attempt.url;
          attemptNumber = 0;
          skipWait = true;
          continue;
        case "refused":
          this.finish(attempt.end);
          return;
        case "lost":
          continue;
      }
    }
    this.finish({ reason: "resume_failed", code: dropped.code, error: null, text: "the resume window passed" });
  }
  wait(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, ms);
      this.wakeUp = () => {
        this.wakeUp = null;
        clearTimeout(timer);
        resolve();
      };
    });
  }
  // --- frames ----------------------------------------------------------------------------------
  readFrame(data) {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data instanceof Uint8Array ? data : null;
    if (bytes === null) {
      this.emit("protocolError", new ProtocolError("shape", "a text frame: the server sends binary frames only"));
      if (this.state === "open")
        this.resync();
      return null;
    }
    this.bytesReceived += bytes.byteLength;
    this.lastFrameAt = now();
    this.emit("frame", { bytes: bytes.byteLength });
    try {
      return { messages: decodeServerFrame(bytes), bytes: bytes.byteLength };
    } catch (error) {
      if (!(error instanceof ProtocolError))
        throw error;
      this.emit("protocolError", error);
      if (this.state === "open")
        this.resync();
      return null;
    }
  }
  onFrame(messages) {
    let ackNow = false;
    for (const message of messages) {
      switch (message.type) {
        case "welcome":
          ackNow = true;
          this.onWelcome(message.body);
          break;
        case "snapshot":
          this.mirror.loadSnapshot(message.body);
          this.afterSnapshot();
          ackNow = true;
          break;
        case "s":
          try {
            this.mirror.loadCompactSnapshot(message.body);
            this.afterSnapshot();
            ackNow = true;
          } catch (error) {
            if (!(error instanceof ProtocolError))
              throw error;
            this.emit("protocolError", error);
            this.resync();
          }
          break;
        case "delta":
        case "d": {
          if (this.awaitingSnapshot) {
            if (now() - this.lastResyncAt > RESYNC_RETRY_MS)
              this.resync();
            break;
          }
          const outcome = message.type === "delta" ? this.mirror.applyDelta(message.body) : this.mirror.applyCompactDelta(message.body);
          if (!outcome.applied) {
            if (outcome.reason === "malformed")
              this.emit("protocolError", outcome.error);
            this.emit("resync", outcome);
            this.resync();
            break;
          }
          this.afterTick(false);
          for (const payload of outcome.events)
            this.emit("event", { payload, broadcast: true });
          break;
        }
        case "event":
          this.emit("event", { payload: message.body.payload, broadcast: false });
          break;
        case "error":
          this.lastError = message.body;
          this.emit("serverError", message.body);
          break;
        case "pong":
          this.onPong(message.body.nonce, message.body.tick);
          break;
        case "redirect":
        case "unknown":
          break;
      }
    }
    this.maybeAck(ackNow);
    if (this.resendPending) {
      this.resendPending = false;
      this.resendAfterResume();
    }
  }
  onWelcome(welcome2) {
    const resumed = welcome2.resumed && this.welcome !== null;
    this.welcome = welcome2;
    if (!resumed)
      return;
    this.resumes += 1;
    this.resendPending = true;
    this.emit("resumed", welcome2);
  }
  resendAfterResume() {
    const settings = this.options.resume;
    const latest = this.latestInput;
    if (settings === null || !settings.resendLatestInput || latest === null || this.state !== "open")
      return;
    const applied = this.mirror.acks.get(this.welcome?.player ?? -1) ?? 0;
    if (!latest.sent || latest.seq > applied)
      this.sendInput(latest.payload);
  }
  afterSnapshot() {
    this.awaitingSnapshot = false;
    this.afterTick(true);
  }
  afterTick(snapshot2) {
    this.emit("tick", { tick: this.mirror.tick, snapshot: snapshot2 });
    const player = this.welcome?.player;
    if (player === void 0)
      return;
    const applied = this.mirror.acks.get(player);
    if (applied === void 0 || applied <= this.lastOwnAck)
      return;
    this.lastOwnAck = applied;
    const sentAt = this.inputSentAt.get(applied);
    const latencyMs = sentAt === void 0 ? null : now() - sentAt;
    for (const seq of [...this.inputSentAt.keys()])
      if (seq <= applied)
        this.inputSentAt.delete(seq);
    if (latencyMs !== null)
      this.ackLatencyMs = latencyMs;
    this.emit("ack", { seq: applied, latencyMs });
  }
  maybeAck(force) {
    if (this.state !== "open" || !this.mirror.hasState || this.awaitingSnapshot)
      return;
    const tick = this.mirror.tick;
    if (force || tick - this.lastAckSent >= this.options.ackEvery) {
      this.lastAckSent = tick;
      this.send({ ack: { tick } });
    }
  }
  onPong(nonce, tick) {
    const pending = this.pings.get(nonce);
    if (pending === void 0)
      return;
    this.pings.delete(nonce);
    const rttMs = now() - pending.sentAt;
    this.rttMs = rttMs;
    pending.resolve(rttMs);
    this.emit("pong", { nonce, tick, rttMs });
  }
  // --- plumbing --------------------------------------------------------------------------------
  send(message) {
    const socket = this.socket;
    if (socket === null || socket.readyState !== OPEN)
      return;
    socket.send(encodeClientMessage(message));
  }
  endOf(code, text2, error) {
    const known = closeReasonOf(code);
    const reason = known ?? (code === 1006 || code === 1005 || code === 1001 ? "connection_lost" : code >= 4e3 ? "server_close" : "connection_lost");
    return { reason, code, error, text: text2 };
  }
  setState(state) {
    if (this.state === state)
      return;
    this.state = state;
    this.emit("state", state);
  }
  rejectPings(why) {
    for (const pending of this.pings.values())
      pending.reject(new Error(why));
    this.pings.clear();
  }
  finish(end) {
    if (this.state === "closed")
      return;
    this.end = end;
    if (this.watchdog !== null)
      clearInterval(this.watchdog);
    this.watchdog = null;
    this.cancelAttempt?.();
    this.wakeUp?.();
    this.detach();
    this.rejectPings(`session closed: ${end.reason}`);
    this.setState("closed");
    const leaving = this.leaving;
    this.leaving = null;
    leaving?.(end);
    this.emit("closed", end);
  }
};
function silence(socket) {
  socket.onopen = socket.onmessage = socket.onclose = null;
  socket.onerror = () => {
  };
}
function now() {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

// src/play.ts
var WORLD = 1e3;
var PING_EVERY_MS = 1e3;
var BANDWIDTH_WINDOW_MS = 1e3;
var view = {
  state: "connecting",
  roomId: null,
  playerId: null,
  tick: 0,
  rttMs: null,
  ackLatencyMs: null,
  bytesPerSecond: 0,
  ownPosition: null,
  players: 0,
  closeCode: null,
  closeReason: null,
  resumes: 0
};
var ludusPlay = {};
for (const key of Object.keys(view)) {
  Object.defineProperty(ludusPlay, key, {
    enumerable: true,
    get: () => {
      const value = view[key];
      return value !== null && typeof value === "object" ? { ...value } : value;
    }
  });
}
Object.freeze(ludusPlay);
window.ludusPlay = ludusPlay;
function element(id) {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`#${id} is missing from the page`);
  return found;
}
var canvas = element("arena");
var context = canvas.getContext("2d");
var text = {
  tick: element("tick"),
  rtt: element("rtt"),
  ackLatency: element("ack-latency"),
  bytes: element("bytes"),
  score: element("score"),
  status: element("status")
};
function setState(state) {
  view.state = state;
  text.status.textContent = state === "closed" ? `closed: ${view.closeReason ?? "unknown"}` : state;
}
function closeWith(code, reason) {
  view.closeCode = code;
  view.closeReason = reason;
  setState("closed");
}
var DIRECTIONS = {
  ArrowUp: [0, -1],
  ArrowDown: [0, 1],
  ArrowLeft: [-1, 0],
  ArrowRight: [1, 0],
  KeyW: [0, -1],
  KeyS: [0, 1],
  KeyA: [-1, 0],
  KeyD: [1, 0]
};
var LETTERS = { w: "KeyW", s: "KeyS", a: "KeyA", d: "KeyD" };
var held = /* @__PURE__ */ new Set();
function keyName(event) {
  if (event.key in DIRECTIONS) return event.key;
  if (event.code in DIRECTIONS) return event.code;
  return LETTERS[event.key.toLowerCase()] ?? null;
}
function direction() {
  let dx = 0;
  let dy = 0;
  for (const key of held) {
    const [x, y] = DIRECTIONS[key];
    dx += x;
    dy += y;
  }
  const length = Math.hypot(dx, dy);
  return length > 1 ? { dx: dx / length, dy: dy / length } : { dx, dy };
}
var session = null;
var sentDirection = { dx: 0, dy: 0 };
function sendDirection() {
  const next = direction();
  if (next.dx === sentDirection.dx && next.dy === sentDirection.dy) return;
  sentDirection = next;
  session?.sendInput(next);
}
window.addEventListener("keydown", (event) => {
  const key = keyName(event);
  if (key === null) return;
  event.preventDefault();
  held.add(key);
  sendDirection();
});
window.addEventListener("keyup", (event) => {
  const key = keyName(event);
  if (key === null) return;
  event.preventDefault();
  held.delete(key);
  sendDirection();
});
window.addEventListener("blur", () => {
  held.clear();
  sendDirection();
});
var previous = null;
var current = null;
var tickMs = 50;
function capture(entities) {
  const positions = /* @__PURE__ */ new Map();
  for (const entity2 of entities.values()) {
    const x = entity2.fields["x"];
    const y = entity2.fields["y"];
    if (typeof x === "number" && typeof y === "number") positions.set(entity2.id, { x, y });
  }
  return { at: performance.now(), positions };
}
function position(id, alpha) {
  const to = current?.positions.get(id);
  if (to === void 0) return null;
  const from = previous?.positions.get(id) ?? to;
  return { x: from.x + (to.x - from.x) * alpha, y: from.y + (to.y - from.y) * alpha };
}
function draw() {
  requestAnimationFrame(draw);
  if (context === null) return;
  const scale = canvas.width / WORLD;
  context.clearRect(0, 0, canvas.width, canvas.height);
  const mirror = session?.mirror;
  if (mirror === void 0 || current === null) return;
  const alpha = Math.min(1, Math.max(0, (performance.now() - current.at) / tickMs));
  for (const entity2 of mirror.entities.values()) {
    const at = position(entity2.id, alpha);
    if (at === null) continue;
    const x = at.x * scale;
    const y = at.y * scale;
    if (entity2.kind === "coin") {
      context.fillStyle = "#ffd75e";
      context.beginPath();
      context.arc(x, y, 20 * scale, 0, Math.PI * 2);
      context.fill();
    } else if (entity2.kind === "player") {
      const own = entity2.fields["player"] === session?.playerId;
      context.fillStyle = own ? "#5ec8ff" : "#ff7a7a";
      context.beginPath();
      context.arc(x, y, 14 * scale + 4, 0, Math.PI * 2);
      context.fill();
      context.fillStyle = "#e8e8e8";
      context.font = "12px system-ui, sans-serif";
      context.textAlign = "center";
      context.fillText(`${String(entity2.fields["name"] ?? "")} ${String(entity2.fields["score"] ?? 0)}`, x, y - 14 * scale - 8);
    }
  }
}
var received = [];
function refreshView() {
  const active = session;
  if (active === null) return;
  const mirror = active.mirror;
  view.tick = mirror.tick;
  view.rttMs = active.rttMs;
  view.ackLatencyMs = active.ackLatencyMs;
  view.resumes = active.resumes;
  let players = 0;
  let own = null;
  for (const entity2 of mirror.entities.values()) {
    if (entity2.kind !== "player") continue;
    players += 1;
    if (entity2.fields["player"] === active.playerId) own = entity2;
  }
  view.players = players;
  const x = own?.fields["x"];
  const y = own?.fields["y"];
  view.ownPosition = typeof x === "number" && typeof y === "number" ? { x, y } : null;
  text.tick.textContent = String(view.tick);
  text.rtt.textContent = view.rttMs === null ? "\u2013" : `${view.rttMs.toFixed(0)} ms`;
  text.ackLatency.textContent = view.ackLatencyMs === null ? "\u2013" : `${view.ackLatencyMs.toFixed(0)} ms`;
  text.score.textContent = String(own?.fields["score"] ?? 0);
}
function refreshBandwidth() {
  const horizon = performance.now() - BANDWIDTH_WINDOW_MS;
  while (received.length > 0 && received[0].at < horizon) received.shift();
  view.bytesPerSecond = Math.round(received.reduce((sum, frame) => sum + frame.bytes, 0) * 1e3 / BANDWIDTH_WINDOW_MS);
  text.bytes.textContent = String(view.bytesPerSecond);
}
async function start() {
  const query = new URLSearchParams(location.search);
  const roomId = query.get("room");
  const name = query.get("name") ?? void 0;
  const lobby = new LobbyClient();
  setState("connecting");
  let seat;
  try {
    seat = roomId ? await lobby.seat(roomId, name ? { name } : {}) : await lobby.matchmake({ room_type: "arena", ...name ? { name } : {} });
  } catch (error) {
    closeWith(null, error instanceof LobbyError ? error.code : "network_error");
    return;
  }
  view.roomId = seat.room_id;
  view.playerId = String(seat.player_id);
  try {
    session = await RoomSession.join(seat, {
      protocol: 2,
      // The page goes "resuming" after 2 s without a frame (a room sends 20 a second).
      staleAfterMs: 2e3,
      resume: { giveUpAfterMs: 3e4, baseDelayMs: 250, maxDelayMs: 2e3 }
    });
  } catch (error) {
    if (error instanceof SessionError) closeWith(error.end.code, error.end.reason);
    else closeWith(null, "connection_lost");
    return;
  }
  const active = session;
  tickMs = 1e3 / (active.welcome?.tick_hz ?? 20);
  view.playerId = String(active.playerId);
  current = capture(active.mirror.entities);
  active.on("frame", ({ bytes }) => received.push({ at: performance.now(), bytes }));
  active.on("tick", () => {
    previous = current;
    current = capture(active.mirror.entities);
    refreshView();
  });
  active.on("state", (state) => {
    if (state === "open") {
      setState("playing");
    } else if (state === "resuming") {
      setState("resuming");
    }
  });
  active.on("resumed", () => refreshView());
  active.on("closed", (end) => {
    refreshView();
    closeWith(end.code, end.reason);
  });
  window.addEventListener("offline", () => active.reconnect());
  window.addEventListener("online", () => active.reconnect());
  setState("playing");
  refreshView();
  sentDirection = { dx: 0, dy: 0 };
  sendDirection();
  setInterval(() => {
    if (active.state === "open") active.ping().catch(() => void 0);
  }, PING_EVERY_MS);
  setInterval(refreshBandwidth, 250);
}
requestAnimationFrame(draw);
void start();
