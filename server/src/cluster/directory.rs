//! The cluster-wide room directory: one JetStream KV entry per room, held as a lease.
//!
//! A room's entry is created with compare-and-swap (`create` succeeds for exactly one node), then
//! renewed by its node with `update` on the last revision every third of the lease. The bucket's
//! `max_age` is the lease: an entry its node stops renewing disappears. So:
//! - creation is idempotent: racing creators of one room id end with exactly one lease holder,
//!   and only the holder starts an actor;
//! - a node whose renewal finds another node's entry has lost the lease and stops serving the
//!   room (close code 4013, `room_moved`);
//! - while NATS is unreachable nothing can take a lease away, so rooms keep playing; renewals
//!   resume (re-creating entries a restarted NATS lost) when it returns.
//!
//! Every node also keeps a replica of the bucket from a watch, so listings and routing never
//! wait on NATS; listings hide entries whose node is not live or whose renewal is stale.
//!
//! nats-server 2.9 (Debian's) answers JetStream's "create KV" call in a shape async-nats 0.51
//! cannot parse, so the bucket's stream is created directly and then opened as a KV store.

use crate::directory::RoomInfo;
use crate::paging::{select_page, Cursor, PageRequest};
use async_nats::jetstream::{self, kv, stream};
use ludus_protocol::RoomId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The KV bucket holding room leases.
pub const BUCKET: &str = "ludus_rooms";

/// One room's directory entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomRecord {
    /// The node holding the lease (and the room's actor).
    pub node: String,
    /// That node's region.
    pub region: String,
    /// The room's epoch.
    pub epoch: u64,
    /// Its listing.
    pub info: RoomInfo,
    /// When the node last renewed the lease, Unix milliseconds.
    pub renewed_at_ms: u64,
}

impl RoomRecord {
    /// The JSON stored in the bucket.
    pub fn to_bytes(&self) -> bytes::Bytes {
        // expect: a struct of strings, numbers and JSON values always serializes.
        bytes::Bytes::from(serde_json::to_vec(self).expect("records serialize"))
    }

    /// Parses a stored entry; `None` for foreign or corrupt values.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Opens the bucket, creating its stream when missing.
pub async fn open_bucket(
    jetstream: &jetstream::Context,
    lease: Duration,
) -> Result<kv::Store, async_nats::Error> {
    if let Ok(store) = jetstream.get_key_value(BUCKET).await {
        return Ok(store);
    }
    jetstream
        .get_or_create_stream(stream::Config {
            name: format!("KV_{BUCKET}"),
            subjects: vec![format!("$KV.{BUCKET}.>")],
            max_messages_per_subject: 1,
            max_age: lease,
            storage: stream::StorageType::Memory,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: 1,
            ..Default::default()
        })
        .await?;
    Ok(jetstream.get_key_value(BUCKET).await?)
}

/// The outcome of trying to take a room's lease.
#[derive(Debug)]
pub enum Claim {
    /// This node holds it now, at this revision.
    Taken(u64),
    /// Another holder (possibly this node, from an earlier attempt) has it.
    Held(Box<RoomRecord>),
}

/// Creates the room's entry unless one exists.
pub async fn claim(store: &kv::Store, record: &RoomRecord) -> Result<Claim, async_nats::Error> {
    let key = record.info.room_id.as_str();
    match store.create(key, record.to_bytes()).await {
        Ok(revision) => Ok(Claim::Taken(revision)),
        Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
            let held = store
                .get(key)
                .await?
                .as_deref()
                .and_then(RoomRecord::from_bytes)
                .ok_or("the room's entry vanished while claiming it; retry")?;
            Ok(Claim::Held(Box::new(held)))
        }
        Err(error) => Err(error.into()),
    }
}

/// What a renewal found.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Renewed (or re-created after NATS lost it) at this revision.
    Renewed(u64),
    /// Another node holds the lease now: stop serving the room.
    Lost {
        /// The new holder.
        holder: String,
    },
}

/// Renews `record` at `revision`, reclaiming an entry that expired or was lost with NATS.
pub async fn renew(
    store: &kv::Store,
    record: &RoomRecord,
    revision: u64,
) -> Result<Renewal, async_nats::Error> {
    let key = record.info.room_id.as_str();
    match store.update(key, record.to_bytes(), revision).await {
        Ok(revision) => return Ok(Renewal::Renewed(revision)),
        Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
        Err(error) => return Err(error.into()),
    }
    let current = store.entry(key).await?;
    match current {
        Some(entry) if entry.operation == kv::Operation::Put => {
            match RoomRecord::from_bytes(&entry.value) {
                Some(held) if held.node != record.node => Ok(Renewal::Lost { holder: held.node }),
                // Our own entry at a revision we lost track of: adopt it and write over it.
                _ => {
                    let revision = store.update(key, record.to_bytes(), entry.revision).await?;
                    Ok(Renewal::Renewed(revision))
                }
            }
        }
        _ => match claim(store, record).await? {
            Claim::Taken(revision) => Ok(Renewal::Renewed(revision)),
            Claim::Held(held) if held.node == record.node => {
                Err("the room's entry changed while reclaiming it; retry".into())
            }
            Claim::Held(held) => Ok(Renewal::Lost { holder: held.node }),
        },
    }
}

/// Removes the room's entry if this node still holds it at `revision`.
pub async fn release(store: &kv::Store, room_id: &RoomId, revision: u64) {
    if let Err(error) = store
        .delete_expect_revision(room_id.as_str(), Some(revision))
        .await
    {
        tracing::debug!(room_id = %room_id, %error, "lease not released (expired or taken over)");
    }
}

/// This node's replica of the bucket, fed by a watch.
#[derive(Default)]
pub struct Replica {
    records: Mutex<HashMap<RoomId, RoomRecord>>,
}

impl Replica {
    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, RoomRecord>> {
        self.records
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Forgets everything (before a fresh watch replays the bucket).
    pub fn clear(&self) {
        self.records().clear();
    }

    /// Applies one watched entry.
    pub fn apply(&self, entry: &kv::Entry) {
        let Ok(room_id) = RoomId::parse(&entry.key) else {
            return;
        };
        match entry.operation {
            kv::Operation::Put => {
                if let Some(record) = RoomRecord::from_bytes(&entry.value) {
                    self.records().insert(room_id, record);
                }
            }
            kv::Operation::Delete | kv::Operation::Purge => {
                self.records().remove(&room_id);
            }
        }
    }

    /// One room's record.
    pub fn get(&self, room_id: &RoomId) -> Option<RoomRecord> {
        self.records().get(room_id).cloned()
    }

    /// One page of the records matching `filter`, oldest first, and the next page's cursor;
    /// only the page's records are copied.
    pub fn page(
        &self,
        filter: impl Fn(&RoomRecord) -> bool,
        request: &PageRequest,
    ) -> (Vec<RoomRecord>, Option<Cursor>) {
        let records = self.records();
        let keys = records
            .values()
            .filter(|record| filter(record))
            .map(|record| Cursor {
                created_at_ms: record.info.created_at_ms,
                room_id: record.info.room_id.clone(),
            });
        let (keys, next) = select_page(keys, request);
        let page = keys
            .iter()
            .filter_map(|key| records.get(&key.room_id).cloned())
            .collect();
        (page, next)
    }

    /// Records matching `filter`, oldest room first.
    pub fn list(&self, filter: impl Fn(&RoomRecord) -> bool) -> Vec<RoomRecord> {
        let mut records: Vec<RoomRecord> = self
            .records()
            .values()
            .filter(|record| filter(record))
            .cloned()
            .collect();
        records.sort_by(|a, b| {
            (a.info.created_at_ms, &a.info.room_id).cmp(&(b.info.created_at_ms, &b.info.room_id))
        });
        records
    }
}
