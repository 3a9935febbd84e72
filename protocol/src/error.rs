//! Errors of the protocol crate.

use crate::ids::EntityId;

/// A frame that is not a valid message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not MessagePack, or not a message of the expected shape.
    #[error("malformed message: {0}")]
    Malformed(#[from] rmp_serde::decode::Error),
    /// A valid message followed by extra bytes.
    #[error("malformed message: {0} unexpected trailing bytes")]
    TrailingBytes(usize),
}

/// Why a delta cannot be applied to a client's state. Every variant means "ask for a resync".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The delta belongs to another incarnation of the room.
    #[error("delta of epoch {delta} does not apply to state of epoch {state}")]
    EpochMismatch {
        /// The state's epoch.
        state: u64,
        /// The delta's epoch.
        delta: u64,
    },
    /// Ticks between the state and the delta are missing.
    #[error("gap: state is at tick {state_tick} but delta is based on tick {base_tick}")]
    Gap {
        /// The state's tick.
        state_tick: u64,
        /// The delta's base tick.
        base_tick: u64,
    },
    /// The delta changes fields of an entity the state does not have.
    #[error("delta updates unknown entity {0}")]
    UnknownEntity(EntityId),
}
