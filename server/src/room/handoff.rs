//! The room's side of a live drain: stop at a tick boundary, give the exact state away, then
//! either end (the next owner continues it) or carry on here (the handover failed).
//!
//! A room handles messages only between ticks, so [`BeginHandoff`] always finds it at a tick
//! boundary: the state it answers is the one its members last received. From then on the room
//! steps nothing and sends nothing ([`Room::handing_off`] makes the tick a no-op), changes no
//! seat (joins and resumes that arrive wait, reservations and events are refused as if the room
//! were full or busy), so the old and the new owner never both run it and the state sent stays
//! exact. [`EndHandoff`] settles it: moved, every member is closed with 4017 `room_moving` (their
//! seats travel in the state, so each resumes on the new owner with `ticks_lost: 0`) and the
//! connections that waited get a `redirect` there; not moved, the room ticks on as if stalled
//! for a moment, and seats those who waited.

use super::{JoinRefused, Room};
use crate::member::JoinRoom;
use actix::prelude::*;
use ludus_protocol::{CloseCode, Redirect};
use std::time::Instant;

/// Stops the room at this tick boundary and answers its exact state, encoded as a checkpoint
/// (`Err` with the `ludus_checkpoints_total` outcome when it cannot be saved).
#[derive(Message)]
#[rtype(result = "Result<Vec<u8>, &'static str>")]
pub struct BeginHandoff;

/// Ends a handover begun with [`BeginHandoff`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndHandoff {
    /// The next owner holds the room (its node and the room's `ws_url` there): close members
    /// with 4017, redirect the connections that arrived meanwhile, and stop. `None`: tick on
    /// here, and seat those connections as usual.
    pub moved_to: Option<(String, String)>,
}

impl Room {
    /// Whether the room is stopped for a handover (it neither steps nor sends).
    pub(super) fn handing_off(&self) -> bool {
        self.handoff_since.is_some()
    }

    /// A reservation made while the room is stopped for a handover would not travel with its
    /// state: the room counts as full until the handover ends.
    pub(super) fn refuse_while_handing_off(&self) -> Result<(), JoinRefused> {
        if self.handing_off() {
            return Err(JoinRefused::RoomFull);
        }
        Ok(())
    }

    /// The close code for a room ending with `reason`: a room whose entry another node took
    /// while it was handing over has moved, by its own request (unless this node fenced
    /// itself: then the room comes back from a checkpoint, not from its exact state).
    pub(super) fn ending_code(&self, reason: CloseCode) -> CloseCode {
        let fenced = self.directory.fence().is_closed();
        if self.handing_off() && reason == CloseCode::RoomMoved && !fenced {
            CloseCode::RoomMoving
        } else {
            reason
        }
    }

    /// Keeps a join or resume that arrived during a handover for its end.
    pub(super) fn wait_for_handover(&mut self, join: JoinRoom) {
        self.waiting_joins.push(join);
    }
}

impl Handler<BeginHandoff> for Room {
    type Result = Result<Vec<u8>, &'static str>;

    fn handle(&mut self, _message: BeginHandoff, _ctx: &mut Self::Context) -> Self::Result {
        let max_bytes = match &self.settings.checkpoints {
            Some((sink, _)) => sink.max_bytes,
            None => return Err("not_clustered"),
        };
        let bytes = self.encode_checkpoint(max_bytes)?;
        self.handoff_since = Some(Instant::now());
        tracing::info!(
            room_id = %self.settings.room_id,
            tick = self.simulation.tick(),
            "room stopped for a handover"
        );
        Ok(bytes)
    }
}

impl Handler<EndHandoff> for Room {
    type Result = ();

    fn handle(&mut self, message: EndHandoff, ctx: &mut Self::Context) {
        let Some(since) = self.handoff_since else {
            return;
        };
        let waiting = std::mem::take(&mut self.waiting_joins);
        if let Some((node, ws_url)) = message.moved_to {
            for join in waiting {
                join.connection.redirect(Redirect {
                    room: self.settings.room_id.clone(),
                    node: node.clone(),
                    ws_url: ws_url.clone(),
                });
            }
            self.close_reason = CloseCode::RoomMoving;
            return ctx.stop();
        }
        self.handoff_since = None;
        tracing::warn!(
            room_id = %self.settings.room_id,
            paused_ms = since.elapsed().as_millis() as u64,
            "handover failed: the room ticks on here"
        );
        for join in waiting {
            self.handle(join, ctx);
        }
    }
}
