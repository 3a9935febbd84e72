//! What a node needs to join a cluster (read from its config and region file), the errors
//! cluster operations answer with, and the shapes the HTTP API shows.

use crate::config::ServerConfig;
use crate::lobby::LobbyError;
use ludus_protocol::RoomId;
use ludus_regions::{Node, PlacementError, RegionConfig};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Everything a node needs to join a cluster, read from its config and region file.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// This node.
    pub node: Node,
    /// The region file, parsed and validated.
    pub regions: Arc<RegionConfig>,
    /// Where the region file is (shown in `/healthz`).
    pub regions_file: PathBuf,
    /// A hash of the region file's bytes, sent in heartbeats so nodes started with different
    /// files notice (they would disagree on placement).
    pub regions_hash: String,
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
    /// The region file cannot be read for hashing.
    #[error("{file}: cannot read the region file: {source}")]
    Unreadable {
        /// The region file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
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
        let regions_hash = regions_hash(file)?;
        Ok(Some(Self {
            node,
            regions: Arc::new(regions),
            regions_file: file.clone(),
            regions_hash,
            nats_url,
            lease: Duration::from_millis(config.cluster.lease_ms),
            request_timeout: Duration::from_millis(config.cluster.request_timeout_ms),
        }))
    }
}

/// The first 16 hex digits of the SHA-256 of the region file's bytes.
pub fn regions_hash(file: &Path) -> Result<String, ClusterSetupError> {
    let bytes = std::fs::read(file).map_err(|source| ClusterSetupError::Unreadable {
        file: file.to_path_buf(),
        source,
    })?;
    let digest = Sha256::digest(&bytes);
    Ok(digest
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// NATS is unreachable.
    #[error("the cluster is unavailable: NATS is unreachable")]
    Unavailable,
    /// This node cannot yet tell whether the id is held (right after it connected or the
    /// broker restarted, live owners are still re-registering).
    #[error("the room directory is settling after a reconnect; retry in a few seconds")]
    Settling,
    /// A node did not answer.
    #[error("node `{0}` did not answer")]
    NodeUnavailable(String),
    /// This node drains: it takes no new room (another node will).
    #[error("this node is draining and takes no new rooms")]
    Draining,
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
            Self::Unavailable | Self::Settling => "cluster_unavailable",
            Self::NodeUnavailable(_) => "node_unavailable",
            Self::Draining => "node_draining",
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
