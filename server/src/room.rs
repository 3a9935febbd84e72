//! The room actor: owns one room's simulation and members, ticks at a fixed rate, and fans
//! each tick's delta out to its sessions.
//!
//! Who sends what:
//! - the lobby starts it (on one of the room threads) and sends [`ReserveSeat`], [`DeliverEvent`]
//!   and [`CloseRoom`];
//! - sessions send [`JoinRoom`], [`PlayerInput`], [`RequestSnapshot`] and [`LeaveRoom`];
//! - it sends each member a [`RoomFrame`] per tick and a [`RoomClosed`] when it ends.
//!
//! Every tick, in this order: expire seat reservations, step the simulation (queued inputs, then
//! the game's tick), encode the delta **once** per protocol version in use, and offer the same
//! bytes to every member of that version with `try_send`. A member whose mailbox is full simply
//! misses that delta; its session notices the gap and asks for a snapshot. Nothing a client does
//! can make a tick wait.
//!
//! Seat reservations are admitted here, inside the actor, and count toward the room's maximum
//! until used or expired, so concurrent matchmaking can never overfill a room.

use crate::directory::RoomDirectory;
use crate::encoding::{self, PerVersion};
use crate::event_queue::{EventQueue, QueueFull};
use crate::metrics::Metrics;
use crate::session::{FrameKind, RoomClosed, RoomFrame};
use crate::simulation::{GamePanicked, InputRefused, PrivateMessage, Simulation};
use actix::prelude::*;
use bytes::Bytes;
use ludus_protocol::v2::Roster;
use ludus_protocol::{
    codec, CloseCode, ErrorCode, ErrorMessage, Event, PlayerId, ProtocolVersion, RoomId,
    ServerMessage, Value, Welcome,
};
use std::collections::HashMap;
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

/// A session with a verified token takes its reserved seat.
#[derive(Message)]
#[rtype(result = "Result<Joined, JoinRefused>")]
pub struct JoinRoom {
    /// The player (from the token).
    pub player: PlayerId,
    /// Display name (from the token).
    pub name: String,
    /// The joining session's id.
    pub session_id: u64,
    /// The protocol version the session's client speaks (its frames are encoded in it).
    pub protocol: ProtocolVersion,
    /// Where this room sends frames for the session.
    pub frames: Recipient<RoomFrame>,
    /// Where this room says goodbye.
    pub closer: Recipient<RoomClosed>,
}

/// The seat is taken; the welcome and snapshot are already on their way as a [`RoomFrame`].
#[derive(Debug, Clone, Copy)]
pub struct Joined {
    /// Flow-control window in ticks.
    pub window_ticks: u32,
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
    /// The close code and error code a session reports for this refusal.
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

/// One input, queued for the next tick.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PlayerInput {
    /// Whose input.
    pub player: PlayerId,
    /// Client sequence number.
    pub seq: u32,
    /// Game payload.
    pub payload: Value,
}

/// The session needs a full snapshot (gap, or resuming after flow control paused it).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RequestSnapshot {
    /// For whom.
    pub player: PlayerId,
}

/// A session ended; its player leaves the game.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveRoom {
    /// Who leaves.
    pub player: PlayerId,
    /// The session that ends; ignored if the seat now belongs to another session.
    pub session_id: u64,
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

struct Member {
    session_id: u64,
    protocol: ProtocolVersion,
    frames: Recipient<RoomFrame>,
    closer: Recipient<RoomClosed>,
    /// Set by a resync request; served at the next tick, retried until the mailbox takes it.
    needs_snapshot: bool,
}

/// One game room.
pub struct Room {
    settings: RoomSettings,
    simulation: Simulation,
    members: HashMap<PlayerId, Member>,
    reservations: HashMap<PlayerId, Instant>,
    /// Operator events waiting for their tick.
    events: EventQueue<Value>,
    empty_since: Option<Instant>,
    next_tick_due: Instant,
    ticks_since_listing: u32,
    /// Players whose inputs were dropped this tick because the queue was full.
    busy: Vec<PlayerId>,
    close_reason: CloseCode,
    directory: Arc<RoomDirectory>,
    metrics: Metrics,
}

impl Room {
    /// A room around an already created simulation.
    pub fn new(
        settings: RoomSettings,
        simulation: Simulation,
        directory: Arc<RoomDirectory>,
        metrics: Metrics,
    ) -> Self {
        let events = EventQueue::new(
            settings.event_bytes_per_tick,
            settings.max_queued_event_bytes,
        );
        Self {
            settings,
            simulation,
            members: HashMap::new(),
            reservations: HashMap::new(),
            events,
            empty_since: None,
            next_tick_due: Instant::now(),
            ticks_since_listing: 0,
            busy: Vec::new(),
            close_reason: CloseCode::RoomDisposed,
            directory,
            metrics,
        }
    }

    fn publish_listing(&self) {
        let players = u32::try_from(self.members.len()).unwrap_or(u32::MAX);
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

    fn remove_member(&mut self, player: PlayerId, ctx: &mut Context<Self>) {
        if self.members.remove(&player).is_none() {
            return;
        }
        if let Err(panicked) = self.simulation.leave(player) {
            self.crash(panicked, ctx);
            return;
        }
        self.publish_listing();
    }

    fn encode_welcome_and_snapshot(
        &self,
        player: PlayerId,
        session_id: u64,
        protocol: ProtocolVersion,
    ) -> Bytes {
        let welcome = codec::encode_server(&ServerMessage::Welcome(Welcome {
            session: session_id,
            player,
            room: self.settings.room_id.clone(),
            room_type: self.settings.room_type.clone(),
            epoch: self.simulation.epoch(),
            tick_hz: self.settings.tick_hz,
            window: self.settings.window_ticks,
            resume_token: None,
        }));
        let snapshot = encoding::snapshot_part(&self.simulation, protocol);
        Bytes::from(codec::batch_frame(&[&welcome, &snapshot]))
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let started = Instant::now();
        let interval = self.settings.tick_interval();
        let late = started.saturating_duration_since(self.next_tick_due);
        self.next_tick_due = started.max(self.next_tick_due) + interval;

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
        self.fan_out(output.delta, &output.roster, &extras, ctx);

        self.ticks_since_listing += 1;
        if self.ticks_since_listing >= u32::from(self.settings.tick_hz) {
            self.ticks_since_listing = 0;
            match self.simulation.listing() {
                Ok(state) => self
                    .directory
                    .update(&self.settings.room_id, |info| info.state = state),
                Err(panicked) => return self.crash(panicked, ctx),
            }
        }
        self.dispose_if_idle(started, ctx);

        let elapsed = started.elapsed();
        self.metrics.tick_duration.observe(elapsed.as_secs_f64());
        if elapsed > interval || late > interval {
            self.metrics.tick_overruns.inc();
        }
    }

    fn fan_out(
        &mut self,
        delta: ludus_protocol::Delta,
        roster: &Roster,
        extras: &HashMap<PlayerId, Vec<Vec<u8>>>,
        ctx: &mut Context<Self>,
    ) {
        let tick = delta.tick;
        let base_tick = delta.base_tick;
        // A member owed a snapshot gets it instead of the delta; the tick's broadcast events
        // ride along as `event` messages so that member does not lose them.
        let snapshot_events = if self.members.values().any(|member| member.needs_snapshot) {
            delta.events.clone()
        } else {
            Vec::new()
        };
        // protocol-v2: each tick is encoded once per protocol version in use, on first need.
        let delta_frames = PerVersion::default();
        let snapshot_parts: PerVersion<Vec<Vec<u8>>> = PerVersion::default();
        let mut skipped = 0;
        let mut gone = Vec::new();
        for (player, member) in &mut self.members {
            let player_extras = extras.get(player);
            let (kind, bytes) = if member.needs_snapshot {
                let main_parts = snapshot_parts.get_or_init(member.protocol, || {
                    let snapshot = encoding::snapshot_part(&self.simulation, member.protocol);
                    std::iter::once(snapshot)
                        .chain(snapshot_events.iter().map(|payload| {
                            codec::encode_server(&ServerMessage::Event(Event {
                                payload: payload.clone(),
                            }))
                        }))
                        .collect()
                });
                let parts: Vec<&[u8]> = main_parts
                    .iter()
                    .chain(player_extras.into_iter().flatten())
                    .map(Vec::as_slice)
                    .collect();
                (
                    FrameKind::Snapshot { tick },
                    Bytes::from(codec::batch_frame(&parts)),
                )
            } else {
                let delta_frame = delta_frames.get_or_init(member.protocol, || {
                    encoding::delta_frame(&self.simulation, &delta, roster, member.protocol)
                });
                let bytes = match player_extras {
                    None => delta_frame.shared.clone(),
                    Some(player_extras) => {
                        let parts: Vec<&[u8]> = std::iter::once(&delta_frame.part)
                            .chain(player_extras)
                            .map(Vec::as_slice)
                            .collect();
                        Bytes::from(codec::batch_frame(&parts))
                    }
                };
                (FrameKind::Delta { tick, base_tick }, bytes)
            };
            match member.frames.try_send(RoomFrame { kind, bytes }) {
                Ok(()) => member.needs_snapshot = false,
                Err(SendError::Full(_)) => skipped += 1,
                Err(SendError::Closed(_)) => gone.push(*player),
            }
        }
        if skipped > 0 {
            self.metrics.deltas_skipped.inc_by(skipped);
        }
        for player in gone {
            self.remove_member(player, ctx);
        }
    }

    fn dispose_if_idle(&mut self, now: Instant, ctx: &mut Context<Self>) {
        if !self.members.is_empty() || !self.reservations.is_empty() {
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
        self.next_tick_due = Instant::now() + self.settings.tick_interval();
        ctx.run_interval(self.settings.tick_interval(), |room, ctx| room.tick(ctx));
        tracing::info!(room_id = %self.settings.room_id, room_type = %self.settings.room_type, "room started");
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> Running {
        for member in self.members.values() {
            // do_send: one bounded goodbye per member, which must not be lost to a full mailbox.
            member.closer.do_send(RoomClosed {
                reason: self.close_reason,
            });
        }
        self.directory.remove(&self.settings.room_id);
        Running::Stop
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.metrics.rooms.dec();
        tracing::info!(room_id = %self.settings.room_id, reason = %self.close_reason, "room stopped");
    }
}

impl Handler<ReserveSeat> for Room {
    type Result = Result<SeatReserved, JoinRefused>;

    fn handle(&mut self, message: ReserveSeat, _ctx: &mut Self::Context) -> Self::Result {
        if self.members.contains_key(&message.player) {
            return Err(JoinRefused::AlreadySeated);
        }
        let now = Instant::now();
        self.reservations.retain(|_, expires_at| *expires_at > now);
        let taken = self.members.len() + self.reservations.len();
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
    type Result = Result<Joined, JoinRefused>;

    fn handle(&mut self, message: JoinRoom, ctx: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        match self.reservations.remove(&message.player) {
            Some(expires_at) if expires_at > now => {}
            _ => return Err(JoinRefused::SeatNotReserved),
        }
        if let Err(panicked) = self.simulation.join(message.player, &message.name) {
            self.crash(panicked, ctx);
            return Err(JoinRefused::RoomCrashed);
        }
        let bytes =
            self.encode_welcome_and_snapshot(message.player, message.session_id, message.protocol);
        let tick = self.simulation.tick();
        // do_send: one bounded frame into a fresh mailbox; the welcome must never be dropped.
        message.frames.do_send(RoomFrame {
            kind: FrameKind::Snapshot { tick },
            bytes,
        });
        self.members.insert(
            message.player,
            Member {
                session_id: message.session_id,
                protocol: message.protocol,
                frames: message.frames,
                closer: message.closer,
                needs_snapshot: false,
            },
        );
        self.publish_listing();
        tracing::debug!(room_id = %self.settings.room_id, player = %message.player, "player joined");
        Ok(Joined {
            window_ticks: self.settings.window_ticks,
        })
    }
}

impl Handler<PlayerInput> for Room {
    type Result = ();

    fn handle(&mut self, message: PlayerInput, _ctx: &mut Self::Context) {
        match self
            .simulation
            .queue_input(message.player, message.seq, message.payload)
        {
            Ok(()) | Err(InputRefused::Stale) | Err(InputRefused::NotMember) => {}
            Err(InputRefused::QueueFull) => {
                self.metrics
                    .inputs_dropped
                    .with_label_values(&["queue_full"])
                    .inc();
                if !self.busy.contains(&message.player) {
                    self.busy.push(message.player);
                }
            }
        }
    }
}

impl Handler<RequestSnapshot> for Room {
    type Result = ();

    fn handle(&mut self, message: RequestSnapshot, _ctx: &mut Self::Context) {
        if let Some(member) = self.members.get_mut(&message.player) {
            member.needs_snapshot = true;
        }
    }
}

impl Handler<LeaveRoom> for Room {
    type Result = ();

    fn handle(&mut self, message: LeaveRoom, ctx: &mut Self::Context) {
        let owns_seat = self
            .members
            .get(&message.player)
            .is_some_and(|member| member.session_id == message.session_id);
        if owns_seat {
            self.remove_member(message.player, ctx);
        }
    }
}

impl Handler<DeliverEvent> for Room {
    type Result = Result<(), QueueFull>;

    fn handle(&mut self, message: DeliverEvent, _ctx: &mut Self::Context) -> Self::Result {
        let queued = self.events.push(message.event, message.size);
        if queued.is_err() {
            self.metrics.events_refused.inc();
        }
        queued
    }
}

impl Handler<CloseRoom> for Room {
    type Result = ();

    fn handle(&mut self, message: CloseRoom, ctx: &mut Self::Context) {
        self.close_reason = message.reason;
        ctx.stop();
    }
}
