//! A WebSocket connection from the handshake until its room takes it, and again when it ends.
//!
//! A connection's life, and who owns its socket at each step:
//! 1. The hello task ([`crate::hello`]) reads frames until `hello` (within the hello timeout),
//!    checks the seat token, redirects a client whose room lives on another node, and hands the
//!    bare socket to its room ([`crate::member::JoinRoom`]).
//! 2. The room owns it while the player plays: it reads the socket once per tick and writes the
//!    tick's frame to it ([`crate::member`]); no task or actor per connection runs meanwhile.
//! 3. The closing task ([`closing`]) sends the close frame and finishes the WebSocket close
//!    handshake, whoever decided to close.
//!
//! This module is the plumbing every owner uses and knows nothing of rooms: the frame decoder,
//! the screening rules, the ticket and the closing task.
//!
//! Every server-side close carries a documented [`CloseCode`](ludus_protocol::CloseCode),
//! preceded by an `error` message when the client did something wrong. What a frame comes to,
//! and which close applies, are decided by the plain functions of [`policy`], the same for the
//! hello task and the room. Every connection is counted from handshake to close by its
//! [`SessionTicket`].

mod client_codec;
pub mod closing;
pub mod policy;
mod ticket;

pub use client_codec::{ClientCodec, Incoming};
pub use ticket::SessionTicket;

use std::time::Duration;

/// Initial read buffer of a connection. Client messages are tens of bytes; a larger one grows
/// the buffer (up to the frame limit) for as long as it is pending.
pub const READ_BUFFER_BYTES: usize = 512;

/// Bytes a client may leave unread beyond what the kernel buffers before it is closed with
/// `too_slow`: flow control normally stops sending long before, unless a client acknowledges
/// ticks it never reads.
pub const MAX_QUEUED_BYTES: usize = 256 * 1024;

/// Kernel send buffer requested for each session's socket (`SO_SNDBUF`), so the kernel part of
/// what a client can leave unread is bounded too: left to autotuning, Linux grows it to several
/// MiB for a client that does not read, far beyond [`MAX_QUEUED_BYTES`]. Linux doubles the
/// requested value (the extra is for its bookkeeping), so the buffer is 128 KiB. A tick frame is
/// a few hundred bytes, so this costs no throughput; a large snapshot waits in the outbox.
pub const SEND_BUFFER_BYTES: usize = 64 * 1024;

/// How long a closing connection waits for its close frame to drain before dropping the socket.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Per-connection limits, shared by every session of a server.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Largest accepted client message, in bytes.
    pub max_message_bytes: usize,
    /// Time to send `hello`.
    pub hello_timeout: Duration,
    /// Interval between pings.
    pub heartbeat_interval: Duration,
    /// Close when nothing was heard for this long.
    pub idle_timeout: Duration,
    /// Sustained messages per second.
    pub rate_per_sec: u32,
    /// Burst above the rate.
    pub burst: u32,
    /// Close a client paused by flow control for this long.
    pub slow_client_timeout: Duration,
}

impl SessionLimits {
    /// The decoder of a connection's frames: it refuses frames far above the message limit
    /// before buffering them; frames between the limit and this size reach [`policy::screen`],
    /// which answers `message_too_large` precisely.
    pub fn codec(&self) -> ClientCodec {
        ClientCodec::new(self.max_message_bytes.saturating_mul(2))
    }
}
