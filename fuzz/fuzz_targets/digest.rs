#![no_main]
//! Digests (`roci::Digest`, which the registry, the client and the engine
//! share, and the registry's URL form `parse_digest`): what parses prints
//! back as itself, and survives JSON.

use libfuzzer_sys::fuzz_target;
use roci::Digest;

fuzz_target!(|data: &[u8]| {
    let Some(text) = rfuzz::text(data) else {
        return;
    };
    let parsed = text.parse::<Digest>();
    assert_eq!(
        parsed.is_ok(),
        rregistry::action::parse_digest(text).is_ok(),
        "{text:?}"
    );
    let Ok(digest) = parsed else {
        return;
    };
    assert_eq!(digest.to_string(), text);
    assert_eq!(
        digest.hex().len(),
        text.len() - digest.algorithm().name().len() - 1
    );
    let json = serde_json::to_string(&digest).expect("a digest serialises");
    let back: Digest = serde_json::from_str(&json).expect("a serialised digest reads back");
    assert_eq!(back, digest);
});
