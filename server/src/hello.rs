//! The hello task: a connection from the WebSocket handshake to its room.
//!
//! It reads frames until `hello` arrives (every frame counts toward the rate limit; pings are
//! counted, not answered), then checks, in order: the protocol version, shutdown, the seat
//! token, and where the room lives (a `redirect` to another node, or `room_not_found`). A client
//! that passes is handed to its room with its socket, the bytes it already sent and its rate
//! limiter ([`JoinRoom`]); from then on the room reads and writes the socket.
//!
//! The task ends the connection itself on a hello timeout (4007), on shutdown (4011, at once,
//! whatever the client does) and on any refusal, through [`closing`](crate::session::closing).

use crate::cluster::Cluster;
use crate::conn_limit::ConnectionGuard;
use crate::lobby::Lobby;
use crate::member::{Handoff, JoinRoom};
use crate::outbox::Outbox;
use crate::rate_limit::RateLimiter;
use crate::room::ResumeJoin;
use crate::session::closing::{close, Detached, Ending, ToClose};
use crate::session::policy::{screen, Phase, Screened};
use crate::session::{
    ClientCodec, SessionLimits, SessionTicket, READ_BUFFER_BYTES, SEND_BUFFER_BYTES,
};
use crate::token::ResumeTokenError;
use actix::dev::SendError;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use ludus_protocol::{
    ClientMessage, CloseCode, ErrorCode, ErrorMessage, Hello, PlayerId, ProtocolVersion, RoomId,
    ServerMessage,
};
use socket2::SockRef;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

/// Everything a session needs besides its socket (it may be built on one thread and started
/// on another).
pub struct SessionSetup {
    /// What the client sent right after the handshake, already read by the HTTP layer.
    pub received: Bytes,
    /// The room the client asked for.
    pub room_id: RoomId,
    /// This node's lobby.
    pub lobby: Arc<Lobby>,
    /// The cluster, to redirect a client whose room lives elsewhere.
    pub cluster: Option<Arc<Cluster>>,
    /// Per-connection limits.
    pub limits: Arc<SessionLimits>,
    /// The session's slot under the WebSocket caps, freed when the session ends.
    pub connection: ConnectionGuard,
}

/// Starts the session of a connection whose WebSocket handshake was just answered, on the
/// current thread (its room's, when the room lives here).
pub fn start(io: TcpStream, setup: SessionSetup) {
    if let Err(error) = SockRef::from(&io).set_send_buffer_size(SEND_BUFFER_BYTES) {
        // Not fatal: the unread bound still holds, on top of a larger kernel buffer.
        tracing::warn!(%error, "cannot cap the send buffer of a WebSocket connection");
    }
    actix_rt::spawn(run(io, setup));
}

/// A connection waiting for `hello`.
struct Greeting {
    frames:
        FramedRead<tokio::io::Chain<Cursor<Bytes>, tokio::net::tcp::OwnedReadHalf>, ClientCodec>,
    outbox: Outbox<tokio::net::tcp::OwnedWriteHalf>,
    limiter: RateLimiter,
    ticket: SessionTicket,
}

/// What the wait for `hello` came to.
enum Waited {
    Hello(Hello),
    End(Ending),
    /// The client is gone (reset, or end of stream): nothing to say.
    Gone,
}

impl Greeting {
    /// The socket and everything read from it but not decoded, ready to change owner.
    fn detach(
        self,
    ) -> Option<(
        Outbox<std::net::TcpStream>,
        Bytes,
        RateLimiter,
        SessionTicket,
    )> {
        let parts = self.frames.into_parts();
        let (cursor, read) = parts.io.into_inner();
        let mut unread = BytesMut::new();
        let position = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
        let pending = cursor.into_inner();
        unread.extend_from_slice(pending.get(position..).unwrap_or_default());
        unread.extend_from_slice(&parts.read_buf);
        let (write, outbox) = self.outbox.move_to(Detached);
        let socket = read.reunite(write).ok()?.into_std().ok()?;
        let (_, outbox) = outbox.move_to(socket);
        Some((outbox, unread.freeze(), self.limiter, self.ticket))
    }

    /// Ends the connection as `ending` says.
    fn end(self, ending: Ending) {
        if let Some((outbox, unread, _, ticket)) = self.detach() {
            close(
                ToClose {
                    outbox,
                    unread,
                    ticket,
                },
                ending,
            );
        }
    }

    fn send(&mut self, message: ServerMessage) {
        self.ticket.send(&mut self.outbox, message);
    }

    /// Reads frames until `hello`, a refusal or the end of the connection.
    async fn wait_for_hello(&mut self, limits: &SessionLimits) -> Waited {
        loop {
            let incoming = match self.frames.next().await {
                Some(Ok(incoming)) => incoming,
                None | Some(Err(_)) => return Waited::Gone,
            };
            let now = Instant::now();
            match screen(
                incoming,
                Phase::AwaitingHello,
                &mut self.limiter,
                now,
                limits.max_message_bytes,
            ) {
                Screened::Message(ClientMessage::Hello(hello)) => return Waited::Hello(hello),
                Screened::Message(_) => {
                    let message = "the first message must be `hello`".to_owned();
                    return Waited::End(Ending::Server(
                        CloseCode::ProtocolError,
                        Some((ErrorCode::UnexpectedMessage, message)),
                    ));
                }
                Screened::ClientClosed(reason) => return Waited::End(Ending::Client(reason)),
                Screened::Close(close, error) => return Waited::End(Ending::Server(close, error)),
                Screened::Dropped { notify } => {
                    self.ticket
                        .metrics()
                        .inputs_dropped
                        .with_label_values(&["rate_limited"])
                        .inc();
                    if notify {
                        let message = format!(
                            "more than {} messages per second (burst {}); excess dropped",
                            limits.rate_per_sec, limits.burst
                        );
                        self.send(ServerMessage::Error(ErrorMessage {
                            code: ErrorCode::RateLimited,
                            message,
                        }));
                    }
                }
                // Before `hello` a ping is counted, never answered.
                Screened::Pong(_) | Screened::Nothing => {}
            }
        }
    }
}

/// Runs a connection from its handshake until its room takes it or it ends.
async fn run(io: TcpStream, setup: SessionSetup) {
    let SessionSetup {
        received,
        room_id,
        lobby,
        cluster,
        limits,
        connection,
    } = setup;
    let ticket = SessionTicket::new(lobby.next_session_id(), lobby.metrics().clone(), connection);
    let (read, write) = io.into_split();
    let frames = FramedRead::with_capacity(
        Cursor::new(received).chain(read),
        limits.codec(),
        READ_BUFFER_BYTES,
    );
    let mut greeting = Greeting {
        frames,
        outbox: Outbox::new(write),
        limiter: RateLimiter::new(limits.rate_per_sec, limits.burst, Instant::now()),
        ticket,
    };
    let mut shutdown = lobby.shutdown_signal();
    let waited = tokio::select! {
        waited = greeting.wait_for_hello(&limits) => waited,
        () = tokio::time::sleep(limits.hello_timeout) => {
            Waited::End(Ending::Server(CloseCode::IdleTimeout, None))
        }
        // Shutdown closes every connection at once, before `hello` too: waiting for its timeout
        // would hold the shutdown, and the client should hear 4011, not 4007. A dropped signal
        // (the lobby is gone) never wins the race.
        Ok(_) = shutdown.wait_for(|&down| down) => {
            Waited::End(Ending::Server(CloseCode::ServerShutdown, None))
        }
    };
    let hello = match waited {
        Waited::Hello(hello) => hello,
        Waited::End(ending) => return greeting.end(ending),
        Waited::Gone => return,
    };
    // The version is negotiated here and travels with the join.
    let Some(protocol) = ProtocolVersion::from_hello(hello.protocol) else {
        let message = format!(
            "server speaks protocols 1 and 2, client sent {}",
            hello.protocol
        );
        let error = Some((ErrorCode::ProtocolVersion, message));
        return greeting.end(Ending::Server(CloseCode::ProtocolVersion, error));
    };
    if lobby.is_shutting_down() {
        return greeting.end(Ending::Server(CloseCode::ServerShutdown, None));
    }
    let (player, name, resume) = match &hello.resume {
        None => match lobby.tokens().verify(&hello.token, &room_id) {
            Ok(claims) => (claims.player_id(), claims.name, None),
            Err(refused) => {
                let error = Some((refused.code(), refused.to_string()));
                return greeting.end(Ending::Server(CloseCode::Unauthorized, error));
            }
        },
        Some(wanted) => match lobby.tokens().verify_resume(&wanted.token, &room_id) {
            Ok(claims) => {
                let resume = ResumeJoin {
                    session: claims.session,
                    last_tick: wanted.last_tick,
                    epoch_changed: false,
                };
                (
                    PlayerId(claims.player),
                    String::new(),
                    Some((resume, claims.epoch)),
                )
            }
            Err(refused) => {
                let outcome = match refused {
                    ResumeTokenError::Invalid => "refused_invalid",
                    ResumeTokenError::WrongRoom => "refused_wrong_room",
                };
                lobby.metrics().resumes.with_label_values(&[outcome]).inc();
                let error = Some((refused.code(), refused.to_string()));
                return greeting.end(Ending::Server(CloseCode::ResumeRefused, error));
            }
        },
    };
    let Some(room) = lobby.directory().addr(&room_id) else {
        let redirect = cluster
            .as_ref()
            .and_then(|cluster| cluster.redirect_for(&room_id));
        if let Some(redirect) = redirect {
            tracing::debug!(room_id = %room_id, node = %redirect.node, "redirecting");
            greeting.send(ServerMessage::Redirect(redirect));
            return greeting.end(Ending::Server(CloseCode::Redirect, None));
        }
        let message = format!("room `{room_id}` does not exist on this server");
        let error = Some((ErrorCode::RoomNotFound, message));
        return greeting.end(Ending::Server(CloseCode::RoomNotFound, error));
    };
    let mut epoch_changed = false;
    if let Some((_, epoch)) = resume {
        let info = lobby.directory().info(&room_id);
        let current = info.as_ref().map(|info| info.epoch);
        epoch_changed = info.and_then(|info| info.restored_from_epoch) == Some(epoch);
        if current != Some(epoch) && !epoch_changed {
            lobby
                .metrics()
                .resumes
                .with_label_values(&["refused_epoch_changed"])
                .inc();
            let message = "the room was re-created since this session began".to_owned();
            let error = Some((ErrorCode::ResumeEpochChanged, message));
            return greeting.end(Ending::Server(CloseCode::ResumeRefused, error));
        }
    }
    let Some((outbox, unread, limiter, ticket)) = greeting.detach() else {
        return; // the socket could not be detached: the client is gone
    };
    let join = JoinRoom {
        player,
        name,
        connection: Handoff {
            outbox,
            unread,
            limiter,
            heard_at: Instant::now(),
            protocol,
            ticket,
        },
        resume: resume.map(|(resume, _)| ResumeJoin {
            epoch_changed,
            ..resume
        }),
    };
    match room.try_send(join) {
        Ok(()) => {}
        // A join must not be lost to a full mailbox: it is one bounded message per connection.
        Err(SendError::Full(join)) => room.do_send(join),
        Err(SendError::Closed(join)) => {
            let message = "the room closed before the join completed".to_owned();
            join.connection.close(Ending::Server(
                CloseCode::RoomNotFound,
                Some((ErrorCode::RoomNotFound, message)),
            ));
        }
    }
}
