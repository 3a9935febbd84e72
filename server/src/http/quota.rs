//! Limits on what one caller may make the lobby hold: seat reservations and rooms.
//!
//! Why: a seat reservation locks a seat for `rooms.seat_reservation_ms` and a room lives for at
//! least `rooms.empty_grace_ms`, so without limits a handful of requests can fill a room, and a
//! script can fill the node (finding: 2 requests locked a tictactoe room for 15 s; 320
//! matchmakes in 0.4 s made a 20-room server refuse everyone; one client created 9,997 rooms in
//! 9 s). Limits are token buckets (`governor`, GCRA) per client address in every mode, and per
//! player (the token's `sub`) in `jwt` mode, plus a cap on the reservations one player holds at
//! once. A refused request gets 429 with `retry_after`.

use super::error::ApiError;
use super::identity::Identity;
use crate::config::LobbySection;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every this many checks, limiter state of keys that are back to a full bucket is dropped, so
/// memory follows the callers of the last minutes rather than every caller ever seen.
const PRUNE_EVERY: u64 = 4_096;

/// A keyed token bucket: `per_minute` sustained, `burst` at once.
struct Bucket<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    checks: AtomicU64,
}

fn non_zero(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN)
}

impl<K: Hash + Eq + Clone> Bucket<K> {
    fn new(per_minute: u32, burst: u32) -> Self {
        let quota = Quota::per_minute(non_zero(per_minute)).allow_burst(non_zero(burst));
        Self {
            limiter: RateLimiter::dashmap(quota),
            checks: AtomicU64::new(0),
        }
    }

    /// `Ok`, or how long until the key has a token again.
    fn check(&self, key: &K) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Seat reservations a player holds: each counts until it expires, used or not.
#[derive(Debug, Default)]
pub struct OutstandingSeats {
    expiries: HashMap<String, Vec<Instant>>,
}

impl OutstandingSeats {
    /// Whether `subject` may take one more of at most `max` seats at `now`; if not, how long
    /// until its oldest reservation expires.
    pub fn admit(&mut self, subject: &str, max: usize, now: Instant) -> Result<(), Duration> {
        let Some(held) = self.expiries.get_mut(subject) else {
            return Ok(());
        };
        held.retain(|expiry| *expiry > now);
        if held.is_empty() {
            self.expiries.remove(subject);
            return Ok(());
        }
        if held.len() < max {
            return Ok(());
        }
        let soonest = held.iter().min().copied().unwrap_or(now);
        Err(soonest.saturating_duration_since(now))
    }

    /// Records a reservation of `subject` that expires at `expiry`.
    pub fn record(&mut self, subject: &str, expiry: Instant) {
        self.expiries
            .entry(subject.to_owned())
            .or_default()
            .push(expiry);
    }

    /// Forgets players whose reservations have all expired.
    pub fn prune(&mut self, now: Instant) {
        self.expiries.retain(|_, held| {
            held.retain(|expiry| *expiry > now);
            !held.is_empty()
        });
    }

    /// Players with reservations on record.
    pub fn len(&self) -> usize {
        self.expiries.len()
    }

    /// Whether no player has a reservation on record.
    pub fn is_empty(&self) -> bool {
        self.expiries.is_empty()
    }
}

/// The lobby's limits, shared by every HTTP worker.
pub struct LobbyQuotas {
    seats_by_subject: Bucket<String>,
    seats_by_ip: Bucket<IpAddr>,
    rooms_by_subject: Bucket<String>,
    rooms_by_ip: Bucket<IpAddr>,
    outstanding: Mutex<OutstandingSeats>,
    max_outstanding: usize,
    seat_ttl: Duration,
}

impl std::fmt::Debug for LobbyQuotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LobbyQuotas")
            .field("max_outstanding", &self.max_outstanding)
            .finish_non_exhaustive()
    }
}

fn refused(code: &'static str, what: &str, wait: Duration) -> ApiError {
    ApiError::too_many(
        code,
        format!("too many {what}; retry after the given time"),
        wait,
    )
}

impl LobbyQuotas {
    /// The limits of `lobby`; reservations live `seat_ttl`.
    pub fn new(lobby: &LobbySection, seat_ttl: Duration) -> Self {
        let ip_burst = |per_minute: u32| (per_minute / 10).max(1);
        Self {
            seats_by_subject: Bucket::new(lobby.seats_per_minute, lobby.seats_burst),
            seats_by_ip: Bucket::new(
                lobby.seats_per_minute_per_ip,
                ip_burst(lobby.seats_per_minute_per_ip),
            ),
            rooms_by_subject: Bucket::new(lobby.rooms_per_minute, lobby.rooms_burst),
            rooms_by_ip: Bucket::new(
                lobby.rooms_per_minute_per_ip,
                ip_burst(lobby.rooms_per_minute_per_ip),
            ),
            outstanding: Mutex::new(OutstandingSeats::default()),
            max_outstanding: usize::try_from(lobby.max_outstanding_seats).unwrap_or(usize::MAX),
            seat_ttl,
        }
    }

    /// Admits one seat request of `identity`, or answers 429 `rate_limited` /
    /// `too_many_reservations`. Call [`Self::seat_granted`] once the seat is reserved.
    pub fn admit_seat(&self, identity: &Identity) -> Result<(), ApiError> {
        if let Some(subject) = &identity.subject {
            let now = Instant::now();
            let mut outstanding = self.lock_outstanding();
            outstanding
                .admit(subject, self.max_outstanding, now)
                .map_err(|wait| {
                    refused(
                        "too_many_reservations",
                        "seat reservations held at once",
                        wait,
                    )
                })?;
            drop(outstanding);
            self.seats_by_subject
                .check(subject)
                .map_err(|wait| refused("rate_limited", "seat requests from this player", wait))?;
        }
        self.seats_by_ip
            .check(&identity.ip)
            .map_err(|wait| refused("rate_limited", "seat requests from this address", wait))
    }

    /// Records a seat reserved for `identity`, counting toward its outstanding cap.
    pub fn seat_granted(&self, identity: &Identity) {
        if let Some(subject) = &identity.subject {
            let now = Instant::now();
            let mut outstanding = self.lock_outstanding();
            outstanding.record(subject, now + self.seat_ttl);
            if outstanding.len() > 1_024 {
                outstanding.prune(now);
            }
        }
    }

    /// Admits one room creation of `identity`, or answers 429 `rate_limited`.
    pub fn admit_room(&self, identity: &Identity) -> Result<(), ApiError> {
        if let Some(subject) = &identity.subject {
            self.rooms_by_subject
                .check(subject)
                .map_err(|wait| refused("rate_limited", "rooms created by this player", wait))?;
        }
        self.rooms_by_ip
            .check(&identity.ip)
            .map_err(|wait| refused("rate_limited", "rooms created from this address", wait))
    }

    fn lock_outstanding(&self) -> std::sync::MutexGuard<'_, OutstandingSeats> {
        // A panic while holding this lock leaves only counters behind: keep using them.
        self.outstanding
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outstanding_seats_count_until_they_expire() {
        let start = Instant::now();
        let ttl = Duration::from_secs(15);
        let mut seats = OutstandingSeats::default();
        for offset in 0..3 {
            assert_eq!(seats.admit("ann", 3, start), Ok(()));
            seats.record("ann", start + ttl + Duration::from_secs(offset));
        }
        assert_eq!(seats.admit("ann", 3, start), Err(ttl));
        assert_eq!(
            seats.admit("bob", 3, start),
            Ok(()),
            "other players are not affected"
        );
        let after_first = start + ttl + Duration::from_millis(1);
        assert_eq!(seats.admit("ann", 3, after_first), Ok(()));
        seats.prune(start + ttl * 2);
        assert!(seats.is_empty());
    }

    fn identity(subject: Option<&str>, last_octet: u8) -> Identity {
        Identity {
            ip: IpAddr::from([127, 0, 0, last_octet]),
            player: None,
            subject: subject.map(str::to_owned),
        }
    }

    #[test]
    fn the_burst_then_429_with_a_wait_per_player_and_per_address() {
        let lobby = LobbySection {
            seats_per_minute: 60,
            seats_burst: 2,
            seats_per_minute_per_ip: 30,
            max_outstanding_seats: 100,
            ..LobbySection::default()
        };
        let quotas = LobbyQuotas::new(&lobby, Duration::from_secs(15));
        let ann = identity(Some("ann"), 1);
        assert!(quotas.admit_seat(&ann).is_ok());
        assert!(quotas.admit_seat(&ann).is_ok());
        let refused = quotas.admit_seat(&ann).expect_err("burst of 2 used");
        assert_eq!(refused.code(), "rate_limited");
        // Same address, other player: the address bucket (burst 3) still has one token.
        assert!(quotas.admit_seat(&identity(Some("bob"), 1)).is_ok());
        assert!(quotas.admit_seat(&identity(Some("cid"), 1)).is_err());
        assert!(quotas.admit_seat(&identity(Some("cid"), 2)).is_ok());
    }

    #[test]
    fn a_player_holding_the_maximum_of_seats_waits() {
        let lobby = LobbySection {
            max_outstanding_seats: 1,
            ..LobbySection::default()
        };
        let quotas = LobbyQuotas::new(&lobby, Duration::from_secs(15));
        let ann = identity(Some("ann"), 1);
        assert!(quotas.admit_seat(&ann).is_ok());
        quotas.seat_granted(&ann);
        let refused = quotas.admit_seat(&ann).expect_err("holds one");
        assert_eq!(refused.code(), "too_many_reservations");
    }
}
