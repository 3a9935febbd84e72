//! The WebSocket entry point: takes a connection from actix-http's HTTP/1 dispatcher at the
//! upgrade and hands the bare TCP stream to a [`Session`].
//!
//! Why not let actix-web keep the connection (as `actix-web-actors` does): the dispatcher then
//! stays in the path of every frame for the life of the WebSocket, with two fixed 8 KiB buffers
//! per connection (≈ 15 KiB of a session's ≈ 19 KiB) and two copies plus a fresh buffer per
//! frame on the way out. Sessions own their socket instead, with buffers sized for the small
//! frames of this protocol (see `BENCHMARKS.md`, "Second pass").
//!
//! The session is started on its room's thread, not on the HTTP worker that accepted the
//! connection: the socket is handed over (deregistered here, registered there), so a room, its
//! players' sessions and their sockets share one thread and one event loop. Inputs and frames
//! then pass between actors without waking another thread, which profiling showed to be the
//! largest cost left after the copies (see `BENCHMARKS.md`).
//!
//! Every request with `Connection: Upgrade` arrives here, whatever its path. The WebSocket route
//! `GET /v1/rooms/{room_id}/ws` is served; anything else is answered with the same JSON errors
//! as the HTTP API and the connection is closed. Before the handshake is answered, a browser's
//! `Origin` must be allowed (`http.allowed_origins`, else 403 `origin_not_allowed`) and the
//! node and the client's address must be under their WebSocket caps (`http.max_websockets*`,
//! else 503 `too_many_connections`); the session holds its slot until it ends.

use crate::hello::{self, SessionSetup};
use crate::http::{parse_room_id, ApiError, ApiState};
use actix_codec::{Framed, FramedParts};
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::{h1, ws, Request, Response};
use actix_web::http::StatusCode;
use actix_web::{web, ResponseError};
use bytes::Bytes;
use futures_util::SinkExt;
use std::sync::Arc;
use tokio::net::TcpStream;

/// Why an upgrade ended without a session (logged by actix-http at `error`, so kept rare: only
/// I/O failures, which mean the client already left).
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// Writing the handshake answer failed.
    #[error("writing the upgrade answer failed: {0}")]
    Answer(#[from] std::io::Error),
    /// The socket could not be detached to move to its room's thread.
    #[error("handing the connection to its room's thread failed: {0}")]
    Handoff(std::io::Error),
}

/// actix-http wants an answer for every upgrade error; these only happen once the client has
/// gone, so nobody reads it.
impl From<UpgradeError> for Response<BoxBody> {
    fn from(_: UpgradeError) -> Self {
        Response::internal_server_error()
    }
}

/// The path of the WebSocket route, `/v1/rooms/{room_id}/ws`: the raw room id, if it matches.
fn websocket_room(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/rooms/")?
        .strip_suffix("/ws")
        .filter(|room| !room.contains('/'))
}

/// Writes `response` (with its body) on the connection, which is then dropped.
async fn answer(
    framed: &mut Framed<TcpStream, h1::Codec>,
    response: Response<BoxBody>,
) -> Result<(), UpgradeError> {
    let (head, body) = response.into_parts();
    let body = body.try_into_bytes().unwrap_or_default();
    let size = BodySize::Sized(body.len() as u64);
    // Fed, then flushed once: head and body leave in one write, as clients that read only
    // what arrived with the head (tungstenite does) expect.
    framed.feed((head.drop_body(), size).into()).await?;
    framed.feed(h1::Message::Chunk(Some(body))).await?;
    framed.send(h1::Message::Chunk(None)).await?;
    Ok(())
}

/// Serves one upgrade request: the WebSocket route gets a session, anything else a JSON error.
///
/// This returns as soon as the session is started, so the HTTP layer frees its per-connection
/// state (≈ 2 KiB) at once; the session's life is tracked by the session gauge, which shutdown
/// waits on, and bounded by the hello and idle timeouts.
pub async fn serve(
    state: web::Data<ApiState>,
    (request, mut framed): (Request, Framed<TcpStream, h1::Codec>),
) -> Result<(), UpgradeError> {
    let Some(raw_room) = websocket_room(request.path()) else {
        let message = format!(
            "no WebSocket route for {} {}",
            request.method(),
            request.path()
        );
        let error = ApiError::new(StatusCode::NOT_FOUND, "not_found", message);
        return answer(&mut framed, error.error_response().into()).await;
    };
    let room_id = match parse_room_id(raw_room) {
        Ok(room_id) => room_id,
        Err(error) => return answer(&mut framed, error.error_response().into()).await,
    };
    let origin = request
        .head()
        .headers()
        .get(actix_web::http::header::ORIGIN)
        .map(|origin| origin.to_str().unwrap_or("<invalid>"));
    let host = request
        .head()
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|host| host.to_str().ok());
    if !state.origins.allows(origin, host) {
        let error = ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this page's origin may not open WebSockets here (see http.allowed_origins)",
        );
        let error = state.refused(error);
        return answer(&mut framed, error.error_response().into()).await;
    }
    let peer = framed
        .io_ref()
        .peer_addr()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |peer| peer.ip());
    let connection = match state.websockets.admit(peer) {
        Ok(connection) => connection,
        Err(refused) => {
            let error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_connections",
                refused.to_string(),
            );
            let error = state.refused(error);
            return answer(&mut framed, error.error_response().into()).await;
        }
    };
    if state.gateway.is_shutting_down() {
        let error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        );
        return answer(&mut framed, error.error_response().into()).await;
    }
    let handshake = match ws::handshake(request.head()) {
        Ok(mut handshake) => handshake.finish().drop_body(),
        Err(refused) => {
            let error = ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("WebSocket handshake refused: {refused}"),
            );
            return answer(&mut framed, error.error_response().into()).await;
        }
    };
    framed.send((handshake, BodySize::None).into()).await?;
    // The HTTP layer's buffers (8 KiB each) are dropped here; only what the client sent after
    // the handshake is kept, for the session to read first.
    let FramedParts { io, read_buf, .. } = framed.into_parts();
    let received = Bytes::copy_from_slice(&read_buf);
    let lobby = Arc::clone(state.gateway.lobby());
    let thread = lobby.directory().thread(&room_id);
    let setup = SessionSetup {
        received,
        room_id,
        lobby,
        cluster: state.gateway.cluster().cloned(),
        limits: Arc::clone(&state.limits),
        connection,
    };
    match thread {
        Some(thread) => {
            let io = io.into_std().map_err(UpgradeError::Handoff)?;
            let moved = thread.spawn(async move {
                match TcpStream::from_std(io) {
                    Ok(io) => hello::start(io, setup),
                    Err(error) => tracing::warn!(%error, "cannot adopt a WebSocket connection"),
                }
            });
            if !moved {
                tracing::debug!("room thread stopped: WebSocket connection dropped");
            }
        }
        // Not a room of this node: the session answers with a redirect or `room_not_found`.
        None => hello::start(io, setup),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::websocket_room;

    #[test]
    fn only_the_websocket_route_names_a_room() {
        assert_eq!(websocket_room("/v1/rooms/r-abc/ws"), Some("r-abc"));
        assert_eq!(websocket_room("/v1/rooms/r-abc/seats"), None);
        assert_eq!(websocket_room("/v1/rooms/a/b/ws"), None);
        assert_eq!(websocket_room("/healthz"), None);
    }
}
