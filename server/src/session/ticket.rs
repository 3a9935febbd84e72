//! A connection's place in the books: counted in the sessions gauge from the WebSocket handshake
//! until its socket is dropped, whoever holds it then (the hello task, the room, the closing
//! task), and counted once by how it ended.
//!
//! Why a value and not calls at start and stop: a connection changes owner twice (hello task →
//! room → closing task), and a ticket that moves with the socket can neither be counted twice nor
//! be forgotten on an early return.

use crate::conn_limit::ConnectionGuard;
use crate::metrics::Metrics;
use crate::outbox::{Opcode, Outbox, TryWrite};
use bytes::Bytes;
use ludus_protocol::{codec, ServerMessage};

/// Held for a connection's whole life; dropping it records the end.
#[derive(Debug)]
pub struct SessionTicket {
    id: u64,
    metrics: Metrics,
    reason: &'static str,
    /// The connection's slot under the WebSocket caps.
    _connection: ConnectionGuard,
}

impl SessionTicket {
    /// Counts a new session `id`, holding its slot `connection`.
    pub fn new(id: u64, metrics: Metrics, connection: ConnectionGuard) -> Self {
        metrics.sessions.inc();
        Self {
            id,
            metrics,
            reason: "client_closed",
            _connection: connection,
        }
    }

    /// The session's id (as `welcome.session` tells the client).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Records why the session ends (a close code's reason); the last one set counts.
    pub fn set_reason(&mut self, reason: &'static str) {
        self.reason = reason;
    }

    /// Sends one message to the session's client on `outbox`, outside a room's tick (a hello's
    /// answer, a redirect), counted in the metrics as every frame is.
    pub fn send<W: TryWrite>(&self, outbox: &mut Outbox<W>, message: ServerMessage) {
        let frame = Bytes::from(codec::encode_batch(&[message]));
        self.metrics.messages_sent.inc();
        self.metrics.bytes_sent.inc_by(frame.len() as u64);
        outbox.send(Opcode::Binary, frame);
    }

    /// The metrics the session reports to.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl Drop for SessionTicket {
    fn drop(&mut self) {
        self.metrics.sessions.dec();
        self.metrics.session_closed(self.reason);
    }
}
