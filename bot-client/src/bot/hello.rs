//! Connecting and saying `hello`: a new seat's or a resume's, following redirects, until the
//! `welcome`, a redirect or a resume refusal. The caller bounds it with the join timeout.

use super::{close_reason, send, websocket_config, Connection, Socket};
use crate::error::BotError;
use crate::lobby::{Lobby, Seat};
use crate::reconnect::ResumeRefusal;
use crate::session::Session;
use crate::stats::DisconnectReason;
use futures_util::StreamExt;
use ludus_protocol::{ClientMessage, Hello, RoomId};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// What the `hello` asks for.
#[derive(Clone, Copy)]
pub(super) enum HelloKind<'a> {
    /// A new seat, with the lobby's seat token.
    Seat(&'a Seat),
    /// The session's seat back ([`Session::resume_hello`]).
    Resume,
}

/// A client follows at most this many redirects per join (one is the normal case: a seat
/// handed out for a room that moved, or a client that dialled the wrong node).
const MAX_REDIRECTS: usize = 3;

/// Connects to `connection.ws_url` and says `hello`, following redirects; returns the socket
/// and the URL that welcomed it. `started` is when the whole attempt began (the origin of the
/// resume latency).
pub(super) async fn connect_and_hello(
    lobby: &Lobby,
    connection: &Connection,
    hello: HelloKind<'_>,
    session: &mut Session,
    started: std::time::Instant,
) -> Result<(Socket, Connection), BotError> {
    let mut ws_url = connection.ws_url.clone();
    for _ in 0..=MAX_REDIRECTS {
        match connect_once(lobby, &connection.room_id, &ws_url, hello, session, started).await? {
            HelloOutcome::Welcomed(socket) => {
                let welcomed_at = Connection {
                    room_id: connection.room_id.clone(),
                    ws_url,
                };
                return Ok((*socket, welcomed_at));
            }
            // The token stays valid on the node the server named: say hello there.
            HelloOutcome::Redirected(next) => ws_url = next,
            HelloOutcome::Refused(reason) => {
                return Err(BotError::ResumeRefused {
                    room_id: connection.room_id.clone(),
                    reason,
                })
            }
        }
    }
    Err(BotError::Redirected {
        room_id: connection.room_id.clone(),
        ws_url,
    })
}

/// How one `hello` ended.
enum HelloOutcome {
    Welcomed(Box<Socket>),
    Redirected(String),
    Refused(ResumeRefusal),
}

async fn connect_once(
    lobby: &Lobby,
    room_id: &RoomId,
    ws_url: &str,
    hello: HelloKind<'_>,
    session: &mut Session,
    started: std::time::Instant,
) -> Result<HelloOutcome, BotError> {
    let connect_error = |source| BotError::Connect {
        room_id: room_id.clone(),
        source: Box::new(source),
    };
    let (host, port) = lobby.reachable_ws_url(ws_url)?;
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|error| connect_error(error.into()))?;
    // Inputs are tiny and latency-sensitive; Nagle would hold them back.
    tcp.set_nodelay(true)
        .map_err(|error| connect_error(error.into()))?;
    let (mut socket, _response) =
        tokio_tungstenite::client_async_with_config(ws_url, tcp, Some(websocket_config()))
            .await
            .map_err(connect_error)?;
    let hello = match hello {
        HelloKind::Seat(seat) => Some(ClientMessage::Hello(Hello {
            protocol: session.protocol().number(),
            token: seat.token.clone(),
            resume: None,
        })),
        HelloKind::Resume => session.resume_hello(started),
    };
    let refused = |reason: DisconnectReason| BotError::RefusedHello {
        room_id: room_id.clone(),
        reason: reason.key(),
    };
    // Only a session that was never welcomed with a token gets here without a hello.
    let hello = hello.ok_or_else(|| BotError::RefusedHello {
        room_id: room_id.clone(),
        reason: "nothing to resume".to_owned(),
    })?;
    send(&mut socket, &hello).await.map_err(connect_error)?;
    // Wait for `welcome` (and the first snapshot or the missed deltas, which come in the same
    // frame), a redirect or a resume refusal. The caller bounds this loop with the join timeout.
    while session.awaiting_welcome() {
        match socket.next().await {
            Some(Ok(Message::Binary(frame))) => {
                if let Some(reply) = session.handle_frame(&frame, std::time::Instant::now()) {
                    send(&mut socket, &reply).await.map_err(connect_error)?;
                }
                if let Some(redirect) = session.take_redirect() {
                    return Ok(HelloOutcome::Redirected(redirect.ws_url));
                }
                if let Some(refusal) = session.take_refusal() {
                    // Close 4014 follows; the refusal says all there is to know.
                    return Ok(HelloOutcome::Refused(refusal));
                }
            }
            Some(Ok(Message::Text(text))) => session.handle_text_frame(text.len()),
            Some(Ok(Message::Close(close))) => return Err(refused(close_reason(close))),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Err(_)) | None => return Err(refused(DisconnectReason::NoCloseFrame)),
        }
    }
    Ok(HelloOutcome::Welcomed(Box::new(socket)))
}
