//! The Dockerfile language as docker's classic builder reads it: parser
//! directives (`# escape=`, `# syntax=`), comments, line continuations,
//! instructions with their `--flags`, and the exec (JSON) or shell form
//! of their arguments. Every instruction is checked here, so a bad file
//! stops the build with its line before any step runs.

use super::words::{split_words, WordError};

/// Why a Dockerfile cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("Dockerfile line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// The arguments of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// `["a", "b"]`.
    Exec(Vec<String>),
    /// Anything else, as written (continuations joined).
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// First line of the instruction in the file.
    pub line: usize,
    /// Upper case: `RUN`, `COPY`, ...
    pub keyword: String,
    /// `--name=value` flags, in order.
    pub flags: Vec<(String, String)>,
    pub args: Args,
    /// The instruction as written, for messages and history.
    pub original: String,
}

impl Instruction {
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The arguments as text (an exec form joined by spaces).
    pub fn text(&self) -> String {
        match &self.args {
            Args::Exec(list) => list.join(" "),
            Args::Shell(text) => text.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub escape: char,
    pub instructions: Vec<Instruction>,
}

const KEYWORDS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// Which flags an instruction takes.
fn allowed_flags(keyword: &str) -> &'static [&'static str] {
    match keyword {
        "FROM" => &["platform"],
        "COPY" => &["from", "chown", "chmod"],
        "ADD" => &["chown", "chmod"],
        "RUN" => &[],
        "HEALTHCHECK" => &["interval", "timeout", "start-period", "retries"],
        _ => &[],
    }
}

fn error(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut escape = '\\';
    let mut index = 0;
    // Parser directives: only at the very top, before any comment, blank line or instruction.
    while let Some(line) = lines.get(index) {
        let Some(body) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = body.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        if !key.chars().all(|c| c.is_ascii_alphabetic()) || key.is_empty() {
            break;
        }
        match key.as_str() {
            "escape" => {
                escape = match value.trim() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(error(
                            index + 1,
                            format!("invalid escape token {other:?}: only \\ and ` are allowed"),
                        ))
                    }
                }
            }
            "syntax" => {} // a frontend image: accepted, not used by the classic builder
            _ => break,
        }
        index += 1;
    }

    let mut instructions = Vec::new();
    while index < lines.len() {
        let start = index;
        let first = lines[index].trim();
        index += 1;
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        // Join continuations; comment and blank lines inside are dropped.
        let mut logical = String::new();
        let mut current = first.to_string();
        loop {
            let trimmed = current.trim_end();
            if let Some(body) = trimmed.strip_suffix(escape) {
                logical.push_str(body);
                let mut next = None;
                while index < lines.len() {
                    // Continuation lines keep their leading whitespace, as docker's.
                    let candidate = lines[index];
                    index += 1;
                    if candidate.trim_start().starts_with('#') || candidate.trim().is_empty() {
                        continue;
                    }
                    next = Some(candidate.to_string());
                    break;
                }
                match next {
                    Some(line) => current = line,
                    None => break,
                }
            } else {
                logical.push_str(trimmed);
                break;
            }
        }
        instructions.push(instruction(start + 1, &logical, escape)?);
    }
    if !instructions.iter().any(|i| i.keyword == "FROM") {
        return Err(error(
            lines.len().max(1),
            "no FROM instruction: a Dockerfile must start from an image or scratch",
        ));
    }
    if let Some(first) = instructions.iter().find(|i| i.keyword != "ARG") {
        if first.keyword != "FROM" {
            return Err(error(
                first.line,
                format!(
                    "{} before the first FROM (only ARG may come before it)",
                    first.keyword
                ),
            ));
        }
    }
    Ok(Dockerfile {
        escape,
        instructions,
    })
}

fn word_error(line: usize) -> impl Fn(WordError) -> ParseError {
    move |e| error(line, e.to_string())
}

/// Parses one logical line.
pub fn instruction(line: usize, text: &str, escape: char) -> Result<Instruction, ParseError> {
    let text = text.trim();
    let (keyword, mut rest) = match text.split_once(char::is_whitespace) {
        Some((k, r)) => (k.to_ascii_uppercase(), r.trim_start()),
        None => (text.to_ascii_uppercase(), ""),
    };
    if !KEYWORDS.contains(&keyword.as_str()) {
        return Err(error(line, format!("unknown instruction: {keyword}")));
    }
    let mut flags = Vec::new();
    while let Some(flag) = rest.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        let (name, value) = flag[..end].split_once('=').unwrap_or((&flag[..end], ""));
        if !allowed_flags(&keyword).contains(&name) {
            return Err(error(
                line,
                format!("unknown flag: --{name} (for {keyword})"),
            ));
        }
        flags.push((name.to_string(), value.to_string()));
        rest = flag[end..].trim_start();
    }
    let exec_form = matches!(
        keyword.as_str(),
        "RUN" | "CMD" | "ENTRYPOINT" | "SHELL" | "COPY" | "ADD" | "VOLUME"
    );
    let args = match serde_json::from_str::<Vec<String>>(rest) {
        Ok(list) if exec_form && rest.starts_with('[') => Args::Exec(list),
        _ => Args::Shell(rest.to_string()),
    };
    let instruction = Instruction {
        line,
        keyword,
        flags,
        args,
        original: text.to_string(),
    };
    check(&instruction, escape)?;
    Ok(instruction)
}

/// What each instruction needs of its arguments.
fn check(i: &Instruction, escape: char) -> Result<(), ParseError> {
    let line = i.line;
    let words = || match &i.args {
        Args::Exec(list) => Ok(list.clone()),
        Args::Shell(text) => split_words(text, escape).map_err(word_error(line)),
    };
    let need = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(error(line, format!("{} {what}", i.keyword)))
        }
    };
    match i.keyword.as_str() {
        "FROM" => {
            let w = words()?;
            need(
                w.len() == 1 || (w.len() == 3 && w[1].eq_ignore_ascii_case("as")),
                "takes an image and optionally AS name",
            )
        }
        "COPY" | "ADD" => need(
            words()?.len() >= 2,
            "needs at least a source and a destination",
        ),
        "RUN" => need(!i.text().trim().is_empty(), "needs a command"),
        "SHELL" => need(
            matches!(i.args, Args::Exec(ref l) if !l.is_empty()),
            "requires the arguments to be in JSON form",
        ),
        "ENV" | "LABEL" => {
            let w = words()?;
            need(!w.is_empty(), "needs at least one name and value")?;
            if w[0].contains('=') {
                need(
                    w.iter().all(|p| p.contains('=') && !p.starts_with('=')),
                    "has a part without =",
                )
            } else {
                need(
                    w.len() >= 2 && i.keyword == "ENV",
                    "needs a name and a value",
                )
            }
        }
        "ARG" => {
            let w = words()?;
            need(
                w.len() == 1 && !w[0].starts_with('='),
                "takes exactly one name (with an optional =default)",
            )
        }
        "EXPOSE" => need(!words()?.is_empty(), "needs at least one port"),
        "USER" | "WORKDIR" | "STOPSIGNAL" | "MAINTAINER" => {
            need(!i.text().trim().is_empty(), "needs an argument")
        }
        "VOLUME" => need(!words()?.is_empty(), "needs at least one path"),
        "ONBUILD" => {
            // The trigger's keyword is checked before the trigger is parsed,
            // so `ONBUILD ONBUILD ...` never recurses (a long chain of them
            // took memory quadratic in the line).
            let text = i.text();
            let keyword = text
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            need(
                !matches!(keyword.as_str(), "ONBUILD" | "FROM" | "MAINTAINER"),
                "cannot trigger ONBUILD, FROM or MAINTAINER",
            )?;
            instruction(line, &text, escape).map(drop)
        }
        "HEALTHCHECK" => {
            let text = i.text();
            let first = text
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            need(
                first == "NONE" || first == "CMD",
                "takes NONE or CMD command",
            )
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_directives_comments_and_continuations() {
        let file = parse(
            "# syntax=docker/dockerfile:1\n# escape=`\n# a comment\nFROM scratch AS base\nRUN echo a `\n  # dropped comment\n  && echo b\nCOPY --chown=1:2 [\"a\", \"b\"]\ncmd [\"sh\"]\n",
        )
        .unwrap();
        assert_eq!(file.escape, '`');
        let i = &file.instructions;
        assert_eq!(i.len(), 4);
        assert_eq!(i[1].args, Args::Shell("echo a   && echo b".into()));
        assert_eq!(i[1].line, 5);
        assert_eq!(i[2].flag("chown"), Some("1:2"));
        assert_eq!(i[2].args, Args::Exec(vec!["a".into(), "b".into()]));
        assert_eq!(i[3].keyword, "CMD");
    }

    #[test]
    fn refuses_bad_files_with_their_line() {
        let e = parse("FROM scratch\nFROB x\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "unknown instruction: FROB")
        );
        let e = parse("FROM scratch\nENV A=\"unterminated\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unterminated"), "{e}");
        let e = parse("RUN true\n").unwrap_err();
        assert!(e.message.contains("FROM"), "{e}");
        let e = parse("FROM scratch\nCOPY --bogus=1 a b\n").unwrap_err();
        assert!(e.message.contains("--bogus"), "{e}");
        assert!(parse("FROM scratch\nCOPY onlyone\n").is_err());
        assert!(parse("FROM scratch\nSHELL /bin/sh\n").is_err());
        assert!(parse("FROM scratch\nONBUILD FROM x\n").is_err());
        assert!(parse("ARG V=1\nFROM scratch\n").is_ok());
    }

    /// Found with the `dockerfile` fuzz target (a long input written by
    /// hand: out of memory at libFuzzer's 2 GB limit): a chain of
    /// `ONBUILD ONBUILD ...` was parsed level by level, each level copying
    /// the rest of the line, so 20,000 of them (160 KB) took gigabytes.
    #[test]
    fn a_chain_of_onbuild_is_refused_at_once() {
        let text = format!("FROM scratch\n{}RUN x\n", "ONBUILD ".repeat(20_000));
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("cannot trigger ONBUILD"), "{e}");
        assert!(parse("FROM scratch\nONBUILD RUN echo hi\n").is_ok());
        assert!(parse("FROM scratch\nONBUILD FROB x\n").is_err());
        assert!(parse("FROM scratch\nonbuild maintainer me\n").is_err());
    }
}
