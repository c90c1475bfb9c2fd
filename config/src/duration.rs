//! Go-style durations as Distribution's configuration writes them:
//! a sequence of `<number><unit>` with units `ns`, `us`, `ms`, `s`, `m`, `h`.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

/// A duration read from a Go duration string such as `168h` or `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    /// Parses a Go duration string; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text == "0" {
            return Some(GoDuration(Duration::ZERO));
        }
        if text.is_empty() {
            return None;
        }
        let mut total = 0f64;
        let mut rest = text;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if num_len == 0 {
                return None;
            }
            let number: f64 = rest[..num_len].parse().ok()?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let seconds_per_unit = match &rest[..unit_len] {
                "ns" => 1e-9,
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return None,
            };
            total += number * seconds_per_unit;
            rest = &rest[unit_len..];
        }
        // Too long for a Duration (`99999999999999999999h`) is no duration.
        Duration::try_from_secs_f64(total).ok().map(GoDuration)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.as_secs_f64())
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        GoDuration::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} (expected a Go duration such as 168h, 10m or 30s)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(
            GoDuration::parse("168h").unwrap().0,
            Duration::from_secs(168 * 3600)
        );
        assert_eq!(
            GoDuration::parse("1h30m").unwrap().0,
            Duration::from_secs(5400)
        );
        assert_eq!(
            GoDuration::parse("250ms").unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(GoDuration::parse("0").unwrap().0, Duration::ZERO);
        assert!(GoDuration::parse("10").is_none());
        assert!(GoDuration::parse("ten minutes").is_none());
        assert!(GoDuration::parse("").is_none());
    }

    /// Found writing the `config` fuzz target: a duration beyond `Duration`'s
    /// range panicked (`Duration::from_secs_f64`), stopping `rregistry
    /// serve` with a panic instead of naming the key.
    #[test]
    fn refuses_durations_too_long_to_hold() {
        assert!(GoDuration::parse("99999999999999999999h").is_none());
        assert!(GoDuration::parse("5124095576030432h").is_none());
        assert_eq!(
            GoDuration::parse("2562047h").unwrap().0,
            Duration::from_secs(2562047 * 3600)
        );
        let err = crate::load_from_str(
            "storage:\n  maintenance:\n    uploadpurging:\n      age: 99999999999999999999h\n",
            "test",
            Vec::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("invalid duration"), "{err}");
    }
}
