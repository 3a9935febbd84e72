//! Per-connection flow control, the answer to "what if a client stops reading?".
//!
//! A socket that still takes writes says little about the client: the kernel buffers hundreds of
//! KiB, and a client can read frames without applying them. So flow control is part of the
//! protocol. Clients acknowledge the last tick they
//! applied (in every `input`, or in an `ack`). A room forwards deltas to a member only while fewer than
//! `window` forwarded ticks are unacknowledged; beyond that it drops them (counted as skipped) and
//! is *paused*. When the client's acks catch up to half the window, the member is owed a fresh
//! snapshot, which replaces every dropped delta at once. A member paused for longer than
//! the slow-client timeout is closed with `too_slow` (4008).
//!
//! The same machinery heals gaps: if a delta was not forwarded, the next delta's `base_tick` does
//! not match and the member is owed a snapshot instead of a delta the client could not apply.
//!
//! Result: the server buffers at most `window` frames per client, and a slow client never
//! delays its room's tick.

use std::time::{Duration, Instant};

/// What to do with a frame from the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameVerdict {
    /// Write it to the socket.
    Forward,
    /// Drop it; the client will be caught up by a snapshot.
    Skip,
    /// Drop it and ask the room for a snapshot now.
    SkipAndResync,
}

/// Where a session stands in flow control, as the operator dashboard shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowPhase {
    /// Only a snapshot gets through next (just joined, resynced, or caught up after a pause).
    AwaitingSnapshot,
    /// Deltas flow.
    Streaming,
    /// The window is full: deltas are dropped until the client acknowledges.
    Paused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowState {
    /// Nothing forwarded yet, or a snapshot was requested: only a snapshot gets through.
    AwaitingSnapshot,
    /// Deltas flow; `last_forwarded` is the tick of the last frame written.
    Streaming { last_forwarded: u64 },
    /// The window is full; deltas are dropped until the client acks.
    Paused { last_forwarded: u64, since: Instant },
}

/// Flow-control state of one session.
#[derive(Debug, Clone)]
pub struct FlowControl {
    window: u64,
    acked: u64,
    state: FlowState,
}

impl FlowControl {
    /// A session that may have `window` ticks (at least 2) in flight.
    pub fn new(window: u32) -> Self {
        Self {
            window: u64::from(window.max(2)),
            acked: 0,
            state: FlowState::AwaitingSnapshot,
        }
    }

    /// A snapshot of `tick` is always forwarded and restarts streaming from it.
    pub fn on_snapshot(&mut self, tick: u64) -> FrameVerdict {
        // Flow accounting counts frames in flight: after a snapshot, exactly one.
        self.acked = tick.saturating_sub(1);
        self.state = FlowState::Streaming {
            last_forwarded: tick,
        };
        FrameVerdict::Forward
    }

    /// A resumed client was just sent every delta up to `tick` and had applied `acked`: stream
    /// from there, paused at once when more than the window is unacknowledged.
    pub fn resume_from(&mut self, acked: u64, tick: u64, now: Instant) {
        self.acked = acked.min(tick);
        self.state = if tick - self.acked >= self.window {
            FlowState::Paused {
                last_forwarded: tick,
                since: now,
            }
        } else {
            FlowState::Streaming {
                last_forwarded: tick,
            }
        };
    }

    /// Decides about a delta from `base_tick` to `tick`.
    pub fn on_delta(&mut self, tick: u64, base_tick: u64, now: Instant) -> FrameVerdict {
        match self.state {
            FlowState::AwaitingSnapshot | FlowState::Paused { .. } => FrameVerdict::Skip,
            FlowState::Streaming { last_forwarded } => {
                if base_tick != last_forwarded {
                    self.state = FlowState::AwaitingSnapshot;
                    return FrameVerdict::SkipAndResync;
                }
                if last_forwarded.saturating_sub(self.acked) >= self.window {
                    self.state = FlowState::Paused {
                        last_forwarded,
                        since: now,
                    };
                    return FrameVerdict::Skip;
                }
                self.state = FlowState::Streaming {
                    last_forwarded: tick,
                };
                FrameVerdict::Forward
            }
        }
    }

    /// Records the client's ack; returns `true` when the session should ask for a snapshot to
    /// resume a paused client.
    pub fn on_ack(&mut self, tick: u64) -> bool {
        let forwarded = match self.state {
            FlowState::Streaming { last_forwarded } | FlowState::Paused { last_forwarded, .. } => {
                last_forwarded
            }
            FlowState::AwaitingSnapshot => return false,
        };
        // A client cannot have applied a tick it was never sent.
        self.acked = self.acked.max(tick.min(forwarded));
        let caught_up = forwarded - self.acked <= self.window / 2;
        if matches!(self.state, FlowState::Paused { .. }) && caught_up {
            self.state = FlowState::AwaitingSnapshot;
            return true;
        }
        false
    }

    /// The session's phase.
    pub fn phase(&self) -> FlowPhase {
        match self.state {
            FlowState::AwaitingSnapshot => FlowPhase::AwaitingSnapshot,
            FlowState::Streaming { .. } => FlowPhase::Streaming,
            FlowState::Paused { .. } => FlowPhase::Paused,
        }
    }

    /// The last tick the client acknowledged (as far as it was sent).
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// How long the session has been paused, if it is.
    pub fn paused_for(&self, now: Instant) -> Option<Duration> {
        match self.state {
            FlowState::Paused { since, .. } => Some(now.saturating_duration_since(since)),
            _ => None,
        }
    }

    /// The client asked for a resync: forget the stream until the next snapshot. Returns
    /// `false` (and changes nothing) when a snapshot is already awaited, so the caller asks only
    /// once, or when the session is paused: a paused client resumes by acknowledging, never by
    /// asking, or a client that never reads could pull snapshot after snapshot past the window.
    pub fn await_snapshot(&mut self) -> bool {
        match self.state {
            FlowState::Streaming { .. } => {
                self.state = FlowState::AwaitingSnapshot;
                true
            }
            FlowState::AwaitingSnapshot | FlowState::Paused { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_client_streams_on_from_the_tick_it_was_brought_to() {
        let now = Instant::now();
        let mut flow = FlowControl::new(10);
        flow.resume_from(95, 100, now);
        assert_eq!(flow.on_delta(101, 100, now), FrameVerdict::Forward);
        let mut behind = FlowControl::new(10);
        behind.resume_from(50, 100, now);
        assert_eq!(behind.on_delta(101, 100, now), FrameVerdict::Skip, "paused");
        assert!(behind.on_ack(100), "caught up: owed a snapshot");
    }

    fn streaming(window: u32) -> (FlowControl, Instant) {
        let mut flow = FlowControl::new(window);
        assert_eq!(flow.on_snapshot(10), FrameVerdict::Forward);
        (flow, Instant::now())
    }

    #[test]
    fn deltas_before_the_first_snapshot_are_skipped() {
        let mut flow = FlowControl::new(4);
        assert_eq!(flow.on_delta(2, 1, Instant::now()), FrameVerdict::Skip);
    }

    #[test]
    fn an_acking_client_streams_forever() {
        let (mut flow, now) = streaming(4);
        for tick in 11..100 {
            assert_eq!(flow.on_delta(tick, tick - 1, now), FrameVerdict::Forward);
            assert!(!flow.on_ack(tick));
        }
    }

    #[test]
    fn a_silent_client_is_paused_after_the_window_then_resumed_by_snapshot() {
        let (mut flow, now) = streaming(4);
        // The snapshot plus three deltas fill a window of four.
        for tick in 11..=13 {
            assert_eq!(flow.on_delta(tick, tick - 1, now), FrameVerdict::Forward);
        }
        assert_eq!(flow.on_delta(14, 13, now), FrameVerdict::Skip);
        assert_eq!(flow.on_delta(15, 14, now), FrameVerdict::Skip);
        assert_eq!(flow.on_delta(16, 15, now), FrameVerdict::Skip);
        assert!(flow.paused_for(now).is_some());
        assert!(!flow.on_ack(10), "still too far behind");
        assert!(flow.on_ack(13), "caught up: ask for a snapshot");
        assert_eq!(flow.on_delta(17, 16, now), FrameVerdict::Skip);
        assert_eq!(flow.on_snapshot(17), FrameVerdict::Forward);
        assert_eq!(flow.on_delta(18, 17, now), FrameVerdict::Forward);
    }

    #[test]
    fn a_gap_from_the_room_triggers_one_resync() {
        let (mut flow, now) = streaming(4);
        assert_eq!(flow.on_delta(12, 11, now), FrameVerdict::SkipAndResync);
        assert_eq!(flow.on_delta(13, 12, now), FrameVerdict::Skip);
    }

    #[test]
    fn a_paused_client_cannot_resync_its_way_past_the_window() {
        let (mut flow, now) = streaming(2);
        assert_eq!(flow.on_delta(11, 10, now), FrameVerdict::Forward);
        assert_eq!(flow.on_delta(12, 11, now), FrameVerdict::Skip);
        assert!(
            !flow.await_snapshot(),
            "no snapshot on request while paused"
        );
        assert!(
            flow.paused_for(now).is_some(),
            "the slow-client clock keeps running"
        );
        assert!(flow.on_ack(11), "acking is the way back");
        assert!(
            !flow.await_snapshot(),
            "and then only one snapshot is asked for"
        );
    }

    #[test]
    fn acks_for_unsent_ticks_are_capped() {
        let (mut flow, now) = streaming(2);
        assert!(!flow.on_ack(1_000));
        assert_eq!(flow.on_delta(11, 10, now), FrameVerdict::Forward);
        assert_eq!(flow.on_delta(12, 11, now), FrameVerdict::Forward);
        assert_eq!(flow.on_delta(13, 12, now), FrameVerdict::Skip);
    }
}
