//! The `auth` section: Distribution's `htpasswd` and `token` modes (one of
//! them at most), our built-in token server (`auth.token.issue`) and our
//! per-repository access policy (`auth.access`).
//!
//! ```yaml
//! auth:
//!   token:
//!     realm: https://registry.example.com/token
//!     service: registry.example.com
//!     issuer: registry.example.com
//!     issue:                       # serve the token endpoint ourselves
//!       key: /var/lib/registry/token.key
//!       htpasswd: /etc/registry/htpasswd
//!   access:
//!     groups:
//!       admins: [alice]
//!     rules:
//!       - repositories: ["team-a/**"]
//!         users: [bob]
//!         actions: [pull, push]
//!       - repositories: ["public/**"]
//!         anonymous: true
//!         actions: [pull]
//! ```

use crate::duration::GoDuration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `auth`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(default)]
    pub htpasswd: Option<Htpasswd>,
    #[serde(default)]
    pub token: Option<Token>,
    /// Our extension: who may do what to which repositories.
    #[serde(default)]
    pub access: Option<Access>,
}

/// `auth.htpasswd`: HTTP Basic against a file of bcrypt entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Htpasswd {
    pub realm: String,
    pub path: PathBuf,
}

/// `auth.token`: Bearer JWTs from a token server, as Distribution reads them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Where clients are sent to get a token.
    pub realm: String,
    /// The `aud` tokens must carry, and the `service` of the challenge.
    pub service: String,
    /// The `iss` tokens must carry.
    pub issuer: String,
    /// PEM certificates whose keys may sign tokens.
    #[serde(default)]
    pub rootcertbundle: Option<PathBuf>,
    /// A JSON Web Key Set whose keys may sign tokens.
    #[serde(default)]
    pub jwks: Option<PathBuf>,
    /// Accepted `alg` values; empty means RS256, ES256 and EdDSA.
    #[serde(default)]
    pub signingalgorithms: Vec<String>,
    /// Rewrite the realm to the host the client used.
    #[serde(default)]
    pub autoredirect: bool,
    /// Our extension: serve the token endpoint at the realm's path.
    #[serde(default)]
    pub issue: Option<Issue>,
}

/// `auth.token.issue`: the built-in token server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issue {
    /// The signing key (PKCS#8 PEM, P-256); made and saved on first start when missing.
    pub key: PathBuf,
    /// The users: an htpasswd file of bcrypt entries.
    pub htpasswd: PathBuf,
    /// Lifetime of an access token (default 5m).
    #[serde(default = "default_expiration")]
    pub expiration: GoDuration,
    /// Lifetime of a refresh token, the identity `docker login` keeps (default 720h).
    #[serde(default = "default_refresh_expiration")]
    pub refreshexpiration: GoDuration,
}

fn default_expiration() -> GoDuration {
    GoDuration(Duration::from_secs(300))
}

fn default_refresh_expiration() -> GoDuration {
    GoDuration(Duration::from_secs(720 * 3600))
}

/// `auth.access`: rules read in order; the first whose repositories and
/// subjects both match a request decides what it grants (an empty
/// `actions` denies). Nothing matching means no access.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// Group name to its members (user names).
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// One access rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Repository globs: `*` matches within one path segment, `**` across
    /// segments (`team-a/**` is every repository under `team-a/`).
    #[serde(default)]
    pub repositories: Vec<String>,
    /// The rule is about `_catalog` (the `registry:catalog:*` scope).
    #[serde(default)]
    pub catalog: bool,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The rule applies to requests without credentials.
    #[serde(default)]
    pub anonymous: bool,
    /// Every signed-in user.
    #[serde(default)]
    pub authenticated: bool,
    /// What the rule grants: `pull`, `push`, `delete`, or `*` (all three).
    #[serde(default)]
    pub actions: Vec<String>,
}

/// The actions a rule may name.
pub const RULE_ACTIONS: [&str; 4] = ["pull", "push", "delete", "*"];

/// Signing algorithms a token may use (asymmetric only: a shared-secret
/// `HS*` or `none` is never accepted).
pub const TOKEN_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl Auth {
    /// Checks what serde cannot: one mode at most, a key source for token
    /// mode, known algorithms and actions, rules with a subject, groups
    /// that exist. `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, message: String| Err((key.to_string(), message));
        if self.htpasswd.is_some() && self.token.is_some() {
            return bad(
                "auth",
                "htpasswd and token are exclusive: configure one".into(),
            );
        }
        if let Some(token) = &self.token {
            if !(token.realm.starts_with("http://") || token.realm.starts_with("https://")) {
                return bad(
                    "auth.token.realm",
                    format!("{:?} is not an http(s) URL", token.realm),
                );
            }
            if token.service.is_empty() || token.issuer.is_empty() {
                return bad("auth.token", "service and issuer must not be empty".into());
            }
            if token.issue.is_none() && token.rootcertbundle.is_none() && token.jwks.is_none() {
                return bad(
                    "auth.token",
                    "no key to verify tokens with: give rootcertbundle, jwks, or issue".into(),
                );
            }
            for alg in &token.signingalgorithms {
                if !TOKEN_ALGORITHMS.contains(&alg.as_str()) {
                    return bad(
                        "auth.token.signingalgorithms",
                        format!(
                            "{alg:?} is not accepted (one of {})",
                            TOKEN_ALGORITHMS.join(", ")
                        ),
                    );
                }
            }
        }
        if let Some(access) = &self.access {
            for (i, rule) in access.rules.iter().enumerate() {
                let key = format!("auth.access.rules[{i}]");
                if rule.repositories.is_empty() != rule.catalog {
                    return bad(&key, "give either repositories or catalog: true".into());
                }
                if rule.users.is_empty()
                    && rule.groups.is_empty()
                    && !rule.anonymous
                    && !rule.authenticated
                {
                    return bad(
                        &key,
                        "names nobody: give users, groups, anonymous or authenticated".into(),
                    );
                }
                if let Some(action) = rule
                    .actions
                    .iter()
                    .find(|a| !RULE_ACTIONS.contains(&a.as_str()))
                {
                    return bad(
                        &format!("{key}.actions"),
                        format!("{action:?} is not one of pull, push, delete, *"),
                    );
                }
                if let Some(group) = rule.groups.iter().find(|g| !access.groups.contains_key(*g)) {
                    return bad(
                        &format!("{key}.groups"),
                        format!("group {group:?} is not defined in auth.access.groups"),
                    );
                }
                if let Some(glob) = rule.repositories.iter().find(|g| g.is_empty()) {
                    return bad(
                        &format!("{key}.repositories"),
                        format!("empty glob {glob:?}"),
                    );
                }
            }
        }
        Ok(())
    }
}
