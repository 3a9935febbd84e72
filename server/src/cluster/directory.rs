//! The cluster-wide directory: one JetStream KV bucket holding node leases and room entries.
//!
//! - `node.<node_id>`: a node's lease ([`NodeRecord`]), renewed by compare-and-swap every tenth
//!   of the lease. It names the node's current incarnation.
//! - `room.<room_id>`: a room entry ([`RoomRecord`]), created by compare-and-swap (exactly one
//!   creator wins) and naming the node *and incarnation* that holds it. It is rewritten only
//!   when its listing changes or, rarely, to keep the bucket's `max_age` from collecting it; a
//!   room is alive exactly while its node's incarnation is (see [`super::lease`]).
//!
//! Every node keeps a [`Replica`] of the bucket from one watch, stamping node entries with local
//! receipt time, so listings and routing never wait on NATS and never trust another clock.
//! The bucket's `max_age` only collects garbage (entries of dead incarnations); nothing relies
//! on it for correctness.
//!
//! nats-server 2.9 (Debian's) answers JetStream's "create KV" call in a shape async-nats 0.51
//! cannot parse, so the bucket's stream is created directly and then opened as a KV store.

use super::lease::{Incarnation, LeaseTiming, Liveness, PeerLeases};
use crate::directory::RoomInfo;
use crate::paging::{select_page, Cursor, PageRequest};
use async_nats::jetstream::{self, kv, stream};
use ludus_protocol::RoomId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The KV bucket holding node leases and room entries.
pub const BUCKET: &str = "ludus_directory";

/// How long an entry nobody rewrites survives in the bucket: long, since it only collects
/// garbage; owners rewrite their room entries every third of it.
pub fn garbage_age(timing: LeaseTiming) -> Duration {
    (timing.lease * 10).max(Duration::from_secs(30))
}

/// The key of a node's lease.
pub fn node_key(node: &str) -> String {
    format!("node.{node}")
}

/// The key of a room's entry.
pub fn room_key(room_id: &RoomId) -> String {
    format!("room.{room_id}")
}

/// A node's lease entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node.
    pub node: String,
    /// Its current registration.
    pub incarnation: Incarnation,
}

/// One room's directory entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomRecord {
    /// The node holding the room (and its actor).
    pub node: String,
    /// The registration of that node the room lives under.
    pub incarnation: Incarnation,
    /// That node's region.
    pub region: String,
    /// The room's epoch.
    pub epoch: u64,
    /// Its listing.
    pub info: RoomInfo,
}

fn to_bytes(value: &impl Serialize) -> bytes::Bytes {
    // expect: records are structs of strings, numbers and JSON values, which always serialize.
    bytes::Bytes::from(serde_json::to_vec(value).expect("records serialize"))
}

impl RoomRecord {
    /// The JSON stored in the bucket.
    pub fn to_bytes(&self) -> bytes::Bytes {
        to_bytes(self)
    }

    /// Parses a stored entry; `None` for foreign or corrupt values.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

impl NodeRecord {
    /// The JSON stored in the bucket.
    pub fn to_bytes(&self) -> bytes::Bytes {
        to_bytes(self)
    }
}

/// Opens the bucket, creating its stream when missing. On disk, so a broker restart keeps the
/// entries: rooms a long outage fenced still name their old incarnation afterwards, which then
/// lapses, and failover restores them from their checkpoints instead of forgetting them.
pub async fn open_bucket(
    jetstream: &jetstream::Context,
    timing: LeaseTiming,
) -> Result<kv::Store, async_nats::Error> {
    let config = stream::Config {
        max_age: garbage_age(timing),
        storage: stream::StorageType::File,
        deny_delete: true,
        ..Default::default()
    };
    open_kv(jetstream, BUCKET, config).await
}

/// Opens the key-value bucket `name`, creating its stream from `config` (storage, age and size
/// limits) when missing. Ludus creates the stream itself because async-nats's
/// `create_key_value` cannot parse nats-server 2.9's reply; the settings that make a stream a
/// key-value bucket (one value per key, roll-ups, direct gets) are set here for every bucket.
pub async fn open_kv(
    jetstream: &jetstream::Context,
    name: &str,
    config: stream::Config,
) -> Result<kv::Store, async_nats::Error> {
    if let Ok(store) = jetstream.get_key_value(name).await {
        return Ok(store);
    }
    jetstream
        .get_or_create_stream(stream::Config {
            name: format!("KV_{name}"),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            allow_rollup: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: 1,
            ..config
        })
        .await?;
    Ok(jetstream.get_key_value(name).await?)
}

/// The current entry under `key` with its revision; `None` when absent or deleted.
pub async fn read(
    store: &kv::Store,
    key: &str,
) -> Result<Option<(u64, bytes::Bytes)>, async_nats::Error> {
    Ok(store
        .entry(key)
        .await?
        .filter(|entry| entry.operation == kv::Operation::Put)
        .map(|entry| (entry.revision, entry.value)))
}

/// Writes `value` under `key` if the entry is still at `expected` (`None`: absent or deleted).
/// `Ok(None)` when another writer got there first.
pub async fn swap(
    store: &kv::Store,
    key: &str,
    value: bytes::Bytes,
    expected: Option<u64>,
) -> Result<Option<u64>, async_nats::Error> {
    let written =
        match expected {
            Some(revision) => store
                .update(key, value, revision)
                .await
                .map_err(|error| match error.kind() {
                    kv::UpdateErrorKind::WrongLastRevision => None,
                    _ => Some(async_nats::Error::from(error)),
                }),
            None => store
                .create(key, value)
                .await
                .map_err(|error| match error.kind() {
                    kv::CreateErrorKind::AlreadyExists => None,
                    _ => Some(async_nats::Error::from(error)),
                }),
        };
    match written {
        Ok(revision) => Ok(Some(revision)),
        Err(None) => Ok(None),
        Err(Some(error)) => Err(error),
    }
}

/// Removes the entry under `key` if it is still at `revision`.
pub async fn release(store: &kv::Store, key: &str, revision: u64) {
    if let Err(error) = store.delete_expect_revision(key, Some(revision)).await {
        tracing::debug!(%key, %error, "entry not released (expired or taken over)");
    }
}

#[derive(Default)]
struct Contents {
    rooms: HashMap<RoomId, (u64, RoomRecord)>,
    peers: PeerLeases,
}

/// This node's replica of the bucket, fed by a watch.
#[derive(Default)]
pub struct Replica {
    contents: Mutex<Contents>,
}

impl Replica {
    fn contents(&self) -> std::sync::MutexGuard<'_, Contents> {
        self.contents
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// A new watch starts at `now` (it replays the bucket first).
    pub fn watch_started(&self, now: Instant) {
        let mut contents = self.contents();
        contents.rooms.clear();
        contents.peers.watch_started(now);
    }

    /// The watch broke.
    pub fn watch_lost(&self) {
        self.contents().peers.watch_lost();
    }

    /// Applies one watched entry, received at `now`.
    pub fn apply(&self, entry: &kv::Entry, now: Instant) {
        let put = entry.operation == kv::Operation::Put;
        let mut contents = self.contents();
        if let Some(node) = entry.key.strip_prefix("node.") {
            let record = serde_json::from_slice::<NodeRecord>(&entry.value).ok();
            match record.filter(|_| put) {
                Some(record) => {
                    contents
                        .peers
                        .observe(node, record.incarnation, entry.revision, now)
                }
                None => contents.peers.forget(node),
            }
        } else if let Some(room) = entry.key.strip_prefix("room.") {
            let Ok(room_id) = RoomId::parse(room) else {
                return;
            };
            match RoomRecord::from_bytes(&entry.value).filter(|_| put) {
                Some(record) => {
                    contents.rooms.insert(room_id, (entry.revision, record));
                }
                None => {
                    contents.rooms.remove(&room_id);
                }
            }
        }
    }

    /// Whether the bucket has been watched without a break for long enough to trust absence.
    pub fn is_settled(&self, now: Instant, timing: LeaseTiming) -> bool {
        self.contents().peers.is_settled(now, timing)
    }

    /// The liveness of a record's holder.
    pub fn liveness(&self, record: &RoomRecord, now: Instant, timing: LeaseTiming) -> Liveness {
        self.contents()
            .peers
            .liveness(&record.node, record.incarnation, now, timing)
    }

    /// Whether `node` holds a lease under any incarnation (see [`PeerLeases::holds_a_lease`]).
    pub fn holds_a_lease(&self, node: &str, now: Instant, timing: LeaseTiming) -> bool {
        self.contents().peers.holds_a_lease(node, now, timing)
    }

    /// The latest revision of `node`'s lease entry this node has received.
    pub fn node_revision(&self, node: &str) -> Option<u64> {
        self.contents().peers.revision(node)
    }

    /// Entries whose holder's lease has lapsed, with their revisions (rooms a failover may
    /// restore elsewhere).
    pub fn lapsed(&self, now: Instant, timing: LeaseTiming) -> Vec<(u64, RoomRecord)> {
        self.with_liveness((now, timing), |rooms, liveness| {
            rooms
                .values()
                .filter(|(_, record)| liveness(record) == Liveness::Lapsed)
                .cloned()
                .collect()
        })
    }

    /// A room's entry and its revision, live or not.
    pub fn get(&self, room_id: &RoomId) -> Option<(u64, RoomRecord)> {
        self.contents().rooms.get(room_id).cloned()
    }

    /// The records, borrowed for `visit` with the liveness of each one's holder at `live_at`.
    fn with_liveness<T>(
        &self,
        live_at: (Instant, LeaseTiming),
        visit: impl FnOnce(&HashMap<RoomId, (u64, RoomRecord)>, &dyn Fn(&RoomRecord) -> Liveness) -> T,
    ) -> T {
        let contents = self.contents();
        let (now, timing) = live_at;
        let liveness = |record: &RoomRecord| {
            contents
                .peers
                .liveness(&record.node, record.incarnation, now, timing)
        };
        visit(&contents.rooms, &liveness)
    }

    /// One page of the live records matching `filter`, oldest first, and the next page's
    /// cursor; only the page's records are copied.
    pub fn page(
        &self,
        live_at: (Instant, LeaseTiming),
        filter: impl Fn(&RoomRecord) -> bool,
        request: &PageRequest,
    ) -> (Vec<RoomRecord>, Option<Cursor>) {
        self.with_liveness(live_at, |rooms, liveness| {
            let keys = rooms
                .values()
                .map(|(_, record)| record)
                .filter(|record| liveness(record) == Liveness::Live && filter(record))
                .map(|record| Cursor {
                    created_at_ms: record.info.created_at_ms,
                    room_id: record.info.room_id.clone(),
                });
            let (keys, next) = select_page(keys, request);
            let page = keys
                .iter()
                .filter_map(|key| rooms.get(&key.room_id))
                .map(|(_, record)| record.clone())
                .collect();
            (page, next)
        })
    }

    /// Live records matching `filter`, oldest room first.
    pub fn list(
        &self,
        live_at: (Instant, LeaseTiming),
        filter: impl Fn(&RoomRecord) -> bool,
    ) -> Vec<RoomRecord> {
        let mut records: Vec<RoomRecord> = self.with_liveness(live_at, |rooms, liveness| {
            rooms
                .values()
                .map(|(_, record)| record)
                .filter(|record| liveness(record) == Liveness::Live && filter(record))
                .cloned()
                .collect()
        });
        records.sort_by(|a, b| {
            (a.info.created_at_ms, &a.info.room_id).cmp(&(b.info.created_at_ms, &b.info.room_id))
        });
        records
    }
}
