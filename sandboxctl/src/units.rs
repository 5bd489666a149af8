//! Sizes (`64M`, `1GiB`) and durations (`500ms`, `2m`, `1.5`) as the command line writes them,
//! parsed and printed; ages as tables show them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Binary multipliers by suffix, lower-cased.
const SIZE_SUFFIXES: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gib", 1 << 30),
    ("t", 1 << 40),
    ("tib", 1 << 40),
];

/// Seconds per duration suffix; `ms` comes before `m` and `s` so it is matched first.
const DURATION_SUFFIXES: &[(&str, f64)] = &[
    ("ms", 0.001),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
    ("", 1.0),
];

/// Parses a positive size: bytes, or a whole number with a binary suffix (`k`, `M`, `GiB`...).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "invalid size {text:?}: expected a number like 512M or 2GiB"
        ));
    }
    let lower = suffix.to_ascii_lowercase();
    let Some(&(_, unit)) = SIZE_SUFFIXES.iter().find(|(s, _)| *s == lower) else {
        return Err(format!(
            "invalid size {text:?}: unknown unit {suffix:?} (use k, M, G or KiB, MiB, GiB)"
        ));
    };
    let bytes = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("invalid size {text:?}: too large"))?;
    if bytes == 0 {
        return Err(format!("invalid size {text:?}: must be greater than zero"));
    }
    Ok(bytes)
}

/// Parses a positive duration: `500ms`, `1s`, `2m`, `1h`, or plain seconds; fractions allowed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, secs_per_unit) = DURATION_SUFFIXES
        .iter()
        .find_map(|(suffix, secs)| text.strip_suffix(suffix).map(|n| (n, *secs)))
        .unwrap_or((text, 1.0));
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let dots = number.chars().filter(|&c| c == '.').count();
    if digits == 0 || dots > 1 || digits + dots != number.len() {
        return Err(format!(
            "invalid duration {text:?}: expected a number with an optional unit, like 500ms, 30s, 2m or 1h"
        ));
    }
    let secs = number
        .parse::<f64>()
        .map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    let duration = Duration::try_from_secs_f64(secs * secs_per_unit)
        .map_err(|_| format!("invalid duration {text:?}: too large"))?;
    if duration.is_zero() {
        return Err(format!(
            "invalid duration {text:?}: must be greater than zero"
        ));
    }
    Ok(duration)
}

/// Prints a size in the largest binary unit it reaches: `64 MiB`, `1.5 GiB`, `100 bytes`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (unit, name) in UNITS {
        if bytes >= unit {
            return if bytes % unit == 0 {
                format!("{} {name}", bytes / unit)
            } else {
                format!("{:.1} {name}", bytes as f64 / unit as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// Prints milliseconds the way [`parse_duration`] reads them: `250ms`, `30s`, `2m`, `1h`,
/// `1.5s`.
pub fn format_millis(ms: u64) -> String {
    match ms {
        0 => "0s".to_string(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms if ms < 1000 => format!("{ms}ms"),
        ms => {
            let frac = format!("{:03}", ms % 1000);
            format!("{}.{}s", ms / 1000, frac.trim_end_matches('0'))
        }
    }
}

/// An age in its largest whole unit, as `ls` shows it: `42s`, `5m`, `3h`, `2d`.
pub fn format_age(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Now, in milliseconds since the epoch (0 if the clock is before it).
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (text, bytes) in [
            ("1", 1),
            ("4096", 4096),
            ("512b", 512),
            ("1k", 1024),
            ("2K", 2048),
            ("64m", 64 << 20),
            ("64M", 64 << 20),
            ("1g", 1 << 30),
            ("3G", 3 << 30),
            ("1KiB", 1024),
            ("64MiB", 64 << 20),
            ("2GiB", 2 << 30),
            ("2gib", 2 << 30),
            ("1T", 1 << 40),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn bad_sizes() {
        for text in [
            "",
            "M",
            "0",
            "0M",
            "-1",
            "1.5G",
            "12Q",
            "1 M",
            "1MB",
            "64M ",
            "99999999999999999999",
            "17179869184G",
        ] {
            assert!(parse_size(text).is_err(), "{text:?} parsed");
        }
        assert!(parse_size("12Q").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("500ms", ms(500)),
            ("1s", ms(1000)),
            ("1.5s", ms(1500)),
            ("2m", ms(120_000)),
            ("0.5m", ms(30_000)),
            ("1h", ms(3_600_000)),
            ("10", ms(10_000)),
            ("2.25", ms(2250)),
            (".5", ms(500)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_durations() {
        for text in [
            "", "s", "ms", "0", "0s", "0.0", "-1s", "1x", "1..2s", "inf", "NaN", "1e3", "+1s",
            "1 s", "1d", "1e400",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn printed_sizes() {
        assert_eq!(format_size(64 << 20), "64 MiB");
        assert_eq!(format_size(1 << 30), "1 GiB");
        assert_eq!(format_size(3 << 29), "1.5 GiB");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(100), "100 bytes");
        assert_eq!(format_size(2 << 40), "2 TiB");
    }

    #[test]
    fn printed_durations_parse_back() {
        for (ms, text) in [
            (250, "250ms"),
            (30_000, "30s"),
            (120_000, "2m"),
            (7_200_000, "2h"),
            (1500, "1.5s"),
            (61_010, "61.01s"),
        ] {
            assert_eq!(format_millis(ms), text);
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(ms)));
        }
    }

    #[test]
    fn ages() {
        for (ms, text) in [
            (0, "0s"),
            (59_999, "59s"),
            (60_000, "1m"),
            (3_599_000, "59m"),
            (3_600_000, "1h"),
            (47 * 3_600_000, "47h"),
            (48 * 3_600_000, "2d"),
        ] {
            assert_eq!(format_age(ms), text);
        }
    }

    #[test]
    fn sizes_roundtrip_through_print() {
        for bytes in [1u64, 1023, 1024, 5 << 20, 7 << 30, (1 << 40) + (1 << 30)] {
            let printed = format_size(bytes);
            if !printed.contains('.') {
                let compact: String = printed.chars().filter(|c| !c.is_whitespace()).collect();
                assert_eq!(
                    parse_size(compact.trim_end_matches("bytes")),
                    Ok(bytes),
                    "{printed}"
                );
            }
        }
    }
}
