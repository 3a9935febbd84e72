//! A bot's mirror of its room in either protocol version, and the decoding that feeds it.
//!
//! Version 1 frames decode to [`ServerMessage`]s; version 2 frames to compact snapshots and
//! packed deltas, which a [`CompactRoomState`] decodes against the state. Both end as the same
//! [`RoomState`] and the same [`AppliedDelta`] (acks absolute), so the session's gap, ack and
//! latency logic does not care which version it speaks.

use ludus_protocol::v2::{self, AppliedDelta, CompactMessage, CompactRoomState, DeltaBody};
use ludus_protocol::{
    codec, ApplyError, CompactError, DecodeError, Delta, ProtocolVersion, RoomState,
};

/// The room as mirrored in the session's protocol version.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Mirror {
    /// Version 1: field maps applied as they come.
    Named(RoomState),
    /// Version 2: the state plus the schema that decodes packed deltas.
    Compact(CompactRoomState),
}

impl Mirror {
    /// The mirrored state.
    pub(crate) fn state(&self) -> &RoomState {
        match self {
            Self::Named(state) => state,
            Self::Compact(compact) => compact.state(),
        }
    }

    /// The last tick applied.
    pub(crate) fn tick(&self) -> u64 {
        match self {
            Self::Named(state) => state.tick(),
            Self::Compact(compact) => compact.tick(),
        }
    }

    /// The room epoch of the state.
    pub(crate) fn epoch(&self) -> u64 {
        match self {
            Self::Named(state) => state.epoch(),
            Self::Compact(compact) => compact.epoch(),
        }
    }

    /// Applies a delta of the same version; returns its ticks and acks (absolute), or why it
    /// does not apply (the state is then unchanged).
    pub(crate) fn apply(&mut self, delta: IncomingDelta) -> Result<AppliedDelta, FrameError> {
        match (self, delta) {
            (Self::Named(state), IncomingDelta::Named(delta)) => {
                state.apply(&delta)?;
                Ok(delta.into())
            }
            (Self::Compact(state), IncomingDelta::Compact(body)) => Ok(state.apply_delta(&body)?),
            _ => Err(FrameError::VersionMismatch),
        }
    }
}

/// Why a frame was not used; logged, counted, and healed by a resync.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// A version 1 frame that does not decode.
    #[error(transparent)]
    Named(#[from] DecodeError),
    /// A version 2 frame that does not decode or apply.
    #[error(transparent)]
    Compact(#[from] CompactError),
    /// A version 1 delta that does not apply.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Cannot happen with a server that keeps to one version per connection.
    #[error("a delta of one protocol version for a snapshot of the other")]
    VersionMismatch,
}

/// A delta as received, in either version.
pub(crate) enum IncomingDelta {
    /// Version 1: the delta itself.
    Named(Delta),
    /// Version 2: the packed body, decoded against the state.
    Compact(DeltaBody),
}

/// Splits a frame into messages of `protocol`.
pub(crate) fn decode(
    protocol: ProtocolVersion,
    frame: &[u8],
) -> Result<Vec<CompactMessage>, FrameError> {
    Ok(match protocol {
        ProtocolVersion::V1 => codec::decode_batch(frame)?
            .into_iter()
            .map(CompactMessage::Other)
            .collect(),
        ProtocolVersion::V2 => v2::decode_frame(frame)?,
    })
}
