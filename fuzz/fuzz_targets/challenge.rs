#![no_main]
//! `WWW-Authenticate` challenges (`roci::challenge::parse`): a Bearer
//! challenge, written back with its values quoted, parses to the same.

use libfuzzer_sys::fuzz_target;
use roci::challenge::{parse, Challenge};

fn quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = rfuzz::text(data) else {
        return;
    };
    let Some(Challenge::Bearer {
        realm,
        service,
        scope,
    }) = parse(text)
    else {
        return;
    };
    let mut header = format!("Bearer realm={}", quoted(&realm));
    if let Some(service) = &service {
        header.push_str(&format!(",service={}", quoted(service)));
    }
    if let Some(scope) = &scope {
        header.push_str(&format!(",scope={}", quoted(scope)));
    }
    assert_eq!(
        parse(&header),
        Some(Challenge::Bearer {
            realm,
            service,
            scope
        }),
        "{text:?} written as {header:?}"
    );
});
