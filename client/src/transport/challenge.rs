//! `WWW-Authenticate` challenges of responses (the parsing itself is
//! [`roci::challenge`], shared with the conformance runner).

pub use roci::challenge::{parse, Challenge};

/// The challenge of a 401 response, if it carries one we speak.
pub fn of_response(response: &reqwest::Response) -> Option<Challenge> {
    response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .and_then(parse)
}
