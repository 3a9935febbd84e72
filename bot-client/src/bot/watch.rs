//! What one bot tells the swarm's [`Ledger`]: its seat when welcomed, the node serving each
//! epoch it sees, the tick-order violations its session found, its drop → back times, and (at
//! each flush) when its room last delivered state.
//!
//! Only reporting: protocol decisions stay in the session, I/O in the bot. Calls are per event
//! or per flush, not per frame, except [`Watch::observe`], which takes the lock only when
//! something new happened.

use super::Connection;
use crate::ledger::{node_of_ws_url, Ledger};
use crate::session::Session;
use std::time::Instant;

/// One bot's reporting state.
pub(super) struct Watch {
    bot: String,
    room: String,
    node: String,
    /// The epoch last reported as served by `node` on this connection.
    reported_epoch: Option<u64>,
    /// When the connection was lost, until the first state after the resume.
    dropped_at: Option<Instant>,
}

impl Watch {
    pub(super) fn new(bot: &str) -> Self {
        Self {
            bot: bot.to_owned(),
            room: String::new(),
            node: String::new(),
            reported_epoch: None,
            dropped_at: None,
        }
    }

    /// A `welcome` arrived on a connection to `connection` (a join, a resume or a new seat).
    pub(super) fn welcomed(
        &mut self,
        ledger: &Ledger,
        session: &mut Session,
        connection: &Connection,
    ) {
        self.room = connection.room_id.to_string();
        self.node = node_of_ws_url(&connection.ws_url).to_owned();
        self.reported_epoch = None;
        if let Some(player) = session.player() {
            ledger.welcomed(&self.bot, &self.room, player.0, &self.node);
        }
        // The welcome's frame usually carried the first state too.
        self.observe(ledger, session);
    }

    /// After each frame: violations found, a new epoch served, the first state after a drop.
    pub(super) fn observe(&mut self, ledger: &Ledger, session: &mut Session) {
        for violation in session.take_violations() {
            ledger.violated(violation);
        }
        if let Some(epoch) = session.connection_epoch() {
            if self.reported_epoch != Some(epoch) {
                ledger.served(&self.room, epoch, &self.node);
                self.reported_epoch = Some(epoch);
            }
        }
        if let (Some(dropped_at), Some(state_at)) = (self.dropped_at, session.last_state_at()) {
            if state_at > dropped_at {
                ledger.back_after(state_at.duration_since(dropped_at));
                self.dropped_at = None;
            }
        }
    }

    /// At the bot's periodic flush: when the room last delivered state to this bot.
    pub(super) fn flush(&self, ledger: &Ledger, session: &Session) {
        if let Some(state_at) = session.last_state_at() {
            if !self.room.is_empty() {
                ledger.room_state_at(&self.room, state_at);
            }
        }
    }

    /// The connection was lost (closed with a code that keeps the seat, reset, timed out or
    /// cut); the bot will try to resume.
    pub(super) fn lost(&mut self, ledger: &Ledger) {
        ledger.connection_lost(&self.bot);
        self.dropped_at = Some(Instant::now());
    }

    /// The session ended for good.
    pub(super) fn ended(&mut self, ledger: &Ledger) {
        ledger.connection_lost(&self.bot);
        self.dropped_at = None;
    }
}
