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

/// Why a protocol version 2 frame cannot be decoded or applied. Every variant means "ask for a
/// resync" (after a snapshot that itself fails, the connection is unusable).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompactError {
    /// The MessagePack envelope does not have the documented shape.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// The packed bits end early or hold an impossible number.
    #[error("malformed packed data: {0}")]
    Bits(#[from] crate::v2::BitError),
    /// A packed field value is invalid.
    #[error("malformed packed field: {0}")]
    Field(#[from] crate::v2::FieldError),
    /// The snapshot's schema is invalid.
    #[error(transparent)]
    Schema(#[from] crate::v2::SchemaError),
    /// A kind code beyond the schema.
    #[error("kind code {0} is not in the schema")]
    UnknownKind(u64),
    /// The delta does not apply to the state.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}
