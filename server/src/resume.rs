//! Session resume as plain data: which endings keep a seat and the seats of disconnected
//! players. The deltas a resuming client catches up from are kept by [`crate::delta_history`].
//!
//! Why: mobile and Wi-Fi players drop all the time, and a one-second drop must not cost a seat,
//! an entity and a place in the game. A connection that ends without `leave` keeps its seat for
//! the room's resume window; a client that comes back within it with its resume token continues
//! where it was: the deltas it missed (when the history still holds them) or a snapshot.
//!
//! The room ([`crate::room`]) carries these decisions out; nothing here touches a socket.

use ludus_protocol::{CloseCode, ErrorCode, ProtocolVersion};
use std::collections::HashMap;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
