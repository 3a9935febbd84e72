//! Cluster membership from heartbeats: which nodes are live, and the placement they imply.
//!
//! Every node publishes a [`Heartbeat`] each heartbeat interval; a node not heard from within the
//! configured node timeout leaves every node's live set (and so every ring) at the next sweep.
//! A node that shuts down gracefully says so (`leaving`) and leaves at once. Only nodes named in
//! the region file can join, so a stray process cannot attract rooms. The node itself is always
//! live in its own view, NATS or not.
//!
//! Heartbeats also carry a hash of the sender's region file. Nodes started with different files
//! place the same id on different nodes; a live peer with another hash is logged once, counted in
//! `ludus_cluster_region_file_mismatched_peers` and listed in `/healthz`.
//!
//! [`Membership`] is plain data behind locks, no I/O, which keeps the join/leave rules testable
//! without a broker; the two heartbeat tasks at the bottom feed it.

use super::{rpc, Cluster};
use crate::stats::NodeLoad;
use futures_util::StreamExt;
use ludus_regions::{NodeId, Placement, RegionConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
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
    /// True while the node drains: it keeps its rooms until each is handed over, but placement
    /// gives it nothing new (absent from nodes that predate drains).
    #[serde(default)]
    pub draining: bool,
    /// A hash of its region file (empty from nodes that predate it).
    #[serde(default)]
    pub region_hash: String,
    /// Its sessions, lease and load, for operators' dashboards (absent from nodes that predate
    /// it, and ignored by placement).
    #[serde(default)]
    pub report: Option<NodeReport>,
}

/// What a node tells its peers about its load, once per heartbeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// Open WebSocket sessions (players connected to it).
    pub sessions: u64,
    /// Whether it holds its node lease.
    pub lease_held: bool,
    /// Its load over about the last second.
    pub load: NodeLoad,
}

/// A live peer started with a different region file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// The peer.
    pub node: String,
    /// Its region file hash.
    pub region_file_hash: String,
}

/// The live nodes and the placement over them, swapped as a whole on every change.
#[derive(Debug)]
pub struct LiveView {
    /// Live node ids (always including this node).
    pub live: BTreeSet<NodeId>,
    /// Live nodes that are draining: reachable, but placed nothing new.
    pub draining: BTreeSet<NodeId>,
    /// Placement over the live nodes that are not draining.
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
    /// The region file in force and its hash; replaced as a whole on reload (SIGHUP).
    file: RwLock<(Arc<RegionConfig>, String)>,
    node_timeout: Duration,
    last_seen: Mutex<HashMap<NodeId, Instant>>,
    /// Nodes (this one included) whose latest heartbeat said they drain.
    draining: Mutex<BTreeSet<NodeId>>,
    /// Peers' region file hashes, from their latest heartbeat.
    hashes: Mutex<HashMap<NodeId, String>>,
    /// Peers' rooms and reports, from their latest heartbeat.
    reports: Mutex<HashMap<NodeId, (usize, Option<NodeReport>)>>,
    view: RwLock<Arc<LiveView>>,
}

impl Membership {
    /// A view in which only `self_id` is live.
    pub fn new(
        self_id: NodeId,
        regions: Arc<RegionConfig>,
        node_timeout: Duration,
        region_hash: String,
    ) -> Self {
        let live = BTreeSet::from([self_id.clone()]);
        let placement = Placement::new(&regions, live.iter());
        Self {
            self_id,
            file: RwLock::new((regions, region_hash)),
            node_timeout,
            last_seen: Mutex::new(HashMap::new()),
            draining: Mutex::new(BTreeSet::new()),
            hashes: Mutex::new(HashMap::new()),
            reports: Mutex::new(HashMap::new()),
            view: RwLock::new(Arc::new(LiveView {
                live,
                draining: BTreeSet::new(),
                placement,
            })),
        }
    }

    /// Records a heartbeat received at `now`; unknown nodes are ignored. Returns `true` when
    /// the sender's region file hash differs from ours and did not before.
    pub fn record(&self, heartbeat: &Heartbeat, now: Instant) -> bool {
        let (regions, region_hash) = self.file();
        let Some(node) = regions
            .nodes()
            .iter()
            .find(|node| node.id.as_str() == heartbeat.node)
        else {
            tracing::warn!(node = %heartbeat.node, "heartbeat from a node not in the region file");
            return false;
        };
        let newly_mismatched = {
            let mut hashes = self
                .hashes
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let mismatched = |hash: &str| !hash.is_empty() && hash != region_hash;
            let before = hashes.insert(node.id.clone(), heartbeat.region_hash.clone());
            mismatched(&heartbeat.region_hash)
                && before.as_deref() != Some(heartbeat.region_hash.as_str())
        };
        self.reports
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(node.id.clone(), (heartbeat.rooms, heartbeat.report));
        let mut last_seen = self
            .last_seen
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if heartbeat.leaving {
            last_seen.remove(&node.id);
        } else {
            last_seen.insert(node.id.clone(), now);
        }
        self.set_draining(&node.id, heartbeat.draining);
        newly_mismatched
    }

    /// A peer's rooms and report and its region file hash, from its latest heartbeat.
    pub fn peer(&self, node: &NodeId) -> Option<(usize, Option<NodeReport>, String)> {
        let (rooms, report) = *self
            .reports
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(node)?;
        let hash = self
            .hashes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(node)
            .cloned()
            .unwrap_or_default();
        Some((rooms, report, hash))
    }

    /// Live peers whose region file hash differs from ours.
    pub fn mismatches(&self) -> Vec<Mismatch> {
        let view = self.view();
        let (_, region_hash) = self.file();
        let hashes = self
            .hashes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut mismatches: Vec<Mismatch> = hashes
            .iter()
            .filter(|(node, hash)| {
                view.live.contains(*node) && !hash.is_empty() && **hash != region_hash
            })
            .map(|(node, hash)| Mismatch {
                node: node.to_string(),
                region_file_hash: hash.clone(),
            })
            .collect();
        mismatches.sort_by(|a, b| a.node.cmp(&b.node));
        mismatches
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
        if current.live == live && current.draining == self.draining_among(&live) {
            return None;
        }
        let change = MembershipChange {
            joined: live.difference(&current.live).cloned().collect(),
            left: current.live.difference(&live).cloned().collect(),
        };
        self.set_view(live);
        Some(change)
    }

    /// Records whether `node` drains (this node's own flag too); the view follows at the next
    /// sweep.
    pub fn set_draining(&self, node: &NodeId, draining: bool) {
        let mut nodes = self
            .draining
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if draining {
            nodes.insert(node.clone());
        } else {
            nodes.remove(node);
        }
    }

    /// The draining nodes among `live`.
    fn draining_among(&self, live: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
        self.draining
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .intersection(live)
            .cloned()
            .collect()
    }

    fn set_view(&self, live: BTreeSet<NodeId>) {
        let draining = self.draining_among(&live);
        let placement = Placement::new(&self.file().0, live.difference(&draining));
        *self
            .view
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(LiveView {
            live,
            draining,
            placement,
        });
    }

    fn file(&self) -> (Arc<RegionConfig>, String) {
        let file = self
            .file
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        (Arc::clone(&file.0), file.1.clone())
    }

    /// The region file in force.
    pub fn regions(&self) -> Arc<RegionConfig> {
        self.file().0
    }

    /// Its hash.
    pub fn region_hash(&self) -> String {
        self.file().1
    }

    /// Puts a reloaded region file in force: placement is rebuilt over the live nodes it still
    /// names; nodes it no longer names are forgotten.
    pub fn reload(&self, regions: Arc<RegionConfig>, region_hash: String) {
        let named = |id: &NodeId| regions.nodes().iter().any(|node| &node.id == id);
        self.last_seen
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .retain(|id, _| named(id));
        let live: BTreeSet<NodeId> = self
            .view()
            .live
            .iter()
            .filter(|id| named(id))
            .cloned()
            .collect();
        *self
            .file
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = (regions, region_hash);
        self.set_view(live);
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

impl Cluster {
    pub(super) async fn publish_heartbeat(&self, leaving: bool) {
        let heartbeat = Heartbeat {
            node: self.settings.node.id.to_string(),
            rooms: self.lobby.directory().len(),
            leaving,
            draining: self.is_draining(),
            region_hash: self.membership.region_hash(),
            report: Some(self.report()),
        };
        // expect: a struct of strings, numbers and bools always serializes.
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
        self.count_mismatches();
    }

    /// Sets the mismatch gauge from the current view (after a sweep, a heartbeat, a reload).
    pub(super) fn count_mismatches(&self) {
        let mismatched = i64::try_from(self.membership.mismatches().len()).unwrap_or(i64::MAX);
        self.metrics.region_file_mismatches.set(mismatched);
    }

    pub(super) async fn heartbeat_loop(self: Arc<Self>) {
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

    pub(super) async fn heartbeat_listener(self: Arc<Self>) {
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
            if self.membership.record(&heartbeat, Instant::now()) {
                tracing::warn!(
                    node = %heartbeat.node,
                    theirs = %heartbeat.region_hash,
                    ours = %self.membership.region_hash(),
                    "a peer runs with a different region file: placement will disagree"
                );
            }
            let view = self.membership.view();
            let drain_changed = view
                .live
                .iter()
                .find(|node| node.as_str() == heartbeat.node)
                .is_some_and(|node| view.draining.contains(node) != heartbeat.draining);
            if heartbeat.leaving || drain_changed || !self.membership.is_live(&heartbeat.node) {
                self.sweep();
            }
            self.count_mismatches();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ludus_regions::RegionName;

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
        Membership::new(
            NodeId::new("a"),
            Arc::new(regions),
            Duration::from_secs(3),
            "hash-a".to_owned(),
        )
    }

    fn beat(node: &str, leaving: bool) -> Heartbeat {
        Heartbeat {
            node: node.to_owned(),
            rooms: 0,
            leaving,
            draining: false,
            region_hash: "hash-a".to_owned(),
            report: None,
        }
    }

    #[test]
    fn a_draining_node_stays_live_but_placement_gives_it_nothing() {
        let membership = membership();
        let start = Instant::now();
        membership.record(&beat("b", false), start);
        membership.sweep(start).expect("b joined");
        let draining = Heartbeat {
            draining: true,
            ..beat("b", false)
        };
        membership.record(&draining, start);
        let change = membership.sweep(start).expect("the view changed");
        assert!(change.joined.is_empty() && change.left.is_empty());
        let view = membership.view();
        assert!(view.live.contains(&NodeId::new("b")), "b still holds rooms");
        assert!(view.draining.contains(&NodeId::new("b")));
        let eu = RegionName::new("eu");
        for index in 0..50 {
            let placed = view.placement.place(&format!("room-{index}"), &eu);
            assert_eq!(placed.expect("a live node").node.as_str(), "a");
        }
        membership.record(&beat("b", false), start);
        membership.sweep(start).expect("b is placed again");
        assert!(membership.view().draining.is_empty());
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
    fn a_peers_latest_report_is_kept_and_a_heartbeat_without_one_still_parses() {
        let membership = membership();
        assert_eq!(membership.peer(&NodeId::new("b")), None);
        let report = NodeReport {
            sessions: 12,
            lease_held: true,
            load: NodeLoad {
                bytes_out_per_sec: 4_096,
                ..NodeLoad::default()
            },
        };
        let mut heartbeat = beat("b", false);
        heartbeat.rooms = 3;
        heartbeat.report = Some(report);
        membership.record(&heartbeat, Instant::now());
        assert_eq!(
            membership.peer(&NodeId::new("b")),
            Some((3, Some(report), "hash-a".to_owned()))
        );
        // What a node that predates reports sends.
        let older: Heartbeat =
            serde_json::from_str(r#"{"node": "b", "rooms": 1, "leaving": false}"#)
                .expect("an older heartbeat parses");
        assert_eq!(older.report, None);
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

    #[test]
    fn a_live_peer_with_another_region_file_is_reported_once() {
        let membership = membership();
        let now = Instant::now();
        let mut other = beat("b", false);
        other.region_hash = "hash-b".to_owned();
        assert!(membership.record(&other, now), "first sight warns");
        assert!(
            !membership.record(&other, now),
            "the same hash again does not"
        );
        membership.sweep(now);
        assert_eq!(
            membership.mismatches(),
            vec![Mismatch {
                node: "b".to_owned(),
                region_file_hash: "hash-b".to_owned()
            }]
        );
        assert!(!membership.record(&beat("b", false), now));
        assert!(membership.mismatches().is_empty());
    }

    #[test]
    fn a_reloaded_region_file_ends_the_mismatch_and_forgets_dropped_nodes() {
        let membership = membership();
        let now = Instant::now();
        let mut other = beat("b", false);
        other.region_hash = "hash-b".to_owned();
        membership.record(&other, now);
        membership.sweep(now);
        assert_eq!(membership.mismatches().len(), 1);
        let only_a = REGIONS
            .split("[[nodes]]")
            .take(2)
            .collect::<Vec<_>>()
            .join("[[nodes]]");
        let regions = ludus_regions::from_str(&only_a, "test.toml").expect("valid regions");
        membership.reload(Arc::new(regions), "hash-b".to_owned());
        assert!(!membership.is_live("b"), "b is no longer in the file");
        assert!(membership.mismatches().is_empty());
        assert_eq!(membership.region_hash(), "hash-b");
    }
}
