//! When a room's ticks fall: on a grid shared by every room of the same tick rate.
//!
//! Why: a room thread that ticks each room on its own phase wakes once per room per tick, and
//! every wake-up costs a context switch in and out; worse, the room's frames reach the clients
//! spread over the whole tick, so each write finds a client process asleep and pays for waking
//! it. Rooms whose ticks fall on the same instants (multiples of the interval on the wall
//! clock) are stepped by their thread in one sweep: one wake-up per tick for all of them, and
//! one burst of writes that the clients take in while awake.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long from `since_epoch` (a wall-clock reading) to the next multiple of `interval`; a
/// whole `interval` when the reading falls on one (the first tick is never at once), and
/// `interval` itself when it is zero (no grid to align to).
pub fn until_next_tick(since_epoch: Duration, interval: Duration) -> Duration {
    let interval_ns = interval.as_nanos();
    if interval_ns == 0 {
        return interval;
    }
    let into = since_epoch.as_nanos() % interval_ns;
    // `interval_ns - into` is at most `interval_ns`, which came from a `Duration`.
    Duration::from_nanos(u64::try_from(interval_ns - into).unwrap_or(u64::MAX))
}

/// How long from now to the room's first tick on the grid of `interval`.
pub fn first_tick_in(interval: Duration) -> Duration {
    // A clock set before 1970 gives no grid: the room then ticks on its own phase.
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    until_next_tick(since_epoch, interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(50);

    #[test]
    fn the_first_tick_falls_on_the_next_multiple_of_the_interval() {
        let now = Duration::from_millis(1_000_012);
        assert_eq!(until_next_tick(now, TICK), Duration::from_millis(38));
        // Rooms created at different moments of one interval tick together.
        let later = Duration::from_millis(1_000_049);
        assert_eq!(
            now + until_next_tick(now, TICK),
            later + until_next_tick(later, TICK)
        );
    }

    #[test]
    fn a_reading_on_the_grid_waits_a_whole_interval_and_odd_rates_divide_exactly() {
        assert_eq!(until_next_tick(Duration::from_secs(7), TICK), TICK);
        let thirty_hz = Duration::from_secs(1) / 30;
        let now = Duration::from_nanos(123_456_789_012);
        let first = now + until_next_tick(now, thirty_hz);
        assert_eq!(first.as_nanos() % thirty_hz.as_nanos(), 0);
        assert!(first > now && first - now <= thirty_hz);
    }

    #[test]
    fn a_zero_interval_has_no_grid() {
        assert_eq!(
            until_next_tick(Duration::from_secs(3), Duration::ZERO),
            Duration::ZERO
        );
    }
}
