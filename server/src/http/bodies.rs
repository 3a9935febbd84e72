//! Lobby request bodies: their types, and reading them within bounds.
//!
//! A body is read with a deadline ([`BodyLimits::timeout`]; a client trickling its body is
//! answered 408 `request_timeout` and disconnected instead of holding a connection and a file
//! descriptor forever) and a size limit (413 `payload_too_large`), then decoded as JSON with
//! unknown fields refused (400 `invalid_request`). Free-form JSON a room passes on to its
//! clients (operator payloads, listing metadata) is also bounded in depth, so it can never
//! produce a frame that clients' decoders refuse ([`MAX_PAYLOAD_DEPTH`]).

use super::error::ApiError;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::time::Duration;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Deepest nesting of an operator payload or room metadata, counting the outermost array or
/// object as 1. Clients refuse frames nested deeper than `ludus_protocol::codec::MAX_DEPTH`
/// (32), and a payload reaches them inside up to five levels of envelope (batch, message,
/// delta, events, event); half the limit leaves room for both.
pub const MAX_PAYLOAD_DEPTH: usize = ludus_protocol::codec::MAX_DEPTH / 2;

/// `POST /v1/rooms`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRoomBody {
    /// Room type.
    pub room_type: String,
    /// Wanted id.
    pub room_id: Option<String>,
    /// Seats.
    pub max_players: Option<u32>,
    /// Listing metadata.
    #[serde(default)]
    pub metadata: serde_json::Value,
    /// Preferred region.
    pub region: Option<String>,
}

/// `POST /v1/rooms/{room_id}/seats`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatBody {
    /// Display name.
    pub name: Option<String>,
}

/// `POST /v1/matchmake`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchmakeBody {
    /// Room type.
    pub room_type: String,
    /// Display name.
    pub name: Option<String>,
    /// Preferred region.
    pub region: Option<String>,
}

/// `POST /v1/rooms/{room_id}/messages` and `POST /v1/regions/{region}/announce`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    /// What the room's members receive.
    pub payload: serde_json::Value,
}

/// How long and how large a body may be.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Time to receive the whole body.
    pub timeout: Duration,
    /// Largest body, in bytes.
    pub max_bytes: usize,
}

/// The nesting depth of `value`: 0 for a scalar, 1 for a flat array or object.
pub fn json_depth(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 0_usize)];
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
            serde_json::Value::Array(items) => Box::new(items.iter()),
            serde_json::Value::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    deepest
}

/// Refuses free-form JSON nested deeper than [`MAX_PAYLOAD_DEPTH`].
pub fn check_depth(field: &str, value: &serde_json::Value) -> Result<(), ApiError> {
    let depth = json_depth(value);
    if depth > MAX_PAYLOAD_DEPTH {
        return Err(ApiError::invalid_request(format!(
            "{field}: nested {depth} deep, more than the {MAX_PAYLOAD_DEPTH} clients accept"
        )));
    }
    Ok(())
}

/// Decodes a complete body; every failure is 400 `invalid_request`.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::invalid_request(format!("invalid JSON body: {error}")))
}

/// Runs every lobby body decoder over `bytes`, with the depth checks the handlers apply: the
/// fuzzing entry point (`fuzz/fuzz_targets/lobby_json.rs`). Never panics, whatever the bytes.
pub fn decode_any(bytes: &[u8]) {
    if bytes.len() > MAX_BODY_BYTES {
        return;
    }
    if let Ok(body) = decode_json::<CreateRoomBody>(bytes) {
        let _ = check_depth("metadata", &body.metadata);
    }
    let _ = decode_json::<SeatBody>(bytes);
    let _ = decode_json::<MatchmakeBody>(bytes);
    if let Ok(body) = decode_json::<MessageBody>(bytes) {
        let _ = check_depth("payload", &body.payload);
    }
}

fn is_json(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads and decodes a JSON body within `limits`.
pub async fn read_json<T: DeserializeOwned>(
    request: &HttpRequest,
    mut payload: web::Payload,
    limits: BodyLimits,
) -> Result<T, ApiError> {
    if !is_json(request) {
        return Err(ApiError::invalid_request(
            "send the body as JSON with `Content-Type: application/json`",
        ));
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds {} bytes", limits.max_bytes),
        )
    };
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if announced.is_some_and(|length| length > limits.max_bytes) {
        return Err(too_large());
    }
    let deadline = tokio::time::Instant::now() + limits.timeout;
    let mut body = web::BytesMut::with_capacity(announced.unwrap_or(256).min(limits.max_bytes));
    loop {
        let chunk = match tokio::time::timeout_at(deadline, payload.next()).await {
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!(
                        "the body did not arrive within {} ms",
                        limits.timeout.as_millis()
                    ),
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                return Err(ApiError::invalid_request(format!(
                    "reading the body failed: {error}"
                )))
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        if body.len() + chunk.len() > limits.max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    decode_json(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_containers() {
        assert_eq!(json_depth(&serde_json::json!(1)), 0);
        assert_eq!(json_depth(&serde_json::json!({"a": 1})), 1);
        assert_eq!(json_depth(&serde_json::json!({"a": [1, {"b": []}]})), 4);
    }

    #[test]
    fn payloads_deeper_than_clients_accept_are_refused() {
        let mut deep = serde_json::json!(1);
        for _ in 0..MAX_PAYLOAD_DEPTH {
            deep = serde_json::json!([deep]);
        }
        assert!(check_depth("payload", &deep).is_ok());
        let deeper = serde_json::json!([deep]);
        let refused = check_depth("payload", &deeper).expect_err("too deep");
        assert_eq!(refused.code(), "invalid_request");
    }

    #[test]
    fn unknown_fields_are_refused_and_errors_do_not_echo_everything() {
        let long_field = "x".repeat(16_000);
        let body = format!(r#"{{"room_type": "arena", "{long_field}": 1}}"#);
        let refused = decode_json::<MatchmakeBody>(body.as_bytes()).expect_err("unknown field");
        assert!(refused.to_string().len() < 300, "{refused}");
    }

    #[test]
    fn decode_any_survives_garbage() {
        for input in [
            &b""[..],
            b"{",
            b"[[[[[[",
            b"{\"payload\": 1}",
            &[0xff, 0xfe],
        ] {
            decode_any(input);
        }
    }
}
