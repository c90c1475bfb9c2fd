//! The build context: a directory, its `.dockerignore` (docker's pattern
//! rules: `*`, `?`, `[...]`, `**`, `!` exceptions, the last match wins, a
//! match on a directory covers what is inside), and the sources COPY and
//! ADD name in it (globs, never outside it).

use crate::applier::dirfd::LayerDir;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("forbidden path outside the build context: {0}")]
    Outside(String),
    #[error("COPY failed: file not found in build context or excluded by .dockerignore: stat {0}: file does not exist")]
    NotFound(String),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One `.dockerignore` line.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exception: bool,
}

#[derive(Debug, Clone)]
pub struct Context {
    pub root: PathBuf,
    patterns: Vec<Pattern>,
}

/// Docker's `filepath.Clean` of a pattern or source, without a leading `/`.
pub(crate) fn clean(text: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// Matches `name` against a glob: `*` and `?` stop at `/`, `**` does not,
/// `[a-z]` and `[!a]` classes, `\` escapes.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        let mut i = 1;
        let negate = matches!(p.get(1), Some('!') | Some('^'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while let Some(&pc) = p.get(i) {
            if pc == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
                if pc <= c && c <= p[i + 2] {
                    matched = true;
                }
                i += 3;
            } else {
                if pc == c {
                    matched = true;
                }
                i += 1;
            }
        }
        None
    }
    // Whether p[pi..] matches n[ni..], one column of ni at a time from
    // the end (`next` is column ni + 1): time linear in the product of the
    // lengths, memory in the pattern's, whatever the stars (a recursive
    // matcher backtracked exponentially on `*a*a*a*b` or `*****`).
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let mut next = vec![false; p.len() + 1];
    let mut current = vec![false; p.len() + 1];
    for ni in (0..=n.len()).rev() {
        let c = n.get(ni).copied();
        let plain = c.filter(|c| *c != '/');
        current[p.len()] = c.is_none();
        for pi in (0..p.len()).rev() {
            current[pi] = match p[pi] {
                '*' if p.get(pi + 1) == Some(&'*') => {
                    let rest = if p.get(pi + 2) == Some(&'/') {
                        pi + 3
                    } else {
                        pi + 2
                    };
                    current[rest] || (c.is_some() && next[pi])
                }
                '*' => current[pi + 1] || (plain.is_some() && next[pi]),
                '?' => plain.is_some() && next[pi + 1],
                '[' => match plain.and_then(|c| class(&p[pi..], c)) {
                    Some((true, used)) => next[pi + used],
                    _ => false,
                },
                '\\' if pi + 1 < p.len() => c == Some(p[pi + 1]) && next[pi + 2],
                literal => c == Some(literal) && next[pi + 1],
            };
        }
        std::mem::swap(&mut current, &mut next);
    }
    next[0]
}

impl Context {
    /// The context at `root`, with its `.dockerignore` if it has one.
    pub fn open(root: &Path) -> Result<Context, ContextError> {
        let ignore = root.join(".dockerignore");
        let mut patterns = Vec::new();
        if let Ok(text) = std::fs::read_to_string(&ignore) {
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (exception, body) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let text = clean(body);
                if !text.is_empty() {
                    patterns.push(Pattern { text, exception });
                }
            }
        }
        Ok(Context {
            root: root.to_path_buf(),
            patterns,
        })
    }

    /// Whether `.dockerignore` excludes `relative` (a `/`-separated path):
    /// the last pattern matching it or one of its parent directories decides.
    pub fn excluded(&self, relative: &str) -> bool {
        let relative = clean(relative);
        let mut excluded = false;
        for pattern in &self.patterns {
            let mut matched = glob_match(&pattern.text, &relative);
            if !matched {
                let mut parent = relative.as_str();
                while let Some((head, _)) = parent.rsplit_once('/') {
                    if glob_match(&pattern.text, head) {
                        matched = true;
                        break;
                    }
                    parent = head;
                }
            }
            if matched {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether an excluded directory `relative` still holds a path an
    /// exception (`!dir/keep`) brings back.
    pub fn includes_under(&self, relative: &str) -> std::io::Result<bool> {
        if !self.patterns.iter().any(|p| p.exception) {
            return Ok(false);
        }
        let found = self.walk(&clean(relative)).map_err(|e| match e {
            ContextError::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        })?;
        Ok(!found.is_empty())
    }

    /// Every path in the context, relative, sorted, not excluded.
    pub fn walk(&self, under: &str) -> Result<Vec<String>, ContextError> {
        let mut found = Vec::new();
        let mut stack = vec![under.to_string()];
        while let Some(dir) = stack.pop() {
            let path = self.root.join(&dir);
            let mut names: Vec<String> = std::fs::read_dir(&path)
                .map_err(io_at(&path))?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in names {
                let relative = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                // An excluded directory may still hold exceptions: look inside.
                let is_dir = std::fs::symlink_metadata(self.root.join(&relative))
                    .map(|m| m.is_dir())
                    .unwrap_or(false);
                if !self.excluded(&relative) {
                    found.push(relative.clone());
                }
                if is_dir {
                    stack.push(relative);
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// `relative` with the symlinks of its directories followed inside the
    /// context (as docker reads a context: a link to `/etc` leads to the
    /// context's own `etc`), never out of it; the last name stays as it
    /// is (a link there is copied as a link).
    fn in_context(&self, relative: &str) -> Result<String, ContextError> {
        let (parent, name) = relative.rsplit_once('/').unwrap_or(("", relative));
        let root = LayerDir::open_engine_path(&self.root).map_err(|e| ContextError::Io {
            path: self.root.clone(),
            source: e.into(),
        })?;
        let resolved = root
            .resolve(Path::new(parent))
            .map_err(|e| ContextError::Io {
                path: self.root.join(parent),
                source: std::io::Error::other(e.to_string()),
            })?;
        let mut parts: Vec<String> = resolved
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        parts.push(name.to_string());
        Ok(parts.join("/"))
    }

    /// The context paths a COPY/ADD source names: itself, or what its glob matches.
    pub fn sources(&self, source: &str) -> Result<Vec<String>, ContextError> {
        let cleaned = clean(source);
        if Path::new(&cleaned)
            .components()
            .any(|c| c == Component::ParentDir)
        {
            return Err(ContextError::Outside(source.to_string()));
        }
        let has_glob = cleaned.contains(['*', '?', '[']);
        if !has_glob {
            if cleaned.is_empty() {
                return Ok(vec![String::new()]);
            }
            let cleaned = self.in_context(&cleaned)?;
            let path = self.root.join(&cleaned);
            if std::fs::symlink_metadata(&path).is_err() || self.excluded(&cleaned) {
                return Err(ContextError::NotFound(cleaned));
            }
            return Ok(vec![cleaned]);
        }
        let depth = cleaned.split('/').count();
        let matches: Vec<String> = self
            .walk("")?
            .into_iter()
            .filter(|p| p.split('/').count() == depth && glob_match(&cleaned, p))
            .collect();
        if matches.is_empty() {
            return Err(ContextError::NotFound(cleaned));
        }
        Ok(matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_go_rules() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "d/a.txt"));
        assert!(glob_match("**/*.txt", "d/e/a.txt"));
        assert!(glob_match("**/*.txt", "a.txt"));
        assert!(glob_match("d/**", "d/e/f"));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "a/c"));
        assert!(glob_match("[a-c]x", "bx") && !glob_match("[!a-c]x", "bx"));
        assert!(glob_match("\\*x", "*x") && !glob_match("\\*x", "ax"));
        assert!(glob_match("d/**/f", "d/f") && glob_match("d/**/f", "d/a/b/f"));
        assert!(!glob_match("[", "[") && glob_match("[]]", "]"));
        assert!(!glob_match("a[", "ab") && !glob_match("*", "a/b"));
    }

    /// Found by the `dockerignore` fuzz target (a timeout): the recursive
    /// matcher backtracked exponentially, so one `.dockerignore` line like
    /// these held `rctl build` for minutes.
    #[test]
    fn globs_never_backtrack() {
        let name = "a".repeat(60);
        assert!(!glob_match(&format!("{}b", "*a".repeat(30)), &name));
        assert!(!glob_match(&format!("{}b", "*".repeat(60)), &name));
        assert!(!glob_match(
            &format!("{}b", "**a".repeat(30)),
            &"a/".repeat(30)
        ));
        assert!(glob_match(&"*a".repeat(30), &name));
    }

    #[test]
    fn dockerignore_exceptions_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("logs/keep")).unwrap();
        for f in [
            "a.md",
            "b.md",
            "README.md",
            "logs/x.log",
            "logs/keep/y.log",
            "main.rs",
        ] {
            std::fs::write(root.join(f), f).unwrap();
        }
        std::fs::write(
            root.join(".dockerignore"),
            "# docs\n*.md\n!README.md\nlogs\n!logs/keep\n",
        )
        .unwrap();
        let context = Context::open(root).unwrap();
        assert!(context.excluded("a.md") && !context.excluded("README.md"));
        assert!(context.excluded("logs/x.log") && !context.excluded("logs/keep/y.log"));
        let all = context.walk("").unwrap();
        assert_eq!(
            all,
            [
                ".dockerignore",
                "README.md",
                "logs/keep",
                "logs/keep/y.log",
                "main.rs"
            ]
        );
        assert!(matches!(
            context.sources("../etc/passwd"),
            Err(ContextError::Outside(_))
        ));
        assert!(matches!(
            context.sources("a.md"),
            Err(ContextError::NotFound(_))
        ));
        assert_eq!(context.sources("*.rs").unwrap(), ["main.rs"]);
    }

    #[test]
    fn sources_do_not_leave_the_context_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("context");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "the context's own").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("hostetc")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("up")).unwrap();
        let context = Context::open(&root).unwrap();
        // Followed inside the context, as docker reads it.
        assert_eq!(context.sources("hostetc/passwd").unwrap(), ["etc/passwd"]);
        assert!(matches!(
            context.sources("up/etc/hostname"),
            Err(ContextError::NotFound(_))
        ));
        // A link named last is a link (copied as one).
        assert_eq!(context.sources("hostetc").unwrap(), ["hostetc"]);
    }

    #[test]
    fn an_excluded_directory_is_entered_only_for_exceptions() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("logs/keep")).unwrap();
        std::fs::create_dir_all(root.join("cache")).unwrap();
        std::fs::write(root.join("logs/keep/x.log"), "x").unwrap();
        std::fs::write(root.join("cache/blob"), "x").unwrap();
        std::fs::write(root.join(".dockerignore"), "logs\n!logs/keep\ncache/\n").unwrap();
        let context = Context::open(root).unwrap();
        assert!(context.includes_under("logs").unwrap());
        assert!(!context.includes_under("cache").unwrap());
    }
}
