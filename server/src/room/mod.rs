//! The room actor: owns one room's simulation and members, ticks at a fixed rate, and fans
//! each tick's delta out to its sessions.
//!
//! Who sends what:
//! - the lobby starts it (on one of the room threads) and sends [`ReserveSeat`], [`DeliverEvent`]
//!   and [`CloseRoom`];
//! - a connection's hello task sends [`JoinRoom`] with the connection itself: from then on the
//!   room reads and writes the player's socket ([`members`]), and no message passes per input
//!   or per frame.
//!
//! Every tick, in this order: read the members whose sockets have bytes (inputs, acks, pings)
//! and act on them, expire seat reservations, step the simulation (queued inputs, then the
//! game's tick), encode the delta **once** per protocol version in use, and write the same bytes
//! to every member of that version that flow control lets through; then heartbeats. A slow
//! client misses deltas and is caught up with a snapshot; nothing a client does can make a tick
//! wait.
//!
//! Seat reservations are admitted here, inside the actor, and count toward the room's maximum
//! until used or expired, so concurrent matchmaking can never overfill a room.

mod cadence;
mod checkpointing;
mod fan_out;
mod handoff;
mod members;
mod operator;
mod resuming;

pub use handoff::{BeginHandoff, EndHandoff};
pub use operator::{
    state_json, InspectRoom, KickPlayer, NotInRoom, RoomInspection, SeatView,
    MAX_INSPECTED_STATE_BYTES,
};
pub use resuming::ResumeJoin;

use crate::checkpoint::CheckpointSink;
use crate::delta_history::DeltaHistory;
use crate::directory::RoomDirectory;
use crate::encoding;
use crate::event_queue::{EventQueue, QueueFull};
use crate::member::{FrameKind, Handoff, JoinRoom, Member};
use crate::metrics::{Metrics, RoomTypeMetrics};
use crate::resume::AwaySeats;
use crate::session::closing::Ending;
use crate::session::SessionLimits;
use crate::simulation::{GamePanicked, PrivateMessage, Simulation};
use crate::stats::TickWindow;
use crate::token::SeatTokens;
use actix::prelude::*;
use bytes::Bytes;
use ludus_protocol::{
    codec, CloseCode, ErrorCode, ErrorMessage, Event, PlayerId, ProtocolVersion, RoomId,
    ServerMessage, Value, Welcome,
};
use members::member_token;
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Fixed properties of one room.
#[derive(Clone, Debug)]
pub struct RoomSettings {
    /// The room's id.
    pub room_id: RoomId,
    /// Its type name.
    pub room_type: String,
    /// Ticks per second.
    pub tick_hz: u16,
    /// Seats.
    pub max_players: u32,
    /// Lifetime of a seat reservation.
    pub seat_ttl: Duration,
    /// How long the room may stay empty before it is disposed.
    pub empty_grace: Duration,
    /// Flow-control window announced to members, in ticks.
    pub window_ticks: u32,
    /// Operator events sent per tick at most, in encoded bytes.
    pub event_bytes_per_tick: usize,
    /// Operator events waiting at most, in encoded bytes.
    pub max_queued_event_bytes: usize,
    /// Inputs one seat may queue for a tick.
    pub max_inputs_per_seat: usize,
    /// Connection limits (rate, timeouts, message size) of members.
    pub limits: Arc<SessionLimits>,
    /// How long a disconnected player's seat waits for a resume (zero: no resume).
    pub resume_window: Duration,
    /// Encoded deltas kept for resuming clients, in bytes.
    pub resume_history_bytes: usize,
    /// Signs the resume tokens of welcomes.
    pub tokens: SeatTokens,
    /// In a cluster: where checkpoints go, and how often.
    pub checkpoints: Option<(CheckpointSink, Duration)>,
}

impl RoomSettings {
    fn tick_interval(&self) -> Duration {
        Duration::from_secs(1) / u32::from(self.tick_hz.max(1))
    }
}

/// Reserves a seat for `player`; answered before any token is issued.
#[derive(Message)]
#[rtype(result = "Result<SeatReserved, JoinRefused>")]
pub struct ReserveSeat {
    /// The player the seat is for.
    pub player: PlayerId,
}

/// A reservation was made.
#[derive(Debug, Clone, Copy)]
pub struct SeatReserved {
    /// When it (and the token for it) expires.
    pub expires_at: SystemTime,
}

/// Why a seat could not be reserved or taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinRefused {
    /// Every seat is taken or reserved.
    #[error("the room is full")]
    RoomFull,
    /// The player already sits in the room (a second reservation would seat them twice).
    #[error("the player already has a seat in the room")]
    AlreadySeated,
    /// No live reservation for this player (expired, already used, or never made).
    #[error("no seat is reserved for this player (expired or already used)")]
    SeatNotReserved,
    /// The game crashed while seating the player.
    #[error("the room crashed")]
    RoomCrashed,
}

impl JoinRefused {
    /// The close code and error code a connection gets for this refusal.
    pub fn codes(self) -> (CloseCode, ErrorCode) {
        match self {
            Self::RoomFull => (CloseCode::RoomFull, ErrorCode::RoomFull),
            Self::SeatNotReserved | Self::AlreadySeated => {
                (CloseCode::Unauthorized, ErrorCode::SeatNotReserved)
            }
            Self::RoomCrashed => (CloseCode::RoomCrashed, ErrorCode::RoomNotFound),
        }
    }
}

/// An event from outside the game (an operator message, a regional announcement), delivered to
/// every member in a coming tick's delta, within the room's per-tick event budget; refused when
/// the room's event queue is full.
#[derive(Message)]
#[rtype(result = "Result<(), QueueFull>")]
pub struct DeliverEvent {
    /// The event, as it appears in `delta.events`.
    pub event: Value,
    /// Its encoded size in bytes.
    pub size: usize,
}

/// Ends the room, telling every member `reason`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseRoom {
    /// The close code members get.
    pub reason: CloseCode,
}

/// One game room.
pub struct Room {
    settings: RoomSettings,
    simulation: Simulation,
    members: HashMap<PlayerId, Member>,
    reservations: HashMap<PlayerId, Instant>,
    /// Seats of players whose connection dropped, kept for the resume window.
    away: AwaySeats,
    /// The last ticks' encoded deltas, for resuming clients.
    history: DeltaHistory,
    /// Operator events waiting for their tick.
    events: EventQueue<Value>,
    empty_since: Option<Instant>,
    /// The members' sockets, asked once per tick which have bytes to read.
    readiness: mio::Poll,
    ready: mio::Events,
    /// The buffer members' sockets are read through (kept to avoid zeroing one per read).
    scratch: Vec<u8>,
    next_tick_due: Instant,
    ticks_since_listing: u32,
    /// Players whose inputs were dropped this tick because the queue was full.
    busy: Vec<PlayerId>,
    close_reason: CloseCode,
    directory: Arc<RoomDirectory>,
    metrics: Metrics,
    /// This room's type's series in `/metrics`.
    type_metrics: RoomTypeMetrics,
    /// Players counted in `type_metrics.players` (taken back when the room stops).
    players_counted: i64,
    /// The last ticks' durations and bytes, for the operator dashboard.
    tick_window: TickWindow,
    /// The tick of the last checkpoint taken (None: none yet).
    last_checkpoint_tick: Option<u64>,
    /// For a room restored from a checkpoint after its node failed: the checkpoint's tick.
    restored_at_tick: Option<u64>,
    /// Since when the room is stopped for a handover to another node (a drain).
    handoff_since: Option<Instant>,
    /// Seats (or their sessions) changed since the last checkpoint: the next one is due at once.
    seats_changed: bool,
    /// Joins and resumes that arrived while the room was stopped for a handover.
    waiting_joins: Vec<JoinRoom>,
}

impl Room {
    /// A room around an already created simulation; fails only when the process is out of
    /// file descriptors (for the room's readiness set).
    pub fn new(
        settings: RoomSettings,
        simulation: Simulation,
        directory: Arc<RoomDirectory>,
        metrics: Metrics,
    ) -> std::io::Result<Self> {
        let events = EventQueue::new(
            settings.event_bytes_per_tick,
            settings.max_queued_event_bytes,
        );
        let readiness = mio::Poll::new()?;
        let window_ticks = settings
            .resume_window
            .as_millis()
            .saturating_mul(u128::from(settings.tick_hz))
            / 1000;
        let history = DeltaHistory::new(
            settings.resume_history_bytes,
            usize::try_from(window_ticks).unwrap_or(usize::MAX),
        );
        let capacity = usize::try_from(settings.max_players)
            .unwrap_or(usize::MAX)
            .min(1024);
        let settings_room_type = settings.room_type.clone();
        Ok(Self {
            settings,
            simulation,
            members: HashMap::new(),
            reservations: HashMap::new(),
            away: AwaySeats::default(),
            history,
            events,
            empty_since: None,
            readiness,
            ready: mio::Events::with_capacity(capacity.max(16)),
            scratch: Vec::new(),
            next_tick_due: Instant::now(),
            ticks_since_listing: 0,
            busy: Vec::new(),
            close_reason: CloseCode::RoomDisposed,
            directory,
            type_metrics: metrics.room_type(&settings_room_type),
            metrics,
            players_counted: 0,
            tick_window: TickWindow::default(),
            last_checkpoint_tick: None,
            restored_at_tick: None,
            handoff_since: None,
            seats_changed: false,
            waiting_joins: Vec::new(),
        })
    }

    /// Publishes the room's seat counts; every change of seats (a reservation, a join, a
    /// resume, a leave) passes here, so it also makes a checkpoint due.
    fn publish_listing(&mut self) {
        self.seats_changed = true;
        // A disconnected player still holds its seat.
        let seated = i64::try_from(self.members.len() + self.away.len()).unwrap_or(i64::MAX);
        self.type_metrics.players.add(seated - self.players_counted);
        self.players_counted = seated;
        let players = u32::try_from(seated).unwrap_or(u32::MAX);
        let reserved = u32::try_from(self.reservations.len()).unwrap_or(u32::MAX);
        self.directory.update(&self.settings.room_id, |info| {
            info.players = players;
            info.reserved = reserved;
        });
    }

    fn crash(&mut self, panicked: GamePanicked, ctx: &mut Context<Self>) {
        tracing::error!(room_id = %self.settings.room_id, error = %panicked, "room crashed");
        self.metrics.room_crashes.inc();
        self.close_reason = CloseCode::RoomCrashed;
        ctx.stop();
    }

    /// Takes `player`'s connection out of the room (the seat is the caller's business).
    fn detach(&mut self, player: PlayerId) -> Option<Member> {
        let mut member = self.members.remove(&player)?;
        let socket = member.socket().as_raw_fd();
        // A socket that fails to deregister is closed soon anyway: its events are ignored.
        let _ = self
            .readiness
            .registry()
            .deregister(&mut mio::unix::SourceFd(&socket));
        member.readable = false;
        Some(member)
    }

    /// Adds `member`'s socket to the room's readiness set.
    fn watch(&self, player: PlayerId, member: &Member) -> std::io::Result<()> {
        let socket = member.socket().as_raw_fd();
        self.readiness.registry().register(
            &mut mio::unix::SourceFd(&socket),
            member_token(player),
            mio::Interest::READABLE,
        )
    }

    /// `player` leaves the game and frees its seat.
    fn leave_game(&mut self, player: PlayerId, ctx: &mut Context<Self>) {
        if let Err(panicked) = self.simulation.leave(player) {
            return self.crash(panicked, ctx);
        }
        self.publish_listing();
    }

    /// The `welcome` of `session` on `player`'s seat, with a resume token when the room keeps
    /// seats for disconnected players. `resumed` answers a resume, with the ticks it lost when
    /// the room was restored elsewhere since.
    fn encode_welcome(
        &self,
        player: PlayerId,
        session: u64,
        resumed: Option<Option<u64>>,
    ) -> Vec<u8> {
        let epoch = self.simulation.epoch();
        let resume_token = (!self.settings.resume_window.is_zero()).then(|| {
            self.settings
                .tokens
                .issue_resume(player, &self.settings.room_id, epoch, session)
        });
        codec::encode_server(&ServerMessage::Welcome(Welcome {
            session,
            player,
            room: self.settings.room_id.clone(),
            room_type: self.settings.room_type.clone(),
            epoch,
            tick_hz: self.settings.tick_hz,
            window: self.settings.window_ticks,
            resume_token,
            resumed: resumed.is_some(),
            ticks_lost: resumed.flatten(),
        }))
    }

    fn encode_welcome_and_snapshot(
        &self,
        player: PlayerId,
        session_id: u64,
        protocol: ProtocolVersion,
    ) -> Bytes {
        let welcome = self.encode_welcome(player, session_id, None);
        let snapshot = encoding::snapshot_part(&self.simulation, protocol);
        Bytes::from(codec::batch_frame(&[&welcome, &snapshot]))
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let started = Instant::now();
        if self.directory.fence().is_closed_at(started) {
            // This node may no longer hold the room: not one more frame (4013 to members).
            self.close_reason = CloseCode::RoomMoved;
            return ctx.stop();
        }
        if self.handing_off() {
            // The state was given away at the last tick boundary: nothing more happens here.
            return;
        }
        let interval = self.settings.tick_interval();
        let late = started.saturating_duration_since(self.next_tick_due);
        self.next_tick_due = started.max(self.next_tick_due) + interval;

        if late > interval * 2 {
            // The room itself was stalled (the process paused, the machine overloaded): its
            // clients could not be heard meanwhile, so the stall does not count against them.
            for member in self.members.values_mut() {
                member.forgive(late);
            }
        }
        self.read_members(started, ctx);
        self.expire_away(started, ctx);
        let before = self.reservations.len();
        self.reservations
            .retain(|_, expires_at| *expires_at > started);
        if self.reservations.len() != before {
            self.publish_listing();
        }

        for event in self.events.release_tick() {
            self.simulation.broadcast(event);
        }
        let output = match self.simulation.step() {
            Ok(output) => output,
            Err(panicked) => return self.crash(panicked, ctx),
        };
        let mut extras: HashMap<PlayerId, Vec<Vec<u8>>> = HashMap::new();
        for (player, message) in output.private {
            let message = match message {
                PrivateMessage::Event(payload) => ServerMessage::Event(Event { payload }),
                PrivateMessage::Rejected(reason) => ServerMessage::Error(ErrorMessage {
                    code: ErrorCode::InvalidInput,
                    message: reason,
                }),
            };
            extras
                .entry(player)
                .or_default()
                .push(codec::encode_server(&message));
        }
        for player in self.busy.drain(..) {
            let busy = ServerMessage::Error(ErrorMessage {
                code: ErrorCode::ServerBusy,
                message: "the room's input queue was full; inputs were dropped".to_owned(),
            });
            extras
                .entry(player)
                .or_default()
                .push(codec::encode_server(&busy));
        }
        for member in self.members.values_mut() {
            member.inputs_this_tick = 0;
        }
        let bytes_sent = self.fan_out(output.delta, &output.roster, &extras, ctx);
        self.checkpoint_if_due();
        self.heartbeats(started, ctx);

        self.ticks_since_listing += 1;
        if self.ticks_since_listing >= u32::from(self.settings.tick_hz) {
            self.ticks_since_listing = 0;
            match self.simulation.listing() {
                Ok(state) => self
                    .directory
                    .update(&self.settings.room_id, |info| info.state = state),
                Err(panicked) => return self.crash(panicked, ctx),
            }
            self.directory
                .update_load(&self.settings.room_id, self.tick_window.summary());
        }
        self.dispose_if_idle(started, ctx);

        let elapsed = started.elapsed();
        self.metrics.tick_duration.observe(elapsed.as_secs_f64());
        self.type_metrics
            .tick_duration
            .observe(elapsed.as_secs_f64());
        self.type_metrics.bytes_sent.inc_by(bytes_sent);
        self.tick_window.record(elapsed, bytes_sent);
        if elapsed > interval || late > interval {
            self.metrics.tick_overruns.inc();
        }
    }

    fn dispose_if_idle(&mut self, now: Instant, ctx: &mut Context<Self>) {
        if !self.members.is_empty() || !self.reservations.is_empty() || !self.away.is_empty() {
            self.empty_since = None;
            return;
        }
        let since = *self.empty_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= self.settings.empty_grace {
            tracing::info!(room_id = %self.settings.room_id, "disposing empty room");
            self.close_reason = CloseCode::RoomDisposed;
            ctx.stop();
        }
    }
}

impl Actor for Room {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let capacity = usize::try_from(self.settings.max_players)
            .unwrap_or(usize::MAX)
            .saturating_mul(8)
            .max(256);
        ctx.set_mailbox_capacity(capacity);
        self.metrics.rooms.inc();
        self.type_metrics.rooms.inc();
        let interval = self.settings.tick_interval();
        let first = Instant::now() + cadence::first_tick_in(interval);
        self.next_tick_due = first;
        ctx.run_interval_at(first.into(), interval, |room, ctx| room.tick(ctx));
        tracing::info!(room_id = %self.settings.room_id, room_type = %self.settings.room_type, "room started");
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> Running {
        for (_, member) in self.members.drain() {
            member.close(Ending::Server(self.close_reason, None));
        }
        self.directory.remove(&self.settings.room_id);
        self.forget_checkpoint();
        Running::Stop
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.metrics.rooms.dec();
        self.type_metrics.rooms.dec();
        self.type_metrics.players.sub(self.players_counted);
        let kept = i64::try_from(self.history.bytes()).unwrap_or(i64::MAX);
        self.metrics.resume_history_bytes.sub(kept);
        self.history.clear();
        tracing::info!(room_id = %self.settings.room_id, reason = %self.close_reason, "room stopped");
    }
}

impl Handler<ReserveSeat> for Room {
    type Result = Result<SeatReserved, JoinRefused>;

    fn handle(&mut self, message: ReserveSeat, _ctx: &mut Self::Context) -> Self::Result {
        // A disconnected player still holds its seat: it comes back by resuming, not with a
        // second seat (which its window's end would then take away from it).
        if self.members.contains_key(&message.player) || self.away.get(message.player).is_some() {
            return Err(JoinRefused::AlreadySeated);
        }
        self.refuse_while_handing_off()?;
        let now = Instant::now();
        self.reservations.retain(|_, expires_at| *expires_at > now);
        let taken = self.members.len() + self.away.len() + self.reservations.len();
        let seats = usize::try_from(self.settings.max_players).unwrap_or(usize::MAX);
        if taken >= seats && !self.reservations.contains_key(&message.player) {
            return Err(JoinRefused::RoomFull);
        }
        self.reservations
            .insert(message.player, now + self.settings.seat_ttl);
        self.empty_since = None;
        self.publish_listing();
        Ok(SeatReserved {
            expires_at: SystemTime::now() + self.settings.seat_ttl,
        })
    }
}

impl Handler<JoinRoom> for Room {
    type Result = ();

    fn handle(&mut self, message: JoinRoom, ctx: &mut Self::Context) {
        if self.handing_off() {
            return self.wait_for_handover(message);
        }
        let JoinRoom {
            player,
            name,
            connection,
            resume,
        } = message;
        if let Some(resume) = resume {
            return self.resume(player, resume, connection, ctx);
        }
        let refuse = |refused: JoinRefused, connection: Handoff| {
            let (close, code) = refused.codes();
            connection.close(Ending::Server(close, Some((code, refused.to_string()))));
        };
        let now = Instant::now();
        match self.reservations.remove(&player) {
            Some(expires_at) if expires_at > now => {}
            _ => return refuse(JoinRefused::SeatNotReserved, connection),
        }
        if let Err(panicked) = self.simulation.join(player, &name) {
            refuse(JoinRefused::RoomCrashed, connection);
            return self.crash(panicked, ctx);
        }
        let mut member = Member::new(
            connection,
            self.settings.window_ticks,
            &self.settings.limits,
        );
        if let Err(error) = self.watch(player, &member) {
            tracing::warn!(%error, "cannot watch a member's socket");
            self.leave_game(player, ctx);
            return member.close(Ending::Server(CloseCode::RoomCrashed, None));
        }
        let bytes = self.encode_welcome_and_snapshot(player, member.session_id, member.protocol);
        let tick = self.simulation.tick();
        let offered = member.offer(FrameKind::Snapshot { tick }, &bytes, now);
        self.metrics.messages_sent.inc();
        self.metrics.bytes_sent.inc_by(bytes.len() as u64);
        self.members.insert(player, member);
        self.publish_listing();
        tracing::debug!(room_id = %self.settings.room_id, %player, "player joined");
        if let Some(ending) = offered.ending() {
            self.end_member(player, ending, ctx);
        }
    }
}

impl Handler<DeliverEvent> for Room {
    type Result = Result<(), QueueFull>;

    fn handle(&mut self, message: DeliverEvent, _ctx: &mut Self::Context) -> Self::Result {
        // Stopped for a handover, the room takes nothing the state sent would miss.
        let queued = if self.handing_off() {
            Err(QueueFull)
        } else {
            self.events.push(message.event, message.size)
        };
        if queued.is_err() {
            self.metrics.events_refused.inc();
        }
        queued
    }
}

impl Handler<CloseRoom> for Room {
    type Result = ();

    fn handle(&mut self, message: CloseRoom, ctx: &mut Self::Context) {
        self.close_reason = self.ending_code(message.reason);
        ctx.stop();
    }
}
