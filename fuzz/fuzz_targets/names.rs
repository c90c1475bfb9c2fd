#![no_main]
//! Repository names and tags (`roci::names`): a name that parses prints
//! back as itself, holds only the grammar's characters, and routes; a valid
//! tag routes as a tag.

use axum::http::Method;
use libfuzzer_sys::fuzz_target;
use roci::{valid_tag, Reference, RepoName};
use rregistry::action::Action;

fuzz_target!(|data: &[u8]| {
    let Some(text) = rfuzz::text(data) else {
        return;
    };
    // "name" or "name:tag" (the tag part checked on its own).
    let (name_text, tag) = match text.split_once(':') {
        Some((n, t)) => (n, Some(t)),
        None => (text, None),
    };
    if let Some(tag) = tag {
        if valid_tag(tag) {
            assert!(tag.len() <= 128 && !tag.starts_with(['.', '-']), "{tag:?}");
        }
    }
    let Some(name) = RepoName::parse(name_text) else {
        return;
    };
    assert_eq!(name.as_str(), name_text);
    assert_eq!(name.to_string(), name_text);
    assert!(name_text.len() <= roci::names::MAX_NAME_LEN);
    assert!(name_text
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b)));

    let path = format!("/v2/{name}/tags/list");
    assert_eq!(
        Action::parse(&Method::GET, &path).ok(),
        Some(Action::ListTags { name: name.clone() }),
        "{path}"
    );
    if let Some(tag) = tag.filter(|t| valid_tag(t)) {
        let path = format!("/v2/{name}/manifests/{tag}");
        assert_eq!(
            Action::parse(&Method::PUT, &path).ok(),
            Some(Action::PutManifest {
                name,
                reference: Reference::Tag(tag.to_string())
            }),
            "{path}"
        );
    }
});
