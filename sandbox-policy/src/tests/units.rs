use crate::units::{
    duration_text, duration_toml, parse_duration, parse_size, size_text, size_toml, GIB, KIB, MIB,
    TIB,
};

#[test]
fn sizes_parse() {
    let table: &[(&str, Option<u64>)] = &[
        ("0B", Some(0)),
        ("512B", Some(512)),
        ("1KiB", Some(KIB)),
        ("512MiB", Some(512 * MIB)),
        ("1GiB", Some(GIB)),
        ("2TiB", Some(2 * TIB)),
        ("0MiB", Some(0)),
        ("", None),
        ("B", None),
        ("MiB", None),
        ("512", None),
        ("1.5GiB", None),
        ("1 GiB", None),
        ("1GB", None),
        ("1G", None),
        ("1gib", None),
        ("-1MiB", None),
        ("99999999999TiB", None),
        ("18446744073709551616B", None),
    ];
    for (text, want) in table {
        assert_eq!(parse_size(text), *want, "{text:?}");
    }
}

#[test]
fn durations_parse() {
    let table: &[(&str, Option<u64>)] = &[
        ("500ms", Some(500)),
        ("30s", Some(30_000)),
        ("10m", Some(600_000)),
        ("4h", Some(14_400_000)),
        ("7d", Some(604_800_000)),
        ("0s", Some(0)),
        ("", None),
        ("s", None),
        ("10", None),
        ("1.5h", None),
        ("1h30m", None),
        ("10 m", None),
        ("10M", None),
        ("1w", None),
        ("99999999999999999d", None),
    ];
    for (text, want) in table {
        assert_eq!(parse_duration(text), *want, "{text:?}");
    }
}

#[test]
fn sizes_render() {
    let table: &[(u64, &str, &str)] = &[
        (0, "0 bytes", "0"),
        (1000, "1000 bytes", "1000"),
        (KIB, "1KiB", "\"1KiB\""),
        (1536, "1536 bytes", "1536"),
        (3 * KIB, "3KiB", "\"3KiB\""),
        (1536 * KIB, "1536KiB", "\"1536KiB\""),
        (512 * MIB, "512MiB", "\"512MiB\""),
        (GIB, "1GiB", "\"1GiB\""),
        (1024 * GIB, "1TiB", "\"1TiB\""),
        (3 * TIB, "3TiB", "\"3TiB\""),
    ];
    for (n, text, toml) in table {
        assert_eq!(
            (size_text(*n), size_toml(*n)),
            ((*text).into(), (*toml).into()),
            "{n}"
        );
    }
}

#[test]
fn durations_render() {
    let table: &[(u64, &str)] = &[
        (0, "0ms"),
        (1, "1ms"),
        (1500, "1500ms"),
        (30_000, "30s"),
        (90_000, "90s"),
        (600_000, "10m"),
        (5_400_000, "90m"),
        (3_600_000, "1h"),
        (86_400_000, "1d"),
        (30 * 86_400_000, "30d"),
    ];
    for (ms, text) in table {
        assert_eq!(duration_text(*ms), *text, "{ms}");
        assert_eq!(duration_toml(*ms), format!("\"{text}\""), "{ms}");
    }
}
