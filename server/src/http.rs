//! The lobby HTTP API (JSON) and the WebSocket entry point.
//!
//! Routes:
//! - `POST /v1/rooms` create a room; `GET /v1/rooms?room_type=&region=` list rooms;
//! - `POST /v1/rooms/{room_id}/seats` reserve a seat in a given room;
//! - `DELETE /v1/rooms/{room_id}` end a room (members are closed with 4009);
//! - `POST /v1/rooms/{room_id}/messages` deliver a message into a room's next tick;
//! - `POST /v1/matchmake` join-or-create by room type (region from the body, else the
//!   `X-Ludus-Region` header an edge proxy sets, else the default region);
//! - `GET /v1/rooms/{room_id}/ws` the WebSocket (see `protocol/PROTOCOL.md`), served by
//!   [`crate::upgrade`];
//! - `GET /v1/regions`, `POST /v1/regions/{region}/announce`, `GET /v1/placement`, `GET /v1/ping`;
//! - `GET /healthz`, `GET /metrics`.
//!
//! Every error is JSON, `{"error": {"code": "...", "message": "..."}}`, with a stable code.
//! Handlers go through [`Gateway`], so they read the same on one node or a cluster.

use crate::cluster::{ClusterError, Placed};
use crate::gateway::{Gateway, ListedRoom};
use crate::lobby::{CreateRoom, LobbyError, SeatGrant};
use crate::session::SessionLimits;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use ludus_protocol::RoomId;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

/// The header an edge proxy sets to a client's region or edge code (`DE`, `eu`, ...).
pub const REGION_HEADER: &str = "x-ludus-region";

/// Largest JSON request body accepted, in bytes.
const MAX_JSON_BYTES: usize = 16 * 1024;

/// Shared state of the HTTP layer.
pub struct ApiState {
    /// The lobby, alone or in a cluster.
    pub gateway: Gateway,
    /// Session limits.
    pub limits: Arc<SessionLimits>,
    /// Configured public base URL, if any.
    pub public_url: Option<String>,
}

/// A JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Cow::Borrowed(code),
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

/// The HTTP status of an error code, whichever node produced it.
fn status_of(code: &str) -> StatusCode {
    match code {
        "unknown_room_type" | "invalid_room_id" | "invalid_request" | "unknown_region" => {
            StatusCode::BAD_REQUEST
        }
        "room_exists" | "room_full" => StatusCode::CONFLICT,
        "room_not_found" => StatusCode::NOT_FOUND,
        "at_capacity"
        | "shutting_down"
        | "cluster_unavailable"
        | "node_unavailable"
        | "no_live_node" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ClusterError> for ApiError {
    fn from(error: ClusterError) -> Self {
        Self {
            status: status_of(error.code()),
            // A remote node's code is passed through as it came, whatever it is.
            code: Cow::Owned(error.code().to_owned()),
            message: error.to_string(),
        }
    }
}

impl From<LobbyError> for ApiError {
    fn from(error: LobbyError) -> Self {
        ClusterError::from(error).into()
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
    region: Option<String>,
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
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    room_type: Option<String>,
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlacementQuery {
    room: String,
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    payload: serde_json::Value,
}

#[derive(Serialize)]
struct SeatResponse {
    room_id: RoomId,
    room_type: String,
    player_id: u64,
    ws_url: String,
    token: String,
    expires_at_ms: u64,
    node: String,
    region: String,
    placement: String,
}

#[derive(Serialize)]
struct RoomList {
    rooms: Vec<ListedRoom>,
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

fn ws_url(state: &ApiState, request: &HttpRequest, node: &str, room_id: &RoomId) -> String {
    if let Some(url) = state.gateway.cluster_ws_url(node, room_id) {
        return url;
    }
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

fn seat_response(
    state: &ApiState,
    request: &HttpRequest,
    placed: Placed<SeatGrant>,
) -> HttpResponse {
    let Placed {
        value: grant,
        node,
        region,
        reason,
    } = placed;
    HttpResponse::Ok().json(SeatResponse {
        ws_url: ws_url(state, request, &node, &grant.room_id),
        room_id: grant.room_id,
        room_type: grant.room_type,
        player_id: grant.player_id.0,
        token: grant.token,
        expires_at_ms: grant.expires_at_ms,
        node,
        region,
        placement: reason,
    })
}

fn region_hint(body_region: Option<String>, request: &HttpRequest) -> Option<String> {
    body_region.or_else(|| {
        request
            .headers()
            .get(REGION_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    })
}

pub(crate) fn parse_room_id(raw: &str) -> Result<RoomId, ApiError> {
    RoomId::parse(raw).map_err(|error| LobbyError::from(error).into())
}

async fn create_room(
    state: web::Data<ApiState>,
    request: HttpRequest,
    body: web::Json<CreateRoomBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let region = region_hint(body.region, &request);
    let placed = state
        .gateway
        .create(
            CreateRoom {
                room_type: body.room_type,
                room_id: body.room_id,
                max_players: body.max_players,
                metadata: body.metadata,
                epoch: None,
            },
            region.as_deref(),
        )
        .await?;
    Ok(HttpResponse::Created().json(ListedRoom {
        info: placed.value,
        node: placed.node,
        region: placed.region,
    }))
}

async fn list_rooms(
    state: web::Data<ApiState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let rooms = state
        .gateway
        .list(query.room_type.as_deref(), query.region.as_deref())?;
    Ok(HttpResponse::Ok().json(RoomList { rooms }))
}

async fn reserve_seat(
    state: web::Data<ApiState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Json<SeatBody>,
) -> Result<HttpResponse, ApiError> {
    let room_id = parse_room_id(&path)?;
    let name = check_name(body.into_inner().name)?;
    let placed = state.gateway.reserve(&room_id, name).await?;
    Ok(seat_response(&state, &request, placed))
}

async fn matchmake(
    state: web::Data<ApiState>,
    request: HttpRequest,
    body: web::Json<MatchmakeBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = check_name(body.name)?;
    let region = region_hint(body.region, &request);
    let placed = state
        .gateway
        .matchmake(&body.room_type, region.as_deref(), name)
        .await?;
    Ok(seat_response(&state, &request, placed))
}

async fn send_message(
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: web::Json<MessageBody>,
) -> Result<HttpResponse, ApiError> {
    let room_id = parse_room_id(&path)?;
    let placed = state
        .gateway
        .send_to_room(&room_id, body.into_inner().payload)
        .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "room_id": room_id, "node": placed.node, "region": placed.region,
    })))
}

async fn dispose_room(
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let room_id = parse_room_id(&path)?;
    let placed = state.gateway.dispose(&room_id).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "room_id": room_id, "node": placed.node, "region": placed.region,
    })))
}

async fn announce(
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: web::Json<MessageBody>,
) -> Result<HttpResponse, ApiError> {
    let region = state
        .gateway
        .announce(&path, body.into_inner().payload)
        .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "region": region })))
}

async fn regions(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "regions": state.gateway.regions() }))
}

async fn placement(
    state: web::Data<ApiState>,
    query: web::Query<PlacementQuery>,
) -> Result<HttpResponse, ApiError> {
    let room_id = parse_room_id(&query.room)?;
    let explanation = state.gateway.explain(&room_id, query.region.as_deref())?;
    Ok(HttpResponse::Ok().json(explanation))
}

async fn ping(state: web::Data<ApiState>) -> HttpResponse {
    let node = state.gateway.cluster().map_or_else(
        || crate::gateway::LOCAL.to_owned(),
        |cluster| cluster.node_id().to_string(),
    );
    HttpResponse::Ok().json(serde_json::json!({ "node": node }))
}

/// The WebSocket route without an upgrade: upgrades never reach the app (see
/// [`crate::upgrade`]), so this only explains what is missing.
async fn websocket(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    parse_room_id(&path)?;
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "this is a WebSocket endpoint: send GET with `Connection: Upgrade` and `Upgrade: websocket`",
    ))
}

async fn healthz(state: web::Data<ApiState>) -> HttpResponse {
    if state.gateway.is_shutting_down() {
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "shutting_down"}));
    }
    let cluster = state.gateway.cluster().map(|cluster| {
        serde_json::json!({
            "node": cluster.node_id().as_str(),
            "nats_connected": cluster.is_connected(),
        })
    });
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "rooms": state.gateway.lobby().directory().len(),
        "cluster": cluster,
    }))
}

async fn metrics(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.gateway.lobby().metrics().render())
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
            .route("/v1/rooms/{room_id}", web::delete().to(dispose_room))
            .route("/v1/rooms/{room_id}/seats", web::post().to(reserve_seat))
            .route("/v1/rooms/{room_id}/ws", web::get().to(websocket))
            .route("/v1/rooms/{room_id}/messages", web::post().to(send_message))
            .route("/v1/matchmake", web::post().to(matchmake))
            .route("/v1/regions", web::get().to(regions))
            .route("/v1/regions/{region}/announce", web::post().to(announce))
            .route("/v1/placement", web::get().to(placement))
            .route("/v1/ping", web::get().to(ping))
            .route("/healthz", web::get().to(healthz))
            .route("/metrics", web::get().to(metrics))
            .default_service(web::to(not_found));
    }
}
