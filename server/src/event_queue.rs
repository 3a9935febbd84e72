//! Operator events waiting for their tick: a room's bounded queue of messages and
//! announcements from outside the game, released at most a byte budget per tick.
//!
//! Why: every event goes to every member in the next delta, so an unbounded stream of them
//! multiplies into every member's bandwidth (finding: 400 messages of 15 KB a second made
//! 924 KiB frames and kicked members that paused reading for a second). The queue bounds what
//! waits (the sender is told `room_busy` beyond it) and the budget bounds what one tick carries.

use std::collections::VecDeque;

/// The queue has no room for an event of this size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the room's event queue is full")]
pub struct QueueFull;

/// Events in arrival order, each with its encoded size.
#[derive(Debug)]
pub struct EventQueue<T> {
    pending: VecDeque<(T, usize)>,
    queued_bytes: usize,
    bytes_per_tick: usize,
    max_queued_bytes: usize,
}

impl<T> EventQueue<T> {
    /// A queue releasing `bytes_per_tick` per tick and holding `max_queued_bytes` at most.
    pub fn new(bytes_per_tick: usize, max_queued_bytes: usize) -> Self {
        Self {
            pending: VecDeque::new(),
            queued_bytes: 0,
            bytes_per_tick,
            max_queued_bytes,
        }
    }

    /// Queues `event` of `size` encoded bytes, unless that would exceed the queue's bound.
    pub fn push(&mut self, event: T, size: usize) -> Result<(), QueueFull> {
        if self.queued_bytes.saturating_add(size) > self.max_queued_bytes {
            return Err(QueueFull);
        }
        self.queued_bytes += size;
        self.pending.push_back((event, size));
        Ok(())
    }

    /// The events waiting, oldest first, with their sizes (what a handover carries along).
    pub fn waiting(&self) -> impl Iterator<Item = &(T, usize)> {
        self.pending.iter()
    }

    /// The events of one tick, oldest first, within the byte budget. An event larger than the
    /// whole budget still goes out, alone, so nothing can wait forever.
    pub fn release_tick(&mut self) -> Vec<T> {
        let mut released = Vec::new();
        let mut spent = 0_usize;
        while let Some((_, size)) = self.pending.front() {
            let fits = spent.saturating_add(*size) <= self.bytes_per_tick;
            if !fits && !released.is_empty() {
                break;
            }
            let Some((event, size)) = self.pending.pop_front() else {
                break;
            };
            spent += size;
            self.queued_bytes -= size;
            released.push(event);
        }
        released
    }

    /// Bytes waiting.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_releases_at_most_its_budget_in_order() {
        let mut queue = EventQueue::new(100, 1_000);
        for id in 0..5 {
            queue.push(id, 40).expect("fits");
        }
        assert_eq!(queue.release_tick(), vec![0, 1]);
        assert_eq!(queue.release_tick(), vec![2, 3]);
        assert_eq!(queue.release_tick(), vec![4]);
        assert_eq!(queue.release_tick(), Vec::<i32>::new());
        assert_eq!(queue.queued_bytes(), 0);
    }

    #[test]
    fn a_full_queue_refuses_and_recovers_as_ticks_drain_it() {
        let mut queue = EventQueue::new(100, 250);
        for id in 0..5 {
            queue.push(id, 50).expect("fits");
        }
        assert_eq!(queue.push(5, 1), Err(QueueFull));
        queue.release_tick();
        assert_eq!(queue.push(5, 50), Ok(()));
    }

    #[test]
    fn an_event_larger_than_the_budget_goes_out_alone() {
        let mut queue = EventQueue::new(10, 1_000);
        queue.push("big", 50).expect("fits");
        queue.push("small", 5).expect("fits");
        assert_eq!(queue.release_tick(), vec!["big"]);
        assert_eq!(queue.release_tick(), vec!["small"]);
    }
}
