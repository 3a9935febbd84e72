//! The last ticks' encoded deltas of a room, which a resuming client catches up from.
//!
//! Why this layout: every room keeps up to its resume window of ticks (600 at 20 Hz for 30 s),
//! and an idle room's deltas are a few bytes each. Kept as one shared buffer per tick, the
//! allocations and their headers cost several times the bytes themselves, about 5 KiB per idle
//! connection. Here the encodings sit back to back in one ring of bytes, with 8 bytes of
//! lengths per tick; a catch-up (rare) copies its deltas out.

use bytes::Bytes;
use ludus_protocol::ProtocolVersion;
use std::collections::VecDeque;

/// The last ticks' encoded deltas, bounded in bytes and ticks: the oldest go first.
#[derive(Debug)]
pub struct DeltaHistory {
    /// The tick the oldest kept delta brought the room to.
    first_tick: u64,
    /// Per tick from `first_tick` on: the lengths of its version 1 and version 2 encodings
    /// (0: not kept in that version).
    lengths: VecDeque<[u32; 2]>,
    /// Every kept encoding, oldest first, version 1 before version 2 within a tick.
    data: VecDeque<u8>,
    max_bytes: usize,
    max_ticks: usize,
}

impl DeltaHistory {
    /// A history of at most `max_bytes` of encoded deltas (0 keeps none) and `max_ticks`
    /// ticks (a client away longer than the resume window cannot resume anyway).
    pub fn new(max_bytes: usize, max_ticks: usize) -> Self {
        Self {
            first_tick: 0,
            lengths: VecDeque::new(),
            data: VecDeque::new(),
            max_bytes,
            max_ticks,
        }
    }

    /// Records the delta that brought the room to `tick` (from `tick - 1`). A gap in the ticks
    /// (never expected) clears the history, so a catch-up is always contiguous.
    pub fn push(&mut self, tick: u64, v1: Option<Bytes>, v2: Option<Bytes>) {
        if self.lengths.is_empty() || self.next_tick() != Some(tick) {
            self.clear();
            self.first_tick = tick;
        }
        let (v1, v2) = (kept(v1.as_ref()), kept(v2.as_ref()));
        let size = [v1, v2]
            .iter()
            .flatten()
            .map(|(_, len)| to_usize(*len))
            .sum::<usize>();
        if size > self.max_bytes {
            // It would go at once, and everything before it: not copied in at all.
            self.clear();
            return;
        }
        for (part, _) in v1.iter().chain(v2.iter()) {
            self.data.extend(part.iter());
        }
        self.lengths
            .push_back([v1.map_or(0, |(_, len)| len), v2.map_or(0, |(_, len)| len)]);
        while self.data.len() > self.max_bytes || self.lengths.len() > self.max_ticks {
            let Some([v1, v2]) = self.lengths.pop_front() else {
                break;
            };
            self.data.drain(..to_usize(v1) + to_usize(v2));
            self.first_tick += 1;
        }
        self.give_back();
    }

    /// Returns capacity a burst of large deltas left behind (the ring keeps at most four
    /// times what it holds, and at least [`KEPT_CAPACITY`]).
    fn give_back(&mut self) {
        let keep = self.data.len().max(KEPT_CAPACITY);
        if self.data.capacity() > 4 * keep {
            self.data.shrink_to(2 * keep);
        }
    }

    /// The tick the next delta must bring the room to, when any is kept.
    fn next_tick(&self) -> Option<u64> {
        let held = u64::try_from(self.lengths.len()).ok()?;
        self.first_tick.checked_add(held)
    }

    /// The deltas from `last_tick` to the newest tick, in `version`, when the history holds
    /// every one of them; an empty list when `last_tick` is the newest tick.
    pub fn since(&self, last_tick: u64, version: ProtocolVersion) -> Option<Vec<Bytes>> {
        if self.lengths.is_empty() {
            return None;
        }
        let newest = self.next_tick()?.checked_sub(1)?;
        if last_tick >= newest {
            return (last_tick == newest).then(Vec::new);
        }
        // The entry for tick t applies to t - 1: the first needed is last_tick + 1.
        if last_tick + 1 < self.first_tick {
            return None;
        }
        let skip = usize::try_from(last_tick + 1 - self.first_tick).ok()?;
        let mut offset: usize = self
            .lengths
            .iter()
            .take(skip)
            .map(|[v1, v2]| to_usize(*v1) + to_usize(*v2))
            .sum();
        let mut parts = Vec::with_capacity(self.lengths.len() - skip);
        for &[v1, v2] in self.lengths.iter().skip(skip) {
            let (start, len) = match version {
                ProtocolVersion::V1 => (offset, to_usize(v1)),
                ProtocolVersion::V2 => (offset + to_usize(v1), to_usize(v2)),
            };
            if len == 0 {
                return None; // not kept in this version
            }
            parts.push(self.data.range(start..start + len).copied().collect());
            offset += to_usize(v1) + to_usize(v2);
        }
        Some(parts)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.lengths.clear();
        self.data.clear();
        self.give_back();
    }
}

/// Capacity the ring may keep however little it holds.
const KEPT_CAPACITY: usize = 16 * 1024;

/// An encoding with its length, when it can be described: one too large for 32 bits is not
/// kept, and a resume past it gets a snapshot.
fn kept(part: Option<&Bytes>) -> Option<(&Bytes, u32)> {
    let part = part?;
    Some((part, u32::try_from(part.len()).ok()?))
}

fn to_usize(length: u32) -> usize {
    usize::try_from(length).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ludus_protocol::PlayerId;
    use proptest::prelude::*;
    use std::time::Duration;

    fn part(tick: u64) -> Option<Bytes> {
        Some(Bytes::from(tick.to_be_bytes().to_vec()))
    }

    #[test]
    fn a_delta_larger_than_the_history_is_not_copied_in() {
        let mut history = DeltaHistory::new(64 * 1024, 100);
        history.push(1, part(1), None);
        history.push(2, Some(Bytes::from(vec![2; 1024 * 1024])), None);
        assert_eq!(history.bytes(), 0);
        assert!(history.data.capacity() < 256 * 1024);
        history.push(3, part(3), None);
        assert_eq!(
            history.since(2, ProtocolVersion::V1),
            part(3).map(|part| vec![part])
        );
        assert_eq!(
            history.since(1, ProtocolVersion::V1),
            None,
            "tick 2 was not kept"
        );
    }

    #[test]
    fn the_room_large_deltas_took_is_given_back_once_they_are_evicted() {
        let mut history = DeltaHistory::new(usize::MAX, 2);
        history.push(1, Some(Bytes::from(vec![1; 48 * 1024])), None);
        history.push(2, Some(Bytes::from(vec![2; 48 * 1024])), None);
        assert!(history.data.capacity() >= 96 * 1024);
        history.push(3, part(3), None);
        history.push(4, part(4), None);
        assert_eq!(history.bytes(), 16);
        assert!(
            history.data.capacity() <= 64 * 1024,
            "{}",
            history.data.capacity()
        );
    }

    #[test]
    fn both_versions_of_a_tick_are_kept_apart_and_a_gap_starts_over() {
        let mut history = DeltaHistory::new(1024, 100);
        let v2 = |tick: u64| Some(Bytes::from(vec![0xee; usize::try_from(tick).unwrap_or(0)]));
        for tick in 1..=4 {
            history.push(tick, part(tick), v2(tick));
        }
        assert_eq!(history.bytes(), 4 * 8 + (1 + 2 + 3 + 4));
        let v2_parts: Vec<Bytes> = (3..=4).filter_map(v2).collect();
        assert_eq!(history.since(2, ProtocolVersion::V2), Some(v2_parts));
        let v1_parts: Vec<Bytes> = (2..=4).filter_map(part).collect();
        assert_eq!(history.since(1, ProtocolVersion::V1), Some(v1_parts));
        // Tick 6 does not follow tick 4: only tick 6 is kept.
        history.push(6, part(6), None);
        assert_eq!(history.bytes(), 8);
        assert_eq!(history.since(4, ProtocolVersion::V1), None);
        assert_eq!(
            history.since(5, ProtocolVersion::V1),
            part(6).map(|part| vec![part])
        );
    }

    #[test]
    fn the_history_answers_only_contiguous_ranges_it_still_holds() {
        let mut history = DeltaHistory::new(8 * 3, 100);
        for tick in 1..=5 {
            history.push(tick, part(tick), None);
        }
        // Three entries of 8 bytes fit: ticks 3, 4, 5.
        assert_eq!(history.bytes(), 24);
        assert_eq!(history.since(5, ProtocolVersion::V1), Some(vec![]));
        assert_eq!(
            history.since(3, ProtocolVersion::V1),
            Some(vec![
                part(4).unwrap_or_default(),
                part(5).unwrap_or_default()
            ])
        );
        assert_eq!(
            history.since(2, ProtocolVersion::V1).map(|p| p.len()),
            Some(3)
        );
        assert_eq!(
            history.since(1, ProtocolVersion::V1),
            None,
            "tick 2 is gone"
        );
        assert_eq!(
            history.since(3, ProtocolVersion::V2),
            None,
            "never encoded in v2"
        );
        assert_eq!(
            history.since(9, ProtocolVersion::V1),
            None,
            "from the future"
        );
    }

    proptest! {
        /// The resume guarantee end to end: for any tick a client's mirror was at, applying
        /// the catch-up the history answers brings it to the room's state exactly (acks of
        /// departed players included, through `left`).
        #[test]
        fn a_catch_up_from_any_held_tick_brings_a_mirror_to_the_rooms_state(
            plans in prop::collection::vec(crate::simulation::tests::tick_plan(), 1..30),
            pick in 0_usize..64,
        ) {
            use crate::encoding::delta_frame;
            use crate::simulation::tests::ScriptedGame;
            use crate::simulation::Simulation;
            use ludus_protocol::{codec, RoomState, ServerMessage, Value};

            let game = ScriptedGame::default();
            let mut simulation =
                Simulation::new(Box::new(game), 42, 1, Duration::from_millis(50), 1024)
                    .expect("create");
            let mut history = DeltaHistory::new(usize::MAX, usize::MAX);
            let mut mirrors = vec![RoomState::from_snapshot(simulation.snapshot())];
            let mut members: Vec<PlayerId> = Vec::new();
            let (mut next_player, mut seq) = (1, 0);
            for plan in plans {
                if plan.join {
                    simulation.join(PlayerId(next_player), "p").expect("join");
                    members.push(PlayerId(next_player));
                    next_player += 1;
                }
                if plan.leave && members.len() > 1 {
                    simulation.leave(members.remove(0)).expect("leave");
                }
                for (op, target, field, value) in plan.inputs {
                    let Some(player) = members.first().copied() else { break };
                    seq += 1;
                    let payload =
                        Value::Array(vec![op.into(), target.into(), field.into(), value.into()]);
                    simulation.queue_input(player, seq, payload).expect("queued");
                }
                let output = simulation.step().expect("step");
                let frame =
                    delta_frame(&simulation, &output.delta, &output.roster, ProtocolVersion::V1);
                history.push(output.delta.tick, Some(frame.part()), None);
                mirrors.push(RoomState::from_snapshot(simulation.snapshot()));
            }
            let mut mirror = mirrors[pick % mirrors.len()].clone();
            let missed = history
                .since(mirror.tick(), ProtocolVersion::V1)
                .expect("the history holds every tick");
            let parts: Vec<&[u8]> = missed.iter().map(|part| &part[..]).collect();
            for message in codec::decode_batch(&codec::batch_frame(&parts)).expect("decodes") {
                let ServerMessage::Delta(delta) = message else { panic!("only deltas") };
                mirror.apply(&delta).expect("applies");
            }
            prop_assert_eq!(mirror, RoomState::from_snapshot(simulation.snapshot()));
        }

        #[test]
        fn any_held_range_is_every_tick_after_last_tick_in_order(
            ticks in 1_u64..200,
            max_entries in 1_usize..50,
            last_tick in 0_u64..220,
        ) {
            let mut history = DeltaHistory::new(8 * max_entries, usize::MAX);
            for tick in 1..=ticks {
                history.push(tick, part(tick), None);
            }
            match history.since(last_tick, ProtocolVersion::V1) {
                Some(parts) => {
                    let expected: Vec<Bytes> =
                        ((last_tick + 1)..=ticks).filter_map(part).collect();
                    prop_assert_eq!(parts, expected);
                }
                None => prop_assert!(
                    last_tick > ticks || last_tick + (max_entries as u64) < ticks
                ),
            }
        }
    }
}
