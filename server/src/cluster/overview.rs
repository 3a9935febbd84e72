//! The cluster as the operator dashboard shows it: every node of the region file, by region,
//! with what its latest heartbeat said (rooms, sessions, lease, load, region file hash).
//!
//! Only what this node already knows from membership: no request goes to a peer, so the
//! overview answers at once however many nodes are down, and a node missing from it is simply
//! not live.

use super::membership::NodeReport;
use super::Cluster;
use serde::Serialize;
use std::sync::atomic::Ordering;

/// One node as the dashboard shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// The node's id.
    pub node: String,
    /// Its region.
    pub region: String,
    /// Its HTTP API (its dashboard is at `/dashboard` there); `None` for a lone node.
    pub http_url: Option<String>,
    /// Whether this is the node answering.
    pub this_node: bool,
    /// Whether it is live in this node's view.
    pub live: bool,
    /// Rooms it hosts (last heard), `None` when never heard.
    pub rooms: Option<usize>,
    /// Its sessions, lease and load (last heard), `None` when never heard or from an older node.
    pub report: Option<NodeReport>,
    /// Its region file hash (last heard).
    pub region_file_hash: Option<String>,
    /// Whether that hash is this node's (`None` when unknown).
    pub region_file_agrees: Option<bool>,
}

/// A region and its nodes.
#[derive(Debug, Clone, Serialize)]
pub struct RegionNodes {
    /// The region's name.
    pub region: String,
    /// Its nodes, in the region file's order.
    pub nodes: Vec<NodeStatus>,
}

impl Cluster {
    /// This node's report, as its heartbeat carries it.
    pub fn report(&self) -> NodeReport {
        NodeReport {
            sessions: u64::try_from(self.metrics.sessions.get()).unwrap_or(0),
            lease_held: self.incarnation_tx.borrow().is_some()
                && !self.leaving.load(Ordering::Acquire),
            load: self.lobby.load(),
        }
    }

    /// Every node of the region file, by region, as this node sees them.
    pub fn overview(&self) -> Vec<RegionNodes> {
        let regions = self.membership.regions();
        let view = self.membership.view();
        let own_hash = self.membership.region_hash();
        regions
            .regions()
            .map(|region| RegionNodes {
                region: region.name.to_string(),
                nodes: regions
                    .nodes_in(&region.name)
                    .map(|node| {
                        let this_node = self.is_mine(node.id.as_str());
                        let live = view.live.contains(&node.id);
                        let heard = if this_node {
                            Some((
                                self.lobby.directory().len(),
                                Some(self.report()),
                                own_hash.clone(),
                            ))
                        } else {
                            self.membership.peer(&node.id)
                        };
                        let (rooms, report, hash) = match heard {
                            Some((rooms, report, hash)) => (Some(rooms), report, Some(hash)),
                            None => (None, None, None),
                        };
                        let hash = hash.filter(|hash| !hash.is_empty());
                        NodeStatus {
                            node: node.id.to_string(),
                            region: node.region.to_string(),
                            http_url: Some(node.http_url.to_string()),
                            this_node,
                            live,
                            rooms,
                            report,
                            region_file_agrees: hash.as_ref().map(|hash| *hash == own_hash),
                            region_file_hash: hash,
                        }
                    })
                    .collect(),
            })
            .collect()
    }
}
