//! The room's side of its members' connections, once per tick: read the sockets the kernel
//! marked readable, act on what the clients sent, keep their heartbeats, and end connections.
//!
//! Readiness comes from the room's own `epoll` set (`mio`), asked with a zero timeout at the
//! tick: the sockets are not in the thread's event loop, so a client's bytes never wake the
//! thread, and a socket with nothing to read costs no system call.

use super::Room;
use crate::member::{Heard, READ_CHUNK};
use crate::session::closing::Ending;
use actix::Context;
use bytes::Bytes;
use ludus_protocol::{
    codec, ClientMessage, CloseCode, ErrorCode, ErrorMessage, PlayerId, Pong, ServerMessage,
};
use std::time::{Duration, Instant};

/// The readiness token of a player's socket: the player id itself (below 2^53, so it fits).
pub(super) fn member_token(player: PlayerId) -> mio::Token {
    mio::Token(usize::try_from(player.0).unwrap_or(usize::MAX))
}

impl Room {
    /// Reads every member with bytes waiting and acts on what it sent.
    pub(super) fn read_members(&mut self, now: Instant, ctx: &mut Context<Self>) {
        if self.members.is_empty() {
            return; // an empty room (waiting for players, or about to be disposed) asks nothing
        }
        if let Err(error) = self.readiness.poll(&mut self.ready, Some(Duration::ZERO)) {
            tracing::warn!(room_id = %self.settings.room_id, %error, "readiness poll failed");
        }
        for event in self.ready.iter() {
            let player = PlayerId(event.token().0 as u64);
            if let Some(member) = self.members.get_mut(&player) {
                member.readable = true;
                // The client's end of stream may sit behind data that one read leaves.
                member.peer_closed |= event.is_read_closed() || event.is_error();
            }
        }
        let readable: Vec<PlayerId> = self
            .members
            .iter()
            .filter(|(_, member)| member.readable)
            .map(|(player, _)| *player)
            .collect();
        let mut heard = Vec::new();
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.resize(READ_CHUNK, 0);
        for player in readable {
            let Some(member) = self.members.get_mut(&player) else {
                continue;
            };
            member.read(now, &self.settings.limits, &mut scratch, &mut heard);
            for item in heard.drain(..) {
                if !self.act(player, item, ctx) {
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    /// Acts on one thing a member sent; `false` once the member is gone.
    fn act(&mut self, player: PlayerId, heard: Heard, ctx: &mut Context<Self>) -> bool {
        let message = match heard {
            Heard::Message(message) => message,
            Heard::Dropped { notify } => {
                self.metrics
                    .inputs_dropped
                    .with_label_values(&["rate_limited"])
                    .inc();
                if notify {
                    let limits = &self.settings.limits;
                    let message = format!(
                        "more than {} messages per second (burst {}); excess dropped",
                        limits.rate_per_sec, limits.burst
                    );
                    return self.reply_error(player, ErrorCode::RateLimited, message, ctx);
                }
                return true;
            }
            Heard::End(ending) => {
                self.end_member(player, Some(ending), ctx);
                return false;
            }
            Heard::Gone => {
                self.end_member(player, None, ctx);
                return false;
            }
        };
        let Some(member) = self.members.get_mut(&player) else {
            return false;
        };
        match message {
            ClientMessage::Hello(_) => {
                let message = "`hello` was already accepted".to_owned();
                self.reply_error(player, ErrorCode::UnexpectedMessage, message, ctx)
            }
            ClientMessage::Input(input) => {
                member.on_ack(input.ack_tick);
                if member.inputs_this_tick >= self.settings.max_inputs_per_seat {
                    return self.input_dropped(player, input.seq, ctx);
                }
                match self
                    .simulation
                    .queue_input(player, input.seq, input.payload)
                {
                    Ok(()) => {
                        member.inputs_this_tick += 1;
                        self.metrics.inputs.inc();
                        true
                    }
                    Err(crate::simulation::InputRefused::QueueFull) => {
                        self.input_dropped(player, input.seq, ctx)
                    }
                    Err(_) => true, // stale or not a member: nothing to apply
                }
            }
            ClientMessage::Ack(ack) => {
                member.on_ack(ack.tick);
                true
            }
            ClientMessage::Resync(_) => {
                member.on_resync();
                true
            }
            ClientMessage::Leave(_) => {
                self.end_member(player, Some(Ending::Server(CloseCode::Normal, None)), ctx);
                false
            }
            ClientMessage::Ping(ping) => {
                let pong = ServerMessage::Pong(Pong {
                    nonce: ping.nonce,
                    tick: member.last_tick,
                });
                self.reply(player, &pong, ctx)
            }
        }
    }

    /// An input over the seat's bound for this tick (or the room's): dropped, and the player told.
    fn input_dropped(&mut self, player: PlayerId, seq: u32, ctx: &mut Context<Self>) -> bool {
        self.metrics
            .inputs_dropped
            .with_label_values(&["server_busy"])
            .inc();
        let message = format!("input {seq} dropped: the room is overloaded");
        self.reply_error(player, ErrorCode::ServerBusy, message, ctx)
    }

    fn reply_error(
        &mut self,
        player: PlayerId,
        code: ErrorCode,
        message: String,
        ctx: &mut Context<Self>,
    ) -> bool {
        self.reply(
            player,
            &ServerMessage::Error(ErrorMessage { code, message }),
            ctx,
        )
    }

    /// Writes one message to one member now; `false` when that ended the member.
    fn reply(
        &mut self,
        player: PlayerId,
        message: &ServerMessage,
        ctx: &mut Context<Self>,
    ) -> bool {
        let Some(member) = self.members.get_mut(&player) else {
            return false;
        };
        let frame = Bytes::from(codec::encode_batch(std::slice::from_ref(message)));
        self.metrics.messages_sent.inc();
        self.metrics.bytes_sent.inc_by(frame.len() as u64);
        match member.write(crate::outbox::Opcode::Binary, frame).ending() {
            None => true,
            Some(ending) => {
                self.end_member(player, ending, ctx);
                false
            }
        }
    }

    /// Pings members whose heartbeat is due and closes those whose timeouts passed.
    pub(super) fn heartbeats(&mut self, now: Instant, ctx: &mut Context<Self>) {
        let limits = std::sync::Arc::clone(&self.settings.limits);
        let due: Vec<(PlayerId, Heard)> = self
            .members
            .iter_mut()
            .filter_map(|(player, member)| Some((*player, member.heartbeat(now, &limits)?)))
            .collect();
        for (player, heard) in due {
            self.act(player, heard, ctx);
        }
    }
}
