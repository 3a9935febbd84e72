//! The inputs a session sends and the acknowledgements that time them.
//!
//! Inputs are numbered from 1 and the number never resets for the session (a resume keeps
//! it); each one is remembered with its send time until a delta's or snapshot's `acks` show it
//! applied, which gives one latency sample.

use super::Session;
use crate::stats::Counter;
use ludus_protocol::{ClientMessage, Input, InputAck, Value};
use std::time::Instant;

/// Inputs remembered for latency matching. At 40 inputs/s this is six seconds of inputs; an
/// input older than that is forgotten and counted as [`Counter::InputsUnacked`].
const MAX_INPUTS_IN_FLIGHT: usize = 256;

impl Session {
    /// Builds the next input carrying `payload`, or `None` before `welcome`.
    pub fn next_input(&mut self, payload: Value, now: Instant) -> Option<ClientMessage> {
        self.player?;
        let seq = self.next_seq;
        self.next_seq = self.next_seq.checked_add(1)?;
        if self.inputs_in_flight.len() == MAX_INPUTS_IN_FLIGHT {
            self.inputs_in_flight.pop_front();
            self.counters.incr(Counter::InputsUnacked);
        }
        self.inputs_in_flight.push_back((seq, now));
        self.counters.incr(Counter::InputsSent);
        let ack_tick = self.last_tick();
        self.acked_tick = self.acked_tick.max(ack_tick);
        Some(ClientMessage::Input(Input {
            seq,
            ack_tick,
            payload,
        }))
    }

    pub(super) fn match_acks(&mut self, acks: &[InputAck], now: Instant) {
        let Some(player) = self.player else {
            return;
        };
        let Some(acked_seq) = acks
            .iter()
            .filter(|ack| ack.player == player)
            .map(|ack| ack.seq)
            .max()
        else {
            return;
        };
        while let Some(&(seq, sent_at)) = self.inputs_in_flight.front() {
            if seq > acked_seq {
                break;
            }
            self.inputs_in_flight.pop_front();
            self.counters.incr(Counter::InputsAcked);
            self.counters
                .record_latency(now.saturating_duration_since(sent_at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use ludus_protocol::ProtocolVersion;
    use std::time::Duration;

    #[test]
    fn inputs_are_numbered_from_one_and_their_acks_measure_latency() {
        let start = Instant::now();
        let mut session = joined(start);
        let payload = || Value::from(1);
        let first = session.next_input(payload(), start);
        assert!(matches!(
            first,
            Some(ClientMessage::Input(Input {
                seq: 1,
                ack_tick: 10,
                ..
            }))
        ));
        session.next_input(payload(), start + Duration::from_millis(10));
        session.next_input(payload(), start + Duration::from_millis(20));
        // The server applied up to seq 2 (coalescing 1 and 2) by tick 11.
        let acked_at = start + Duration::from_millis(50);
        session.handle_frame(&frame(&[delta(EPOCH, 10, my_ack(2))]), acked_at);
        assert_eq!(session.counters().get(Counter::InputsAcked), 2);
        assert_eq!(session.counters().latency_samples_us(), &[50_000, 40_000]);
        assert_eq!(session.inputs_in_flight.len(), 1);
    }

    #[test]
    fn a_resumed_snapshot_acknowledges_inputs_too() {
        let start = Instant::now();
        let mut session = joined(start);
        session.next_input(Value::from(1), start);
        session.handle_frame(
            &frame(&[snapshot(EPOCH, 40, my_ack(1))]),
            start + Duration::from_millis(5),
        );
        assert_eq!(session.counters().get(Counter::InputsAcked), 1);
        assert!(session.inputs_in_flight.is_empty());
    }

    #[test]
    fn inputs_carry_the_ack_so_an_active_bot_sends_no_extra_acks() {
        let now = Instant::now();
        let mut session = joined(now);
        for base_tick in 10..30 {
            session.next_input(Value::from(1), now);
            let reply = session.handle_frame(&frame(&[delta(EPOCH, base_tick, vec![])]), now);
            assert_eq!(reply, None);
        }
    }

    #[test]
    fn too_many_unacknowledged_inputs_forget_the_oldest() {
        let now = Instant::now();
        let mut session = joined(now);
        for _ in 0..MAX_INPUTS_IN_FLIGHT + 3 {
            session.next_input(Value::from(1), now);
        }
        assert_eq!(session.counters().get(Counter::InputsUnacked), 3);
        assert_eq!(session.counters().get(Counter::InputsSent), 259);
    }

    #[test]
    fn no_input_before_welcome() {
        let mut session = Session::new(ProtocolVersion::V1);
        assert_eq!(session.next_input(Value::from(1), Instant::now()), None);
    }
}
