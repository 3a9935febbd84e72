//! The session actor: one WebSocket connection, and the only file that reads or writes its
//! frames, so the transport can change here alone.
//!
//! The session owns its TCP stream once [`crate::upgrade`] has answered the handshake: frames
//! are decoded from a small read buffer (actix-http's WebSocket codec, as a stream the actor
//! handles) and written by an [`Outbox`], which sends a room's shared `Bytes` without copying
//! them and keeps no buffer while the socket keeps up.
//!
//! What it owns: the connection's protocol state (awaiting `hello`, joining, joined), its
//! heartbeat, its rate limiter and its flow control ([`FlowControl`]).
//! Who sends it what: the client sends frames; its room sends [`RoomFrame`] (one per tick) and
//! [`RoomClosed`]. It sends its room [`JoinRoom`], [`PlayerInput`], [`RequestSnapshot`] and, as it
//! stops, [`LeaveRoom`].
//!
//! Every server-side close carries a documented [`CloseCode`], preceded by an `error` message
//! when the client did something wrong. Which close applies, and what a control frame gets, are
//! decided by the plain functions of [`policy`]; the client's frames are parsed by [`client_codec`].
//!
//! Every session is closed with `server_shutdown` (4011) as soon as shutdown begins, whatever its
//! phase: it watches the lobby's shutdown signal from `started()`, and a join in flight races it.

mod client_codec;
mod policy;

use crate::cluster::Cluster;
use crate::conn_limit::ConnectionGuard;
use crate::flow::{FlowControl, FrameVerdict};
use crate::lobby::Lobby;
use crate::outbox::{Opcode, Outbox};
use crate::rate_limit::{RateDecision, RateLimiter};
use crate::room::{JoinRoom, LeaveRoom, PlayerInput, RequestSnapshot, Room};
use actix::prelude::*;
use actix_http::ws;
use bytes::Bytes;
use client_codec::{ClientCodec, Incoming};
use ludus_protocol::{
    codec, ClientMessage, CloseCode, ErrorCode, ErrorMessage, Hello, PlayerId, Pong,
    ProtocolVersion, RoomId, ServerMessage,
};
use policy::{ControlAction, ControlFrame, Phase};
use socket2::SockRef;
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, Chain};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

/// How long a session waits for its room to answer a join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Initial read buffer of a connection. Client messages are tens of bytes; a larger one grows
/// the buffer (up to the frame limit) for as long as it is pending.
const READ_BUFFER_BYTES: usize = 512;

/// Bytes a client may leave unread beyond what the kernel buffers before it is closed with
/// `too_slow`: flow control normally stops sending long before, unless a client acknowledges
/// ticks it never reads.
pub const MAX_QUEUED_BYTES: usize = 256 * 1024;

/// Kernel send buffer requested for each session's socket (`SO_SNDBUF`), so the kernel part of
/// what a client can leave unread is bounded too: left to autotuning, Linux grows it to several
/// MiB for a client that does not read, far beyond [`MAX_QUEUED_BYTES`]. Linux doubles the
/// requested value (the extra is for its bookkeeping), so the buffer is 128 KiB. A tick frame is
/// a few hundred bytes, so this costs no throughput; a large snapshot waits in the outbox.
pub const SEND_BUFFER_BYTES: usize = 64 * 1024;

/// How long a closing session waits for its close frame to drain before dropping the socket.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Session mailbox size: frames from the room queue here; past this the room's `try_send`
/// fails and the delta is skipped (and healed by a snapshot).
const MAILBOX_CAPACITY: usize = 16;

/// What a frame from the room carries, so flow control can judge it without decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A full snapshot (possibly with a welcome) of `tick`.
    Snapshot {
        /// The snapshot's tick.
        tick: u64,
    },
    /// A delta from `base_tick` to `tick`.
    Delta {
        /// The tick it brings the client to.
        tick: u64,
        /// The tick it applies to.
        base_tick: u64,
    },
}

/// An encoded batch frame for this session's client.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomFrame {
    /// What the frame is.
    pub kind: FrameKind,
    /// The encoded batch, shared with other members when it has no per-player extras.
    pub bytes: Bytes,
}

/// The room ended; the session closes with `reason`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomClosed {
    /// The close code for the client.
    pub reason: CloseCode,
}

/// Per-connection limits, shared by every session of a server.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Largest accepted client message, in bytes.
    pub max_message_bytes: usize,
    /// Time to send `hello`.
    pub hello_timeout: Duration,
    /// Interval between pings.
    pub heartbeat_interval: Duration,
    /// Close when nothing was heard for this long.
    pub idle_timeout: Duration,
    /// Sustained messages per second.
    pub rate_per_sec: u32,
    /// Burst above the rate.
    pub burst: u32,
    /// Close a client paused by flow control for this long.
    pub slow_client_timeout: Duration,
}

enum SessionState {
    AwaitingHello,
    Joining,
    Joined {
        room: Addr<Room>,
        player: PlayerId,
    },
    /// The close frame is queued; the session stops once the close handshake is over.
    Closing(CloseProgress),
}

/// How far a closing handshake got. The socket is dropped only when our close frame is written
/// and the client is done (its close frame or end of stream), or after [`CLOSE_GRACE`]: dropping
/// it while the client's bytes are still unread makes the kernel send a reset, and the client
/// could lose the error and close frame it has not read yet.
#[derive(Debug, Default, Clone, Copy)]
struct CloseProgress {
    written: bool,
    client_done: bool,
    read_failed: bool,
}

/// One client connection.
pub struct Session {
    id: u64,
    room_id: RoomId,
    lobby: Arc<Lobby>,
    cluster: Option<Arc<Cluster>>,
    limits: Arc<SessionLimits>,
    state: SessionState,
    heard_at: Instant,
    limiter: RateLimiter,
    flow: FlowControl,
    last_tick: u64,
    close_reason: &'static str,
    outbox: Outbox,
    /// Whether a [`Flush::Queued`] of the outbox is running.
    draining: bool,
    /// Held for the session's life: its slot under the WebSocket caps.
    _connection: ConnectionGuard,
}

/// The client's side of the connection: what it sent along with the handshake, then the socket.
type ClientFrames = FramedRead<Chain<Cursor<Bytes>, OwnedReadHalf>, ClientCodec>;

/// Everything a session needs besides its socket (it may be built on one thread and started
/// on another).
pub struct SessionSetup {
    /// What the client sent right after the handshake, already read by the HTTP layer.
    pub received: Bytes,
    /// The room the client asked for.
    pub room_id: RoomId,
    /// This node's lobby.
    pub lobby: Arc<Lobby>,
    /// The cluster, to redirect a client whose room lives elsewhere.
    pub cluster: Option<Arc<Cluster>>,
    /// Per-connection limits.
    pub limits: Arc<SessionLimits>,
    /// The session's slot under the WebSocket caps, freed when the session ends.
    pub connection: ConnectionGuard,
}

impl Session {
    /// Starts the session of a connection whose WebSocket handshake was just answered, on the
    /// current thread.
    pub fn start(io: TcpStream, setup: SessionSetup) {
        let SessionSetup {
            received,
            room_id,
            lobby,
            cluster,
            limits,
            connection,
        } = setup;
        if let Err(error) = SockRef::from(&io).set_send_buffer_size(SEND_BUFFER_BYTES) {
            // Not fatal: the unread bound still holds, on top of a larger kernel buffer.
            tracing::warn!(%error, "cannot cap the send buffer of a WebSocket connection");
        }
        let (read, write) = io.into_split();
        // The codec refuses frames far above the limit before buffering them; frames between the
        // limit and this size reach the session, which answers `message_too_large` precisely.
        let codec = ClientCodec::new(limits.max_message_bytes.saturating_mul(2));
        let received = Cursor::new(received);
        Session::create(move |ctx| {
            let frames: ClientFrames =
                FramedRead::with_capacity(received.chain(read), codec, READ_BUFFER_BYTES);
            ctx.add_stream(frames);
            let now = Instant::now();
            Self {
                id: lobby.next_session_id(),
                room_id,
                limiter: RateLimiter::new(limits.rate_per_sec, limits.burst, now),
                lobby,
                cluster,
                limits,
                state: SessionState::AwaitingHello,
                heard_at: now,
                flow: FlowControl::new(2),
                last_tick: 0,
                close_reason: "client_closed",
                outbox: Outbox::new(write),
                draining: false,
                _connection: connection,
            }
        });
    }

    fn send_messages(&mut self, messages: &[ServerMessage], ctx: &mut Context<Self>) {
        let frame = codec::encode_batch(messages);
        self.send_frame(Bytes::from(frame), ctx);
    }

    fn send_frame(&mut self, frame: Bytes, ctx: &mut Context<Self>) {
        let metrics = self.lobby.metrics();
        metrics.messages_sent.inc();
        metrics.bytes_sent.inc_by(frame.len() as u64);
        self.write(Opcode::Binary, frame, ctx);
    }

    fn send_error(&mut self, code: ErrorCode, message: String, ctx: &mut Context<Self>) {
        self.send_messages(&[ServerMessage::Error(ErrorMessage { code, message })], ctx);
    }

    /// Writes a frame, draining in the background what the socket does not take at once; a
    /// failed write means the client is gone.
    fn write(&mut self, opcode: Opcode, payload: Bytes, ctx: &mut Context<Self>) {
        let sent = self.outbox.send(opcode, payload);
        self.after_send(sent, ctx);
    }

    /// Acts on what a send left in the outbox: closes a client that leaves too much unread,
    /// drains the rest in the background.
    fn after_send(&mut self, sent: bool, ctx: &mut Context<Self>) {
        if !sent {
            return ctx.stop();
        }
        if self.outbox.queued_bytes() > MAX_QUEUED_BYTES {
            // No-op when already closing: the close frame follows whatever is queued.
            return self.close(CloseCode::TooSlow, None, ctx);
        }
        if self.outbox.is_backed_up() && !self.draining {
            self.draining = true;
            ctx.spawn(Flush::Queued);
        }
    }

    /// Closes with `close`, after an `error` message when the client is at fault.
    fn close(
        &mut self,
        close: CloseCode,
        error: Option<(ErrorCode, String)>,
        ctx: &mut Context<Self>,
    ) {
        if matches!(self.state, SessionState::Closing(_)) {
            return;
        }
        self.leave_room();
        // Closing from here on: nothing below may start a second close.
        self.state = SessionState::Closing(CloseProgress::default());
        self.close_reason = close.reason();
        if close == CloseCode::TooSlow {
            // What the client has not started reading is stale: the close goes next in line, so
            // a client that reads again gets it within the close grace.
            self.outbox.discard_unstarted();
        }
        if let Some((code, message)) = error {
            tracing::debug!(session = self.id, %close, %code, %message, "closing session");
            self.send_error(code, message, ctx);
        }
        self.shut(
            Some(ws::CloseReason {
                code: ws::CloseCode::from(close.code()),
                description: Some(close.reason().to_owned()),
            }),
            ctx,
        );
    }

    /// Sends the close frame and ends the write side once it is written ([`Flush::AndShutdown`]); stops
    /// when the client is done too, or after [`CLOSE_GRACE`] when it does not read.
    fn shut(&mut self, reason: Option<ws::CloseReason>, ctx: &mut Context<Self>) {
        let sent = match reason {
            Some(reason) => {
                let description = reason.description.as_deref().unwrap_or_default();
                self.outbox.send_close(reason.code.into(), description)
            }
            None => self.outbox.send(Opcode::Close, Bytes::new()),
        };
        if !sent {
            return ctx.stop();
        }
        ctx.spawn(Flush::AndShutdown);
        ctx.run_later(CLOSE_GRACE, |_, ctx| ctx.stop());
    }

    /// Stops once the close handshake is over: our close frame written, the client done.
    fn stop_when_closed(&mut self, ctx: &mut Context<Self>) {
        if let SessionState::Closing(CloseProgress {
            written: true,
            client_done: true,
            ..
        }) = self.state
        {
            ctx.stop();
        }
    }

    fn leave_room(&mut self) {
        if let SessionState::Joined { room, player } = &self.state {
            // do_send: a single, bounded goodbye that must reach the room.
            room.do_send(LeaveRoom {
                player: *player,
                session_id: self.id,
            });
        }
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        if matches!(self.state, SessionState::Closing(_)) {
            return; // no frame may follow the close frame
        }
        let now = Instant::now();
        let overdue = policy::overdue(
            now.saturating_duration_since(self.heard_at),
            self.limits.idle_timeout,
            self.flow.paused_for(now),
            self.limits.slow_client_timeout,
        );
        match overdue {
            Some(CloseCode::TooSlow) => {
                let message =
                    "paused by flow control, and no ticks acknowledged in time".to_owned();
                self.close(
                    CloseCode::TooSlow,
                    Some((ErrorCode::ServerBusy, message)),
                    ctx,
                )
            }
            Some(close) => self.close(close, None, ctx),
            None => self.write(Opcode::Ping, Bytes::new(), ctx),
        }
    }

    fn on_binary(&mut self, bytes: Bytes, ctx: &mut Context<Self>) {
        if bytes.len() > self.limits.max_message_bytes {
            let message = format!(
                "message of {} bytes exceeds the limit of {} bytes",
                bytes.len(),
                self.limits.max_message_bytes
            );
            return self.close(
                CloseCode::MessageTooLarge,
                Some((ErrorCode::MessageTooLarge, message)),
                ctx,
            );
        }
        match self.limiter.check(Instant::now()) {
            RateDecision::Allow => {}
            RateDecision::Drop { notify } => return self.rate_limited(notify, ctx),
            RateDecision::Kick => return self.kick_for_rate(ctx),
        }
        match codec::decode_client(&bytes) {
            Ok(message) => self.on_message(message, ctx),
            Err(error) => self.close(
                CloseCode::ProtocolError,
                Some((ErrorCode::MalformedMessage, error.to_string())),
                ctx,
            ),
        }
    }

    /// A frame over the rate was dropped; the client is told when `notify`.
    fn rate_limited(&mut self, notify: bool, ctx: &mut Context<Self>) {
        self.lobby
            .metrics()
            .inputs_dropped
            .with_label_values(&["rate_limited"])
            .inc();
        if notify {
            let message = format!(
                "more than {} messages per second (burst {}); excess dropped",
                self.limits.rate_per_sec, self.limits.burst
            );
            self.send_error(ErrorCode::RateLimited, message, ctx);
        }
    }

    fn kick_for_rate(&mut self, ctx: &mut Context<Self>) {
        let message = "sustained messaging above the rate limit".to_owned();
        self.close(
            CloseCode::RateLimited,
            Some((ErrorCode::RateLimited, message)),
            ctx,
        );
    }

    /// A WebSocket ping or pong: counted toward the rate limit, and a ping answered only once
    /// joined ([`policy::control_frame_action`]).
    fn on_control(&mut self, frame: ControlFrame, payload: Bytes, ctx: &mut Context<Self>) {
        let rate = self.limiter.check(Instant::now());
        match policy::control_frame_action(frame, self.phase(), rate) {
            ControlAction::Pong => {
                let sent = self.outbox.send_pong(payload);
                self.after_send(sent, ctx);
            }
            ControlAction::Nothing => {}
            ControlAction::NotifyRateLimited => self.rate_limited(true, ctx),
            ControlAction::Kick => self.kick_for_rate(ctx),
        }
    }

    fn phase(&self) -> Phase {
        match self.state {
            SessionState::AwaitingHello => Phase::AwaitingHello,
            SessionState::Joining => Phase::Joining,
            SessionState::Joined { .. } => Phase::Joined,
            SessionState::Closing(_) => Phase::Closing,
        }
    }

    fn on_message(&mut self, message: ClientMessage, ctx: &mut Context<Self>) {
        let (room, player) = match &self.state {
            SessionState::AwaitingHello => {
                return match message {
                    ClientMessage::Hello(hello) => self.on_hello(hello, ctx),
                    _ => {
                        let message = "the first message must be `hello`".to_owned();
                        self.close(
                            CloseCode::ProtocolError,
                            Some((ErrorCode::UnexpectedMessage, message)),
                            ctx,
                        )
                    }
                };
            }
            SessionState::Joined { room, player } => (room.clone(), *player),
            SessionState::Joining | SessionState::Closing(_) => return,
        };
        match message {
            ClientMessage::Hello(_) => {
                let message = "`hello` was already accepted".to_owned();
                self.send_error(ErrorCode::UnexpectedMessage, message, ctx);
            }
            ClientMessage::Input(input) => {
                self.on_ack(input.ack_tick, &room, player);
                let queued = room.try_send(PlayerInput {
                    player,
                    seq: input.seq,
                    payload: input.payload,
                });
                if queued.is_ok() {
                    self.lobby.metrics().inputs.inc();
                } else {
                    self.lobby
                        .metrics()
                        .inputs_dropped
                        .with_label_values(&["server_busy"])
                        .inc();
                    let message = format!("input {} dropped: the room is overloaded", input.seq);
                    self.send_error(ErrorCode::ServerBusy, message, ctx);
                }
            }
            ClientMessage::Ack(ack) => self.on_ack(ack.tick, &room, player),
            ClientMessage::Resync(_) => {
                if self.flow.await_snapshot() {
                    // do_send: at most one request per snapshot awaited, so bounded.
                    room.do_send(RequestSnapshot { player });
                }
            }
            ClientMessage::Leave(_) => self.close(CloseCode::Normal, None, ctx),
            ClientMessage::Ping(ping) => {
                let pong = ServerMessage::Pong(Pong {
                    nonce: ping.nonce,
                    tick: self.last_tick,
                });
                self.send_messages(&[pong], ctx);
            }
        }
    }

    fn on_ack(&mut self, tick: u64, room: &Addr<Room>, player: PlayerId) {
        if self.flow.on_ack(tick) {
            // do_send: flow control asks once per pause, so bounded.
            room.do_send(RequestSnapshot { player });
        }
    }

    fn on_hello(&mut self, hello: Hello, ctx: &mut Context<Self>) {
        // protocol-v2: the version is negotiated here and travels with the join.
        let Some(protocol) = ProtocolVersion::from_hello(hello.protocol) else {
            let message = format!(
                "server speaks protocols 1 and 2, client sent {}",
                hello.protocol
            );
            return self.close(
                CloseCode::ProtocolVersion,
                Some((ErrorCode::ProtocolVersion, message)),
                ctx,
            );
        };
        if self.lobby.is_shutting_down() {
            return self.close(CloseCode::ServerShutdown, None, ctx);
        }
        let claims = match self.lobby.tokens().verify(&hello.token, &self.room_id) {
            Ok(claims) => claims,
            Err(refused) => {
                let error = Some((refused.code(), refused.to_string()));
                return self.close(CloseCode::Unauthorized, error, ctx);
            }
        };
        let Some(room) = self.lobby.directory().addr(&self.room_id) else {
            let redirect = self
                .cluster
                .as_ref()
                .and_then(|cluster| cluster.redirect_for(&self.room_id));
            if let Some(redirect) = redirect {
                tracing::debug!(room_id = %self.room_id, node = %redirect.node, "redirecting");
                self.send_messages(&[ServerMessage::Redirect(redirect)], ctx);
                return self.close(CloseCode::Redirect, None, ctx);
            }
            let message = format!("room `{}` does not exist on this server", self.room_id);
            return self.close(
                CloseCode::RoomNotFound,
                Some((ErrorCode::RoomNotFound, message)),
                ctx,
            );
        };
        let player = claims.player_id();
        self.state = SessionState::Joining;
        let join = JoinRoom {
            player,
            name: claims.name,
            session_id: self.id,
            protocol,
            frames: ctx.address().recipient(),
            closer: ctx.address().recipient(),
        };
        let answer = room.send(join).timeout(JOIN_TIMEOUT);
        let mut shutdown = self.lobby.shutdown_signal();
        let answer_or_shutdown = async move {
            tokio::select! {
                answer = answer => Some(answer),
                // A dropped signal (the lobby is gone) never wins the race.
                Ok(_) = shutdown.wait_for(|&down| down) => None,
            }
        };
        let joining = answer_or_shutdown
            .into_actor(self)
            .map(move |answer, session, ctx| match answer {
                // Whether or not the room seated the player, it is closing too.
                None => session.close(CloseCode::ServerShutdown, None, ctx),
                Some(Ok(Ok(joined))) => {
                    session.flow = FlowControl::new(joined.window_ticks);
                    session.state = SessionState::Joined { room, player };
                }
                Some(Ok(Err(refused))) => {
                    let (close, code) = refused.codes();
                    session.close(close, Some((code, refused.to_string())), ctx);
                }
                Some(Err(_)) if session.lobby.is_shutting_down() => {
                    session.close(CloseCode::ServerShutdown, None, ctx)
                }
                Some(Err(_)) => {
                    let message = "the room closed before the join completed".to_owned();
                    session.close(
                        CloseCode::RoomNotFound,
                        Some((ErrorCode::RoomNotFound, message)),
                        ctx,
                    );
                }
            });
        // wait: hold every other event (client frames, room frames, the shutdown watch) until
        // the seat is settled; the join races the shutdown signal itself.
        ctx.wait(joining);
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        self.lobby.metrics().sessions.inc();
        ctx.run_interval(self.limits.heartbeat_interval, Self::heartbeat);
        ctx.run_later(self.limits.hello_timeout, |session, ctx| {
            if matches!(session.state, SessionState::AwaitingHello) {
                session.close(CloseCode::IdleTimeout, None, ctx);
            }
        });
        // Shutdown closes every session at once, before `hello` too: waiting for its timeout
        // would hold the shutdown, and the client should hear 4011, not 4007.
        let mut shutdown = self.lobby.shutdown_signal();
        let shutting_down = async move { shutdown.wait_for(|&down| down).await.is_ok() };
        ctx.spawn(
            shutting_down
                .into_actor(self)
                .map(|shutting_down, session, ctx| {
                    if shutting_down {
                        // No-op when already closing.
                        session.close(CloseCode::ServerShutdown, None, ctx);
                    }
                }),
        );
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.leave_room();
        self.lobby.metrics().sessions.dec();
        self.lobby.metrics().session_closed(self.close_reason);
    }
}

impl Handler<RoomFrame> for Session {
    type Result = ();

    fn handle(&mut self, frame: RoomFrame, ctx: &mut Self::Context) {
        let SessionState::Joined { room, player } = &self.state else {
            return;
        };
        let verdict = match frame.kind {
            FrameKind::Snapshot { tick } => self.flow.on_snapshot(tick),
            FrameKind::Delta { tick, base_tick } => {
                self.flow.on_delta(tick, base_tick, Instant::now())
            }
        };
        match verdict {
            FrameVerdict::Forward => {
                self.last_tick = match frame.kind {
                    FrameKind::Snapshot { tick } | FrameKind::Delta { tick, .. } => tick,
                };
                self.send_frame(frame.bytes, ctx);
            }
            FrameVerdict::Skip => self.lobby.metrics().deltas_skipped.inc(),
            FrameVerdict::SkipAndResync => {
                self.lobby.metrics().deltas_skipped.inc();
                // do_send: flow control asks once per gap, so bounded.
                room.do_send(RequestSnapshot { player: *player });
            }
        }
    }
}

impl Handler<RoomClosed> for Session {
    type Result = ();

    fn handle(&mut self, message: RoomClosed, ctx: &mut Self::Context) {
        // The room is gone: there is nobody to say goodbye to.
        if matches!(self.state, SessionState::Joined { .. }) {
            self.state = SessionState::Joining;
        }
        self.close(message.reason, None, ctx);
    }
}

impl StreamHandler<Result<Incoming, ws::ProtocolError>> for Session {
    fn handle(&mut self, item: Result<Incoming, ws::ProtocolError>, ctx: &mut Self::Context) {
        if let SessionState::Closing(progress) = &mut self.state {
            match item {
                Ok(Incoming::Frame(ws::Frame::Close(_))) => progress.client_done = true,
                // The connection failed: nothing more will come, nothing needs draining.
                Err(_) => progress.read_failed = true,
                Ok(_) => {} // drained: the client has not seen our close frame yet
            }
            return self.stop_when_closed(ctx);
        }
        let message = match item {
            Ok(Incoming::Frame(message)) => message,
            Ok(Incoming::Refused(ws::ProtocolError::Overflow)) => {
                let message = format!(
                    "frame exceeds the limit of {} bytes",
                    self.limits.max_message_bytes
                );
                return self.close(
                    CloseCode::MessageTooLarge,
                    Some((ErrorCode::MessageTooLarge, message)),
                    ctx,
                );
            }
            Ok(Incoming::Refused(error)) => {
                let error = Some((ErrorCode::MalformedMessage, error.to_string()));
                return self.close(CloseCode::ProtocolError, error, ctx);
            }
            // Reading failed (reset, or the stream ended inside a frame): the client is gone,
            // and its session ends as `client_closed`.
            Err(error) => {
                tracing::debug!(session = self.id, %error, "client connection failed");
                return ctx.stop();
            }
        };
        self.heard_at = Instant::now();
        match message {
            ws::Frame::Binary(bytes) => self.on_binary(bytes, ctx),
            ws::Frame::Text(_) => {
                let message =
                    "text frames are not part of the protocol: send MessagePack in binary frames";
                self.close(
                    CloseCode::ProtocolError,
                    Some((ErrorCode::MalformedMessage, message.to_owned())),
                    ctx,
                );
            }
            ws::Frame::Continuation(_) => {
                let message = "fragmented messages are not supported".to_owned();
                self.close(
                    CloseCode::ProtocolError,
                    Some((ErrorCode::MalformedMessage, message)),
                    ctx,
                );
            }
            ws::Frame::Ping(payload) => self.on_control(ControlFrame::Ping, payload, ctx),
            ws::Frame::Pong(payload) => self.on_control(ControlFrame::Pong, payload, ctx),
            ws::Frame::Close(reason) => {
                self.leave_room();
                self.state = SessionState::Closing(CloseProgress {
                    client_done: true,
                    ..CloseProgress::default()
                });
                self.shut(reason, ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        match &mut self.state {
            // The stream ends after a read error too; only a clean end means the client left.
            SessionState::Closing(progress) => {
                progress.client_done |= !progress.read_failed;
                self.stop_when_closed(ctx);
            }
            _ => ctx.stop(),
        }
    }
}

/// Writes what the outbox queued while the client's socket was full ([`Flush::Queued`]); for
/// a close, also ends the write side afterwards ([`Flush::AndShutdown`]), so the client reads
/// everything and then sees the end of the stream.
#[derive(Clone, Copy)]
enum Flush {
    Queued,
    AndShutdown,
}

impl ActorFuture<Session> for Flush {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        session: &mut Session,
        ctx: &mut Context<Session>,
        task: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let flush = *self;
        let result = std::task::ready!(match flush {
            Flush::Queued => session.outbox.poll_flush(task),
            Flush::AndShutdown => session.outbox.poll_shutdown(task),
        });
        match (flush, &mut session.state, result) {
            (Flush::Queued, _, Ok(())) => session.draining = false,
            (Flush::AndShutdown, SessionState::Closing(progress), Ok(())) => {
                progress.written = true;
                session.stop_when_closed(ctx);
            }
            _ => ctx.stop(), // the client is gone
        }
        std::task::Poll::Ready(())
    }
}
