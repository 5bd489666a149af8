//! Sizes and durations as policy files spell them: `"512MiB"`, `"30s"`, or a bare integer
//! (bytes, milliseconds).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// One kibibyte.
pub const KIB: u64 = 1 << 10;
/// One mebibyte.
pub const MIB: u64 = 1 << 20;
/// One gibibyte.
pub const GIB: u64 = 1 << 30;
/// One tebibyte.
pub const TIB: u64 = 1 << 40;

const SECOND: u64 = 1000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Size units, largest first.
const SIZE_UNITS: &[(&str, u64)] = &[("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)];
/// Duration units, largest first.
const DURATION_UNITS: &[(&str, u64)] = &[
    ("d", DAY),
    ("h", HOUR),
    ("m", MINUTE),
    ("s", SECOND),
    ("ms", 1),
];

/// Parses `"<digits><unit>"` against `units` (the unit is required).
fn parse_with_units(text: &str, units: &[(&str, u64)]) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (number, unit) = text.split_at(digits);
    let factor = units.iter().find(|(name, _)| *name == unit)?.1;
    number.parse::<u64>().ok()?.checked_mul(factor)
}

/// Parses a size string: digits and one of `KiB`, `MiB`, `GiB`, `TiB`, or `B` (bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    if let Some(number) = text
        .strip_suffix('B')
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
    {
        return number.parse().ok();
    }
    parse_with_units(text, SIZE_UNITS)
}

/// Parses a duration string into milliseconds: digits and one of `ms`, `s`, `m`, `h`, `d`.
pub fn parse_duration(text: &str) -> Option<u64> {
    parse_with_units(text, DURATION_UNITS)
}

/// Renders `n` with the largest unit that divides it exactly, `None` when none does (or `n` is
/// zero).
fn exact_unit(n: u64, units: &[(&str, u64)]) -> Option<String> {
    if n == 0 {
        return None;
    }
    units
        .iter()
        .find(|(_, factor)| n % factor == 0)
        .map(|(name, factor)| format!("{}{name}", n / factor))
}

/// A size for messages: `"512MiB"` when a unit fits exactly, else `"1000 bytes"`.
pub fn size_text(n: u64) -> String {
    exact_unit(n, SIZE_UNITS).unwrap_or_else(|| format!("{n} bytes"))
}

/// A size as a TOML value: `"512MiB"` when a unit fits exactly, else the integer.
pub fn size_toml(n: u64) -> String {
    match exact_unit(n, SIZE_UNITS) {
        Some(text) => format!("\"{text}\""),
        None => n.to_string(),
    }
}

/// A duration for messages: `"10m"`, `"1500ms"`.
pub fn duration_text(ms: u64) -> String {
    exact_unit(ms, DURATION_UNITS).unwrap_or_else(|| format!("{ms}ms"))
}

/// A duration as a TOML value: `"10m"`.
pub fn duration_toml(ms: u64) -> String {
    format!("\"{}\"", duration_text(ms))
}

/// A size in a policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size(pub u64);

/// A duration in a policy file, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Duration(pub u64);

/// A count (pids, open files, percent) in a policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Count(pub u64);

/// Deserializes an integer or a string through `parse`, with `expecting` in error messages.
struct UnitVisitor {
    expecting: &'static str,
    parse: Option<fn(&str) -> Option<u64>>,
}

impl<'de> Visitor<'de> for UnitVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v)
            .map_err(|_| E::custom(format!("{v} is negative, expected {}", self.expecting)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        let Some(parse) = self.parse else {
            return Err(E::invalid_type(de::Unexpected::Str(v), &self));
        };
        parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

const SIZE_EXPECTING: &str =
    "a size: an integer (bytes) or a string of digits and a unit, KiB, MiB, GiB or TiB (\"512MiB\")";
const DURATION_EXPECTING: &str = "a duration: an integer (milliseconds) or a string of digits and a unit, ms, s, m, h or d (\"30s\")";
const COUNT_EXPECTING: &str = "a non-negative integer";

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor {
            expecting: SIZE_EXPECTING,
            parse: Some(parse_size),
        })
        .map(Size)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor {
            expecting: DURATION_EXPECTING,
            parse: Some(parse_duration),
        })
        .map(Duration)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor {
            expecting: COUNT_EXPECTING,
            parse: None,
        })
        .map(Count)
    }
}
