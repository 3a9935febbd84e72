//! Building a room before it starts: a new one from a creation request, or one restored from
//! its checkpoint after its node failed. Both end in [`Lobby::assemble`], so a restored room is
//! listed, limited and configured exactly like a new one.

use super::{
    new_epoch, next_epoch, random_room_id, unix_millis, CreateRoom, Lobby, LobbyError, PreparedRoom,
};
use crate::checkpoint::Checkpoint;
use crate::directory::RoomInfo;
use crate::game::{RoomOptions, RoomType};
use crate::room::{Room, RoomSettings};
use crate::simulation::Simulation;
use ludus_protocol::RoomId;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Where a room's listing comes from besides its simulation.
struct Origin {
    metadata: serde_json::Value,
    restored_from_epoch: Option<u64>,
}

/// Time between two ticks of `room_type`.
fn tick_interval(room_type: &RoomType) -> Duration {
    Duration::from_secs(1) / u32::from(room_type.tick_hz.max(1))
}

impl Lobby {
    /// Validates a creation request and builds the room without starting it (a cluster takes the
    /// room's lease in between, so only the lease holder ever starts an actor).
    pub fn prepare_room(&self, request: CreateRoom) -> Result<PreparedRoom, LobbyError> {
        self.admit_room()?;
        let room_type = self.room_type(&request.room_type)?;
        let room_id = match &request.room_id {
            Some(id) => RoomId::parse(id)?,
            None => random_room_id(),
        };
        let max_players = request.max_players.unwrap_or(room_type.max_players);
        if max_players == 0 || max_players > room_type.max_players {
            return Err(LobbyError::InvalidField {
                field: "max_players",
                message: format!(
                    "must be between 1 and {} for `{}`, got {max_players}",
                    room_type.max_players, room_type.name
                ),
            });
        }
        let options = RoomOptions {
            room_id: room_id.clone(),
            max_players,
        };
        let game = (room_type.factory)(&options);
        let epoch = request.epoch.unwrap_or_else(new_epoch);
        let max_queued = self.max_queued_inputs(max_players);
        let simulation = Simulation::new(
            game,
            epoch,
            fastrand::u64(..),
            tick_interval(room_type),
            max_queued,
        )
        .map_err(|_| LobbyError::RoomCrashed(room_id.clone()))?;
        let origin = Origin {
            metadata: request.metadata,
            restored_from_epoch: None,
        };
        self.assemble(room_type, room_id, max_players, simulation, origin)
    }

    /// Builds a room restored from `checkpoint` (a failover: its node died) in epoch
    /// `checkpoint.epoch + 1`, without starting it; every seat of the checkpoint waits for its
    /// player to resume.
    pub fn prepare_restored(&self, checkpoint: &Checkpoint) -> Result<PreparedRoom, LobbyError> {
        self.admit_room()?;
        let room_type = self.room_type(&checkpoint.room_type)?;
        let room_id = RoomId::parse(&checkpoint.room_id)?;
        let max_players = checkpoint.max_players.clamp(1, room_type.max_players);
        let game = (room_type.factory)(&RoomOptions {
            room_id: room_id.clone(),
            max_players,
        });
        let simulation = Simulation::restore(
            game,
            &checkpoint.simulation,
            &checkpoint.seats,
            next_epoch(checkpoint.epoch),
            tick_interval(room_type),
            self.max_queued_inputs(max_players),
        )
        .map_err(|error| LobbyError::Unrestorable(room_id.clone(), error.to_string()))?;
        let origin = Origin {
            metadata: checkpoint.metadata.clone(),
            restored_from_epoch: Some(checkpoint.epoch),
        };
        let mut prepared = self.assemble(room_type, room_id, max_players, simulation, origin)?;
        prepared.room.restore_occupants(checkpoint);
        Ok(prepared)
    }

    /// Whether this node takes another room now.
    fn admit_room(&self) -> Result<(), LobbyError> {
        if self.is_shutting_down() {
            return Err(LobbyError::ShuttingDown);
        }
        if self.directory.len() >= self.settings.max_rooms {
            return Err(LobbyError::AtCapacity(self.settings.max_rooms));
        }
        Ok(())
    }

    /// Inputs a room of `max_players` may hold between two ticks.
    fn max_queued_inputs(&self, max_players: u32) -> usize {
        self.settings
            .max_queued_inputs_per_player
            .saturating_mul(usize::try_from(max_players).unwrap_or(usize::MAX))
    }

    /// The room around `simulation`, with its listing.
    fn assemble(
        &self,
        room_type: &RoomType,
        room_id: RoomId,
        max_players: u32,
        mut simulation: Simulation,
        origin: Origin,
    ) -> Result<PreparedRoom, LobbyError> {
        let epoch = simulation.epoch();
        let state = simulation
            .listing()
            .map_err(|_| LobbyError::RoomCrashed(room_id.clone()))?;
        let info = RoomInfo {
            room_id: room_id.clone(),
            room_type: room_type.name.clone(),
            players: 0,
            reserved: 0,
            max_players,
            metadata: origin.metadata,
            state,
            created_at_ms: unix_millis(SystemTime::now()),
            epoch,
            restored_from_epoch: origin.restored_from_epoch,
        };
        let settings = RoomSettings {
            room_id: room_id.clone(),
            room_type: room_type.name.clone(),
            tick_hz: room_type.tick_hz,
            max_players,
            seat_ttl: self.settings.seat_ttl,
            empty_grace: self.settings.empty_grace,
            window_ticks: window_ticks(self.settings.flow_window_ms, room_type.tick_hz),
            event_bytes_per_tick: self.settings.event_bytes_per_tick,
            max_queued_event_bytes: self.settings.max_queued_event_bytes,
            max_inputs_per_seat: self.settings.max_queued_inputs_per_player,
            limits: Arc::clone(&self.settings.session_limits),
            resume_window: self.settings.resume_window.get(&room_type.name),
            resume_history_bytes: self.settings.resume_history_bytes,
            checkpoints: self
                .settings
                .checkpoints
                .as_ref()
                .map(|(sink, intervals)| (sink.clone(), intervals.get(&room_type.name))),
            tokens: self.tokens.clone(),
        };
        let room = Room::new(
            settings,
            simulation,
            Arc::clone(&self.directory),
            self.metrics.clone(),
        )
        .map_err(|error| {
            tracing::error!(%error, "cannot create a room's readiness set");
            LobbyError::AtCapacity(self.directory.len())
        })?;
        Ok(PreparedRoom { info, room })
    }
}

fn window_ticks(flow_window_ms: u64, tick_hz: u16) -> u32 {
    let ticks = flow_window_ms.saturating_mul(u64::from(tick_hz)) / 1000;
    u32::try_from(ticks).unwrap_or(u32::MAX).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_ticks_scale_with_the_tick_rate() {
        assert_eq!(window_ticks(2_000, 20), 40);
        assert_eq!(window_ticks(2_000, 1), 2);
    }
}
