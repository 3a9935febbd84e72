//! JSON errors of the HTTP API: `{"error": {"code": "...", "message": "..."}}` with a stable
//! code, the HTTP status that goes with each code, and `retry_after` on 429s.
//!
//! Messages may quote what the caller sent (an unknown room type, a bad field): they are cut to
//! [`MAX_MESSAGE_CHARS`] so an error can never echo a large input back.

use crate::cluster::ClusterError;
use crate::lobby::LobbyError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use std::borrow::Cow;
use std::time::Duration;

/// Longest error message sent, in characters; longer ones end with `…`.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// A JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// `text` cut to [`MAX_MESSAGE_CHARS`] characters.
pub fn truncated(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

impl ApiError {
    /// An error with `status` and a stable `code`.
    pub fn new(status: StatusCode, code: &'static str, message: impl AsRef<str>) -> Self {
        Self {
            status,
            code: Cow::Borrowed(code),
            message: truncated(message.as_ref()),
            retry_after: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(message: impl AsRef<str>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 429 with `code`, telling the caller when to try again.
    pub fn too_many(code: &'static str, message: impl AsRef<str>, retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }
}

/// Whole seconds to wait, rounded up, at least 1 (the `Retry-After` header has no fractions).
fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        let body = match self.retry_after {
            Some(wait) => {
                let seconds = retry_after_secs(wait);
                response.insert_header((header::RETRY_AFTER, seconds.to_string()));
                serde_json::json!({
                    "error": { "code": self.code, "message": self.message, "retry_after": seconds }
                })
            }
            None => serde_json::json!({ "error": { "code": self.code, "message": self.message } }),
        };
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(body)
    }
}

/// The HTTP status of an error code, whichever node produced it.
fn status_of(code: &str) -> StatusCode {
    match code {
        "unknown_room_type" | "invalid_room_id" | "invalid_request" | "unknown_region" => {
            StatusCode::BAD_REQUEST
        }
        "room_exists" | "room_full" | "already_seated" => StatusCode::CONFLICT,
        "room_not_found" | "player_not_found" => StatusCode::NOT_FOUND,
        "payload_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "room_busy" => StatusCode::TOO_MANY_REQUESTS,
        "at_capacity"
        | "shutting_down"
        | "cluster_unavailable"
        | "node_unavailable"
        | "node_draining"
        | "no_live_node" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ClusterError> for ApiError {
    fn from(error: ClusterError) -> Self {
        let status = status_of(error.code());
        // A busy room is retried after about one tick's worth of draining: a second is plenty.
        let retry_after =
            (status == StatusCode::TOO_MANY_REQUESTS).then_some(Duration::from_secs(1));
        Self {
            status,
            // A remote node's code is passed through as it came, whatever it is.
            code: Cow::Owned(error.code().to_owned()),
            message: truncated(&error.to_string()),
            retry_after,
        }
    }
}

impl From<LobbyError> for ApiError {
    fn from(error: LobbyError) -> Self {
        ClusterError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let long = "é".repeat(16 * 1024);
        let cut = truncated(&long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(truncated("short"), "short");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(2_000)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2_001)), 3);
    }
}
