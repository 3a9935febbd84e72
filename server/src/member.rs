//! A player's connection while it belongs to a room: read and written by the room's thread at
//! the room's tick, with no actor, task or wake-up of its own.
//!
//! Why: a connection that is read whenever its bytes arrive wakes its thread for every input,
//! and inputs only matter at the next tick anyway. The room reads each member's socket once per
//! tick, only when the kernel said it has bytes ([`crate::room`] asks its own `epoll` set with a
//! zero timeout, so an idle socket costs no system call), steps the game, and writes the tick's
//! frame to every member: one vectored write each, the same bytes for all.
//!
//! What a member holds: the socket (through its [`Outbox`]), the bytes read but not yet decoded,
//! the rate limiter and flow control that follow the client from its hello, and its heartbeat
//! clock. What the client's frames mean is decided by [`policy::screen`], as before the join;
//! this file only carries it out, and reports what the room must act on as [`Heard`].

use crate::flow::{FlowControl, FrameVerdict};
use crate::outbox::{Opcode, Outbox};
use crate::rate_limit::RateLimiter;
use crate::session::closing::{close, Ending, ToClose};
use crate::session::policy::{self, Phase, Screened};
use crate::session::{ClientCodec, SessionLimits, SessionTicket, MAX_QUEUED_BYTES};
use bytes::{Bytes, BytesMut};
use ludus_protocol::{ClientMessage, CloseCode, ErrorCode, ProtocolVersion};
use std::io::Read;
use std::net::TcpStream;
use std::time::Instant;
use tokio_util::codec::Decoder;

/// Most bytes read from one member in one tick; the rest waits for the next tick. A client
/// cannot make a tick longer by sending more, and its rate limit closes a flood anyway.
const MAX_READ_PER_TICK: usize = 16 * 1024;

/// Size of the buffer a room reads its members' sockets through: one read takes a tick's worth
/// of a client's messages.
pub const READ_CHUNK: usize = 4 * 1024;

/// A connection on its way into a room: the socket (non-blocking) with anything queued for it,
/// what the client sent that nobody decoded yet, and what follows the client from its hello.
pub struct Handoff {
    /// The socket and its queue.
    pub outbox: Outbox<TcpStream>,
    /// Bytes read but not decoded.
    pub unread: Bytes,
    /// The rate limiter, which counted every frame since the handshake.
    pub limiter: RateLimiter,
    /// When the client was last heard.
    pub heard_at: Instant,
    /// The protocol version the client speaks (its frames are encoded in it).
    pub protocol: ProtocolVersion,
    /// The connection's place in the books.
    pub ticket: SessionTicket,
}

impl Handoff {
    /// Sends the client to the room's node with a `redirect` (close 4012): it sends the same
    /// `hello` there.
    pub fn redirect(mut self, redirect: ludus_protocol::Redirect) {
        let message = ludus_protocol::ServerMessage::Redirect(redirect);
        self.ticket.send(&mut self.outbox, message);
        self.close(Ending::Server(CloseCode::Redirect, None));
    }

    /// Ends the connection without a room: `ending` goes out, then the close handshake.
    pub fn close(self, ending: Ending) {
        close(
            ToClose {
                outbox: self.outbox,
                unread: self.unread,
                ticket: self.ticket,
            },
            ending,
        );
    }
}

/// A connection with a verified token takes its reserved seat; the room now owns the socket.
/// A refused join is answered on the connection itself (an `error` and a close).
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct JoinRoom {
    /// The player (from the token).
    pub player: ludus_protocol::PlayerId,
    /// Display name (from the token).
    pub name: String,
    /// The connection.
    pub connection: Handoff,
    /// Present when the client resumes a session instead of taking a reserved seat.
    pub resume: Option<crate::room::ResumeJoin>,
}

/// What a frame from the room carries, so flow control can judge it without decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A full snapshot (possibly with a welcome) of `tick`.
    Snapshot {
        /// The snapshot's tick.
        tick: u64,
    },
    /// A delta from `base_tick` to `tick`.
    Delta {
        /// The tick it brings the client to.
        tick: u64,
        /// The tick it applies to.
        base_tick: u64,
    },
}

/// What a member's frames ask of its room.
#[derive(Debug)]
pub enum Heard {
    /// A protocol message.
    Message(ClientMessage),
    /// A message over the rate was dropped; `notify`: tell the client.
    Dropped {
        /// Whether this is the first drop in the current second.
        notify: bool,
    },
    /// The connection must end.
    End(Ending),
    /// The client is gone (reset, or end of stream): drop the socket.
    Gone,
}

/// One player's connection in a room.
pub struct Member {
    /// The session id (`welcome.session`).
    pub session_id: u64,
    /// The protocol version the client speaks.
    pub protocol: ProtocolVersion,
    outbox: Outbox<TcpStream>,
    read_buf: BytesMut,
    codec: ClientCodec,
    limiter: RateLimiter,
    flow: FlowControl,
    heard_at: Instant,
    pinged_at: Instant,
    /// The tick of the last state frame written, for `pong.tick`.
    pub last_tick: u64,
    /// Owed a snapshot at the next tick (a gap, a resync, or resuming after a pause).
    pub needs_snapshot: bool,
    /// Inputs queued for the coming tick, against the per-seat bound.
    pub inputs_this_tick: usize,
    /// The kernel reported bytes to read that have not been read yet.
    pub readable: bool,
    /// The kernel reported the client's end of stream (or an error): read until it shows.
    pub peer_closed: bool,
    ticket: SessionTicket,
}

impl Member {
    /// A member from a handed-off connection, with a flow-control window of `window_ticks`.
    pub fn new(connection: Handoff, window_ticks: u32, limits: &SessionLimits) -> Self {
        let Handoff {
            outbox,
            unread,
            limiter,
            heard_at,
            protocol,
            ticket,
        } = connection;
        Self {
            session_id: ticket.id(),
            protocol,
            outbox,
            read_buf: BytesMut::from(&unread[..]),
            codec: limits.codec(),
            limiter,
            flow: FlowControl::new(window_ticks),
            heard_at,
            pinged_at: heard_at,
            last_tick: 0,
            needs_snapshot: false,
            inputs_this_tick: 0,
            // Bytes may have arrived before the socket was registered: read it once anyway.
            readable: true,
            peer_closed: false,
            ticket,
        }
    }

    /// The member's flow control, for the operator dashboard.
    pub fn flow(&self) -> &FlowControl {
        &self.flow
    }

    /// Bytes written to the member that wait for its socket.
    pub fn queued_bytes(&self) -> usize {
        self.outbox.queued_bytes()
    }

    /// The socket, for registering it with the room's readiness set.
    pub fn socket(&self) -> &TcpStream {
        self.outbox.socket()
    }

    /// Reads what the client sent (at most [`MAX_READ_PER_TICK`], through the room's `scratch`
    /// buffer) and screens each frame; `heard` gets what the room must act on. Pongs are
    /// answered here.
    pub fn read(
        &mut self,
        now: Instant,
        limits: &SessionLimits,
        scratch: &mut [u8],
        heard: &mut Vec<Heard>,
    ) {
        let mut budget = MAX_READ_PER_TICK;
        loop {
            if !self.decode(now, limits, heard) {
                return;
            }
            if !self.readable || budget == 0 {
                return;
            }
            match self.outbox.socket().read(scratch) {
                Ok(0) => {
                    heard.push(Heard::Gone);
                    return;
                }
                Ok(read) => {
                    self.read_buf.extend_from_slice(&scratch[..read]);
                    budget = budget.saturating_sub(read);
                    // A short read emptied the socket: what arrives later raises a new readiness
                    // event (the set is edge-triggered on every arrival), so asking again now
                    // would only cost a system call that says "would block".
                    if read < scratch.len() && !self.peer_closed {
                        self.readable = false;
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    self.readable = false;
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    heard.push(Heard::Gone);
                    return;
                }
            }
        }
    }

    /// Decodes the buffered frames; `false` once the connection must end.
    fn decode(&mut self, now: Instant, limits: &SessionLimits, heard: &mut Vec<Heard>) -> bool {
        loop {
            let incoming = match self.codec.decode(&mut self.read_buf) {
                Ok(Some(incoming)) => incoming,
                Ok(None) => return true,
                Err(_) => {
                    heard.push(Heard::Gone);
                    return false;
                }
            };
            self.heard_at = now;
            let screened = policy::screen(
                incoming,
                Phase::Joined,
                &mut self.limiter,
                now,
                limits.max_message_bytes,
            );
            match screened {
                Screened::Message(message) => heard.push(Heard::Message(message)),
                Screened::Pong(payload) => {
                    if !self.outbox.send_pong(payload) {
                        heard.push(Heard::Gone);
                        return false;
                    }
                }
                Screened::Nothing => {}
                Screened::Dropped { notify } => heard.push(Heard::Dropped { notify }),
                Screened::ClientClosed(reason) => {
                    heard.push(Heard::End(Ending::Client(reason)));
                    return false;
                }
                Screened::Close(code, error) => {
                    heard.push(Heard::End(Ending::Server(code, error)));
                    return false;
                }
            }
        }
    }

    /// A resumed client was sent every delta up to `tick` and had applied `acked`: flow
    /// control continues from there.
    pub fn resume_streaming(&mut self, acked: u64, tick: u64) {
        self.flow.resume_from(acked, tick, Instant::now());
        self.last_tick = tick;
    }

    /// The room was stalled for `stall`: the client could not be heard meanwhile, so its idle
    /// clock moves on by as much.
    pub fn forgive(&mut self, stall: std::time::Duration) {
        self.heard_at = (self.heard_at + stall).min(Instant::now());
    }

    /// An acknowledgement of `tick`; a paused client that caught up is owed a snapshot.
    pub fn on_ack(&mut self, tick: u64) {
        if self.flow.on_ack(tick) {
            self.needs_snapshot = true;
        }
    }

    /// The client asked for a snapshot; granted once per snapshot awaited.
    pub fn on_resync(&mut self) {
        if self.flow.await_snapshot() {
            self.needs_snapshot = true;
        }
    }

    /// Offers a state frame: written when flow control lets it through. `Some` when the member
    /// must be closed (it left too much unread, or its socket failed).
    pub fn offer(&mut self, kind: FrameKind, bytes: &Bytes, now: Instant) -> Offered {
        let verdict = match kind {
            FrameKind::Snapshot { tick } => self.flow.on_snapshot(tick),
            FrameKind::Delta { tick, base_tick } => self.flow.on_delta(tick, base_tick, now),
        };
        match verdict {
            FrameVerdict::Forward => {
                self.last_tick = match kind {
                    FrameKind::Snapshot { tick } | FrameKind::Delta { tick, .. } => tick,
                };
                self.needs_snapshot = false;
                self.write(Opcode::Binary, bytes.clone())
            }
            FrameVerdict::Skip => Offered::Skipped,
            FrameVerdict::SkipAndResync => {
                self.needs_snapshot = true;
                Offered::Skipped
            }
        }
    }

    /// Writes a frame now, or queues it; says when the member must be closed for it.
    pub fn write(&mut self, opcode: Opcode, payload: Bytes) -> Offered {
        if !self.outbox.send(opcode, payload) {
            return Offered::Gone;
        }
        if self.outbox.queued_bytes() > MAX_QUEUED_BYTES {
            return Offered::TooSlow;
        }
        Offered::Sent
    }

    /// Writes what waits in the queue, as far as the socket takes it.
    pub fn flush(&mut self) -> Offered {
        match self.outbox.flush_now() {
            Ok(_) => Offered::Sent,
            Err(_) => Offered::Gone,
        }
    }

    /// Whether frames wait for the socket.
    pub fn is_backed_up(&self) -> bool {
        self.outbox.is_backed_up()
    }

    /// The heartbeat: a ping every `heartbeat_interval`, and the close the timeouts call for
    /// ([`policy::overdue`]).
    pub fn heartbeat(&mut self, now: Instant, limits: &SessionLimits) -> Option<Heard> {
        if now.saturating_duration_since(self.pinged_at) < limits.heartbeat_interval {
            return None;
        }
        self.pinged_at = now;
        match policy::overdue(
            now.saturating_duration_since(self.heard_at),
            limits.idle_timeout,
            self.flow.paused_for(now),
            limits.slow_client_timeout,
        ) {
            Some(CloseCode::TooSlow) => {
                let message =
                    "paused by flow control, and no ticks acknowledged in time".to_owned();
                Some(Heard::End(Ending::Server(
                    CloseCode::TooSlow,
                    Some((ErrorCode::ServerBusy, message)),
                )))
            }
            Some(close) => Some(Heard::End(Ending::Server(close, None))),
            None => match self.write(Opcode::Ping, Bytes::new()).ending()? {
                None => Some(Heard::Gone),
                Some(ending) => Some(Heard::End(ending)),
            },
        }
    }

    /// Hands the connection to the closing task with `ending`.
    pub fn close(self, ending: Ending) {
        close(
            ToClose {
                outbox: self.outbox,
                unread: self.read_buf.freeze(),
                ticket: self.ticket,
            },
            ending,
        );
    }

    /// Drops the connection at once: the client is gone.
    pub fn drop_gone(mut self) {
        self.ticket.set_reason("client_closed");
    }
}

/// What became of a frame offered to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Offered {
    /// Written or queued.
    Sent,
    /// Held back by flow control.
    Skipped,
    /// The member left too much unread: close it with `too_slow`.
    TooSlow,
    /// The socket failed: the client is gone.
    Gone,
}

impl Offered {
    /// Whether the member must go, and how: `Some(None)` when its socket failed (drop it),
    /// `Some(Some(..))` when it left too much unread (close with `too_slow`), `None` to keep it.
    pub fn ending(self) -> Option<Option<Ending>> {
        match self {
            Self::Sent | Self::Skipped => None,
            Self::TooSlow => Some(Some(Ending::Server(CloseCode::TooSlow, None))),
            Self::Gone => Some(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn_limit::ConnectionLimiter;
    use crate::metrics::Metrics;
    use ludus_protocol::{codec, Ack};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    fn limits() -> SessionLimits {
        SessionLimits {
            max_message_bytes: 4096,
            hello_timeout: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
            rate_per_sec: 60,
            burst: 30,
            slow_client_timeout: Duration::from_secs(10),
        }
    }

    /// A member over a loopback connection, and the client's end of it.
    fn connected() -> std::io::Result<(Member, TcpStream)> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let client = TcpStream::connect(listener.local_addr()?)?;
        let (server, peer) = listener.accept()?;
        server.set_nonblocking(true)?;
        let guard = ConnectionLimiter::new(1, 1)
            .admit(peer.ip())
            .map_err(std::io::Error::other)?;
        let now = Instant::now();
        let handoff = Handoff {
            outbox: Outbox::new(server),
            unread: Bytes::new(),
            limiter: RateLimiter::new(60, 30, now),
            heard_at: now,
            protocol: ProtocolVersion::V1,
            ticket: SessionTicket::new(1, Metrics::new(), guard),
        };
        Ok((Member::new(handoff, 40, &limits()), client))
    }

    /// A masked binary frame carrying `payload`, as a client sends it.
    fn client_frame(payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x82, 0x80 | u8::try_from(payload.len()).unwrap_or(125)];
        frame.extend_from_slice(&[0, 0, 0, 0]); // a zero mask leaves the payload as is
        frame.extend_from_slice(payload);
        frame
    }

    fn read_all(member: &mut Member) -> Vec<Heard> {
        let mut heard = Vec::new();
        let mut scratch = vec![0; READ_CHUNK];
        // The bytes are on their way over loopback: read until they are there (bounded).
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            member.readable = true;
            member.read(Instant::now(), &limits(), &mut scratch, &mut heard);
            if !heard.is_empty() {
                break;
            }
            std::thread::yield_now();
        }
        heard
    }

    #[test]
    fn what_arrived_between_ticks_is_read_at_once_and_an_empty_socket_is_not_read_again(
    ) -> std::io::Result<()> {
        let (mut member, mut client) = connected()?;
        let ack = codec::encode_client(&ClientMessage::Ack(Ack { tick: 7 }));
        let mut bytes = client_frame(&ack);
        bytes.extend(client_frame(&ack));
        client.write_all(&bytes)?;
        let heard = read_all(&mut member);
        assert_eq!(heard.len(), 2, "{heard:?}");
        assert!(heard
            .iter()
            .all(|heard| matches!(heard, Heard::Message(ClientMessage::Ack(Ack { tick: 7 })))));
        assert!(!member.readable, "a short read emptied the socket");
        Ok(())
    }

    #[test]
    fn a_stall_of_the_room_does_not_count_against_the_client() -> std::io::Result<()> {
        let (mut member, _client) = connected()?;
        let limits = SessionLimits {
            heartbeat_interval: Duration::from_millis(50),
            idle_timeout: Duration::from_millis(200),
            ..limits()
        };
        // The client was heard, then the room stalled past the idle timeout: forgiven the
        // stall (as the room measures it), the client is not idle, as it could not have been
        // heard meanwhile. (Only a preemption of 200 ms between two lines could fail this.)
        let stalled_at = Instant::now();
        std::thread::sleep(Duration::from_millis(250));
        member.forgive(stalled_at.elapsed());
        assert!(member.heartbeat(Instant::now(), &limits).is_none());
        Ok(())
    }

    #[test]
    fn an_end_of_stream_behind_data_is_read_when_the_kernel_reported_it() -> std::io::Result<()> {
        let (mut member, mut client) = connected()?;
        let ack = codec::encode_client(&ClientMessage::Ack(Ack { tick: 3 }));
        client.write_all(&client_frame(&ack))?;
        client.shutdown(std::net::Shutdown::Write)?;
        // The room's readiness set reports the end of stream along with the data.
        member.peer_closed = true;
        let mut heard = Vec::new();
        let mut scratch = vec![0; READ_CHUNK];
        let deadline = Instant::now() + Duration::from_secs(5);
        while !heard.iter().any(|item| matches!(item, Heard::Gone)) && Instant::now() < deadline {
            member.readable = true;
            member.read(Instant::now(), &limits(), &mut scratch, &mut heard);
        }
        assert!(
            matches!(heard.first(), Some(Heard::Message(_))),
            "{heard:?}"
        );
        assert!(matches!(heard.last(), Some(Heard::Gone)), "{heard:?}");
        Ok(())
    }

    #[test]
    fn a_client_that_goes_away_is_gone_and_a_text_frame_ends_the_connection() -> std::io::Result<()>
    {
        let (mut gone, client) = connected()?;
        drop(client);
        assert!(matches!(read_all(&mut gone).as_slice(), [Heard::Gone]));
        let (mut member, mut client) = connected()?;
        client.write_all(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i'])?;
        assert!(matches!(
            read_all(&mut member).as_slice(),
            [Heard::End(Ending::Server(
                CloseCode::ProtocolError,
                Some(_)
            ))]
        ));
        Ok(())
    }
}
