//! Host patterns of a network allowlist or deny list: `example.com`, `*.example.com:443`,
//! `10.0.0.1`, `[2001:db8::1]:8080`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One entry of `network.allow_hosts` or `network.deny_hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    /// The pattern was `*.host`: it matches every name under `host`, not `host` itself.
    pub wildcard: bool,
    /// The host name (lower case, without `*.`), or an IP address in its canonical text form
    /// (IPv6 without brackets).
    pub host: String,
    /// The only port the pattern allows; `None`: every port.
    pub port: Option<u16>,
}

const FORM: &str = "expected \"host\" or \"*.host\", either with an optional \":port\"";

impl HostPattern {
    /// Parses `host`, `*.host`, `host:port` or `*.host:port`, where host is a DNS name (its
    /// labels made of a-z, 0-9 and `-`; upper case is lowered) or an IP address (an IPv6 one
    /// in brackets when a port follows). The error says what is wrong, without the input.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        if text.is_empty() {
            return Err(format!("empty, {FORM}"));
        }
        let (host, port) = split_port(text)?;
        if let Some(inner) = host.strip_prefix('[') {
            let Some(addr) = inner.strip_suffix(']') else {
                return Err("unclosed \"[\" of an IPv6 address".into());
            };
            let addr: Ipv6Addr = addr
                .parse()
                .map_err(|_| format!("\"{addr}\" is not an IPv6 address"))?;
            return Ok(HostPattern {
                wildcard: false,
                host: addr.to_string(),
                port,
            });
        }
        if host.contains(':') {
            // More than one colon and no brackets: a bare IPv6 address, which cannot take a
            // port (split_port left it whole).
            let addr: Ipv6Addr = host.parse().map_err(|_| {
                format!("\"{host}\" is not an IPv6 address (write \"[address]:port\" for a port)")
            })?;
            return Ok(HostPattern {
                wildcard: false,
                host: addr.to_string(),
                port,
            });
        }
        let (wildcard, name) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        if name.contains('*') {
            return Err(format!(
                "\"*\" may only be the whole first label (\"*.example.com\"), {FORM}"
            ));
        }
        if name.is_empty() {
            return Err(format!("no host name, {FORM}"));
        }
        if let Ok(addr) = name.parse::<Ipv4Addr>() {
            if wildcard {
                return Err("a wildcard cannot apply to an IP address".into());
            }
            return Ok(HostPattern {
                wildcard,
                host: addr.to_string(),
                port,
            });
        }
        let name = name.to_ascii_lowercase();
        check_dns_name(&name)?;
        Ok(HostPattern {
            wildcard,
            host: name,
            port,
        })
    }

    /// Whether a connection to `host` (a name, in any case, or an IP address, IPv6 with or
    /// without brackets) on `port` matches. `*.example.com` matches `a.example.com` and
    /// `a.b.example.com`, not `example.com`.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.strip_suffix('.').unwrap_or(host);
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(addr) = bare.parse::<IpAddr>() {
            return !self.wildcard && self.host == addr.to_string();
        }
        let host = host.to_ascii_lowercase();
        if self.wildcard {
            host.strip_suffix(self.host.as_str())
                .and_then(|prefix| prefix.strip_suffix('.'))
                .is_some_and(|prefix| !prefix.is_empty())
        } else {
            host == self.host
        }
    }

    /// Whether the host is an IPv6 address.
    fn is_ipv6(&self) -> bool {
        self.host.contains(':')
    }
}

/// Splits off a `:port`: after `]` for a bracketed IPv6 address, after the only colon
/// otherwise; a text with several colons and no brackets is a bare IPv6 address.
fn split_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let split = if text.starts_with('[') {
        text.rfind("]:").map(|i| i + 1)
    } else if text.matches(':').count() == 1 {
        text.find(':')
    } else {
        None
    };
    let Some(i) = split else {
        return Ok((text, None));
    };
    let (host, port) = (&text[..i], &text[i + 1..]);
    let valid = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    match port.parse::<u16>() {
        Ok(n) if valid && n > 0 => Ok((host, Some(n))),
        _ => Err(format!("port \"{port}\" is not a number in 1..=65535")),
    }
}

/// Checks a lower-case DNS name: labels of 1 to 63 of a-z, 0-9 and `-` (not first or last),
/// at most 253 characters, the last label not all digits.
fn check_dns_name(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err("host name longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("\"{name}\" has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!("label \"{label}\" is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!(
                "label \"{label}\" has {c:?}: host names hold only a-z, 0-9, - and ."
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label \"{label}\" starts or ends with \"-\""));
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "\"{name}\" is neither an IPv4 address nor a host name"
        ));
    }
    Ok(())
}

impl fmt::Display for HostPattern {
    /// The canonical text: `*.example.com:443`, `[2001:db8::1]:8080`, `2001:db8::1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        match self.port {
            Some(port) if self.is_ipv6() => write!(f, "[{}]:{port}", self.host),
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}
