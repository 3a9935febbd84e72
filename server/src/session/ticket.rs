//! A connection's place in the books: counted in the sessions gauge from the WebSocket handshake
//! until its socket is dropped, whoever holds it then (the hello task, the room, the closing
//! task), and counted once by how it ended.
//!
//! Why a value and not calls at start and stop: a connection changes owner twice (hello task →
//! room → closing task), and a ticket that moves with the socket can neither be counted twice nor
//! be forgotten on an early return.

use crate::conn_limit::ConnectionGuard;
use crate::metrics::Metrics;

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
