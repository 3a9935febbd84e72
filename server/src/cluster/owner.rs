//! The two tasks that own this node's side of the directory.
//!
//! - [`Cluster::lease_loop`] owns the node lease ([`NodeLease`]): it registers an incarnation,
//!   renews it every tenth of the lease, moves the room [`Fence`](super::fence::Fence) forward
//!   after each acknowledged renewal, and fences when a renewal is overdue. It does nothing else,
//!   so no room write can delay a renewal.
//! - [`Cluster::entries_loop`] owns the room entries this node wrote: it learns of new ones from
//!   [`EntryCommand::Adopt`] (sent by a creation that won its claim), rewrites those whose listing
//!   changed, re-creates those a restarted broker lost, releases those of stopped rooms, and
//!   stops a room whose entry another node took. A round's writes run concurrently.
//!
//! Seam for checkpoints and failover: a failover task would sit beside these two, reading the
//! replica for rooms whose holder is [`Liveness::Lapsed`](super::lease::Liveness) and claiming
//! them with [`directory::swap`] at the entry's revision, exactly as a creation takes over a
//! lapsed id; a drain would send an `EntryCommand` that hands an entry to its next owner.

use super::directory::{self, RoomRecord};
use super::lease::{Incarnation, LeaseAction, NodeLease};
use super::Cluster;
use crate::directory::RoomInfo;
use crate::room::CloseRoom;
use futures_util::future::join_all;
use ludus_protocol::{CloseCode, RoomId};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Pause before retrying a failed node lease write.
const RETRY_WRITE: Duration = Duration::from_millis(100);

/// How often room entries are compared with the local rooms (listing changes are published at
/// this pace).
const ENTRY_ROUND: Duration = Duration::from_millis(250);

/// A message to the entries task.
#[derive(Debug)]
pub enum EntryCommand {
    /// A creation claimed this entry for the current incarnation.
    Adopt(Box<Published>),
    /// Stop writing (the node is leaving), then answer. The entries stay: the node lease's
    /// deletion makes them lapsed at once, so rooms the shutdown closed (their checkpoints kept)
    /// come back on other nodes, and entries of rooms that ended for good lapse away.
    Stop(oneshot::Sender<()>),
}

/// One entry this node wrote, as it last wrote it.
#[derive(Clone, Debug)]
pub struct Published {
    /// The room.
    pub room_id: RoomId,
    /// The entry's revision.
    pub revision: u64,
    /// The incarnation it names.
    pub incarnation: Incarnation,
    /// The listing it shows.
    pub info: RoomInfo,
    /// When it was written.
    pub written_at: Instant,
    /// Rewrite it next round whatever its age (a restarted broker may have lost it, or its
    /// revision is not the one last written).
    pub recheck: bool,
}

/// What one entry needs this round.
#[derive(Debug, PartialEq, Eq)]
enum EntryPlan {
    /// Up to date.
    Keep,
    /// Write it; `None` re-creates it (the broker lost it, or it is not written yet).
    Write(Option<u64>),
}

/// Decides one local room's entry: rewritten when its listing changed or a third of the
/// bucket's garbage age has passed; re-created when missing; entries of an older incarnation
/// are never rewritten (that incarnation is fenced).
fn plan_entry(
    published: Option<&Published>,
    info: &RoomInfo,
    incarnation: Incarnation,
    now: Instant,
    refresh: Duration,
) -> EntryPlan {
    match published {
        Some(entry) if entry.incarnation != incarnation => EntryPlan::Keep,
        Some(entry)
            if !entry.recheck
                && entry.info == *info
                && now.saturating_duration_since(entry.written_at) < refresh =>
        {
            EntryPlan::Keep
        }
        Some(entry) => EntryPlan::Write(Some(entry.revision)),
        None => EntryPlan::Write(None),
    }
}

/// The outcome of writing one entry.
enum Written {
    Done(Published),
    /// Someone else's entry is there now: the room is no longer ours.
    Lost(RoomId, String),
    /// Our own entry at a revision we lost track of, or a transient error: retry next round.
    Retry(RoomId, Option<u64>),
}

/// Deletes the entries, concurrently, each only if still at the revision this node wrote.
async fn release_entries(store: &async_nats::jetstream::kv::Store, entries: &[Published]) {
    let keys: Vec<(String, u64)> = entries
        .iter()
        .map(|entry| (directory::room_key(&entry.room_id), entry.revision))
        .collect();
    join_all(
        keys.iter()
            .map(|(key, revision)| directory::release(store, key, *revision)),
    )
    .await;
}

impl Cluster {
    /// Registers and renews the node lease; fences when a renewal is overdue.
    pub(super) async fn lease_loop(self: Arc<Self>) {
        let mut lease = NodeLease::Unregistered;
        let mut connections = self.connections.subscribe();
        let mut next_write = Instant::now();
        while !self.leaving.load(Ordering::Acquire) {
            let now = Instant::now();
            let wake = match &lease {
                NodeLease::Held { fence_at, .. } => next_write.min(*fence_at),
                _ => next_write,
            };
            if wake > now {
                tokio::select! {
                    () = tokio::time::sleep(wake - now) => {}
                    // Reconnected: a restarted broker lost the lease; renew at once.
                    _ = connections.changed() => next_write = Instant::now(),
                }
                continue;
            }
            let written = match lease.next_action(Instant::now(), self.lobby.directory().len()) {
                LeaseAction::Register => {
                    let incarnation = fastrand::u64(1..(1 << 53));
                    self.write_node_lease(&mut lease, incarnation, None).await
                }
                LeaseAction::Renew { revision } => match lease.incarnation() {
                    Some(incarnation) => {
                        self.write_node_lease(&mut lease, incarnation, Some(revision))
                            .await
                    }
                    None => false,
                },
                LeaseAction::Fence => {
                    self.fence(&mut lease);
                    true
                }
                LeaseAction::Wait => true,
            };
            self.incarnation_tx.send_replace(lease.incarnation());
            // A failed write is retried soon: the fence is at most four intervals away.
            let pause = if written {
                self.timing.renew_every()
            } else {
                RETRY_WRITE
            };
            next_write = Instant::now() + pause;
        }
    }

    /// One registration or renewal, bounded by a renewal interval so a slow broker cannot hold
    /// the loop past the fence.
    async fn write_node_lease(
        &self,
        lease: &mut NodeLease,
        incarnation: Incarnation,
        expected: Option<u64>,
    ) -> bool {
        if !self.is_connected() {
            return false;
        }
        let sent_at = Instant::now();
        let attempt = async {
            let store = self.store().await.ok()?;
            let key = directory::node_key(self.settings.node.id.as_str());
            let record = directory::NodeRecord {
                node: self.settings.node.id.to_string(),
                incarnation,
            };
            let revision = match expected {
                // Registration overwrites whatever an earlier run of this node left.
                None => match store.put(&key, record.to_bytes()).await {
                    Ok(revision) => revision,
                    Err(error) => {
                        tracing::debug!(%error, "node lease not registered");
                        self.forget_store().await;
                        return None;
                    }
                },
                Some(revision) => {
                    match directory::swap(&store, &key, record.to_bytes(), Some(revision)).await {
                        Ok(Some(revision)) => revision,
                        Ok(None) => Self::recover_node_entry(&store, &key, &record).await?,
                        Err(error) => {
                            tracing::debug!(%error, "node lease not renewed");
                            self.forget_store().await;
                            return None;
                        }
                    }
                }
            };
            Some(revision)
        };
        let Ok(Some(revision)) = tokio::time::timeout(self.timing.renew_every(), attempt).await
        else {
            return false;
        };
        lease.written(incarnation, revision, sent_at, Instant::now(), self.timing);
        match lease {
            NodeLease::Held { fence_at, .. } => self.fence.close_at(*fence_at),
            _ => self.fence(lease),
        }
        true
    }

    /// A renewal found another revision: a restarted broker lost the entry (re-create it, same
    /// incarnation, so a live owner keeps its rooms), or we lost track of our own revision.
    /// `None` when another incarnation holds the key, which fences at the next overdue check.
    async fn recover_node_entry(
        store: &async_nats::jetstream::kv::Store,
        key: &str,
        record: &directory::NodeRecord,
    ) -> Option<u64> {
        let current = directory::read(store, key).await.ok()?;
        let expected = match current {
            None => None,
            Some((revision, bytes)) => {
                let held = serde_json::from_slice::<directory::NodeRecord>(&bytes).ok()?;
                if held.incarnation != record.incarnation {
                    tracing::error!(
                        incarnation = held.incarnation,
                        "another process registered this node id"
                    );
                    return None;
                }
                Some(revision)
            }
        };
        directory::swap(store, key, record.to_bytes(), expected)
            .await
            .ok()
            .flatten()
    }

    /// Stops every room: the lease may lapse before it can be renewed.
    fn fence(&self, lease: &mut NodeLease) {
        self.fence.close();
        if let NodeLease::Held { incarnation, .. } = *lease {
            *lease = NodeLease::Fenced { incarnation };
        }
        let rooms = self.lobby.directory().list(|_| true);
        tracing::warn!(
            rooms = rooms.len(),
            "node lease not renewed in time: fencing every room"
        );
        self.metrics.fences.inc();
        for info in rooms {
            if let Some(room) = self.lobby.directory().addr(&info.room_id) {
                room.do_send(CloseRoom {
                    reason: CloseCode::RoomMoved,
                });
            }
        }
    }

    /// Keeps the room entries in step with the local rooms.
    pub(super) async fn entries_loop(
        self: Arc<Self>,
        mut commands: mpsc::UnboundedReceiver<EntryCommand>,
    ) {
        let mut published: HashMap<RoomId, Published> = HashMap::new();
        let mut connections = self.connections.subscribe();
        let mut interval = tokio::time::interval(ENTRY_ROUND);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(EntryCommand::Adopt(entry)) => {
                        published.insert(entry.room_id.clone(), *entry);
                    }
                    Some(EntryCommand::Stop(done)) => {
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                _ = connections.changed() => {
                    // A restarted broker may have lost every entry: check each one next round.
                    for entry in published.values_mut() {
                        entry.recheck = true;
                    }
                }
                _ = interval.tick() => self.entries_round(&mut published).await,
            }
        }
    }

    async fn entries_round(&self, published: &mut HashMap<RoomId, Published>) {
        // A fenced node writes nothing until it registers anew (its entries name a dead
        // incarnation; the lease task may not have noticed yet after a pause). A node shutting
        // down neither: the rooms its shutdown closes keep their entries, so that failover
        // finds them once the node's lease is gone.
        if self.fence.is_closed() || !self.is_connected() || self.lobby.is_shutting_down() {
            return;
        }
        let Ok(store) = self.store().await else {
            return;
        };
        let incarnation = *self.incarnation_tx.borrow();
        let local: HashMap<RoomId, RoomInfo> = self
            .lobby
            .directory()
            .list(|_| true)
            .into_iter()
            .map(|info| (info.room_id.clone(), info))
            .collect();
        // Entries of an abandoned incarnation are forgotten, not released: their rooms were
        // fenced with their checkpoints kept, and the entry is what lets failover find them.
        published.retain(|_, entry| Some(entry.incarnation) == incarnation);
        let gone: Vec<Published> = published
            .values()
            .filter(|entry| !local.contains_key(&entry.room_id))
            .cloned()
            .collect();
        for entry in &gone {
            published.remove(&entry.room_id);
        }
        release_entries(&store, &gone).await;
        let Some(incarnation) = incarnation else {
            return;
        };
        self.stop_taken_over(published);
        let now = Instant::now();
        let refresh = directory::garbage_age(self.timing) / 3;
        let writes = local.values().filter_map(|info| {
            match plan_entry(
                published.get(&info.room_id),
                info,
                incarnation,
                now,
                refresh,
            ) {
                EntryPlan::Keep => None,
                EntryPlan::Write(expected) => {
                    Some(self.write_entry(&store, info, incarnation, expected))
                }
            }
        });
        for written in join_all(writes).await {
            match written {
                Written::Done(entry) => {
                    published.insert(entry.room_id.clone(), entry);
                }
                Written::Retry(room_id, Some(revision)) => {
                    if let Some(entry) = published.get_mut(&room_id) {
                        entry.revision = revision;
                        entry.recheck = true;
                    }
                }
                Written::Retry(room_id, None) => {
                    published.remove(&room_id);
                }
                Written::Lost(room_id, holder) => self.lost(published, &room_id, &holder),
            }
        }
    }

    /// Stops rooms whose entry the watch shows rewritten by another holder since this node
    /// wrote it (a takeover, later a failover): the room is no longer ours.
    fn stop_taken_over(&self, published: &mut HashMap<RoomId, Published>) {
        let taken: Vec<(RoomId, String)> = published
            .values()
            .filter_map(|entry| {
                let (revision, held) = self.replica.get(&entry.room_id)?;
                let ours = self.is_mine(&held.node) && held.incarnation == entry.incarnation;
                (revision > entry.revision && !ours).then(|| (entry.room_id.clone(), held.node))
            })
            .collect();
        for (room_id, holder) in taken {
            self.lost(published, &room_id, &holder);
        }
    }

    fn lost(&self, published: &mut HashMap<RoomId, Published>, room_id: &RoomId, holder: &str) {
        tracing::warn!(%room_id, %holder, "another node holds the room; stopping it here");
        self.metrics.leases_lost.inc();
        published.remove(room_id);
        if let Some(room) = self.lobby.directory().addr(room_id) {
            room.do_send(CloseRoom {
                reason: CloseCode::RoomMoved,
            });
        }
    }

    async fn write_entry(
        &self,
        store: &async_nats::jetstream::kv::Store,
        info: &RoomInfo,
        incarnation: Incarnation,
        expected: Option<u64>,
    ) -> Written {
        let room_id = info.room_id.clone();
        let record = self.record_for(info, incarnation);
        let key = directory::room_key(&room_id);
        match directory::swap(store, &key, record.to_bytes(), expected).await {
            Ok(Some(revision)) => Written::Done(Published {
                room_id,
                revision,
                incarnation,
                info: info.clone(),
                written_at: Instant::now(),
                recheck: false,
            }),
            Ok(None) => match directory::read(store, &key).await {
                Ok(Some((revision, bytes))) => match RoomRecord::from_bytes(&bytes) {
                    Some(held) if held.node == record.node && held.incarnation == incarnation => {
                        Written::Retry(room_id, Some(revision))
                    }
                    Some(held) => Written::Lost(room_id, held.node),
                    None => Written::Retry(room_id, None),
                },
                // Gone (a restarted broker): re-create it next round.
                Ok(None) | Err(_) => Written::Retry(room_id, None),
            },
            Err(error) => {
                tracing::debug!(%room_id, %error, "room entry not written this round");
                Written::Retry(room_id, expected)
            }
        }
    }

    /// The entry for a local room under `incarnation`.
    pub(super) fn record_for(&self, info: &RoomInfo, incarnation: Incarnation) -> RoomRecord {
        RoomRecord {
            node: self.settings.node.id.to_string(),
            incarnation,
            region: self.settings.node.region.to_string(),
            epoch: info.epoch,
            info: info.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RoomInfo {
        RoomInfo {
            room_id: RoomId::parse("r").expect("valid id"),
            room_type: "arena".to_owned(),
            players: 0,
            reserved: 0,
            max_players: 4,
            metadata: serde_json::Value::Null,
            state: serde_json::Value::Null,
            created_at_ms: 0,
            epoch: 1,
            restored_from_epoch: None,
        }
    }

    fn published(incarnation: Incarnation, at: Instant) -> Published {
        Published {
            room_id: info().room_id,
            revision: 9,
            incarnation,
            info: info(),
            written_at: at,
            recheck: false,
        }
    }

    #[test]
    fn an_unchanged_entry_is_left_alone_until_its_refresh() {
        let now = Instant::now();
        let refresh = Duration::from_secs(10);
        let entry = published(1, now);
        assert_eq!(
            plan_entry(Some(&entry), &info(), 1, now, refresh),
            EntryPlan::Keep
        );
        assert_eq!(
            plan_entry(Some(&entry), &info(), 1, now + refresh, refresh),
            EntryPlan::Write(Some(9))
        );
    }

    #[test]
    fn a_changed_listing_is_rewritten_and_a_missing_entry_re_created() {
        let now = Instant::now();
        let refresh = Duration::from_secs(10);
        let mut changed = info();
        changed.players = 1;
        let entry = published(1, now);
        assert_eq!(
            plan_entry(Some(&entry), &changed, 1, now, refresh),
            EntryPlan::Write(Some(9))
        );
        assert_eq!(
            plan_entry(None, &info(), 1, now, refresh),
            EntryPlan::Write(None)
        );
    }

    #[test]
    fn an_entry_a_restarted_broker_may_have_lost_is_rewritten_at_once() {
        let now = Instant::now();
        let mut entry = published(1, now);
        entry.recheck = true;
        assert_eq!(
            plan_entry(Some(&entry), &info(), 1, now, Duration::from_secs(10)),
            EntryPlan::Write(Some(9))
        );
    }

    #[test]
    fn an_entry_of_a_fenced_incarnation_is_never_rewritten() {
        let now = Instant::now();
        let entry = published(1, now);
        assert_eq!(
            plan_entry(
                Some(&entry),
                &info(),
                2,
                now + Duration::from_secs(60),
                Duration::ZERO
            ),
            EntryPlan::Keep
        );
    }
}
