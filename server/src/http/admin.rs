//! Node administration: `POST /v1/admin/drain` moves every room of this node to its next owner
//! (see [`crate::cluster::drain`]) so the node can be stopped without ending a game.

use super::{ApiError, ApiState};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

/// Registers the admin routes (operator token required).
pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/v1/admin/drain", web::post().to(drain));
}

/// Why a node cannot drain, when it cannot; shown on the dashboard too.
pub fn drain_unavailable(state: &ApiState) -> Option<&'static str> {
    if state.gateway.cluster().is_none() {
        return Some("a single node has nowhere to move its rooms: run a cluster to drain");
    }
    None
}

/// Starts draining (idempotent): 202 with the rooms still here; 409 `not_clustered` alone.
async fn drain(state: web::Data<ApiState>, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    state.authorize_operator(&request)?;
    let (Some(cluster), None) = (state.gateway.cluster(), drain_unavailable(&state)) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_clustered",
            drain_unavailable(&state).unwrap_or_default(),
        ));
    };
    let status = cluster.start_drain();
    Ok(HttpResponse::Accepted().json(status))
}
