//! The operator dashboard's data: JSON routes behind the operator token, and a live stream.
//!
//! - `GET /v1/dashboard/overview`: the cluster by region and node (one node when alone);
//! - `GET /v1/dashboard/stream`: the same overview once a second, as server-sent events;
//! - `GET /v1/dashboard/rooms?room_type=&q=&sort=&limit=&cursor=`: this node's rooms with their
//!   recent ticks, filtered, sorted (`created`, `players`, `tick_p99`) and paged;
//! - `GET /v1/dashboard/rooms/{room_id}`: one room of this node: seats, flow control, ticks,
//!   and its state as JSON.
//!
//! Why the stream is read with `fetch`, not `EventSource`: `EventSource` cannot send an
//! `Authorization` header, and the alternatives (the token in the URL, where proxies and
//! histories log it; a cookie or a one-time ticket, which would be a second credential to
//! issue, expire and protect against cross-site requests) add more than they save. A `fetch`
//! with the header reads the `text/event-stream` body as it arrives, so the stream is checked
//! exactly like every other operator route. It is bounded: [`MAX_STREAMS`] at once per node
//! (503 beyond), each ends after [`STREAM_LIFETIME`] (the page reconnects) or at shutdown.
//!
//! Rooms are listed per node, where their live numbers are: every node serves `/dashboard`,
//! and the overview links to each node's. Nothing here computes a number: rooms and the node
//! hand over plain data ([`crate::stats`]), and this module only checks, pages and serializes.

use super::page_limit;
use super::{parse_room_id, ApiError, ApiState};
use crate::cluster::membership::NodeReport;
use crate::cluster::overview::{NodeStatus, RegionNodes};
use crate::directory::RoomInfo;
use crate::gateway::LOCAL;
use crate::lobby::unix_millis;
use crate::paging::RankedCursor;
use crate::room::{state_json, RoomInspection};
use crate::stats::TickSummary;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use ludus_protocol::PlayerId;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Dashboard streams one node serves at once.
pub const MAX_STREAMS: usize = 8;

/// How long one stream lasts before the server ends it (the page reconnects at once).
pub const STREAM_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Time between two events of a stream.
const STREAM_INTERVAL: Duration = Duration::from_secs(1);

/// Longest room-id filter, in characters.
const MAX_FILTER_CHARS: usize = 64;

/// Whether the answering node can be drained from the page, and why not.
#[derive(Serialize)]
struct Drain {
    supported: bool,
    /// Why not (empty when it can).
    reason: &'static str,
    /// Whether it drains already.
    draining: bool,
}

/// The cluster as one node sees it.
#[derive(Serialize)]
struct Overview {
    /// The node answering.
    node: String,
    /// Whether it runs in a cluster.
    clustered: bool,
    /// Unix milliseconds when this was taken.
    at_ms: u64,
    regions: Vec<RegionNodes>,
    drain: Drain,
}

fn overview(state: &ApiState) -> Overview {
    let lobby = state.gateway.lobby();
    let (node, regions) = match state.gateway.cluster() {
        Some(cluster) => (cluster.node_id().to_string(), cluster.overview()),
        None => {
            let report = NodeReport {
                sessions: u64::try_from(lobby.metrics().sessions.get()).unwrap_or(0),
                lease_held: false,
                load: lobby.load(),
            };
            let alone = NodeStatus {
                node: LOCAL.to_owned(),
                region: LOCAL.to_owned(),
                http_url: None,
                this_node: true,
                live: !state.gateway.is_shutting_down(),
                rooms: Some(lobby.directory().len()),
                report: Some(report),
                region_file_hash: None,
                region_file_agrees: None,
            };
            let regions = vec![RegionNodes {
                region: LOCAL.to_owned(),
                nodes: vec![alone],
            }];
            (LOCAL.to_owned(), regions)
        }
    };
    Overview {
        node,
        clustered: state.gateway.cluster().is_some(),
        at_ms: unix_millis(std::time::SystemTime::now()),
        regions,
        drain: Drain {
            supported: super::admin::drain_unavailable(state).is_none(),
            reason: super::admin::drain_unavailable(state).unwrap_or_default(),
            draining: state
                .gateway
                .cluster()
                .is_some_and(|cluster| cluster.is_draining()),
        },
    }
}

async fn get_overview(
    state: web::Data<ApiState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state.authorize_operator(&request)?;
    Ok(no_store(HttpResponse::Ok()).json(overview(&state)))
}

fn no_store(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    response
}

/// One open stream, counted while it lives.
struct StreamSlot {
    state: web::Data<ApiState>,
}

impl StreamSlot {
    fn take(state: &web::Data<ApiState>) -> Option<Self> {
        let taken =
            state
                .dashboard_streams
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                    (open < MAX_STREAMS).then_some(open + 1)
                });
        taken.ok().map(|_| Self {
            state: state.clone(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.state.dashboard_streams.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One server-sent event: `event: <name>` and the JSON on one `data:` line.
fn sse_event(name: &str, data: &impl Serialize) -> Bytes {
    // unwrap_or: the overview is plain data and serializes; if not, the event says so.
    let json = serde_json::to_string(data).unwrap_or_else(|_| "null".to_owned());
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

async fn stream(
    state: web::Data<ApiState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state.authorize_operator(&request)?;
    let slot = StreamSlot::take(&state).ok_or_else(|| {
        state.refused(ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!("this node serves at most {MAX_STREAMS} dashboard streams at once"),
        ))
    })?;
    let ends_at = Instant::now() + STREAM_LIFETIME;
    let ticker = tokio::time::interval(STREAM_INTERVAL);
    let events =
        futures_util::stream::unfold((slot, ticker), move |(slot, mut ticker)| async move {
            ticker.tick().await;
            if Instant::now() >= ends_at || slot.state.gateway.is_shutting_down() {
                return None;
            }
            let event = sse_event("overview", &overview(&slot.state));
            Some((Ok::<_, actix_web::Error>(event), (slot, ticker)))
        });
    Ok(no_store(HttpResponse::Ok())
        .content_type("text/event-stream")
        .streaming(events))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomsQuery {
    room_type: Option<String>,
    /// Part of a room id.
    q: Option<String>,
    sort: Option<RoomSort>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "snake_case")]
enum RoomSort {
    /// Oldest first (the listing order).
    #[default]
    Created,
    /// Most players first.
    Players,
    /// Slowest ticks (p99) first.
    TickP99,
}

impl RoomSort {
    fn rank(self, info: &RoomInfo, ticks: &TickSummary) -> u64 {
        match self {
            Self::Created => 0,
            Self::Players => u64::MAX - u64::from(info.players),
            Self::TickP99 => u64::MAX - u64::from(ticks.tick_p99_us),
        }
    }
}

#[derive(Serialize)]
struct RoomRow {
    #[serde(flatten)]
    info: RoomInfo,
    ticks: TickSummary,
}

#[derive(Serialize)]
struct RoomsPage {
    node: String,
    rooms: Vec<RoomRow>,
    next_cursor: Option<String>,
}

fn node_name(state: &ApiState) -> String {
    state
        .gateway
        .cluster()
        .map_or_else(|| LOCAL.to_owned(), |cluster| cluster.node_id().to_string())
}

async fn rooms(
    state: web::Data<ApiState>,
    request: HttpRequest,
    query: web::Query<RoomsQuery>,
) -> Result<HttpResponse, ApiError> {
    state.authorize_operator(&request)?;
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let filter = query.q.unwrap_or_default();
    if filter.chars().count() > MAX_FILTER_CHARS {
        return Err(ApiError::invalid_request(format!(
            "q: at most {MAX_FILTER_CHARS} characters"
        )));
    }
    let after = match query.cursor.as_deref() {
        None => None,
        Some(text) => Some(RankedCursor::parse(text).ok_or_else(|| {
            ApiError::invalid_request("cursor: pass back a `next_cursor` exactly as received")
        })?),
    };
    let sort = query.sort.unwrap_or_default();
    let room_type = query.room_type.filter(|room_type| !room_type.is_empty());
    let (rows, next) = state.gateway.lobby().directory().ranked_page(
        |info| {
            room_type
                .as_ref()
                .is_none_or(|wanted| info.room_type == *wanted)
                && info.room_id.as_str().contains(filter.as_str())
        },
        |info, ticks| sort.rank(info, ticks),
        after.as_ref(),
        limit,
    );
    Ok(no_store(HttpResponse::Ok()).json(RoomsPage {
        node: node_name(&state),
        rooms: rows
            .into_iter()
            .map(|(info, ticks)| RoomRow { info, ticks })
            .collect(),
        next_cursor: next.as_ref().map(RankedCursor::encode),
    }))
}

#[derive(Serialize)]
struct RoomPage {
    node: String,
    room: RoomInfo,
    #[serde(flatten)]
    inspection: RoomInspection,
    /// The room's state as JSON, unless larger than [`crate::room::MAX_INSPECTED_STATE_BYTES`] or not
    /// expressible as JSON.
    state: Option<serde_json::Value>,
    /// Why `state` is missing, when it is.
    state_omitted: Option<String>,
}

async fn room(
    state: web::Data<ApiState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.authorize_operator(&request)?;
    let room_id = parse_room_id(&path)?;
    let lobby = state.gateway.lobby();
    let elsewhere = || {
        let holder = state
            .gateway
            .cluster()
            .and_then(|cluster| cluster.locate(&room_id))
            .map(|record| record.node);
        let message = match holder {
            Some(node) => format!("room `{room_id}` lives on node `{node}`: open its dashboard"),
            None => format!("room `{room_id}` does not exist"),
        };
        ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "room_not_found",
            message,
        )
    };
    let info = lobby.directory().info(&room_id).ok_or_else(elsewhere)?;
    let inspection = lobby.inspect(&room_id).await.map_err(|_| elsewhere())?;
    let (room_state, state_omitted) = match state_json(&inspection.snapshot) {
        Ok(json) => (Some(json), None),
        Err(why) => (None, Some(why)),
    };
    Ok(no_store(HttpResponse::Ok()).json(RoomPage {
        node: node_name(&state),
        room: info,
        inspection,
        state: room_state,
        state_omitted,
    }))
}

/// `DELETE /v1/rooms/{room_id}/players/{player_id}`: removes a player (close 4016).
async fn kick(
    state: web::Data<ApiState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    state.authorize_operator(&request)?;
    let (room_id, player_id) = path.into_inner();
    let room_id = parse_room_id(&room_id)?;
    let player = player_id
        .parse::<u64>()
        .map(PlayerId)
        .map_err(|_| ApiError::invalid_request("player_id: must be a player id (a number)"))?;
    let placed = state.gateway.kick(&room_id, player).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "room_id": room_id, "player_id": player.0, "node": placed.node, "region": placed.region,
    })))
}

/// Registers the dashboard's data routes and the kick route (operator routes).
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/v1/dashboard/overview", web::get().to(get_overview))
        .route("/v1/dashboard/stream", web::get().to(stream))
        .route("/v1/dashboard/rooms", web::get().to(rooms))
        .route("/v1/dashboard/rooms/{room_id}", web::get().to(room))
        .route(
            "/v1/rooms/{room_id}/players/{player_id}",
            web::delete().to(kick),
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_one_json_line_each() {
        let event = sse_event("overview", &serde_json::json!({"a": "x\ny"}));
        assert_eq!(&event[..], b"event: overview\ndata: {\"a\":\"x\\ny\"}\n\n");
    }

    #[test]
    fn sorts_rank_busiest_and_slowest_first() {
        let info = |players| RoomInfo {
            room_id: ludus_protocol::RoomId::parse("r-a").expect("valid id"),
            room_type: "arena".to_owned(),
            players,
            reserved: 0,
            max_players: 16,
            metadata: serde_json::Value::Null,
            state: serde_json::Value::Null,
            created_at_ms: 0,
            epoch: 1,
            restored_from_epoch: None,
        };
        let ticks = |p99| TickSummary {
            tick_p99_us: p99,
            ..TickSummary::default()
        };
        let players = RoomSort::Players;
        assert!(players.rank(&info(5), &ticks(0)) < players.rank(&info(2), &ticks(0)));
        let slow = RoomSort::TickP99;
        assert!(slow.rank(&info(0), &ticks(900)) < slow.rank(&info(0), &ticks(100)));
        assert_eq!(RoomSort::Created.rank(&info(9), &ticks(9)), 0);
    }
}
