//! Sizes as docker words them (its `units` package): `images` and
//! `history` in decimal units with three significant digits (`%.3g`:
//! 1.24MB, 389B), `stats` in binary units with four (`%.4g`: 1.539MiB).

/// `value` with `digits` significant digits, trailing zeros dropped.
fn significant(value: f64, digits: usize) -> String {
    let whole = if value < 1.0 {
        1
    } else {
        value.log10().floor() as usize + 1
    };
    let decimals = digits.saturating_sub(whole);
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn scaled(bytes: u64, step: f64, units: [&str; 5], digits: usize) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= step && unit + 1 < units.len() {
        value /= step;
        unit += 1;
    }
    format!("{}{}", significant(value, digits), units[unit])
}

/// `1.24MB`: docker's size for images and history.
pub fn decimal(bytes: u64) -> String {
    scaled(bytes, 1000.0, ["B", "kB", "MB", "GB", "TB"], 3)
}

/// `1.539MiB`: docker's size for stats.
pub fn binary(bytes: u64) -> String {
    scaled(bytes, 1024.0, ["B", "KiB", "MiB", "GiB", "TiB"], 4)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(super::decimal(1_240_000), "1.24MB");
        assert_eq!(super::decimal(512), "512B");
        assert_eq!(super::decimal(123_456_789), "123MB");
        assert_eq!(super::binary(64 * 1024 * 1024), "64MiB");
        assert_eq!(super::binary(1_613_824), "1.539MiB");
        assert_eq!(super::binary(284 * 1024), "284KiB");
    }
}
