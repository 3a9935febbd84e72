//! Routing: where a room is, where a new one goes, and acting on a room wherever it lives.
//!
//! Reads come from the replica (never waiting on NATS) and count only rooms whose node
//! incarnation is live ([`super::lease::Liveness::Live`]); writes to another node's room go
//! through [`super::rpc`]. Creation on this node is [`Cluster::create_here`] in [`super::claim`].

use super::directory::{self, RoomRecord};
use super::lease::Liveness;
use super::rpc::{NodeRequest, NodeResponse};
use super::{Cluster, ClusterError, Placed, PlacementExplanation, RegionStatus};
use crate::directory::RoomInfo;
use crate::lobby::{
    json_value, message_event, random_room_id, CreateRoom, Lobby, LobbyError, SeatFor, SeatGrant,
    MATCHMAKE_CANDIDATES,
};
use crate::paging::{Cursor, PageRequest};
use ludus_protocol::{Redirect, RoomId};
use ludus_regions::{Node, Placement, RegionName};
use std::time::Instant;

impl Cluster {
    /// A region name or alias, or the default region when absent.
    pub fn resolve_region(&self, hint: Option<&str>) -> Result<RegionName, ClusterError> {
        let regions = self.membership.regions();
        match hint.map(str::trim).filter(|hint| !hint.is_empty()) {
            None => Ok(regions.default_region().clone()),
            Some(hint) => regions
                .resolve_region(hint)
                .cloned()
                .ok_or_else(|| ClusterError::UnknownRegion(hint.to_owned())),
        }
    }

    /// The live record of a room anywhere in the cluster.
    pub fn locate(&self, room_id: &RoomId) -> Option<RoomRecord> {
        let (_, record) = self.replica.get(room_id)?;
        (self.replica.liveness(&record, Instant::now(), self.timing) == Liveness::Live)
            .then_some(record)
    }

    /// The room's live record, from the replica or, when the replica has not caught up yet
    /// (a room created a moment ago elsewhere), from the bucket itself.
    async fn locate_now(&self, room_id: &RoomId) -> Result<RoomRecord, ClusterError> {
        if let Some(record) = self.locate(room_id) {
            return Ok(record);
        }
        self.require_connection()?;
        let store = self.store().await?;
        let stored = directory::read(&store, &directory::room_key(room_id))
            .await
            .map_err(|_| ClusterError::Unavailable)?;
        stored
            .and_then(|(_, bytes)| RoomRecord::from_bytes(&bytes))
            .filter(|record| {
                self.replica.liveness(record, Instant::now(), self.timing) == Liveness::Live
            })
            .ok_or_else(|| LobbyError::RoomNotFound(room_id.clone()).into())
    }

    /// Where a client should go for a room this node does not hold.
    pub fn redirect_for(&self, room_id: &RoomId) -> Option<Redirect> {
        let record = self.locate(room_id)?;
        if self.is_mine(&record.node) {
            return None;
        }
        Some(Redirect {
            room: room_id.clone(),
            ws_url: self.ws_url(&record.node, room_id)?,
            node: record.node,
        })
    }

    /// One page of the cluster's live rooms matching the filters.
    pub fn list(
        &self,
        room_type: Option<&str>,
        region: Option<&str>,
        page: &PageRequest,
    ) -> Result<(Vec<RoomRecord>, Option<Cursor>), ClusterError> {
        self.require_connection()?;
        let region = region
            .map(|hint| self.resolve_region(Some(hint)))
            .transpose()?;
        Ok(self.replica.page(
            (Instant::now(), self.timing),
            |record| {
                room_type.is_none_or(|room_type| record.info.room_type == room_type)
                    && region
                        .as_ref()
                        .is_none_or(|region| record.region == region.as_str())
            },
            page,
        ))
    }

    pub(super) async fn create_on(
        &self,
        node_id: &str,
        request: CreateRoom,
        reserve: Option<SeatFor>,
        fresh: bool,
    ) -> Result<(RoomInfo, Option<SeatGrant>), ClusterError> {
        if self.is_mine(node_id) {
            let info = self.create_here(request, fresh).await?;
            let seat = match reserve {
                Some(seat_for) => Some(self.lobby.reserve_seat(&info.room_id, seat_for).await?),
                None => None,
            };
            return Ok((info, seat));
        }
        let ask = NodeRequest::Create {
            room_type: request.room_type,
            room_id: request.room_id.unwrap_or_default(),
            max_players: request.max_players,
            metadata: request.metadata,
            reserve,
            fresh,
        };
        match self.ask(node_id, &ask).await? {
            NodeResponse::Created { info, seat } => Ok((info, seat)),
            _ => Err(ClusterError::NodeUnavailable(node_id.to_owned())),
        }
    }

    /// Creates a room on the node placement picks for its id in the preferred region.
    pub async fn create(
        &self,
        mut request: CreateRoom,
        region_hint: Option<&str>,
    ) -> Result<Placed<RoomInfo>, ClusterError> {
        self.require_connection()?;
        let region = self.resolve_region(region_hint)?;
        let (room_id, fresh) = match &request.room_id {
            Some(id) => (RoomId::parse(id).map_err(LobbyError::from)?, false),
            None => (random_room_id(), true),
        };
        request.room_id = Some(room_id.to_string());
        // A node that does not answer may have died before membership noticed: the room goes
        // to the next node placement picks without it (D2), never to none while one lives.
        let mut placement = self.membership.view().placement.clone();
        loop {
            let decision = placement.place(room_id.as_str(), &region)?;
            match self
                .create_on(decision.node.as_str(), request.clone(), None, fresh)
                .await
            {
                Ok((info, _)) => {
                    return Ok(Placed {
                        value: info,
                        node: decision.node.to_string(),
                        region: decision.region.to_string(),
                        reason: decision.reason.to_string(),
                    })
                }
                Err(error) if try_another_node(&error) => {
                    tracing::warn!(node = %decision.node, %error, "placing the room elsewhere");
                    placement = placement.without(&decision.node);
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn reserve_on(
        &self,
        node_id: &str,
        room_id: &RoomId,
        seat: SeatFor,
    ) -> Result<SeatGrant, ClusterError> {
        if self.is_mine(node_id) {
            return Ok(self.lobby.reserve_seat(room_id, seat).await?);
        }
        let ask = NodeRequest::Reserve {
            room_id: room_id.to_string(),
            seat,
        };
        match self.ask(node_id, &ask).await? {
            NodeResponse::Reserved { seat } => Ok(seat),
            _ => Err(ClusterError::NodeUnavailable(node_id.to_owned())),
        }
    }

    /// Reserves a seat in a room wherever it lives.
    pub async fn reserve(
        &self,
        room_id: &RoomId,
        seat: SeatFor,
    ) -> Result<Placed<SeatGrant>, ClusterError> {
        let (node, region) = if self.lobby.directory().addr(room_id).is_some() {
            (
                self.settings.node.id.to_string(),
                self.settings.node.region.to_string(),
            )
        } else {
            let record = self.locate_now(room_id).await?;
            (record.node, record.region)
        };
        let seat = self.reserve_on(&node, room_id, seat).await?;
        Ok(Placed {
            value: seat,
            node,
            region,
            reason: "existing room".to_owned(),
        })
    }

    /// Joins an open room of `room_type` in the preferred region (or its fallbacks, in order),
    /// or creates one on the node placement picks.
    pub async fn matchmake(
        &self,
        room_type: &str,
        region_hint: Option<&str>,
        seat: SeatFor,
    ) -> Result<Placed<SeatGrant>, ClusterError> {
        if !self.lobby.has_room_type(room_type) {
            return Err(LobbyError::UnknownRoomType(room_type.to_owned()).into());
        }
        self.require_connection()?;
        let preferred = self.resolve_region(region_hint)?;
        let view = self.membership.view();
        let mut skipped: Vec<String> = Vec::new();
        let regions = self.membership.regions();
        for region in regions.fallback_order(&preferred) {
            let reason = if skipped.is_empty() {
                "preferred region".to_owned()
            } else {
                format!(
                    "fallback because {} had no live node or capacity",
                    skipped.join(", ")
                )
            };
            // Rooms on a draining node are about to move: a seat there would be reserved in a
            // room that stops for its handover any moment.
            let mut open = self.replica.list((Instant::now(), self.timing), |record| {
                record.region == region.as_str()
                    && record.info.room_type == room_type
                    && record.info.has_free_seat()
                    && !view
                        .draining
                        .iter()
                        .any(|node| node.as_str() == record.node)
            });
            open.sort_by_key(|record| std::cmp::Reverse(record.info.seats_taken()));
            for record in open.into_iter().take(MATCHMAKE_CANDIDATES) {
                match self
                    .reserve_on(&record.node, &record.info.room_id, seat.clone())
                    .await
                {
                    Ok(seat) => {
                        return Ok(Placed {
                            value: seat,
                            node: record.node,
                            region: record.region,
                            reason: format!("{reason}; existing room"),
                        })
                    }
                    Err(ClusterError::Lobby(_) | ClusterError::Remote { .. })
                    | Err(ClusterError::NodeUnavailable(_)) => continue,
                    Err(other) => return Err(other),
                }
            }
            let room_id = random_room_id();
            let request = CreateRoom {
                room_type: room_type.to_owned(),
                room_id: Some(room_id.to_string()),
                ..CreateRoom::default()
            };
            // Every live node of the region in turn, while they do not answer or are full: a
            // node that died a moment ago is still in the view (D2).
            let mut placement = view.placement.clone();
            while let Some(node) = placement.owner(room_id.as_str(), &region).cloned() {
                match self
                    .create_on(node.as_str(), request.clone(), Some(seat.clone()), true)
                    .await
                {
                    Ok((_, Some(seat))) => {
                        return Ok(Placed {
                            value: seat,
                            node: node.to_string(),
                            region: region.to_string(),
                            reason: format!("{reason}; new room"),
                        })
                    }
                    Ok((_, None)) => return Err(ClusterError::NodeUnavailable(node.to_string())),
                    Err(error) if try_another_node(&error) => {
                        tracing::warn!(%node, %error, "matchmaking on another node");
                        placement = placement.without(&node);
                    }
                    Err(error) => return Err(error),
                }
            }
            skipped.push(region.to_string());
        }
        Err(ClusterError::NoLiveNode {
            region: preferred.to_string(),
        })
    }

    /// Acts on a room wherever it lives: `here` when this node holds it, else `request` to the
    /// node that does.
    async fn on_room(
        &self,
        room_id: &RoomId,
        here: impl AsyncFnOnce(&Lobby) -> Result<(), LobbyError>,
        request: NodeRequest,
    ) -> Result<Placed<()>, ClusterError> {
        if self.lobby.directory().addr(room_id).is_some() {
            here(&self.lobby).await?;
            return Ok(Placed {
                value: (),
                node: self.settings.node.id.to_string(),
                region: self.settings.node.region.to_string(),
                reason: "local room".to_owned(),
            });
        }
        let record = self.locate_now(room_id).await?;
        self.ask(&record.node, &request).await?;
        Ok(Placed {
            value: (),
            node: record.node,
            region: record.region,
            reason: "existing room".to_owned(),
        })
    }

    /// Delivers `payload` to a room wherever it lives, in its next tick's `events` as
    /// `{"type": "message", "payload": ...}`.
    pub async fn send_to_room(
        &self,
        room_id: &RoomId,
        payload: serde_json::Value,
    ) -> Result<Placed<()>, ClusterError> {
        let event = message_event(payload);
        let local_event = json_value(&event);
        let request = NodeRequest::Deliver {
            room_id: room_id.to_string(),
            event,
        };
        self.on_room(
            room_id,
            async |lobby| lobby.deliver(room_id, local_event).await,
            request,
        )
        .await
    }

    /// Ends a room wherever it lives (members are closed with 4009).
    pub async fn dispose(&self, room_id: &RoomId) -> Result<Placed<()>, ClusterError> {
        let request = NodeRequest::Dispose {
            room_id: room_id.to_string(),
        };
        self.on_room(room_id, async |lobby| lobby.dispose(room_id), request)
            .await
    }

    /// Removes a player from a room wherever it lives (its connection is closed with 4016).
    pub async fn kick(
        &self,
        room_id: &RoomId,
        player: ludus_protocol::PlayerId,
    ) -> Result<Placed<()>, ClusterError> {
        let request = NodeRequest::Kick {
            room_id: room_id.to_string(),
            player: player.0,
        };
        self.on_room(
            room_id,
            async |lobby| lobby.kick(room_id, player).await,
            request,
        )
        .await
    }

    /// Regions with their live node counts.
    pub fn regions(&self) -> Vec<RegionStatus> {
        let view = self.membership.view();
        let regions = self.membership.regions();
        regions
            .regions()
            .map(|region| {
                let nodes: Vec<&Node> = regions.nodes_in(&region.name).collect();
                let live: Vec<&&Node> = nodes
                    .iter()
                    .filter(|node| view.live.contains(&node.id))
                    .collect();
                RegionStatus {
                    name: region.name.to_string(),
                    aliases: region.aliases.clone(),
                    nodes: nodes.len(),
                    live_nodes: live.len(),
                    ping_url: live.first().map(|node| {
                        format!("{}/v1/ping", node.http_url.as_str().trim_end_matches('/'))
                    }),
                    default: &region.name == regions.default_region(),
                }
            })
            .collect()
    }

    /// Where `room_id` is or would be placed, and why.
    pub fn explain(
        &self,
        room_id: &RoomId,
        region_hint: Option<&str>,
    ) -> Result<PlacementExplanation, ClusterError> {
        let region = self.resolve_region(region_hint)?;
        let ring_owner = Placement::with_all_nodes(&self.membership.regions())
            .owner(room_id.as_str(), &region)
            .map(ToString::to_string);
        let view = self.membership.view();
        let (placed_on, placed_region, mut reason) =
            match view.placement.place(room_id.as_str(), &region) {
                Ok(decision) => (
                    Some(decision.node.to_string()),
                    Some(decision.region.to_string()),
                    decision.reason.to_string(),
                ),
                Err(error) => (None, None, error.to_string()),
            };
        if let (Some(owner), Some(placed)) = (&ring_owner, &placed_on) {
            if owner != placed && placed_region.as_deref() == Some(region.as_str()) {
                reason = format!("{reason}; ring owner `{owner}` is down");
            }
        }
        let lease = self.locate(room_id);
        if let Some(lease) = &lease {
            reason = format!(
                "{reason}; the room exists and stays on its lease holder `{}`",
                lease.node
            );
        }
        Ok(PlacementExplanation {
            room_id: room_id.clone(),
            region: region.to_string(),
            ring_owner,
            placed_on,
            placed_region,
            reason,
            lease_holder: lease.as_ref().map(|record| record.node.clone()),
            epoch: lease.map(|record| record.epoch),
        })
    }
}

/// Whether a creation refused by one node should go to the next one placement picks: the node
/// did not answer (it may have died before membership noticed) or holds its maximum of rooms.
pub(super) fn try_another_node(error: &ClusterError) -> bool {
    matches!(
        error.code(),
        "at_capacity" | "node_unavailable" | "node_draining"
    )
}
