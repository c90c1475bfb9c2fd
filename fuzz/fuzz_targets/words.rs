#![no_main]
//! Docker's word rules (`rengine::build::words`): splitting and `$VAR`,
//! `${VAR}`, `${VAR:-x}`, `${VAR:+x}` expansion, with either escape
//! character. Never panics; without expansion the words keep every `$`;
//! with variables that are all unset and no `$` in the text, expansion
//! changes nothing.

use libfuzzer_sys::fuzz_target;
use rengine::build::words::{expand_word, expand_words, split_words};

fn lookup(name: &str) -> Option<String> {
    match name {
        "A" => Some("one".into()),
        "S" => Some("two words".into()),
        "Q" => Some("'\"$A\\`".into()),
        "E" => Some(String::new()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let Some(text) = rfuzz::text(rest) else {
        return;
    };
    let escape = if choice & 1 == 0 { '\\' } else { '`' };
    let split = split_words(text, escape);
    let expanded = expand_words(text, escape, &lookup);
    let _ = expand_word(text, escape, &lookup);
    if !text.contains('$') {
        assert_eq!(split, expanded, "{text:?}");
    }
    if let Ok(words) = &split {
        let dollars = |s: &str| s.matches('$').count();
        let kept: usize = words.iter().map(|w| dollars(w)).sum();
        assert!(kept <= dollars(text), "{text:?} -> {words:?}");
    }
});
