//! One bot's view of its session, without any I/O: frames in, replies out.
//!
//! [`Session`] is everything a real client must do with what the server sends: decode each
//! frame, mirror the room in a [`RoomState`], detect gaps and epoch changes and ask for a
//! snapshot, acknowledge ticks so flow control keeps the bot in the window, and match input
//! acknowledgements to the inputs it sent to measure latency. Keeping it free of sockets and
//! clocks (the caller passes `now`) lets unit tests feed it recorded frames.
//!
//! Order per frame: count, decode, then handle each message of the batch in order; at most one
//! reply (a `resync` or an `ack`) is returned per frame.
//!
//! The session speaks the protocol version it was created with: version 1 frames decode to
//! [`ServerMessage`]s, version 2 frames to compact snapshots and packed deltas, which a
//! [`CompactRoomState`] decodes against the state. Everything after decoding (gaps, acks,
//! latency) is the same for both.
//!
//! After a drop the session is kept: [`Session::connection_lost`] forgets what the dead socket
//! carried, [`Session::resume_hello`] builds the `hello` that asks for the seat back, and the
//! answer is checked against the mirror kept (see the `resume` submodule).

use crate::invariants::{StateKind, TickOrder, Violation};
use crate::mirror::{self, IncomingDelta, Mirror};
use crate::reconnect::{ResumeOutcome, ResumeRefusal};
use crate::stats::{BotCounters, Counter};
use ludus_protocol::v2::{CompactMessage, CompactRoomState};
use ludus_protocol::{
    Ack, ClientMessage, InputAck, PlayerId, ProtocolVersion, Redirect, Resync, RoomId, RoomState,
    ServerMessage, Welcome,
};
use std::collections::VecDeque;
use std::time::Instant;

mod inputs;
mod resume;
use resume::PendingResume;

/// Acknowledge at least every this many ticks when no input carried the acknowledgement (fewer
/// if the server's window is smaller).
const ACK_EVERY_TICKS: u64 = 4;

/// Deltas to wait for a requested snapshot before asking again. Bounds the time a bot can sit
/// without state if a `resync` is lost.
const RESYNC_RETRY_AFTER_DELTAS: u64 = 40;

/// What the session is waiting for.
#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// Nothing received yet: expecting `welcome` and the first snapshot.
    Joining,
    /// Mirroring the room.
    Playing(Mirror),
    /// Sent `resync` after a gap; deltas are discarded until the snapshot arrives.
    AwaitingSnapshot {
        /// The last tick applied before the gap (still what the bot acknowledges).
        last_tick: u64,
        /// Deltas discarded since the `resync` was sent.
        discarded: u64,
    },
}

/// One session's protocol state.
#[derive(Debug)]
pub struct Session {
    protocol: ProtocolVersion,
    player: Option<PlayerId>,
    ack_every_ticks: u64,
    phase: Phase,
    /// The highest tick told to the server, in an `ack` or an input's `ack_tick`.
    acked_tick: u64,
    /// The highest tick ever applied, to catch ticks going backwards.
    highest_tick: u64,
    highest_epoch: Option<u64>,
    next_seq: u32,
    /// Inputs sent and not yet acknowledged, oldest first, with their send time.
    inputs_in_flight: VecDeque<(u32, Instant)>,
    /// Set when the server answered `hello` with a redirect to another node.
    redirect: Option<Redirect>,
    /// Waiting for `welcome` (a first `hello` or a resume was sent).
    awaiting_welcome: bool,
    /// The token of the last `welcome`, for the next resume; `None` when resume is disabled.
    resume_token: Option<String>,
    /// The resume in progress, until its first state message.
    resume: Option<PendingResume>,
    /// Set while the rest of the frame that completed a resume is handled: a delta that does
    /// not apply there is a resume mismatch, not only a gap.
    in_resume_batch: bool,
    /// How the last resume completed, until the bot takes it.
    resume_outcome: Option<ResumeOutcome>,
    /// The last resumed `welcome`'s `ticks_lost` (`None` when it continued the same epoch).
    resumed_ticks_lost: Option<u64>,
    /// Why the server refused the resume, until the bot takes it.
    refusal: Option<ResumeRefusal>,
    counters: BotCounters,
    /// The room of the last `welcome`, to name it in violations.
    room: Option<RoomId>,
    /// Every state applied, checked for order across resumes, epochs and new seats.
    order: TickOrder,
    /// Violations found since the bot last took them.
    violations: Vec<Violation>,
    /// When the last state message (snapshot or applied delta) arrived.
    last_state_at: Option<Instant>,
    /// The newest epoch of a state message since the last `welcome`: what the node that
    /// welcomed this connection is serving.
    connection_epoch: Option<u64>,
}

impl Session {
    /// A session speaking `protocol` (announced in its `hello`).
    pub fn new(protocol: ProtocolVersion) -> Self {
        Self {
            protocol,
            player: None,
            ack_every_ticks: ACK_EVERY_TICKS,
            phase: Phase::Joining,
            acked_tick: 0,
            highest_tick: 0,
            highest_epoch: None,
            next_seq: 1,
            inputs_in_flight: VecDeque::new(),
            redirect: None,
            awaiting_welcome: true,
            resume_token: None,
            resume: None,
            in_resume_batch: false,
            resume_outcome: None,
            refusal: None,
            counters: BotCounters::default(),
            room: None,
            order: TickOrder::default(),
            violations: Vec::new(),
            last_state_at: None,
            connection_epoch: None,
            resumed_ticks_lost: None,
        }
    }

    /// The protocol version this session speaks.
    pub fn protocol(&self) -> ProtocolVersion {
        self.protocol
    }

    /// The player this session plays as, once `welcome` arrived.
    pub fn player(&self) -> Option<PlayerId> {
        self.player
    }

    /// Whether the session still waits for `welcome` (after `new`, or after a resume `hello`).
    pub fn awaiting_welcome(&self) -> bool {
        self.awaiting_welcome
    }

    /// The redirect the server answered `hello` with, if it did.
    pub fn redirect(&self) -> Option<&Redirect> {
        self.redirect.as_ref()
    }

    /// Takes the redirect, so the session can say `hello` again on the node it names.
    pub fn take_redirect(&mut self) -> Option<Redirect> {
        self.redirect.take()
    }

    /// The mirrored room, when the session holds a consistent state.
    pub fn room(&self) -> Option<&RoomState> {
        match &self.phase {
            Phase::Playing(mirror) => Some(mirror.state()),
            Phase::Joining | Phase::AwaitingSnapshot { .. } => None,
        }
    }

    /// The last tick applied (0 before the first snapshot).
    pub fn last_tick(&self) -> u64 {
        match &self.phase {
            Phase::Joining => 0,
            Phase::Playing(mirror) => mirror.tick(),
            Phase::AwaitingSnapshot { last_tick, .. } => *last_tick,
        }
    }

    /// The room of the last `welcome`.
    pub fn room_id(&self) -> Option<&RoomId> {
        self.room.as_ref()
    }

    /// The newest epoch seen in a state message.
    pub fn epoch(&self) -> Option<u64> {
        self.highest_epoch
    }

    /// The newest epoch of a state message received since the last `welcome`, so on the
    /// current connection (`None` until its first state message).
    pub fn connection_epoch(&self) -> Option<u64> {
        self.connection_epoch
    }

    /// When the last state message (a snapshot or an applied delta) arrived.
    pub fn last_state_at(&self) -> Option<Instant> {
        self.last_state_at
    }

    /// The tick-order violations found since the last call (see [`TickOrder`]).
    pub fn take_violations(&mut self) -> Vec<Violation> {
        std::mem::take(&mut self.violations)
    }

    /// Counters since the last flush.
    pub fn counters(&self) -> &BotCounters {
        &self.counters
    }

    /// Counters since the last flush, for flushing.
    pub fn counters_mut(&mut self) -> &mut BotCounters {
        &mut self.counters
    }

    /// Handles one binary frame received at `now`; returns the reply to send, if any.
    pub fn handle_frame(&mut self, frame: &[u8], now: Instant) -> Option<ClientMessage> {
        self.counters.incr(Counter::Frames);
        self.counters.add(Counter::Bytes, frame.len() as u64);
        let messages = match mirror::decode(self.protocol, frame) {
            Ok(messages) => messages,
            Err(error) => {
                tracing::debug!(%error, "undecodable frame");
                self.counters.incr(Counter::DecodeErrors);
                return None;
            }
        };
        self.counters.add(Counter::Messages, messages.len() as u64);
        let mut reply = None;
        for message in messages {
            // A resync supersedes an ack; a later ack in the same frame replaces neither.
            if let Some(next) = self.handle_message(message, now) {
                if !matches!(reply, Some(ClientMessage::Resync(_))) {
                    reply = Some(next);
                }
            }
        }
        self.in_resume_batch = false;
        if reply.is_none() {
            reply = self.ack_if_due();
        }
        if let Some(ClientMessage::Ack(ack)) = &reply {
            self.acked_tick = ack.tick;
            self.counters.incr(Counter::AcksSent);
        }
        reply
    }

    /// Counts a text frame: the protocol only has binary frames.
    pub fn handle_text_frame(&mut self, text_len: usize) {
        self.counters.incr(Counter::Frames);
        self.counters.add(Counter::Bytes, text_len as u64);
        self.counters.incr(Counter::DecodeErrors);
    }

    fn handle_message(&mut self, message: CompactMessage, now: Instant) -> Option<ClientMessage> {
        let message = match message {
            CompactMessage::Snapshot(compact) => {
                let acks = compact.snapshot.acks.clone();
                let (epoch, tick) = (compact.snapshot.epoch, compact.snapshot.tick);
                let mirror = Mirror::Compact(CompactRoomState::from_snapshot(compact));
                self.on_snapshot(epoch, tick, &acks, mirror, now);
                return None;
            }
            CompactMessage::Delta(body) => return self.on_delta(IncomingDelta::Compact(body), now),
            CompactMessage::Other(message) => message,
        };
        match message {
            ServerMessage::Welcome(welcome) => self.on_welcome(&welcome),
            ServerMessage::Snapshot(snapshot) => {
                let acks = snapshot.acks.clone();
                let (epoch, tick) = (snapshot.epoch, snapshot.tick);
                let mirror = Mirror::Named(RoomState::from_snapshot(snapshot));
                self.on_snapshot(epoch, tick, &acks, mirror, now);
                None
            }
            ServerMessage::Delta(delta) => self.on_delta(IncomingDelta::Named(delta), now),
            ServerMessage::Error(error) => {
                tracing::debug!(code = %error.code, message = %error.message, "server error");
                self.counters.incr(Counter::ServerErrors);
                self.on_error_code(error.code);
                None
            }
            ServerMessage::Redirect(redirect) => {
                self.redirect = Some(redirect);
                None
            }
            ServerMessage::Event(_) | ServerMessage::Pong(_) => None,
        }
    }

    fn on_welcome(&mut self, welcome: &Welcome) -> Option<ClientMessage> {
        let half_window = u64::from(welcome.window / 2).max(1);
        self.ack_every_ticks = ACK_EVERY_TICKS.min(half_window);
        self.awaiting_welcome = false;
        self.resume_token.clone_from(&welcome.resume_token);
        self.room = Some(welcome.room.clone());
        self.connection_epoch = None;
        if welcome.resumed {
            return self.on_resumed_welcome(welcome);
        }
        if self.resume.take().is_some() {
            // A plain welcome to a resume: the server started a new session. Start over.
            self.phase = Phase::Joining;
        }
        self.player = Some(welcome.player);
        None
    }

    fn on_snapshot(
        &mut self,
        epoch: u64,
        tick: u64,
        acks: &[InputAck],
        mirror: Mirror,
        now: Instant,
    ) {
        self.counters.incr(Counter::Snapshots);
        let resumed_from = self.on_resume_state(ResumeOutcome::Snapshot, now);
        if let Some(resumed_from) = &resumed_from {
            self.check_resume_snapshot(resumed_from, epoch, tick);
        }
        match self.phase {
            Phase::Joining | Phase::AwaitingSnapshot { .. } => {}
            Phase::Playing(_) if resumed_from.is_some() => {}
            // A snapshot nobody asked for: the server paused this bot and resumed it.
            Phase::Playing(_) => self.counters.incr(Counter::Resyncs),
        }
        let same_epoch = self.highest_epoch == Some(epoch);
        if same_epoch && tick < self.highest_tick {
            self.counters.incr(Counter::TickRegressions);
        }
        if !same_epoch {
            self.highest_tick = 0;
        }
        self.observe_tick(StateKind::Snapshot, epoch, tick, now);
        self.match_acks(acks, now);
        self.phase = Phase::Playing(mirror);
    }

    fn on_delta(&mut self, delta: IncomingDelta, now: Instant) -> Option<ClientMessage> {
        self.counters.incr(Counter::Deltas);
        self.on_resume_state(ResumeOutcome::Delta, now);
        match &mut self.phase {
            Phase::Joining => {
                // A delta before any snapshot cannot be applied; ask for the state.
                self.counters.incr(Counter::Gaps);
                self.request_snapshot(0)
            }
            Phase::AwaitingSnapshot {
                last_tick,
                discarded,
            } => {
                self.counters.incr(Counter::DeltasDiscarded);
                *discarded += 1;
                if *discarded < RESYNC_RETRY_AFTER_DELTAS {
                    return None;
                }
                let last_tick = *last_tick;
                self.request_snapshot(last_tick)
            }
            Phase::Playing(mirror) => match mirror.apply(delta) {
                Ok(delta) => {
                    self.counters.incr(Counter::DeltasApplied);
                    if delta.tick <= delta.base_tick {
                        self.counters.incr(Counter::TickRegressions);
                    }
                    self.observe_tick(StateKind::Delta, delta.epoch, delta.tick, now);
                    self.match_acks(&delta.acks, now);
                    None
                }
                Err(error) => {
                    tracing::debug!(%error, "delta does not apply; resyncing");
                    self.counters.incr(Counter::Gaps);
                    if self.in_resume_batch {
                        self.counters.incr(Counter::ResumeMismatches);
                    }
                    let last_tick = mirror.tick();
                    self.request_snapshot(last_tick)
                }
            },
        }
    }

    fn request_snapshot(&mut self, last_tick: u64) -> Option<ClientMessage> {
        self.counters.incr(Counter::Resyncs);
        self.phase = Phase::AwaitingSnapshot {
            last_tick,
            discarded: 0,
        };
        Some(ClientMessage::Resync(Resync {}))
    }

    fn observe_tick(&mut self, kind: StateKind, epoch: u64, tick: u64, now: Instant) {
        self.highest_epoch = Some(epoch);
        self.highest_tick = self.highest_tick.max(tick);
        self.last_state_at = Some(now);
        self.connection_epoch = Some(self.connection_epoch.map_or(epoch, |seen| seen.max(epoch)));
        let room = self.room.as_ref().map_or("", RoomId::as_str);
        if let Err(violation) = self.order.observe(room, kind, epoch, tick) {
            self.counters.incr(Counter::OrderViolations);
            self.violations.push(violation);
        }
    }

    fn ack_if_due(&self) -> Option<ClientMessage> {
        let Phase::Playing(mirror) = &self.phase else {
            return None;
        };
        let tick = mirror.tick();
        let unacked = tick.saturating_sub(self.acked_tick);
        (unacked >= self.ack_every_ticks).then_some(ClientMessage::Ack(Ack { tick }))
    }
}

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use ludus_protocol::v2::{self, Roster, Schema};
    use ludus_protocol::Value;
    use ludus_protocol::{codec, EntityId, ErrorCode, ErrorMessage, RoomId};

    #[test]
    fn welcome_and_snapshot_then_deltas_are_applied_in_order() {
        let now = Instant::now();
        let mut session = joined(now);
        assert_eq!(session.player(), Some(ME));
        for base_tick in 10..13 {
            session.handle_frame(&frame(&[delta(EPOCH, base_tick, vec![])]), now);
        }
        let room = session.room().expect("playing");
        assert_eq!(room.tick(), 13);
        let x = &room.entity(EntityId(1)).expect("entity").fields["x"];
        assert_eq!(x, &Value::from(12.0));
        let counters = session.counters();
        assert_eq!(counters.get(Counter::Frames), 4);
        assert_eq!(counters.get(Counter::Messages), 5);
        assert_eq!(counters.get(Counter::DeltasApplied), 3);
        assert_eq!(counters.get(Counter::Gaps), 0);
        assert_eq!(counters.get(Counter::Resyncs), 0);
        assert_eq!(counters.get(Counter::TickRegressions), 0);
    }

    #[test]
    fn a_gap_asks_for_a_snapshot_and_discards_deltas_until_it_arrives() {
        let now = Instant::now();
        let mut session = joined(now);
        let reply = session.handle_frame(&frame(&[delta(EPOCH, 11, vec![])]), now);
        assert_eq!(reply, Some(ClientMessage::Resync(Resync {})));
        assert!(session.room().is_none());
        assert_eq!(session.last_tick(), 10);
        assert_eq!(
            session.handle_frame(&frame(&[delta(EPOCH, 12, vec![])]), now),
            None
        );
        session.handle_frame(&frame(&[snapshot(EPOCH, 13, vec![])]), now);
        session.handle_frame(&frame(&[delta(EPOCH, 13, vec![])]), now);
        assert_eq!(session.room().map(RoomState::tick), Some(14));
        let counters = session.counters();
        assert_eq!(counters.get(Counter::Gaps), 1);
        assert_eq!(counters.get(Counter::Resyncs), 1);
        assert_eq!(counters.get(Counter::DeltasDiscarded), 1);
        assert_eq!(counters.get(Counter::TickRegressions), 0);
    }

    #[test]
    fn an_epoch_change_is_a_gap_and_the_new_epoch_starts_over() {
        let now = Instant::now();
        let mut session = joined(now);
        let reply = session.handle_frame(&frame(&[delta(EPOCH + 1, 10, vec![])]), now);
        assert_eq!(reply, Some(ClientMessage::Resync(Resync {})));
        // The new incarnation of the room restarts its ticks: not a regression.
        session.handle_frame(&frame(&[snapshot(EPOCH + 1, 2, vec![])]), now);
        session.handle_frame(&frame(&[delta(EPOCH + 1, 2, vec![])]), now);
        assert_eq!(session.room().map(RoomState::epoch), Some(EPOCH + 1));
        assert_eq!(session.counters().get(Counter::Gaps), 1);
        assert_eq!(session.counters().get(Counter::TickRegressions), 0);
    }

    #[test]
    fn an_unasked_snapshot_counts_as_a_resync_without_a_gap() {
        let now = Instant::now();
        let mut session = joined(now);
        let reply = session.handle_frame(&frame(&[snapshot(EPOCH, 30, vec![])]), now);
        assert_eq!(reply, Some(ClientMessage::Ack(Ack { tick: 30 })));
        assert_eq!(session.counters().get(Counter::Resyncs), 1);
        assert_eq!(session.counters().get(Counter::Gaps), 0);
        // The same epoch going back in time is a server bug the bot must report.
        session.handle_frame(&frame(&[snapshot(EPOCH, 20, vec![])]), now);
        assert_eq!(session.counters().get(Counter::TickRegressions), 1);
        // The swarm's ledger gets it as an order violation, naming the room.
        assert_eq!(session.counters().get(Counter::OrderViolations), 1);
        let violations = session.take_violations();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].kind(), "tick_not_increasing");
        assert!(session.take_violations().is_empty());
        assert_eq!(session.connection_epoch(), Some(EPOCH));
    }

    #[test]
    fn a_frame_that_does_not_decode_is_counted_and_changes_nothing() {
        let now = Instant::now();
        let mut session = joined(now);
        let garbage = [0xc1_u8, 0x00, 0xff];
        assert_eq!(session.handle_frame(&garbage, now), None);
        session.handle_text_frame(5);
        session.handle_frame(&frame(&[delta(EPOCH, 10, vec![])]), now);
        assert_eq!(session.counters().get(Counter::DecodeErrors), 2);
        assert_eq!(session.counters().get(Counter::Gaps), 0);
        assert_eq!(session.room().map(RoomState::tick), Some(11));
    }

    #[test]
    fn server_errors_and_events_in_a_batch_are_counted_as_messages() {
        let now = Instant::now();
        let mut session = joined(now);
        let error = ServerMessage::Error(ErrorMessage {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
        });
        session.handle_frame(&frame(&[delta(EPOCH, 10, vec![]), error]), now);
        assert_eq!(session.counters().get(Counter::ServerErrors), 1);
        assert_eq!(session.counters().get(Counter::Messages), 4);
    }

    #[test]
    fn an_idle_bot_acks_every_few_ticks_and_never_beyond_half_the_window() {
        let now = Instant::now();
        let mut session = Session::new(ProtocolVersion::V1);
        session.handle_frame(&frame(&[welcome(4), snapshot(EPOCH, 0, vec![])]), now);
        let replies: Vec<_> = (0..6)
            .map(|base_tick| session.handle_frame(&frame(&[delta(EPOCH, base_tick, vec![])]), now))
            .collect();
        let ack = |tick| Some(ClientMessage::Ack(Ack { tick }));
        assert_eq!(replies, vec![None, ack(2), None, ack(4), None, ack(6)]);
        assert_eq!(session.counters().get(Counter::AcksSent), 3);
    }

    #[test]
    fn a_redirect_instead_of_welcome_is_kept_for_the_bot() {
        let redirect = Redirect {
            room: RoomId::parse("r1").expect("valid id"),
            node: "n2".into(),
            ws_url: "ws://127.0.0.2:7878/v1/rooms/r1/ws".into(),
        };
        let mut session = Session::new(ProtocolVersion::V1);
        let frame = frame(&[ServerMessage::Redirect(redirect.clone())]);
        assert_eq!(session.handle_frame(&frame, Instant::now()), None);
        assert_eq!(session.redirect(), Some(&redirect));
        assert_eq!(session.player(), None);
    }

    #[test]
    fn a_version_2_session_mirrors_compact_snapshots_and_deltas() {
        let now = Instant::now();
        let schema = Schema::new();
        let ServerMessage::Snapshot(snapshot) = snapshot(EPOCH, 10, vec![]) else {
            unreachable!("a snapshot")
        };
        let ServerMessage::Delta(delta) = delta(EPOCH, 10, my_ack(3)) else {
            unreachable!("a delta")
        };
        let welcome = codec::encode_server(&welcome(32));
        let compact_snapshot = v2::encode_snapshot(&schema, &snapshot).expect("encodes");
        let roster = Roster {
            left: vec![],
            joined: vec![PlayerId(1), ME],
            ack_steps: vec![(PlayerId(1), 999), (ME, 3)],
        };
        let compact_delta =
            v2::encode_delta(&schema, &delta, &roster, |_| Some("player")).expect("encodes");
        let mut session = Session::new(ProtocolVersion::V2);
        session.handle_frame(&codec::batch_frame(&[&welcome, &compact_snapshot]), now);
        session.next_input(Value::Nil, now);
        session.next_input(Value::Nil, now);
        session.next_input(Value::Nil, now);
        session.handle_frame(&codec::batch_frame(&[&compact_delta]), now);
        let room = session.room().expect("playing");
        assert_eq!(room.tick(), 11);
        assert_eq!(room.ack(ME), Some(3));
        assert_eq!(session.counters().get(Counter::DeltasApplied), 1);
        assert_eq!(session.counters().get(Counter::InputsAcked), 3);
        assert_eq!(session.counters().get(Counter::DecodeErrors), 0);
    }
}
