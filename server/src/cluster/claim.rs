//! Creating a room on this node: claim its id in the directory, then start its actor.
//!
//! The claim reads the id's entry straight from the bucket (the replica may not have seen a
//! creation made a moment ago elsewhere), asks [`decide_claim`] what that means and writes with
//! compare-and-swap, so of any number of concurrent creators on any nodes exactly one wins and
//! every other one answers 409 `room_exists` (D1). Taking over the entry of a lapsed incarnation
//! is first confirmed by a fresh read of its node lease: if the lease moved since this node last
//! saw it (this node may itself have been paused), the holder is alive after all.

use super::directory::{self, RoomRecord};
use super::lease::{decide_claim, ClaimDecision, Holder, Incarnation, Liveness};
use super::owner::{EntryCommand, Published};
use super::{Cluster, ClusterError};
use crate::directory::RoomInfo;
use crate::lobby::{CreateRoom, LobbyError, PreparedRoom};
use async_nats::jetstream::kv;
use std::time::Instant;

/// How an id is claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ClaimKind {
    /// An id a client chose, or a lapsed room being restored: only once the directory view
    /// is settled.
    Checked,
    /// An id drawn at random here or by the placing node: no live room can hold it, so the
    /// claim need not wait for a settled directory.
    Fresh,
    /// A room its live holder hands over while draining: its entry must still name that holder
    /// and the epoch of the state handed over.
    HandedOver {
        /// The draining node.
        node: String,
        /// Its incarnation.
        incarnation: Incarnation,
        /// The epoch the room ran in there.
        epoch: u64,
        /// The entry's revision when the holder stopped the room.
        revision: u64,
    },
}

impl ClaimKind {
    /// Whether `held`, at `at`, is the entry a handover names.
    fn hands_over(&self, held: &RoomRecord, at: u64) -> bool {
        matches!(self, Self::HandedOver { node, incarnation, epoch, revision }
            if held.node == *node
                && held.incarnation == *incarnation
                && held.epoch == *epoch
                && at == *revision)
    }

    fn of_creation(fresh: bool) -> Self {
        if fresh {
            Self::Fresh
        } else {
            Self::Checked
        }
    }
}

impl Cluster {
    /// Creates a room on this node once its id is claimed. `fresh` ids (drawn at random here or
    /// by the placing node) cannot belong to a live room, so they do not wait for a settled
    /// directory.
    pub async fn create_here(
        &self,
        request: CreateRoom,
        fresh: bool,
    ) -> Result<RoomInfo, ClusterError> {
        self.require_connection()?;
        if self.is_draining() {
            return Err(ClusterError::Draining);
        }
        let incarnation = self.current_incarnation()?;
        let prepared = self.lobby.prepare_room(request)?;
        self.claim_and_start(prepared, incarnation, ClaimKind::of_creation(fresh))
            .await
    }

    /// This node's registration, while rooms may run under it.
    pub(super) fn current_incarnation(&self) -> Result<Incarnation, ClusterError> {
        let incarnation = *self.incarnation_tx.borrow();
        incarnation
            .filter(|_| !self.fence.is_closed())
            .ok_or(ClusterError::Unavailable)
    }

    /// Claims `prepared`'s id in the directory for `incarnation` (taking over a lapsed entry)
    /// and starts the room; 409 `room_exists` when a live room holds the id.
    pub(super) async fn claim_and_start(
        &self,
        prepared: PreparedRoom,
        incarnation: Incarnation,
        kind: ClaimKind,
    ) -> Result<RoomInfo, ClusterError> {
        let room_id = prepared.info.room_id.clone();
        let store = self.store().await?;
        let key = directory::room_key(&room_id);
        let unavailable = |error: async_nats::Error| {
            tracing::warn!(%room_id, %error, "cannot claim the room's entry");
            ClusterError::Unavailable
        };
        let current = directory::read(&store, &key).await.map_err(unavailable)?;
        let (holder, expected) = match &current {
            None => (Holder::Nobody, None),
            Some((revision, bytes)) => {
                let holder = match RoomRecord::from_bytes(bytes) {
                    Some(held) if kind.hands_over(&held, *revision) => Holder::HandingOver,
                    Some(held) => self.holder_of(&store, &held, incarnation).await,
                    // A corrupt entry holds nothing.
                    None => Holder::Other(Liveness::Lapsed),
                };
                (holder, Some(*revision))
            }
        };
        let settled =
            kind != ClaimKind::Checked || self.replica.is_settled(Instant::now(), self.timing);
        match decide_claim(holder, settled) {
            ClaimDecision::Exists => return Err(LobbyError::RoomExists(room_id).into()),
            ClaimDecision::NotSettled => return Err(ClusterError::Settling),
            ClaimDecision::Create | ClaimDecision::TakeOver => {}
        }
        let record = self.record_for(&prepared.info, incarnation);
        let Some(revision) = directory::swap(&store, &key, record.to_bytes(), expected)
            .await
            .map_err(unavailable)?
        else {
            // Another creator wrote first.
            return Err(LobbyError::RoomExists(room_id).into());
        };
        let published = Published {
            room_id: room_id.clone(),
            revision,
            incarnation,
            info: prepared.info.clone(),
            written_at: Instant::now(),
            recheck: false,
        };
        // The entries task keeps it from here (and releases it if the room never starts).
        let _ = self
            .entries_tx
            .send(EntryCommand::Adopt(Box::new(published)));
        match self.lobby.start_room(prepared) {
            Ok(info) => Ok(info),
            Err(error) => {
                directory::release(&store, &key, revision).await;
                Err(error.into())
            }
        }
    }

    /// Who holds an existing entry, as far as a claim of its id is concerned.
    async fn holder_of(
        &self,
        store: &kv::Store,
        held: &RoomRecord,
        incarnation: Incarnation,
    ) -> Holder {
        if self.is_mine(&held.node) && held.incarnation == incarnation {
            return Holder::ThisIncarnation;
        }
        let liveness = self.replica.liveness(held, Instant::now(), self.timing);
        if liveness != Liveness::Lapsed || self.is_mine(&held.node) {
            return Holder::Other(liveness);
        }
        // Confirm on the bucket itself: a renewal this node has not received yet means alive.
        let node_key = directory::node_key(&held.node);
        match directory::read(store, &node_key).await {
            Ok(Some((revision, _))) if Some(revision) != self.replica.node_revision(&held.node) => {
                Holder::Other(Liveness::Live)
            }
            Ok(_) => Holder::Other(Liveness::Lapsed),
            Err(_) => Holder::Other(Liveness::Unknown),
        }
    }
}
