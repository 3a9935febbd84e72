// One player's WebSocket session with a room (§3, §5–§10, §20): hello, redirects, the mirror,
// acks, input seq, application pings, and resume after a drop. The wire format is in codec.ts,
// the state rules in mirror.ts; this file only orders them over a socket.
//
// Ordering rules for each server frame: process its messages in order (§4); after the whole
// frame, acknowledge (at once after a snapshot or a welcome, else every `ackEvery` ticks, §9).

import { backoffDelay } from "./backoff.js";
import { decodeServerFrame, encodeClientMessage } from "./codec.js";
import { Emitter } from "./emitter.js";
import { ProtocolError, SessionError, type SessionEnd } from "./errors.js";
import type { Seat } from "./lobby.js";
import { closeKeepsSeat, closeReasonOf, type ClientMessage, type Hello, type ProtocolVersion, type ServerError, type ServerMessage, type Value, type Welcome } from "./messages.js";
import { Mirror, type NotApplied } from "./mirror.js";

/** What this client needs of a WebSocket: the browser's, Node 22's, or the `ws` package's. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ResumeOptions {
  /** Stop reconnecting this long after the drop (the server's resume window). Default 30000 ms. */
  giveUpAfterMs?: number;
  /** Backoff bound of the first attempt; doubles per attempt (§20.5). Default 250 ms. */
  baseDelayMs?: number;
  /** Largest backoff bound. Default 5000 ms. */
  maxDelayMs?: number;
  /**
   * After a resume, re-send the latest input with a new seq if the room had not applied it
   * (§20.4 step 7). Right for inputs that set a state, such as an `arena` direction. Default true.
   */
  resendLatestInput?: boolean;
}

export interface SessionOptions {
  /** Protocol version for `hello` (§18, §19). Default 2. */
  protocol?: ProtocolVersion;
  /** WebSocket constructor; defaults to `globalThis.WebSocket` (absent in Node 20: pass `ws`). */
  WebSocket?: WebSocketConstructor;
  /** Acknowledge every this many ticks (must stay under `window / 2`). Default 4. */
  ackEvery?: number;
  /** Resume after a drop (§20); `false` turns it off. Default on, with the defaults above. */
  resume?: boolean | ResumeOptions;
  /** Redirects followed for one connection before giving up (§5 step 4). Default 4. */
  maxRedirects?: number;
  /** Time from opening a socket to the server's first frame. Default 10000 ms. */
  answerTimeoutMs?: number;
  /**
   * A joined session that receives no frame for this long is treated as lost (a room sends one
   * frame per tick, §20.5), and resumed. 0 turns the watchdog off. Default 5000 ms.
   */
  staleAfterMs?: number;
  /** Time `leave()` waits for the server's close. Default 3000 ms. */
  leaveTimeoutMs?: number;
  /** Source of randomness for the backoff jitter. Default `Math.random`. */
  random?: () => number;
}

export type SessionState = "connecting" | "open" | "resuming" | "closed";

export interface SessionEvents {
  /** The session's state changed. */
  state: SessionState;
  /** A frame arrived (any frame), with its size in bytes. */
  frame: { bytes: number };
  /** The mirror reached a new tick (a snapshot or a delta applied). */
  tick: { tick: number; snapshot: boolean };
  /** A broadcast event (from a delta) or a private `event` message (§8). */
  event: { payload: Value; broadcast: boolean };
  /** An `error` message from the server (§12). A close may follow. */
  serverError: ServerError;
  /** The server sent something this client cannot read; the session resyncs and goes on. */
  protocolError: ProtocolError;
  /** A delta did not apply and `resync` was sent (§7). */
  resync: NotApplied;
  /** The room applied this player's inputs up to `seq`; latency from sending it to the ack. */
  ack: { seq: number; latencyMs: number | null };
  /** An application pong (§10) and its round trip. */
  pong: { nonce: number; tick: number; rttMs: number };
  /** The connection dropped and a resume attempt is about to start after `delayMs`. */
  resuming: { attempt: number; delayMs: number };
  /** The session was resumed (§20.4): `welcome.resumed` is true, same player. */
  resumed: Welcome;
  /** The session is over. */
  closed: SessionEnd;
}

const OPEN = 1;
const RESYNC_RETRY_MS = 1_000;
const CLIENT_DROP_CODE = 4100; // a client close code (3000–4999) for a connection we gave up on

interface Attempt {
  kind: "joined" | "redirect" | "refused" | "lost";
  url?: string;
  end?: SessionEnd;
}

/**
 * A joined session. Create it with {@link RoomSession.join}; read `mirror`, send inputs with
 * {@link sendInput}, listen with {@link on}, end with {@link leave}.
 */
export class RoomSession extends Emitter<SessionEvents> {
  readonly mirror = new Mirror();
  readonly protocol: ProtocolVersion;
  state: SessionState = "connecting";
  /** The last `welcome` (the first one, or the one of the last resume). */
  welcome: Welcome | null = null;
  /** The URL of the current connection: the seat's, or where a redirect sent us. */
  wsUrl: string;
  /** Successful resumes so far. */
  resumes = 0;
  /** The last application round trip, in ms (null before the first pong). */
  rttMs: number | null = null;
  /** The last input→ack latency, in ms (null before the first ack of an input). */
  ackLatencyMs: number | null = null;
  /** Bytes of every frame received, for bandwidth displays. */
  bytesReceived = 0;
  /** How the session ended, once `state` is "closed". */
  end: SessionEnd | null = null;

  private socket: WebSocketLike | null = null;
  private readonly options: Required<Omit<SessionOptions, "resume" | "WebSocket">> & {
    resume: Required<ResumeOptions> | null;
    WebSocket: WebSocketConstructor;
  };
  private seq = 0;
  private readonly inputSentAt = new Map<number, number>();
  private lastOwnAck = 0;
  /** The latest input, and whether it went out (it did not if the connection was down). */
  private latestInput: { seq: number; payload: Value; sent: boolean } | null = null;
  private lastAckSent = -1;
  private awaitingSnapshot = false;
  private lastError: ServerError | null = null;
  private lastFrameAt = 0;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private nextNonce = 1;
  private readonly pings = new Map<number, { sentAt: number; resolve: (rtt: number) => void; reject: (error: Error) => void }>();
  private leaving: ((end: SessionEnd) => void) | null = null;
  private closedByClient = false;
  /** Aborts the connection attempt in flight (when the session is closed meanwhile). */
  private cancelAttempt: (() => void) | null = null;
  /** Ends the backoff wait between resume attempts early. */
  private wakeUp: (() => void) | null = null;
  private resendPending = false;
  private lastResyncAt = 0;

  private constructor(seat: Pick<Seat, "ws_url">, options: SessionOptions) {
    super();
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (WebSocketImpl === undefined) {
      throw new Error("no WebSocket in this environment: pass SessionOptions.WebSocket (e.g. the `ws` package)");
    }
    const resume = options.resume === false ? null : options.resume === true || options.resume === undefined ? {} : options.resume;
    this.options = {
      protocol: options.protocol ?? 2,
      WebSocket: WebSocketImpl,
      ackEvery: options.ackEvery ?? 4,
      maxRedirects: options.maxRedirects ?? 4,
      answerTimeoutMs: options.answerTimeoutMs ?? 10_000,
      staleAfterMs: options.staleAfterMs ?? 5_000,
      leaveTimeoutMs: options.leaveTimeoutMs ?? 3_000,
      random: options.random ?? Math.random,
      resume:
        resume === null
          ? null
          : {
              giveUpAfterMs: resume.giveUpAfterMs ?? 30_000,
              baseDelayMs: resume.baseDelayMs ?? 250,
              maxDelayMs: resume.maxDelayMs ?? 5_000,
              resendLatestInput: resume.resendLatestInput ?? true,
            },
    };
    this.protocol = this.options.protocol;
    this.wsUrl = seat.ws_url;
  }

  /**
   * Opens the seat's WebSocket, sends `hello`, follows redirects, and resolves once the
   * `[welcome, snapshot]` frame is applied. Rejects with a {@link SessionError} carrying the
   * server's error code and close code when the join is refused.
   */
  static async join(seat: Pick<Seat, "ws_url" | "token">, options: SessionOptions = {}): Promise<RoomSession> {
    const session = new RoomSession(seat, options);
    const hello: Hello = { protocol: session.protocol, token: seat.token };
    let url = seat.ws_url;
    for (let redirects = 0; ; redirects += 1) {
      const attempt = await session.attempt(url, hello);
      if (attempt.kind === "joined") return session;
      if (attempt.kind === "redirect" && redirects < session.options.maxRedirects) {
        url = attempt.url as string;
        continue;
      }
      const end: SessionEnd =
        attempt.kind === "redirect"
          ? { reason: "redirect", code: 4012, error: null, text: "too many redirects" }
          : (attempt.end as SessionEnd);
      session.finish(end);
      throw new SessionError(end);
    }
  }

  /** This player's id (`welcome.player`). */
  get playerId(): number | null {
    return this.welcome?.player ?? null;
  }

  /** Sends an input with the next seq; returns the seq, or null when not connected (resuming). */
  sendInput(payload: Value): number | null {
    if (this.state !== "open") {
      // Remembered, so that a resume re-sends it (§20.4 step 7).
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
  ping(timeoutMs = 5_000): Promise<number> {
    if (this.state !== "open") return Promise.reject(new Error(`cannot ping: session is ${this.state}`));
    const nonce = this.nextNonce++;
    return new Promise<number>((resolve, reject) => {
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
        },
      });
      this.send({ ping: { nonce } });
    });
  }

  /** Asks for a fresh snapshot (§7); deltas are ignored until it comes. */
  resync(): void {
    this.awaitingSnapshot = true;
    this.lastResyncAt = now();
    this.send({ resync: {} });
  }

  /** Leaves the room (the seat is freed) and resolves once the server closed (1000 `normal`). */
  leave(): Promise<SessionEnd> {
    if (this.state === "closed") return Promise.resolve(this.end as SessionEnd);
    if (this.state !== "open") {
      this.close();
      return Promise.resolve(this.end as SessionEnd);
    }
    return new Promise<SessionEnd>((resolve) => {
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
  close(): void {
    if (this.state === "closed") return;
    this.closedByClient = true;
    const socket = this.socket;
    this.detach();
    try {
      socket?.close(1000, "client closed");
    } catch {
      // already closing
    }
    this.finish({ reason: "client_closed", code: null, error: null, text: "" });
  }

  // --- connecting ------------------------------------------------------------------------------

  /**
   * Opens one socket to `url`, sends `hello`, and waits for the first frame. On a welcome the
   * socket becomes the session's (the frame is processed before this resolves).
   */
  private attempt(url: string, hello: Hello): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      let settled = false;
      let error: ServerError | null = null;
      let socket!: WebSocketLike;
      const settle = (result: Attempt): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.cancelAttempt = null;
        resolve(result);
      };
      const giveUp = (end: SessionEnd): void => {
        silence(socket);
        try {
          socket.close(CLIENT_DROP_CODE, "gave up");
        } catch {
          // not open yet
        }
        settle({ kind: "lost", end });
      };
      const timer = setTimeout(
        () => giveUp({ reason: "connection_lost", code: null, error, text: "no answer in time" }),
        this.options.answerTimeoutMs,
      );
      this.cancelAttempt = () => giveUp({ reason: "client_closed", code: null, error: null, text: "" });
      try {
        socket = new this.options.WebSocket(url);
      } catch (constructorError) {
        // An invalid URL, for example: nothing to retry.
        settle({
          kind: "refused",
          end: { reason: "connection_lost", code: null, error: null, text: String(constructorError) },
        });
        return;
      }
      socket.binaryType = "arraybuffer";
      socket.onopen = () => socket.send(encodeClientMessage({ hello }));
      socket.onerror = () => {
        // A close event follows; it decides.
      };
      socket.onclose = (event) => {
        const end = this.endOf(event.code, event.reason, error);
        // An answer with an error is a refusal; a connection that ended without one is lost
        // (cannot connect, handshake refused, dropped before answering): retried when resuming.
        settle(error === null ? { kind: "lost", end } : { kind: "refused", end });
      };
      socket.onmessage = (event) => {
        const frame = this.readFrame(event.data);
        if (frame === null) return;
        const first = frame.messages[0];
        if (first?.type === "welcome") {
          settle({ kind: "joined" });
          this.adopt(socket, url);
          this.onFrame(frame.messages);
          return;
        }
        if (first?.type === "redirect") {
          silence(socket);
          socket.close(1000, "redirected");
          settle({ kind: "redirect", url: first.body.ws_url });
          return;
        }
        for (const message of frame.messages) {
          if (message.type === "error") {
            error = message.body;
            this.emit("serverError", message.body);
          }
        }
        // The close follows the error frame (§5 step 4); onclose settles.
      };
    });
  }

  /** Makes `socket` the session's connection. */
  private adopt(socket: WebSocketLike, url: string): void {
    this.socket = socket;
    this.wsUrl = url;
    this.lastError = null;
    this.lastFrameAt = now();
    socket.onmessage = (event) => {
      const frame = this.readFrame(event.data);
      if (frame !== null) this.onFrame(frame.messages);
    };
    socket.onclose = (event) => this.onSocketClosed(socket, event.code, event.reason);
    socket.onerror = () => {};
    this.setState("open");
    if (this.options.staleAfterMs > 0 && this.watchdog === null) {
      const period = Math.max(50, Math.floor(this.options.staleAfterMs / 4));
      this.watchdog = setInterval(() => this.checkStale(), period);
    }
  }

  /** Stops listening to the current socket (it may still close later; we no longer care). */
  private detach(): void {
    if (this.socket !== null) silence(this.socket);
    this.socket = null;
  }

  /**
   * Tells the session the network changed (a browser's `offline`/`online` events, a mobile
   * network switch): an open session gives its socket up and resumes on a new one (§20.5); a
   * session waiting between resume attempts tries at once. No effect once closed.
   */
  reconnect(): void {
    if (this.state === "open") this.dropSocket("reconnect requested");
    else if (this.state === "resuming") this.wakeUp?.();
  }

  private checkStale(): void {
    if (this.state !== "open" || this.socket === null) return;
    if (now() - this.lastFrameAt < this.options.staleAfterMs) return;
    // No frame for a few ticks' worth of time: the network is gone. Waiting for TCP to say so
    // can take minutes, so give the socket up and resume on a new one.
    this.dropSocket("no frames");
  }

  private dropSocket(why: string): void {
    const socket = this.socket;
    this.detach();
    try {
      // A close frame without `leave` keeps the seat (§20.2), if it gets through at all.
      socket?.close(CLIENT_DROP_CODE, why);
    } catch {
      // already closing
    }
    this.lost({ reason: "connection_lost", code: null, error: null, text: why });
  }

  private onSocketClosed(socket: WebSocketLike, code: number, text: string): void {
    if (socket !== this.socket) return;
    this.detach();
    const end = this.endOf(code, text, this.lastError);
    if (this.leaving !== null || this.closedByClient || !closeKeepsSeat(code)) {
      this.finish(end);
      return;
    }
    this.lost(end);
  }

  /** The connection is gone but the seat may wait: resume if we can, else end. */
  private lost(end: SessionEnd): void {
    this.rejectPings("connection lost");
    const token = this.welcome?.resume_token;
    if (this.options.resume === null || token === undefined) {
      this.finish(end);
      return;
    }
    void this.resumeLoop(end);
  }

  /** §20.5: full-jitter backoff, redirects at once, stop at the first error or past the window. */
  private async resumeLoop(dropped: SessionEnd): Promise<void> {
    const settings = this.options.resume as Required<ResumeOptions>;
    this.setState("resuming");
    const deadline = now() + settings.giveUpAfterMs;
    let url = this.wsUrl;
    let attemptNumber = 0;
    // 4017: the room already waits on its new owner, and the old node redirects there only
    // while it lingers: resume at once.
    let skipWait = dropped.code === 4017;
    while (now() < deadline) {
      if (!skipWait) {
        const delayMs = Math.min(backoffDelay(attemptNumber, settings, this.options.random), Math.max(0, deadline - now()));
        this.emit("resuming", { attempt: attemptNumber, delayMs });
        await this.wait(delayMs);
        if (this.state !== "resuming") return; // closed meanwhile
      }
      skipWait = false;
      attemptNumber += 1;
      const token = this.welcome?.resume_token as string;
      const hello: Hello = {
        protocol: this.protocol,
        token: "",
        resume: { token, last_tick: this.mirror.tick },
      };
      const attempt = await this.attempt(url, hello);
      if (this.state !== "resuming" && attempt.kind !== "joined") return;
      switch (attempt.kind) {
        case "joined":
          return; // onFrame handled the welcome
        case "redirect":
          url = attempt.url as string;
          attemptNumber = 0;
          skipWait = true;
          continue;
        case "refused":
          this.finish(attempt.end as SessionEnd);
          return;
        case "lost":
          continue;
      }
    }
    this.finish({ reason: "resume_failed", code: dropped.code, error: null, text: "the resume window passed" });
  }

  private wait(ms: number): Promise<void> {
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

  private readFrame(data: unknown): { messages: ServerMessage[]; bytes: number } | null {
    const bytes =
      data instanceof ArrayBuffer ? new Uint8Array(data) : data instanceof Uint8Array ? data : null;
    if (bytes === null) {
      this.emit("protocolError", new ProtocolError("shape", "a text frame: the server sends binary frames only"));
      if (this.state === "open") this.resync();
      return null;
    }
    this.bytesReceived += bytes.byteLength;
    this.lastFrameAt = now();
    this.emit("frame", { bytes: bytes.byteLength });
    try {
      return { messages: decodeServerFrame(bytes), bytes: bytes.byteLength };
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.emit("protocolError", error);
      // Whatever that frame was, the state may have missed a tick: start over from a snapshot.
      if (this.state === "open") this.resync();
      return null;
    }
  }

  private onFrame(messages: ServerMessage[]): void {
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
            if (!(error instanceof ProtocolError)) throw error;
            this.emit("protocolError", error);
            this.resync();
          }
          break;
        case "delta":
        case "d": {
          if (this.awaitingSnapshot) {
            // The snapshot normally comes with the next tick frame. If it has not after a
            // second of deltas (it was in a frame we could not read), ask again.
            if (now() - this.lastResyncAt > RESYNC_RETRY_MS) this.resync();
            break;
          }
          const outcome =
            message.type === "delta" ? this.mirror.applyDelta(message.body) : this.mirror.applyCompactDelta(message.body);
          if (!outcome.applied) {
            if (outcome.reason === "malformed") this.emit("protocolError", outcome.error);
            this.emit("resync", outcome);
            this.resync();
            break;
          }
          this.afterTick(false);
          for (const payload of outcome.events) this.emit("event", { payload, broadcast: true });
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
          break; // a redirect only answers hello; unknown messages are later additions
      }
    }
    this.maybeAck(ackNow);
    if (this.resendPending) {
      this.resendPending = false;
      this.resendAfterResume();
    }
  }

  private onWelcome(welcome: Welcome): void {
    const resumed = welcome.resumed && this.welcome !== null;
    this.welcome = welcome;
    if (!resumed) return;
    this.resumes += 1;
    // Re-send the latest input if the room never applied it: decided once the rest of this
    // frame (the missed deltas or a snapshot) is applied, before anyone else can send.
    this.resendPending = true;
    this.emit("resumed", welcome);
  }

  private resendAfterResume(): void {
    const settings = this.options.resume;
    const latest = this.latestInput;
    if (settings === null || !settings.resendLatestInput || latest === null || this.state !== "open") return;
    const applied = this.mirror.acks.get(this.welcome?.player ?? -1) ?? 0;
    if (!latest.sent || latest.seq > applied) this.sendInput(latest.payload);
  }

  private afterSnapshot(): void {
    this.awaitingSnapshot = false;
    this.afterTick(true);
  }

  private afterTick(snapshot: boolean): void {
    this.emit("tick", { tick: this.mirror.tick, snapshot });
    const player = this.welcome?.player;
    if (player === undefined) return;
    const applied = this.mirror.acks.get(player);
    if (applied === undefined || applied <= this.lastOwnAck) return;
    this.lastOwnAck = applied;
    const sentAt = this.inputSentAt.get(applied);
    const latencyMs = sentAt === undefined ? null : now() - sentAt;
    for (const seq of [...this.inputSentAt.keys()]) if (seq <= applied) this.inputSentAt.delete(seq);
    if (latencyMs !== null) this.ackLatencyMs = latencyMs;
    this.emit("ack", { seq: applied, latencyMs });
  }

  private maybeAck(force: boolean): void {
    if (this.state !== "open" || !this.mirror.hasState || this.awaitingSnapshot) return;
    const tick = this.mirror.tick;
    if (force || tick - this.lastAckSent >= this.options.ackEvery) {
      this.lastAckSent = tick;
      this.send({ ack: { tick } });
    }
  }

  private onPong(nonce: number, tick: number): void {
    const pending = this.pings.get(nonce);
    if (pending === undefined) return;
    this.pings.delete(nonce);
    const rttMs = now() - pending.sentAt;
    this.rttMs = rttMs;
    pending.resolve(rttMs);
    this.emit("pong", { nonce, tick, rttMs });
  }

  // --- plumbing --------------------------------------------------------------------------------

  private send(message: ClientMessage): void {
    const socket = this.socket;
    if (socket === null || socket.readyState !== OPEN) return; // a drop is noticed by close/watchdog
    socket.send(encodeClientMessage(message));
  }

  private endOf(code: number, text: string, error: ServerError | null): SessionEnd {
    const known = closeReasonOf(code);
    const reason =
      known ?? (code === 1006 || code === 1005 || code === 1001 ? "connection_lost" : code >= 4000 ? "server_close" : "connection_lost");
    return { reason, code, error, text };
  }

  private setState(state: SessionState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", state);
  }

  private rejectPings(why: string): void {
    for (const pending of this.pings.values()) pending.reject(new Error(why));
    this.pings.clear();
  }

  private finish(end: SessionEnd): void {
    if (this.state === "closed") return;
    this.end = end;
    if (this.watchdog !== null) clearInterval(this.watchdog);
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
}

/**
 * Stops listening to a socket we gave up on. Errors still get a no-op listener: the `ws`
 * package emits `error` when a socket is closed while connecting, and an EventEmitter with no
 * `error` listener throws.
 */
function silence(socket: WebSocketLike): void {
  socket.onopen = socket.onmessage = socket.onclose = null;
  socket.onerror = () => {};
}

function now(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}
