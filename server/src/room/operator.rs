//! What operators ask of a room directly: a look inside it ([`InspectRoom`], for the dashboard's
//! room page) and removing a player ([`KickPlayer`]).
//!
//! Both are answered between ticks from what the room already holds; neither encodes a frame
//! nor waits on anything. The inspection is plain data copied out of the actor (its numbers
//! come from [`crate::stats`]); turning the state into JSON ([`state_json`]) happens on the
//! HTTP worker that asked, not on the room's thread.

use super::Room;
use crate::flow::FlowPhase;
use crate::session::closing::Ending;
use crate::stats::TickSummary;
use actix::prelude::*;
use ludus_protocol::{CloseCode, PlayerId, Snapshot};
use serde::Serialize;

/// Largest snapshot an inspection carries, in bytes of JSON; a larger state is left out (the
/// dashboard says so) rather than copied out of the room every second.
pub const MAX_INSPECTED_STATE_BYTES: usize = 64 * 1024;

/// Asks a room for its members, recent ticks and current state.
#[derive(Message)]
#[rtype(result = "RoomInspection")]
pub struct InspectRoom;

/// Removes a player from the room: its connection is closed with 4016 `kicked`, its seat is
/// freed (no resume), and a disconnected player's held seat or a reservation is dropped.
#[derive(Message)]
#[rtype(result = "Result<(), NotInRoom>")]
pub struct KickPlayer {
    /// The player.
    pub player: PlayerId,
}

/// The player has no seat, held seat or reservation in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("player {0} is not in the room")]
pub struct NotInRoom(pub PlayerId);

/// One seat as the dashboard shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SeatView {
    /// The player.
    pub player: PlayerId,
    /// `connected`, `away` (connection dropped, seat held for a resume) or `reserved`.
    pub status: &'static str,
    /// The session id, when the player has or had a connection.
    pub session: Option<u64>,
    /// The protocol version its client speaks, when connected or away.
    pub protocol: Option<u16>,
    /// Flow control, when connected.
    pub flow: Option<FlowPhase>,
    /// The last tick the client acknowledged, when connected.
    pub acked_tick: Option<u64>,
    /// The tick of the last state frame it was sent, when connected.
    pub sent_tick: Option<u64>,
    /// Bytes waiting for its socket, when connected.
    pub queued_bytes: Option<usize>,
}

/// A look inside a room.
#[derive(Debug, Clone, Serialize)]
pub struct RoomInspection {
    /// The room's type.
    pub room_type: String,
    /// Ticks per second.
    pub tick_hz: u16,
    /// The room's current tick.
    pub tick: u64,
    /// Its epoch.
    pub epoch: u64,
    /// Its recent ticks.
    pub ticks: TickSummary,
    /// Every seat: connected members, then away players, then reservations, by player id.
    pub seats: Vec<SeatView>,
    /// The room's state at this tick, for [`state_json`].
    #[serde(skip)]
    pub snapshot: Snapshot,
}

impl Room {
    fn seats(&self) -> Vec<SeatView> {
        let mut connected: Vec<SeatView> = self
            .members
            .iter()
            .map(|(player, member)| SeatView {
                player: *player,
                status: "connected",
                session: Some(member.session_id),
                protocol: Some(member.protocol.number()),
                flow: Some(member.flow().phase()),
                acked_tick: Some(member.flow().acked()),
                sent_tick: Some(member.last_tick),
                queued_bytes: Some(member.queued_bytes()),
            })
            .collect();
        connected.sort_by_key(|seat| seat.player);
        let mut away: Vec<SeatView> = self
            .away
            .players()
            .map(|(player, seat)| SeatView {
                player,
                status: "away",
                session: Some(seat.session),
                protocol: Some(seat.protocol.number()),
                flow: None,
                acked_tick: None,
                sent_tick: None,
                queued_bytes: None,
            })
            .collect();
        away.sort_by_key(|seat| seat.player);
        let mut reserved: Vec<SeatView> = self
            .reservations
            .keys()
            .map(|player| SeatView {
                player: *player,
                status: "reserved",
                session: None,
                protocol: None,
                flow: None,
                acked_tick: None,
                sent_tick: None,
                queued_bytes: None,
            })
            .collect();
        reserved.sort_by_key(|seat| seat.player);
        connected.extend(away);
        connected.extend(reserved);
        connected
    }
}

/// The snapshot as JSON when it is at most [`MAX_INSPECTED_STATE_BYTES`]; otherwise why not.
pub fn state_json(snapshot: &Snapshot) -> Result<serde_json::Value, String> {
    let text = serde_json::to_string(snapshot)
        .map_err(|error| format!("the state is not expressible as JSON: {error}"))?;
    if text.len() > MAX_INSPECTED_STATE_BYTES {
        return Err(format!(
            "the state is {} bytes of JSON, more than the {MAX_INSPECTED_STATE_BYTES} shown",
            text.len()
        ));
    }
    serde_json::from_str(&text).map_err(|error| error.to_string())
}

impl Handler<InspectRoom> for Room {
    type Result = MessageResult<InspectRoom>;

    fn handle(&mut self, _message: InspectRoom, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(RoomInspection {
            room_type: self.settings.room_type.clone(),
            tick_hz: self.settings.tick_hz,
            tick: self.simulation.tick(),
            epoch: self.simulation.epoch(),
            ticks: self.tick_window.summary(),
            seats: self.seats(),
            snapshot: self.simulation.snapshot(),
        })
    }
}

impl Handler<KickPlayer> for Room {
    type Result = Result<(), NotInRoom>;

    fn handle(&mut self, message: KickPlayer, ctx: &mut Self::Context) -> Self::Result {
        let player = message.player;
        if self.members.contains_key(&player) {
            // A kick never keeps the seat ([`crate::resume::keeps_seat`]): the player leaves.
            self.end_member(player, Some(Ending::Server(CloseCode::Kicked, None)), ctx);
        } else if self.away.remove(player).is_some() {
            self.leave_game(player, ctx);
        } else if self.reservations.remove(&player).is_some() {
            self.publish_listing();
        } else {
            return Err(NotInRoom(player));
        }
        self.metrics.players_kicked.inc();
        tracing::info!(room_id = %self.settings.room_id, %player, "player kicked");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ludus_protocol::{Entity, EntityId, Value};
    use std::collections::BTreeMap;

    fn snapshot_with(text: &str) -> Snapshot {
        Snapshot {
            epoch: 1,
            tick: 7,
            entities: vec![Entity {
                id: EntityId(1),
                kind: "player".to_owned(),
                fields: BTreeMap::from([("name".to_owned(), Value::from(text))]),
            }],
            acks: Vec::new(),
        }
    }

    #[test]
    fn a_small_state_is_shown_as_json() {
        let state = state_json(&snapshot_with("ann")).expect("small state");
        assert_eq!(state["tick"], 7);
        assert_eq!(state["entities"][0]["fields"]["name"], "ann");
    }

    #[test]
    fn a_state_over_the_bound_is_left_out_with_its_size() {
        let big = "x".repeat(MAX_INSPECTED_STATE_BYTES);
        let why = state_json(&snapshot_with(&big)).expect_err("too large");
        assert!(why.contains("more than the 65536 shown"), "{why}");
    }
}
