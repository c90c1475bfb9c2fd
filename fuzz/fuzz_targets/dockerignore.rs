#![no_main]
//! `.dockerignore` patterns (`rengine::build::context`): the file, then
//! whether paths are excluded. Input: the `.dockerignore` text, a line
//! `%%paths`, then one path per line. Never panics and never takes long
//! (libFuzzer's `-timeout` catches backtracking); a pattern with no glob
//! characters excludes the path it names and what is under it, unless a
//! later `!` line speaks of it too.

use libfuzzer_sys::fuzz_target;
use rengine::build::context::{glob_match, Context};

fuzz_target!(|data: &[u8]| {
    let Some(text) = rfuzz::text(data) else {
        return;
    };
    let (ignore, paths) = text.split_once("\n%%paths\n").unwrap_or((text, ""));
    let dir = rfuzz::scratch("rfuzz-context-");
    std::fs::write(dir.path().join(".dockerignore"), ignore).expect("scratch .dockerignore");
    let context = Context::open(dir.path()).expect("a context opens");
    let patterns: Vec<&str> = ignore.lines().map(str::trim).collect();
    for path in paths.lines() {
        let excluded = context.excluded(path);
        for pattern in &patterns {
            let _ = glob_match(pattern, path);
        }
        // The last line naming exactly this (clean, literal) path decides.
        let literal = |p: &str| {
            !p.is_empty()
                && !p.contains(['*', '?', '[', '\\', '!', '#'])
                && !p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        };
        if literal(path) && patterns.last() == Some(&path) {
            assert!(excluded, "{path:?} is the last pattern yet not excluded");
        }
    }
});
