use std::collections::BTreeMap;

use crate::units::{GIB, MIB};
use crate::{FsMode, HostPattern, NetMode, Policy, RootfsSetting, SHIPPED};

fn parse(text: &str) -> Policy {
    Policy::parse("p", "p.toml", text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn empty_file_is_the_builtin_default() {
    let mut p = parse("");
    assert_eq!(p.name, "p");
    p.name = "builtin".into();
    assert_eq!(p, Policy::builtin_default());
    let b = Policy::builtin_default();
    assert_eq!(b.name, "builtin");
    assert_eq!(b.description, "");
    assert_eq!(
        (
            b.limits.memory,
            b.limits.swap,
            b.limits.cpu_percent,
            b.limits.pids
        ),
        (GIB, 0, None, 1024)
    );
    assert_eq!(
        (
            b.limits.workspace_size,
            b.limits.tmp_size,
            b.limits.shm_size,
            b.limits.open_files
        ),
        (512 * MIB, 256 * MIB, 64 * MIB, 8192)
    );
    assert_eq!(
        (
            b.limits.timeout_ms,
            b.limits.idle_timeout_ms,
            b.limits.ttl_ms
        ),
        (None, None, None)
    );
    assert_eq!(
        (
            b.max.memory,
            b.max.pids,
            b.max.cpu_percent,
            b.max.timeout_ms
        ),
        (GIB, 1024, None, None)
    );
    assert!(b.max.capabilities.is_empty());
    assert_eq!(b.filesystem.mode, FsMode::WorkspaceOnly);
    assert_eq!(b.filesystem.rootfs, RootfsSetting::Host);
    assert!(b.filesystem.custom_rootfs);
    assert!(b.filesystem.host_mounts.is_empty());
    assert_eq!(b.network.mode, NetMode::None);
    assert!(b.network.allow_hosts.is_empty() && b.network.deny_hosts.is_empty());
    assert!(b.process.capabilities.is_empty());
    assert_eq!(b.process.seccomp, "default");
    assert!(b.process.no_new_privileges);
    assert!(b.process.env.is_empty());
    assert!(b.devices.is_empty());
}

#[test]
fn the_format_example() {
    let p = parse(
        r#"
description = "one line"
devices = ["/dev/fuse"]

[limits]
memory = "1GiB"
swap = 0
cpu_percent = 100
pids = 1024
workspace_size = "512MiB"
tmp_size = "256MiB"
shm_size = "64MiB"
open_files = 8192
timeout = "10m"
idle_timeout = "15m"
ttl = "4h"

[max]
memory = "4GiB"
timeout = "1d"
capabilities = ["CAP_NET_BIND_SERVICE"]

[filesystem]
mode = "workspace-only"
rootfs = "host"
custom_rootfs = true
host_mounts = ["/home", "/srv"]

[network]
mode = "allowlist"
allow_hosts = ["example.com", "*.example.com:443"]
deny_hosts = ["bad.example.com"]

[process]
capabilities = []
seccomp = "default"
no_new_privileges = true
env = { NODE_ENV = "production" }
"#,
    );
    assert_eq!(p.description, "one line");
    assert_eq!(p.devices, ["/dev/fuse"]);
    assert_eq!(p.limits.cpu_percent, Some(100));
    assert_eq!(p.limits.timeout_ms, Some(600_000));
    assert_eq!(p.limits.idle_timeout_ms, Some(900_000));
    assert_eq!(p.limits.ttl_ms, Some(4 * 3_600_000));
    // Left out of [max]: the limit.
    assert_eq!(p.max.memory, 4 * GIB);
    assert_eq!(p.max.pids, 1024);
    assert_eq!(p.max.cpu_percent, Some(100));
    assert_eq!(p.max.timeout_ms, Some(86_400_000));
    assert_eq!(p.max.ttl_ms, Some(4 * 3_600_000));
    assert_eq!(p.max.capabilities, ["CAP_NET_BIND_SERVICE"]);
    assert_eq!(p.filesystem.host_mounts, ["/home", "/srv"]);
    assert_eq!(p.network.mode, NetMode::Allowlist);
    assert_eq!(
        p.network.allow_hosts,
        [
            HostPattern::parse("example.com").unwrap(),
            HostPattern::parse("*.example.com:443").unwrap()
        ]
    );
    assert_eq!(p.network.deny_hosts[0].host, "bad.example.com");
    assert_eq!(
        p.process.env,
        BTreeMap::from([("NODE_ENV".to_owned(), "production".to_owned())])
    );
}

#[test]
fn good_values() {
    // (file text, what it gives, checked by a function of the policy)
    type Check = fn(&Policy) -> bool;
    let table: &[(&str, Check)] = &[
        ("[limits]\nmemory = 8388608", |p| p.limits.memory == 8 * MIB),
        ("[limits]\nmemory = \"1TiB\"", |p| p.limits.memory == 1 << 40),
        ("[limits]\nmemory = \"2048MiB\"", |p| p.limits.memory == 2 * GIB),
        ("[limits]\nswap = \"1TiB\"", |p| p.limits.swap == 1 << 40 && p.max.swap == 1 << 40),
        ("[limits]\ncpu_percent = 1", |p| p.limits.cpu_percent == Some(1)),
        ("[limits]\ncpu_percent = 102400", |p| p.max.cpu_percent == Some(102_400)),
        ("[max]\ncpu_percent = 400", |p| p.limits.cpu_percent.is_none() && p.max.cpu_percent == Some(400)),
        ("[limits]\npids = 2", |p| p.limits.pids == 2),
        ("[limits]\nopen_files = 16", |p| p.limits.open_files == 16),
        ("[limits]\ntimeout = 1", |p| p.limits.timeout_ms == Some(1)),
        ("[limits]\ntimeout = \"30d\"", |p| p.limits.timeout_ms == Some(30 * 86_400_000)),
        ("[limits]\ntimeout = \"500ms\"", |p| p.limits.timeout_ms == Some(500)),
        ("[max]\ntimeout = \"1h\"", |p| p.limits.timeout_ms.is_none() && p.max.timeout_ms == Some(3_600_000)),
        ("[max]\nttl = \"7d\"\nidle_timeout = \"1d\"", |p| p.max.ttl_ms == Some(7 * 86_400_000) && p.max.idle_timeout_ms == Some(86_400_000)),
        ("[process]\ncapabilities = [\"CAP_KILL\"]", |p| p.max.capabilities == ["CAP_KILL"]),
        ("[max]\ncapabilities = [\"CAP_CHOWN\", \"CAP_KILL\"]\n[process]\ncapabilities = [\"CAP_KILL\"]", |p| p.max.capabilities == ["CAP_CHOWN", "CAP_KILL"]),
        ("[filesystem]\nmode = \"full\"\nrootfs = \"/srv/rootfs/alpine\"", |p| p.filesystem.mode == FsMode::Full && p.filesystem.rootfs == RootfsSetting::Path("/srv/rootfs/alpine".into())),
        ("[filesystem]\nmode = \"read-only\"\ncustom_rootfs = false", |p| p.filesystem.mode == FsMode::ReadOnly && !p.filesystem.custom_rootfs),
        ("[network]\nmode = \"full\"\nallow_hosts = [\"a.com\"]", |p| p.network.mode == NetMode::Full && p.network.allow_hosts.len() == 1),
        ("[network]\ndeny_hosts = [\"10.0.0.1\"]", |p| p.network.mode == NetMode::None && p.network.deny_hosts.len() == 1),
        ("[network]\nmode = \"allowlist\"", |p| p.network.allow_hosts.is_empty()),
        ("[process]\nseccomp = \"browser\"", |p| p.process.seccomp == "browser"),
        ("[process]\nseccomp = \"/etc/sandboxd/seccomp/mine.json\"", |p| p.process.seccomp == "/etc/sandboxd/seccomp/mine.json"),
        ("[process]\nno_new_privileges = false", |p| !p.process.no_new_privileges),
        ("[process.env]\nPATH = \"/usr/bin\"\n\"my var\" = \"a=b\"", |p| p.process.env["my var"] == "a=b" && p.process.env.len() == 2),
        ("devices = [\"/dev/fuse\", \"/dev/net/tun\", \"/dev/kvm\"]", |p| p.devices == ["/dev/fuse", "/dev/net/tun", "/dev/kvm"]),
        ("description = \"Ünïcode is fine\"", |p| p.description == "Ünïcode is fine"),
        ("limits.memory = \"2GiB\"\nfilesystem.mode = \"read-only\"", |p| p.limits.memory == 2 * GIB && p.filesystem.mode == FsMode::ReadOnly),
    ];
    for (text, check) in table {
        assert!(check(&parse(text)), "{text:?}");
    }
}

#[test]
fn shipped_policies() {
    let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["browser", "ci", "default", "network-allowlist", "strict"]
    );
    for (name, text) in SHIPPED {
        let p =
            Policy::parse(name, &format!("{name}.toml"), text).unwrap_or_else(|e| panic!("{e}"));
        assert!(!p.description.is_empty(), "{name}");
    }
    let get = |name: &str| {
        let text = SHIPPED.iter().find(|(n, _)| *n == name).unwrap().1;
        Policy::parse(name, name, text).unwrap()
    };

    let d = get("default");
    assert_eq!((d.limits.memory, d.max.memory), (GIB, 4 * GIB));
    assert_eq!((d.limits.cpu_percent, d.max.cpu_percent), (None, None));
    assert_eq!((d.max.pids, d.max.open_files), (4096, 65536));
    assert_eq!(d.max.timeout_ms, Some(86_400_000));
    assert_eq!(d.max.ttl_ms, Some(7 * 86_400_000));
    assert_eq!(
        d.max.capabilities,
        ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    );
    assert!(d.process.capabilities.is_empty());
    assert_eq!(
        d.filesystem.host_mounts,
        ["/home", "/srv", "/tmp", "/var/tmp", "/work"]
    );
    assert_eq!(d.network.mode, NetMode::None);
    // Its [limits] are the built-in defaults.
    assert_eq!(d.limits, Policy::builtin_default().limits);

    let s = get("strict");
    assert_eq!(s.filesystem.mode, FsMode::ReadOnly);
    assert!(!s.filesystem.custom_rootfs && s.filesystem.host_mounts.is_empty());
    assert_eq!((s.limits.memory, s.max.memory), (256 * MIB, 256 * MIB));
    assert_eq!((s.limits.cpu_percent, s.limits.pids), (Some(50), 64));
    assert_eq!(
        (s.limits.timeout_ms, s.max.timeout_ms),
        (Some(60_000), Some(60_000))
    );
    assert_eq!(
        (s.limits.ttl_ms, s.limits.idle_timeout_ms),
        (Some(3_600_000), Some(600_000))
    );
    assert!(s.max.capabilities.is_empty());

    let c = get("ci");
    assert_eq!((c.limits.memory, c.max.memory), (4 * GIB, 8 * GIB));
    assert_eq!(
        (c.limits.cpu_percent, c.max.cpu_percent),
        (Some(200), Some(400))
    );
    assert_eq!((c.limits.pids, c.max.pids), (4096, 16384));
    assert_eq!(
        (c.limits.timeout_ms, c.max.timeout_ms),
        (Some(3_600_000), Some(6 * 3_600_000))
    );
    assert_eq!(c.limits.ttl_ms, Some(12 * 3_600_000));
    assert_eq!(c.limits.workspace_size, 8 * GIB);

    let b = get("browser");
    assert_eq!(b.process.seccomp, "browser");
    assert_eq!(
        (b.limits.shm_size, b.limits.memory, b.max.memory),
        (GIB, 2 * GIB, 4 * GIB)
    );
    assert_eq!(b.limits.cpu_percent, None);

    let n = get("network-allowlist");
    assert_eq!(n.network.mode, NetMode::Allowlist);
    assert!(n
        .network
        .allow_hosts
        .iter()
        .any(|h| h.matches("api.github.com", 443)));
    assert!(!n
        .network
        .allow_hosts
        .iter()
        .any(|h| h.matches("pypi.org", 80)));
    assert!(n
        .network
        .deny_hosts
        .iter()
        .any(|h| h.matches("gist.github.com", 443)));
    assert_eq!(n.max, d.max);
    assert_eq!(n.limits, d.limits);
}
