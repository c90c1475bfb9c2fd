//! Docker's word rules for Dockerfile arguments: whitespace splits words,
//! single quotes keep everything, double quotes keep spaces but expand,
//! the escape character takes the next character literally, and
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alternative}` expand
//! (an unset variable to nothing). Quotes are removed.

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WordError {
    #[error("unterminated {0} quote")]
    Unterminated(&'static str),
    #[error("unterminated ${{...}} or a bad substitution in {0:?}")]
    BadSubstitution(String),
    #[error("substitutions nested more than {MAX_NESTING} deep")]
    TooDeep,
}

/// How deep `${A:-${B:-...}}` may nest. Each level re-reads the text
/// inside it, so the cost is this times the text's length.
pub const MAX_NESTING: usize = 16;

/// How a variable's value is found (`None`: unset).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Splits into words, with no expansion (`$` kept as written).
pub fn split_words(text: &str, escape: char) -> Result<Vec<String>, WordError> {
    Lexer::new(text, escape, None).words()
}

/// Splits into words, expanding variables through `lookup`.
pub fn expand_words(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, WordError> {
    Lexer::new(text, escape, Some(lookup)).words()
}

/// One word (whitespace kept), expanding variables through `lookup`.
pub fn expand_word(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    nested_word(text, escape, lookup, 0)
}

/// [`expand_word`] at `depth` levels of `${...:-...}` inside another word.
fn nested_word(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, WordError> {
    if depth > MAX_NESTING {
        return Err(WordError::TooDeep);
    }
    let mut lexer = Lexer::new(text, escape, Some(lookup));
    lexer.single = true;
    lexer.depth = depth;
    Ok(lexer.words()?.into_iter().next().unwrap_or_default())
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: Option<Lookup<'a>>,
    single: bool,
    /// How many substitutions this text is nested in.
    depth: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &str, escape: char, lookup: Option<Lookup<'a>>) -> Lexer<'a> {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            escape,
            lookup,
            single: false,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    fn words(&mut self) -> Result<Vec<String>, WordError> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut started = false;
        while let Some(c) = self.next() {
            if c.is_whitespace() && !self.single {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
                continue;
            }
            started = true;
            if c == self.escape {
                match self.next() {
                    Some(n) => word.push(n),
                    None => word.push(c),
                }
            } else if c == '\'' {
                loop {
                    match self.next() {
                        Some('\'') => break,
                        Some(n) => word.push(n),
                        None => return Err(WordError::Unterminated("single")),
                    }
                }
            } else if c == '"' {
                loop {
                    match self.next() {
                        Some('"') => break,
                        Some(n) if n == self.escape => match self.peek() {
                            Some(m) if m == '"' || m == '$' || m == self.escape => {
                                self.pos += 1;
                                word.push(m);
                            }
                            _ => word.push(n),
                        },
                        Some('$') => word.push_str(&self.dollar()?),
                        Some(n) => word.push(n),
                        None => return Err(WordError::Unterminated("double")),
                    }
                }
            } else if c == '$' {
                word.push_str(&self.dollar()?);
            } else {
                word.push(c);
            }
        }
        if started || (self.single && words.is_empty()) {
            words.push(word);
        }
        Ok(words)
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            name.push(c);
            self.pos += 1;
        }
        name
    }

    /// After a `$`: a substitution, or the `$` itself when expansion is off.
    fn dollar(&mut self) -> Result<String, WordError> {
        let Some(lookup) = self.lookup else {
            return Ok("$".into());
        };
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                let value = lookup(&name);
                match self.next() {
                    Some('}') if !name.is_empty() => Ok(value.unwrap_or_default()),
                    Some(':') => {
                        let op = self.next();
                        let mut word = String::new();
                        let mut depth = 0;
                        loop {
                            match self.next() {
                                Some('}') if depth == 0 => break,
                                Some('}') => {
                                    depth -= 1;
                                    word.push('}');
                                }
                                Some('$') => {
                                    if self.peek() == Some('{') {
                                        depth += 1;
                                    }
                                    word.push('$');
                                }
                                Some(c) => word.push(c),
                                None => return Err(WordError::BadSubstitution(name)),
                            }
                        }
                        let inner = nested_word(&word, self.escape, lookup, self.depth + 1)?;
                        let set = value.as_deref().is_some_and(|v| !v.is_empty());
                        match op {
                            Some('-') => Ok(if set {
                                value.unwrap_or_default()
                            } else {
                                inner
                            }),
                            Some('+') => Ok(if set { inner } else { String::new() }),
                            _ => Err(WordError::BadSubstitution(name)),
                        }
                    }
                    _ => Err(WordError::BadSubstitution(name)),
                }
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok(lookup(&name).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("one".into()),
            "S" => Some("two words".into()),
            "E" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_and_splits_as_docker() {
        let w = |t: &str| expand_words(t, '\\', &env).unwrap();
        assert_eq!(w("$A ${A}x"), ["one", "onex"]);
        assert_eq!(
            w("${NOPE:-dflt} ${A:-dflt} ${E:-empty}"),
            ["dflt", "one", "empty"]
        );
        assert_eq!(w("${A:+alt} x${NOPE:+alt}"), ["alt", "x"]);
        assert_eq!(w("'$A' \"$A b\" \\$A"), ["$A", "one b", "$A"]);
        assert_eq!(w("k=\"v w\" k2=v"), ["k=v w", "k2=v"]);
        assert_eq!(expand_word("/p/$S", '\\', &env).unwrap(), "/p/two words");
        assert_eq!(expand_words("a`$A", '`', &env).unwrap(), ["a$A"]);
        assert_eq!(
            split_words("'open", '\\').unwrap_err(),
            WordError::Unterminated("single")
        );
        assert!(expand_words("${A", '\\', &env).is_err());
    }

    /// Found with the `words` fuzz target (a long input written by hand:
    /// a timeout): each `${A:-...}`
    /// level re-read the text inside it, so 20,000 nested levels (140 KB
    /// of Dockerfile) ran for minutes (and recursed as deep).
    #[test]
    fn deep_nesting_is_refused() {
        let nested = |n: usize| format!("{}x{}", "${A:-".repeat(n), "}".repeat(n));
        assert_eq!(
            expand_words(&nested(MAX_NESTING), '\\', &env).unwrap(),
            ["one"]
        );
        assert_eq!(
            expand_words(&nested(20_000), '\\', &env).unwrap_err(),
            WordError::TooDeep
        );
        assert_eq!(expand_word("${N:-${N:-${A}}}", '\\', &env).unwrap(), "one");
    }
}
