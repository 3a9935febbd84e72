//! Seat tokens: the lobby's signed promise that a player may take a reserved seat.
//!
//! A token is a JWT signed with HMAC-SHA256 (`HS256`) over the node's shared secret, binding
//! the player id, the room id, the player's display name and an expiry. Any node holding the
//! same secret accepts it, which is what lets a lobby on one node hand out seats on another.
//! Expiry is checked with zero leeway: a seat reservation and its token die together.

use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ludus_protocol::{ErrorCode, PlayerId, RoomId};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a valid token grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatClaims {
    /// The player who may sit.
    pub player: u64,
    /// The room the seat is in.
    pub room: String,
    /// The player's display name.
    pub name: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
}

impl SeatClaims {
    /// The player id as a typed id.
    pub fn player_id(&self) -> PlayerId {
        PlayerId(self.player)
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token at all.
    #[error("the hello carried no seat token")]
    Missing,
    /// Bad signature, bad format or bad claims.
    #[error("the seat token is invalid")]
    Invalid,
    /// Signed correctly but expired.
    #[error("the seat token has expired")]
    Expired,
    /// Signed correctly but for another room.
    #[error("the seat token is for another room")]
    WrongRoom,
}

impl TokenError {
    /// The protocol error code the client sees.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Missing => ErrorCode::MissingToken,
            Self::Invalid => ErrorCode::InvalidToken,
            Self::Expired => ErrorCode::TokenExpired,
            Self::WrongRoom => ErrorCode::TokenWrongRoom,
        }
    }
}

/// Issues and verifies seat tokens with one secret.
#[derive(Clone)]
pub struct SeatTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for SeatTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeatTokens { .. }")
    }
}

/// Seconds since the Unix epoch for `time` (0 before the epoch).
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

impl SeatTokens {
    /// Uses `secret` as the HMAC key.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Signs a token for `player` in `room` that expires at `expires_at`.
    pub fn issue(
        &self,
        player: PlayerId,
        room: &RoomId,
        name: &str,
        expires_at: SystemTime,
    ) -> String {
        let claims = SeatClaims {
            player: player.0,
            room: room.to_string(),
            name: name.to_owned(),
            exp: unix_seconds(expires_at),
        };
        // expect: HS256 signing of a serializable struct cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing never fails")
    }

    /// Verifies `token` for the room the client connected to.
    pub fn verify(&self, token: &str, room: &RoomId) -> Result<SeatClaims, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let data = jsonwebtoken::decode::<SeatClaims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        if data.claims.room != room.as_str() {
            return Err(TokenError::WrongRoom);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: &str) -> RoomId {
        RoomId::parse(id).expect("valid id")
    }

    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(60)
    }

    #[test]
    fn a_valid_token_verifies() {
        let tokens = SeatTokens::new(b"secret");
        let token = tokens.issue(PlayerId(5), &room("r1"), "ann", later());
        let claims = tokens.verify(&token, &room("r1")).expect("valid");
        assert_eq!(claims.player_id(), PlayerId(5));
        assert_eq!(claims.name, "ann");
    }

    #[test]
    fn tokens_are_refused_for_the_right_reason() {
        let tokens = SeatTokens::new(b"secret");
        let forger = SeatTokens::new(b"other secret");
        let forged = forger.issue(PlayerId(5), &room("r1"), "ann", later());
        let expired = tokens.issue(
            PlayerId(5),
            &room("r1"),
            "ann",
            SystemTime::now() - Duration::from_secs(5),
        );
        let elsewhere = tokens.issue(PlayerId(5), &room("r2"), "ann", later());
        assert_eq!(tokens.verify("", &room("r1")), Err(TokenError::Missing));
        assert_eq!(
            tokens.verify("garbage", &room("r1")),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            tokens.verify(&forged, &room("r1")),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            tokens.verify(&expired, &room("r1")),
            Err(TokenError::Expired)
        );
        assert_eq!(
            tokens.verify(&elsewhere, &room("r1")),
            Err(TokenError::WrongRoom)
        );
    }
}
