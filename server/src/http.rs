//! The lobby HTTP API (JSON) and the WebSocket entry point.
//!
//! Routes:
//! - `POST /v1/rooms` create a room; `GET /v1/rooms?room_type=` list rooms;
//! - `POST /v1/rooms/{room_id}/seats` reserve a seat in a given room;
//! - `POST /v1/matchmake` join-or-create by room type;
//! - `GET /v1/rooms/{room_id}/ws` the WebSocket (see `protocol/PROTOCOL.md`);
//! - `GET /healthz`, `GET /metrics`.
//!
//! Every error is JSON, `{"error": {"code": "...", "message": "..."}}`, with a stable code.

use crate::directory::RoomInfo;
use crate::lobby::{CreateRoom, Lobby, LobbyError, SeatGrant};
use crate::session::{Session, SessionLimits};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use actix_web_actors::ws;
use ludus_protocol::RoomId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Largest JSON request body accepted, in bytes.
const MAX_JSON_BYTES: usize = 16 * 1024;

/// Shared state of the HTTP layer.
pub struct ApiState {
    /// The lobby.
    pub lobby: Arc<Lobby>,
    /// Session limits.
    pub limits: Arc<SessionLimits>,
    /// Configured public base URL, if any.
    pub public_url: Option<String>,
}

/// A JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        }))
    }
}

impl From<LobbyError> for ApiError {
    fn from(error: LobbyError) -> Self {
        let status = match &error {
            LobbyError::UnknownRoomType(_)
            | LobbyError::InvalidRoomId(_)
            | LobbyError::InvalidField { .. } => StatusCode::BAD_REQUEST,
            LobbyError::RoomExists(_) | LobbyError::RoomFull(_) => StatusCode::CONFLICT,
            LobbyError::RoomNotFound(_) => StatusCode::NOT_FOUND,
            LobbyError::AtCapacity(_) | LobbyError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            LobbyError::RoomCrashed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, error.code(), error.to_string())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoomBody {
    room_type: String,
    room_id: Option<String>,
    max_players: Option<u32>,
    #[serde(default)]
    metadata: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeatBody {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchmakeBody {
    room_type: String,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    room_type: Option<String>,
}

#[derive(Serialize)]
struct SeatResponse {
    room_id: RoomId,
    room_type: String,
    player_id: u64,
    ws_url: String,
    token: String,
    expires_at_ms: u64,
}

#[derive(Serialize)]
struct RoomList {
    rooms: Vec<RoomInfo>,
}

/// Longest accepted display name, in characters.
const MAX_NAME_CHARS: usize = 32;

fn check_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    match name {
        Some(name) if name.chars().count() > MAX_NAME_CHARS || name.trim().is_empty() => {
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("name: must be 1 to {MAX_NAME_CHARS} characters"),
            ))
        }
        name => Ok(name),
    }
}

fn ws_url(state: &ApiState, request: &HttpRequest, room_id: &RoomId) -> String {
    let base = match &state.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let info = request.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    };
    let base = base
        .replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1);
    format!("{base}/v1/rooms/{room_id}/ws")
}

fn seat_response(state: &ApiState, request: &HttpRequest, grant: SeatGrant) -> HttpResponse {
    HttpResponse::Ok().json(SeatResponse {
        ws_url: ws_url(state, request, &grant.room_id),
        room_id: grant.room_id,
        room_type: grant.room_type,
        player_id: grant.player_id.0,
        token: grant.token,
        expires_at_ms: grant.expires_at_ms,
    })
}

fn parse_room_id(raw: &str) -> Result<RoomId, ApiError> {
    RoomId::parse(raw).map_err(|error| LobbyError::from(error).into())
}

async fn create_room(
    state: web::Data<ApiState>,
    body: web::Json<CreateRoomBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let info = state.lobby.create_room(CreateRoom {
        room_type: body.room_type,
        room_id: body.room_id,
        max_players: body.max_players,
        metadata: body.metadata,
    })?;
    Ok(HttpResponse::Created().json(info))
}

async fn list_rooms(state: web::Data<ApiState>, query: web::Query<ListQuery>) -> HttpResponse {
    let rooms = state.lobby.directory().list(|info| {
        query
            .room_type
            .as_ref()
            .is_none_or(|room_type| &info.room_type == room_type)
    });
    HttpResponse::Ok().json(RoomList { rooms })
}

async fn reserve_seat(
    state: web::Data<ApiState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: Option<web::Json<SeatBody>>,
) -> Result<HttpResponse, ApiError> {
    let room_id = parse_room_id(&path)?;
    let name = check_name(body.and_then(|body| body.into_inner().name))?;
    let grant = state.lobby.reserve_seat(&room_id, name).await?;
    Ok(seat_response(&state, &request, grant))
}

async fn matchmake(
    state: web::Data<ApiState>,
    request: HttpRequest,
    body: web::Json<MatchmakeBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = check_name(body.name)?;
    let grant = state.lobby.matchmake(&body.room_type, name).await?;
    Ok(seat_response(&state, &request, grant))
}

async fn websocket(
    state: web::Data<ApiState>,
    request: HttpRequest,
    path: web::Path<String>,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let room_id = parse_room_id(&path)?;
    let session = Session::new(room_id, Arc::clone(&state.lobby), Arc::clone(&state.limits));
    // The codec refuses frames far above the limit before buffering them; frames between the
    // limit and this size reach the session, which answers `message_too_large` precisely.
    let codec_limit = state.limits.max_message_bytes.saturating_mul(2);
    ws::WsResponseBuilder::new(session, &request, stream)
        .frame_size(codec_limit)
        .start()
}

async fn healthz(state: web::Data<ApiState>) -> HttpResponse {
    if state.lobby.is_shutting_down() {
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "shutting_down"}));
    }
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "rooms": state.lobby.directory().len(),
    }))
}

async fn metrics(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.lobby.metrics().render())
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", request.method(), request.path()),
    )
    .error_response()
}

/// Registers every route; `state` is shared by all workers.
pub fn configure(state: web::Data<ApiState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        let json_errors = web::JsonConfig::default()
            .limit(MAX_JSON_BYTES)
            .error_handler(|error, _| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    error.to_string(),
                )
                .into()
            });
        let query_errors = web::QueryConfig::default().error_handler(|error, _| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                error.to_string(),
            )
            .into()
        });
        config
            .app_data(state)
            .app_data(json_errors)
            .app_data(query_errors)
            .route("/v1/rooms", web::post().to(create_room))
            .route("/v1/rooms", web::get().to(list_rooms))
            .route("/v1/rooms/{room_id}/seats", web::post().to(reserve_seat))
            .route("/v1/rooms/{room_id}/ws", web::get().to(websocket))
            .route("/v1/matchmake", web::post().to(matchmake))
            .route("/healthz", web::get().to(healthz))
            .route("/metrics", web::get().to(metrics))
            .default_service(web::to(not_found));
    }
}
