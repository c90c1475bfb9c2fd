//! The built-in token server's logic (`auth.token.issue`): what to grant a
//! subject for the scopes it asks (only what the policy allows; without a
//! policy, everything to signed-in users and nothing to anonymous ones),
//! signing access tokens, and the refresh tokens `docker login` keeps as
//! its identity. The HTTP shape of the endpoint is in `http::token`.

use super::htpasswd::Users;
use super::keys::{SigningKey, TrustedKey};
use super::policy::Policy;
use super::scope::{AccessEntry, Need, Verb};
use super::token::{now, Claims, TokenError, Verifier};
use super::{AuthError, Subject};
use crate::names::RepoName;
use jsonwebtoken::{Algorithm, Header};
use std::collections::BTreeSet;

pub struct Issuer {
    key: SigningKey,
    pub users: Users,
    issuer: String,
    service: String,
    expiration: u64,
    refresh_expiration: u64,
    /// Checks refresh tokens: our key only, and their own audience.
    refresh_verifier: Verifier,
}

/// A signed access token and its lifetime.
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
    pub issued_at: u64,
}

impl Issuer {
    pub fn new(
        token: &rconfig::auth::Token,
        issue: &rconfig::auth::Issue,
    ) -> Result<Issuer, AuthError> {
        let key = SigningKey::load_or_create(&issue.key)?;
        let refresh_verifier = Verifier::new(
            token.issuer.clone(),
            vec![key.trusted.clone()],
            &["ES256".to_string()],
        );
        Ok(Issuer {
            key,
            users: Users::open(&issue.htpasswd)?,
            issuer: token.issuer.clone(),
            service: token.service.clone(),
            expiration: issue.expiration.0.as_secs().max(1),
            refresh_expiration: issue.refreshexpiration.0.as_secs().max(1),
            refresh_verifier,
        })
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// The key registry requests are checked with, next to any others.
    pub fn trusted_key(&self) -> TrustedKey {
        self.key.trusted.clone()
    }

    /// What `subject` gets of `requested`.
    pub fn grant(
        &self,
        policy: Option<&Policy>,
        subject: &Subject,
        requested: &[AccessEntry],
    ) -> Vec<AccessEntry> {
        let signed_in = matches!(subject, Subject::User(_));
        let mut granted: Vec<AccessEntry> = Vec::new();
        for entry in requested {
            let actions: Vec<String> = match entry.kind.as_str() {
                "repository" if RepoName::parse(&entry.name).is_some() => {
                    let asked: BTreeSet<Verb> = entry
                        .actions
                        .iter()
                        .flat_map(|a| Verb::parse_set(a))
                        .collect();
                    let allowed: BTreeSet<Verb> = match policy {
                        Some(policy) => policy.verbs_on(subject, &entry.name),
                        None if signed_in => Verb::ALL.into_iter().collect(),
                        None => BTreeSet::new(),
                    };
                    asked
                        .intersection(&allowed)
                        .map(|v| v.as_str().to_string())
                        .collect()
                }
                "registry" if entry.name == "catalog" => {
                    let allowed = match policy {
                        Some(policy) => policy.allows(subject, &Need::Catalog),
                        None => signed_in,
                    };
                    if allowed && entry.actions.iter().any(|a| a == "*") {
                        vec!["*".to_string()]
                    } else {
                        Vec::new()
                    }
                }
                _ => Vec::new(),
            };
            if actions.is_empty() {
                continue;
            }
            match granted
                .iter_mut()
                .find(|g| g.kind == entry.kind && g.name == entry.name)
            {
                Some(existing) => {
                    for action in actions {
                        if !existing.actions.contains(&action) {
                            existing.actions.push(action);
                        }
                    }
                }
                None => granted.push(AccessEntry {
                    kind: entry.kind.clone(),
                    name: entry.name.clone(),
                    actions,
                }),
            }
        }
        granted
    }

    /// Signs an access token for `subject` holding `access`.
    pub fn access_token(
        &self,
        subject: &Subject,
        access: Vec<AccessEntry>,
    ) -> Result<Issued, AuthError> {
        let issued_at = now();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.name().to_string(),
            aud: self.service.clone().into(),
            exp: issued_at + self.expiration,
            nbf: Some(issued_at.saturating_sub(1)),
            iat: Some(issued_at),
            jti: uuid::Uuid::new_v4().to_string(),
            access,
        };
        Ok(Issued {
            token: self.sign(&claims)?,
            expires_in: self.expiration,
            issued_at,
        })
    }

    /// Signs a refresh token for `user`: no access of its own, an audience
    /// of its own (so it is never taken as an access token).
    pub fn refresh_token(&self, user: &str) -> Result<String, AuthError> {
        let issued_at = now();
        self.sign(&Claims {
            iss: self.issuer.clone(),
            sub: user.to_string(),
            aud: self.refresh_audience().into(),
            exp: issued_at + self.refresh_expiration,
            nbf: Some(issued_at.saturating_sub(1)),
            iat: Some(issued_at),
            jti: uuid::Uuid::new_v4().to_string(),
            access: Vec::new(),
        })
    }

    /// The user a refresh token was given to, if it is valid and the user
    /// still exists.
    pub fn refresh_user(&self, token: &str) -> Result<String, TokenError> {
        let claims = self
            .refresh_verifier
            .verify(token, &self.refresh_audience())?;
        if claims.sub.is_empty() || !self.users.exists(&claims.sub) {
            return Err(TokenError::Signature);
        }
        Ok(claims.sub)
    }

    fn refresh_audience(&self) -> String {
        format!("{}#refresh", self.service)
    }

    fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key.encoding)
            .map_err(|e| AuthError::Sign(e.to_string()))
    }
}
