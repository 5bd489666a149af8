//! Test support: a proptest strategy generating valid policies (feature `proptest`).

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

use crate::units::{GIB, KIB, MIB, TIB};
use crate::{
    Bounds, Filesystem, FsMode, HostPattern, Limits, NetMode, Network, Policy, Process,
    RootfsSetting,
};

const CAPS: &[&str] = &[
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETUID",
    "CAP_SYS_PTRACE",
];
const DEVICES: &[&str] = &[
    "/dev/fuse",
    "/dev/kvm",
    "/dev/net/tun",
    "/dev/dri/renderD128",
];
const DAY_MS: u64 = 24 * 3_600_000;

/// A size in `min..=max`, often a whole number of KiB, MiB or GiB.
fn size(min: u64, max: u64) -> BoxedStrategy<u64> {
    prop_oneof![
        min..=max,
        (min.div_ceil(MIB)..=max / MIB).prop_map(|n| n * MIB),
        (min.div_ceil(GIB)..=max / GIB).prop_map(|n| n * GIB),
        (min.div_ceil(KIB)..=max / KIB).prop_map(|n| n * KIB),
    ]
    .boxed()
}

/// A duration in ms, often a whole number of seconds, minutes or hours.
fn duration() -> BoxedStrategy<u64> {
    prop_oneof![
        1..=30 * DAY_MS,
        (1..=30 * 86_400u64).prop_map(|s| s * 1000),
        (1..=30 * 24u64).prop_map(|h| h * 3_600_000),
    ]
    .boxed()
}

/// A bound at or above `limit`, within `max`.
fn above(limit: u64, max: u64) -> BoxedStrategy<u64> {
    prop_oneof![Just(limit), limit..=max].boxed()
}

/// An optional bound at or above an optional limit (either may be `None`; a `Some` limit
/// always has a bound).
fn above_opt(limit: Option<u64>, max: u64, min: u64) -> BoxedStrategy<Option<u64>> {
    match limit {
        Some(l) => above(l, max).prop_map(Some).boxed(),
        None => option::of(min..=max).boxed(),
    }
}

fn arb_limits() -> impl Strategy<Value = Limits> {
    (
        (size(8 * MIB, TIB), size(0, TIB), option::of(1u32..=102_400)),
        (
            2u64..=4_194_304,
            size(MIB, TIB),
            size(MIB, TIB),
            size(MIB, TIB),
        ),
        (
            16u64..=1_048_576,
            option::of(duration()),
            option::of(duration()),
            option::of(duration()),
        ),
    )
        .prop_map(
            |(
                (memory, swap, cpu_percent),
                (pids, workspace_size, tmp_size, shm_size),
                (open_files, timeout_ms, idle_timeout_ms, ttl_ms),
            )| Limits {
                memory,
                swap,
                cpu_percent,
                pids,
                workspace_size,
                tmp_size,
                shm_size,
                open_files,
                timeout_ms,
                idle_timeout_ms,
                ttl_ms,
            },
        )
}

fn arb_bounds(l: &Limits, capabilities: Vec<String>) -> impl Strategy<Value = Bounds> {
    let max_caps = subsequence(CAPS, 0..=CAPS.len()).prop_map(move |extra| {
        let mut caps = capabilities.clone();
        caps.extend(
            extra
                .into_iter()
                .map(str::to_owned)
                .filter(|c| !capabilities.contains(c)),
        );
        caps
    });
    (
        (
            above(l.memory, TIB),
            above(l.swap, TIB),
            above_opt(l.cpu_percent.map(u64::from), 102_400, 1),
            above(l.pids, 4_194_304),
        ),
        (
            above(l.workspace_size, TIB),
            above(l.tmp_size, TIB),
            above(l.shm_size, TIB),
            above(l.open_files, 1_048_576),
        ),
        (
            above_opt(l.timeout_ms, 30 * DAY_MS, 1),
            above_opt(l.idle_timeout_ms, 30 * DAY_MS, 1),
            above_opt(l.ttl_ms, 30 * DAY_MS, 1),
            max_caps,
        ),
    )
        .prop_map(
            |(
                (memory, swap, cpu_percent, pids),
                (workspace_size, tmp_size, shm_size, open_files),
                (timeout_ms, idle_timeout_ms, ttl_ms, capabilities),
            )| Bounds {
                memory,
                swap,
                cpu_percent: cpu_percent.map(|p| u32::try_from(p).expect("in range")),
                pids,
                workspace_size,
                tmp_size,
                shm_size,
                open_files,
                timeout_ms,
                idle_timeout_ms,
                ttl_ms,
                capabilities,
            },
        )
}

/// An absolute, clean path of one to three components, not `/`.
fn arb_path(prefix: &'static str) -> impl Strategy<Value = String> {
    vec("[a-z0-9_-][a-z0-9._-]{0,6}", 1..=3)
        .prop_map(move |parts| format!("{prefix}/{}", parts.join("/")))
}

fn arb_host_pattern() -> impl Strategy<Value = HostPattern> {
    let name = (
        any::<bool>(),
        vec("[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", 0..=2),
        "[a-z]{1,6}",
    )
        .prop_map(|(wildcard, mut labels, tld)| {
            labels.push(tld);
            (wildcard, labels.join("."))
        });
    let ip = prop_oneof![
        any::<std::net::Ipv4Addr>().prop_map(|a| a.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|a| a.to_string()),
    ]
    .prop_map(|host| (false, host));
    (prop_oneof![name, ip], option::of(1u16..=65535)).prop_map(|((wildcard, host), port)| {
        HostPattern {
            wildcard,
            host,
            port,
        }
    })
}

fn arb_filesystem() -> impl Strategy<Value = Filesystem> {
    let rootfs = prop_oneof![
        Just(RootfsSetting::Host),
        arb_path("").prop_map(RootfsSetting::Path),
    ];
    let mode = select(&[FsMode::ReadOnly, FsMode::WorkspaceOnly, FsMode::Full][..]);
    (
        rootfs,
        mode,
        any::<bool>(),
        vec(arb_path(""), 0..4).prop_map(|mut dirs| {
            dirs.sort();
            dirs.dedup();
            dirs
        }),
    )
        .prop_map(|(rootfs, mode, custom_rootfs, host_mounts)| Filesystem {
            // `full` needs a root filesystem directory.
            mode: if rootfs == RootfsSetting::Host && mode == FsMode::Full {
                FsMode::WorkspaceOnly
            } else {
                mode
            },
            rootfs,
            custom_rootfs,
            host_mounts,
        })
}

fn arb_network() -> impl Strategy<Value = Network> {
    (
        select(&[NetMode::None, NetMode::Allowlist, NetMode::Full][..]),
        vec(arb_host_pattern(), 0..4),
        vec(arb_host_pattern(), 0..3),
    )
        .prop_map(|(mode, allow_hosts, deny_hosts)| Network {
            mode,
            // allow_hosts needs a mode that can use them.
            allow_hosts: if mode == NetMode::None {
                Vec::new()
            } else {
                allow_hosts
            },
            deny_hosts,
        })
}

fn arb_env() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(
        prop_oneof!["[A-Z_][A-Z0-9_]{0,8}", "[^=\u{0}]{1,6}"],
        "[^\u{0}]{0,12}",
        0..4,
    )
}

/// Any valid policy: every value within its sanity range, every bound at or above its limit,
/// the file's cross-field rules kept. Its `name` is `arb`.
pub fn arb_policy() -> impl Strategy<Value = Policy> {
    let caps = subsequence(CAPS, 0..=3)
        .prop_map(|caps| caps.into_iter().map(str::to_owned).collect::<Vec<_>>());
    let limits_and_max = (arb_limits(), caps).prop_flat_map(|(limits, caps)| {
        let bounds = arb_bounds(&limits, caps.clone());
        (Just(limits), bounds, Just(caps))
    });
    let seccomp = prop_oneof![
        Just("default".to_owned()),
        Just("browser".to_owned()),
        arb_path("/etc/sandboxd").prop_map(|p| format!("{p}.json")),
    ];
    (
        limits_and_max,
        "[^\u{0}-\u{1f}\u{7f}-\u{9f}]{0,30}",
        arb_filesystem(),
        arb_network(),
        (seccomp, any::<bool>(), arb_env()),
        subsequence(DEVICES, 0..=DEVICES.len()),
    )
        .prop_map(
            |(
                (limits, max, capabilities),
                description,
                filesystem,
                network,
                (seccomp, no_new_privileges, env),
                devices,
            )| Policy {
                name: "arb".to_owned(),
                description,
                limits,
                max,
                filesystem,
                network,
                process: Process {
                    capabilities,
                    seccomp,
                    no_new_privileges,
                    env,
                },
                devices: devices.into_iter().map(str::to_owned).collect(),
            },
        )
}
