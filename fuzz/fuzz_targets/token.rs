#![no_main]
//! Bearer tokens (`rregistry::auth::token::Verifier::verify`): the claims
//! of a token signed with a trusted key, and tokens as they come. Input: a
//! first byte choosing the form, then the claims JSON (signed here with
//! HS256 so the claims are what gets read) or the whole token text.
//! Never panics; an accepted token is unexpired, from our issuer and for
//! our audience.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use libfuzzer_sys::fuzz_target;
use rregistry::auth::keys::TrustedKey;
use rregistry::auth::token::{now, Verifier, LEEWAY_S};
use std::sync::OnceLock;

const SECRET: &[u8] = b"rfuzz-secret";
const ISSUER: &str = "rfuzz-issuer";
const AUDIENCE: &str = "rfuzz-registry";

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let key = TrustedKey {
            kid: Some("k1".into()),
            key: DecodingKey::from_secret(SECRET),
            algorithms: vec![Algorithm::HS256],
        };
        Verifier::new(ISSUER.into(), vec![key], &["HS256".into()])
    })
}

/// `header.claims.signature` with HS256 over the raw claims bytes.
fn signed(header: &[u8], claims: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET);
    let tag = ring::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let token = match form % 3 {
        0 => signed(br#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#, rest),
        1 => {
            // A header of the input's own, then the claims.
            let (header, claims) = rfuzz::first_line(rest);
            signed(header, claims)
        }
        _ => match rfuzz::text(rest) {
            Some(text) => text.to_string(),
            None => return,
        },
    };
    let Ok(claims) = verifier().verify(&token, AUDIENCE) else {
        return;
    };
    assert_eq!(claims.iss, ISSUER);
    assert!(
        claims.exp.saturating_add(LEEWAY_S) >= now(),
        "expired: {claims:?}"
    );
    let audience_ok = match &claims.aud {
        serde_json::Value::String(a) => a == AUDIENCE,
        serde_json::Value::Array(list) => list.iter().any(|a| a == AUDIENCE),
        _ => false,
    };
    assert!(audience_ok, "{claims:?}");
});
