use proptest::prelude::*;
use sandbox_proto::{Limits as ReqLimits, Rootfs};

use crate::testing::arb_policy;
use crate::{Policy, Request, SHIPPED};

fn round_trip(p: &Policy) {
    let text = p.to_toml();
    let back =
        Policy::parse(&p.name, "rendered.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(&back, p, "\n{text}");
}

#[test]
fn shipped_and_builtin_round_trip() {
    round_trip(&Policy::builtin_default());
    for (name, text) in SHIPPED {
        round_trip(&Policy::parse(name, name, text).unwrap());
    }
}

#[test]
fn rendered_text() {
    let p = Policy::parse(
        "example",
        "example.toml",
        r#"
description = "Say \"hi\""
devices = ["/dev/fuse"]
[limits]
memory = 1000000000
cpu_percent = 150
timeout = 90000
[max]
timeout = "1d"
[filesystem]
mode = "full"
rootfs = "/srv/rootfs"
[network]
mode = "allowlist"
allow_hosts = ["EXAMPLE.com:443", "[::1]:80"]
[process.env]
PATH = "/usr/bin"
"a b" = "x\ny"
"#,
    )
    .unwrap();
    let want = r#"# Policy "example": the effective policy, every default filled in.
# An absent optional key is written as a comment.
description = "Say \"hi\""
devices = ["/dev/fuse"]

[limits]
memory = 1000000000
swap = 0
cpu_percent = 150
pids = 1024
workspace_size = "512MiB"
tmp_size = "256MiB"
shm_size = "64MiB"
open_files = 8192
timeout = "90s"
# idle_timeout: none
# ttl: none

[max]
memory = 1000000000
swap = 0
cpu_percent = 150
pids = 1024
workspace_size = "512MiB"
tmp_size = "256MiB"
shm_size = "64MiB"
open_files = 8192
timeout = "1d"
# idle_timeout: no bound
# ttl: no bound
capabilities = []

[filesystem]
mode = "full"
rootfs = "/srv/rootfs"
custom_rootfs = true
host_mounts = []

[network]
mode = "allowlist"
allow_hosts = ["example.com:443", "[::1]:80"]
deny_hosts = []

[process]
capabilities = []
seccomp = "default"
no_new_privileges = true

[process.env]
PATH = "/usr/bin"
"a b" = "x\ny"
"#;
    assert_eq!(p.to_toml(), want);
    round_trip(&p);
}

proptest! {
    #[test]
    fn any_valid_policy_round_trips(p in arb_policy()) {
        let text = p.to_toml();
        let back = Policy::parse(&p.name, "rendered.toml", &text);
        prop_assert_eq!(back, Ok(p), "{}", text);
    }

    #[test]
    fn empty_request_gives_the_limits(p in arb_policy()) {
        let limits = ReqLimits::default();
        let r = p.resolve(&Request {
            limits: &limits,
            ttl_ms: None,
            idle_timeout_ms: None,
            filesystem: None,
            network: None,
            capabilities: None,
            rootfs: &Rootfs::Policy,
            mounts: &[],
        }).unwrap();
        let l = &p.limits;
        prop_assert_eq!(
            (r.memory, r.swap, r.pids, r.workspace_size, r.tmp_size, r.shm_size, r.open_files),
            (l.memory, l.swap, l.pids, l.workspace_size, l.tmp_size, l.shm_size, l.open_files)
        );
        prop_assert_eq!(r.cpus, l.cpu_percent.map(|c| f64::from(c) / 100.0));
        prop_assert_eq!((r.timeout_ms, r.idle_timeout_ms, r.ttl_ms), (l.timeout_ms, l.idle_timeout_ms, l.ttl_ms));
        prop_assert_eq!(r.filesystem, p.filesystem.mode);
        prop_assert_eq!(r.network, p.network.mode);
        prop_assert_eq!(&r.capabilities, &p.process.capabilities);
        prop_assert_eq!(&r.rootfs, &p.filesystem.rootfs);
        prop_assert_eq!(&r.devices, &p.devices);
        prop_assert_eq!(r.env.len(), p.process.env.len());
    }

    #[test]
    fn requesting_the_bounds_is_allowed(p in arb_policy()) {
        let m = &p.max;
        let limits = ReqLimits {
            memory: Some(m.memory),
            pids: Some(m.pids),
            cpus: m.cpu_percent.map(|c| f64::from(c) / 100.0),
            timeout_ms: m.timeout_ms,
            workspace_size: Some(m.workspace_size),
            swap: Some(m.swap),
            tmp_size: Some(m.tmp_size),
            shm_size: Some(m.shm_size),
            open_files: Some(m.open_files),
        };
        let r = p.resolve(&Request {
            limits: &limits,
            ttl_ms: m.ttl_ms,
            idle_timeout_ms: m.idle_timeout_ms,
            filesystem: Some(p.filesystem.mode),
            network: Some(p.network.mode),
            capabilities: Some(&m.capabilities),
            rootfs: &Rootfs::Policy,
            mounts: &[],
        });
        prop_assert!(r.is_ok(), "{:?}", r);
    }
}
