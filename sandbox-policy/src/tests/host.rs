use crate::HostPattern;

fn pattern(wildcard: bool, host: &str, port: Option<u16>) -> HostPattern {
    HostPattern {
        wildcard,
        host: host.to_owned(),
        port,
    }
}

#[test]
fn parse_good() {
    // (input, parsed, canonical text)
    let table: &[(&str, HostPattern, &str)] = &[
        (
            "example.com",
            pattern(false, "example.com", None),
            "example.com",
        ),
        (
            "Example.COM",
            pattern(false, "example.com", None),
            "example.com",
        ),
        (
            "*.example.com",
            pattern(true, "example.com", None),
            "*.example.com",
        ),
        (
            "*.example.com:443",
            pattern(true, "example.com", Some(443)),
            "*.example.com:443",
        ),
        (
            "registry.npmjs.org:443",
            pattern(false, "registry.npmjs.org", Some(443)),
            "registry.npmjs.org:443",
        ),
        ("localhost", pattern(false, "localhost", None), "localhost"),
        ("a-b.c0", pattern(false, "a-b.c0", None), "a-b.c0"),
        ("x:0443", pattern(false, "x", Some(443)), "x:443"),
        (
            "host:65535",
            pattern(false, "host", Some(65535)),
            "host:65535",
        ),
        ("10.0.0.1", pattern(false, "10.0.0.1", None), "10.0.0.1"),
        (
            "10.0.0.1:8080",
            pattern(false, "10.0.0.1", Some(8080)),
            "10.0.0.1:8080",
        ),
        (
            "2001:DB8:0::1",
            pattern(false, "2001:db8::1", None),
            "2001:db8::1",
        ),
        ("::1", pattern(false, "::1", None), "::1"),
        ("[::1]", pattern(false, "::1", None), "::1"),
        (
            "[2001:db8::1]:8080",
            pattern(false, "2001:db8::1", Some(8080)),
            "[2001:db8::1]:8080",
        ),
    ];
    for (text, want, canonical) in table {
        let got = HostPattern::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(&got, want, "{text:?}");
        assert_eq!(got.to_string(), *canonical, "{text:?}");
        assert_eq!(
            HostPattern::parse(canonical).as_ref(),
            Ok(want),
            "{canonical:?}"
        );
    }
}

#[test]
fn parse_bad() {
    let table: &[(&str, &str)] = &[
        ("", "empty, expected \"host\" or \"*.host\", either with an optional \":port\""),
        ("*", "\"*\" may only be the whole first label (\"*.example.com\"), expected \"host\" or \"*.host\", either with an optional \":port\""),
        ("a.*.com", "\"*\" may only be the whole first label (\"*.example.com\"), expected \"host\" or \"*.host\", either with an optional \":port\""),
        ("*x.com", "\"*\" may only be the whole first label (\"*.example.com\"), expected \"host\" or \"*.host\", either with an optional \":port\""),
        ("*.", "no host name, expected \"host\" or \"*.host\", either with an optional \":port\""),
        (":443", "no host name, expected \"host\" or \"*.host\", either with an optional \":port\""),
        ("*.10.0.0.1", "a wildcard cannot apply to an IP address"),
        ("a_b.com", "label \"a_b\" has '_': host names hold only a-z, 0-9, - and ."),
        ("ex ample.com", "label \"ex ample\" has ' ': host names hold only a-z, 0-9, - and ."),
        ("a..com", "\"a..com\" has an empty label"),
        ("example.com.", "\"example.com.\" has an empty label"),
        ("-a.com", "label \"-a\" starts or ends with \"-\""),
        ("1.2.3", "\"1.2.3\" is neither an IPv4 address nor a host name"),
        ("010.0.0.1", "\"010.0.0.1\" is neither an IPv4 address nor a host name"),
        ("example.com:0", "port \"0\" is not a number in 1..=65535"),
        ("example.com:65536", "port \"65536\" is not a number in 1..=65535"),
        ("example.com:", "port \"\" is not a number in 1..=65535"),
        ("example.com:+1", "port \"+1\" is not a number in 1..=65535"),
        ("example.com:http", "port \"http\" is not a number in 1..=65535"),
        ("[::1", "unclosed \"[\" of an IPv6 address"),
        ("[::1]:", "port \"\" is not a number in 1..=65535"),
        ("[example.com]:80", "\"example.com\" is not an IPv6 address"),
        ("::1:443x", "\"::1:443x\" is not an IPv6 address (write \"[address]:port\" for a port)"),
        (&"a".repeat(64), "label \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is longer than 63 characters"),
    ];
    for (text, want) in table {
        assert_eq!(
            HostPattern::parse(text),
            Err((*want).to_owned()),
            "{text:?}"
        );
    }
    let long = format!("{}.com", vec!["a".repeat(60); 5].join("."));
    assert_eq!(
        HostPattern::parse(&long),
        Err("host name longer than 253 characters".to_owned())
    );
}

#[test]
fn matches() {
    // (pattern, host, port, matches)
    let table: &[(&str, &str, u16, bool)] = &[
        ("example.com", "example.com", 80, true),
        ("example.com", "EXAMPLE.com", 443, true),
        ("example.com", "example.com.", 443, true),
        ("example.com", "a.example.com", 443, false),
        ("example.com", "badexample.com", 443, false),
        ("example.com:443", "example.com", 443, true),
        ("example.com:443", "example.com", 80, false),
        ("*.example.com", "a.example.com", 443, true),
        ("*.example.com", "a.b.example.com", 443, true),
        ("*.example.com", "example.com", 443, false),
        ("*.example.com", "badexample.com", 443, false),
        ("*.example.com", ".example.com", 443, false),
        ("*.example.com:443", "a.example.com", 80, false),
        ("10.0.0.1", "10.0.0.1", 22, true),
        ("10.0.0.1", "10.0.0.2", 22, false),
        ("::1", "::1", 80, true),
        ("::1", "[::1]", 80, true),
        ("::1", "0:0::1", 80, true),
        ("[::1]:80", "::1", 81, false),
        ("2001:db8::1", "2001:db8::2", 80, false),
    ];
    for (pattern, host, port, want) in table {
        let p = HostPattern::parse(pattern).unwrap();
        assert_eq!(p.matches(host, *port), *want, "{pattern} ~ {host}:{port}");
    }
}
