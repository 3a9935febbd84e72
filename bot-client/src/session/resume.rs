//! A session's resume: what it keeps when its connection drops, the `hello` that asks for the
//! seat back, and the checks on the answer.
//!
//! Order, per drop: [`Session::connection_lost`] once; then per attempt
//! [`Session::resume_hello`] on a new socket; the answer goes through
//! [`Session::handle_frame`] like any frame. A resumed `welcome` followed by the missed deltas
//! (or a snapshot) completes the resume at its first state message; an `error` with a resume
//! code is kept as the refusal ([`Session::take_refusal`]) and the bot then starts over with
//! [`Session::start_over`] and a new seat.
//!
//! Mismatches (must stay 0): a resumed `welcome` for another player or epoch, a delta in the
//! resume batch that does not apply to the mirror kept, a resume snapshot of another epoch or
//! older than the tick resumed from.

use super::{Phase, Session};
use crate::reconnect::{ResumeOutcome, ResumeRefusal};
use crate::stats::Counter;
use ludus_protocol::{ClientMessage, ErrorCode, Hello, Resume, Welcome};
use std::time::Instant;

/// A resume in progress: `hello.resume` sent, waiting for the answer.
#[derive(Clone, Debug)]
pub(super) struct PendingResume {
    /// When the connect that carries this resume started: the latency's origin.
    connect_started: Instant,
    /// The tick the session resumes from (sent as `last_tick`).
    last_tick: u64,
    /// The mirror's epoch at the drop, when it had a mirror.
    epoch: Option<u64>,
    /// The resumed `welcome` arrived; the next state message completes the resume.
    welcomed: bool,
    /// The welcome's `ticks_lost`: the room was restored on another node after its node
    /// failed, in a new epoch, from a checkpoint this many ticks behind the mirror.
    ticks_lost: Option<u64>,
}

impl Session {
    /// Whether a dropped connection can be resumed: the session was welcomed with a token.
    pub fn can_resume(&self) -> bool {
        self.player.is_some() && self.resume_token.is_some()
    }

    /// Whether a resume `hello` was sent and its answer is not complete yet.
    pub fn resuming(&self) -> bool {
        self.resume.is_some()
    }

    /// The connection dropped: forgets the inputs in flight (they may or may not have been
    /// applied; the acks after the resume tell) and anything half-received. The mirror, the
    /// input sequence and the resume token stay.
    pub fn connection_lost(&mut self) {
        let unconfirmed = self.inputs_in_flight.len() as u64;
        self.inputs_in_flight.clear();
        self.counters
            .add(Counter::InputsUnconfirmedAtDrop, unconfirmed);
        self.redirect = None;
        self.resume = None;
        self.in_resume_batch = false;
    }

    /// The `hello` asking for the seat back on a new connection whose connect started at
    /// `connect_started`, or `None` when the session has nothing to resume.
    pub fn resume_hello(&mut self, connect_started: Instant) -> Option<ClientMessage> {
        let token = self.resume_token.clone()?;
        self.player?;
        let last_tick = self.last_tick();
        let epoch = match &self.phase {
            Phase::Playing(mirror) => Some(mirror.epoch()),
            Phase::Joining | Phase::AwaitingSnapshot { .. } => None,
        };
        self.resume = Some(PendingResume {
            connect_started,
            last_tick,
            epoch,
            welcomed: false,
            ticks_lost: None,
        });
        self.awaiting_welcome = true;
        self.refusal = None;
        // `last_tick` acknowledges the ticks up to it, as an `ack` would.
        self.acked_tick = last_tick;
        self.counters.incr(Counter::ResumeAttempts);
        Some(ClientMessage::Hello(Hello {
            protocol: self.protocol.number(),
            token: String::new(),
            resume: Some(Resume { token, last_tick }),
        }))
    }

    /// The last resumed `welcome`'s `ticks_lost`: set when the room came back in a new epoch
    /// (restored from a checkpoint, or handed over by a drain, which must lose none).
    pub fn resumed_ticks_lost(&self) -> Option<u64> {
        self.resumed_ticks_lost
    }

    /// Why the server refused the last resume, once.
    pub fn take_refusal(&mut self) -> Option<ResumeRefusal> {
        self.refusal.take()
    }

    /// How the last resume completed, once.
    pub fn take_resume_outcome(&mut self) -> Option<ResumeOutcome> {
        self.resume_outcome.take()
    }

    /// Forgets the seat (after a refused resume): the next `hello` is a fresh join with a new
    /// seat token, inputs numbered from 1 again. The counters carry on.
    pub fn start_over(&mut self) {
        let counters = std::mem::take(&mut self.counters);
        // Violations found and not yet reported still go to the ledger; the tick order starts
        // over with the new seat, which is a new view of the room.
        let violations = std::mem::take(&mut self.violations);
        *self = Session::new(self.protocol);
        self.counters = counters;
        self.violations = violations;
    }

    pub(super) fn on_error_code(&mut self, code: ErrorCode) {
        let Some(reason) = ResumeRefusal::from_code(code) else {
            return;
        };
        if self.resume.take().is_some() {
            self.counters.incr(Counter::resume_refused(reason));
            self.refusal = Some(reason);
        }
    }

    pub(super) fn on_resumed_welcome(&mut self, welcome: &Welcome) -> Option<ClientMessage> {
        let Some(pending) = self.resume.as_mut() else {
            // `resumed: true` without a resume asked: the server is confused.
            self.counters.incr(Counter::ResumeMismatches);
            self.player = Some(welcome.player);
            return None;
        };
        pending.welcomed = true;
        pending.ticks_lost = welcome.ticks_lost;
        self.resumed_ticks_lost = welcome.ticks_lost;
        // A restored room is a new epoch by definition; any other resume continues the old one.
        let expected_epoch = match welcome.ticks_lost {
            Some(_) => pending.epoch.is_none_or(|epoch| epoch != welcome.epoch),
            None => pending.epoch.is_none_or(|epoch| epoch == welcome.epoch),
        };
        if self.player != Some(welcome.player) || !expected_epoch {
            self.counters.incr(Counter::ResumeMismatches);
        }
        self.player = Some(welcome.player);
        match &self.phase {
            Phase::Playing(_) => None,
            // The connection dropped while a snapshot was awaited (or before the first one):
            // there is no mirror to apply the missed deltas to, and the `resync` sent into the
            // dead socket is lost. Ask again.
            Phase::Joining | Phase::AwaitingSnapshot { .. } => {
                let last_tick = self.last_tick();
                self.request_snapshot(last_tick)
            }
        }
    }

    /// Called for each state message; completes the pending resume at the first one after the
    /// resumed `welcome` and returns where it resumed from.
    pub(super) fn on_resume_state(
        &mut self,
        outcome: ResumeOutcome,
        now: Instant,
    ) -> Option<PendingResume> {
        if !self.resume.as_ref().is_some_and(|pending| pending.welcomed) {
            return None;
        }
        let pending = self.resume.take()?;
        self.counters
            .record_resume_latency(now.saturating_duration_since(pending.connect_started));
        self.counters.incr(match outcome {
            ResumeOutcome::Delta => Counter::ResumedByDelta,
            ResumeOutcome::Snapshot => Counter::ResumedBySnapshot,
        });
        if pending.ticks_lost.is_some() {
            self.counters.incr(Counter::ResumedRestored);
        }
        self.resume_outcome = Some(outcome);
        self.in_resume_batch = true;
        Some(pending)
    }

    pub(super) fn check_resume_snapshot(&mut self, from: &PendingResume, epoch: u64, tick: u64) {
        let continues = match from.ticks_lost {
            // Restored: a new epoch, from a checkpoint `ticks_lost` behind where the mirror
            // was (the room may have ticked on since).
            Some(lost) => {
                from.epoch.is_none_or(|from_epoch| from_epoch != epoch)
                    && tick >= from.last_tick.saturating_sub(lost)
            }
            None => {
                from.epoch.is_none_or(|from_epoch| from_epoch == epoch) && tick >= from.last_tick
            }
        };
        if !continues {
            self.counters.incr(Counter::ResumeMismatches);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use ludus_protocol::{
        Ack, ErrorMessage, Input, ProtocolVersion, Resync, RoomState, ServerMessage, Value, Welcome,
    };
    use std::time::Duration;

    fn resume_of(hello: Option<ClientMessage>) -> (String, Resume) {
        match hello {
            Some(ClientMessage::Hello(Hello {
                token,
                resume: Some(resume),
                ..
            })) => (token, resume),
            other => panic!("not a resume hello: {other:?}"),
        }
    }

    fn refusal(code: ErrorCode) -> ServerMessage {
        ServerMessage::Error(ErrorMessage {
            code,
            message: "refused".into(),
        })
    }

    /// A session at tick 10 whose connection dropped and that sent its resume `hello` at
    /// `start` (after sending inputs 1 and 2 into the dead socket).
    fn dropped_and_resuming(start: Instant) -> Session {
        let mut session = joined(start);
        session.next_input(Value::from(1), start);
        session.next_input(Value::from(2), start);
        session.connection_lost();
        assert!(session.can_resume());
        let (seat_token, resume) = resume_of(session.resume_hello(start));
        assert_eq!(seat_token, "");
        assert_eq!(
            resume,
            Resume {
                token: "t1".into(),
                last_tick: 10
            }
        );
        assert!(session.awaiting_welcome() && session.resuming());
        session
    }

    #[test]
    fn resumed_welcome_and_missed_deltas_continue_the_mirror_and_the_input_sequence() {
        let start = Instant::now();
        let mut session = dropped_and_resuming(start);
        let answer = frame(&[
            resumed_welcome(EPOCH, "t2"),
            delta(EPOCH, 10, vec![]),
            delta(EPOCH, 11, my_ack(1)),
        ]);
        session.handle_frame(&answer, start + Duration::from_millis(7));
        assert!(!session.awaiting_welcome() && !session.resuming());
        assert_eq!(session.take_resume_outcome(), Some(ResumeOutcome::Delta));
        assert_eq!(session.take_resume_outcome(), None);
        assert_eq!(session.room().map(RoomState::tick), Some(12));
        let counters = session.counters();
        assert_eq!(counters.get(Counter::ResumedByDelta), 1);
        assert_eq!(counters.get(Counter::ResumeMismatches), 0);
        assert_eq!(counters.get(Counter::Gaps), 0);
        assert_eq!(counters.get(Counter::Resyncs), 0);
        assert_eq!(counters.get(Counter::InputsUnconfirmedAtDrop), 2);
        // Input 1 was lost or applied: its ack is not a latency sample of this connection.
        assert_eq!(counters.get(Counter::InputsAcked), 0);
        assert!(matches!(
            session.next_input(Value::from(3), start),
            Some(ClientMessage::Input(Input {
                seq: 3,
                ack_tick: 12,
                ..
            }))
        ));
        // The next resume uses the new token (a token works once).
        session.connection_lost();
        let (_, resume) = resume_of(session.resume_hello(start));
        assert_eq!(resume.token, "t2");
        assert_eq!(resume.last_tick, 12);
    }

    #[test]
    fn a_resume_answered_with_a_snapshot_replaces_the_mirror_without_a_resync() {
        let start = Instant::now();
        let mut session = dropped_and_resuming(start);
        let answer = frame(&[resumed_welcome(EPOCH, "t2"), snapshot(EPOCH, 90, my_ack(2))]);
        let reply = session.handle_frame(&answer, start + Duration::from_millis(3));
        assert_eq!(reply, Some(ClientMessage::Ack(Ack { tick: 90 })));
        assert_eq!(session.take_resume_outcome(), Some(ResumeOutcome::Snapshot));
        assert_eq!(session.room().map(RoomState::tick), Some(90));
        let counters = session.counters();
        assert_eq!(counters.get(Counter::ResumedBySnapshot), 1);
        assert_eq!(counters.get(Counter::Resyncs), 0);
        assert_eq!(counters.get(Counter::ResumeMismatches), 0);
        assert_eq!(counters.get(Counter::TickRegressions), 0);
    }

    #[test]
    fn a_resume_delta_that_does_not_continue_the_mirror_is_a_mismatch_and_resyncs() {
        let start = Instant::now();
        let mut session = dropped_and_resuming(start);
        let answer = frame(&[resumed_welcome(EPOCH, "t2"), delta(EPOCH, 11, vec![])]);
        let reply = session.handle_frame(&answer, start);
        assert_eq!(reply, Some(ClientMessage::Resync(Resync {})));
        assert_eq!(session.counters().get(Counter::ResumeMismatches), 1);
        assert_eq!(session.counters().get(Counter::Gaps), 1);
        // Later gaps are gaps, not resume mismatches.
        session.handle_frame(&frame(&[snapshot(EPOCH, 20, vec![])]), start);
        session.handle_frame(&frame(&[delta(EPOCH, 25, vec![])]), start);
        assert_eq!(session.counters().get(Counter::ResumeMismatches), 1);
        assert_eq!(session.counters().get(Counter::Gaps), 2);
    }

    #[test]
    fn a_resume_into_a_restored_room_takes_its_new_epoch_from_ticks_lost_behind() {
        let start = Instant::now();
        let restored = |ticks_lost| {
            let ServerMessage::Welcome(welcome) = resumed_welcome(EPOCH + 1, "t2") else {
                unreachable!("a welcome")
            };
            ServerMessage::Welcome(Welcome {
                ticks_lost: Some(ticks_lost),
                ..welcome
            })
        };
        // The mirror was at tick 10; the checkpoint at tick 8.
        let mut session = dropped_and_resuming(start);
        session.handle_frame(
            &frame(&[restored(2), snapshot(EPOCH + 1, 8, vec![])]),
            start,
        );
        assert_eq!(session.counters().get(Counter::ResumeMismatches), 0);
        assert_eq!(session.counters().get(Counter::ResumedRestored), 1);
        assert_eq!(session.counters().get(Counter::ResumedBySnapshot), 1);
        // Kept for the bot, which sums it over resumes after a drain's 4017 (must be 0).
        assert_eq!(session.resumed_ticks_lost(), Some(2));
        // A restored room in the old epoch, or before where ticks_lost says, is a mismatch.
        for answer in [
            frame(&[restored(2), snapshot(EPOCH + 1, 7, vec![])]),
            frame(&[
                ServerMessage::Welcome(Welcome {
                    ticks_lost: Some(0),
                    ..match resumed_welcome(EPOCH, "t2") {
                        ServerMessage::Welcome(welcome) => welcome,
                        _ => unreachable!("a welcome"),
                    }
                }),
                snapshot(EPOCH, 10, vec![]),
            ]),
        ] {
            let mut session = dropped_and_resuming(start);
            session.handle_frame(&answer, start);
            assert!(session.counters().get(Counter::ResumeMismatches) >= 1);
        }
    }

    #[test]
    fn a_resume_snapshot_of_another_epoch_or_from_the_past_is_a_mismatch() {
        let start = Instant::now();
        for (welcome_epoch, snapshot) in [
            (EPOCH + 1, snapshot(EPOCH + 1, 3, vec![])),
            (EPOCH, snapshot(EPOCH, 4, vec![])),
        ] {
            let mut session = dropped_and_resuming(start);
            let answer = frame(&[resumed_welcome(welcome_epoch, "t2"), snapshot]);
            session.handle_frame(&answer, start);
            assert!(session.counters().get(Counter::ResumeMismatches) >= 1);
        }
    }

    #[test]
    fn a_refusal_is_kept_by_reason_and_starting_over_is_a_fresh_join() {
        let start = Instant::now();
        let mut session = dropped_and_resuming(start);
        session.handle_frame(&frame(&[refusal(ErrorCode::ResumeExpired)]), start);
        assert_eq!(session.take_refusal(), Some(ResumeRefusal::Expired));
        assert_eq!(session.take_refusal(), None);
        assert!(!session.resuming());
        session.start_over();
        assert!(session.awaiting_welcome());
        assert_eq!(session.player(), None);
        assert!(!session.can_resume());
        assert_eq!(session.next_input(Value::from(1), start), None);
        assert_eq!(session.counters().get(Counter::ResumeRefusedExpired), 1);
        // A fresh welcome numbers inputs from 1 again.
        session.handle_frame(&frame(&[welcome(32), snapshot(EPOCH, 40, vec![])]), start);
        assert!(matches!(
            session.next_input(Value::from(1), start),
            Some(ClientMessage::Input(Input { seq: 1, .. }))
        ));
    }

    #[test]
    fn a_resume_error_code_outside_a_resume_is_only_a_server_error() {
        let start = Instant::now();
        let mut session = joined(start);
        session.handle_frame(&frame(&[refusal(ErrorCode::ResumeUsed)]), start);
        assert_eq!(session.take_refusal(), None);
        assert_eq!(session.counters().get(Counter::ServerErrors), 1);
        assert_eq!(session.counters().get(Counter::ResumeRefusedUsed), 0);
    }

    #[test]
    fn a_drop_while_awaiting_a_snapshot_asks_for_it_again_after_the_resume() {
        let start = Instant::now();
        let mut session = joined(start);
        let gap = session.handle_frame(&frame(&[delta(EPOCH, 12, vec![])]), start);
        assert_eq!(gap, Some(ClientMessage::Resync(Resync {})));
        session.connection_lost();
        let (_, resume) = resume_of(session.resume_hello(start));
        assert_eq!(resume.last_tick, 10);
        let answer = frame(&[resumed_welcome(EPOCH, "t2"), delta(EPOCH, 10, vec![])]);
        let reply = session.handle_frame(&answer, start);
        assert_eq!(reply, Some(ClientMessage::Resync(Resync {})));
        session.handle_frame(&frame(&[snapshot(EPOCH, 14, vec![])]), start);
        assert_eq!(session.room().map(RoomState::tick), Some(14));
        assert_eq!(session.counters().get(Counter::ResumeMismatches), 0);
    }

    #[test]
    fn nothing_to_resume_without_a_token() {
        let start = Instant::now();
        let mut session = Session::new(ProtocolVersion::V2);
        assert!(!session.can_resume());
        assert_eq!(session.resume_hello(start), None);
        let mut no_token = welcome(32);
        if let ServerMessage::Welcome(welcome) = &mut no_token {
            welcome.resume_token = None;
        }
        session.handle_frame(&frame(&[no_token]), start);
        assert!(!session.can_resume());
        assert_eq!(session.resume_hello(start), None);
    }
}
