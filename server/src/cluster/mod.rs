//! Running several nodes as one cluster over NATS.
//!
//! Each responsibility has its own module and its own task; this file only wires them:
//! - **Membership** ([`membership`]): heartbeats on `ludus.heartbeat` decide which nodes are live
//!   and so every placement ring; they also carry a hash of the region file, so nodes started
//!   with different files are reported instead of silently disagreeing on placement.
//! - **Leases** ([`lease`], pure; [`owner`], its two tasks; [`fence`]): one lease per node covers
//!   all its rooms. The owner fences itself on its own monotonic clock before its lease can lapse;
//!   observers judge liveness on local receipt time.
//! - **Directory** ([`directory`]): one JetStream KV bucket of node leases and room entries,
//!   replicated on every node by a watch, so any node lists the whole cluster and routes to a
//!   room's holder without asking anyone.
//! - **Routing** ([`routing`]): create, reserve, matchmake, deliver, dispose, list, explain.
//! - **Requests** ([`rpc`]): node-to-node request/reply and regional announcements.
//!
//! Placement ([`ludus_regions::Placement`]) decides where *new* rooms go; the directory is
//! authoritative for rooms that exist. NATS being down for less than a lease never stops a room;
//! longer, and the node fences (4013): it can no longer prove nobody else holds its rooms.
//!
//! Talks to NATS the way async-nats is built to be used: one cloneable client whose connection
//! task owns the socket, and a few long-lived tasks here that each own one loop.

pub mod checkpoints;
pub mod claim;
pub mod directory;
pub mod drain;
pub mod failover;
pub mod fence;
pub mod lease;
pub mod membership;
pub mod overview;
pub mod owner;
pub mod routing;
pub mod rpc;
pub mod settings;

pub use settings::{
    ClusterError, ClusterSettings, ClusterSetupError, Placed, PlacementExplanation, RegionStatus,
};

use crate::checkpoint::CheckpointQueue;
use crate::lobby::Lobby;
use crate::metrics::Metrics;
use async_nats::jetstream::{self, kv};
use directory::Replica;
use fence::Fence;
use futures_util::StreamExt;
use lease::{Incarnation, LeaseTiming};
use ludus_regions::{Node, NodeId, RegionName};
use membership::Membership;
use owner::EntryCommand;
use serde::Serialize;
use settings::regions_hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Pause before retrying a broken watch or bucket.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// The open bucket, or when opening it last failed (so callers answer 503 at once instead of
/// queueing behind another slow attempt).
#[derive(Default)]
struct BucketHandle {
    open: Option<kv::Store>,
    failed_at: Option<Instant>,
}

/// What `/healthz` shows about the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterHealth {
    /// This node.
    pub node: String,
    /// Whether NATS is reachable.
    pub nats_connected: bool,
    /// Whether this node holds a node lease (rooms can be created here).
    pub lease_held: bool,
    /// Whether this node's view of the directory is settled (explicit room ids can be claimed).
    pub directory_settled: bool,
    /// This node's region file hash.
    pub region_file_hash: String,
    /// Live peers whose region file hash differs, with their hash.
    pub region_file_mismatches: Vec<membership::Mismatch>,
}

/// This node's membership in the cluster.
pub struct Cluster {
    settings: ClusterSettings,
    timing: LeaseTiming,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    store: tokio::sync::Mutex<BucketHandle>,
    /// The background tasks, aborted when the node leaves.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    lobby: Arc<Lobby>,
    metrics: Metrics,
    membership: Membership,
    /// Shared with the NATS event callback, which unsettles it the moment the connection drops.
    replica: Arc<Replica>,
    /// The rooms' fence, moved forward by the lease task.
    fence: Fence,
    /// The incarnation rooms may be created under (`None` while unregistered or fenced).
    incarnation_tx: watch::Sender<Option<Incarnation>>,
    /// Commands to the entries task.
    entries_tx: mpsc::UnboundedSender<EntryCommand>,
    /// Counts connections to NATS (bumped by the event callback): tasks holding state a
    /// restarted broker may have lost (the watch, the lease, the room entries) re-check it.
    connections: Arc<watch::Sender<u64>>,
    leaving: AtomicBool,
    /// Set once by [`Cluster::start_drain`]: rooms move away and none are created here.
    draining: AtomicBool,
    /// The last drain pass found no other node for any room left (see [`Cluster::drain`]).
    nowhere_to_go: AtomicBool,
}

impl Cluster {
    /// Connects to NATS (retrying in the background if it is down) and starts the cluster's
    /// tasks on the current actix system.
    pub async fn start(
        settings: ClusterSettings,
        lobby: Arc<Lobby>,
        checkpoints: CheckpointQueue,
    ) -> Result<Arc<Self>, async_nats::ConnectError> {
        let connections = Arc::new(watch::Sender::new(0_u64));
        let on_event = Arc::clone(&connections);
        let replica = Arc::new(Replica::default());
        let on_disconnect = Arc::clone(&replica);
        let node_id = settings.node.id.to_string();
        let client = async_nats::ConnectOptions::new()
            .name(format!("ludus-{node_id}"))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            // Short: a broker restart must be over for this node well within a lease.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((50 * attempts as u64).min(250))
            })
            .event_callback(move |event| {
                let on_event = Arc::clone(&on_event);
                let on_disconnect = Arc::clone(&on_disconnect);
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("connected to NATS");
                            on_event.send_modify(|count| *count += 1);
                        }
                        async_nats::Event::Disconnected => {
                            // At once, before any request can arrive over a new connection:
                            // the broker may come back with an empty bucket.
                            on_disconnect.watch_lost();
                            tracing::warn!("lost NATS");
                        }
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
            settings.regions_hash.clone(),
        );
        let (entries_tx, entries_rx) = mpsc::unbounded_channel();
        let fence = lobby.directory().fence().clone();
        // No room may run before the first registration.
        fence.close();
        let cluster = Arc::new(Self {
            timing: LeaseTiming {
                lease: settings.lease,
            },
            settings,
            client,
            jetstream,
            store: tokio::sync::Mutex::new(BucketHandle::default()),
            tasks: Mutex::new(Vec::new()),
            lobby,
            metrics,
            membership,
            replica,
            fence,
            incarnation_tx: watch::Sender::new(None),
            entries_tx,
            connections,
            leaving: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            nowhere_to_go: AtomicBool::new(false),
        });
        let tasks = vec![
            actix_rt::spawn(Arc::clone(&cluster).heartbeat_loop()),
            actix_rt::spawn(Arc::clone(&cluster).heartbeat_listener()),
            actix_rt::spawn(Arc::clone(&cluster).lease_loop()),
            actix_rt::spawn(Arc::clone(&cluster).watch_loop()),
            actix_rt::spawn(Arc::clone(&cluster).request_loop()),
            actix_rt::spawn(Arc::clone(&cluster).announce_loop()),
            actix_rt::spawn(Arc::clone(&cluster).failover_loop()),
            #[cfg(unix)]
            actix_rt::spawn(Arc::clone(&cluster).reload_on_hangup()),
        ];
        // Not aborted on leaving: it ends itself after releasing every entry.
        actix_rt::spawn(Arc::clone(&cluster).entries_loop(entries_rx));
        // Not aborted either: it runs for the node's life, so rooms stopping at shutdown still
        // have what they queued stored.
        actix_rt::spawn(checkpoints::run(
            cluster.jetstream.clone(),
            checkpoints,
            cluster.metrics.clone(),
        ));
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

    /// The cluster part of `/healthz`.
    pub fn health(&self) -> ClusterHealth {
        ClusterHealth {
            node: self.settings.node.id.to_string(),
            nats_connected: self.is_connected(),
            lease_held: self.incarnation_tx.borrow().is_some(),
            directory_settled: self.replica.is_settled(Instant::now(), self.timing),
            region_file_hash: self.membership.region_hash(),
            region_file_mismatches: self.membership.mismatches(),
        }
    }

    /// Reloads the region file (on SIGHUP): nodes, regions, aliases, fallbacks and URLs take
    /// effect at once; the `[cluster]` section (NATS URL, timings) only on restart. A file that
    /// is invalid, or no longer names this node, is refused and the old one stays in force.
    pub fn reload_regions(&self) -> Result<(), ClusterSetupError> {
        let file = &self.settings.regions_file;
        let regions = ludus_regions::load(file)?;
        if !regions
            .nodes()
            .iter()
            .any(|node| node.id == self.settings.node.id)
        {
            return Err(ClusterSetupError::UnknownNode {
                node: self.settings.node.id.to_string(),
                file: file.clone(),
            });
        }
        let hash = regions_hash(file)?;
        tracing::info!(file = %file.display(), hash = %hash, "region file reloaded");
        self.membership.reload(Arc::new(regions), hash);
        self.count_mismatches();
        Ok(())
    }

    /// Reloads the region file on every SIGHUP, for as long as the node runs.
    #[cfg(unix)]
    async fn reload_on_hangup(self: Arc<Self>) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP; the region file is not reloadable");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            if let Err(error) = self.reload_regions() {
                tracing::error!(%error, "region file not reloaded; the previous one stays in force");
            }
        }
    }

    fn require_connection(&self) -> Result<(), ClusterError> {
        if self.is_connected() {
            Ok(())
        } else {
            Err(ClusterError::Unavailable)
        }
    }

    fn node(&self, node_id: &str) -> Option<Node> {
        self.membership
            .regions()
            .nodes()
            .iter()
            .find(|node| node.id.as_str() == node_id)
            .cloned()
    }

    /// The WebSocket URL of `room_id` on `node_id`.
    pub fn ws_url(&self, node_id: &str, room_id: &ludus_protocol::RoomId) -> Option<String> {
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
        match directory::open_bucket(&self.jetstream, self.timing).await {
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

    /// Feeds the replica from a watch of the whole bucket; a new watch after every reconnect
    /// (a restarted broker may have lost the bucket), which unsettles the view for a lease.
    async fn watch_loop(self: Arc<Self>) {
        let mut connections = self.connections.subscribe();
        while !self.leaving.load(Ordering::Acquire) {
            connections.mark_unchanged();
            let watch = match self.store().await {
                // The last value of every key first, then changes: `watch_all` would deliver
                // new writes only, and a node (re)started would not know the rooms that exist
                // until each one's entry is next rewritten.
                Ok(store) => store.watch_with_history(">").await.ok(),
                Err(_) => None,
            };
            let Some(mut watch) = watch else {
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            };
            self.replica.watch_started(Instant::now());
            loop {
                tokio::select! {
                    entry = watch.next() => match entry {
                        Some(Ok(entry)) => self.replica.apply(&entry, Instant::now()),
                        _ => break,
                    },
                    _ = connections.changed() => break,
                }
            }
            self.replica.watch_lost();
            self.forget_store().await;
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Says goodbye: stop writing room entries, delete the node lease (so peers see this node's
    /// rooms lapsed at once and restore those it closed from their checkpoints) and send a
    /// `leaving` heartbeat. Call after the rooms are closed.
    pub async fn leave(&self) {
        self.leaving.store(true, Ordering::Release);
        // First stop renewing: a renewal after the goodbye would re-create the node lease.
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .drain(..)
            .collect();
        for task in tasks {
            task.abort();
        }
        let (released_tx, released_rx) = oneshot::channel();
        let entries_released = self
            .entries_tx
            .send(EntryCommand::Stop(released_tx))
            .is_ok();
        if !self.is_connected() {
            tracing::warn!("leaving without NATS: peers will time this node out");
            return;
        }
        let goodbye = async {
            if entries_released {
                let _ = released_rx.await;
            }
            if let Ok(store) = self.store().await {
                let key = directory::node_key(self.settings.node.id.as_str());
                if let Err(error) = store.delete(&key).await {
                    tracing::debug!(%error, "node lease not deleted");
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
}
