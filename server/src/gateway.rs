//! What the HTTP API talks to: this node's lobby alone, or the cluster around it.
//!
//! Handlers call one set of methods and never branch on the deployment; single-node answers
//! carry `node: "local"`, `region: "local"`, so clients parse one shape either way.

use crate::cluster::{Cluster, ClusterError, Placed, PlacementExplanation, RegionStatus};
use crate::directory::RoomInfo;
use crate::lobby::{
    announcement_event, json_value, message_event, CreateRoom, Lobby, SeatFor, SeatGrant,
};
use crate::paging::{Cursor, PageRequest};
use ludus_protocol::RoomId;
use serde::Serialize;
use std::sync::Arc;

/// The node and region name of a node running alone.
pub const LOCAL: &str = "local";

/// A room in a listing, with where it lives.
#[derive(Debug, Clone, Serialize)]
pub struct ListedRoom {
    /// The room's listing.
    #[serde(flatten)]
    pub info: RoomInfo,
    /// The node hosting it.
    pub node: String,
    /// That node's region.
    pub region: String,
}

/// The lobby, optionally inside a cluster.
#[derive(Clone)]
pub struct Gateway {
    lobby: Arc<Lobby>,
    cluster: Option<Arc<Cluster>>,
}

fn local<T>(value: T, reason: &str) -> Placed<T> {
    Placed {
        value,
        node: LOCAL.to_owned(),
        region: LOCAL.to_owned(),
        reason: reason.to_owned(),
    }
}

fn check_local_region(region: Option<&str>) -> Result<(), ClusterError> {
    match region.map(str::trim).filter(|region| !region.is_empty()) {
        None | Some(LOCAL) => Ok(()),
        Some(other) => Err(ClusterError::UnknownRegion(other.to_owned())),
    }
}

impl Gateway {
    /// A gateway over `lobby`, clustered when `cluster` is given.
    pub fn new(lobby: Arc<Lobby>, cluster: Option<Arc<Cluster>>) -> Self {
        Self { lobby, cluster }
    }

    /// The local lobby.
    pub fn lobby(&self) -> &Arc<Lobby> {
        &self.lobby
    }

    /// The cluster, if any.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    /// Creates a room (on its placed node, in a cluster).
    pub async fn create(
        &self,
        request: CreateRoom,
        region: Option<&str>,
    ) -> Result<Placed<RoomInfo>, ClusterError> {
        match &self.cluster {
            Some(cluster) => cluster.create(request, region).await,
            None => {
                check_local_region(region)?;
                Ok(local(self.lobby.create_room(request)?, "local node"))
            }
        }
    }

    /// One page of rooms, filtered by type and region, and the next page's cursor.
    pub fn list(
        &self,
        room_type: Option<&str>,
        region: Option<&str>,
        page: &PageRequest,
    ) -> Result<(Vec<ListedRoom>, Option<Cursor>), ClusterError> {
        match &self.cluster {
            Some(cluster) => {
                let (records, next) = cluster.list(room_type, region, page)?;
                let rooms = records
                    .into_iter()
                    .map(|record| ListedRoom {
                        info: record.info,
                        node: record.node,
                        region: record.region,
                    })
                    .collect();
                Ok((rooms, next))
            }
            None => {
                check_local_region(region)?;
                let (rooms, next) = self.lobby.directory().page(
                    |info| room_type.is_none_or(|room_type| info.room_type == room_type),
                    page,
                );
                let rooms = rooms
                    .into_iter()
                    .map(|info| ListedRoom {
                        info,
                        node: LOCAL.to_owned(),
                        region: LOCAL.to_owned(),
                    })
                    .collect();
                Ok((rooms, next))
            }
        }
    }

    /// Reserves a seat in a given room.
    pub async fn reserve(
        &self,
        room_id: &RoomId,
        seat: SeatFor,
    ) -> Result<Placed<SeatGrant>, ClusterError> {
        match &self.cluster {
            Some(cluster) => cluster.reserve(room_id, seat).await,
            None => Ok(local(
                self.lobby.reserve_seat(room_id, seat).await?,
                "existing room",
            )),
        }
    }

    /// Joins or creates a room of `room_type`.
    pub async fn matchmake(
        &self,
        room_type: &str,
        region: Option<&str>,
        seat: SeatFor,
    ) -> Result<Placed<SeatGrant>, ClusterError> {
        match &self.cluster {
            Some(cluster) => cluster.matchmake(room_type, region, seat).await,
            None => {
                check_local_region(region)?;
                Ok(local(
                    self.lobby.matchmake(room_type, seat).await?,
                    "local node",
                ))
            }
        }
    }

    /// Sends a message into a room's next tick.
    pub async fn send_to_room(
        &self,
        room_id: &RoomId,
        payload: serde_json::Value,
    ) -> Result<Placed<()>, ClusterError> {
        match &self.cluster {
            Some(cluster) => cluster.send_to_room(room_id, payload).await,
            None => {
                self.lobby
                    .deliver(room_id, json_value(&message_event(payload)))
                    .await?;
                Ok(local((), "local room"))
            }
        }
    }

    /// Ends a room; its members are closed with `room_disposed` (4009).
    pub async fn dispose(&self, room_id: &RoomId) -> Result<Placed<()>, ClusterError> {
        match &self.cluster {
            Some(cluster) => cluster.dispose(room_id).await,
            None => {
                self.lobby.dispose(room_id)?;
                Ok(local((), "local room"))
            }
        }
    }

    /// Removes a player from a room; its connection is closed with `kicked` (4016).
    pub async fn kick(
        &self,
        room_id: &RoomId,
        player: ludus_protocol::PlayerId,
    ) -> Result<Placed<()>, ClusterError> {
        match &self.cluster {
            Some(cluster) => cluster.kick(room_id, player).await,
            None => {
                self.lobby.kick(room_id, player).await?;
                Ok(local((), "local room"))
            }
        }
    }

    /// Broadcasts an announcement to every room of a region; returns the region.
    pub async fn announce(
        &self,
        region: &str,
        payload: serde_json::Value,
    ) -> Result<String, ClusterError> {
        match &self.cluster {
            Some(cluster) => cluster.announce(region, payload).await,
            None => {
                check_local_region(Some(region))?;
                let event = announcement_event(LOCAL, payload);
                self.lobby.deliver_to_all(&json_value(&event));
                Ok(LOCAL.to_owned())
            }
        }
    }

    /// Regions and their live nodes.
    pub fn regions(&self) -> Vec<RegionStatus> {
        match &self.cluster {
            Some(cluster) => cluster.regions(),
            None => vec![RegionStatus {
                name: LOCAL.to_owned(),
                aliases: Vec::new(),
                nodes: 1,
                live_nodes: 1,
                ping_url: None,
                default: true,
            }],
        }
    }

    /// Explains a placement (clusters only).
    pub fn explain(
        &self,
        room_id: &RoomId,
        region: Option<&str>,
    ) -> Result<PlacementExplanation, ClusterError> {
        match &self.cluster {
            Some(cluster) => cluster.explain(room_id, region),
            None => {
                check_local_region(region)?;
                let exists = self.lobby.directory().info(room_id);
                Ok(PlacementExplanation {
                    room_id: room_id.clone(),
                    region: LOCAL.to_owned(),
                    ring_owner: Some(LOCAL.to_owned()),
                    placed_on: Some(LOCAL.to_owned()),
                    placed_region: Some(LOCAL.to_owned()),
                    reason: "single node: every room lives here".to_owned(),
                    lease_holder: exists.as_ref().map(|_| LOCAL.to_owned()),
                    epoch: exists.map(|info| info.epoch),
                })
            }
        }
    }

    /// The room's WebSocket URL on `node`, when that node is known to the cluster.
    pub fn cluster_ws_url(&self, node: &str, room_id: &RoomId) -> Option<String> {
        self.cluster.as_ref()?.ws_url(node, room_id)
    }

    /// Whether the node's lobby is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.lobby.is_shutting_down()
    }
}
