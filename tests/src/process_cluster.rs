//! A cluster of node *processes* for chaos tests: its own `nats-server` and one
//! `ludus-test-node` process per node, each on a [`ReservedPort`] the region file names, so
//! seats and redirects carry real URLs and a node killed, stopped or drained comes back on the
//! same address.
//!
//! In-process nodes ([`crate::cluster::TestCluster`]) cannot be paused or killed with a signal;
//! these can. Every wait here is bounded; an HTTP error from a node that is down counts as "not
//! yet", never as a failure of the wait. Each node's stderr goes to `<dir>/<node>.log` (set
//! `RUST_LOG` to fill it), which outlives restarts so a failing test can point at it.

use crate::child::{ChildNode, ReservedPort};
use crate::cluster::{node_config, region_file};
use crate::nats::NatsServer;
use crate::{eventually_within, get_json};
use anyhow::Context as _;
use ludus_server::checkpoint::Checkpoint;
use ludus_server::cluster::checkpoints::BUCKET as CHECKPOINT_BUCKET;
use ludus_server::cluster::directory::BUCKET as DIRECTORY_BUCKET;
use ludus_server::config::ServerConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One node: its reserved address, its config and, while it runs, its process.
struct NodeSlot {
    id: String,
    port: ReservedPort,
    config: ServerConfig,
    process: Option<ChildNode>,
}

/// A running cluster of node processes.
pub struct ProcessCluster {
    // Field order is drop order: nodes go before NATS.
    nodes: Vec<NodeSlot>,
    /// The cluster's NATS.
    pub nats: NatsServer,
    binary: PathBuf,
    dir: tempfile::TempDir,
}

impl ProcessCluster {
    /// Starts `nodes` (`(node id, region)` pairs; regions `eu` and `us`, `eu` falling back to
    /// `us`) from `binary` with a node lease of `lease_ms`, and waits until every node is live
    /// as [`wait_until_live`](Self::wait_until_live) says.
    pub async fn start(
        binary: &Path,
        nodes: &[(&str, &str)],
        lease_ms: u64,
        within: Duration,
    ) -> anyhow::Result<Self> {
        let nats = NatsServer::start()?;
        let dir = tempfile::tempdir()?;
        let ports = nodes
            .iter()
            .map(|_| ReservedPort::new())
            .collect::<anyhow::Result<Vec<_>>>()?;
        let entries: Vec<(&str, &str, String)> = nodes
            .iter()
            .zip(&ports)
            .map(|((id, region), port)| (*id, *region, port.addr().to_string()))
            .collect();
        let text = region_file(&nats.url(), &entries);
        let regions_file = dir.path().join("regions.toml");
        std::fs::write(&regions_file, text)?;
        let slots = nodes
            .iter()
            .zip(ports)
            .map(|((id, _), port)| {
                let mut config = node_config(&regions_file, id);
                config.cluster.lease_ms = lease_ms;
                // A node process drains on SIGTERM, as shipped.
                config.cluster.drain_on_shutdown = true;
                NodeSlot {
                    id: (*id).to_owned(),
                    port,
                    config,
                    process: None,
                }
            })
            .collect();
        let mut cluster = Self {
            nodes: slots,
            nats,
            binary: binary.to_path_buf(),
            dir,
        };
        for (id, _) in nodes {
            cluster.start_node(id)?;
        }
        for (id, _) in nodes {
            cluster.wait_until_live(id, within).await?;
        }
        Ok(cluster)
    }

    fn slot(&self, id: &str) -> anyhow::Result<&NodeSlot> {
        self.nodes
            .iter()
            .find(|slot| slot.id == id)
            .with_context(|| format!("no node `{id}`"))
    }

    fn slot_mut(&mut self, id: &str) -> anyhow::Result<&mut NodeSlot> {
        self.nodes
            .iter_mut()
            .find(|slot| slot.id == id)
            .with_context(|| format!("no node `{id}`"))
    }

    /// The ids of every node, running or not, in layout order.
    pub fn ids(&self) -> Vec<String> {
        self.nodes.iter().map(|slot| slot.id.clone()).collect()
    }

    /// `http://<addr>` of node `id` (valid whether or not it runs).
    pub fn http_url(&self, id: &str) -> anyhow::Result<String> {
        Ok(format!("http://{}", self.slot(id)?.port.addr()))
    }

    /// The node whose address `url` names, if any.
    pub fn node_of_url(&self, url: &str) -> Option<String> {
        self.nodes
            .iter()
            .find(|slot| url.contains(&slot.port.addr().to_string()))
            .map(|slot| slot.id.clone())
    }

    /// Where node `id`'s stderr goes.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir.path().join(format!("{id}.log"))
    }

    /// The directory holding the region file and the node logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts node `id`'s process on its reserved address (it must not be running).
    pub fn start_node(&mut self, id: &str) -> anyhow::Result<()> {
        let log = self.log_path(id);
        let binary = self.binary.clone();
        let slot = self.slot_mut(id)?;
        anyhow::ensure!(slot.process.is_none(), "node `{id}` is running");
        slot.process = Some(ChildNode::spawn_on(
            &binary,
            &slot.config,
            &slot.port,
            &log,
        )?);
        Ok(())
    }

    fn process(&self, id: &str) -> anyhow::Result<&ChildNode> {
        self.slot(id)?
            .process
            .as_ref()
            .with_context(|| format!("node `{id}` is not running"))
    }

    /// `kill -9` of node `id`: no goodbye to the cluster, its sockets reset.
    pub fn kill(&mut self, id: &str) -> anyhow::Result<()> {
        let process = self
            .slot_mut(id)?
            .process
            .take()
            .with_context(|| format!("node `{id}` is not running"))?;
        process.kill();
        Ok(())
    }

    /// `SIGSTOP` of node `id`.
    pub fn pause(&self, id: &str) -> anyhow::Result<()> {
        self.process(id)?.pause()
    }

    /// `SIGCONT` of node `id`.
    pub fn resume(&self, id: &str) -> anyhow::Result<()> {
        self.process(id)?.resume()
    }

    /// `SIGTERM` of node `id`, then waits up to `within` for it to exit (a clustered node drains
    /// first). Returns how it exited.
    pub async fn terminate(
        &mut self,
        id: &str,
        within: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let mut process = self
            .slot_mut(id)?
            .process
            .take()
            .with_context(|| format!("node `{id}` is not running"))?;
        process.terminate()?;
        let (process, exited) = tokio::task::spawn_blocking(move || {
            let exited = process.wait_for_exit(within);
            (process, exited)
        })
        .await?;
        // Still running past the bound: `process` is dropped here, which kills it.
        drop(process);
        exited
    }

    /// Node `id`'s `/healthz`, or `None` when it does not answer.
    pub async fn health(&self, id: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let url = format!("{}/healthz", self.http_url(id)?);
        Ok(get_json(&url).await.ok())
    }

    /// Waits up to `within` until node `id` answers `/healthz` holding its lease, trusting its
    /// directory, and seeing every node of the cluster live.
    pub async fn wait_until_live(&self, id: &str, within: Duration) -> anyhow::Result<()> {
        let everyone = self.nodes.len() as u64;
        let regions_url = format!("{}/v1/regions", self.http_url(id)?);
        eventually_within(within, || async {
            let Some(health) = self.health(id).await? else {
                return Ok(None);
            };
            let cluster = &health["cluster"];
            if cluster["lease_held"] != true || cluster["directory_settled"] != true {
                return Ok(None);
            }
            let Ok(regions) = get_json(&regions_url).await else {
                return Ok(None);
            };
            let live: u64 = regions["regions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|region| region["live_nodes"].as_u64())
                .sum();
            Ok((live == everyone).then_some(()))
        })
        .await
        .with_context(|| {
            format!(
                "node `{id}` is not live (log: {})",
                self.log_path(id).display()
            )
        })
    }

    /// What the cluster's NATS holds about `rooms`, one line each: the directory entry (holder
    /// node and incarnation) and the checkpoint (epoch, tick), then every node lease. Evidence
    /// for a failure report; errors become text, and each read is bounded.
    pub async fn directory_dump(&self, rooms: &[String]) -> Vec<String> {
        let read = async {
            let client = async_nats::connect(self.nats.url()).await?;
            let jetstream = async_nats::jetstream::new(client);
            let directory = jetstream.get_key_value(DIRECTORY_BUCKET).await?;
            let checkpoints = jetstream.get_key_value(CHECKPOINT_BUCKET).await.ok();
            let mut lines = Vec::new();
            for room in rooms {
                let entry = directory.get(format!("room.{room}")).await?;
                let entry = entry.map_or_else(
                    || "no entry".to_owned(),
                    |bytes| String::from_utf8_lossy(&bytes).into_owned(),
                );
                let checkpoint = match &checkpoints {
                    Some(store) => match store.get(room).await? {
                        Some(bytes) => Checkpoint::decode(&bytes).map_or_else(
                            |error| format!("unreadable: {error}"),
                            |checkpoint| {
                                format!(
                                    "epoch {} tick {}",
                                    checkpoint.epoch, checkpoint.simulation.tick
                                )
                            },
                        ),
                        None => "none".to_owned(),
                    },
                    None => "no bucket".to_owned(),
                };
                lines.push(format!("{room}: entry {entry}; checkpoint {checkpoint}"));
            }
            for id in self.ids() {
                let lease = directory.get(format!("node.{id}")).await?;
                let lease = lease.map_or_else(
                    || "none".to_owned(),
                    |bytes| String::from_utf8_lossy(&bytes).into_owned(),
                );
                lines.push(format!("node {id}: lease {lease}"));
            }
            Ok::<_, anyhow::Error>(lines)
        };
        match tokio::time::timeout(Duration::from_secs(5), read).await {
            Ok(Ok(lines)) => lines,
            Ok(Err(error)) => vec![format!("cannot read the directory: {error:#}")],
            Err(_) => vec!["cannot read the directory within 5 s".to_owned()],
        }
    }
}
