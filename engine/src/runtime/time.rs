//! Timestamps: seconds since the epoch, shown as RFC 3339 (as docker's
//! `inspect` does) and as "3 minutes ago" (as `ps` does).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in nanoseconds since the epoch.
pub fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// `2026-11-23T10:04:05.123456789Z`.
pub fn rfc3339(nanos: u128) -> String {
    let secs = (nanos / 1_000_000_000) as i64;
    let frac = (nanos % 1_000_000_000) as u32;
    roci::time::rfc3339(secs, Some(frac))
}

/// "5 seconds", "About a minute", "3 hours", as docker words a duration.
pub fn human_duration(nanos: u128) -> String {
    let secs = (nanos / 1_000_000_000) as u64;
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// How long ago `nanos` was.
pub fn ago(nanos: u128) -> String {
    format!("{} ago", human_duration(now_nanos().saturating_sub(nanos)))
}

/// Reads what [`rfc3339`] writes (and docker's configs hold): nanoseconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<u128> {
    // YYYY-MM-DDTHH:MM:SS[.frac]Z: days from civil (Howard Hinnant's algorithm).
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let time = time.split(['+']).next()?;
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let field = t.next()?;
    let (secs, fraction) = field.split_once('.').unwrap_or((field, ""));
    let secs: i64 = secs.parse().ok()?;
    // Nanoseconds from up to nine fraction digits, in integers (f64 would round them).
    let digits: String = fraction.chars().take(9).collect();
    let nanos: i64 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let total = days * 86_400 + h * 3600 + min * 60 + secs;
    u128::try_from(total)
        .ok()
        .map(|t| t * 1_000_000_000 + nanos as u128)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            super::rfc3339(1_795_435_445_000_000_007),
            "2026-11-23T12:04:05.000000007Z"
        );
        assert_eq!(
            super::parse_rfc3339("1970-01-02T00:00:01Z"),
            Some(86_401_000_000_000)
        );
        assert_eq!(
            super::parse_rfc3339(&super::rfc3339(1_795_435_445_000_000_000)),
            Some(1_795_435_445_000_000_000)
        );
    }
}
