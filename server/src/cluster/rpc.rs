//! Node-to-node requests over NATS request/reply, as JSON.
//!
//! Each node answers on `ludus.node.<node_id>.rpc`. Requests are few and small (create a room,
//! reserve a seat, deliver an event); a missing responder means the node is down, a timeout that
//! it is overloaded or partitioned. Errors travel as the lobby's stable `{code, message}` pair so
//! the asking node can answer its HTTP client exactly as the owning node would have.
//!
//! A draining node sends [`NodeRequest::TakeOver`] with a stopped room's exact state to the
//! room's next owner, which answers after its claim ([`super::drain`]).

use super::{Cluster, ClusterError};
use crate::directory::RoomInfo;
use crate::lobby::{announcement_event, json_value, CreateRoom, LobbyError, SeatFor, SeatGrant};
use futures_util::StreamExt;
use ludus_protocol::{PlayerId, RoomId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The subject a node answers requests on.
pub fn node_subject(node_id: &str) -> String {
    format!("ludus.node.{node_id}.rpc")
}

/// The subject regional announcements are published on.
pub fn announce_subject(region: &str) -> String {
    format!("ludus.region.{region}.announce")
}

/// The subject heartbeats are published on.
pub const HEARTBEAT_SUBJECT: &str = "ludus.heartbeat";

/// A request to another node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum NodeRequest {
    /// Create a room here (claiming its lease), optionally reserving a first seat.
    Create {
        /// Room type.
        room_type: String,
        /// The room id chosen by the placing node.
        room_id: String,
        /// Seats, if not the type's default.
        max_players: Option<u32>,
        /// Listing metadata.
        metadata: serde_json::Value,
        /// Also reserve a first seat (matchmaking).
        reserve: Option<SeatFor>,
        /// The id was drawn at random by the placing node, so no live room can hold it and the
        /// claim need not wait for a settled directory.
        #[serde(default)]
        fresh: bool,
    },
    /// Reserve a seat in a room hosted here.
    Reserve {
        /// The room.
        room_id: String,
        /// Who the seat is for (`name`, and `player` when the lobby knows the player).
        #[serde(flatten)]
        seat: SeatFor,
    },
    /// End a room hosted here.
    Dispose {
        /// The room.
        room_id: String,
    },
    /// Remove a player from a room hosted here (close 4016).
    Kick {
        /// The room.
        room_id: String,
        /// The player.
        player: u64,
    },
    /// Deliver an event into a room hosted here.
    Deliver {
        /// The room.
        room_id: String,
        /// The event, as JSON.
        event: serde_json::Value,
    },
    /// Take over a room a draining node stopped at a tick boundary.
    TakeOver {
        /// The room.
        room_id: String,
        /// The draining node.
        from: String,
        /// Its incarnation (the directory entry must still name it).
        incarnation: u64,
        /// The entry's revision when the room stopped (the claim must find it unchanged).
        revision: u64,
        /// The room's exact state: its checkpoint, base64 (standard alphabet, padded).
        state: String,
    },
}

/// The answer to a [`NodeRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum NodeResponse {
    /// A room was created (and maybe a seat reserved).
    Created {
        /// The room's listing.
        info: RoomInfo,
        /// The seat, when one was asked for.
        seat: Option<SeatGrant>,
    },
    /// A seat was reserved.
    Reserved {
        /// The seat.
        seat: SeatGrant,
    },
    /// The event was queued for the room's next tick, or the room was told to end.
    Done,
    /// The request failed with a lobby error code.
    Failed {
        /// Stable code (`room_full`, `room_not_found`, ...).
        code: String,
        /// Human-readable explanation.
        message: String,
    },
}

impl Cluster {
    pub(super) async fn ask(
        &self,
        node_id: &str,
        request: &NodeRequest,
    ) -> Result<NodeResponse, ClusterError> {
        self.require_connection()?;
        // expect: the request enums are plain data and always serialize.
        let payload = serde_json::to_vec(request).expect("requests serialize");
        let answer = tokio::time::timeout(
            self.settings.request_timeout,
            self.client.request(node_subject(node_id), payload.into()),
        )
        .await
        .map_err(|_| ClusterError::NodeUnavailable(node_id.to_owned()))?
        .map_err(|_| ClusterError::NodeUnavailable(node_id.to_owned()))?;
        let response: NodeResponse = serde_json::from_slice(&answer.payload)
            .map_err(|_| ClusterError::NodeUnavailable(node_id.to_owned()))?;
        match response {
            NodeResponse::Failed { code, message } => Err(ClusterError::Remote { code, message }),
            other => Ok(other),
        }
    }

    /// Broadcasts `payload` to every room of `region`, as `{"type": "announcement", ...}`.
    pub async fn announce(
        &self,
        region: &str,
        payload: serde_json::Value,
    ) -> Result<String, ClusterError> {
        self.require_connection()?;
        let region = self.resolve_region(Some(region))?;
        let event = announcement_event(region.as_str(), payload);
        // expect: a JSON value always serializes.
        let bytes = serde_json::to_vec(&event).expect("JSON serializes");
        self.client
            .publish(announce_subject(region.as_str()), bytes.into())
            .await
            .map_err(|_| ClusterError::Unavailable)?;
        Ok(region.to_string())
    }

    pub(super) async fn request_loop(self: Arc<Self>) {
        let subject = node_subject(self.settings.node.id.as_str());
        let Ok(mut requests) = self.client.subscribe(subject).await else {
            tracing::error!("cannot subscribe to node requests");
            return;
        };
        while let Some(message) = requests.next().await {
            let Some(reply) = message.reply.clone() else {
                continue;
            };
            let cluster = Arc::clone(&self);
            actix_rt::spawn(async move {
                let response = match serde_json::from_slice::<NodeRequest>(&message.payload) {
                    Ok(request) => cluster.answer(request).await,
                    Err(error) => NodeResponse::Failed {
                        code: "invalid_request".to_owned(),
                        message: error.to_string(),
                    },
                };
                // expect: responses are plain data and always serialize.
                let payload = serde_json::to_vec(&response).expect("responses serialize");
                if let Err(error) = cluster.client.publish(reply, payload.into()).await {
                    tracing::debug!(%error, "reply not sent");
                }
            });
        }
    }

    async fn answer(&self, request: NodeRequest) -> NodeResponse {
        let failed = |error: ClusterError| NodeResponse::Failed {
            code: error.code().to_owned(),
            message: error.to_string(),
        };
        match request {
            NodeRequest::Create {
                room_type,
                room_id,
                max_players,
                metadata,
                reserve,
                fresh,
            } => {
                let request = CreateRoom {
                    room_type,
                    room_id: Some(room_id),
                    max_players,
                    metadata,
                    epoch: None,
                };
                let node = self.settings.node.id.to_string();
                match self.create_on(&node, request, reserve, fresh).await {
                    Ok((info, seat)) => NodeResponse::Created { info, seat },
                    Err(error) => failed(error),
                }
            }
            NodeRequest::Reserve { room_id, seat } => {
                let reserved = match RoomId::parse(&room_id) {
                    Ok(room_id) => self.lobby.reserve_seat(&room_id, seat).await,
                    Err(error) => Err(error.into()),
                };
                match reserved {
                    Ok(seat) => NodeResponse::Reserved { seat },
                    Err(error) => failed(error.into()),
                }
            }
            NodeRequest::Dispose { room_id } => {
                let disposed = RoomId::parse(&room_id)
                    .map_err(LobbyError::from)
                    .and_then(|room_id| self.lobby.dispose(&room_id));
                match disposed {
                    Ok(()) => NodeResponse::Done,
                    Err(error) => failed(error.into()),
                }
            }
            NodeRequest::Kick { room_id, player } => {
                let kicked = match RoomId::parse(&room_id) {
                    Ok(room_id) => self.lobby.kick(&room_id, PlayerId(player)).await,
                    Err(invalid) => Err(LobbyError::from(invalid)),
                };
                match kicked {
                    Ok(()) => NodeResponse::Done,
                    Err(error) => failed(error.into()),
                }
            }
            NodeRequest::TakeOver {
                room_id,
                from,
                incarnation,
                revision,
                state,
            } => {
                let taken = match RoomId::parse(&room_id) {
                    Ok(room_id) => {
                        self.take_over(&room_id, &from, incarnation, revision, &state)
                            .await
                    }
                    Err(invalid) => Err(LobbyError::from(invalid).into()),
                };
                match taken {
                    Ok(info) => NodeResponse::Created { info, seat: None },
                    Err(error) => failed(error),
                }
            }
            NodeRequest::Deliver { room_id, event } => {
                let delivered = match RoomId::parse(&room_id) {
                    Ok(room_id) => self.lobby.deliver(&room_id, json_value(&event)).await,
                    Err(invalid) => Err(LobbyError::from(invalid)),
                };
                match delivered {
                    Ok(()) => NodeResponse::Done,
                    Err(error) => failed(error.into()),
                }
            }
        }
    }

    pub(super) async fn announce_loop(self: Arc<Self>) {
        let subject = announce_subject(self.settings.node.region.as_str());
        let Ok(mut announcements) = self.client.subscribe(subject).await else {
            tracing::error!("cannot subscribe to regional announcements");
            return;
        };
        while let Some(message) = announcements.next().await {
            if let Ok(event) = serde_json::from_slice::<serde_json::Value>(&message.payload) {
                let rooms = self.lobby.deliver_to_all(&json_value(&event));
                tracing::info!(rooms, "announcement delivered");
            }
        }
    }
}
