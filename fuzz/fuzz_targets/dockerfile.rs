#![no_main]
//! The Dockerfile parser (`rengine::build::dockerfile::parse`): never
//! panics; a file it accepts starts from a FROM (after ARGs only), and each
//! instruction, parsed again from its own text, is the same instruction.

use libfuzzer_sys::fuzz_target;
use rengine::build::dockerfile::{instruction, parse};

fuzz_target!(|data: &[u8]| {
    let Some(text) = rfuzz::text(data) else {
        return;
    };
    let Ok(file) = parse(text) else {
        return;
    };
    let first = file
        .instructions
        .iter()
        .find(|i| i.keyword != "ARG")
        .expect("an accepted file has a FROM");
    assert_eq!(first.keyword, "FROM");
    for parsed in &file.instructions {
        let again = instruction(parsed.line, &parsed.original, file.escape)
            .unwrap_or_else(|e| panic!("{:?} is refused on its own: {e}", parsed.original));
        assert_eq!(&again, parsed);
    }
});
