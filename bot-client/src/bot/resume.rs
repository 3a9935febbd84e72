//! The bot's reconnect loop after a lost connection: wait by the backoff, dial the `ws_url`
//! that welcomed it and, if that fails, at once the room's URL on the lobby's node (the room's
//! node may have died and the room been restored elsewhere; the lobby's node redirects to it),
//! send the resume `hello`, and, if the server refuses, take a new seat through the lobby like
//! a fresh join.
//!
//! Decisions come from elsewhere: when to try from [`crate::reconnect::Backoff`], what the
//! server's answer means from the [`Session`]. This module only waits, dials and counts. Every
//! wait is bounded: each attempt by [`JOIN_TIMEOUT`], all of them by the backoff's attempt and
//! time bounds; a stop from the swarm ends the loop at once.

use super::{
    connect_and_hello, join_counted, BotConfig, BotContext, BotControl, Connection, HelloKind,
    Socket, StopMode, JOIN_TIMEOUT,
};
use crate::error::BotError;
use crate::reconnect::{Backoff, BackoffPolicy};
use crate::session::Session;
use crate::stats::{Counter, DisconnectReason};
use ludus_protocol::CloseCode;
use std::time::Duration;
use tokio::time::Instant;

/// How the reconnect loop ended.
pub(super) enum Reconnected {
    /// Playing again on this socket: the session resumed, or took a new seat after a refusal.
    Socket(Box<Socket>, Connection),
    /// The session is over, for this reason.
    Ended(DisconnectReason),
}

/// Reconnects after the connection to `connection` was lost (`lost` says how).
pub(super) async fn reconnect(
    context: &BotContext,
    config: &BotConfig,
    session: &mut Session,
    control: &mut BotControl,
    connection: &Connection,
    lost: DisconnectReason,
) -> Reconnected {
    tracing::debug!(bot = %config.name, reason = %lost, "connection lost; resuming");
    session.connection_lost();
    let dropped_at = Instant::now();
    let through_lobby = Connection {
        room_id: connection.room_id.clone(),
        ws_url: context.lobby.room_ws_url(&connection.room_id),
    };
    let mut backoff = Backoff::new(BackoffPolicy::default());
    let moved = matches!(
        lost,
        DisconnectReason::Server(CloseCode::RoomMoving | CloseCode::RoomMoved)
    );
    let mut jitter = fastrand::Rng::new();
    loop {
        let Some(delay) = backoff.next_delay(dropped_at.elapsed(), jitter.f64()) else {
            tracing::debug!(bot = %config.name, attempts = backoff.attempts(), "resume gave up");
            session.counters_mut().incr(Counter::ResumeGaveUp);
            context.stats.resume_settled(false);
            return Reconnected::Ended(DisconnectReason::ResumeGaveUp);
        };
        let attempt_number = backoff.attempts();
        // The server closed with a code that says where to go next: no reason to wait.
        let delay = if attempt_number == 1 && moved {
            Duration::ZERO
        } else {
            delay
        };
        // Each step goes back where the bot was welcomed (a node that moved the room answers
        // with a redirect to its new owner) and, if that fails, at once through the lobby's
        // node, which redirects to wherever the room lives now: the node that welcomed the bot
        // may be the one that died, and the lobby's node may be too.
        let attempt = async {
            tokio::time::sleep(delay).await;
            let answer = resume_at(context, connection, session).await;
            let settled = matches!(answer, Ok(Ok(_)) | Ok(Err(BotError::ResumeRefused { .. })));
            if settled || connection.ws_url == through_lobby.ws_url {
                return answer;
            }
            resume_at(context, &through_lobby, session).await
        };
        let result = tokio::select! {
            result = attempt => result,
            stop = &mut control.stop_rx => {
                // No socket to leave on: the server keeps the seat until its resume window ends.
                context.stats.resume_settled(false);
                return Reconnected::Ended(match stop.unwrap_or(StopMode::Leave) {
                    StopMode::Leave => DisconnectReason::ClientLeave,
                    StopMode::Drop => DisconnectReason::ClientDrop,
                });
            }
        };
        match result {
            Ok(Ok((socket, welcomed_at))) => {
                return Reconnected::Socket(Box::new(socket), welcomed_at)
            }
            Ok(Err(BotError::ResumeRefused { reason, .. })) => {
                tracing::debug!(bot = %config.name, %reason, "resume refused; new seat");
                context.stats.resume_settled(false);
                return rejoin(context, config, session).await;
            }
            Ok(Err(error)) => {
                tracing::debug!(bot = %config.name, attempt_number, %error, "resume attempt failed");
            }
            Err(_elapsed) => {
                tracing::debug!(bot = %config.name, attempt_number, "resume attempt timed out");
            }
        }
    }
}

/// One resume `hello` at `target` (following redirects), bounded by [`JOIN_TIMEOUT`].
async fn resume_at(
    context: &BotContext,
    target: &Connection,
    session: &mut Session,
) -> Result<Result<(Socket, Connection), BotError>, tokio::time::error::Elapsed> {
    let started = std::time::Instant::now();
    let hello = connect_and_hello(&context.lobby, target, HelloKind::Resume, session, started);
    tokio::time::timeout(JOIN_TIMEOUT, hello).await
}

/// After a refused resume: a new seat through the lobby, as a fresh join (counted as one).
async fn rejoin(context: &BotContext, config: &BotConfig, session: &mut Session) -> Reconnected {
    session.start_over();
    match join_counted(context, config, session).await {
        Ok((socket, connection)) => Reconnected::Socket(Box::new(socket), connection),
        Err(error) => {
            tracing::debug!(bot = %config.name, %error, "new seat after a refused resume failed");
            Reconnected::Ended(DisconnectReason::Server(CloseCode::ResumeRefused))
        }
    }
}
