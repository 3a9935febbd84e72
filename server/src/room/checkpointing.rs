//! The room's side of checkpoints: at a tick boundary, every interval, save the simulation and
//! the seats, encode, and hand the bytes to the cluster's writer without waiting; when the room
//! ends for good, ask the writer to forget it. What a checkpoint holds and when one is due are
//! decided in [`crate::checkpoint`].

use super::Room;
use crate::checkpoint::{self, Checkpoint, CheckpointWrite, SeatRecord, CHECKPOINT_FORMAT};
use crate::lobby::unix_millis;
use std::time::SystemTime;

impl Room {
    /// Writes a checkpoint when one is due after the tick just completed.
    pub(super) fn checkpoint_if_due(&mut self) {
        let Some((sink, interval)) = &self.settings.checkpoints else {
            return;
        };
        let tick = self.simulation.tick();
        if !checkpoint::due(
            self.last_checkpoint_tick,
            tick,
            *interval,
            self.settings.tick_interval(),
            self.seats_changed,
        ) {
            return;
        }
        self.last_checkpoint_tick = Some(tick);
        self.seats_changed = false;
        let bytes = match self.encode_checkpoint(sink.max_bytes) {
            Ok(bytes) => bytes,
            Err(outcome) => {
                self.metrics.checkpoints.with_label_values(&[outcome]).inc();
                return;
            }
        };
        let room_id = self.settings.room_id.clone();
        if !sink.offer(CheckpointWrite::Put { room_id, bytes }) {
            self.metrics
                .checkpoints
                .with_label_values(&["queue_full"])
                .inc();
        }
    }

    /// The room's exact state after the tick just completed, encoded within `max_bytes`; on
    /// failure, the `ludus_checkpoints_total` outcome that says why.
    pub(super) fn encode_checkpoint(&self, max_bytes: usize) -> Result<Vec<u8>, &'static str> {
        let simulation = self.simulation.save().map_err(|panicked| {
            tracing::warn!(room_id = %self.settings.room_id, error = %panicked, "checkpoint skipped");
            "game_panicked"
        })?;
        let metadata = self
            .directory
            .info(&self.settings.room_id)
            .map(|info| info.metadata)
            .unwrap_or_default();
        let checkpoint = Checkpoint {
            format: CHECKPOINT_FORMAT,
            room_id: self.settings.room_id.to_string(),
            room_type: self.settings.room_type.clone(),
            max_players: self.settings.max_players,
            metadata,
            epoch: self.simulation.epoch(),
            written_at_ms: unix_millis(SystemTime::now()),
            seats: self.seat_records(),
            reservations: self.reservation_records(),
            events: self.events.waiting().cloned().collect(),
            simulation,
        };
        checkpoint.encode(max_bytes).map_err(|error| {
            tracing::warn!(room_id = %self.settings.room_id, %error, "checkpoint not written");
            "too_large"
        })
    }

    /// Reservations not yet taken, with their expiry as wall-clock Unix milliseconds.
    fn reservation_records(&self) -> Vec<(ludus_protocol::PlayerId, u64)> {
        let now = std::time::Instant::now();
        let wall = unix_millis(SystemTime::now());
        let mut reserved: Vec<_> = self
            .reservations
            .iter()
            .filter_map(|(player, expires_at)| {
                let left = expires_at.checked_duration_since(now)?;
                Some((*player, wall.saturating_add(left.as_millis() as u64)))
            })
            .collect();
        reserved.sort_unstable();
        reserved
    }

    /// Every seat: connected members and players inside their resume window.
    fn seat_records(&self) -> Vec<SeatRecord> {
        let mut seats: Vec<SeatRecord> = self
            .simulation
            .applied_inputs()
            .filter_map(|(player, applied_seq)| {
                let (session, protocol, away) = match self.members.get(&player) {
                    Some(member) => (member.session_id, member.protocol, false),
                    None => {
                        let away = self.away.get(player)?;
                        (away.session, away.protocol, true)
                    }
                };
                Some(SeatRecord {
                    player,
                    session,
                    protocol: protocol.number(),
                    applied_seq,
                    away,
                })
            })
            .collect();
        seats.sort_unstable_by_key(|seat| seat.player);
        seats
    }

    /// When the room ends for good, its checkpoint must not bring it back; a room that lost
    /// its node keeps it ([`checkpoint::outlives`]).
    pub(super) fn forget_checkpoint(&self) {
        let Some((sink, _)) = &self.settings.checkpoints else {
            return;
        };
        if checkpoint::outlives(self.close_reason) {
            return;
        }
        let room_id = self.settings.room_id.clone();
        if !sink.offer(CheckpointWrite::Forget { room_id }) {
            self.metrics
                .checkpoints
                .with_label_values(&["queue_full"])
                .inc();
        }
    }
}
