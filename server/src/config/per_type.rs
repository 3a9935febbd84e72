//! Durations a room type may set apart from the `[rooms]` default (resume window, checkpoint
//! interval): one lookup rule, whatever the setting.

use super::RoomTypeSection;
use std::collections::BTreeMap;
use std::time::Duration;

/// A duration with per-room-type overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PerRoomType {
    default: Duration,
    overrides: BTreeMap<String, Duration>,
}

impl PerRoomType {
    /// `default_ms` for every room type, except those whose section sets `field`.
    pub fn from_config(
        default_ms: u64,
        room_types: &BTreeMap<String, RoomTypeSection>,
        field: impl Fn(&RoomTypeSection) -> Option<u64>,
    ) -> Self {
        let overrides = room_types
            .iter()
            .filter_map(|(name, section)| {
                Some((name.clone(), Duration::from_millis(field(section)?)))
            })
            .collect();
        Self {
            default: Duration::from_millis(default_ms),
            overrides,
        }
    }

    /// The same duration for every room type.
    pub fn uniform(duration: Duration) -> Self {
        Self {
            default: duration,
            overrides: BTreeMap::new(),
        }
    }

    /// The duration for `room_type`.
    pub fn get(&self, room_type: &str) -> Duration {
        self.overrides
            .get(room_type)
            .copied()
            .unwrap_or(self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_type_override_wins_over_the_default() {
        let room_types = BTreeMap::from([
            (
                "arena".to_owned(),
                RoomTypeSection {
                    resume_window_ms: Some(5_000),
                    ..RoomTypeSection::default()
                },
            ),
            ("tictactoe".to_owned(), RoomTypeSection::default()),
        ]);
        let windows =
            PerRoomType::from_config(30_000, &room_types, |section| section.resume_window_ms);
        assert_eq!(windows.get("arena"), Duration::from_secs(5));
        assert_eq!(windows.get("tictactoe"), Duration::from_secs(30));
        assert_eq!(windows.get("other"), Duration::from_secs(30));
    }
}
