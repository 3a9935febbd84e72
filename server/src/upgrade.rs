//! The WebSocket entry point: takes a connection from actix-http's HTTP/1 dispatcher at the
//! upgrade and hands the bare TCP stream to a [`Session`].
//!
//! Why not let actix-web keep the connection (as `actix-web-actors` does): the dispatcher then
//! stays in the path of every frame for the life of the WebSocket, with two fixed 8 KiB buffers
//! per connection (≈ 15 KiB of a session's ≈ 19 KiB) and two copies plus a fresh buffer per
//! frame on the way out. Sessions own their socket instead, with buffers sized for the small
//! frames of this protocol (see `BENCHMARKS.md`, "Own WebSocket transport").
//!
//! Every request with `Connection: Upgrade` arrives here, whatever its path. The WebSocket route
//! `GET /v1/rooms/{room_id}/ws` is served; anything else is answered with the same JSON errors
//! as the HTTP API and the connection is closed.

use crate::http::{parse_room_id, ApiError, ApiState};
use crate::session::Session;
use actix_codec::{Framed, FramedParts};
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::{h1, ws, Request, Response};
use actix_web::http::StatusCode;
use actix_web::{web, ResponseError};
use futures_util::SinkExt;
use std::sync::Arc;
use tokio::net::TcpStream;

/// Why an upgrade ended without a session (logged by actix-http at `error`, so kept rare: only
/// I/O failures while answering, which mean the client already left).
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// Writing the handshake answer failed.
    #[error("writing the upgrade answer failed: {0}")]
    Answer(#[from] std::io::Error),
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
    framed.send((head.drop_body(), size).into()).await?;
    framed.send(h1::Message::Chunk(Some(body))).await?;
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
    Session::start(
        io,
        &read_buf,
        room_id,
        Arc::clone(state.gateway.lobby()),
        state.gateway.cluster().cloned(),
        Arc::clone(&state.limits),
    );
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
