//! Authentication and access control. Every request's [`Need`] (from its
//! typed `Action`) is checked here before a handler runs:
//!
//! 1. who is asking: nobody (no credentials), a user (Basic against an
//!    htpasswd file), or a token's subject (a Bearer JWT, with the access
//!    it was granted);
//! 2. whether that is enough: the token's grant (token mode) and the
//!    access policy (when one is configured), whatever the mode;
//! 3. if not, the answer clients act on: 401 with the mode's challenge
//!    (`Basic realm=...` or `Bearer realm,service,scope[,error]`), or 403
//!    `DENIED` for a signed-in user the policy refuses.
//!
//! Refusals of bad credentials and of access are logged (client, user,
//! action, repository; never a password or token) and counted; bad
//! credentials and bad tokens repeated by one client are slowed.
//!
//! - [`scope`]: needs and grants in the token spec's terms.
//! - [`policy`]: the `auth.access` rules; [`glob`]: their repository globs.
//! - [`htpasswd`]: users from a bcrypt htpasswd file, re-read on change.
//! - [`keys`], [`token`]: keys that may sign tokens, and token checks.
//! - [`issuer`]: the built-in token server (`auth.token.issue`).
//! - [`failures`]: refusals counted per client, and the delay they earn.

pub mod failures;
pub mod glob;
pub mod htpasswd;
pub mod issuer;
pub mod keys;
pub mod policy;
pub mod scope;
pub mod token;

use crate::action::Action;
use crate::error::{Code, RegistryError};
use axum::http::HeaderMap;
use base64::Engine as _;
use failures::Failures;
use htpasswd::Users;
use issuer::Issuer;
use policy::Policy;
use scope::{need_of, AccessEntry, Need};
use serde_json::json;
use std::net::IpAddr;
use std::path::PathBuf;
use token::{TokenError, Verifier};

/// Why auth could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("htpasswd file {path}: {message}")]
    Htpasswd { path: PathBuf, message: String },
    #[error("token key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("cannot sign a token: {0}")]
    Sign(String),
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Anonymous,
    User(String),
}

impl Subject {
    /// The name logs and tokens carry (empty for anonymous).
    pub fn name(&self) -> &str {
        match self {
            Subject::Anonymous => "",
            Subject::User(name) => name,
        }
    }
}

/// A request's caller once identified: its subject and, in token mode,
/// what its token grants.
#[derive(Debug, Clone)]
pub struct Caller {
    pub subject: Subject,
    grants: Option<Vec<AccessEntry>>,
}

enum Mode {
    Open,
    Basic {
        realm: String,
        users: Users,
    },
    Bearer {
        realm: String,
        service: String,
        autoredirect: bool,
        verifier: Verifier,
    },
}

pub struct Auth {
    mode: Mode,
    policy: Option<Policy>,
    pub failures: Failures,
    pub issuer: Option<Issuer>,
    /// The path the token endpoint is served at (the realm's).
    token_path: Option<String>,
}

/// How a request failed to identify itself.
enum Refusal {
    BadCredentials(String),
    BadToken(TokenError),
}

impl Auth {
    /// No authentication, no policy: every request is allowed.
    pub fn open() -> Auth {
        Auth {
            mode: Mode::Open,
            policy: None,
            failures: Failures::default(),
            issuer: None,
            token_path: None,
        }
    }

    pub fn from_config(config: &rconfig::auth::Auth) -> Result<Auth, AuthError> {
        let mut auth = Auth::open();
        auth.policy = config.access.as_ref().map(Policy::new);
        if let Some(htpasswd) = &config.htpasswd {
            auth.mode = Mode::Basic {
                realm: htpasswd.realm.clone(),
                users: Users::open(&htpasswd.path)?,
            };
        }
        if let Some(token) = &config.token {
            let mut keys = Vec::new();
            if let Some(bundle) = &token.rootcertbundle {
                keys.extend(keys::from_cert_bundle(bundle)?);
            }
            if let Some(jwks) = &token.jwks {
                keys.extend(keys::from_jwks(jwks)?);
            }
            let mut accepted = token.signingalgorithms.clone();
            if let Some(issue) = &token.issue {
                let issuer = Issuer::new(token, issue)?;
                keys.push(issuer.trusted_key());
                if !accepted.is_empty() && !accepted.iter().any(|a| a == "ES256") {
                    accepted.push("ES256".to_string());
                }
                auth.token_path = Some(realm_path(&token.realm));
                auth.issuer = Some(issuer);
            }
            auth.mode = Mode::Bearer {
                realm: token.realm.clone(),
                service: token.service.clone(),
                autoredirect: token.autoredirect,
                verifier: Verifier::new(token.issuer.clone(), keys, &accepted),
            };
        }
        Ok(auth)
    }

    /// The path of the built-in token endpoint, when it is served.
    pub fn token_path(&self) -> Option<&str> {
        self.token_path.as_deref()
    }

    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }

    /// Identifies the caller and checks it may do what `action` needs (the
    /// version check needs no scope, only an identity when auth is on). An
    /// open registry without a policy allows everything at once.
    pub async fn check(
        &self,
        action: &Action,
        headers: &HeaderMap,
        client: IpAddr,
    ) -> Result<Caller, RegistryError> {
        if matches!(self.mode, Mode::Open) && self.policy.is_none() {
            return Ok(Caller {
                subject: Subject::Anonymous,
                grants: None,
            });
        }
        let need = need_of(action);
        let need = need.as_ref();
        let caller = match self.identify(headers).await {
            Ok(caller) => caller,
            Err(refusal) => {
                let (user, reason, error) = match &refusal {
                    Refusal::BadCredentials(user) => {
                        (user.clone(), "invalid credentials".to_string(), None)
                    }
                    Refusal::BadToken(e) => (String::new(), e.to_string(), Some("invalid_token")),
                };
                self.refused(client, &user, need, &reason, true).await;
                return Err(self.challenge(need, headers, error, &reason));
            }
        };
        let presented = headers.contains_key("authorization");
        let allowed = match need {
            None => matches!(self.mode, Mode::Open) || presented,
            Some(need) => self.may(&caller, need),
        };
        if allowed {
            return Ok(caller);
        }
        if !presented && !matches!(self.mode, Mode::Open) {
            // The usual first step of every client: no count, no delay.
            return Err(self.challenge(need, headers, None, "authentication required"));
        }
        self.refused(client, caller.subject.name(), need, "access denied", false)
            .await;
        match self.mode {
            Mode::Bearer { .. } => Err(self.challenge(
                need,
                headers,
                Some("insufficient_scope"),
                "insufficient scope",
            )),
            _ => Err(denied(need)),
        }
    }

    /// Whether `caller` may do what `need` asks: its token's grant (token
    /// mode) and the policy both allow it.
    pub fn may(&self, caller: &Caller, need: &Need) -> bool {
        let policy = self
            .policy
            .as_ref()
            .map(|policy| policy.allows(&caller.subject, need));
        match (&self.mode, &caller.grants) {
            (Mode::Bearer { .. }, Some(grants)) => {
                grants.iter().any(|g| g.grants(need)) && policy.unwrap_or(true)
            }
            // Without a token (token mode), without credentials or with a
            // user (htpasswd), or with no auth at all: the policy decides;
            // without one, users may do anything and anonymous callers
            // nothing, unless the registry is open.
            (mode, _) => policy.unwrap_or(match mode {
                Mode::Open => true,
                Mode::Basic { .. } => matches!(caller.subject, Subject::User(_)),
                Mode::Bearer { .. } => false,
            }),
        }
    }

    async fn identify(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        let anonymous = Caller {
            subject: Subject::Anonymous,
            grants: None,
        };
        let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return Ok(anonymous);
        };
        match &self.mode {
            Mode::Open => Ok(anonymous),
            Mode::Basic { users, .. } => {
                let (user, password) = basic_credentials(value)
                    .ok_or_else(|| Refusal::BadCredentials(String::new()))?;
                if users.verify(&user, &password).await {
                    Ok(Caller {
                        subject: Subject::User(user),
                        grants: None,
                    })
                } else {
                    Err(Refusal::BadCredentials(user))
                }
            }
            Mode::Bearer {
                service, verifier, ..
            } => {
                let Some(token) = strip_scheme(value, "bearer") else {
                    return Err(Refusal::BadToken(TokenError::Malformed));
                };
                let claims = verifier
                    .verify(token.trim(), service)
                    .map_err(Refusal::BadToken)?;
                Ok(Caller {
                    subject: if claims.sub.is_empty() {
                        Subject::Anonymous
                    } else {
                        Subject::User(claims.sub)
                    },
                    grants: Some(claims.access),
                })
            }
        }
    }

    /// Logs, counts and delays a refused login at the token endpoint.
    pub async fn refused_login(&self, client: IpAddr, user: &str, reason: &str) {
        self.refused(client, user, None, reason, true).await;
    }

    /// Logs and counts a refusal, and delays one of bad credentials or a
    /// bad token. An action refused to a caller who is who they say
    /// (`insufficient_scope` is how a client learns to ask for a new
    /// token) is logged and counted, never slowed.
    async fn refused(
        &self,
        client: IpAddr,
        user: &str,
        need: Option<&Need>,
        reason: &str,
        bad_credentials: bool,
    ) {
        let counted = if bad_credentials {
            self.failures.record(client)
        } else {
            self.failures.record_denial()
        };
        tracing::warn!(
            target: "rregistry::auth",
            %client,
            user,
            action = need.map(Need::verb_name).unwrap_or("login"),
            repository = need.and_then(Need::repository).unwrap_or(""),
            reason,
            client_failures = counted.client,
            total_failures = counted.total,
            "request refused"
        );
        if !counted.delay.is_zero() {
            tokio::time::sleep(counted.delay).await;
        }
    }

    /// The 401 the mode calls for.
    fn challenge(
        &self,
        need: Option<&Need>,
        headers: &HeaderMap,
        error: Option<&str>,
        message: &str,
    ) -> RegistryError {
        let value = match &self.mode {
            Mode::Open => None,
            Mode::Basic { realm, .. } => Some(format!("Basic realm={}", quote(realm))),
            Mode::Bearer {
                realm,
                service,
                autoredirect,
                ..
            } => {
                let realm = if *autoredirect {
                    redirected_realm(realm, headers)
                } else {
                    realm.clone()
                };
                let mut value =
                    format!("Bearer realm={},service={}", quote(&realm), quote(service));
                if let Some(need) = need {
                    value.push_str(&format!(",scope={}", quote(&need.challenge_scope())));
                }
                if let Some(error) = error {
                    value.push_str(&format!(",error={}", quote(error)));
                }
                Some(value)
            }
        };
        let mut err = RegistryError::new(Code::Unauthorized, message.to_string());
        if let Some(need) = need {
            err = err.with_detail(detail(need));
        }
        match value {
            Some(value) => err.with_header("www-authenticate", value),
            None => err,
        }
    }
}

fn denied(need: Option<&Need>) -> RegistryError {
    let err = RegistryError::new(Code::Denied, "requested access to the resource is denied");
    match need {
        Some(need) => err.with_detail(detail(need)),
        None => err,
    }
}

fn detail(need: &Need) -> serde_json::Value {
    match need {
        Need::Repository { name, verb } => {
            json!([{"Type": "repository", "Name": name, "Action": verb.as_str()}])
        }
        Need::Catalog => json!([{"Type": "registry", "Name": "catalog", "Action": "*"}]),
    }
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `value` without its scheme word (case-insensitive), if it has it.
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (word, rest) = value.trim().split_once(' ')?;
    word.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// The user and password of a `Basic` header value.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    let encoded = strip_scheme(value, "basic")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The path part of the realm URL (`/token` for `https://host/token`).
fn realm_path(realm: &str) -> String {
    let rest = realm.split_once("://").map(|(_, r)| r).unwrap_or(realm);
    match rest.find('/') {
        Some(i) => rest[i..]
            .split(['?', '#'])
            .next()
            .unwrap_or("/")
            .to_string(),
        None => "/".to_string(),
    }
}

/// The realm with its host replaced by the one the client used.
fn redirected_realm(realm: &str, headers: &HeaderMap) -> String {
    let Some(host) = headers.get("host").and_then(|h| h.to_str().ok()) else {
        return realm.to_string();
    };
    let scheme = realm.split_once("://").map(|(s, _)| s).unwrap_or("https");
    format!("{scheme}://{host}{}", realm_path(realm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_paths_and_credentials() {
        assert_eq!(realm_path("https://reg.example/auth/token"), "/auth/token");
        assert_eq!(realm_path("http://127.0.0.1:5000/token?x=1"), "/token");
        assert_eq!(realm_path("http://host"), "/");
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:pa:ss")
        );
        assert_eq!(
            basic_credentials(&value),
            Some(("alice".into(), "pa:ss".into()))
        );
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Bearer abc"), None);
        let mut headers = HeaderMap::new();
        headers.insert("host", "registry.local:5000".parse().unwrap());
        assert_eq!(
            redirected_realm("https://other/token", &headers),
            "https://registry.local:5000/token"
        );
    }
}
