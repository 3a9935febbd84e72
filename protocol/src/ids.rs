//! Identifier newtypes, so a player id can never be passed where an entity id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A room's id: 1 to 64 characters from `[A-Za-z0-9_-]`, chosen by the lobby or by the
/// creator. The charset keeps ids safe in URLs, NATS subjects and log lines without escaping.
///
/// ```
/// use ludus_protocol::RoomId;
/// assert!(RoomId::parse("arena-7").is_ok());
/// assert!(RoomId::parse("no spaces").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomId(String);

/// The longest room id accepted, in bytes.
pub const MAX_ROOM_ID_LEN: usize = 64;

/// Why a string is not a valid [`RoomId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("room id `{id}` is invalid: use 1 to 64 characters from A-Z, a-z, 0-9, `_` and `-`")]
pub struct InvalidRoomId {
    /// The rejected input (truncated to 80 characters so logs stay readable).
    pub id: String,
}

impl RoomId {
    /// Checks `id` against the room id rules.
    pub fn parse(id: &str) -> Result<Self, InvalidRoomId> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if id.is_empty() || id.len() > MAX_ROOM_ID_LEN || !id.chars().all(valid_char) {
            return Err(InvalidRoomId {
                id: id.chars().take(80).collect(),
            });
        }
        Ok(Self(id.to_owned()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RoomId {
    type Error = InvalidRoomId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RoomId> for String {
    fn from(value: RoomId) -> Self {
        value.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A player's id, assigned by the lobby when it reserves a seat and carried in the seat token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlayerId(pub u64);

impl fmt::Display for PlayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// An entity's id, unique within one room epoch. Ids are never reused within an epoch, so a
/// client never confuses a new entity with a removed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntityId(pub u32);

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.0)
    }
}
