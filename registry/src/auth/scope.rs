//! Scopes: what a request needs and what a token grants, in the docker
//! token spec's terms (`repository:NAME:pull,push`, `registry:catalog:*`).

use crate::action::Action;
use serde::{Deserialize, Serialize};

/// One of the actions a repository grant holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    Pull,
    Push,
    Delete,
}

impl Verb {
    pub const ALL: [Verb; 3] = [Verb::Pull, Verb::Push, Verb::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Pull => "pull",
            Verb::Push => "push",
            Verb::Delete => "delete",
        }
    }

    /// Reads an action name; `*` is every verb.
    pub fn parse_set(name: &str) -> Vec<Verb> {
        match name {
            "pull" => vec![Verb::Pull],
            "push" => vec![Verb::Push],
            "delete" => vec![Verb::Delete],
            "*" => Verb::ALL.to_vec(),
            _ => Vec::new(),
        }
    }
}

/// What a request needs: a verb on a repository, or the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    Repository { name: String, verb: Verb },
    Catalog,
}

impl Need {
    /// The scope a client should ask the token server for, as the
    /// challenge's `scope` says it (uploads ask for `pull,push` so one
    /// token serves the whole push, as Distribution does).
    pub fn challenge_scope(&self) -> String {
        match self {
            Need::Repository { name, verb } => {
                let actions = match verb {
                    Verb::Pull => "pull",
                    Verb::Push => "pull,push",
                    Verb::Delete => "delete",
                };
                format!("repository:{name}:{actions}")
            }
            Need::Catalog => "registry:catalog:*".to_string(),
        }
    }

    /// The repository named, if any (for logs).
    pub fn repository(&self) -> Option<&str> {
        match self {
            Need::Repository { name, .. } => Some(name),
            Need::Catalog => None,
        }
    }

    /// The verb, as logs and error details name it.
    pub fn verb_name(&self) -> &'static str {
        match self {
            Need::Repository { verb, .. } => verb.as_str(),
            Need::Catalog => "*",
        }
    }
}

/// What `action` needs; `None` for the version check, which only needs a
/// signed-in client when the registry has auth.
pub fn need_of(action: &Action) -> Option<Need> {
    let repo = |name: &crate::names::RepoName, verb| {
        Some(Need::Repository {
            name: name.to_string(),
            verb,
        })
    };
    match action {
        Action::Base => None,
        Action::Catalog => Some(Need::Catalog),
        Action::ListTags { name }
        | Action::GetManifest { name, .. }
        | Action::GetBlob { name, .. }
        | Action::Referrers { name, .. } => repo(name, Verb::Pull),
        Action::PutManifest { name, .. }
        | Action::StartUpload { name }
        | Action::GetUpload { name, .. }
        | Action::PatchUpload { name, .. }
        | Action::PutUpload { name, .. }
        | Action::CancelUpload { name, .. } => repo(name, Verb::Push),
        Action::DeleteManifest { name, .. } | Action::DeleteBlob { name, .. } => {
            repo(name, Verb::Delete)
        }
    }
}

/// One entry of a token's `access` claim (the docker token spec's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub actions: Vec<String>,
}

impl AccessEntry {
    /// Whether this entry grants `need`.
    pub fn grants(&self, need: &Need) -> bool {
        match need {
            Need::Repository { name, verb } => {
                self.kind == "repository"
                    && self.name == *name
                    && self.actions.iter().any(|a| a == "*" || a == verb.as_str())
            }
            Need::Catalog => {
                self.kind == "registry"
                    && self.name == "catalog"
                    && self.actions.iter().any(|a| a == "*")
            }
        }
    }

    /// Reads a requested scope (`repository:team/app:pull,push`); the name
    /// may hold `:` (a registry host with a port), so the actions are what
    /// follows the last one. `None` for a malformed scope.
    pub fn parse_scope(scope: &str) -> Option<AccessEntry> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(AccessEntry {
            kind: kind.to_string(),
            name: name.to_string(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_grant() {
        let entry = AccessEntry::parse_scope("repository:team-a/app:pull,push").unwrap();
        assert_eq!(entry.name, "team-a/app");
        let pull = Need::Repository {
            name: "team-a/app".into(),
            verb: Verb::Pull,
        };
        let delete = Need::Repository {
            name: "team-a/app".into(),
            verb: Verb::Delete,
        };
        let other = Need::Repository {
            name: "team-a/other".into(),
            verb: Verb::Pull,
        };
        assert!(entry.grants(&pull));
        assert!(!entry.grants(&delete));
        assert!(!entry.grants(&other));
        let catalog = AccessEntry::parse_scope("registry:catalog:*").unwrap();
        assert!(catalog.grants(&Need::Catalog));
        assert!(!entry.grants(&Need::Catalog));
        assert!(AccessEntry::parse_scope("repository").is_none());
        assert!(AccessEntry::parse_scope("repository::pull").is_none());
        assert_eq!(pull.challenge_scope(), "repository:team-a/app:pull");
    }
}
