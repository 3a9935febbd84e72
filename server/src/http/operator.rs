//! The operator credential: who may end rooms, message them and announce to a region.
//!
//! Operators send `Authorization: Bearer <token>`. Several tokens may be configured at once so
//! one can be rotated without downtime. Tokens are compared as SHA-256 digests in constant time
//! (`subtle`), so neither the position of the first wrong byte nor a token's length shows in
//! the answer's timing. A missing credential is 401 `unauthorized`, a wrong one 403 `forbidden`.

use super::error::ApiError;
use actix_web::http::{header, StatusCode};
use actix_web::HttpRequest;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The accepted operator tokens, kept only as digests.
#[derive(Clone)]
pub struct OperatorTokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for OperatorTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OperatorTokens({} accepted)", self.digests.len())
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// The bearer token of an `Authorization` header, if it has one.
pub fn bearer(request: &HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

impl OperatorTokens {
    /// Accepts every token in `tokens`.
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            digests: tokens
                .into_iter()
                .map(|token| digest(token.as_bytes()))
                .collect(),
        }
    }

    /// Whether `token` is one of the accepted tokens. Every accepted digest is compared, so the
    /// time taken does not depend on which one matched.
    pub fn accepts(&self, token: &str) -> bool {
        let presented = digest(token.as_bytes());
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, accepted| {
                found | accepted.ct_eq(&presented)
            })
            .into()
    }

    /// Checks the request's credential: `Ok` for an accepted token, else 401 or 403.
    pub fn authorize(&self, request: &HttpRequest) -> Result<(), ApiError> {
        match bearer(request) {
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this is an operator route: send `Authorization: Bearer <operator token>`",
            )),
            Some(token) if self.accepts(token) => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the operator token is not valid",
            )),
        }
    }
}

/// A fresh operator token from the OS's random source: 32 bytes, hex.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn every_configured_token_is_accepted_and_nothing_else() {
        let tokens =
            OperatorTokens::new(["new-token-0123456789abcdef", "old-token-0123456789abcdef"]);
        assert!(tokens.accepts("new-token-0123456789abcdef"));
        assert!(tokens.accepts("old-token-0123456789abcdef"));
        assert!(!tokens.accepts("new-token-0123456789abcde"));
        assert!(!tokens.accepts(""));
        assert!(!OperatorTokens::new([]).accepts("anything"));
    }

    #[test]
    fn missing_and_wrong_credentials_get_their_own_codes() {
        let tokens = OperatorTokens::new(["right-token-0123456789abcdef"]);
        let none = TestRequest::default().to_http_request();
        assert_eq!(
            tokens.authorize(&none).map_err(|e| e.code().to_owned()),
            Err("unauthorized".to_owned())
        );
        let basic = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Basic dXNlcjpwYXNz"))
            .to_http_request();
        assert_eq!(
            tokens.authorize(&basic).map_err(|e| e.code().to_owned()),
            Err("unauthorized".to_owned())
        );
        let wrong = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Bearer wrong"))
            .to_http_request();
        assert_eq!(
            tokens.authorize(&wrong).map_err(|e| e.code().to_owned()),
            Err("forbidden".to_owned())
        );
        let right = TestRequest::default()
            .insert_header((
                header::AUTHORIZATION,
                "bearer  right-token-0123456789abcdef ",
            ))
            .to_http_request();
        assert!(tokens.authorize(&right).is_ok());
    }

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let first = generate_token().expect("OS random source");
        assert_eq!(first.len(), 64);
        assert_ne!(first, generate_token().expect("OS random source"));
    }
}
