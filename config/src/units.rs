//! Durations and sizes written by people: `"250ms"`, `"10s"`, `"15m"`, `"1h"` (a plain integer is
//! seconds) and `4096`, `"512KiB"`, `"32MiB"`, `"1GiB"` (a plain integer is bytes).
//!
//! Contract: parsing is total (never panics, overflow is `None`), accepts exactly one number followed
//! by at most one unit, and rendering produces the shortest form that parses back to the same value.

use std::time::Duration;

/// Splits `"15m"` into `(15, "m")`; `None` unless the text starts with ASCII digits that fit a `u64`.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return None;
    }
    Some((digits.parse().ok()?, unit.trim_start()))
}

/// Parses a duration: digits followed by `ms`, `s`, `m`, `h` or nothing (seconds).
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = number_and_unit(text)?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    Some(Duration::from_millis(number.checked_mul(millis_per_unit)?))
}

/// Renders a duration in the largest unit that divides it exactly (`900s` → `"15m"`).
pub(crate) fn render_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if !millis.is_multiple_of(1_000) {
        return format!("{millis}ms");
    }
    let seconds = millis / 1_000;
    if seconds != 0 && seconds.is_multiple_of(3_600) {
        format!("{}h", seconds / 3_600)
    } else if seconds != 0 && seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

const SIZE_UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];

/// Parses a size in bytes: digits followed by `KiB`, `MiB`, `GiB`, `B` or nothing (bytes).
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let (number, unit) = number_and_unit(text)?;
    let multiplier = match unit {
        "" | "B" => 1,
        unit => SIZE_UNITS.iter().find(|(name, _)| *name == unit)?.1,
    };
    number.checked_mul(multiplier)
}

/// Renders a size in the largest binary unit that divides it exactly, or in bytes.
pub(crate) fn render_size(bytes: u64) -> String {
    SIZE_UNITS
        .iter()
        .find(|(_, multiplier)| bytes != 0 && bytes.is_multiple_of(*multiplier))
        .map_or_else(
            || bytes.to_string(),
            |(name, multiplier)| format!("{}{name}", bytes / multiplier),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7_200)));
        assert_eq!(parse_duration(" 5 s "), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
    }

    #[test]
    fn durations_reject_garbage_and_overflow() {
        for bad in ["", "s", "-1s", "1.5s", "10x", "1d", "1h30m", "99999999999999999999s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_duration("18446744073709551615h"), None);
    }

    #[test]
    fn durations_render_in_the_largest_exact_unit() {
        assert_eq!(render_duration(Duration::from_secs(900)), "15m");
        assert_eq!(render_duration(Duration::from_secs(3_600)), "1h");
        assert_eq!(render_duration(Duration::from_secs(90)), "90s");
        assert_eq!(render_duration(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(render_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn sizes_parse_and_render() {
        assert_eq!(parse_size("32MiB"), Some(33_554_432));
        assert_eq!(parse_size("4096"), Some(4_096));
        assert_eq!(parse_size("512KiB"), Some(524_288));
        assert_eq!(parse_size("1GiB"), Some(1_073_741_824));
        assert_eq!(parse_size("7B"), Some(7));
        assert_eq!(parse_size("32MB"), None);
        assert_eq!(parse_size("99999999999999999999GiB"), None);
        assert_eq!(parse_size("18446744073709551615GiB"), None);
        assert_eq!(render_size(33_554_432), "32MiB");
        assert_eq!(render_size(4_096), "4KiB");
        assert_eq!(render_size(1_000), "1000");
        assert_eq!(render_size(0), "0");
    }
}
