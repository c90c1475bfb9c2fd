//! Bearer tokens in the docker token spec's shape: the claims, and their
//! verification against the trusted keys (signature with an accepted
//! algorithm of the key's family; `iss`, `aud`, `exp`, `nbf` and `iat`
//! with a small clock-skew allowance).

// Parses what clients send: every sum on a number from outside is checked.
#![deny(clippy::arithmetic_side_effects)]

use super::keys::TrustedKey;
use super::scope::AccessEntry;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

/// Clock skew allowed between the token server and us, in seconds.
pub const LEEWAY_S: u64 = 30;

/// A token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    #[serde(default)]
    pub sub: String,
    /// A string or a list of strings.
    pub aud: serde_json::Value,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default)]
    pub jti: String,
    #[serde(default)]
    pub access: Vec<AccessEntry>,
}

/// Why a token was refused (said in logs and in the 401's message).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("signing algorithm not accepted")]
    Algorithm,
    #[error("signature does not verify with any trusted key")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issued in the future")]
    IssuedInFuture,
    #[error("token is for another audience")]
    Audience,
    #[error("token is from another issuer")]
    Issuer,
}

/// Checks tokens for one issuer and audience.
pub struct Verifier {
    pub issuer: String,
    keys: Vec<TrustedKey>,
    accepted: Vec<Algorithm>,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Verifier {
    /// `accepted` empty means RS256, ES256 and EdDSA.
    pub fn new(issuer: String, keys: Vec<TrustedKey>, accepted: &[String]) -> Verifier {
        let accepted = if accepted.is_empty() {
            vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
        } else {
            accepted.iter().filter_map(|a| a.parse().ok()).collect()
        };
        Verifier {
            issuer,
            keys,
            accepted,
        }
    }

    /// The claims of `token` if it is valid for `audience`.
    pub fn verify(&self, token: &str, audience: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !self.accepted.contains(&header.alg) {
            return Err(TokenError::Algorithm);
        }
        let fitting: Vec<&TrustedKey> = self
            .keys
            .iter()
            .filter(|k| k.algorithms.contains(&header.alg))
            .collect();
        // A `kid` naming one of our keys picks it; otherwise every key of
        // the algorithm's family is tried.
        let named: Vec<&TrustedKey> = fitting
            .iter()
            .copied()
            .filter(|k| header.kid.is_some() && k.kid == header.kid)
            .collect();
        let candidates = if named.is_empty() { fitting } else { named };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[audience]);
        validation.leeway = LEEWAY_S;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                Ok(data) => {
                    if data
                        .claims
                        .iat
                        .is_some_and(|iat| iat > now().saturating_add(LEEWAY_S))
                    {
                        return Err(TokenError::IssuedInFuture);
                    }
                    return Ok(data.claims);
                }
                Err(e) => match e.kind() {
                    ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => continue,
                    ErrorKind::ExpiredSignature => return Err(TokenError::Expired),
                    ErrorKind::ImmatureSignature => return Err(TokenError::NotYetValid),
                    ErrorKind::InvalidAudience => return Err(TokenError::Audience),
                    ErrorKind::InvalidIssuer => return Err(TokenError::Issuer),
                    _ => return Err(TokenError::Malformed),
                },
            }
        }
        Err(TokenError::Signature)
    }
}
