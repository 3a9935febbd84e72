//! One bot: joins through the lobby, opens the room's WebSocket, plays until told to stop or
//! until the server ends the session.
//!
//! The bot is an async task, not a thread, and holds as little as a real client can: a socket
//! with small tungstenite buffers ([`websocket_config`]), a [`Session`] and a few timers. All
//! protocol decisions live in [`Session`]; this module only moves bytes and keeps time.
//!
//! Every wait is bounded: joining by [`JOIN_TIMEOUT`], reading by [`READ_TIMEOUT`], leaving by
//! [`LEAVE_TIMEOUT`], reconnecting by the backoff's bounds ([`crate::reconnect`]).
//!
//! When the connection drops without a close the bot caused with `leave` (reset, EOF, read
//! timeout, or a cut the swarm ordered through [`BotControl::cut`]), or the server closes with
//! a code that keeps the seat (4017 `room_moving`: a drain moves the room; 4013 `room_moved`:
//! the node fenced itself and the room is restored elsewhere), the bot reconnects to the same
//! `ws_url` and resumes its session (the `resume` submodule); a refused resume falls back to the
//! lobby for a new seat. What it sees along the way goes into the swarm's ledger (the `watch`
//! submodule).

use crate::error::BotError;
use crate::lobby::Lobby;
use crate::session::Session;
use crate::stats::{Counter, DisconnectReason, SwarmStats};
use futures_util::{SinkExt, StreamExt};
use ludus_protocol::{codec, ClientMessage, CloseCode, Leave, ProtocolVersion, RoomId};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

mod hello;
mod resume;
mod walk;
mod watch;

use hello::{connect_and_hello, HelloKind};
use walk::RandomWalk;
use watch::Watch;

/// Longest a join (lobby request, connect, handshake, `hello` → `welcome`) may take.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

/// A session that receives nothing for this long is considered dead. The server sends a frame
/// every tick, so silence this long means the server stopped sending (or paused this bot for
/// good).
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a bot that sends no inputs, or sends them more slowly, checks its read timeout.
const READ_CHECK_EVERY: Duration = Duration::from_millis(250);

/// How long a leaving bot waits for the server's close frame.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a bot moves its local counters into the swarm totals. Short enough that the
/// hold window's edges miscount by well under 2% of a 15 s hold; long enough that 10,000 bots
/// flush only 40,000 times a second.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Largest incoming message accepted. Snapshots of a room of tens of players are a few KiB;
/// anything near this limit is a server bug, not a reason to spend memory.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// The WebSocket settings of every bot. tungstenite's defaults reserve about 128 KiB of read
/// buffer per connection, which at 10,000 bots is over a gigabyte for nothing: server frames are
/// a few hundred bytes. Writes go out eagerly because a bot sends one small message at a time.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// Where a bot gets its seat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinPlan {
    /// `POST /v1/matchmake` for a room of this type (join-or-create).
    Matchmake {
        /// The room type, e.g. `arena`.
        room_type: String,
    },
    /// `POST /v1/rooms/{room_id}/seats`: a seat in exactly this room.
    Reserve {
        /// The room to sit in.
        room_id: RoomId,
    },
}

/// How one bot behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct BotConfig {
    /// The player name sent to the lobby.
    pub name: String,
    /// Where to get a seat.
    pub join: JoinPlan,
    /// Inputs per second; 0 for a bot that only acknowledges ticks.
    pub input_hz: f64,
    /// Seed of the bot's random walk, so runs are repeatable.
    pub seed: u64,
    /// The protocol version announced in `hello`.
    pub protocol: ProtocolVersion,
}

/// How a bot is told to end its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// Send `leave` and wait for the server's close, as a polite client does.
    Leave,
    /// Drop the socket without a close frame, as a crashed client or a lost network does.
    Drop,
}

/// What every bot of a swarm shares.
#[derive(Debug)]
pub struct BotContext {
    /// The lobby client.
    pub lobby: Lobby,
    /// Swarm-wide totals.
    pub stats: Arc<SwarmStats>,
    /// Bounds how many bots are joining at once, so a fast ramp queues instead of opening
    /// thousands of lobby requests together.
    pub join_permits: Semaphore,
}

type Socket = WebSocketStream<TcpStream>;

/// How the swarm steers one running bot.
#[derive(Debug)]
pub struct BotControl {
    /// Ends the session (once).
    pub stop_rx: oneshot::Receiver<StopMode>,
    /// Each notification cuts the connection abruptly (no close frame, as a lost network
    /// does); the bot then reconnects and resumes. A notification while the bot is not
    /// playing is kept and cuts the next connection.
    pub cut: Arc<Notify>,
}

/// Where the bot is connected: the room and the `ws_url` that welcomed it (after redirects),
/// which is where a resume goes.
#[derive(Clone, Debug)]
struct Connection {
    room_id: RoomId,
    ws_url: String,
}

/// Runs one bot to the end of its session and returns why it ended; every count goes into
/// `context.stats`. A failed join is returned as the error (and counted as a failed join).
pub async fn run_bot(
    context: &BotContext,
    config: BotConfig,
    stop_rx: oneshot::Receiver<StopMode>,
) -> Result<DisconnectReason, BotError> {
    let control = BotControl {
        stop_rx,
        cut: Arc::new(Notify::new()),
    };
    run_bot_with(context, config, control).await
}

/// [`run_bot`] with a [`BotControl`] that can also cut the connection to test resume.
pub async fn run_bot_with(
    context: &BotContext,
    config: BotConfig,
    mut control: BotControl,
) -> Result<DisconnectReason, BotError> {
    let mut session = Session::new(config.protocol);
    let ledger = &context.stats.ledger;
    let mut watch = Watch::new(&config.name);
    let (mut socket, mut connection) = match join_counted(context, &config, &mut session).await {
        Ok(joined) => joined,
        Err(error) => {
            session.counters_mut().flush(&context.stats);
            return Err(error);
        }
    };
    watch.welcomed(ledger, &mut session, &connection);
    context.stats.session_opened();
    let reason = loop {
        let played = play(
            &mut socket,
            &mut session,
            &config,
            context,
            &mut control,
            &mut watch,
        )
        .await;
        let lost = match played {
            PlayEnd::Ended(reason) => break reason,
            PlayEnd::Lost(lost) => lost,
        };
        // Dropping the socket closes the TCP connection without a close frame.
        drop(socket);
        watch.lost(ledger);
        if !session.can_resume() {
            session.counters_mut().incr(Counter::ResumeUnavailable);
            break lost;
        }
        context.stats.connection_paused();
        let reconnected = resume::reconnect(
            context,
            &config,
            &mut session,
            &mut control,
            &connection,
            lost,
        )
        .await;
        match reconnected {
            resume::Reconnected::Socket(next_socket, next_connection) => {
                if let Some(ticks_lost) = session.resumed_ticks_lost() {
                    let counter = if lost == DisconnectReason::Server(CloseCode::RoomMoving) {
                        Counter::TicksLostOnMove
                    } else {
                        Counter::TicksLostOnRestore
                    };
                    session.counters_mut().add(counter, ticks_lost);
                }
                context.stats.connection_restored();
                socket = *next_socket;
                connection = next_connection;
                watch.welcomed(ledger, &mut session, &connection);
            }
            resume::Reconnected::Ended(reason) => {
                watch.ended(ledger);
                session.counters_mut().flush(&context.stats);
                context.stats.connection_restored();
                context.stats.session_closed(reason);
                return Ok(reason);
            }
        }
    };
    watch.flush(ledger, &session);
    watch.ended(ledger);
    session.counters_mut().flush(&context.stats);
    context.stats.session_closed(reason);
    Ok(reason)
}

/// A join through the lobby, counted (attempt, then joined or failed), under a join permit.
async fn join_counted(
    context: &BotContext,
    config: &BotConfig,
    session: &mut Session,
) -> Result<(Socket, Connection), BotError> {
    session.counters_mut().incr(Counter::JoinAttempts);
    let joined = {
        // A closed semaphore only means the swarm is shutting down; join anyway, bounded by
        // the join timeout.
        let _permit = context.join_permits.acquire().await;
        join(&context.lobby, config, session).await
    };
    let counter = if joined.is_ok() {
        Counter::Joined
    } else {
        Counter::FailedJoins
    };
    session.counters_mut().incr(counter);
    joined
}

async fn join(
    lobby: &Lobby,
    config: &BotConfig,
    session: &mut Session,
) -> Result<(Socket, Connection), BotError> {
    let deadline = Instant::now() + JOIN_TIMEOUT;
    let seat = match &config.join {
        JoinPlan::Matchmake { room_type } => lobby.matchmake(room_type, &config.name).await?,
        JoinPlan::Reserve { room_id } => lobby.reserve_seat(room_id, &config.name).await?,
    };
    let connection = Connection {
        room_id: seat.room_id.clone(),
        ws_url: seat.ws_url.clone(),
    };
    let hello = HelloKind::Seat(&seat);
    let started = std::time::Instant::now();
    tokio::time::timeout_at(
        deadline,
        connect_and_hello(lobby, &connection, hello, session, started),
    )
    .await
    .map_err(|_| welcome_timeout(&seat.room_id))?
}

fn welcome_timeout(room_id: &RoomId) -> BotError {
    BotError::WelcomeTimeout {
        room_id: room_id.clone(),
        timeout_ms: u64::try_from(JOIN_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
    }
}

/// How a connection's play ended.
enum PlayEnd {
    /// The session is over: the bot left or dropped on request, or the server closed.
    Ended(DisconnectReason),
    /// The connection was lost without a close (or cut to test resume): resume it.
    Lost(DisconnectReason),
}

/// Plays on one connection until stopped, closed or lost.
async fn play(
    socket: &mut Socket,
    session: &mut Session,
    config: &BotConfig,
    context: &BotContext,
    control: &mut BotControl,
    watch: &mut Watch,
) -> PlayEnd {
    let stats = &context.stats;
    if session.take_resume_outcome().is_some() {
        stats.resume_settled(true);
    }
    let mut walk = RandomWalk::new(config.seed);
    let inputs_enabled = config.input_hz > 0.0;
    // One timer per bot: it sends the inputs and checks the read timeout (a second timer, or
    // one re-armed per frame, was a measurable part of the swarm's cost). Only a bot whose
    // inputs are slower than the read check keeps a second timer for the check.
    let period = if inputs_enabled {
        Duration::from_secs_f64(1.0 / config.input_hz)
    } else {
        READ_CHECK_EVERY
    };
    // Start at a random phase so thousands of bots do not send in lockstep.
    let phase = period.mul_f64(walk.rng.f64());
    let mut timer = tokio::time::interval_at(Instant::now() + phase, period);
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let check_apart = period > READ_CHECK_EVERY;
    let mut check = tokio::time::interval(READ_CHECK_EVERY);
    let mut heard_at = Instant::now();
    // One waiter on the cut signal for the whole connection, not a new one per frame.
    let cut = control.cut.notified();
    tokio::pin!(cut);
    let mut last_flush = Instant::now();

    loop {
        tokio::select! {
            stop = &mut control.stop_rx => {
                // A dropped sender means the swarm is gone: leave politely.
                return PlayEnd::Ended(match stop.unwrap_or(StopMode::Leave) {
                    StopMode::Leave => leave(socket, session).await,
                    StopMode::Drop => DisconnectReason::ClientDrop,
                });
            }
            () = &mut cut => {
                session.counters_mut().incr(Counter::DropsInjected);
                return PlayEnd::Lost(DisconnectReason::ClientDrop);
            }
            message = socket.next() => {
                let now = Instant::now();
                heard_at = now;
                let reply = match message {
                    Some(Ok(Message::Binary(frame))) => session.handle_frame(&frame, now.into_std()),
                    Some(Ok(Message::Text(text))) => {
                        session.handle_text_frame(text.len());
                        None
                    }
                    Some(Ok(Message::Close(close))) => {
                        let reason = close_reason(close);
                        return match keeps_the_seat(reason) {
                            Some(counter) => {
                                session.counters_mut().incr(counter);
                                PlayEnd::Lost(reason)
                            }
                            None => PlayEnd::Ended(reason),
                        };
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => None,
                    Some(Err(error)) => {
                        tracing::debug!(bot = %config.name, %error, "connection lost");
                        return PlayEnd::Lost(DisconnectReason::NoCloseFrame);
                    }
                    None => return PlayEnd::Lost(DisconnectReason::NoCloseFrame),
                };
                if session.take_resume_outcome().is_some() {
                    stats.resume_settled(true);
                }
                watch.observe(&stats.ledger, session);
                if let Some(reply) = reply {
                    if send(socket, &reply).await.is_err() {
                        return PlayEnd::Lost(DisconnectReason::NoCloseFrame);
                    }
                }
                if now.duration_since(last_flush) >= FLUSH_EVERY || session.counters().must_flush() {
                    watch.flush(&stats.ledger, session);
                    session.counters_mut().flush(stats);
                    last_flush = now;
                }
            }
            _ = check.tick(), if check_apart => {
                if read_timed_out(heard_at, Instant::now()) {
                    return PlayEnd::Lost(DisconnectReason::ReadTimeout);
                }
            }
            _ = timer.tick() => {
                let now = Instant::now();
                if read_timed_out(heard_at, now) {
                    return PlayEnd::Lost(DisconnectReason::ReadTimeout);
                }
                if !inputs_enabled {
                    continue;
                }
                if let Some(input) = session.next_input(walk.step(), now.into_std()) {
                    if send(socket, &input).await.is_err() {
                        return PlayEnd::Lost(DisconnectReason::NoCloseFrame);
                    }
                }
            }
        }
    }
}

/// Whether nothing was heard from the server for [`READ_TIMEOUT`] since `heard_at`.
fn read_timed_out(heard_at: Instant, now: Instant) -> bool {
    now.saturating_duration_since(heard_at) >= READ_TIMEOUT
}

/// Sends `leave` and waits (bounded) for the server's close, still counting what arrives.
async fn leave(socket: &mut Socket, session: &mut Session) -> DisconnectReason {
    if send(socket, &ClientMessage::Leave(Leave {})).await.is_err() {
        return DisconnectReason::ClientLeave;
    }
    let drain = async {
        while let Some(Ok(message)) = socket.next().await {
            match message {
                Message::Binary(frame) => {
                    session.handle_frame(&frame, std::time::Instant::now());
                }
                Message::Close(_) => break,
                Message::Text(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    };
    // Whether or not the close arrives in time, the bot chose to leave.
    let _closed_in_time = tokio::time::timeout(LEAVE_TIMEOUT, drain).await.is_ok();
    DisconnectReason::ClientLeave
}

/// Whether a server close keeps the seat (resume at once), and the counter of that close:
/// 4017 `room_moving` (a drain moves the room with its exact state) and 4013 `room_moved` (the
/// node lost the room's lease; the room is restored elsewhere from a checkpoint).
fn keeps_the_seat(reason: DisconnectReason) -> Option<Counter> {
    match reason {
        DisconnectReason::Server(CloseCode::RoomMoving) => Some(Counter::RoomMovingCloses),
        DisconnectReason::Server(CloseCode::RoomMoved) => Some(Counter::RoomMovedCloses),
        _ => None,
    }
}

fn close_reason(
    close: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>,
) -> DisconnectReason {
    close.map_or(DisconnectReason::NoCloseFrame, |frame| {
        DisconnectReason::from_close_code(u16::from(frame.code))
    })
}

async fn send(
    socket: &mut Socket,
    message: &ClientMessage,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    socket
        .send(Message::binary(codec::encode_client(message)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_frames_map_to_disconnect_reasons() {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCode;
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        let frame = |code: u16| {
            Some(CloseFrame {
                code: WsCode::from(code),
                reason: "".into(),
            })
        };
        assert_eq!(close_reason(frame(4008)).key(), "too_slow");
        assert_eq!(close_reason(frame(1001)).key(), "code_1001");
        assert_eq!(close_reason(None), DisconnectReason::NoCloseFrame);
    }

    #[test]
    fn only_room_moving_and_room_moved_keep_the_seat() {
        let keeps = |code: u16| keeps_the_seat(DisconnectReason::from_close_code(code));
        assert_eq!(keeps(4017), Some(Counter::RoomMovingCloses));
        assert_eq!(keeps(4013), Some(Counter::RoomMovedCloses));
        for ends in [1000, 1001, 4008, 4011, 4014, 4015] {
            assert_eq!(keeps(ends), None, "close {ends}");
        }
    }
}
