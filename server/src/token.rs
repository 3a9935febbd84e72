//! Seat tokens: the lobby's signed promise that a player may take a reserved seat.
//!
//! A token is a JWT signed with HMAC-SHA256 (`HS256`) over the node's shared secret, binding
//! the player id, the room id, the player's display name and an expiry. Any node holding the
//! same secret accepts it, which is what lets a lobby on one node hand out seats on another.
//! Expiry is checked with zero leeway: a seat reservation and its token die together.
//!
//! Rotation: each token's header names its key (`kid`, a digest of the secret, never the secret),
//! and the verifier holds the current secret and the previous ones (`server.previous_secrets`),
//! so tokens signed before a rotation stay valid until they expire while new ones use the new
//! secret. A token whose `kid` is unknown is refused without trying any key.

use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ludus_protocol::{ErrorCode, PlayerId, RoomId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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

/// What a valid resume token proves: this client held `session` on `player`'s seat in `room`
/// during `epoch`. Only the room can tell whether that session is still the seat's latest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeClaims {
    /// Always `resume`, so a seat token can never pass for a resume token or the reverse.
    pub typ: String,
    /// The player whose seat it is.
    pub player: u64,
    /// The room.
    pub room: String,
    /// The room's epoch when the token was issued.
    pub epoch: u64,
    /// The session the token was issued to.
    pub session: u64,
    /// Expiry, in seconds since the Unix epoch ([`RESUME_TOKEN_LIFETIME`] after issue).
    pub exp: u64,
}

/// How long a resume token stays valid after it is issued (each welcome issues a new one): the
/// room's resume window decides the rest.
pub const RESUME_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

const RESUME_TYPE: &str = "resume";

/// Why a resume token was refused (before the room is asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResumeTokenError {
    /// Bad signature, bad format, expired, or not a resume token.
    #[error("the resume token is invalid")]
    Invalid,
    /// Signed correctly but for another room.
    #[error("the resume token is for another room")]
    WrongRoom,
}

impl ResumeTokenError {
    /// The protocol error code the client sees.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Invalid => ErrorCode::ResumeInvalid,
            Self::WrongRoom => ErrorCode::ResumeWrongRoom,
        }
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

/// Issues seat tokens with one secret and verifies them with it or a previous one.
#[derive(Clone)]
pub struct SeatTokens {
    encoding: EncodingKey,
    header: Header,
    /// Verification keys by `kid`, the current one first.
    decoding: Vec<(String, DecodingKey)>,
    validation: Validation,
}

/// The key id of `secret`: the first 8 bytes of SHA-256 over a label and the secret, in hex.
/// Names the key without revealing anything usable about it.
pub fn key_id(secret: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(b"ludus seat token key id\0")
        .chain_update(secret)
        .finalize();
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A fresh 32-byte secret from the operating system's random source.
pub fn random_secret() -> Result<Vec<u8>, getrandom::Error> {
    let mut secret = vec![0_u8; 32];
    getrandom::fill(&mut secret)?;
    Ok(secret)
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
    /// Signs with `secret` and accepts only it.
    pub fn new(secret: &[u8]) -> Self {
        Self::rotating(secret, &[])
    }

    /// Signs with `current`; accepts tokens signed with it or any of `previous`.
    pub fn rotating(current: &[u8], previous: &[&[u8]]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key_id(current));
        let decoding = std::iter::once(current)
            .chain(previous.iter().copied())
            .map(|secret| (key_id(secret), DecodingKey::from_secret(secret)))
            .collect();
        Self {
            encoding: EncodingKey::from_secret(current),
            header,
            decoding,
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
            // Rounded up: the token must not die before the reservation it carries (the room
            // checks the reservation itself, to the millisecond).
            exp: unix_seconds(expires_at + Duration::from_millis(999)),
        };
        // expect: HS256 signing of a serializable struct cannot fail.
        jsonwebtoken::encode(&self.header, &claims, &self.encoding)
            .expect("HS256 signing never fails")
    }

    /// Signs a resume token for `session` on `player`'s seat in `room` at `epoch`.
    pub fn issue_resume(
        &self,
        player: PlayerId,
        room: &RoomId,
        epoch: u64,
        session: u64,
    ) -> String {
        let claims = ResumeClaims {
            typ: RESUME_TYPE.to_owned(),
            player: player.0,
            room: room.to_string(),
            epoch,
            session,
            exp: unix_seconds(SystemTime::now() + RESUME_TOKEN_LIFETIME),
        };
        // expect: HS256 signing of a serializable struct cannot fail.
        jsonwebtoken::encode(&self.header, &claims, &self.encoding)
            .expect("HS256 signing never fails")
    }

    /// Verifies a resume token for the room the client connected to.
    pub fn verify_resume(
        &self,
        token: &str,
        room: &RoomId,
    ) -> Result<ResumeClaims, ResumeTokenError> {
        let claims: ResumeClaims = self.decode(token).map_err(|_| ResumeTokenError::Invalid)?;
        if claims.typ != RESUME_TYPE {
            return Err(ResumeTokenError::Invalid);
        }
        if claims.room != room.as_str() {
            return Err(ResumeTokenError::WrongRoom);
        }
        Ok(claims)
    }

    /// Checks a token's key and signature and decodes its claims.
    fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        // A token without `kid` predates key ids: only the current key may have signed it.
        let key = match &header.kid {
            None => self.decoding.first(),
            Some(kid) => self.decoding.iter().find(|(id, _)| id == kid),
        };
        let (_, key) = key.ok_or(TokenError::Invalid)?;
        jsonwebtoken::decode::<T>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }

    /// Verifies `token` for the room the client connected to.
    pub fn verify(&self, token: &str, room: &RoomId) -> Result<SeatClaims, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let claims: SeatClaims = self.decode(token)?;
        if claims.room != room.as_str() {
            return Err(TokenError::WrongRoom);
        }
        Ok(claims)
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
    fn tokens_signed_before_a_rotation_stay_valid_and_unknown_keys_are_refused() {
        let before = SeatTokens::new(b"old secret 0123456789");
        let old_token = before.issue(PlayerId(5), &room("r1"), "ann", later());
        let after = SeatTokens::rotating(b"new secret 0123456789", &[b"old secret 0123456789"]);
        assert!(after.verify(&old_token, &room("r1")).is_ok());
        let new_token = after.issue(PlayerId(6), &room("r1"), "bob", later());
        assert!(after.verify(&new_token, &room("r1")).is_ok());
        assert_eq!(
            before.verify(&new_token, &room("r1")),
            Err(TokenError::Invalid),
            "the old node does not know the new key"
        );
        let retired = SeatTokens::new(b"new secret 0123456789");
        assert_eq!(
            retired.verify(&old_token, &room("r1")),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn resume_tokens_and_seat_tokens_never_pass_for_each_other() {
        let tokens = SeatTokens::new(b"secret 0123456789");
        let resume = tokens.issue_resume(PlayerId(5), &room("r1"), 77, 9);
        let claims = tokens.verify_resume(&resume, &room("r1")).expect("valid");
        assert_eq!((claims.player, claims.epoch, claims.session), (5, 77, 9));
        assert_eq!(
            tokens.verify_resume(&resume, &room("r2")),
            Err(ResumeTokenError::WrongRoom)
        );
        let seat = tokens.issue(PlayerId(5), &room("r1"), "ann", later());
        assert_eq!(
            tokens.verify_resume(&seat, &room("r1")),
            Err(ResumeTokenError::Invalid)
        );
        assert!(tokens.verify(&resume, &room("r1")).is_err());
        let forger = SeatTokens::new(b"other secret 0123");
        let forged = forger.issue_resume(PlayerId(5), &room("r1"), 77, 9);
        assert_eq!(
            tokens.verify_resume(&forged, &room("r1")),
            Err(ResumeTokenError::Invalid)
        );
    }

    #[test]
    fn key_ids_name_keys_without_revealing_them() {
        let id = key_id(b"secret");
        assert_eq!(id.len(), 16);
        assert_eq!(id, key_id(b"secret"));
        assert_ne!(id, key_id(b"secret2"));
        assert_ne!(
            random_secret().expect("OS random source"),
            random_secret().expect("OS random source")
        );
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
