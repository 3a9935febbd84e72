//! Who is asking the lobby for a seat or a room.
//!
//! Two modes, the way studios deploy (`lobby.auth`):
//! - `open`: anyone may ask; the caller is known only by address. For development and trusted
//!   networks.
//! - `jwt`: requests carry the studio's own player token (`Authorization: Bearer <jwt>`), signed
//!   by the studio's backend with an HMAC secret or a private key whose public half Ludus holds.
//!   Its `sub` claim is the player: the seat's player id is derived from it, so one player holds
//!   at most one seat per room, and limits apply per player.

use super::error::ApiError;
use super::operator::bearer;
use crate::config::LobbySection;
use actix_web::http::StatusCode;
use actix_web::HttpRequest;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ludus_protocol::PlayerId;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// Largest player id, so ids stay exact in JavaScript numbers (2^53 - 1).
pub const MAX_PLAYER_ID: u64 = (1 << 53) - 1;

/// Leeway on a player token's `exp` and `nbf`, in seconds: the studio's clock and ours differ.
const JWT_LEEWAY_SECS: u64 = 30;

/// How the lobby identifies callers.
#[derive(Clone)]
pub enum PlayerAuth {
    /// No credential; callers are known by address.
    Open,
    /// A player token is required.
    Jwt {
        /// The studio's verification key.
        key: DecodingKey,
        /// Algorithm, required claims, issuer and audience.
        validation: Box<Validation>,
    },
}

impl std::fmt::Debug for PlayerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Open => f.write_str("PlayerAuth::Open"),
            Self::Jwt { validation, .. } => {
                write!(f, "PlayerAuth::Jwt({:?})", validation.algorithms)
            }
        }
    }
}

/// Why the lobby's auth settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlayerAuthError {
    /// The public key file could not be read.
    #[error("lobby.jwt_public_key_file: cannot read `{path}`: {source}")]
    ReadKey {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key is not a PEM key of the algorithm's kind.
    #[error("lobby.jwt_public_key_file: not a PEM public key for {algorithm:?}: {source}")]
    BadKey {
        /// The configured algorithm.
        algorithm: Algorithm,
        /// Why.
        source: jsonwebtoken::errors::Error,
    },
}

/// The claims Ludus reads from a player token; others are ignored.
#[derive(Deserialize)]
struct PlayerClaims {
    sub: String,
}

/// The caller of one lobby request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The caller's address.
    pub ip: IpAddr,
    /// The player, in `jwt` mode.
    pub player: Option<PlayerId>,
    /// The token's `sub`, in `jwt` mode: the key of per-identity limits.
    pub subject: Option<String>,
}

/// The player id of a token subject: the number itself when `sub` is a decimal id in
/// `1..=2^53-1`, else a stable 53-bit hash of it (xxh3), never 0.
pub fn player_of_subject(subject: &str) -> PlayerId {
    match subject.parse::<u64>() {
        Ok(id) if (1..=MAX_PLAYER_ID).contains(&id) => PlayerId(id),
        _ => {
            let hash = xxhash_rust::xxh3::xxh3_64(subject.as_bytes());
            PlayerId(hash % MAX_PLAYER_ID + 1)
        }
    }
}

impl PlayerAuth {
    /// The mode and key `lobby` describes (validated with the config).
    pub fn from_config(lobby: &LobbySection) -> Result<Self, PlayerAuthError> {
        if lobby.auth == crate::config::LobbyAuthMode::Open {
            return Ok(Self::Open);
        }
        // unwrap_or: the name was validated against the same list jsonwebtoken parses.
        let algorithm = Algorithm::from_str(&lobby.jwt_algorithm).unwrap_or(Algorithm::HS256);
        let key = match (&lobby.jwt_secret, &lobby.jwt_public_key_file) {
            (Some(secret), _) => DecodingKey::from_secret(secret.as_bytes()),
            (None, Some(path)) => {
                let pem = std::fs::read(path).map_err(|source| PlayerAuthError::ReadKey {
                    path: path.display().to_string(),
                    source,
                })?;
                let parsed = match algorithm {
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
                    _ => DecodingKey::from_rsa_pem(&pem),
                };
                parsed.map_err(|source| PlayerAuthError::BadKey { algorithm, source })?
            }
            (None, None) => DecodingKey::from_secret(&[]),
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = JWT_LEEWAY_SECS;
        validation.validate_nbf = true;
        // A configured issuer or audience is required, not only checked when present.
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &lobby.jwt_issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &lobby.jwt_audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(Self::Jwt {
            key,
            validation: Box::new(validation),
        })
    }

    /// Who sent `request`: 401 `unauthorized` without a player token in `jwt` mode, 401
    /// `invalid_token` for a token that does not verify.
    pub fn identify(&self, request: &HttpRequest) -> Result<Identity, ApiError> {
        let ip = request
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.ip());
        let (key, validation) = match self {
            Self::Open => {
                return Ok(Identity {
                    ip,
                    player: None,
                    subject: None,
                })
            }
            Self::Jwt { key, validation } => (key, validation),
        };
        let Some(token) = bearer(request) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this lobby needs a player token: send `Authorization: Bearer <token>`",
            ));
        };
        let claims = jsonwebtoken::decode::<PlayerClaims>(token, key, validation)
            .map_err(|error| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    format!("the player token was refused: {error}"),
                )
            })?
            .claims;
        if claims.sub.is_empty() || claims.sub.len() > 256 {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the player token's `sub` must be 1 to 256 bytes",
            ));
        }
        Ok(Identity {
            ip,
            player: Some(player_of_subject(&claims.sub)),
            subject: Some(claims.sub),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header;
    use actix_web::test::TestRequest;
    use jsonwebtoken::{EncodingKey, Header};

    const SECRET: &str = "studio-secret-0123456789abcdef0123";

    fn jwt_auth() -> PlayerAuth {
        let lobby = LobbySection {
            auth: crate::config::LobbyAuthMode::Jwt,
            jwt_secret: Some(SECRET.to_owned()),
            jwt_issuer: Some("studio".to_owned()),
            ..LobbySection::default()
        };
        PlayerAuth::from_config(&lobby).expect("valid settings")
    }

    fn token(claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("signs")
    }

    fn request_with(token: &str) -> HttpRequest {
        TestRequest::default()
            .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
            .to_http_request()
    }

    fn far_future() -> u64 {
        crate::token::unix_seconds(std::time::SystemTime::now()) + 3_600
    }

    #[test]
    fn numeric_subjects_are_the_player_id_and_others_hash_below_2_pow_53() {
        assert_eq!(player_of_subject("42"), PlayerId(42));
        assert_ne!(player_of_subject("0"), PlayerId(0));
        let hashed = player_of_subject("user-7f3a");
        assert!((1..=MAX_PLAYER_ID).contains(&hashed.0));
        assert_eq!(hashed, player_of_subject("user-7f3a"));
        assert_ne!(hashed, player_of_subject("user-7f3b"));
    }

    #[test]
    fn a_valid_player_token_names_the_player() {
        let valid = token(
            serde_json::json!({"sub": "ann", "iss": "studio", "exp": far_future()}),
            SECRET,
        );
        let identity = jwt_auth().identify(&request_with(&valid)).expect("valid");
        assert_eq!(identity.subject.as_deref(), Some("ann"));
        assert_eq!(identity.player, Some(player_of_subject("ann")));
    }

    #[test]
    fn bad_player_tokens_are_refused_with_codes() {
        let auth = jwt_auth();
        let missing = auth.identify(&TestRequest::default().to_http_request());
        assert_eq!(
            missing.map_err(|e| e.code().to_owned()),
            Err("unauthorized".to_owned())
        );
        let cases = [
            token(
                serde_json::json!({"sub": "ann", "iss": "studio", "exp": far_future()}),
                "forged-secret-0123456789abcdef0123",
            ),
            token(
                serde_json::json!({"sub": "ann", "iss": "studio", "exp": 1_000}),
                SECRET,
            ),
            token(
                serde_json::json!({"sub": "ann", "iss": "other", "exp": far_future()}),
                SECRET,
            ),
            token(
                serde_json::json!({"iss": "studio", "exp": far_future()}),
                SECRET,
            ),
            token(
                serde_json::json!({"sub": "ann", "exp": far_future()}),
                SECRET,
            ),
            // alg=none: header {"alg":"none"}, no signature.
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbm4iLCJpc3MiOiJzdHVkaW8iLCJleHAiOjk5OTk5OTk5OTl9."
                .to_owned(),
        ];
        for case in cases {
            let refused = auth.identify(&request_with(&case));
            assert_eq!(
                refused.map_err(|e| e.code().to_owned()),
                Err("invalid_token".to_owned()),
                "{case}"
            );
        }
    }

    #[test]
    fn open_mode_needs_no_credential() {
        let identity = PlayerAuth::Open
            .identify(&TestRequest::default().to_http_request())
            .expect("open");
        assert_eq!(identity.player, None);
    }
}
