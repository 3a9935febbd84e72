//! Session resume as plain data: which endings keep a seat, the seats of disconnected players,
//! and the bounded history of encoded deltas a resuming client catches up from.
//!
//! Why: mobile and Wi-Fi players drop all the time, and a one-second drop must not cost a seat,
//! an entity and a place in the game. A connection that ends without `leave` keeps its seat for
//! the room's resume window; a client that comes back within it with its resume token continues
//! where it was: the deltas it missed (when the history still holds them) or a snapshot.
//!
//! The room ([`crate::room`]) carries these decisions out; nothing here touches a socket.

use bytes::Bytes;
use ludus_protocol::{CloseCode, ErrorCode, ProtocolVersion};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::session::closing::Ending;
use ludus_protocol::PlayerId;

/// Whether a connection that ended this way keeps its seat for the resume window.
///
/// Network trouble keeps it: a reset or end of stream (`None`), a client close without `leave`,
/// the idle and slow-client timeouts. A `leave`, a protocol violation, a rate-limit kick or an
/// oversized message does not: the player left, or the client is broken.
pub fn keeps_seat(ending: Option<&Ending>) -> bool {
    match ending {
        None | Some(Ending::Client(_)) => true,
        Some(Ending::Server(close, _)) => {
            matches!(close, CloseCode::IdleTimeout | CloseCode::TooSlow)
        }
    }
}

/// A seat whose player is disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Away {
    /// The session that held the seat last: only its resume token may take it back.
    pub session: u64,
    /// The protocol version that session spoke (the history keeps deltas in it).
    pub protocol: ProtocolVersion,
    /// When the connection ended.
    pub since: Instant,
}

/// Why a resume was refused; each has an error code, and the close is 4014.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResumeRefused {
    /// No seat is held for the player any more: its resume window passed (or it left).
    #[error("the resume window passed; the seat is gone")]
    Expired,
    /// A newer session holds the seat: this token was already used.
    #[error("this resume token was already used")]
    Used,
}

impl ResumeRefused {
    /// The error code the client gets before close 4014.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Expired => ErrorCode::ResumeExpired,
            Self::Used => ErrorCode::ResumeUsed,
        }
    }

    /// The label of `ludus_resumes_total` for this refusal.
    pub fn outcome(self) -> &'static str {
        match self {
            Self::Expired => "refused_expired",
            Self::Used => "refused_used",
        }
    }
}

/// Who holds a seat a resume asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatHolder {
    /// A connected member with this session (possibly a half-open connection).
    Connected(u64),
    /// A disconnected player.
    Away(Away),
    /// Nobody: the player left or its window passed.
    Nobody,
}

/// What to do with a resume of `session`: `Ok(true)` takes the seat over from a connection that
/// still looks open (it is closed with 4015), `Ok(false)` takes a disconnected seat.
pub fn admit_resume(holder: SeatHolder, session: u64) -> Result<bool, ResumeRefused> {
    match holder {
        SeatHolder::Connected(current) if current == session => Ok(true),
        SeatHolder::Away(away) if away.session == session => Ok(false),
        SeatHolder::Connected(_) | SeatHolder::Away(_) => Err(ResumeRefused::Used),
        SeatHolder::Nobody => Err(ResumeRefused::Expired),
    }
}

/// The seats of disconnected players.
#[derive(Debug, Default)]
pub struct AwaySeats {
    seats: HashMap<PlayerId, Away>,
}

impl AwaySeats {
    /// Keeps `player`'s seat from `away.since`.
    pub fn insert(&mut self, player: PlayerId, away: Away) {
        self.seats.insert(player, away);
    }

    /// The away seat of `player`, if any.
    pub fn get(&self, player: PlayerId) -> Option<Away> {
        self.seats.get(&player).copied()
    }

    /// Takes `player`'s seat back.
    pub fn remove(&mut self, player: PlayerId) -> Option<Away> {
        self.seats.remove(&player)
    }

    /// Removes and returns the players whose `window` passed at `now`.
    pub fn expire(&mut self, now: Instant, window: Duration) -> Vec<PlayerId> {
        let expired: Vec<PlayerId> = self
            .seats
            .iter()
            .filter(|(_, away)| now.saturating_duration_since(away.since) >= window)
            .map(|(player, _)| *player)
            .collect();
        for player in &expired {
            self.seats.remove(player);
        }
        expired
    }

    /// How many seats are held.
    pub fn len(&self) -> usize {
        self.seats.len()
    }

    /// Whether no seat is held.
    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
    }

    /// Every held seat.
    pub fn players(&self) -> impl Iterator<Item = (PlayerId, Away)> + '_ {
        self.seats.iter().map(|(player, away)| (*player, *away))
    }

    /// The protocol versions the history must keep deltas in for these players.
    pub fn versions(&self) -> impl Iterator<Item = ProtocolVersion> + '_ {
        self.seats.values().map(|away| away.protocol)
    }
}

/// One tick's delta, encoded in the versions some member or away player speaks.
#[derive(Debug, Clone)]
struct Entry {
    tick: u64,
    v1: Option<Bytes>,
    v2: Option<Bytes>,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.v1.as_ref().map_or(0, Bytes::len) + self.v2.as_ref().map_or(0, Bytes::len)
    }

    fn part(&self, version: ProtocolVersion) -> Option<&Bytes> {
        match version {
            ProtocolVersion::V1 => self.v1.as_ref(),
            ProtocolVersion::V2 => self.v2.as_ref(),
        }
    }
}

/// The last ticks' encoded deltas, bounded in bytes: the oldest go first.
#[derive(Debug)]
pub struct DeltaHistory {
    entries: VecDeque<Entry>,
    bytes: usize,
    max_bytes: usize,
    max_ticks: usize,
}

impl DeltaHistory {
    /// A history of at most `max_bytes` of encoded deltas (0 keeps none) and `max_ticks`
    /// ticks (a client away longer than the resume window cannot resume anyway).
    pub fn new(max_bytes: usize, max_ticks: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            max_bytes,
            max_ticks,
        }
    }

    /// Records the delta that brought the room to `tick` (from `tick - 1`). A gap in the ticks
    /// (never expected) clears the history, so a catch-up is always contiguous.
    pub fn push(&mut self, tick: u64, v1: Option<Bytes>, v2: Option<Bytes>) {
        if self
            .entries
            .back()
            .is_some_and(|last| last.tick + 1 != tick)
        {
            self.clear();
        }
        let entry = Entry { tick, v1, v2 };
        self.bytes += entry.bytes();
        self.entries.push_back(entry);
        while self.bytes > self.max_bytes || self.entries.len() > self.max_ticks {
            let Some(oldest) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= oldest.bytes();
        }
    }

    /// The deltas from `last_tick` to the newest tick, in `version`, when the history holds
    /// every one of them; an empty list when `last_tick` is the newest tick.
    pub fn since(&self, last_tick: u64, version: ProtocolVersion) -> Option<Vec<Bytes>> {
        let newest = self.entries.back()?.tick;
        if last_tick >= newest {
            return (last_tick == newest).then(Vec::new);
        }
        let oldest = self.entries.front()?.tick;
        // The entry for tick t applies to t - 1: the first needed is last_tick + 1.
        if last_tick + 1 < oldest {
            return None;
        }
        let skip = usize::try_from(last_tick + 1 - oldest).ok()?;
        self.entries
            .iter()
            .skip(skip)
            .map(|entry| entry.part(version).cloned())
            .collect()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn part(tick: u64) -> Option<Bytes> {
        Some(Bytes::from(tick.to_be_bytes().to_vec()))
    }

    #[test]
    fn network_trouble_keeps_the_seat_and_leaving_or_misbehaving_does_not() {
        assert!(keeps_seat(None));
        assert!(keeps_seat(Some(&Ending::Client(None))));
        assert!(keeps_seat(Some(&Ending::Server(
            CloseCode::IdleTimeout,
            None
        ))));
        assert!(keeps_seat(Some(&Ending::Server(CloseCode::TooSlow, None))));
        assert!(!keeps_seat(Some(&Ending::Server(CloseCode::Normal, None))));
        assert!(!keeps_seat(Some(&Ending::Server(
            CloseCode::ProtocolError,
            None
        ))));
        assert!(!keeps_seat(Some(&Ending::Server(
            CloseCode::RateLimited,
            None
        ))));
    }

    #[test]
    fn only_the_latest_session_resumes() {
        let away = Away {
            session: 7,
            protocol: ProtocolVersion::V2,
            since: Instant::now(),
        };
        assert_eq!(admit_resume(SeatHolder::Away(away), 7), Ok(false));
        assert_eq!(admit_resume(SeatHolder::Connected(7), 7), Ok(true));
        assert_eq!(
            admit_resume(SeatHolder::Away(away), 6),
            Err(ResumeRefused::Used)
        );
        assert_eq!(
            admit_resume(SeatHolder::Connected(8), 7),
            Err(ResumeRefused::Used)
        );
        assert_eq!(
            admit_resume(SeatHolder::Nobody, 7),
            Err(ResumeRefused::Expired)
        );
    }

    #[test]
    fn away_seats_expire_after_the_window() {
        let start = Instant::now();
        let mut seats = AwaySeats::default();
        let away = |since| Away {
            session: 1,
            protocol: ProtocolVersion::V1,
            since,
        };
        seats.insert(PlayerId(1), away(start));
        seats.insert(PlayerId(2), away(start + Duration::from_secs(10)));
        let window = Duration::from_secs(30);
        assert!(seats
            .expire(start + Duration::from_secs(29), window)
            .is_empty());
        assert_eq!(
            seats.expire(start + Duration::from_secs(30), window),
            vec![PlayerId(1)]
        );
        assert_eq!(seats.len(), 1);
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
