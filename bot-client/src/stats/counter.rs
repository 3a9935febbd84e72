//! What a bot counts, one named counter each; the names are keys of the JSON report.

use crate::reconnect::ResumeRefusal;

/// Everything a bot counts. The wire name ([`Counter::name`]) is the key in the JSON report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Join attempts (lobby request + WebSocket + hello).
    JoinAttempts,
    /// Joins that ended in `welcome`.
    Joined,
    /// Joins that failed anywhere before `welcome`.
    FailedJoins,
    /// WebSocket frames received.
    Frames,
    /// Server messages received (a frame is a batch of them).
    Messages,
    /// Bytes of frame payload received.
    Bytes,
    /// Snapshots received.
    Snapshots,
    /// Deltas received.
    Deltas,
    /// Deltas applied to the bot's state.
    DeltasApplied,
    /// Deltas dropped while waiting for a requested snapshot.
    DeltasDiscarded,
    /// Frames that were not a valid batch (or were text frames).
    DecodeErrors,
    /// Deltas that did not apply (tick gap or epoch mismatch).
    Gaps,
    /// Snapshots that replaced existing state: requested after a gap, or sent unasked.
    Resyncs,
    /// Applied deltas whose tick did not advance past their base tick, or snapshots that went
    /// back in time within one epoch. Must stay zero.
    TickRegressions,
    /// `error` messages from the server.
    ServerErrors,
    /// Inputs sent.
    InputsSent,
    /// Inputs whose acknowledgement was seen (each one gives a latency sample).
    InputsAcked,
    /// Inputs forgotten unacknowledged because too many were in flight.
    InputsUnacked,
    /// `ack` messages sent.
    AcksSent,
    /// Connections dropped by the bot on purpose to test resume (`soak --drop-fraction`,
    /// `storm`).
    DropsInjected,
    /// `hello`s sent with `resume` (each reconnect attempt, redirects included).
    ResumeAttempts,
    /// Resumes answered with the missed deltas.
    ResumedByDelta,
    /// Resumes answered with a snapshot.
    ResumedBySnapshot,
    /// Resumes refused with `resume_expired`.
    ResumeRefusedExpired,
    /// Resumes refused with `resume_invalid`.
    ResumeRefusedInvalid,
    /// Resumes refused with `resume_wrong_room`.
    ResumeRefusedWrongRoom,
    /// Resumes refused with `resume_epoch_changed`.
    ResumeRefusedEpochChanged,
    /// Resumes refused with `resume_used`.
    ResumeRefusedUsed,
    /// Of the resumes by snapshot, those into a room restored on another node after its node
    /// failed (the welcome's `ticks_lost`).
    ResumedRestored,
    /// Drops after which every reconnect attempt failed within the backoff's bounds.
    ResumeGaveUp,
    /// Drops of a session whose `welcome` carried no resume token (resume disabled).
    ResumeUnavailable,
    /// Resumes whose answer did not continue the mirror: another epoch, a first delta not based
    /// on the tick resumed from, a delta that did not apply, a snapshot back in time. Must be 0.
    ResumeMismatches,
    /// Inputs in flight when the connection dropped, forgotten: they may or may not have been
    /// applied (the acks after the resume tell the server's side). Not an error.
    InputsUnconfirmedAtDrop,
    /// States applied out of order: a tick that did not advance within an epoch, or an epoch
    /// older than one seen before (see `crate::invariants::TickOrder`). Must be 0.
    OrderViolations,
    /// Closes 4017 `room_moving` (a drain moved the room): the bot resumed on the new node.
    RoomMovingCloses,
    /// Closes 4013 `room_moved` (the node fenced itself): the bot tried to resume elsewhere.
    RoomMovedCloses,
    /// Ticks lost (the resumed welcome's `ticks_lost`) over resumes after a 4017 `room_moving`:
    /// a drain hands the room over with its exact state, so this must stay 0.
    TicksLostOnMove,
    /// Ticks lost over resumes into a room restored from its checkpoint after its node failed
    /// (÷ `resumed_restored` = ticks lost per restored resume; at most a checkpoint interval).
    TicksLostOnRestore,
}

impl Counter {
    /// Every counter, in report order.
    pub const ALL: [Counter; 38] = [
        Self::JoinAttempts,
        Self::Joined,
        Self::FailedJoins,
        Self::Frames,
        Self::Messages,
        Self::Bytes,
        Self::Snapshots,
        Self::Deltas,
        Self::DeltasApplied,
        Self::DeltasDiscarded,
        Self::DecodeErrors,
        Self::Gaps,
        Self::Resyncs,
        Self::TickRegressions,
        Self::ServerErrors,
        Self::InputsSent,
        Self::InputsAcked,
        Self::InputsUnacked,
        Self::AcksSent,
        Self::DropsInjected,
        Self::ResumeAttempts,
        Self::ResumedByDelta,
        Self::ResumedBySnapshot,
        Self::ResumeRefusedExpired,
        Self::ResumeRefusedInvalid,
        Self::ResumeRefusedWrongRoom,
        Self::ResumeRefusedEpochChanged,
        Self::ResumeRefusedUsed,
        Self::ResumedRestored,
        Self::ResumeGaveUp,
        Self::ResumeUnavailable,
        Self::ResumeMismatches,
        Self::InputsUnconfirmedAtDrop,
        Self::OrderViolations,
        Self::RoomMovingCloses,
        Self::RoomMovedCloses,
        Self::TicksLostOnMove,
        Self::TicksLostOnRestore,
    ];

    /// The counter's key in the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            Self::JoinAttempts => "join_attempts",
            Self::Joined => "joined",
            Self::FailedJoins => "failed_joins",
            Self::Frames => "frames",
            Self::Messages => "messages",
            Self::Bytes => "bytes",
            Self::Snapshots => "snapshots",
            Self::Deltas => "deltas",
            Self::DeltasApplied => "deltas_applied",
            Self::DeltasDiscarded => "deltas_discarded",
            Self::DecodeErrors => "decode_errors",
            Self::Gaps => "gaps",
            Self::Resyncs => "resyncs",
            Self::TickRegressions => "tick_regressions",
            Self::ServerErrors => "server_errors",
            Self::InputsSent => "inputs_sent",
            Self::InputsAcked => "inputs_acked",
            Self::InputsUnacked => "inputs_unacked",
            Self::AcksSent => "acks_sent",
            Self::DropsInjected => "drops_injected",
            Self::ResumeAttempts => "resume_attempts",
            Self::ResumedByDelta => "resumed_by_delta",
            Self::ResumedBySnapshot => "resumed_by_snapshot",
            Self::ResumeRefusedExpired => "resume_refused_expired",
            Self::ResumeRefusedInvalid => "resume_refused_invalid",
            Self::ResumeRefusedWrongRoom => "resume_refused_wrong_room",
            Self::ResumeRefusedEpochChanged => "resume_refused_epoch_changed",
            Self::ResumeRefusedUsed => "resume_refused_used",
            Self::ResumedRestored => "resumed_restored",
            Self::ResumeGaveUp => "resume_gave_up",
            Self::ResumeUnavailable => "resume_unavailable",
            Self::ResumeMismatches => "resume_mismatches",
            Self::InputsUnconfirmedAtDrop => "inputs_unconfirmed_at_drop",
            Self::OrderViolations => "order_violations",
            Self::RoomMovingCloses => "room_moving_closes",
            Self::RoomMovedCloses => "room_moved_closes",
            Self::TicksLostOnMove => "ticks_lost_on_move",
            Self::TicksLostOnRestore => "ticks_lost_on_restore",
        }
    }

    /// The counter of a refused resume.
    pub fn resume_refused(reason: ResumeRefusal) -> Self {
        match reason {
            ResumeRefusal::Expired => Self::ResumeRefusedExpired,
            ResumeRefusal::Invalid => Self::ResumeRefusedInvalid,
            ResumeRefusal::WrongRoom => Self::ResumeRefusedWrongRoom,
            ResumeRefusal::EpochChanged => Self::ResumeRefusedEpochChanged,
            ResumeRefusal::Used => Self::ResumeRefusedUsed,
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}
