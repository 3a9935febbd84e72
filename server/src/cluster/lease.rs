//! Lease and fencing decisions as plain functions over plain data: no NATS, no tasks, no clock
//! reads. The tasks in [`super::owner`] and the routing in [`super::routing`] feed them instants
//! from the monotonic clock and act on what they return.
//!
//! The model (one lease per node, covering every room it holds):
//! - A node registers under a fresh random **incarnation** and renews its node entry every
//!   [`LeaseTiming::renew_every`]. A room entry names its node *and* incarnation, so a room is
//!   live exactly while its node's incarnation is; rooms cost no writes to stay alive.
//! - **Fencing (owner side).** A renewal *sent* at `t0` and acknowledged cannot look lapsed to any
//!   observer before `t0 + lease` (observers start counting when they receive it, which is after
//!   it was sent). The owner therefore stops every room at [`LeaseTiming::fence_after`]`(t0)`, a
//!   guard earlier, judged on its own monotonic clock: a paused or partitioned owner fences
//!   itself before anyone can consider its rooms free. A fenced incarnation is never renewed
//!   again; the node registers a new one once its rooms are closed.
//! - **Liveness (observer side).** Judged on the *local receipt time* of a node entry's revision,
//!   never on a timestamp written by another machine, so clock skew cannot hide rooms. A node that
//!   re-registers under a new incarnation (a restart) makes its old incarnation lapsed at once.
//! - **Claims.** An absent id is only claimed once this node's view of the bucket is settled
//!   (watched without a break for longer than a lease): right after a broker restart the bucket is
//!   empty until live owners re-register, and a claim then would steal a live room.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A node's registration: changes on every start and after every fence.
pub type Incarnation = u64;

/// The timings every node derives from the configured lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a node entry stays valid after an observer receives it.
    pub lease: Duration,
}

impl LeaseTiming {
    /// How often the owner renews: ten renewals per lease, so a few lost writes never fence and
    /// a broker outage may last up to `lease - guard - renew_every` without fencing.
    pub fn renew_every(&self) -> Duration {
        self.lease / 10
    }

    /// How much earlier than the earliest possible lapse the owner fences (covers a tick in
    /// flight and clock-rate drift).
    pub fn guard(&self) -> Duration {
        self.lease / 5
    }

    /// When rooms must stop, given that a renewal sent at `sent_at` was acknowledged.
    pub fn fence_after(&self, sent_at: Instant) -> Instant {
        sent_at + self.lease.saturating_sub(self.guard())
    }

    /// How long the bucket must have been watched without a break before an absent or lapsed
    /// entry is trusted to mean "free".
    pub fn settle(&self) -> Duration {
        self.lease + self.guard()
    }
}

/// This node's own lease, as its renewal task tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeLease {
    /// No live registration: rooms cannot be created here.
    Unregistered,
    /// Registered; rooms may run until `fence_at`.
    Held {
        /// The registration.
        incarnation: Incarnation,
        /// The node entry's revision, for compare-and-swap renewals.
        revision: u64,
        /// Rooms stop at this instant unless a renewal extends it.
        fence_at: Instant,
    },
    /// The lease could not be renewed in time; rooms are being closed. Never renewed again.
    Fenced {
        /// The abandoned registration.
        incarnation: Incarnation,
    },
}

/// What the renewal task should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseAction {
    /// Register a fresh incarnation.
    Register,
    /// Renew at this revision.
    Renew {
        /// Expected revision.
        revision: u64,
    },
    /// Fence: close every room, then register anew once they are gone.
    Fence,
    /// Nothing yet.
    Wait,
}

impl NodeLease {
    /// The next step at `now`, with `rooms_open` rooms still running locally.
    pub fn next_action(&self, now: Instant, rooms_open: usize) -> LeaseAction {
        match self {
            Self::Unregistered => LeaseAction::Register,
            Self::Held { fence_at, .. } if now >= *fence_at => LeaseAction::Fence,
            Self::Held { revision, .. } => LeaseAction::Renew {
                revision: *revision,
            },
            Self::Fenced { .. } if rooms_open == 0 => LeaseAction::Register,
            Self::Fenced { .. } => LeaseAction::Wait,
        }
    }

    /// A write sent at `sent_at` succeeded at `revision` and was acknowledged at `now`. A
    /// renewal acknowledged after the fence no longer counts: the rooms may already have
    /// stopped, and they must not restart under the old incarnation.
    pub fn written(
        &mut self,
        incarnation: Incarnation,
        revision: u64,
        sent_at: Instant,
        now: Instant,
        timing: LeaseTiming,
    ) {
        if let Self::Held { fence_at, .. } = self {
            if now >= *fence_at {
                *self = Self::Fenced { incarnation };
                return;
            }
        }
        *self = Self::Held {
            incarnation,
            revision,
            fence_at: timing.fence_after(sent_at),
        };
    }

    /// The current incarnation, while rooms may be created under it.
    pub fn incarnation(&self) -> Option<Incarnation> {
        match self {
            Self::Held { incarnation, .. } => Some(*incarnation),
            _ => None,
        }
    }
}

/// Whether another node's incarnation still holds its rooms, as this node can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Renewed within a lease of local time.
    Live,
    /// Certainly gone: replaced by a newer incarnation, or silent for longer than a lease while
    /// this node was watching.
    Lapsed,
    /// This node has not watched long enough to tell.
    Unknown,
}

#[derive(Clone, Debug)]
struct Seen {
    incarnation: Incarnation,
    revision: u64,
    /// Local monotonic time this revision was first received.
    received_at: Instant,
}

/// Node entries as received by this node's watch, stamped with local receipt time.
#[derive(Debug, Default)]
pub struct PeerLeases {
    seen: HashMap<String, Seen>,
    /// When the current watch started; `None` while there is none.
    watching_since: Option<Instant>,
}

impl PeerLeases {
    /// A new watch started at `now`; it replays the bucket, so earlier receipts are dropped.
    pub fn watch_started(&mut self, now: Instant) {
        self.seen.clear();
        self.watching_since = Some(now);
    }

    /// The watch broke: nothing is certain until a new one has run for a while.
    pub fn watch_lost(&mut self) {
        self.watching_since = None;
    }

    /// A node entry (`node`, `incarnation`) at `revision` was received at `now`.
    pub fn observe(&mut self, node: &str, incarnation: Incarnation, revision: u64, now: Instant) {
        let unchanged = self
            .seen
            .get(node)
            .is_some_and(|seen| seen.revision == revision);
        if !unchanged {
            self.seen.insert(
                node.to_owned(),
                Seen {
                    incarnation,
                    revision,
                    received_at: now,
                },
            );
        }
    }

    /// A node entry was deleted (a node leaving says goodbye this way).
    pub fn forget(&mut self, node: &str) {
        self.seen.remove(node);
    }

    /// Whether the bucket has been watched without a break for `settle`.
    pub fn is_settled(&self, now: Instant, timing: LeaseTiming) -> bool {
        self.watching_since
            .is_some_and(|since| now.saturating_duration_since(since) >= timing.settle())
    }

    /// The latest revision of `node`'s entry, if one was received.
    pub fn revision(&self, node: &str) -> Option<u64> {
        self.seen.get(node).map(|seen| seen.revision)
    }

    /// Whether `node` holds a lease under any incarnation at `now` (it may host restored rooms
    /// even if an earlier incarnation of it lapsed).
    pub fn holds_a_lease(&self, node: &str, now: Instant, timing: LeaseTiming) -> bool {
        self.seen
            .get(node)
            .is_some_and(|seen| now.saturating_duration_since(seen.received_at) <= timing.lease)
    }

    /// Whether `node`'s `incarnation` holds its rooms at `now`.
    pub fn liveness(
        &self,
        node: &str,
        incarnation: Incarnation,
        now: Instant,
        timing: LeaseTiming,
    ) -> Liveness {
        match self.seen.get(node) {
            Some(seen) if seen.incarnation != incarnation => Liveness::Lapsed,
            Some(seen) if now.saturating_duration_since(seen.received_at) <= timing.lease => {
                Liveness::Live
            }
            _ if self.is_settled(now, timing) => Liveness::Lapsed,
            _ => Liveness::Unknown,
        }
    }
}

/// Who holds a room id now, as far as a claim is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// No entry.
    Nobody,
    /// An entry of this node's current incarnation.
    ThisIncarnation,
    /// An entry of another incarnation (any node), with its liveness.
    Other(Liveness),
    /// The live holder is draining and asked this node to take the room over (it stopped the
    /// room at a tick boundary first, so the two never run it at once).
    HandingOver,
}

/// What a creation of a room id must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Create the entry (compare-and-swap on absence).
    Create,
    /// Write over the lapsed entry (compare-and-swap on its revision).
    TakeOver,
    /// The room exists: answer 409 `room_exists` (to every creator but the first, D1).
    Exists,
    /// This node cannot tell yet: answer 503 so the client retries.
    NotSettled,
}

/// Decides a claim of one room id.
pub fn decide_claim(holder: Holder, settled: bool) -> ClaimDecision {
    match holder {
        Holder::Nobody if settled => ClaimDecision::Create,
        Holder::Nobody => ClaimDecision::NotSettled,
        Holder::ThisIncarnation | Holder::Other(Liveness::Live) => ClaimDecision::Exists,
        Holder::Other(Liveness::Lapsed) | Holder::HandingOver => ClaimDecision::TakeOver,
        Holder::Other(Liveness::Unknown) => ClaimDecision::NotSettled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: LeaseTiming = LeaseTiming {
        lease: Duration::from_millis(3_000),
    };

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn the_owner_fences_a_guard_before_any_observer_can_see_its_lease_lapse() {
        let sent_at = Instant::now();
        let fence = TIMING.fence_after(sent_at);
        // The earliest an observer can call the lease lapsed is a lease after the send.
        assert!(fence < sent_at + TIMING.lease);
        assert_eq!(sent_at + TIMING.lease - fence, TIMING.guard());
        assert!(TIMING.renew_every() * 3 < TIMING.lease - TIMING.guard());
    }

    #[test]
    fn a_held_lease_is_renewed_until_its_fence_and_then_fenced() {
        let start = Instant::now();
        let mut lease = NodeLease::Unregistered;
        assert_eq!(lease.next_action(start, 0), LeaseAction::Register);
        lease.written(7, 1, start, start, TIMING);
        assert_eq!(lease.incarnation(), Some(7));
        assert_eq!(
            lease.next_action(start + ms(600), 3),
            LeaseAction::Renew { revision: 1 }
        );
        assert_eq!(lease.next_action(start + ms(2_400), 3), LeaseAction::Fence);
    }

    #[test]
    fn a_renewal_acknowledged_after_the_fence_does_not_revive_the_incarnation() {
        let start = Instant::now();
        let mut lease = NodeLease::Unregistered;
        lease.written(7, 1, start, start, TIMING);
        // Sent in time, but the answer came after the fence (a pause, a slow broker).
        lease.written(7, 2, start + ms(2_000), start + ms(2_500), TIMING);
        assert_eq!(lease, NodeLease::Fenced { incarnation: 7 });
        assert_eq!(lease.incarnation(), None, "no room is created while fenced");
        assert_eq!(lease.next_action(start + ms(2_600), 2), LeaseAction::Wait);
        assert_eq!(
            lease.next_action(start + ms(2_700), 0),
            LeaseAction::Register,
            "a new incarnation once every room of the old one is closed"
        );
    }

    #[test]
    fn liveness_follows_local_receipt_time_not_the_writers_clock() {
        let start = Instant::now();
        let mut peers = PeerLeases::default();
        peers.watch_started(start);
        peers.observe("b", 1, 10, start);
        assert_eq!(
            peers.liveness("b", 1, start + ms(2_900), TIMING),
            Liveness::Live
        );
        // The same revision again (a watch replay) does not refresh it.
        peers.observe("b", 1, 10, start + ms(2_000));
        assert_eq!(
            peers.liveness("b", 1, start + ms(3_700), TIMING),
            Liveness::Lapsed
        );
        peers.observe("b", 1, 11, start + ms(3_800));
        assert_eq!(
            peers.liveness("b", 1, start + ms(3_900), TIMING),
            Liveness::Live
        );
    }

    #[test]
    fn a_restarted_node_makes_its_old_rooms_lapse_at_once() {
        let start = Instant::now();
        let mut peers = PeerLeases::default();
        peers.watch_started(start);
        peers.observe("b", 1, 10, start);
        peers.observe("b", 2, 11, start + ms(100));
        assert_eq!(
            peers.liveness("b", 1, start + ms(100), TIMING),
            Liveness::Lapsed
        );
        assert_eq!(
            peers.liveness("b", 2, start + ms(100), TIMING),
            Liveness::Live
        );
    }

    #[test]
    fn nothing_is_lapsed_or_free_until_the_watch_has_run_for_a_lease() {
        let start = Instant::now();
        let mut peers = PeerLeases::default();
        assert_eq!(peers.liveness("b", 1, start, TIMING), Liveness::Unknown);
        peers.watch_started(start);
        assert!(!peers.is_settled(start + ms(3_000), TIMING));
        assert_eq!(
            peers.liveness("b", 1, start + ms(3_000), TIMING),
            Liveness::Unknown
        );
        assert!(peers.is_settled(start + TIMING.settle(), TIMING));
        assert_eq!(
            peers.liveness("b", 1, start + TIMING.settle(), TIMING),
            Liveness::Lapsed
        );
        peers.watch_lost();
        assert!(!peers.is_settled(start + ms(60_000), TIMING));
    }

    #[test]
    fn claims_answer_exists_to_every_creator_but_the_first() {
        assert_eq!(decide_claim(Holder::Nobody, true), ClaimDecision::Create);
        assert_eq!(
            decide_claim(Holder::ThisIncarnation, true),
            ClaimDecision::Exists
        );
        assert_eq!(
            decide_claim(Holder::Other(Liveness::Live), true),
            ClaimDecision::Exists
        );
        assert_eq!(
            decide_claim(Holder::Other(Liveness::Lapsed), true),
            ClaimDecision::TakeOver
        );
    }

    #[test]
    fn an_unsettled_view_never_claims_what_a_live_owner_may_hold() {
        assert_eq!(
            decide_claim(Holder::Nobody, false),
            ClaimDecision::NotSettled
        );
        assert_eq!(
            decide_claim(Holder::Other(Liveness::Unknown), true),
            ClaimDecision::NotSettled
        );
    }

    #[test]
    fn a_room_handed_over_by_its_live_holder_is_taken_over_even_unsettled() {
        for settled in [true, false] {
            assert_eq!(
                decide_claim(Holder::HandingOver, settled),
                ClaimDecision::TakeOver
            );
        }
    }
}
