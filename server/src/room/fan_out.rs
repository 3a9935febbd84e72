//! The room's fan-out: the tick's frame to every member, encoded once per protocol version in
//! use and written as the same bytes to every member of that version that flow control lets
//! through; a member owed a snapshot gets one instead, with the tick's broadcast events; a
//! member's private messages ride in its own copy of the frame.

use super::Room;
use crate::encoding::{self, PerVersion};
use crate::member::{FrameKind, Offered};
use actix::Context;
use bytes::Bytes;
use ludus_protocol::v2::Roster;
use ludus_protocol::{codec, Event, PlayerId, ServerMessage};
use std::collections::HashMap;
use std::time::Instant;

impl Room {
    /// Sends the tick's `delta` (with its `roster` change and each player's `extras`) to every
    /// member; returns the bytes written.
    pub(super) fn fan_out(
        &mut self,
        delta: ludus_protocol::Delta,
        roster: &Roster,
        extras: &HashMap<PlayerId, Vec<Vec<u8>>>,
        ctx: &mut Context<Self>,
    ) -> u64 {
        let tick = delta.tick;
        let base_tick = delta.base_tick;
        // A member owed a snapshot gets it instead of the delta; the tick's broadcast events
        // ride along as `event` messages so that member does not lose them.
        let snapshot_events = if self.members.values().any(|member| member.needs_snapshot) {
            delta.events.clone()
        } else {
            Vec::new()
        };
        // Each tick is encoded once per protocol version in use, on first need.
        let delta_frames = PerVersion::default();
        let snapshot_parts: PerVersion<Vec<Vec<u8>>> = PerVersion::default();
        // Frames and bytes written this tick, counted once per tick.
        let mut sent = (0_u64, 0_u64);
        let mut skipped = 0;
        let mut closing = Vec::new();
        let now = Instant::now();
        for (player, member) in &mut self.members {
            if member.is_backed_up() && member.flush() == Offered::Gone {
                closing.push((*player, None));
                continue;
            }
            let player_extras = extras.get(player);
            let (kind, bytes) = if member.needs_snapshot {
                let main_parts = snapshot_parts.get_or_init(member.protocol, || {
                    let snapshot = encoding::snapshot_part(&self.simulation, member.protocol);
                    std::iter::once(snapshot)
                        .chain(snapshot_events.iter().map(|payload| {
                            codec::encode_server(&ServerMessage::Event(Event {
                                payload: payload.clone(),
                            }))
                        }))
                        .collect()
                });
                let parts: Vec<&[u8]> = main_parts
                    .iter()
                    .chain(player_extras.into_iter().flatten())
                    .map(Vec::as_slice)
                    .collect();
                (
                    FrameKind::Snapshot { tick },
                    Bytes::from(codec::batch_frame(&parts)),
                )
            } else {
                let delta_frame = delta_frames.get_or_init(member.protocol, || {
                    encoding::delta_frame(&self.simulation, &delta, roster, member.protocol)
                });
                let bytes = match player_extras {
                    None => delta_frame.shared.clone(),
                    Some(player_extras) => {
                        let part = delta_frame.part();
                        let parts: Vec<&[u8]> = std::iter::once(&part[..])
                            .chain(player_extras.iter().map(Vec::as_slice))
                            .collect();
                        Bytes::from(codec::batch_frame(&parts))
                    }
                };
                (FrameKind::Delta { tick, base_tick }, bytes)
            };
            let offered = member.offer(kind, &bytes, now);
            match offered.ending() {
                None if offered == Offered::Sent => {
                    sent.0 += 1;
                    sent.1 += bytes.len() as u64;
                }
                None => skipped += 1,
                Some(ending) => closing.push((*player, ending)),
            }
        }
        self.remember(tick, &delta, roster, &delta_frames);
        self.metrics.messages_sent.inc_by(sent.0);
        self.metrics.bytes_sent.inc_by(sent.1);
        if skipped > 0 {
            self.metrics.deltas_skipped.inc_by(skipped);
        }
        for (player, ending) in closing {
            self.end_member(player, ending, ctx);
        }
        sent.1
    }
}
