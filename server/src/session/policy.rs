//! The session's decisions as plain functions over plain data, so each rule is stated once and
//! tested without a socket: what to do with a WebSocket control frame, and which close wins when
//! several timeouts are due. The actor in `session.rs` only carries them out.
//!
//! Control frames (ping, pong) cost the server as much as a message — a decode, and for a ping a
//! write — so they count toward the session's rate limit like every binary frame, and a ping is
//! answered only once `hello` has been accepted: before that, a connection has proved nothing
//! and must not be able to make the server write.

use super::client_codec::Incoming;
use crate::rate_limit::{RateDecision, RateLimiter};
use actix_http::ws;
use bytes::Bytes;
use ludus_protocol::{codec, ClientMessage, CloseCode, ErrorCode};
use std::time::{Duration, Instant};

/// What one frame from a client comes to, whoever holds the connection (the hello task before
/// the join, the room after it).
#[derive(Debug)]
pub enum Screened {
    /// A protocol message to act on.
    Message(ClientMessage),
    /// Answer with a pong carrying this payload (replacing a pong still unsent).
    Pong(Bytes),
    /// The client started the close handshake (its close frame, whose reason to echo).
    ClientClosed(Option<ws::CloseReason>),
    /// Over the rate: dropped; when `notify`, the client is told `rate_limited`.
    Dropped {
        /// Whether this is the first drop in the current second.
        notify: bool,
    },
    /// Nothing to do (a pong, or a ping before `hello`).
    Nothing,
    /// The client broke a rule: close with this code, after this error.
    Close(CloseCode, Option<(ErrorCode, String)>),
}

/// The error and close for sustained messaging above the rate.
fn kick() -> Screened {
    let message = "sustained messaging above the rate limit".to_owned();
    Screened::Close(
        CloseCode::RateLimited,
        Some((ErrorCode::RateLimited, message)),
    )
}

/// Applies the protocol's rules to one frame: size, rate, encoding, frame type, and the
/// control-frame rules of [`control_frame_action`]. Every frame counts toward the rate.
pub fn screen(
    incoming: Incoming,
    phase: Phase,
    limiter: &mut RateLimiter,
    now: Instant,
    max_message_bytes: usize,
) -> Screened {
    let frame = match incoming {
        Incoming::Frame(frame) => frame,
        Incoming::Refused(ws::ProtocolError::Overflow) => {
            let message = format!("frame exceeds the limit of {max_message_bytes} bytes");
            return Screened::Close(
                CloseCode::MessageTooLarge,
                Some((ErrorCode::MessageTooLarge, message)),
            );
        }
        Incoming::Refused(error) => {
            return Screened::Close(
                CloseCode::ProtocolError,
                Some((ErrorCode::MalformedMessage, error.to_string())),
            )
        }
    };
    let control = match frame {
        ws::Frame::Binary(bytes) => return screen_binary(&bytes, limiter, now, max_message_bytes),
        ws::Frame::Text(_) => {
            let message =
                "text frames are not part of the protocol: send MessagePack in binary frames";
            return Screened::Close(
                CloseCode::ProtocolError,
                Some((ErrorCode::MalformedMessage, message.to_owned())),
            );
        }
        ws::Frame::Continuation(_) => {
            let message = "fragmented messages are not supported".to_owned();
            return Screened::Close(
                CloseCode::ProtocolError,
                Some((ErrorCode::MalformedMessage, message)),
            );
        }
        ws::Frame::Close(reason) => return Screened::ClientClosed(reason),
        ws::Frame::Ping(payload) => (ControlFrame::Ping, payload),
        ws::Frame::Pong(payload) => (ControlFrame::Pong, payload),
    };
    let (frame, payload) = control;
    match control_frame_action(frame, phase, limiter.check(now)) {
        ControlAction::Pong => Screened::Pong(payload),
        ControlAction::Nothing => Screened::Nothing,
        ControlAction::NotifyRateLimited => Screened::Dropped { notify: true },
        ControlAction::Kick => kick(),
    }
}

fn screen_binary(
    bytes: &[u8],
    limiter: &mut RateLimiter,
    now: Instant,
    max_message_bytes: usize,
) -> Screened {
    if bytes.len() > max_message_bytes {
        let message = format!(
            "message of {} bytes exceeds the limit of {max_message_bytes} bytes",
            bytes.len()
        );
        return Screened::Close(
            CloseCode::MessageTooLarge,
            Some((ErrorCode::MessageTooLarge, message)),
        );
    }
    match limiter.check(now) {
        RateDecision::Allow => {}
        RateDecision::Drop { notify } => return Screened::Dropped { notify },
        RateDecision::Kick => return kick(),
    }
    match codec::decode_client(bytes) {
        Ok(message) => Screened::Message(message),
        Err(error) => Screened::Close(
            CloseCode::ProtocolError,
            Some((ErrorCode::MalformedMessage, error.to_string())),
        ),
    }
}

/// Where a session is in its life, as far as these rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connected; `hello` not yet received.
    AwaitingHello,
    /// `hello` received, the room has not answered yet.
    Joining,
    /// A member of its room.
    Joined,
    /// The close frame is queued.
    Closing,
}

/// A WebSocket control frame from the client (close frames have their own handshake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlFrame {
    /// A ping, which asks for a pong with the same payload.
    Ping,
    /// A pong: the answer to a heartbeat, or an unsolicited one (RFC 6455 §5.5.3).
    Pong,
}

/// What the session does with a control frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlAction {
    /// Answer with a pong carrying the ping's payload; it replaces a pong still queued and
    /// unsent, as RFC 6455 §5.5.3 allows (only the most recent ping needs an answer).
    Pong,
    /// Nothing to send.
    Nothing,
    /// Over the rate: dropped, and the client is told (`rate_limited`, first drop in a second).
    NotifyRateLimited,
    /// Sustained flood: `rate_limited` error, then close 4005.
    Kick,
}

/// Decides about one control frame, given the session's phase and the rate limiter's verdict
/// on it (the frame was counted whatever the phase).
pub fn control_frame_action(
    frame: ControlFrame,
    phase: Phase,
    rate: RateDecision,
) -> ControlAction {
    if phase == Phase::Closing {
        return ControlAction::Nothing; // no frame may follow the close frame
    }
    match rate {
        RateDecision::Kick => ControlAction::Kick,
        RateDecision::Drop { notify: true } => ControlAction::NotifyRateLimited,
        RateDecision::Drop { notify: false } => ControlAction::Nothing,
        RateDecision::Allow => match (frame, phase) {
            (ControlFrame::Ping, Phase::Joined) => ControlAction::Pong,
            // Before `hello` is accepted a ping is counted, not answered.
            (ControlFrame::Ping, _) | (ControlFrame::Pong, _) => ControlAction::Nothing,
        },
    }
}

/// Which timeout closes a session at a heartbeat, if any.
///
/// `silent_for` is the time since the client's last frame; `paused_for` is how long flow
/// control has paused it (`None` when it is not paused). Precedence, as `PROTOCOL.md` §10
/// states it: a paused client is closed with `too_slow` once either timeout is due. A client
/// that stops reading is paused, and it stops answering pings too (WebSocket libraries answer
/// them while reading), so its idle timeout is a symptom; the pause says what went wrong.
/// A client that is not paused is closed with `idle_timeout` when it has been silent too long.
pub fn overdue(
    silent_for: Duration,
    idle_timeout: Duration,
    paused_for: Option<Duration>,
    slow_client_timeout: Duration,
) -> Option<CloseCode> {
    let idle = silent_for > idle_timeout;
    match paused_for {
        Some(paused) if paused > slow_client_timeout || idle => Some(CloseCode::TooSlow),
        _ if idle => Some(CloseCode::IdleTimeout),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHASES: [Phase; 4] = [
        Phase::AwaitingHello,
        Phase::Joining,
        Phase::Joined,
        Phase::Closing,
    ];

    #[test]
    fn a_ping_is_answered_only_once_joined() {
        for phase in PHASES {
            let expected = if phase == Phase::Joined {
                ControlAction::Pong
            } else {
                ControlAction::Nothing
            };
            assert_eq!(
                control_frame_action(ControlFrame::Ping, phase, RateDecision::Allow),
                expected,
                "{phase:?}"
            );
        }
    }

    #[test]
    fn a_pong_is_never_answered() {
        for phase in PHASES {
            assert_eq!(
                control_frame_action(ControlFrame::Pong, phase, RateDecision::Allow),
                ControlAction::Nothing
            );
        }
    }

    #[test]
    fn control_frames_over_the_rate_are_dropped_then_kicked_before_hello_too() {
        for frame in [ControlFrame::Ping, ControlFrame::Pong] {
            for phase in [Phase::AwaitingHello, Phase::Joined] {
                let first_drop = RateDecision::Drop { notify: true };
                let later_drop = RateDecision::Drop { notify: false };
                assert_eq!(
                    control_frame_action(frame, phase, first_drop),
                    ControlAction::NotifyRateLimited
                );
                assert_eq!(
                    control_frame_action(frame, phase, later_drop),
                    ControlAction::Nothing
                );
                assert_eq!(
                    control_frame_action(frame, phase, RateDecision::Kick),
                    ControlAction::Kick
                );
            }
        }
    }

    #[test]
    fn nothing_is_sent_after_the_close_frame() {
        for rate in [RateDecision::Allow, RateDecision::Kick] {
            assert_eq!(
                control_frame_action(ControlFrame::Ping, Phase::Closing, rate),
                ControlAction::Nothing
            );
        }
    }

    const IDLE: Duration = Duration::from_secs(15);
    const SLOW: Duration = Duration::from_secs(10);
    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_live_client_is_not_closed() {
        assert_eq!(overdue(SECOND, IDLE, None, SLOW), None);
        assert_eq!(overdue(SECOND, IDLE, Some(SECOND), SLOW), None);
    }

    #[test]
    fn a_silent_client_that_is_not_paused_is_idle() {
        assert_eq!(
            overdue(IDLE + SECOND, IDLE, None, SLOW),
            Some(CloseCode::IdleTimeout)
        );
    }

    #[test]
    fn a_client_paused_past_the_slow_timeout_is_too_slow() {
        assert_eq!(
            overdue(SECOND, IDLE, Some(SLOW + SECOND), SLOW),
            Some(CloseCode::TooSlow)
        );
    }

    #[test]
    fn when_both_are_due_too_slow_wins() {
        assert_eq!(
            overdue(IDLE + SECOND, IDLE, Some(SLOW + SECOND), SLOW),
            Some(CloseCode::TooSlow)
        );
    }

    #[test]
    fn a_paused_client_whose_idle_timeout_comes_first_is_too_slow() {
        assert_eq!(
            overdue(IDLE + SECOND, IDLE, Some(SECOND), SLOW),
            Some(CloseCode::TooSlow)
        );
    }
}
