//! Stable error codes and WebSocket close codes.
//!
//! Clients match on these, never on message text. Codes are only ever added; a code's meaning
//! never changes. `PROTOCOL.md` lists the same tables.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why the server refused something. Sent inside an `error` message as a snake_case string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A frame was not a valid MessagePack client message (or was a text frame).
    MalformedMessage,
    /// A frame exceeded the server's maximum message size.
    MessageTooLarge,
    /// A message that is not valid in the session's state (e.g. `input` before `hello`).
    UnexpectedMessage,
    /// `hello` carried a protocol version the server does not speak.
    ProtocolVersion,
    /// `hello` carried an empty token.
    MissingToken,
    /// The token's signature or format is invalid.
    InvalidToken,
    /// The token has expired.
    TokenExpired,
    /// The token is for another room than the one in the URL.
    TokenWrongRoom,
    /// No such room on this server.
    RoomNotFound,
    /// The room has no free seat.
    RoomFull,
    /// The token's seat reservation expired or was already used.
    SeatNotReserved,
    /// Too many messages; the excess was dropped.
    RateLimited,
    /// The game refused an input; the session stays open.
    InvalidInput,
    /// The server is overloaded and dropped a message.
    ServerBusy,
    /// A resume came after the seat's resume window: the player has left the room.
    ResumeExpired,
    /// The resume token is forged, malformed or not a Ludus resume token.
    ResumeInvalid,
    /// The resume token is for another room than the one in the URL.
    ResumeWrongRoom,
    /// The room was re-created since the token was issued (another epoch).
    ResumeEpochChanged,
    /// The resume token was already used: a newer session holds the seat.
    ResumeUsed,
}

impl ErrorCode {
    /// The wire name, as it appears in an `error` message.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedMessage => "malformed_message",
            Self::MessageTooLarge => "message_too_large",
            Self::UnexpectedMessage => "unexpected_message",
            Self::ProtocolVersion => "protocol_version",
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::TokenWrongRoom => "token_wrong_room",
            Self::RoomNotFound => "room_not_found",
            Self::RoomFull => "room_full",
            Self::SeatNotReserved => "seat_not_reserved",
            Self::RateLimited => "rate_limited",
            Self::InvalidInput => "invalid_input",
            Self::ServerBusy => "server_busy",
            Self::ResumeExpired => "resume_expired",
            Self::ResumeInvalid => "resume_invalid",
            Self::ResumeWrongRoom => "resume_wrong_room",
            Self::ResumeEpochChanged => "resume_epoch_changed",
            Self::ResumeUsed => "resume_used",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the server closed a WebSocket. Every server-side close carries one of these codes (and
/// its [`CloseCode::reason`] as the close frame's reason text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the client sent `leave`.
    Normal,
    /// 4000: a frame could not be decoded, or a message came out of order.
    ProtocolError,
    /// 4001: the seat token was missing, forged, expired, for another room, or not reserved.
    Unauthorized,
    /// 4002: `hello` carried another protocol version.
    ProtocolVersion,
    /// 4003: the room is full.
    RoomFull,
    /// 4004: the room does not exist on this server.
    RoomNotFound,
    /// 4005: kicked for sustained messaging above the rate limit.
    RateLimited,
    /// 4006: a frame exceeded the maximum message size.
    MessageTooLarge,
    /// 4007: no frame (not even a pong) arrived within the idle timeout, or no `hello` in time.
    IdleTimeout,
    /// 4008: the client acknowledged no ticks for longer than the slow-client timeout, or left
    /// too many frames unread.
    TooSlow,
    /// 4009: the room was disposed (by the game ending or an operator).
    RoomDisposed,
    /// 4010: the room's game logic failed; other rooms are unaffected.
    RoomCrashed,
    /// 4011: the server is shutting down; reconnect through the lobby.
    ServerShutdown,
    /// 4012: the room lives on another node; a `redirect` message naming it came just before.
    Redirect,
    /// 4013: this node lost the room's lease to another node; reconnect through the lobby.
    RoomMoved,
    /// 4014: a resume was refused (the `error` before it says why); get a new seat.
    ResumeRefused,
    /// 4015: another connection resumed this session; this one is replaced.
    SessionReplaced,
    /// 4016: an operator removed the player from the room; the seat is gone (no resume).
    Kicked,
    /// 4017: the room is moving to another node with its exact state (a drain); the seat is
    /// kept: resume at once with the last welcome's resume token.
    RoomMoving,
}

impl CloseCode {
    /// Every close code, for documentation and tests.
    pub const ALL: [CloseCode; 19] = [
        Self::Normal,
        Self::ProtocolError,
        Self::Unauthorized,
        Self::ProtocolVersion,
        Self::RoomFull,
        Self::RoomNotFound,
        Self::RateLimited,
        Self::MessageTooLarge,
        Self::IdleTimeout,
        Self::TooSlow,
        Self::RoomDisposed,
        Self::RoomCrashed,
        Self::ServerShutdown,
        Self::Redirect,
        Self::RoomMoved,
        Self::ResumeRefused,
        Self::SessionReplaced,
        Self::Kicked,
        Self::RoomMoving,
    ];

    /// The numeric WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::ProtocolError => 4000,
            Self::Unauthorized => 4001,
            Self::ProtocolVersion => 4002,
            Self::RoomFull => 4003,
            Self::RoomNotFound => 4004,
            Self::RateLimited => 4005,
            Self::MessageTooLarge => 4006,
            Self::IdleTimeout => 4007,
            Self::TooSlow => 4008,
            Self::RoomDisposed => 4009,
            Self::RoomCrashed => 4010,
            Self::ServerShutdown => 4011,
            Self::Redirect => 4012,
            Self::RoomMoved => 4013,
            Self::ResumeRefused => 4014,
            Self::SessionReplaced => 4015,
            Self::Kicked => 4016,
            Self::RoomMoving => 4017,
        }
    }

    /// The close frame's reason text: a stable snake_case word.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::ProtocolError => "protocol_error",
            Self::Unauthorized => "unauthorized",
            Self::ProtocolVersion => "protocol_version",
            Self::RoomFull => "room_full",
            Self::RoomNotFound => "room_not_found",
            Self::RateLimited => "rate_limited",
            Self::MessageTooLarge => "message_too_large",
            Self::IdleTimeout => "idle_timeout",
            Self::TooSlow => "too_slow",
            Self::RoomDisposed => "room_disposed",
            Self::RoomCrashed => "room_crashed",
            Self::ServerShutdown => "server_shutdown",
            Self::Redirect => "redirect",
            Self::RoomMoved => "room_moved",
            Self::ResumeRefused => "resume_refused",
            Self::SessionReplaced => "session_replaced",
            Self::Kicked => "kicked",
            Self::RoomMoving => "room_moving",
        }
    }

    /// Looks a numeric code up; `None` for codes Ludus never sends.
    ///
    /// ```
    /// use ludus_protocol::CloseCode;
    /// assert_eq!(CloseCode::from_code(4011), Some(CloseCode::ServerShutdown));
    /// assert_eq!(CloseCode::from_code(1234), None);
    /// ```
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|close| close.code() == code)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_are_unique_and_round_trip() {
        for close in CloseCode::ALL {
            assert_eq!(CloseCode::from_code(close.code()), Some(close));
        }
    }

    #[test]
    fn error_code_wire_names_match_as_str() {
        let encoded = rmp_serde::to_vec(&ErrorCode::TokenWrongRoom).expect("encode");
        let decoded: String = rmp_serde::from_slice(&encoded).expect("decode as string");
        assert_eq!(decoded, ErrorCode::TokenWrongRoom.as_str());
    }
}
