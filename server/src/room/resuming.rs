//! The room's side of session resume: seats of disconnected players, their expiry, the history
//! resuming clients catch up from, and the resume itself. The decisions are the plain functions
//! of [`crate::resume`]; this file carries them out.

use super::Room;
use crate::encoding::{self, DeltaFrame, PerVersion};
use crate::member::{FrameKind, Handoff, Member};
use crate::resume::{admit_resume, keeps_seat, Away, SeatHolder};
use crate::session::closing::Ending;
use crate::session::MAX_QUEUED_BYTES;
use actix::Context;
use bytes::Bytes;
use ludus_protocol::v2::Roster;
use ludus_protocol::{codec, CloseCode, Delta, PlayerId, ProtocolVersion};
use std::time::{Duration, Instant};

/// The largest catch-up (missed deltas) sent after a resume, in bytes; beyond, a snapshot. Half
/// of what a client may leave unread, so a catch-up never trips the `too_slow` bound.
const MAX_CATCH_UP_BYTES: usize = MAX_QUEUED_BYTES / 2;

/// Where a resuming client left off, as its hello task verified it.
#[derive(Debug, Clone, Copy)]
pub struct ResumeJoin {
    /// The session its resume token was issued to.
    pub session: u64,
    /// The last tick its mirror applied.
    pub last_tick: u64,
    /// Its token is of the room's previous epoch: the room was restored from a checkpoint on
    /// this node after its node failed, so the client's mirror is of another timeline.
    pub epoch_changed: bool,
}

impl Room {
    /// Ends `player`'s connection: with `ending` (close frame and handshake), or at once when
    /// `None` (the client is gone). A connection that dropped keeps its seat for the resume
    /// window; otherwise the player leaves the game.
    pub(super) fn end_member(
        &mut self,
        player: PlayerId,
        ending: Option<Ending>,
        ctx: &mut Context<Self>,
    ) {
        let Some(member) = self.detach(player) else {
            return;
        };
        if !self.settings.resume_window.is_zero() && keeps_seat(ending.as_ref()) {
            self.away.insert(
                player,
                Away {
                    session: member.session_id,
                    protocol: member.protocol,
                    since: Instant::now(),
                },
            );
            if let Err(panicked) = self.simulation.disconnect(player) {
                self.crash(panicked, ctx);
            }
        } else {
            self.leave_game(player, ctx);
        }
        match ending {
            Some(ending) => member.close(ending),
            None => member.drop_gone(),
        }
    }

    /// Frees the seats whose resume window passed.
    pub(super) fn expire_away(&mut self, now: Instant, ctx: &mut Context<Self>) {
        if self.away.is_empty() {
            return;
        }
        for player in self.away.expire(now, self.settings.resume_window) {
            tracing::debug!(room_id = %self.settings.room_id, %player, "resume window passed");
            self.leave_game(player, ctx);
        }
    }

    /// Keeps the tick's delta, in every version a member or disconnected player speaks, for
    /// clients that resume later.
    pub(super) fn remember(
        &mut self,
        tick: u64,
        delta: &Delta,
        roster: &Roster,
        frames: &PerVersion<DeltaFrame>,
    ) {
        if self.settings.resume_window.is_zero() {
            return;
        }
        let versions = self
            .members
            .values()
            .map(|member| member.protocol)
            .chain(self.away.versions());
        let (mut v1, mut v2) = (false, false);
        for version in versions {
            match version {
                ProtocolVersion::V1 => v1 = true,
                ProtocolVersion::V2 => v2 = true,
            }
        }
        let part = |version| {
            let frame = frames.get_or_init(version, || {
                encoding::delta_frame(&self.simulation, delta, roster, version)
            });
            frame.part()
        };
        let v1 = v1.then(|| part(ProtocolVersion::V1));
        let v2 = v2.then(|| part(ProtocolVersion::V2));
        let before = self.history.bytes();
        self.history.push(tick, v1, v2);
        let after = self.history.bytes();
        let gauge = &self.metrics.resume_history_bytes;
        gauge.add(i64::try_from(after).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(0));
    }

    /// A client resumes `player`'s seat with `connection`: it takes the seat over (closing a
    /// connection that still looks open with 4015), gets a welcome with a new resume token, and
    /// the deltas it missed, or a snapshot when the history no longer has them.
    pub(super) fn resume(
        &mut self,
        player: PlayerId,
        resume: ResumeJoin,
        connection: Handoff,
        ctx: &mut Context<Self>,
    ) {
        let holder = match (self.members.get(&player), self.away.get(player)) {
            (Some(member), _) => SeatHolder::Connected(member.session_id),
            (None, Some(away)) => SeatHolder::Away(away),
            (None, None) => SeatHolder::Nobody,
        };
        let takeover = match admit_resume(holder, resume.session) {
            Ok(takeover) => takeover,
            Err(refused) => {
                self.count_resume(refused.outcome());
                let error = Some((refused.code(), refused.to_string()));
                return connection.close(Ending::Server(CloseCode::ResumeRefused, error));
            }
        };
        if takeover {
            if let Some(old) = self.detach(player) {
                old.close(Ending::Server(CloseCode::SessionReplaced, None));
            }
        } else {
            self.away.remove(player);
            if let Err(panicked) = self.simulation.reconnect(player) {
                return self.crash(panicked, ctx);
            }
        }
        let now = Instant::now();
        let tick = self.simulation.tick();
        let protocol = connection.protocol;
        let mut member = Member::new(
            connection,
            self.settings.window_ticks,
            &self.settings.limits,
        );
        if let Err(error) = self.watch(player, &member) {
            tracing::warn!(%error, "cannot watch a resumed member's socket");
            self.leave_game(player, ctx);
            return member.close(Ending::Server(CloseCode::RoomCrashed, None));
        }
        // Lost: what the client saw past the checkpoint the room was restored from, however
        // long after the restore it comes back.
        let restored_at = self.restored_at_tick.unwrap_or(tick);
        let ticks_lost = resume
            .epoch_changed
            .then(|| resume.last_tick.saturating_sub(restored_at));
        let welcome = self.encode_welcome(player, member.session_id, Some(ticks_lost));
        // A catch-up larger than a client may leave unread would be closed as too slow: a
        // snapshot is smaller then. A restored room has no deltas of the client's epoch.
        let missed = self
            .history
            .since(resume.last_tick, protocol)
            .filter(|_| !resume.epoch_changed)
            .filter(|missed| missed.iter().map(Bytes::len).sum::<usize>() <= MAX_CATCH_UP_BYTES);
        let (outcome, offered, bytes) = match missed {
            Some(missed) => {
                let parts: Vec<&[u8]> = std::iter::once(welcome.as_slice())
                    .chain(missed.iter().map(|part| &part[..]))
                    .collect();
                let bytes = Bytes::from(codec::batch_frame(&parts));
                member.resume_streaming(resume.last_tick, tick);
                let offered = member.write(crate::outbox::Opcode::Binary, bytes.clone());
                ("delta", offered, bytes)
            }
            None => {
                let snapshot = encoding::snapshot_part(&self.simulation, protocol);
                let outcome = if resume.epoch_changed {
                    "restored"
                } else {
                    "snapshot"
                };
                let bytes = Bytes::from(codec::batch_frame(&[&welcome, &snapshot]));
                let offered = member.offer(FrameKind::Snapshot { tick }, &bytes, now);
                (outcome, offered, bytes)
            }
        };
        self.count_resume(outcome);
        self.metrics.messages_sent.inc();
        self.metrics.bytes_sent.inc_by(bytes.len() as u64);
        self.members.insert(player, member);
        self.publish_listing();
        tracing::debug!(room_id = %self.settings.room_id, %player, outcome, "session resumed");
        if let Some(ending) = offered.ending() {
            self.end_member(player, ending, ctx);
        }
    }

    /// Takes back what a restored room's checkpoint holds besides the simulation: every seat,
    /// as away from now (each may resume with its old session's token within the room's resume
    /// window, or leaves the game when it passes, as after any dropped connection), the
    /// reservations not yet taken and the operator events not yet sent.
    pub fn restore_occupants(&mut self, checkpoint: &crate::checkpoint::Checkpoint) {
        for (event, size) in &checkpoint.events {
            // Within the bound they were accepted under; a smaller bound here drops the rest.
            if self.events.push(event.clone(), *size).is_err() {
                self.metrics.events_refused.inc();
            }
        }
        self.restored_at_tick = Some(self.simulation.tick());
        let now = Instant::now();
        // Reservations keep their wall-clock expiry (the nodes' clocks agree closely enough
        // for seat lifetimes measured in seconds; a skewed one only shortens or stretches them).
        let wall = crate::lobby::unix_millis(std::time::SystemTime::now());
        for (player, expires_at_ms) in &checkpoint.reservations {
            let left = Duration::from_millis(expires_at_ms.saturating_sub(wall));
            if !left.is_zero() {
                self.reservations.insert(*player, now + left);
            }
        }
        for seat in &checkpoint.seats {
            let protocol =
                ProtocolVersion::from_hello(seat.protocol).unwrap_or(ProtocolVersion::V1);
            let away = Away {
                session: seat.session,
                protocol,
                since: now,
            };
            self.away.insert(seat.player, away);
        }
        self.publish_listing();
    }

    fn count_resume(&self, outcome: &str) {
        self.metrics.resumes.with_label_values(&[outcome]).inc();
    }
}
