//! Byte ranges a client sends: `Range` on a blob `GET` (RFC 9110 §14.2)
//! and `Content-Range` with `Content-Length` on an upload chunk. Every
//! number is read strictly (digits only) and every sum is checked, so no
//! client value can wrap or panic.

// Parses what clients send: every sum on a number from outside is checked.
#![deny(clippy::arithmetic_side_effects)]

use super::{content_length, header};
use crate::error::{Code, RegistryError, Result};
use crate::store::uploads::ChunkBounds;
use axum::http::HeaderMap;
use std::ops::Range;

/// Digits only (no sign, no space), saturating at `u64::MAX`: a position
/// that large is past the end of anything stored, which is all it can mean.
fn position(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<u64>().unwrap_or(u64::MAX))
}

/// Digits only, refusing values past `u64::MAX` (an upload's offset must
/// be exact).
fn exact(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok()
}

/// One `range-spec` of a `Range: bytes=` header.
enum Spec {
    /// `first-` or `first-last`.
    From { first: u64, last: Option<u64> },
    /// `-length`: the last `length` bytes.
    Suffix(u64),
}

impl Spec {
    fn parse(text: &str) -> Option<Spec> {
        let (first, last) = text.split_once('-')?;
        let (first, last) = (first.trim(), last.trim());
        if first.is_empty() {
            return Some(Spec::Suffix(position(last)?));
        }
        let first = position(first)?;
        let last = match last {
            "" => None,
            last => Some(position(last).filter(|&last| last >= first)?),
        };
        Some(Spec::From { first, last })
    }

    /// The bytes this asks of a representation of `size` bytes, if any.
    fn resolve(&self, size: u64) -> Option<Range<u64>> {
        match *self {
            Spec::From { first, last } => {
                if first >= size {
                    return None;
                }
                // size > first >= 0, so size - 1 cannot wrap, nor can end + 1 pass size.
                let end = last.map_or(size, |last| last.saturating_add(1).min(size));
                Some(first..end)
            }
            Spec::Suffix(length) => {
                if length == 0 || size == 0 {
                    return None;
                }
                Some(size.saturating_sub(length)..size)
            }
        }
    }
}

/// Reads a `Range` header against a blob of `size` bytes.
///
/// - A unit other than `bytes` is ignored (`Ok(None)`, the whole blob), as
///   RFC 9110 requires.
/// - A malformed set (`bytes=500-0`, `bytes=abc`) or one no part of which
///   lies inside the blob is 416 with `Content-Range: bytes */SIZE`.
/// - One satisfiable range is served as 206.
/// - Several satisfiable ranges are answered with the whole blob (200):
///   RFC 9110 lets a server ignore `Range`, and multipart/byteranges
///   is something no registry client asks for.
pub fn parse_range(value: &str, size: u64) -> Result<Option<Range<u64>>> {
    let value = value.trim();
    let Some((unit, set)) = value.split_once('=') else {
        return Err(unsatisfiable(value, size));
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ok(None);
    }
    let mut satisfiable = Vec::new();
    let mut specs = 0usize;
    for text in set.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        specs = specs.saturating_add(1);
        let spec = Spec::parse(text).ok_or_else(|| unsatisfiable(value, size))?;
        satisfiable.extend(spec.resolve(size));
    }
    match satisfiable.as_slice() {
        _ if specs == 0 => Err(unsatisfiable(value, size)),
        [] => Err(unsatisfiable(value, size)),
        [one] => Ok(Some(one.clone())),
        _ => Ok(None),
    }
}

fn unsatisfiable(value: &str, size: u64) -> RegistryError {
    RegistryError::new(
        Code::RangeInvalid,
        format!("range {value:?} not satisfiable for a blob of {size} bytes"),
    )
    .with_header("content-range", format!("bytes */{size}"))
}

/// Reads an upload chunk's `Content-Range` (`<start>-<end>`, as Docker
/// sends it, or `bytes <start>-<end>/<total|*>`) and `Content-Length`.
///
/// A range that is malformed, ends before it starts, runs past its own
/// total, or is longer than a `u64` can count is 416 `RANGE_INVALID`; a
/// `Content-Length` that disagrees with the range is 400 `SIZE_INVALID`.
pub fn chunk_bounds(headers: &HeaderMap) -> Result<ChunkBounds> {
    let length = content_length(headers);
    let Some(value) = header(headers, "content-range") else {
        return Ok(ChunkBounds {
            range: None,
            length,
        });
    };
    let invalid = |why: &str| {
        RegistryError::new(
            Code::RangeInvalid,
            format!("invalid Content-Range {value:?}: {why}"),
        )
    };
    let spec = value.trim();
    let spec = spec.strip_prefix("bytes").unwrap_or(spec).trim_start();
    let (span, total) = match spec.split_once('/') {
        Some((span, total)) => (span, Some(total.trim())),
        None => (spec, None),
    };
    let (start, end) = span
        .split_once('-')
        .and_then(|(a, b)| Some((exact(a.trim())?, exact(b.trim())?)))
        .ok_or_else(|| invalid("expected <start>-<end>"))?;
    let span_length = end
        .checked_sub(start)
        .ok_or_else(|| invalid("the range ends before it starts"))?
        .checked_add(1)
        .ok_or_else(|| invalid("the range is longer than any upload can be"))?;
    match total {
        None | Some("*") => {}
        Some(total) => match exact(total) {
            Some(total) if end < total => {}
            Some(_) => return Err(invalid("the range ends past its total")),
            None => return Err(invalid("the total is not a number")),
        },
    }
    if let Some(length) = length.filter(|&length| length != span_length) {
        return Err(RegistryError::new(
            Code::SizeInvalid,
            format!(
                "Content-Length {length} disagrees with Content-Range {value:?} ({span_length} bytes)"
            ),
        ));
    }
    Ok(ChunkBounds {
        range: Some((start, end)),
        length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-1000", 100).unwrap(), Some(0..100));
        assert_eq!(parse_range("bytes=95-200", 100).unwrap(), Some(95..100));
        assert_eq!(parse_range("BYTES = 1-1", 100).unwrap(), Some(1..2));
        let huge = "bytes=0-99999999999999999999999";
        assert_eq!(parse_range(huge, 100).unwrap(), Some(0..100));
        // Several ranges: the whole blob, unless only one is satisfiable.
        assert_eq!(parse_range("bytes=0-1,5-6", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=0-1,500-600", 100).unwrap(), Some(0..2));
        // Another unit is ignored.
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None);
    }

    #[test]
    fn unsatisfiable_or_malformed_ranges_are_416() {
        for value in [
            "bytes=500-0",
            "bytes=5-2",
            "bytes=100-",
            "bytes=200-300",
            "bytes=-0",
            "bytes=abc",
            "bytes=+5-",
            "bytes=-",
            "bytes=",
            "bytes=,",
            "bytes=500-600,700-",
            "bytes=99999999999999999999999-",
            "bytes 0-1",
        ] {
            let err = parse_range(value, 100).unwrap_err();
            assert_eq!(err.status, 416, "{value}");
            assert_eq!(err.code, Code::RangeInvalid, "{value}");
            assert!(
                err.headers
                    .contains(&("content-range", "bytes */100".to_string())),
                "{value}: {:?}",
                err.headers
            );
        }
        assert_eq!(parse_range("bytes=0-0", 0).unwrap_err().status, 416);
        assert_eq!(parse_range("bytes=-5", 0).unwrap_err().status, 416);
    }

    fn headers(range: Option<&str>, length: Option<u64>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(range) = range {
            headers.insert("content-range", HeaderValue::from_str(range).unwrap());
        }
        if let Some(length) = length {
            headers.insert("content-length", HeaderValue::from(length));
        }
        headers
    }

    #[test]
    fn chunk_ranges() {
        let bounds = chunk_bounds(&headers(Some("0-9"), Some(10))).unwrap();
        assert_eq!((bounds.range, bounds.length), (Some((0, 9)), Some(10)));
        let bounds = chunk_bounds(&headers(Some("bytes 10-19/*"), None)).unwrap();
        assert_eq!((bounds.range, bounds.length), (Some((10, 19)), None));
        let bounds = chunk_bounds(&headers(Some("bytes 10-19/20"), None)).unwrap();
        assert_eq!(bounds.range, Some((10, 19)));
        let bounds = chunk_bounds(&headers(None, Some(5))).unwrap();
        assert_eq!((bounds.range, bounds.length), (None, Some(5)));
        // The largest range a u64 can count is fine to parse (the store then
        // finds it does not continue the upload or that the body is short).
        let bounds = chunk_bounds(&headers(Some("0-18446744073709551614"), None)).unwrap();
        assert_eq!(bounds.range, Some((0, u64::MAX - 1)));
    }

    #[test]
    fn chunk_ranges_that_cannot_be_counted_are_refused() {
        for range in [
            // end - start + 1 is 2^64: it used to wrap to 0.
            "0-18446744073709551615",
            "bytes 0-18446744073709551615/*",
            "5-4",
            "10-",
            "-10",
            "a-b",
            "+1-2",
            "0-18446744073709551616",
            "bytes 0-9/9",
            "bytes 0-9/x",
        ] {
            let err = chunk_bounds(&headers(Some(range), None)).unwrap_err();
            assert_eq!(
                (err.status.as_u16(), err.code),
                (416, Code::RangeInvalid),
                "{range}"
            );
        }
        let err = chunk_bounds(&headers(Some("0-9"), Some(5))).unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (400, Code::SizeInvalid));
        let err = chunk_bounds(&headers(Some("0-18446744073709551615"), Some(0))).unwrap_err();
        assert_eq!(err.code, Code::RangeInvalid);
    }
}
