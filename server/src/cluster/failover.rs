//! Failover: when a node's lease lapses, its rooms come back on the next live node of their
//! placement, from their last checkpoint, in the next epoch.
//!
//! Every node runs [`Cluster::failover_loop`]. Each round (a tenth of the lease) it lists the
//! directory entries whose holder's lease has lapsed ([`Replica::lapsed`](super::directory::Replica::lapsed)),
//! keeps those the placement over the live nodes gives to this node ([`rooms_to_restore`], a
//! pure function), reads each one's checkpoint, restores the room (`Lobby::prepare_restored`:
//! epoch + 1, every seat away and resumable with its old session's token) and claims the entry
//! with compare-and-swap at its revision, exactly as a creation takes over a lapsed id. Two
//! nodes that both think the room theirs (membership views differ for a moment) cannot both
//! win the swap; the loser drops its copy before it ever ticks.
//!
//! Clients of the dead node resume through any node: the wrong node answers with a `redirect`
//! to the new owner, which answers the resume with a snapshot and `ticks_lost` (PROTOCOL.md
//! §20.6). A room whose checkpoint is missing, of another epoch or unreadable by this build
//! is not restored; its entry lapses away with the bucket's garbage age.

use super::checkpoints::BUCKET;
use super::claim::ClaimKind;
use super::directory::RoomRecord;
use super::lease::Incarnation;
use super::{Cluster, ClusterError};
use crate::checkpoint::Checkpoint;
use crate::lobby::LobbyError;
use async_nats::jetstream::kv;
use ludus_protocol::RoomId;
use ludus_regions::{NodeId, Placement, RegionName};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The lapsed entries (revision, record) this node should restore: those whose placement
/// among the live nodes of their region (with its fallbacks) names `me`.
pub fn rooms_to_restore<'a>(
    lapsed: &'a [(u64, RoomRecord)],
    placement: &Placement,
    me: &NodeId,
) -> Vec<&'a (u64, RoomRecord)> {
    lapsed
        .iter()
        .filter(|(_, record)| {
            let region = RegionName::new(record.region.as_str());
            placement
                .place(record.info.room_id.as_str(), &region)
                .is_ok_and(|decision| &decision.node == me)
        })
        .collect()
}

/// The placement lapsed rooms are restored by: over the live nodes, without `dead` (nodes that
/// hold no lease any more, though membership may still count them live until its own timeout).
pub fn restore_placement<'a>(
    placement: &Placement,
    dead: impl IntoIterator<Item = &'a NodeId>,
) -> Placement {
    dead.into_iter()
        .fold(placement.clone(), |placement, node| placement.without(node))
}

/// How long before a lapsed entry (room and revision) whose restore ended with `result` is
/// tried again: never (`None`) once the outcome is final (restored, taken, no usable
/// checkpoint); after [`RETRY_FAILED`] when NATS or the lobby refused for now (a directory still
/// settling after a broker restart, a bucket not yet reopened).
fn retry_after(result: &Result<(), Unrestored>) -> Option<Duration> {
    match result {
        Err(Unrestored::Failed) => Some(RETRY_FAILED),
        _ => None,
    }
}

/// Pause before a failed restore is tried again.
const RETRY_FAILED: Duration = Duration::from_secs(1);

/// How one restore attempt ended (`ludus_failovers_total{outcome}`).
fn outcome_of(result: &Result<(), Unrestored>) -> &'static str {
    match result {
        Ok(()) => "restored",
        Err(Unrestored::NoCheckpoint) => "no_checkpoint",
        Err(Unrestored::StaleCheckpoint) => "stale_checkpoint",
        Err(Unrestored::Unreadable) => "unrestorable",
        Err(Unrestored::Taken) => "taken",
        Err(Unrestored::Failed) => "failed",
    }
}

/// Why a lapsed room was not restored here.
#[derive(Debug)]
enum Unrestored {
    /// No checkpoint was ever stored (or it expired).
    NoCheckpoint,
    /// The checkpoint is of an older epoch than the entry: the room was re-created since.
    StaleCheckpoint,
    /// The checkpoint or its game state cannot be read by this build.
    Unreadable,
    /// Another node restored or re-created it first.
    Taken,
    /// NATS or the lobby refused.
    Failed,
}

impl Cluster {
    /// Restores the rooms of lapsed nodes that the placement gives to this node, every tenth
    /// of the lease. Each lapsed entry (room and revision) is tried until its outcome is final
    /// ([`retry_after`]).
    pub(super) async fn failover_loop(self: Arc<Self>) {
        // Per room: the revision tried, and when it may be tried again (None: never).
        let mut tried: HashMap<RoomId, (u64, Option<Instant>)> = HashMap::new();
        let mut rounds = tokio::time::interval(self.timing.renew_every());
        loop {
            rounds.tick().await;
            let Ok(incarnation) = self.current_incarnation() else {
                continue;
            };
            let lapsed = self.replica.lapsed(Instant::now(), self.timing);
            let lapsed_ids: HashSet<&RoomId> = lapsed
                .iter()
                .map(|(_, record)| &record.info.room_id)
                .collect();
            tried.retain(|room_id, _| lapsed_ids.contains(room_id));
            let now = Instant::now();
            let dead: BTreeSet<NodeId> = lapsed
                .iter()
                .filter(|(_, record)| !self.replica.holds_a_lease(&record.node, now, self.timing))
                .map(|(_, record)| NodeId::new(record.node.as_str()))
                .collect();
            let placement = restore_placement(&self.membership.view().placement, &dead);
            let mine: Vec<_> = rooms_to_restore(&lapsed, &placement, &self.settings.node.id)
                .into_iter()
                .filter(|(revision, record)| match tried.get(&record.info.room_id) {
                    Some((tried_revision, again)) if tried_revision == revision => {
                        again.is_some_and(|again| now >= again)
                    }
                    _ => true,
                })
                .collect();
            if mine.is_empty() {
                continue;
            }
            // One handle on the checkpoint bucket for the round's restores.
            let checkpoints = self.jetstream.get_key_value(BUCKET).await.ok();
            for (revision, record) in mine {
                let room_id = &record.info.room_id;
                let started = Instant::now();
                let result = match &checkpoints {
                    Some(store) => self.restore_here(store, record, incarnation).await,
                    // Not reopened yet after a broker restart, or never created: try again.
                    None => Err(Unrestored::Failed),
                };
                let again = retry_after(&result).map(|pause| started + pause);
                tried.insert(room_id.clone(), (*revision, again));
                let outcome = outcome_of(&result);
                self.metrics.failovers.with_label_values(&[outcome]).inc();
                tracing::info!(
                    %room_id,
                    from = %record.node,
                    outcome,
                    took_ms = started.elapsed().as_millis() as u64,
                    "failover"
                );
            }
        }
    }

    /// Restores `record`'s room from its checkpoint in `checkpoints` and claims it for
    /// `incarnation`.
    async fn restore_here(
        &self,
        checkpoints: &kv::Store,
        record: &RoomRecord,
        incarnation: Incarnation,
    ) -> Result<(), Unrestored> {
        let room_id = &record.info.room_id;
        let bytes = checkpoints
            .get(room_id.as_str())
            .await
            .map_err(|_| Unrestored::Failed)?
            .ok_or(Unrestored::NoCheckpoint)?;
        let checkpoint = Checkpoint::decode(&bytes).map_err(|error| {
            tracing::warn!(%room_id, %error, "checkpoint unreadable");
            Unrestored::Unreadable
        })?;
        if checkpoint.epoch != record.epoch {
            return Err(Unrestored::StaleCheckpoint);
        }
        let prepared = self.lobby.prepare_restored(&checkpoint).map_err(|error| {
            tracing::warn!(%room_id, %error, "room not restorable");
            match error {
                LobbyError::Unrestorable(..) | LobbyError::UnknownRoomType(_) => {
                    Unrestored::Unreadable
                }
                _ => Unrestored::Failed,
            }
        })?;
        match self
            .claim_and_start(prepared, incarnation, ClaimKind::Checked)
            .await
        {
            Ok(_) => Ok(()),
            Err(ClusterError::Lobby(LobbyError::RoomExists(_))) => Err(Unrestored::Taken),
            Err(error) => {
                tracing::warn!(%room_id, %error, "restored room not claimed");
                Err(Unrestored::Failed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::RoomInfo;
    use ludus_regions::RegionConfig;

    const REGIONS: &str =
        include_str!("../../../region-config/examples/three-nodes-two-regions.toml");

    fn regions() -> RegionConfig {
        ludus_regions::from_str(REGIONS, "three-nodes-two-regions.toml").expect("regions")
    }

    fn record(room_id: &str, node: &str, region: &str) -> (u64, RoomRecord) {
        let info = RoomInfo {
            room_id: RoomId::parse(room_id).expect("id"),
            room_type: "arena".into(),
            players: 1,
            reserved: 0,
            max_players: 16,
            metadata: serde_json::Value::Null,
            state: serde_json::Value::Null,
            created_at_ms: 0,
            epoch: 5,
            restored_from_epoch: None,
        };
        let record = RoomRecord {
            node: node.into(),
            incarnation: 1,
            region: region.into(),
            epoch: 5,
            info,
        };
        (3, record)
    }

    fn live(regions: &RegionConfig, nodes: &[&str]) -> Placement {
        let live: Vec<NodeId> = nodes.iter().map(|node| NodeId::new(*node)).collect();
        Placement::new(regions, live.iter())
    }

    #[test]
    fn each_lapsed_room_goes_to_exactly_one_live_node_of_its_region() {
        let regions = regions();
        let lapsed: Vec<_> = (0..50)
            .map(|index| record(&format!("room-{index}"), "eu-1", "eu"))
            .collect();
        let placement = live(&regions, &["eu-2", "us-1"]);
        assert!(
            rooms_to_restore(&lapsed, &placement, &NodeId::new("eu-1")).is_empty(),
            "the dead node is not live"
        );
        let on_eu2 = rooms_to_restore(&lapsed, &placement, &NodeId::new("eu-2"));
        let on_us1 = rooms_to_restore(&lapsed, &placement, &NodeId::new("us-1"));
        assert_eq!(on_eu2.len(), 50, "eu-2 is the only live node of eu");
        assert!(
            on_us1.is_empty(),
            "us-1 takes none while eu has a live node"
        );
    }

    #[test]
    fn a_node_without_a_lease_restores_nothing_though_membership_still_counts_it() {
        let regions = regions();
        let lapsed: Vec<_> = (0..50)
            .map(|index| record(&format!("room-{index}"), "eu-1", "eu"))
            .collect();
        // Membership has not timed eu-1 out yet: placement alone would give it some rooms back.
        let stale = live(&regions, &["eu-1", "eu-2", "us-1"]);
        assert!(!rooms_to_restore(&lapsed, &stale, &NodeId::new("eu-1")).is_empty());
        let placement = restore_placement(&stale, [&NodeId::new("eu-1")]);
        assert!(rooms_to_restore(&lapsed, &placement, &NodeId::new("eu-1")).is_empty());
        assert_eq!(
            rooms_to_restore(&lapsed, &placement, &NodeId::new("eu-2")).len(),
            50
        );
    }

    #[test]
    fn only_a_refusal_for_now_is_tried_again() {
        assert_eq!(retry_after(&Err(Unrestored::Failed)), Some(RETRY_FAILED));
        for last in [
            Ok(()),
            Err(Unrestored::Taken),
            Err(Unrestored::NoCheckpoint),
            Err(Unrestored::StaleCheckpoint),
            Err(Unrestored::Unreadable),
        ] {
            assert_eq!(retry_after(&last), None, "{last:?}");
        }
    }

    #[test]
    fn a_region_without_live_nodes_fails_over_along_its_fallbacks() {
        let regions = regions();
        // eu falls back to us in the example file: with both eu nodes gone, us-1 restores.
        let lapsed = vec![record("lonely", "eu-1", "eu")];
        let placement = live(&regions, &["us-1"]);
        assert_eq!(
            rooms_to_restore(&lapsed, &placement, &NodeId::new("us-1")).len(),
            1
        );
    }
}
