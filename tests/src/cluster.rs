//! A local cluster for tests: its own `nats-server` and several real nodes on loopback, in two
//! regions (`eu` falls back to `us`).
//!
//! Every node's listener is bound first (port 0), then the region file is written with those
//! ports, then the nodes start on their listeners, so no port is ever guessed.

use crate::nats::NatsServer;
use crate::{bind_loopback, eventually, eventually_within, get_json, test_config, TestServer};
use anyhow::Context as _;
use ludus_server::config::ServerConfig;
use ludus_server::game::GameRegistry;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

/// Heartbeat interval of test clusters, in milliseconds.
pub const HEARTBEAT_MS: u64 = 200;
/// Node timeout of test clusters, in milliseconds.
pub const NODE_TIMEOUT_MS: u64 = 1_200;
/// Room lease of test clusters, in milliseconds.
pub const LEASE_MS: u64 = 4_000;

/// Longest wait for a node to hold its lease and trust its view of the directory (one lease and
/// a guard after it connects, plus reconnect back-off on a loaded machine).
pub const SETTLE_WAIT: Duration = Duration::from_secs(20);

/// One node of the cluster: running or crashed, restartable on the same address.
struct NodeSlot {
    id: String,
    addr: SocketAddr,
    config: ServerConfig,
    server: Option<TestServer>,
}

/// The region file of a test cluster: regions `eu` (falling back to `us`) and `us`, and
/// `nodes` as `(id, region, address)`, each serving HTTP and WebSocket on its address.
pub(crate) fn region_file(nats_url: &str, nodes: &[(&str, &str, String)]) -> String {
    let mut text = format!(
        "version = 1\ndefault_region = \"eu\"\n\n[cluster]\nnats_url = \"{nats_url}\"\n\
         heartbeat_interval_ms = {HEARTBEAT_MS}\nnode_timeout_ms = {NODE_TIMEOUT_MS}\n\n\
         [regions.eu]\naliases = [\"DE\", \"FRA\"]\nfallbacks = [\"us\"]\n\n\
         [regions.us]\naliases = [\"US\"]\n"
    );
    for (id, region, addr) in nodes {
        // expect: writing to a String cannot fail.
        write!(
            text,
            "\n[[nodes]]\nid = \"{id}\"\nregion = \"{region}\"\nws_url = \"ws://{addr}\"\n\
             http_url = \"http://{addr}\"\nweight = 1\n"
        )
        .expect("a String takes any write");
    }
    text
}

/// The config of test cluster node `id` (one worker, one room thread, the test lease).
pub(crate) fn node_config(regions_file: &std::path::Path, id: &str) -> ServerConfig {
    let mut config = test_config();
    config.server.workers = 1;
    config.server.room_threads = 1;
    config.cluster.regions_file = Some(regions_file.to_path_buf());
    config.cluster.node_id = Some(id.to_owned());
    config.cluster.lease_ms = LEASE_MS;
    // Tests end their clusters by shutting every node down: without this, each node would
    // first hand its rooms to peers that are stopping too. Drain tests turn it on.
    config.cluster.drain_on_shutdown = false;
    config
}

/// A running cluster.
pub struct TestCluster {
    // Field order is drop order: nodes leave the cluster before NATS goes away.
    nodes: Vec<NodeSlot>,
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
        Self::start_with_external(nodes, &[]).await
    }

    /// Like [`start`](Self::start), with `external` nodes in the region file too (placeholder
    /// URLs), to be run as processes with [`external_config`](Self::external_config). Waits only
    /// for the in-process nodes to see each other.
    pub async fn start_with_external(
        nodes: &[(&str, &str)],
        external: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::start_configured(nodes, external, |_| {}).await
    }

    /// Like [`start_with_external`](Self::start_with_external), with every node's config
    /// passed through `tweak` first.
    pub async fn start_configured(
        nodes: &[(&str, &str)],
        external: &[(&str, &str)],
        tweak: impl Fn(&mut ServerConfig),
    ) -> anyhow::Result<Self> {
        let turn = std::sync::Arc::clone(&TURN).lock_owned().await;
        let nats = NatsServer::start()?;
        let dir = tempfile::tempdir()?;
        let listeners: Vec<_> = nodes.iter().map(|_| bind_loopback()).collect();
        let mut entries = Vec::new();
        for ((id, region), listener) in nodes.iter().zip(&listeners) {
            entries.push((*id, *region, listener.local_addr()?.to_string()));
        }
        // External nodes get a placeholder address (redirects to them are not what such tests
        // check).
        for (id, region) in external {
            entries.push((*id, *region, "127.0.0.1:9".to_owned()));
        }
        let text = region_file(&nats.url(), &entries);
        let regions_file = dir.path().join("regions.toml");
        std::fs::write(&regions_file, text)?;
        let mut started = Vec::new();
        for ((id, _), listener) in nodes.iter().zip(listeners) {
            let mut config = node_config(&regions_file, id);
            tweak(&mut config);
            let addr = listener.local_addr()?;
            let server = TestServer::start_on(listener, config.clone(), GameRegistry::builtin());
            started.push(NodeSlot {
                id: (*id).to_owned(),
                addr,
                config,
                server: Some(server),
            });
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
        cluster.wait_until_settled().await?;
        Ok(cluster)
    }

    /// Waits until every running node holds its lease and trusts its view of the directory
    /// (`/healthz`), so explicit room ids can be claimed anywhere.
    pub async fn wait_until_settled(&self) -> anyhow::Result<()> {
        for server in self.running() {
            let url = format!("{}/healthz", server.http_url());
            eventually_within(SETTLE_WAIT, || async {
                let health = get_json(&url).await?;
                let cluster = &health["cluster"];
                Ok(
                    (cluster["lease_held"] == true && cluster["directory_settled"] == true)
                        .then_some(()),
                )
            })
            .await?;
        }
        Ok(())
    }

    fn running(&self) -> impl Iterator<Item = &TestServer> {
        self.nodes.iter().filter_map(|slot| slot.server.as_ref())
    }

    /// Starts a crashed node again, on its old address and with its old config (a fast
    /// restart after a crash).
    pub fn restart(&mut self, id: &str) -> anyhow::Result<()> {
        let slot = self
            .nodes
            .iter_mut()
            .find(|slot| slot.id == id)
            .with_context(|| format!("no node `{id}`"))?;
        anyhow::ensure!(slot.server.is_none(), "node `{id}` is running");
        let listener = TcpListener::bind(slot.addr)?;
        slot.server = Some(TestServer::start_on(
            listener,
            slot.config.clone(),
            GameRegistry::builtin(),
        ));
        Ok(())
    }

    /// The config of node `id`, e.g. for a node run as a process.
    pub fn external_config(&self, id: &str) -> ServerConfig {
        node_config(&self.regions_file, id)
    }

    /// The node called `id`.
    pub fn node(&self, id: &str) -> &TestServer {
        self.nodes
            .iter()
            .find(|slot| slot.id == id)
            .and_then(|slot| slot.server.as_ref())
            .unwrap_or_else(|| panic!("no running node `{id}`"))
    }

    /// Which of `candidates` (node ids) is the running node whose address `url` names.
    pub fn host_of<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a str>,
        url: &str,
    ) -> anyhow::Result<&'a str> {
        candidates
            .into_iter()
            .find(|id| {
                self.nodes.iter().any(|slot| {
                    slot.id == *id && slot.server.is_some() && url.contains(&slot.addr.to_string())
                })
            })
            .with_context(|| format!("no running node serves {url}"))
    }

    /// The region file the nodes share.
    pub fn regions_file(&self) -> &PathBuf {
        &self.regions_file
    }

    /// Shuts node `id` down as SIGTERM does (a drain first when its config asks for one).
    pub async fn shutdown(&mut self, id: &str) -> anyhow::Result<()> {
        let slot = self
            .nodes
            .iter_mut()
            .find(|slot| slot.id == id)
            .with_context(|| format!("no node `{id}`"))?;
        let server = slot
            .server
            .take()
            .with_context(|| format!("node `{id}` is not running"))?;
        server.shutdown().await
    }

    /// Crashes node `id` (no goodbye to the cluster).
    pub fn kill(&mut self, id: &str) {
        if let Some(slot) = self.nodes.iter_mut().find(|slot| slot.id == id) {
            if let Some(server) = slot.server.take() {
                server.kill();
            }
        }
    }

    /// Waits until every running node reports its NATS connection up (`GET /healthz`).
    pub async fn wait_for_nats(&self) -> anyhow::Result<()> {
        for server in self.running() {
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
