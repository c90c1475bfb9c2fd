//! Repository globs of the access policy, compiled once when the policy is
//! built: `**` matches any run of characters (across `/`), `*` any run
//! within one segment, `?` one character other than `/`; everything else
//! matches itself.
//!
//! Matching runs the glob as a set of positions over the name, one byte at
//! a time (a Thompson NFA simulation), so it does at most
//! `(glob tokens + 1) × name length` steps and never backtracks: a rule
//! like `team-*-*-*-*-*-prod` against a 254-byte name costs microseconds,
//! where the recursive matcher it replaces took seconds.

/// One element of a compiled glob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `?`
    One,
    /// `*`
    Segment,
    /// `**`
    Any,
}

impl Token {
    /// Whether this token may match no bytes at all.
    fn may_be_empty(self) -> bool {
        matches!(self, Token::Segment | Token::Any)
    }
}

/// A compiled repository glob.
#[derive(Debug, Clone)]
pub struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    pub fn new(glob: &str) -> Glob {
        let bytes = glob.as_bytes();
        let mut tokens = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            let (token, width) = match (b, bytes.get(i + 1)) {
                (b'*', Some(b'*')) => (Token::Any, 2),
                (b'*', _) => (Token::Segment, 1),
                (b'?', _) => (Token::One, 1),
                (b, _) => (Token::Byte(b), 1),
            };
            tokens.push(token);
            i += width;
        }
        Glob { tokens }
    }

    /// Whether `name` matches the whole glob.
    pub fn matches(&self, name: &str) -> bool {
        self.run(name.as_bytes()).0
    }

    /// Matches, and counts the position updates done (for the tests that
    /// hold the matcher to its linear bound).
    fn run(&self, name: &[u8]) -> (bool, usize) {
        let states = self.tokens.len() + 1;
        let mut current = vec![false; states];
        let mut next = vec![false; states];
        let mut steps = 0usize;
        current[0] = true;
        self.close(&mut current);
        for &c in name {
            next.iter_mut().for_each(|s| *s = false);
            for (at, token) in self.tokens.iter().enumerate() {
                steps += 1;
                if !current[at] {
                    continue;
                }
                match *token {
                    Token::Byte(b) if b == c => next[at + 1] = true,
                    Token::One if c != b'/' => next[at + 1] = true,
                    Token::Segment if c != b'/' => next[at] = true,
                    Token::Any => next[at] = true,
                    _ => {}
                }
            }
            self.close(&mut next);
            std::mem::swap(&mut current, &mut next);
            if !current.iter().any(|&s| s) {
                return (false, steps);
            }
        }
        (current[self.tokens.len()], steps)
    }

    /// Adds the positions reachable by letting `*` and `**` match nothing.
    fn close(&self, states: &mut [bool]) {
        for (at, token) in self.tokens.iter().enumerate() {
            if states[at] && token.may_be_empty() {
                states[at + 1] = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(glob: &str, name: &str) -> bool {
        Glob::new(glob).matches(name)
    }

    #[test]
    fn globs() {
        assert!(matches("team-a/*", "team-a/app"));
        assert!(!matches("team-a/*", "team-a/sub/app"));
        assert!(matches("team-a/**", "team-a/sub/app"));
        assert!(!matches("team-a/**", "team-b/app"));
        assert!(!matches("team-a/*", "team-ab/app"));
        assert!(matches("**", "anything/at/all"));
        assert!(matches("**", ""));
        assert!(matches("app-?", "app-1"));
        assert!(!matches("app-?", "app-12"));
        assert!(!matches("a?b", "a/b"));
        assert!(matches("exact/name", "exact/name"));
        assert!(!matches("exact/name", "exact/name2"));
        assert!(matches("team-*-prod", "team-x-y-prod"));
        assert!(!matches("team-*-prod", "team-x/y-prod"));
        assert!(matches("*/**/app", "a/b/c/app"));
        assert!(matches("*/**/app", "a//app"));
        assert!(!matches("*/**/app", "a/app"));
        assert!(matches("a/**", "a/"));
        assert!(matches("***", "x/y"));
    }

    /// The rule that took seconds per request before: every name is
    /// answered within the linear bound, matched or not.
    #[test]
    fn pathological_rules_are_linear_in_the_name() {
        let glob = Glob::new("team-*-*-*-*-*-prod");
        let tokens = glob.tokens.len();
        let name = format!("team-{}x", "a-".repeat(124));
        assert_eq!(name.len(), 254);
        let (matched, steps) = glob.run(name.as_bytes());
        assert!(!matched);
        assert!(
            steps <= tokens * name.len(),
            "{steps} steps for {tokens} tokens and {} bytes",
            name.len()
        );
        let name = format!("team-{}prod", "a-".repeat(122));
        let (matched, steps) = glob.run(name.as_bytes());
        assert!(matched);
        assert!(steps <= tokens * name.len());
        let (matched, _) = Glob::new("**-**-**-**-**-**-x").run(name.as_bytes());
        assert!(!matched);
    }
}
