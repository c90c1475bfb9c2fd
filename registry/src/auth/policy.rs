//! The access policy (`auth.access`): ordered rules, each naming
//! repositories by glob (or the catalog), subjects (users, groups,
//! `anonymous`, `authenticated`) and the verbs it grants. The first rule
//! matching both the resource and the subject decides; an empty `actions`
//! denies; no matching rule denies. Globs are compiled once, here, into
//! [`Glob`] matchers that are linear in the name.

use super::glob::Glob;
use super::scope::{Need, Verb};
use super::Subject;
use std::collections::{BTreeMap, BTreeSet};

pub struct Policy {
    rules: Vec<Rule>,
}

struct Rule {
    repositories: Vec<Glob>,
    catalog: bool,
    users: BTreeSet<String>,
    anonymous: bool,
    authenticated: bool,
    verbs: BTreeSet<Verb>,
}

impl Policy {
    /// Builds the policy from validated configuration; groups are resolved
    /// to their members here.
    pub fn new(access: &rconfig::auth::Access) -> Policy {
        let rules = access
            .rules
            .iter()
            .map(|rule| Rule {
                repositories: rule.repositories.iter().map(|g| Glob::new(g)).collect(),
                catalog: rule.catalog,
                users: rule
                    .users
                    .iter()
                    .cloned()
                    .chain(rule.groups.iter().flat_map(|g| members(&access.groups, g)))
                    .collect(),
                anonymous: rule.anonymous,
                authenticated: rule.authenticated,
                verbs: rule
                    .actions
                    .iter()
                    .flat_map(|a| Verb::parse_set(a))
                    .collect(),
            })
            .collect();
        Policy { rules }
    }

    /// Whether `subject` may do what `need` asks.
    pub fn allows(&self, subject: &Subject, need: &Need) -> bool {
        match need {
            Need::Catalog => self.decide(subject, |rule| rule.catalog, |_| true),
            Need::Repository { name, verb } => self.decide(
                subject,
                |rule| rule.matches(name),
                |verbs| verbs.contains(verb),
            ),
        }
    }

    /// The verbs granted on repository `name` (for the token server).
    pub fn verbs_on(&self, subject: &Subject, name: &str) -> BTreeSet<Verb> {
        self.rules
            .iter()
            .find(|rule| rule.subject_matches(subject) && rule.matches(name))
            .map(|rule| rule.verbs.clone())
            .unwrap_or_default()
    }

    fn decide(
        &self,
        subject: &Subject,
        resource: impl Fn(&Rule) -> bool,
        grants: impl Fn(&BTreeSet<Verb>) -> bool,
    ) -> bool {
        self.rules
            .iter()
            .find(|rule| rule.subject_matches(subject) && resource(rule))
            .is_some_and(|rule| grants(&rule.verbs))
    }
}

impl Rule {
    fn matches(&self, name: &str) -> bool {
        self.repositories.iter().any(|glob| glob.matches(name))
    }

    fn subject_matches(&self, subject: &Subject) -> bool {
        match subject {
            Subject::Anonymous => self.anonymous,
            Subject::User(name) => self.authenticated || self.users.contains(name),
        }
    }
}

fn members(groups: &BTreeMap<String, Vec<String>>, group: &str) -> Vec<String> {
    groups.get(group).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_decides_and_default_denies() {
        let yaml = r#"
groups:
  admins: [root]
rules:
  - repositories: ["team-a/**"]
    users: [mallory]
    actions: []
  - repositories: ["team-a/**"]
    authenticated: true
    actions: [pull, push]
  - repositories: ["**"]
    groups: [admins]
    actions: ["*"]
  - repositories: ["public/*"]
    anonymous: true
    actions: [pull]
  - catalog: true
    groups: [admins]
    actions: ["*"]
"#;
        let access: rconfig::auth::Access = serde_yaml::from_str(yaml).unwrap();
        let policy = Policy::new(&access);
        let user = |n: &str| Subject::User(n.to_string());
        let repo = |name: &str, verb| Need::Repository {
            name: name.into(),
            verb,
        };
        assert!(policy.allows(&user("bob"), &repo("team-a/x", Verb::Push)));
        assert!(!policy.allows(&user("bob"), &repo("team-a/x", Verb::Delete)));
        assert!(!policy.allows(&user("mallory"), &repo("team-a/x", Verb::Pull)));
        assert!(!policy.allows(&user("bob"), &repo("team-b/x", Verb::Pull)));
        assert!(policy.allows(&user("root"), &repo("team-b/x", Verb::Delete)));
        assert!(policy.allows(&Subject::Anonymous, &repo("public/x", Verb::Pull)));
        assert!(!policy.allows(&Subject::Anonymous, &repo("public/x", Verb::Push)));
        assert!(!policy.allows(&Subject::Anonymous, &repo("team-a/x", Verb::Pull)));
        assert!(policy.allows(&user("root"), &Need::Catalog));
        assert!(!policy.allows(&user("bob"), &Need::Catalog));
        assert_eq!(
            policy.verbs_on(&user("bob"), "team-a/x"),
            [Verb::Pull, Verb::Push].into_iter().collect()
        );
    }
}
