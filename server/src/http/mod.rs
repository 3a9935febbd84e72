//! The lobby HTTP API (JSON) and the WebSocket entry point.
//!
//! Routes for players (`lobby.auth` decides whether they carry a player token):
//! - `POST /v1/matchmake` join-or-create by room type (region from the body, else the
//!   `X-Ludus-Region` header an edge proxy sets, else the default region);
//! - `POST /v1/rooms` create a room; `GET /v1/rooms?room_type=&region=&limit=&cursor=` list
//!   rooms a page at a time;
//! - `POST /v1/rooms/{room_id}/seats` reserve a seat in a given room;
//! - `GET /v1/rooms/{room_id}/ws` the WebSocket (see `protocol/PROTOCOL.md`), served by
//!   [`crate::upgrade`];
//! - `GET /v1/regions`, `GET /v1/placement`, `GET /v1/ping`, `GET /healthz`, `GET /metrics`.
//!
//! Pages ([`assets`]): `GET /dashboard` (on every listener) and `GET /play` (player listeners).
//!
//! Operator routes, which need an operator token ([`operator`]) and may live on their own
//! listener (`operator.listen`):
//! - `DELETE /v1/rooms/{room_id}` end a room (members are closed with 4009);
//! - `DELETE /v1/rooms/{room_id}/players/{player_id}` remove a player (closed with 4016);
//! - `GET /v1/dashboard/...` the dashboard's data and live stream ([`dashboard`]);
//! - `POST /v1/rooms/{room_id}/messages` deliver a message into a room's coming ticks;
//! - `POST /v1/regions/{region}/announce` deliver an announcement to every room of a region.
//!
//! Every error is JSON, `{"error": {"code": "...", "message": "..."}}`, with a stable code.
//! Handlers go through [`Gateway`], so they read the same on one node or a cluster.

pub mod admin;
pub mod assets;
pub mod bodies;
pub mod dashboard;
pub mod error;
pub mod identity;
pub mod operator;
pub mod quota;

pub use error::ApiError;

use crate::cluster::Placed;
use crate::conn_limit::ConnectionLimiter;
use crate::gateway::{Gateway, ListedRoom};
use crate::lobby::{CreateRoom, LobbyError, SeatFor, SeatGrant};
use crate::origin::Origins;
use crate::paging::{Cursor, PageRequest, MAX_PAGE};
use crate::session::SessionLimits;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use bodies::{
    check_depth, read_json, BodyLimits, CreateRoomBody, MatchmakeBody, MessageBody, SeatBody,
};
use identity::{Identity, PlayerAuth};
use ludus_protocol::RoomId;
use operator::OperatorTokens;
use quota::LobbyQuotas;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The header an edge proxy sets to a client's region or edge code (`DE`, `eu`, ...).
pub const REGION_HEADER: &str = "x-ludus-region";

/// Shared state of the HTTP layer: the lobby and the guards in front of it.
pub struct ApiState {
    /// The lobby, alone or in a cluster.
    pub gateway: Gateway,
    /// Session limits.
    pub limits: Arc<SessionLimits>,
    /// Configured public base URL, if any.
    pub public_url: Option<String>,
    /// Who may call operator routes.
    pub operator: OperatorTokens,
    /// How players identify.
    pub players: PlayerAuth,
    /// What one player or address may reserve and create.
    pub quotas: LobbyQuotas,
    /// Request body deadline and size.
    pub body: BodyLimits,
    /// Largest room metadata, in bytes of JSON.
    pub max_metadata_bytes: usize,
    /// Largest operator payload, in bytes of MessagePack.
    pub max_event_bytes: usize,
    /// Which browser origins may use the node.
    pub origins: Origins,
    /// Open WebSocket sessions, per address and in total.
    pub websockets: Arc<ConnectionLimiter>,
    /// Open dashboard streams (at most [`dashboard::MAX_STREAMS`]).
    pub dashboard_streams: std::sync::atomic::AtomicUsize,
}

impl ApiState {
    /// Counts a refusal by its code and passes it on.
    pub(crate) fn refused(&self, error: ApiError) -> ApiError {
        self.gateway
            .lobby()
            .metrics()
            .http_refused
            .with_label_values(&[error.code()])
            .inc();
        error
    }

    fn authorize_operator(&self, request: &HttpRequest) -> Result<(), ApiError> {
        self.operator
            .authorize(request)
            .map_err(|error| self.refused(error))
    }

    fn identify(&self, request: &HttpRequest) -> Result<Identity, ApiError> {
        self.players
            .identify(request)
            .map_err(|error| self.refused(error))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    room_type: Option<String>,
    region: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlacementQuery {
    room: String,
    region: Option<String>,
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
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// Longest accepted display name, in characters.
const MAX_NAME_CHARS: usize = 32;

fn check_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    match name {
        Some(name) if name.chars().count() > MAX_NAME_CHARS || name.trim().is_empty() => Err(
            ApiError::invalid_request(format!("name: must be 1 to {MAX_NAME_CHARS} characters")),
        ),
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

/// The MessagePack form of an operator payload, refused when deeper or larger than clients
/// and rooms accept.
fn check_payload(state: &ApiState, payload: &serde_json::Value) -> Result<(), ApiError> {
    check_depth("payload", payload)?;
    let size = crate::lobby::encoded_len(&crate::lobby::json_value(payload));
    if size > state.max_event_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "payload: {size} bytes as MessagePack, more than the {} a room accepts",
                state.max_event_bytes
            ),
        ));
    }
    Ok(())
}

fn check_metadata(state: &ApiState, metadata: &serde_json::Value) -> Result<(), ApiError> {
    check_depth("metadata", metadata)?;
    // unwrap_or: a JSON value always serializes; if not, it weighs the most.
    let size = serde_json::to_vec(metadata).map_or(usize::MAX, |bytes| bytes.len());
    if size > state.max_metadata_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "metadata: {size} bytes of JSON, more than the {} allowed",
                state.max_metadata_bytes
            ),
        ));
    }
    Ok(())
}

async fn create_room(
    state: web::Data<ApiState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let identity = state.identify(&request)?;
    let body: CreateRoomBody = read_json(&request, payload, state.body).await?;
    check_metadata(&state, &body.metadata)?;
    state
        .quotas
        .admit_room(&identity)
        .map_err(|error| state.refused(error))?;
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
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let after = match query.cursor.as_deref() {
        None => None,
        Some(text) => Some(Cursor::parse(text).ok_or_else(|| {
            ApiError::invalid_request("cursor: pass back a `next_cursor` exactly as received")
        })?),
    };
    let (rooms, next) = state.gateway.list(
        query.room_type.as_deref(),
        query.region.as_deref(),
        &PageRequest { after, limit },
    )?;
    Ok(HttpResponse::Ok().json(RoomList {
        rooms,
        next_cursor: next.as_ref().map(Cursor::encode),
    }))
}

/// Reserves a seat for the caller through `reserve`, within the caller's quotas.
async fn seat_for_caller<F, Fut>(
    state: &ApiState,
    request: &HttpRequest,
    name: Option<String>,
    reserve: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(SeatFor) -> Fut,
    Fut: std::future::Future<Output = Result<Placed<SeatGrant>, ApiError>>,
{
    let identity = state.identify(request)?;
    let name = check_name(name)?;
    state
        .quotas
        .admit_seat(&identity)
        .map_err(|error| state.refused(error))?;
    let placed = reserve(SeatFor {
        name,
        player: identity.player,
    })
    .await?;
    state.quotas.seat_granted(&identity);
    Ok(seat_response(state, request, placed))
}

async fn reserve_seat(
    state: web::Data<ApiState>,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let room_id = parse_room_id(&path)?;
    let body: SeatBody = read_json(&request, payload, state.body).await?;
    let gateway = &state.gateway;
    seat_for_caller(&state, &request, body.name, |seat| async move {
        Ok(gateway.reserve(&room_id, seat).await?)
    })
    .await
}

async fn matchmake(
    state: web::Data<ApiState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: MatchmakeBody = read_json(&request, payload, state.body).await?;
    let region = region_hint(body.region, &request);
    let gateway = &state.gateway;
    let room_type = body.room_type;
    seat_for_caller(&state, &request, body.name, |seat| async move {
        Ok(gateway
            .matchmake(&room_type, region.as_deref(), seat)
            .await?)
    })
    .await
}

async fn send_message(
    state: web::Data<ApiState>,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    state.authorize_operator(&request)?;
    let room_id = parse_room_id(&path)?;
    let body: MessageBody = read_json(&request, payload, state.body).await?;
    check_payload(&state, &body.payload)?;
    let placed = state.gateway.send_to_room(&room_id, body.payload).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "room_id": room_id, "node": placed.node, "region": placed.region,
    })))
}

async fn dispose_room(
    state: web::Data<ApiState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.authorize_operator(&request)?;
    let room_id = parse_room_id(&path)?;
    let placed = state.gateway.dispose(&room_id).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "room_id": room_id, "node": placed.node, "region": placed.region,
    })))
}

async fn announce(
    state: web::Data<ApiState>,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    state.authorize_operator(&request)?;
    let body: MessageBody = read_json(&request, payload, state.body).await?;
    check_payload(&state, &body.payload)?;
    let region = state.gateway.announce(&path, body.payload).await?;
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

/// A listing's `limit` query parameter: the default page when absent, else 1 to
/// [`MAX_PAGE`](crate::paging::MAX_PAGE).
pub(crate) fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(crate::paging::DEFAULT_PAGE),
        Some(limit @ 1..=MAX_PAGE) => Ok(limit),
        Some(other) => Err(ApiError::invalid_request(format!(
            "limit: must be between 1 and {MAX_PAGE}, got {other}"
        ))),
    }
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
    let cluster = state.gateway.cluster();
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "rooms": state.gateway.lobby().directory().len(),
        "draining": cluster.is_some_and(|cluster| cluster.is_draining()),
        "cluster": cluster.map(|cluster| cluster.health()),
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

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// Player routes and operator routes (no `operator.listen`).
    All,
    /// Player routes only (`server.listen` when `operator.listen` is set).
    Players,
    /// Operator routes, `/metrics` and `/healthz` (`operator.listen`).
    Operators,
}

/// Registers the routes of `routes`; `state` is shared by all workers.
pub fn configure(
    state: web::Data<ApiState>,
    routes: Routes,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        let query_errors = web::QueryConfig::default()
            .error_handler(|error, _| ApiError::invalid_request(error.to_string()).into());
        config.app_data(state).app_data(query_errors);
        if routes != Routes::Operators {
            config
                .route("/v1/rooms", web::post().to(create_room))
                .route("/v1/rooms", web::get().to(list_rooms))
                .route("/v1/rooms/{room_id}/seats", web::post().to(reserve_seat))
                .route("/v1/rooms/{room_id}/ws", web::get().to(websocket))
                .route("/v1/matchmake", web::post().to(matchmake))
                .route("/v1/regions", web::get().to(regions))
                .route("/v1/placement", web::get().to(placement))
                .route("/v1/ping", web::get().to(ping))
                .configure(assets::play_routes);
        }
        if routes != Routes::Players {
            config
                .route("/v1/rooms/{room_id}", web::delete().to(dispose_room))
                .route("/v1/rooms/{room_id}/messages", web::post().to(send_message))
                .route("/v1/regions/{region}/announce", web::post().to(announce))
                .configure(admin::routes)
                .configure(dashboard::routes);
        }
        config
            .route("/healthz", web::get().to(healthz))
            .route("/metrics", web::get().to(metrics))
            .configure(assets::dashboard_routes)
            .default_service(web::to(not_found));
    }
}
