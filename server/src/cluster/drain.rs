//! Live drain: a node hands every room, with its exact state, to the room's next owner, so a
//! deploy costs players a pause instead of their game.
//!
//! [`Cluster::start_drain`] (the admin API, or SIGTERM with `cluster.drain_on_shutdown`) marks
//! the node draining: its heartbeats say so, and every node's placement stops giving it new
//! rooms while it still holds its old ones. The drain task then hands rooms over a few at a
//! time ([`HANDOFFS_AT_ONCE`]), each in four steps:
//!
//! 1. the room stops at a tick boundary and answers its state as a checkpoint
//!    ([`BeginHandoff`]); it neither steps nor sends from then on;
//! 2. the next owner of its placement ([`next_owner`]: the live nodes that are not draining) is
//!    asked to take it over ([`NodeRequest::TakeOver`], the state in the request): it restores
//!    the room in epoch + 1 with every seat away and resumable, and claims the directory entry
//!    with compare-and-swap, allowed over a live holder only because that holder named itself
//!    ([`ClaimKind::HandedOver`]);
//! 3. this node waits until its own view of the directory shows the new holder, so a member
//!    that resumes through this node is redirected rather than told the room is gone;
//! 4. the room closes its members with 4017 `room_moving` ([`EndHandoff`]); they resume on the
//!    new owner with `ticks_lost: 0`. If the next owner refused or did not answer and the entry
//!    is still ours, the room ticks on here and is tried again in the next pass.
//!
//! The old and the new owner never run a room at once: the old one stopped before it asked.

use super::claim::ClaimKind;
use super::directory::{self, RoomRecord};
use super::lease::Incarnation;
use super::routing::try_another_node;
use super::rpc::{NodeRequest, NodeResponse};
use super::{Cluster, ClusterError};
use crate::checkpoint::Checkpoint;
use crate::directory::RoomInfo;
use crate::lobby::LobbyError;
use crate::room::{BeginHandoff, EndHandoff};
use async_nats::jetstream::kv;
use base64::Engine as _;
use futures_util::stream::{self, StreamExt as _};
use ludus_protocol::RoomId;
use ludus_regions::{NodeId, Placement, RegionName};
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rooms handed over concurrently: enough to drain a thousand rooms in seconds, few enough
/// that the next owners' claims do not queue behind each other.
const HANDOFFS_AT_ONCE: usize = 8;

/// Pause between passes over rooms whose handover failed.
const RETRY_PASS: Duration = Duration::from_millis(500);

/// How often the directory view is checked while waiting for the new holder to show.
const VIEW_POLL: Duration = Duration::from_millis(5);

/// What `POST /v1/admin/drain` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DrainStatus {
    /// Always true once asked: a drain is not undone (restart the node to take rooms again).
    pub draining: bool,
    /// Rooms still on this node.
    pub rooms: usize,
}

/// The node a room of `region` moves to: its placement among the live nodes that are not
/// draining (which `placement` is built over), never this node.
pub fn next_owner(
    placement: &Placement,
    room_id: &RoomId,
    region: &RegionName,
    me: &NodeId,
) -> Option<NodeId> {
    let decision = placement.without(me).place(room_id.as_str(), region).ok()?;
    Some(decision.node)
}

/// What one offer of a stopped room to a node came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offered {
    /// That node holds the room now.
    Moved,
    /// That node cannot take it (unavailable, at capacity, draining, or no answer with the
    /// room still ours): offer it to the next one.
    Elsewhere,
    /// Refused for a reason another node would share, or the entry is not ours: tick on here.
    Refused,
}

/// What an unanswered offer came to when this node's rewrite of its own entry found the entry
/// changed: `holder` is the entry now. Rewritten by the target's claim, the room moved; by this
/// node's own entry refresh, the room is still ours (and a late claim cannot get past the new
/// revision either); anything else, another node holds it.
fn after_changed_entry(holder: Option<&RoomRecord>, me: &NodeId, target: &NodeId) -> Offered {
    match holder {
        Some(record) if record.node == target.as_str() => Offered::Moved,
        Some(record) if record.node == me.as_str() => Offered::Elsewhere,
        _ => Offered::Refused,
    }
}

/// Why one room was not handed over (the `ludus_handoffs_total` outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NotMoved {
    /// No other live node can take it.
    NoNextOwner,
    /// Its state could not be saved, or it ended meanwhile.
    NotSaved,
    /// The next owner refused or did not answer.
    Failed,
}

impl NotMoved {
    fn outcome(self) -> &'static str {
        match self {
            Self::NoNextOwner => "no_next_owner",
            Self::NotSaved => "not_saved",
            Self::Failed => "failed",
        }
    }
}

impl Cluster {
    /// Whether this node drains.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Starts draining (once; later calls only report): placement gives this node nothing new
    /// from its next heartbeat on, and its rooms move to their next owners in the background.
    pub fn start_drain(self: &Arc<Self>) -> DrainStatus {
        let rooms = self.lobby.directory().len();
        if self.draining.swap(true, Ordering::AcqRel) {
            return DrainStatus {
                draining: true,
                rooms,
            };
        }
        tracing::info!(rooms, "draining: handing every room to its next owner");
        self.metrics.draining.set(1);
        self.membership.set_draining(&self.settings.node.id, true);
        self.membership.sweep(Instant::now());
        let cluster = Arc::clone(self);
        actix_rt::spawn(async move {
            // Tell peers at once rather than at the next heartbeat.
            cluster.publish_heartbeat(false).await;
            cluster.drain_rooms().await;
        });
        DrainStatus {
            draining: true,
            rooms,
        }
    }

    /// Drains and waits until no room is left here, no other node can take any of those left
    /// (every other node is down or draining too: a whole cluster stopping), or `timeout`
    /// passed; answers the rooms left.
    pub async fn drain(self: &Arc<Self>, timeout: Duration) -> usize {
        self.start_drain();
        let deadline = Instant::now() + timeout;
        while !self.lobby.directory().is_empty()
            && !self.nowhere_to_go.load(Ordering::Acquire)
            && Instant::now() < deadline
        {
            tokio::time::sleep(RETRY_PASS / 10).await;
        }
        self.lobby.directory().len()
    }

    /// Passes over the local rooms until none is left (or the node leaves).
    async fn drain_rooms(&self) {
        loop {
            let rooms: Vec<RoomId> = self
                .lobby
                .directory()
                .list(|_| true)
                .into_iter()
                .map(|info| info.room_id)
                .collect();
            if rooms.is_empty() || self.leaving.load(Ordering::Acquire) {
                tracing::info!("drained: no room left here");
                return;
            }
            let mut moved = 0_usize;
            let mut homeless = 0_usize;
            let mut outcomes = stream::iter(rooms.iter().map(|room_id| self.hand_off(room_id)))
                .buffer_unordered(HANDOFFS_AT_ONCE);
            while let Some(outcome) = outcomes.next().await {
                let label = match outcome {
                    Ok(()) => {
                        moved += 1;
                        "moved"
                    }
                    Err(not_moved) => {
                        // A room no node can take, or whose state cannot be saved, stays.
                        homeless += usize::from(matches!(
                            not_moved,
                            NotMoved::NoNextOwner | NotMoved::NotSaved
                        ));
                        not_moved.outcome()
                    }
                };
                self.metrics.handoffs.with_label_values(&[label]).inc();
            }
            drop(outcomes);
            self.nowhere_to_go
                .store(homeless == rooms.len(), Ordering::Release);
            tracing::info!(moved, homeless, of = rooms.len(), "drain pass done");
            if moved < rooms.len() {
                tokio::time::sleep(RETRY_PASS).await;
            }
        }
    }

    /// Hands one room to its next owner: stops it, then offers it to the room's next owner and,
    /// while those refuse as unavailable, to the next ones without them.
    async fn hand_off(&self, room_id: &RoomId) -> Result<(), NotMoved> {
        let me = &self.settings.node.id;
        let incarnation = self.current_incarnation().map_err(|_| NotMoved::Failed)?;
        let store = self.store().await.map_err(|_| NotMoved::Failed)?;
        let room = self
            .lobby
            .directory()
            .addr(room_id)
            .ok_or(NotMoved::NotSaved)?;
        let mut placement = self.membership.view().placement.clone();
        let Some(mut target) = next_owner(&placement, room_id, &self.settings.node.region, me)
        else {
            return Err(NotMoved::NoNextOwner);
        };
        let state = match room.send(BeginHandoff).await {
            Ok(Ok(state)) => base64::engine::general_purpose::STANDARD.encode(state),
            _ => return Err(NotMoved::NotSaved),
        };
        let paused_at = Instant::now();
        let outcome = loop {
            let offered = self
                .offer(&store, room_id, incarnation, &state, &target)
                .await;
            match offered {
                Offered::Moved => break Ok(()),
                Offered::Elsewhere => {
                    placement = placement.without(&target);
                    match next_owner(&placement, room_id, &self.settings.node.region, me) {
                        Some(next) => target = next,
                        None => break Err(NotMoved::Failed),
                    }
                }
                Offered::Refused => break Err(NotMoved::Failed),
            }
        };
        if outcome.is_ok() {
            self.await_holder(room_id, &target).await;
        }
        let moved_to = outcome.is_ok().then(|| {
            let ws_url = self.ws_url(target.as_str(), room_id).unwrap_or_default();
            (target.to_string(), ws_url)
        });
        room.do_send(EndHandoff { moved_to });
        outcome?;
        self.metrics
            .handoff_pause
            .observe(paused_at.elapsed().as_secs_f64());
        tracing::info!(
            %room_id,
            to = %target,
            paused_ms = paused_at.elapsed().as_millis() as u64,
            "room handed over"
        );
        Ok(())
    }

    /// Offers a stopped room to `target` at the entry's current revision, which the claim
    /// there must find unchanged. When the answer is lost (a timeout may hide a claim still in
    /// flight), this node rewrites its own entry at that revision: if that succeeds, no late
    /// claim can succeed any more and the room is still ours; if another holder is there, the
    /// claim went through.
    async fn offer(
        &self,
        store: &kv::Store,
        room_id: &RoomId,
        incarnation: Incarnation,
        state: &str,
        target: &NodeId,
    ) -> Offered {
        let key = directory::room_key(room_id);
        let Ok(Some((revision, bytes))) = directory::read(store, &key).await else {
            return Offered::Refused;
        };
        let ours = RoomRecord::from_bytes(&bytes)
            .is_some_and(|record| self.is_mine(&record.node) && record.incarnation == incarnation);
        if !ours {
            // Another node holds it already (a takeover): nothing of ours to hand over.
            return Offered::Refused;
        }
        let request = NodeRequest::TakeOver {
            room_id: room_id.to_string(),
            from: self.settings.node.id.to_string(),
            incarnation,
            revision,
            state: state.to_owned(),
        };
        match self.ask(target.as_str(), &request).await {
            Ok(NodeResponse::Created { .. }) => Offered::Moved,
            Ok(_) => Offered::Refused,
            Err(error @ ClusterError::Remote { .. }) => {
                // An answer: nothing was claimed there.
                tracing::warn!(%room_id, node = %target, %error, "handover refused");
                if try_another_node(&error) {
                    Offered::Elsewhere
                } else {
                    Offered::Refused
                }
            }
            Err(error) => {
                tracing::warn!(%room_id, node = %target, %error, "handover unanswered");
                match directory::swap(store, &key, bytes, Some(revision)).await {
                    // Still ours, and no late claim can win now.
                    Ok(Some(_)) => Offered::Elsewhere,
                    Ok(None) => {
                        let now = directory::read(store, &key).await.ok().flatten();
                        let holder = now.and_then(|(_, bytes)| RoomRecord::from_bytes(&bytes));
                        after_changed_entry(holder.as_ref(), &self.settings.node.id, target)
                    }
                    // Cut off from NATS: the fence stops the room if this lasts.
                    Err(_) => Offered::Refused,
                }
            }
        }
    }

    /// Waits (at most a request timeout) until this node's replica shows `node` holding the
    /// room, so members resuming through this node get a redirect there.
    async fn await_holder(&self, room_id: &RoomId, node: &NodeId) {
        let deadline = Instant::now() + self.settings.request_timeout;
        while Instant::now() < deadline {
            let shown = self
                .replica
                .get(room_id)
                .is_some_and(|(_, record)| record.node == node.as_str());
            if shown {
                return;
            }
            tokio::time::sleep(VIEW_POLL).await;
        }
        tracing::warn!(%room_id, %node, "the new holder is not in this node's view yet");
    }

    /// Takes over a room a draining node stopped and sent (`state`, a checkpoint): restores it
    /// in the next epoch and claims its entry, which must still be at `revision` and name
    /// `from`'s `incarnation` (so a claim that arrives after the sender gave up fails).
    pub(super) async fn take_over(
        &self,
        room_id: &RoomId,
        from: &str,
        incarnation: Incarnation,
        revision: u64,
        state: &str,
    ) -> Result<RoomInfo, ClusterError> {
        if self.is_draining() {
            return Err(ClusterError::Draining);
        }
        let mine = self.current_incarnation()?;
        let unrestorable = |why: String| LobbyError::Unrestorable(room_id.clone(), why);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(state)
            .map_err(|error| unrestorable(error.to_string()))?;
        let checkpoint =
            Checkpoint::decode(&bytes).map_err(|error| unrestorable(error.to_string()))?;
        if checkpoint.room_id != room_id.as_str() {
            return Err(unrestorable("the state is of another room".to_owned()).into());
        }
        let prepared = self.lobby.prepare_restored(&checkpoint)?;
        let kind = ClaimKind::HandedOver {
            node: from.to_owned(),
            incarnation,
            epoch: checkpoint.epoch,
            revision,
        };
        self.claim_and_start(prepared, mine, kind).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ludus_regions::RegionConfig;

    const REGIONS: &str =
        include_str!("../../../region-config/examples/three-nodes-two-regions.toml");

    fn placement(live: &[&str]) -> Placement {
        let regions: RegionConfig =
            ludus_regions::from_str(REGIONS, "three-nodes-two-regions.toml").expect("regions");
        let live: Vec<NodeId> = live.iter().map(|node| NodeId::new(*node)).collect();
        Placement::new(&regions, live.iter())
    }

    fn room(index: usize) -> RoomId {
        RoomId::parse(&format!("room-{index}")).expect("id")
    }

    #[test]
    fn a_changed_entry_says_whether_an_unanswered_offer_went_through() {
        let (me, target) = (NodeId::new("eu-1"), NodeId::new("eu-2"));
        let record = |node: &str| RoomRecord {
            node: node.to_owned(),
            incarnation: 1,
            region: "eu".to_owned(),
            epoch: 3,
            info: crate::directory::RoomInfo {
                room_id: room(1),
                room_type: "arena".to_owned(),
                players: 0,
                reserved: 0,
                max_players: 8,
                metadata: serde_json::Value::Null,
                state: serde_json::Value::Null,
                created_at_ms: 0,
                epoch: 3,
                restored_from_epoch: None,
            },
        };
        let moved = after_changed_entry(Some(&record("eu-2")), &me, &target);
        assert_eq!(moved, Offered::Moved);
        let still_ours = after_changed_entry(Some(&record("eu-1")), &me, &target);
        assert_eq!(still_ours, Offered::Elsewhere);
        let taken = after_changed_entry(Some(&record("us-1")), &me, &target);
        assert_eq!(taken, Offered::Refused);
        assert_eq!(after_changed_entry(None, &me, &target), Offered::Refused);
    }

    #[test]
    fn a_draining_nodes_rooms_go_to_the_other_live_node_of_its_region() {
        let eu = RegionName::new("eu");
        // Even a placement that still names the draining node never hands a room to itself.
        let with_me = placement(&["eu-1", "eu-2", "us-1"]);
        for index in 0..50 {
            let owner = next_owner(&with_me, &room(index), &eu, &NodeId::new("eu-1"));
            assert_eq!(owner, Some(NodeId::new("eu-2")));
        }
    }

    #[test]
    fn a_region_drained_of_its_last_node_hands_over_along_its_fallbacks() {
        let eu = RegionName::new("eu");
        let placement = placement(&["eu-1", "us-1"]);
        let owner = next_owner(&placement, &room(1), &eu, &NodeId::new("eu-1"));
        assert_eq!(owner, Some(NodeId::new("us-1")));
        let alone = super::tests::placement(&["eu-1"]);
        assert_eq!(
            next_owner(&alone, &room(1), &eu, &NodeId::new("eu-1")),
            None,
            "nowhere to go: the room stays"
        );
    }
}
