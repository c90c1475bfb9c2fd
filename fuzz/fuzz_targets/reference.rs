#![no_main]
//! Image references as rctl reads them (`rctl::reference::ImageReference`):
//! what parses prints back as a reference naming the same image.

use libfuzzer_sys::fuzz_target;
use rctl::reference::ImageReference;

fuzz_target!(|data: &[u8]| {
    let Some(text) = rfuzz::text(data) else {
        return;
    };
    let Ok(reference) = ImageReference::parse(text, "localhost:5000") else {
        return;
    };
    let printed = reference.to_string();
    let again = ImageReference::parse(&printed, "other.example:1")
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?} is refused: {e}"));
    assert_eq!(
        again.registry, reference.registry,
        "{text:?} -> {printed:?}"
    );
    assert_eq!(
        again.repository, reference.repository,
        "{text:?} -> {printed:?}"
    );
    assert_eq!(again.digest, reference.digest, "{text:?} -> {printed:?}");
    assert_eq!(
        again.reference(),
        reference.reference(),
        "{text:?} -> {printed:?}"
    );
    assert_eq!(again.to_string(), printed);
});
