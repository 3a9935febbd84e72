//! A local cluster for tests: its own `nats-server` and several real nodes on loopback, in two
//! regions (`eu` falls back to `us`).
//!
//! Every node's listener is bound first (port 0), then the region file is written with those
//! ports, then the nodes start on their listeners, so no port is ever guessed.

use crate::nats::NatsServer;
use crate::{bind_loopback, eventually, get_json, test_config, TestServer};
use ludus_server::game::GameRegistry;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Heartbeat interval of test clusters, in milliseconds.
pub const HEARTBEAT_MS: u64 = 200;
/// Node timeout of test clusters, in milliseconds.
pub const NODE_TIMEOUT_MS: u64 = 1_200;
/// Room lease of test clusters, in milliseconds.
pub const LEASE_MS: u64 = 3_000;

/// A running cluster.
pub struct TestCluster {
    // Field order is drop order: nodes leave the cluster before NATS goes away.
    nodes: Vec<(String, Option<TestServer>)>,
    /// The cluster's NATS.
    pub nats: NatsServer,
    regions_file: PathBuf,
    _dir: tempfile::TempDir,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

/// One cluster at a time per test binary: a nats-server and three nodes each, run in parallel on
/// a 2-core CI machine, would starve heartbeats and fail on timing instead of behaviour.
static TURN: std::sync::LazyLock<std::sync::Arc<tokio::sync::Mutex<()>>> =
    std::sync::LazyLock::new(Default::default);

impl TestCluster {
    /// Starts `nodes` (`(node id, region)` pairs; regions `eu` and `us`) and waits until every
    /// node sees every other.
    pub async fn start(nodes: &[(&str, &str)]) -> anyhow::Result<Self> {
        let turn = std::sync::Arc::clone(&TURN).lock_owned().await;
        let nats = NatsServer::start()?;
        let dir = tempfile::tempdir()?;
        let listeners: Vec<_> = nodes.iter().map(|_| bind_loopback()).collect();
        let mut text = format!(
            "version = 1\ndefault_region = \"eu\"\n\n[cluster]\nnats_url = \"{}\"\n\
             heartbeat_interval_ms = {HEARTBEAT_MS}\nnode_timeout_ms = {NODE_TIMEOUT_MS}\n\n\
             [regions.eu]\naliases = [\"DE\", \"FRA\"]\nfallbacks = [\"us\"]\n\n\
             [regions.us]\naliases = [\"US\"]\n",
            nats.url()
        );
        for ((id, region), listener) in nodes.iter().zip(&listeners) {
            let addr = listener.local_addr()?;
            write!(
                text,
                "\n[[nodes]]\nid = \"{id}\"\nregion = \"{region}\"\nws_url = \"ws://{addr}\"\n\
                 http_url = \"http://{addr}\"\nweight = 1\n"
            )?;
        }
        let regions_file = dir.path().join("regions.toml");
        std::fs::write(&regions_file, text)?;
        let mut started = Vec::new();
        for ((id, _), listener) in nodes.iter().zip(listeners) {
            let mut config = test_config();
            config.server.workers = 1;
            config.server.room_threads = 1;
            config.cluster.regions_file = Some(regions_file.clone());
            config.cluster.node_id = Some((*id).to_owned());
            config.cluster.lease_ms = LEASE_MS;
            let server = TestServer::start_on(listener, config, GameRegistry::builtin());
            started.push(((*id).to_owned(), Some(server)));
        }
        let cluster = Self {
            nats,
            nodes: started,
            regions_file,
            _dir: dir,
            _turn: turn,
        };
        for (id, _) in nodes {
            cluster.wait_for_live(id, nodes.len()).await?;
        }
        Ok(cluster)
    }

    /// The node called `id`.
    pub fn node(&self, id: &str) -> &TestServer {
        self.nodes
            .iter()
            .find(|(node, _)| node == id)
            .and_then(|(_, server)| server.as_ref())
            .unwrap_or_else(|| panic!("no running node `{id}`"))
    }

    /// The region file the nodes share.
    pub fn regions_file(&self) -> &PathBuf {
        &self.regions_file
    }

    /// Crashes node `id` (no goodbye to the cluster).
    pub fn kill(&mut self, id: &str) {
        if let Some((_, server)) = self.nodes.iter_mut().find(|(node, _)| node == id) {
            if let Some(server) = server.take() {
                server.kill();
            }
        }
    }

    /// Waits until every running node reports its NATS connection up (`GET /healthz`).
    pub async fn wait_for_nats(&self) -> anyhow::Result<()> {
        for server in self.nodes.iter().filter_map(|(_, server)| server.as_ref()) {
            let url = format!("{}/healthz", server.http_url());
            eventually(|| async {
                let health = get_json(&url).await?;
                Ok((health["cluster"]["nats_connected"] == true).then_some(()))
            })
            .await?;
        }
        Ok(())
    }

    /// Live nodes as `on` sees them (`GET /v1/regions`).
    pub async fn live_nodes(&self, on: &str) -> anyhow::Result<u64> {
        let regions = get_json(&format!("{}/v1/regions", self.node(on).http_url())).await?;
        Ok(regions["regions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|region| region["live_nodes"].as_u64())
            .sum())
    }

    /// Waits until node `on` sees exactly `count` live nodes.
    pub async fn wait_for_live(&self, on: &str, count: usize) -> anyhow::Result<()> {
        eventually(|| async {
            let live = self.live_nodes(on).await?;
            Ok((live == count as u64).then_some(()))
        })
        .await
    }
}
