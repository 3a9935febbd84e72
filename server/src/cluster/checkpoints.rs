//! The checkpoint writer: stores the rooms' checkpoints in the JetStream key-value bucket
//! `ludus_checkpoints` (key: the room id; one value per key), and deletes a room's entry when
//! it ends for good.
//!
//! Unlike the room directory (in memory, rebuilt by live owners after a broker restart), this
//! bucket is on disk: a checkpoint must outlive both its node and a broker restart. Durability
//! is JetStream's as configured: a single `nats-server` acknowledges a write once it is in the
//! file store's buffer and fsyncs it later (`sync_interval`, 2 minutes by default), so a power
//! loss of the broker's host can lose acknowledged checkpoints (Jepsen found the same of NATS
//! 2.12.1 under its default lazy fsync). Ludus assumes the broker process, not its host, is what
//! fails; a room that lost its last checkpoint that way restarts from an older one or, with
//! none, is lost like a room of a node without NATS. Operators who need more set
//! `sync_interval: always` or run a replicated JetStream cluster (README, "Durability").
//!
//! Writes run concurrently (up to [`IN_FLIGHT`]) so one slow acknowledgement does not hold
//! the others back; the rooms never wait for any of it (they queue through
//! [`crate::checkpoint::CheckpointSink`]).

use crate::checkpoint::{CheckpointQueue, CheckpointWrite};
use crate::metrics::Metrics;
use async_nats::jetstream::{self, kv, stream};
use std::time::Duration;
use tokio::task::JoinSet;

/// The bucket's name.
pub const BUCKET: &str = "ludus_checkpoints";

/// Writes waiting for JetStream's acknowledgement at most.
const IN_FLIGHT: usize = 64;

/// How long an entry stays without being rewritten: longer than any configurable interval
/// (600 s), so only checkpoints of rooms nobody hosts any more expire.
const MAX_AGE: Duration = Duration::from_secs(30 * 60);

/// Pause before retrying to open the bucket.
const RETRY: Duration = Duration::from_millis(500);

/// Opens the bucket, creating its stream when missing.
pub async fn open_bucket(
    jetstream: &jetstream::Context,
    max_value_bytes: usize,
) -> Result<kv::Store, async_nats::Error> {
    let config = stream::Config {
        max_message_size: i32::try_from(max_value_bytes + 1024).unwrap_or(i32::MAX),
        max_age: MAX_AGE,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    super::directory::open_kv(jetstream, BUCKET, config).await
}

/// Writes what rooms queue until every room's sink is gone.
pub async fn run(jetstream: jetstream::Context, queue: CheckpointQueue, metrics: Metrics) {
    let CheckpointQueue {
        mut writes_rx,
        max_bytes: max_value_bytes,
    } = queue;
    let store = loop {
        match open_bucket(&jetstream, max_value_bytes).await {
            Ok(store) => break store,
            Err(error) => {
                tracing::warn!(%error, "cannot open the checkpoint bucket; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    let mut in_flight = JoinSet::new();
    while let Some(write) = writes_rx.recv().await {
        // A room's writes must land in order: its last checkpoint may still be in flight when
        // it ends, and the purge must come after it.
        let ordered = matches!(write, CheckpointWrite::Forget { .. });
        while in_flight.len() >= IN_FLIGHT || (ordered && !in_flight.is_empty()) {
            in_flight.join_next().await;
        }
        let store = store.clone();
        let metrics = metrics.clone();
        in_flight.spawn(async move { apply(&store, write, &metrics).await });
        // Reap finished writes as we go, so the set stays small when JetStream keeps up.
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

async fn apply(store: &kv::Store, write: CheckpointWrite, metrics: &Metrics) {
    let outcomes = &metrics.checkpoints;
    match write {
        CheckpointWrite::Put { room_id, bytes } => {
            let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            match store.put(room_id.as_str(), bytes.into()).await {
                Ok(_) => {
                    outcomes.with_label_values(&["written"]).inc();
                    metrics.checkpoint_bytes.inc_by(size);
                }
                Err(error) => {
                    tracing::warn!(%room_id, %error, "checkpoint not stored");
                    outcomes.with_label_values(&["failed"]).inc();
                }
            }
        }
        CheckpointWrite::Forget { room_id } => {
            if let Err(error) = store.purge(room_id.as_str()).await {
                tracing::warn!(%room_id, %error, "checkpoint of an ended room not purged");
            }
        }
    }
}
