//! Cluster membership from heartbeats: which nodes are live, and the placement they imply.
//!
//! Every node publishes a [`Heartbeat`] each heartbeat interval; a node not heard from within the
//! configured node timeout leaves every node's live set (and so every ring) at the next sweep.
//! A node that shuts down gracefully says so (`leaving`) and leaves at once. Only nodes named in
//! the region file can join, so a stray process cannot attract rooms. The node itself is always
//! live in its own view, NATS or not.
//!
//! Plain data behind locks, no I/O: the NATS tasks in `cluster::mod` feed it, which keeps the
//! join/leave rules testable without a broker.

use ludus_regions::{NodeId, Placement, RegionConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What a node announces about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Its node id.
    pub node: String,
    /// Rooms it hosts.
    pub rooms: usize,
    /// True in the last heartbeat of a node shutting down.
    pub leaving: bool,
}

/// The live nodes and the placement over them, swapped as a whole on every change.
#[derive(Debug)]
pub struct LiveView {
    /// Live node ids (always including this node).
    pub live: BTreeSet<NodeId>,
    /// Placement over the live nodes.
    pub placement: Placement,
}

/// What a sweep changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MembershipChange {
    /// Nodes that became live.
    pub joined: Vec<NodeId>,
    /// Nodes that stopped being live.
    pub left: Vec<NodeId>,
}

/// Heartbeat bookkeeping for one node's view of the cluster.
pub struct Membership {
    self_id: NodeId,
    regions: Arc<RegionConfig>,
    node_timeout: Duration,
    last_seen: Mutex<HashMap<NodeId, Instant>>,
    view: RwLock<Arc<LiveView>>,
}

impl Membership {
    /// A view in which only `self_id` is live.
    pub fn new(self_id: NodeId, regions: Arc<RegionConfig>, node_timeout: Duration) -> Self {
        let live = BTreeSet::from([self_id.clone()]);
        let placement = Placement::new(&regions, live.iter());
        Self {
            self_id,
            regions,
            node_timeout,
            last_seen: Mutex::new(HashMap::new()),
            view: RwLock::new(Arc::new(LiveView { live, placement })),
        }
    }

    /// Records a heartbeat received at `now`; unknown nodes are ignored.
    pub fn record(&self, heartbeat: &Heartbeat, now: Instant) {
        let Some(node) = self
            .regions
            .nodes()
            .iter()
            .find(|node| node.id.as_str() == heartbeat.node)
        else {
            tracing::warn!(node = %heartbeat.node, "heartbeat from a node not in the region file");
            return;
        };
        let mut last_seen = self
            .last_seen
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if heartbeat.leaving {
            last_seen.remove(&node.id);
        } else {
            last_seen.insert(node.id.clone(), now);
        }
    }

    /// Recomputes the live set at `now`; returns what changed, if anything.
    pub fn sweep(&self, now: Instant) -> Option<MembershipChange> {
        let live: BTreeSet<NodeId> = {
            let last_seen = self
                .last_seen
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            last_seen
                .iter()
                .filter(|(_, seen)| now.saturating_duration_since(**seen) <= self.node_timeout)
                .map(|(id, _)| id.clone())
                .chain(std::iter::once(self.self_id.clone()))
                .collect()
        };
        let current = self.view();
        if current.live == live {
            return None;
        }
        let change = MembershipChange {
            joined: live.difference(&current.live).cloned().collect(),
            left: current.live.difference(&live).cloned().collect(),
        };
        let placement = Placement::new(&self.regions, live.iter());
        *self
            .view
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(LiveView { live, placement });
        Some(change)
    }

    /// The current view.
    pub fn view(&self) -> Arc<LiveView> {
        Arc::clone(
            &self
                .view
                .read()
                .unwrap_or_else(|poison| poison.into_inner()),
        )
    }

    /// Whether `node` is live.
    pub fn is_live(&self, node: &str) -> bool {
        self.view().live.iter().any(|live| live.as_str() == node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGIONS: &str = r#"
version = 1
default_region = "eu"
[regions.eu]
[[nodes]]
id = "a"
region = "eu"
ws_url = "ws://127.0.0.1:1"
http_url = "http://127.0.0.1:1"
weight = 1
[[nodes]]
id = "b"
region = "eu"
ws_url = "ws://127.0.0.1:2"
http_url = "http://127.0.0.1:2"
weight = 1
"#;

    fn membership() -> Membership {
        let regions = ludus_regions::from_str(REGIONS, "test.toml").expect("valid regions");
        Membership::new(NodeId::new("a"), Arc::new(regions), Duration::from_secs(3))
    }

    fn beat(node: &str, leaving: bool) -> Heartbeat {
        Heartbeat {
            node: node.to_owned(),
            rooms: 0,
            leaving,
        }
    }

    #[test]
    fn a_heard_node_joins_and_a_silent_one_leaves_after_the_timeout() {
        let membership = membership();
        let start = Instant::now();
        membership.record(&beat("b", false), start);
        let joined = membership.sweep(start).expect("b joined");
        assert_eq!(joined.joined, vec![NodeId::new("b")]);
        assert!(membership.is_live("b"));
        assert_eq!(membership.sweep(start + Duration::from_secs(2)), None);
        let left = membership
            .sweep(start + Duration::from_secs(4))
            .expect("b timed out");
        assert_eq!(left.left, vec![NodeId::new("b")]);
        assert!(membership.is_live("a"), "a node is always live to itself");
    }

    #[test]
    fn a_leaving_node_leaves_at_once_and_strangers_never_join() {
        let membership = membership();
        let now = Instant::now();
        membership.record(&beat("b", false), now);
        membership.record(&beat("stranger", false), now);
        membership.sweep(now);
        assert_eq!(membership.view().live.len(), 2);
        membership.record(&beat("b", true), now);
        assert!(membership.sweep(now).is_some());
        assert!(!membership.is_live("b"));
    }
}
