//! Message framing hyper accepts but a strict server refuses, checked on
//! every request before routing (RFC 9112):
//!
//! - a `Transfer-Encoding` other than exactly `chunked` is 501: the body
//!   would otherwise be stored still encoded (`gzip, chunked`);
//! - an HTTP/1.1 request without exactly one `Host` is 400 (§3.2).

// Parses what clients send: every sum on a number from outside is checked.
#![deny(clippy::arithmetic_side_effects)]

use crate::error::{Code, RegistryError};
use axum::http::{header, HeaderMap, StatusCode, Version};

/// The refusal of a request whose framing is not acceptable, if it is not.
pub fn check(version: Version, headers: &HeaderMap) -> Option<RegistryError> {
    let codings: Vec<String> = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .split(',')
                .map(|coding| coding.trim().to_ascii_lowercase())
                .filter(|coding| !coding.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    let has_transfer_encoding = headers.contains_key(header::TRANSFER_ENCODING);
    if has_transfer_encoding && codings != ["chunked"] {
        return Some(
            RegistryError::new(
                Code::Unsupported,
                format!(
                    "unsupported Transfer-Encoding {:?}: only chunked is accepted",
                    codings.join(", ")
                ),
            )
            .with_status(StatusCode::NOT_IMPLEMENTED)
            .with_header("connection", "close".to_string()),
        );
    }
    if version == Version::HTTP_11 && headers.get_all(header::HOST).iter().count() != 1 {
        return Some(
            RegistryError::new(
                Code::Unsupported,
                "an HTTP/1.1 request must carry exactly one Host header",
            )
            .with_status(StatusCode::BAD_REQUEST)
            .with_header("connection", "close".to_string()),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn framing() {
        let ok = headers(&[("host", "x"), ("transfer-encoding", "chunked")]);
        assert!(check(Version::HTTP_11, &ok).is_none());
        let ok = headers(&[("host", "x"), ("transfer-encoding", " Chunked ")]);
        assert!(check(Version::HTTP_11, &ok).is_none());
        assert!(check(Version::HTTP_11, &headers(&[("host", "x")])).is_none());
        assert!(check(Version::HTTP_10, &headers(&[])).is_none());
        assert!(check(Version::HTTP_2, &headers(&[])).is_none());

        for te in [
            &["gzip, chunked"][..],
            &["gzip", "chunked"],
            &["identity"],
            &[""],
        ] {
            let mut h = headers(&[("host", "x")]);
            for value in te {
                h.append("transfer-encoding", HeaderValue::from_static(value));
            }
            let err = check(Version::HTTP_11, &h).expect("refused");
            assert_eq!(err.status, StatusCode::NOT_IMPLEMENTED, "{te:?}");
        }
        let err = check(Version::HTTP_11, &headers(&[])).expect("refused");
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        let two = headers(&[("host", "x"), ("host", "y")]);
        assert_eq!(
            check(Version::HTTP_11, &two).map(|e| e.status),
            Some(StatusCode::BAD_REQUEST)
        );
    }
}
