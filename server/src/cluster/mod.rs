//! Running several nodes as one cluster over NATS.
//!
//! - **Membership** ([`membership`]): heartbeats on `ludus.heartbeat`; a silent node leaves
//!   every node's live set, and so every placement ring, within the configured node timeout.
//! - **Directory** ([`directory`]): one leased JetStream KV entry per room (compare-and-swap on
//!   create and renew), replicated on every node by a watch, so any node lists the whole cluster
//!   and routes to a room's holder without asking anyone.
//! - **Requests** ([`rpc`]): create a room on its placed node, reserve a seat, deliver an event;
//!   regional announcements are published to every node of a region.
//!
//! Placement ([`ludus_regions::Placement`]) decides where *new* rooms go; the directory is
//! authoritative for rooms that exist. NATS being down never stops a room: the node keeps
//! serving what it holds, cluster operations answer `cluster_unavailable` (HTTP 503), and the
//! client reconnects by itself, after which leases are renewed (or re-created) and the replica is
//! rebuilt.
//!
//! Talks to NATS the way async-nats is built to be used: one cloneable client whose connection
//! task owns the socket, and a few long-lived tasks here that each own one loop.

pub mod directory;
pub mod membership;
pub mod rpc;

use crate::config::ServerConfig;
use crate::directory::RoomInfo;
use crate::lobby::{
    announcement_event, json_value, message_event, random_room_id, unix_millis, CreateRoom, Lobby,
    LobbyError, SeatFor, SeatGrant, MATCHMAKE_CANDIDATES,
};
use crate::metrics::Metrics;
use crate::paging::{Cursor, PageRequest};
use crate::room::CloseRoom;
use async_nats::jetstream::{self, kv};
use directory::{Claim, Renewal, Replica, RoomRecord};
use futures_util::StreamExt;
use ludus_protocol::{CloseCode, Redirect, RoomId};
use ludus_regions::{Node, NodeId, Placement, PlacementError, RegionConfig, RegionName};
use membership::{Heartbeat, Membership};
use rpc::{NodeRequest, NodeResponse};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;

/// How often leases are checked (renewals happen every third of the lease; listing changes are
/// published at this pace).
const LEASE_ROUND: Duration = Duration::from_millis(250);
/// Pause before retrying a broken watch or bucket.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Everything a node needs to join a cluster, read from its config and region file.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// This node.
    pub node: Node,
    /// The region file, parsed and validated.
    pub regions: Arc<RegionConfig>,
    /// Where NATS is.
    pub nats_url: String,
    /// Lease on room entries.
    pub lease: Duration,
    /// Longest wait for another node.
    pub request_timeout: Duration,
}

/// Why the cluster settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum ClusterSetupError {
    /// The region file is invalid (its error names file, line and field).
    #[error(transparent)]
    Regions(#[from] ludus_regions::ConfigError),
    /// The node id is not in the region file.
    #[error("cluster.node_id: node `{node}` is not in {file}")]
    UnknownNode {
        /// The configured id.
        node: String,
        /// The region file.
        file: PathBuf,
    },
    /// The region file has no NATS URL.
    #[error("{file}: cluster.nats_url: a cluster needs a NATS URL")]
    NoNatsUrl {
        /// The region file.
        file: PathBuf,
    },
}

impl ClusterSettings {
    /// Reads the region file named by `config`; `None` when the node runs alone.
    pub fn from_config(config: &ServerConfig) -> Result<Option<Self>, ClusterSetupError> {
        let (Some(file), Some(node_id)) = (&config.cluster.regions_file, &config.cluster.node_id)
        else {
            return Ok(None);
        };
        let regions = ludus_regions::load(file)?;
        let node = regions
            .nodes()
            .iter()
            .find(|node| node.id.as_str() == node_id)
            .cloned()
            .ok_or_else(|| ClusterSetupError::UnknownNode {
                node: node_id.clone(),
                file: file.clone(),
            })?;
        let nats_url = regions
            .cluster()
            .nats_url
            .as_ref()
            .map(|url| url.to_string())
            .ok_or_else(|| ClusterSetupError::NoNatsUrl { file: file.clone() })?;
        Ok(Some(Self {
            node,
            regions: Arc::new(regions),
            nats_url,
            lease: Duration::from_millis(config.cluster.lease_ms),
            request_timeout: Duration::from_millis(config.cluster.request_timeout_ms),
        }))
    }
}

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// NATS is unreachable.
    #[error("the cluster is unavailable: NATS is unreachable")]
    Unavailable,
    /// A node did not answer.
    #[error("node `{0}` did not answer")]
    NodeUnavailable(String),
    /// The region is not in the region file.
    #[error("unknown region `{0}`")]
    UnknownRegion(String),
    /// No live node can take the room.
    #[error("no live node in region `{region}` or its fallbacks")]
    NoLiveNode {
        /// The preferred region.
        region: String,
    },
    /// The owning node refused, with its lobby code.
    #[error("{message}")]
    Remote {
        /// The lobby error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// This node's lobby refused.
    #[error(transparent)]
    Lobby(#[from] LobbyError),
}

impl ClusterError {
    /// Stable code for JSON errors.
    pub fn code(&self) -> &str {
        match self {
            Self::Unavailable => "cluster_unavailable",
            Self::NodeUnavailable(_) => "node_unavailable",
            Self::UnknownRegion(_) => "unknown_region",
            Self::NoLiveNode { .. } => "no_live_node",
            Self::Remote { code, .. } => code,
            Self::Lobby(error) => error.code(),
        }
    }
}

impl From<PlacementError> for ClusterError {
    fn from(error: PlacementError) -> Self {
        match error {
            PlacementError::UnknownRegion { region } => Self::UnknownRegion(region.to_string()),
            PlacementError::NoLiveNode { region, .. } => Self::NoLiveNode {
                region: region.to_string(),
            },
        }
    }
}

/// A result together with where it happened.
#[derive(Debug, Clone, Serialize)]
pub struct Placed<T> {
    /// The result.
    pub value: T,
    /// The node that hosts the room.
    pub node: String,
    /// That node's region.
    pub region: String,
    /// Why there (`preferred region`, `fallback because ...`, `existing room`).
    pub reason: String,
}

/// A region as `GET /v1/regions` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RegionStatus {
    /// Region name.
    pub name: String,
    /// Aliases (country or edge codes).
    pub aliases: Vec<String>,
    /// Nodes configured.
    pub nodes: usize,
    /// Nodes live now.
    pub live_nodes: usize,
    /// A cheap endpoint on a live node of the region, for clients to measure latency.
    pub ping_url: Option<String>,
    /// Whether matchmaking without a preference uses this region.
    pub default: bool,
}

/// `GET /v1/placement`: where a room is or would go, and why.
#[derive(Debug, Clone, Serialize)]
pub struct PlacementExplanation {
    /// The room id.
    pub room_id: RoomId,
    /// The preferred region.
    pub region: String,
    /// The ring's owner in that region with every configured node up.
    pub ring_owner: Option<String>,
    /// Where a new room with this id would be created now.
    pub placed_on: Option<String>,
    /// The region it would be created in.
    pub placed_region: Option<String>,
    /// Why.
    pub reason: String,
    /// The node holding the room's lease, if the room exists.
    pub lease_holder: Option<String>,
    /// The room's epoch, if it exists.
    pub epoch: Option<u64>,
}

/// The open bucket, or when opening it last failed (so callers answer 503 at once instead of
/// queueing behind another slow attempt).
#[derive(Default)]
struct BucketHandle {
    open: Option<kv::Store>,
    failed_at: Option<Instant>,
}

struct Lease {
    revision: u64,
    published: RoomInfo,
    renewed_at: Instant,
}

/// This node's membership in the cluster.
pub struct Cluster {
    settings: ClusterSettings,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    store: tokio::sync::Mutex<BucketHandle>,
    /// Serializes lease rounds with room creation and with leaving, so a lease is never
    /// released for a room being started, nor renewed after the goodbye.
    round: tokio::sync::Mutex<()>,
    /// Rooms told to stop because another node holds their lease; not renewed while closing.
    fenced: Mutex<HashSet<RoomId>>,
    /// The background tasks, aborted when the node leaves.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    lobby: Arc<Lobby>,
    metrics: Metrics,
    membership: Membership,
    replica: Replica,
    leases: Mutex<HashMap<RoomId, Lease>>,
    reconnected: Arc<Notify>,
    leaving: AtomicBool,
}

impl Cluster {
    /// Connects to NATS (retrying in the background if it is down) and starts the cluster's
    /// tasks on the current actix system.
    pub async fn start(
        settings: ClusterSettings,
        lobby: Arc<Lobby>,
    ) -> Result<Arc<Self>, async_nats::ConnectError> {
        let reconnected = Arc::new(Notify::new());
        let on_event = Arc::clone(&reconnected);
        let node_id = settings.node.id.to_string();
        let client = async_nats::ConnectOptions::new()
            .name(format!("ludus-{node_id}"))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((100 * attempts as u64).min(1_000))
            })
            .event_callback(move |event| {
                let on_event = Arc::clone(&on_event);
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("connected to NATS");
                            on_event.notify_one();
                        }
                        async_nats::Event::Disconnected => tracing::warn!("lost NATS"),
                        other => tracing::debug!(event = %other, "NATS event"),
                    }
                }
            })
            .connect(settings.nats_url.as_str())
            .await?;
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(settings.request_timeout);
        let metrics = lobby.metrics().clone();
        metrics.cluster_nodes.set(1);
        let membership = Membership::new(
            settings.node.id.clone(),
            Arc::clone(&settings.regions),
            settings.regions.cluster().node_timeout,
        );
        let cluster = Arc::new(Self {
            settings,
            client,
            jetstream,
            store: tokio::sync::Mutex::new(BucketHandle::default()),
            round: tokio::sync::Mutex::new(()),
            fenced: Mutex::new(HashSet::new()),
            tasks: Mutex::new(Vec::new()),
            lobby,
            metrics,
            membership,
            replica: Replica::default(),
            leases: Mutex::new(HashMap::new()),
            reconnected,
            leaving: AtomicBool::new(false),
        });
        let tasks = vec![
            actix_rt::spawn(Arc::clone(&cluster).heartbeat_loop()),
            actix_rt::spawn(Arc::clone(&cluster).heartbeat_listener()),
            actix_rt::spawn(Arc::clone(&cluster).lease_loop()),
            actix_rt::spawn(Arc::clone(&cluster).watch_loop()),
            actix_rt::spawn(Arc::clone(&cluster).request_loop()),
            actix_rt::spawn(Arc::clone(&cluster).announce_loop()),
        ];
        *cluster
            .tasks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = tasks;
        tracing::info!(node = %node_id, region = %cluster.settings.node.region, "joining cluster");
        Ok(cluster)
    }

    /// This node's id.
    pub fn node_id(&self) -> &NodeId {
        &self.settings.node.id
    }

    /// This node's region.
    pub fn region(&self) -> &RegionName {
        &self.settings.node.region
    }

    /// Whether NATS is reachable right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn require_connection(&self) -> Result<(), ClusterError> {
        if self.is_connected() {
            Ok(())
        } else {
            Err(ClusterError::Unavailable)
        }
    }

    fn node(&self, node_id: &str) -> Option<&Node> {
        self.settings
            .regions
            .nodes()
            .iter()
            .find(|node| node.id.as_str() == node_id)
    }

    /// The WebSocket URL of `room_id` on `node_id`.
    pub fn ws_url(&self, node_id: &str, room_id: &RoomId) -> Option<String> {
        let base = self
            .node(node_id)?
            .ws_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        Some(format!("{base}/v1/rooms/{room_id}/ws"))
    }

    fn is_mine(&self, node_id: &str) -> bool {
        self.settings.node.id.as_str() == node_id
    }

    /// A region name or alias, or the default region when absent.
    pub fn resolve_region(&self, hint: Option<&str>) -> Result<RegionName, ClusterError> {
        let regions = &self.settings.regions;
        match hint.map(str::trim).filter(|hint| !hint.is_empty()) {
            None => Ok(regions.default_region().clone()),
            Some(hint) => regions
                .resolve_region(hint)
                .cloned()
                .ok_or_else(|| ClusterError::UnknownRegion(hint.to_owned())),
        }
    }

    fn is_fresh(&self, record: &RoomRecord) -> bool {
        let lease_ms = u64::try_from(self.settings.lease.as_millis()).unwrap_or(u64::MAX);
        let age = unix_millis(SystemTime::now()).saturating_sub(record.renewed_at_ms);
        self.membership.is_live(&record.node) && age <= lease_ms.saturating_mul(2)
    }

    /// The live record of a room anywhere in the cluster.
    pub fn locate(&self, room_id: &RoomId) -> Option<RoomRecord> {
        self.replica
            .get(room_id)
            .filter(|record| self.is_fresh(record))
    }

    /// The room's live record, from the replica or, when the replica has not caught up yet
    /// (a room created a moment ago elsewhere), from the bucket itself.
    async fn locate_now(&self, room_id: &RoomId) -> Result<RoomRecord, ClusterError> {
        if let Some(record) = self.locate(room_id) {
            return Ok(record);
        }
        self.require_connection()?;
        let store = self.store().await?;
        let stored = store
            .get(room_id.as_str())
            .await
            .map_err(|_| ClusterError::Unavailable)?;
        stored
            .as_deref()
            .and_then(RoomRecord::from_bytes)
            .filter(|record| self.is_fresh(record))
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
            |record| {
                self.is_fresh(record)
                    && room_type.is_none_or(|room_type| record.info.room_type == room_type)
                    && region
                        .as_ref()
                        .is_none_or(|region| record.region == region.as_str())
            },
            page,
        ))
    }

    async fn ask(
        &self,
        node_id: &str,
        request: &NodeRequest,
    ) -> Result<NodeResponse, ClusterError> {
        self.require_connection()?;
        // expect: the request enums are plain data and always serialize.
        let payload = serde_json::to_vec(request).expect("requests serialize");
        let answer = tokio::time::timeout(
            self.settings.request_timeout,
            self.client
                .request(rpc::node_subject(node_id), payload.into()),
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

    async fn store(&self) -> Result<kv::Store, ClusterError> {
        let mut handle = self.store.lock().await;
        if let Some(open) = handle.open.as_ref() {
            return Ok(open.clone());
        }
        if handle
            .failed_at
            .is_some_and(|failed_at| failed_at.elapsed() < RETRY_PAUSE)
        {
            return Err(ClusterError::Unavailable);
        }
        match directory::open_bucket(&self.jetstream, self.settings.lease).await {
            Ok(opened) => {
                *handle = BucketHandle {
                    open: Some(opened.clone()),
                    failed_at: None,
                };
                Ok(opened)
            }
            Err(error) => {
                tracing::debug!(%error, "room directory bucket unavailable");
                handle.failed_at = Some(Instant::now());
                Err(ClusterError::Unavailable)
            }
        }
    }

    async fn forget_store(&self) {
        *self.store.lock().await = BucketHandle::default();
    }

    fn record_for(&self, info: &RoomInfo) -> RoomRecord {
        RoomRecord {
            node: self.settings.node.id.to_string(),
            region: self.settings.node.region.to_string(),
            epoch: info.epoch,
            info: info.clone(),
            renewed_at_ms: unix_millis(SystemTime::now()),
        }
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Lease>> {
        self.leases
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Creates a room on this node, taking its lease first so that racing creators (on any
    /// node) end with exactly one live room. Creating a room this node already holds returns
    /// it unchanged, so a retried creation is harmless.
    pub async fn create_here(&self, request: CreateRoom) -> Result<RoomInfo, ClusterError> {
        self.require_connection()?;
        let prepared = self.lobby.prepare_room(request)?;
        let room_id = prepared.info.room_id.clone();
        let store = self.store().await?;
        let record = self.record_for(&prepared.info);
        let _round = self.round.lock().await;
        let unavailable = |error: async_nats::Error| {
            tracing::warn!(%room_id, %error, "cannot claim room lease");
            ClusterError::Unavailable
        };
        let revision = match directory::claim(&store, &record)
            .await
            .map_err(unavailable)?
        {
            Claim::Taken(revision) => revision,
            Claim::Held(held) if self.is_mine(&held.node) => {
                if let Some(info) = self.lobby.directory().info(&room_id) {
                    return Ok(info); // a retried creation: the room is already here
                }
                // Our own entry without a room: left by an earlier run of this node, or an
                // earlier attempt. Take it over.
                match directory::renew(&store, &record, 0)
                    .await
                    .map_err(unavailable)?
                {
                    Renewal::Renewed(revision) => revision,
                    Renewal::Lost { .. } => return Err(LobbyError::RoomExists(room_id).into()),
                }
            }
            Claim::Held(_) => return Err(LobbyError::RoomExists(room_id).into()),
        };
        self.leases().insert(
            room_id.clone(),
            Lease {
                revision,
                published: prepared.info.clone(),
                renewed_at: Instant::now(),
            },
        );
        match self.lobby.start_room(prepared) {
            Ok(info) => Ok(info),
            Err(error) => {
                self.leases().remove(&room_id);
                directory::release(&store, &room_id, revision).await;
                Err(error.into())
            }
        }
    }

    async fn create_on(
        &self,
        node_id: &str,
        request: CreateRoom,
        reserve: Option<SeatFor>,
    ) -> Result<(RoomInfo, Option<SeatGrant>), ClusterError> {
        if self.is_mine(node_id) {
            let info = self.create_here(request).await?;
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
        let room_id = match &request.room_id {
            Some(id) => RoomId::parse(id).map_err(LobbyError::from)?,
            None => random_room_id(),
        };
        request.room_id = Some(room_id.to_string());
        let decision = self
            .membership
            .view()
            .placement
            .place(room_id.as_str(), &region)?;
        let (info, _) = self
            .create_on(decision.node.as_str(), request, None)
            .await?;
        Ok(Placed {
            value: info,
            node: decision.node.to_string(),
            region: decision.region.to_string(),
            reason: decision.reason.to_string(),
        })
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
        for region in self.settings.regions.fallback_order(&preferred) {
            let reason = if skipped.is_empty() {
                "preferred region".to_owned()
            } else {
                format!(
                    "fallback because {} had no live node or capacity",
                    skipped.join(", ")
                )
            };
            let mut open = self.replica.list(|record| {
                record.region == region.as_str()
                    && record.info.room_type == room_type
                    && record.info.has_free_seat()
                    && self.is_fresh(record)
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
            let Some(node) = view.placement.owner(room_id.as_str(), &region).cloned() else {
                skipped.push(region.to_string());
                continue;
            };
            let request = CreateRoom {
                room_type: room_type.to_owned(),
                room_id: Some(room_id.to_string()),
                ..CreateRoom::default()
            };
            match self
                .create_on(node.as_str(), request, Some(seat.clone()))
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
                Err(error) if matches!(error.code(), "at_capacity" | "node_unavailable") => {
                    skipped.push(region.to_string());
                }
                Err(error) => return Err(error),
            }
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
            .publish(rpc::announce_subject(region.as_str()), bytes.into())
            .await
            .map_err(|_| ClusterError::Unavailable)?;
        Ok(region.to_string())
    }

    /// Regions with their live node counts.
    pub fn regions(&self) -> Vec<RegionStatus> {
        let view = self.membership.view();
        let regions = &self.settings.regions;
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
        let ring_owner = Placement::with_all_nodes(&self.settings.regions)
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

    /// Says goodbye: a `leaving` heartbeat (so peers drop this node at once) and the release of
    /// every lease still held. Call after the rooms are closed.
    pub async fn leave(&self) {
        self.leaving.store(true, Ordering::Release);
        // Wait out a lease round in flight, so nothing is renewed after the release below.
        let _round = self.round.lock().await;
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .drain(..)
            .collect();
        for task in tasks {
            task.abort();
        }
        if !self.is_connected() {
            tracing::warn!("leaving without NATS: peers will time this node out");
            return;
        }
        let goodbye = async {
            if let Ok(store) = self.store().await {
                let leases: Vec<(RoomId, u64)> = self
                    .leases()
                    .drain()
                    .map(|(room_id, lease)| (room_id, lease.revision))
                    .collect();
                for (room_id, revision) in leases {
                    directory::release(&store, &room_id, revision).await;
                }
            }
            self.publish_heartbeat(true).await;
            let _ = self.client.drain().await;
        };
        if tokio::time::timeout(self.settings.request_timeout, goodbye)
            .await
            .is_err()
        {
            tracing::warn!("leaving the cluster timed out");
        }
    }

    async fn publish_heartbeat(&self, leaving: bool) {
        let heartbeat = Heartbeat {
            node: self.settings.node.id.to_string(),
            rooms: self.lobby.directory().len(),
            leaving,
        };
        // expect: a struct of a string, a number and a bool always serializes.
        let payload = serde_json::to_vec(&heartbeat).expect("heartbeats serialize");
        if let Err(error) = self
            .client
            .publish(rpc::HEARTBEAT_SUBJECT, payload.into())
            .await
        {
            tracing::debug!(%error, "heartbeat not sent");
        }
    }

    fn sweep(&self) {
        let Some(change) = self.membership.sweep(Instant::now()) else {
            return;
        };
        for node in &change.joined {
            tracing::info!(%node, "node joined");
            self.metrics
                .cluster_membership_changes
                .with_label_values(&["join"])
                .inc();
        }
        for node in &change.left {
            tracing::warn!(%node, "node left");
            self.metrics
                .cluster_membership_changes
                .with_label_values(&["leave"])
                .inc();
        }
        let live = i64::try_from(self.membership.view().live.len()).unwrap_or(i64::MAX);
        self.metrics.cluster_nodes.set(live);
    }

    async fn heartbeat_loop(self: Arc<Self>) {
        let mut interval =
            tokio::time::interval(self.settings.regions.cluster().heartbeat_interval);
        loop {
            interval.tick().await;
            // Checked after the wait: a "live" beat sent after the goodbye would re-add this
            // node to every peer's view for a whole node timeout.
            if self.leaving.load(Ordering::Acquire) {
                return;
            }
            self.publish_heartbeat(false).await;
            self.sweep();
        }
    }

    async fn heartbeat_listener(self: Arc<Self>) {
        let Ok(mut heartbeats) = self.client.subscribe(rpc::HEARTBEAT_SUBJECT).await else {
            tracing::error!("cannot subscribe to heartbeats");
            return;
        };
        while let Some(message) = heartbeats.next().await {
            let Ok(heartbeat) = serde_json::from_slice::<Heartbeat>(&message.payload) else {
                continue;
            };
            if self.is_mine(&heartbeat.node) {
                continue;
            }
            self.membership.record(&heartbeat, Instant::now());
            if heartbeat.leaving || !self.membership.is_live(&heartbeat.node) {
                self.sweep();
            }
        }
    }

    async fn lease_loop(self: Arc<Self>) {
        let mut interval = tokio::time::interval(LEASE_ROUND);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if !self.is_connected() {
                continue;
            }
            let Ok(store) = self.store().await else {
                continue;
            };
            let _round = self.round.lock().await;
            if self.leaving.load(Ordering::Acquire) {
                return;
            }
            if !self.lease_round(&store).await {
                // Every write failed: the bucket itself is likely gone (a restarted NATS loses
                // its memory storage). Reopen it, which re-creates its stream, next round.
                self.forget_store().await;
            }
        }
    }

    /// One pass over the leases: release those of stopped rooms, publish changed listings,
    /// renew due ones, claim local rooms that lack one, and stop rooms whose lease was lost.
    /// A failure on one room (NATS hiccup, a race with expiry) never stops the others; that
    /// room is simply retried next round. Returns `false` when every write of the round failed.
    async fn lease_round(&self, store: &kv::Store) -> bool {
        let local: HashMap<RoomId, RoomInfo> = self
            .lobby
            .directory()
            .list(|_| true)
            .into_iter()
            .map(|info| (info.room_id.clone(), info))
            .collect();
        self.fenced().retain(|room_id| local.contains_key(room_id));
        let stopped: Vec<(RoomId, u64)> = self
            .leases()
            .iter()
            .filter(|(room_id, _)| !local.contains_key(*room_id))
            .map(|(room_id, lease)| (room_id.clone(), lease.revision))
            .collect();
        for (room_id, revision) in stopped {
            self.leases().remove(&room_id);
            directory::release(store, &room_id, revision).await;
        }
        let renew_every = self.settings.lease / 3;
        let mut attempted = 0_usize;
        let mut failed = 0_usize;
        for (room_id, info) in local {
            if self.fenced().contains(&room_id) {
                continue;
            }
            let due = {
                let leases = self.leases();
                match leases.get(&room_id) {
                    None => Some(None),
                    Some(lease)
                        if lease.published != info || lease.renewed_at.elapsed() >= renew_every =>
                    {
                        Some(Some(lease.revision))
                    }
                    Some(_) => None,
                }
            };
            let Some(revision) = due else { continue };
            attempted += 1;
            match self.renew_one(store, &info, revision).await {
                Ok(Renewal::Renewed(revision)) => {
                    self.leases().insert(
                        room_id,
                        Lease {
                            revision,
                            published: info,
                            renewed_at: Instant::now(),
                        },
                    );
                }
                Ok(Renewal::Lost { holder }) => {
                    tracing::warn!(%room_id, %holder, "lost the room's lease; stopping it here");
                    self.metrics.leases_lost.inc();
                    self.leases().remove(&room_id);
                    if let Some(room) = self.lobby.directory().addr(&room_id) {
                        room.do_send(CloseRoom {
                            reason: CloseCode::RoomMoved,
                        });
                    }
                    self.fenced().insert(room_id);
                }
                Err(error) => {
                    failed += 1;
                    tracing::debug!(%room_id, %error, "lease not renewed this round");
                }
            }
        }
        attempted == 0 || failed < attempted
    }

    /// Renews a room's lease at `revision`, or claims it when this node holds none yet.
    async fn renew_one(
        &self,
        store: &kv::Store,
        info: &RoomInfo,
        revision: Option<u64>,
    ) -> Result<Renewal, async_nats::Error> {
        let record = self.record_for(info);
        match revision {
            Some(revision) => directory::renew(store, &record, revision).await,
            None => match directory::claim(store, &record).await? {
                Claim::Taken(revision) => Ok(Renewal::Renewed(revision)),
                Claim::Held(held) if self.is_mine(&held.node) => {
                    directory::renew(store, &record, 0).await
                }
                Claim::Held(held) => Ok(Renewal::Lost { holder: held.node }),
            },
        }
    }

    fn fenced(&self) -> std::sync::MutexGuard<'_, HashSet<RoomId>> {
        self.fenced
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    async fn watch_loop(self: Arc<Self>) {
        while !self.leaving.load(Ordering::Acquire) {
            let watch = match self.store().await {
                Ok(store) => store.watch_all().await.ok(),
                Err(_) => None,
            };
            let Some(mut watch) = watch else {
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            };
            self.replica.clear();
            loop {
                tokio::select! {
                    entry = watch.next() => match entry {
                        Some(Ok(entry)) => self.replica.apply(&entry),
                        _ => break,
                    },
                    () = self.reconnected.notified() => break,
                }
            }
            self.forget_store().await;
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    async fn request_loop(self: Arc<Self>) {
        let subject = rpc::node_subject(self.settings.node.id.as_str());
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
            } => {
                let request = CreateRoom {
                    room_type,
                    room_id: Some(room_id),
                    max_players,
                    metadata,
                    epoch: None,
                };
                let node = self.settings.node.id.to_string();
                match self.create_on(&node, request, reserve).await {
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

    async fn announce_loop(self: Arc<Self>) {
        let subject = rpc::announce_subject(self.settings.node.region.as_str());
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
