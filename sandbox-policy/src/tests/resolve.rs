use sandbox_proto::{Limits as ReqLimits, Mount, Rootfs};

use crate::units::{GIB, MIB};
use crate::{BoundError, FsMode, NetMode, Policy, Request, Resolved, RootfsSetting};

/// A test policy: `ci`-like bounds, a rootfs path, two host directories.
fn policy() -> Policy {
    Policy::parse(
        "ci",
        "ci.toml",
        r#"
[limits]
memory = "1GiB"
cpu_percent = 200
timeout = "1h"

[max]
memory = "2GiB"
cpu_percent = 400
ttl = "1d"
capabilities = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]

[filesystem]
mode = "full"
rootfs = "/srv/rootfs"
custom_rootfs = true
host_mounts = ["/home", "/srv/data"]

[network]
mode = "allowlist"
allow_hosts = ["example.com:443"]

[process]
capabilities = ["CAP_KILL"]
env = { B = "2", A = "1" }
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The parts of a request a test changes.
#[derive(Default, Clone)]
struct Req {
    limits: ReqLimits,
    ttl_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    filesystem: Option<FsMode>,
    network: Option<NetMode>,
    capabilities: Option<Vec<String>>,
    rootfs: Rootfs,
    mounts: Vec<Mount>,
}

impl Req {
    fn resolve(&self, policy: &Policy) -> Result<Resolved, BoundError> {
        policy.resolve(&Request {
            limits: &self.limits,
            ttl_ms: self.ttl_ms,
            idle_timeout_ms: self.idle_timeout_ms,
            filesystem: self.filesystem,
            network: self.network,
            capabilities: self.capabilities.as_deref(),
            rootfs: &self.rootfs,
            mounts: &self.mounts,
        })
    }
}

fn mount(host: &str, read_only: bool) -> Mount {
    Mount {
        host: host.into(),
        sandbox: "/mnt".into(),
        read_only,
    }
}

fn caps(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|c| (*c).to_owned()).collect())
}

#[test]
fn empty_request_gives_the_policy() {
    let r = Req::default().resolve(&policy()).unwrap();
    assert_eq!(
        r,
        Resolved {
            memory: GIB,
            swap: 0,
            cpus: Some(2.0),
            pids: 1024,
            workspace_size: 512 * MIB,
            tmp_size: 256 * MIB,
            shm_size: 64 * MIB,
            open_files: 8192,
            timeout_ms: Some(3_600_000),
            idle_timeout_ms: None,
            ttl_ms: None,
            filesystem: FsMode::Full,
            network: NetMode::Allowlist,
            capabilities: vec!["CAP_KILL".into()],
            rootfs: RootfsSetting::Path("/srv/rootfs".into()),
            seccomp: "default".into(),
            no_new_privileges: true,
            devices: vec![],
            env: vec!["A=1".into(), "B=2".into()],
            allow_hosts: policy().network.allow_hosts,
            deny_hosts: vec![],
        }
    );
}

#[test]
fn requests_within_bounds() {
    type Check = fn(&Resolved) -> bool;
    let table: Vec<(Req, Check)> = vec![
        (
            Req {
                limits: ReqLimits {
                    memory: Some(2 * GIB),
                    ..Default::default()
                },
                ..Default::default()
            },
            |r| r.memory == 2 * GIB,
        ),
        (
            Req {
                limits: ReqLimits {
                    memory: Some(8 * MIB),
                    ..Default::default()
                },
                ..Default::default()
            },
            |r| r.memory == 8 * MIB,
        ),
        (
            Req {
                limits: ReqLimits {
                    cpus: Some(4.0),
                    ..Default::default()
                },
                ..Default::default()
            },
            |r| r.cpus == Some(4.0),
        ),
        (
            Req {
                limits: ReqLimits {
                    cpus: Some(0.5),
                    ..Default::default()
                },
                ..Default::default()
            },
            |r| r.cpus == Some(0.5),
        ),
        (
            Req {
                limits: ReqLimits {
                    pids: Some(100),
                    open_files: Some(16),
                    ..Default::default()
                },
                ..Default::default()
            },
            |r| r.pids == 100 && r.open_files == 16,
        ),
        (
            Req {
                limits: ReqLimits {
                    timeout_ms: Some(1000),
                    ..Default::default()
                },
                ..Default::default()
            },
            |r| r.timeout_ms == Some(1000),
        ),
        (
            Req {
                ttl_ms: Some(86_400_000),
                ..Default::default()
            },
            |r| r.ttl_ms == Some(86_400_000),
        ),
        (
            Req {
                idle_timeout_ms: Some(5),
                ..Default::default()
            },
            |r| r.idle_timeout_ms == Some(5),
        ),
        (
            Req {
                filesystem: Some(FsMode::ReadOnly),
                ..Default::default()
            },
            |r| r.filesystem == FsMode::ReadOnly,
        ),
        (
            Req {
                filesystem: Some(FsMode::Full),
                ..Default::default()
            },
            |r| r.filesystem == FsMode::Full,
        ),
        (
            Req {
                network: Some(NetMode::None),
                ..Default::default()
            },
            |r| r.network == NetMode::None,
        ),
        (
            Req {
                capabilities: caps(&[]),
                ..Default::default()
            },
            |r| r.capabilities.is_empty(),
        ),
        (
            Req {
                capabilities: caps(&["CAP_NET_BIND_SERVICE", "CAP_KILL"]),
                ..Default::default()
            },
            |r| r.capabilities == ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        ),
        (
            Req {
                rootfs: Rootfs::Path {
                    path: "/srv/other".into(),
                },
                ..Default::default()
            },
            |r| r.rootfs == RootfsSetting::Path("/srv/other".into()),
        ),
        (
            Req {
                rootfs: Rootfs::Host,
                filesystem: Some(FsMode::WorkspaceOnly),
                ..Default::default()
            },
            |r| r.rootfs == RootfsSetting::Host,
        ),
        (
            Req {
                mounts: vec![
                    mount("/home", false),
                    mount("/home/u/src", false),
                    mount("/srv/data/x", true),
                ],
                ..Default::default()
            },
            |r| r.filesystem == FsMode::Full,
        ),
        (
            Req {
                filesystem: Some(FsMode::ReadOnly),
                mounts: vec![mount("/home/u", true)],
                ..Default::default()
            },
            |r| r.filesystem == FsMode::ReadOnly,
        ),
    ];
    for (i, (req, check)) in table.iter().enumerate() {
        let r = req
            .resolve(&policy())
            .unwrap_or_else(|e| panic!("row {i}: {e}"));
        assert!(check(&r), "row {i}: {r:?}");
    }
}

#[test]
fn every_bound_error() {
    let l = |f: fn(&mut ReqLimits)| {
        let mut limits = ReqLimits::default();
        f(&mut limits);
        Req {
            limits,
            ..Default::default()
        }
    };
    let table: Vec<(Req, &str)> = vec![
        (l(|l| l.memory = Some(4 * GIB)), "limits.memory: 4294967296 bytes is above the policy's maximum 2147483648 bytes (policy ci)"),
        (l(|l| l.memory = Some(MIB)), "limits.memory: 1048576 bytes is below the minimum 8388608 bytes (policy ci)"),
        (l(|l| l.swap = Some(1)), "limits.swap: 1 bytes is above the policy's maximum 0 bytes (policy ci)"),
        (l(|l| l.pids = Some(1)), "limits.pids: 1 is below the minimum 2 (policy ci)"),
        (l(|l| l.pids = Some(1025)), "limits.pids: 1025 is above the policy's maximum 1024 (policy ci)"),
        (l(|l| l.workspace_size = Some(GIB)), "limits.workspace_size: 1073741824 bytes is above the policy's maximum 536870912 bytes (policy ci)"),
        (l(|l| l.workspace_size = Some(0)), "limits.workspace_size: 0 bytes is below the minimum 1048576 bytes (policy ci)"),
        (l(|l| l.tmp_size = Some(GIB)), "limits.tmp_size: 1073741824 bytes is above the policy's maximum 268435456 bytes (policy ci)"),
        (l(|l| l.shm_size = Some(GIB)), "limits.shm_size: 1073741824 bytes is above the policy's maximum 67108864 bytes (policy ci)"),
        (l(|l| l.open_files = Some(8193)), "limits.open_files: 8193 is above the policy's maximum 8192 (policy ci)"),
        (l(|l| l.open_files = Some(15)), "limits.open_files: 15 is below the minimum 16 (policy ci)"),
        (l(|l| l.timeout_ms = Some(3_600_001)), "limits.timeout_ms: 3600001 ms is above the policy's maximum 3600000 ms (policy ci)"),
        (l(|l| l.timeout_ms = Some(0)), "limits.timeout_ms: 0 ms is below the minimum 1 ms (policy ci)"),
        (l(|l| l.cpus = Some(4.5)), "limits.cpus: 4.5 CPUs is above the policy's maximum 4 CPUs (policy ci)"),
        (l(|l| l.cpus = Some(0.001)), "limits.cpus: 0.001 CPUs is below the minimum 0.01 (policy ci)"),
        (l(|l| l.cpus = Some(0.0)), "limits.cpus: 0 is not a positive number of CPUs (policy ci)"),
        (l(|l| l.cpus = Some(-1.0)), "limits.cpus: -1 is not a positive number of CPUs (policy ci)"),
        (l(|l| l.cpus = Some(f64::NAN)), "limits.cpus: NaN is not a positive number of CPUs (policy ci)"),
        (l(|l| l.cpus = Some(f64::INFINITY)), "limits.cpus: inf is not a positive number of CPUs (policy ci)"),
        (Req { ttl_ms: Some(86_400_001), ..Default::default() }, "ttl_ms: 86400001 ms is above the policy's maximum 86400000 ms (policy ci)"),
        (Req { ttl_ms: Some(0), ..Default::default() }, "ttl_ms: 0 ms is below the minimum 1 ms (policy ci)"),
        (Req { idle_timeout_ms: Some(31 * 86_400_000), ..Default::default() }, "idle_timeout_ms: 2678400000 ms is above the maximum 2592000000 ms (policy ci)"),
        (Req { network: Some(NetMode::Full), ..Default::default() }, "network: full is more than the policy's allowlist (policy ci)"),
        (Req { capabilities: caps(&["CAP_KILL", "CAP_SYS_ADMIN"]), ..Default::default() }, "capabilities[1]: CAP_SYS_ADMIN is not among the capabilities the policy allows (CAP_KILL, CAP_NET_BIND_SERVICE) (policy ci)"),
        (Req { capabilities: caps(&["kill"]), ..Default::default() }, "capabilities[0]: \"kill\" is not a capability name; write \"CAP_KILL\" (policy ci)"),
        (Req { capabilities: caps(&["CAP_KILL", "CAP_KILL"]), ..Default::default() }, "capabilities[1]: CAP_KILL is listed twice (policy ci)"),
        (Req { rootfs: Rootfs::Host, ..Default::default() }, "filesystem: full needs a root filesystem directory: the host's directories cannot be overlaid (policy ci)"),
        (Req { rootfs: Rootfs::Host, filesystem: Some(FsMode::Full), ..Default::default() }, "filesystem: full needs a root filesystem directory: the host's directories cannot be overlaid (policy ci)"),
        (Req { rootfs: Rootfs::Path { path: "rootfs".into() }, ..Default::default() }, "rootfs: \"rootfs\": not an absolute path (expected \"host\" or an absolute path) (policy ci)"),
        (Req { rootfs: Rootfs::Path { path: "/".into() }, ..Default::default() }, "rootfs: \"/\" is the host's root: write \"host\" (policy ci)"),
        (Req { mounts: vec![mount("/home", false), mount("/etc", false)], ..Default::default() }, "mounts[1].host: /etc is not under a directory the policy allows (/home, /srv/data) (policy ci)"),
        (Req { mounts: vec![mount("/home2", false)], ..Default::default() }, "mounts[0].host: /home2 is not under a directory the policy allows (/home, /srv/data) (policy ci)"),
        (Req { mounts: vec![mount("/srv", false)], ..Default::default() }, "mounts[0].host: /srv is not under a directory the policy allows (/home, /srv/data) (policy ci)"),
        (Req { mounts: vec![mount("/home/../etc", false)], ..Default::default() }, "mounts[0].host: \"/home/../etc\": not a clean path (no \".\", \"..\", \"//\" or trailing \"/\") (policy ci)"),
        (Req { mounts: vec![mount("/home/./u", false)], ..Default::default() }, "mounts[0].host: \"/home/./u\": not a clean path (no \".\", \"..\", \"//\" or trailing \"/\") (policy ci)"),
        (Req { mounts: vec![mount("home", false)], ..Default::default() }, "mounts[0].host: \"home\": not an absolute path (policy ci)"),
        (Req { filesystem: Some(FsMode::ReadOnly), mounts: vec![mount("/home", true), mount("/home/u", false)], ..Default::default() }, "mounts[1].read_only: the filesystem mode is read-only: a host directory must be mounted read-only (policy ci)"),
    ];
    let mut failures = Vec::new();
    for (i, (req, want)) in table.iter().enumerate() {
        match req.resolve(&policy()) {
            Ok(r) => failures.push(format!("row {i}: resolved {r:?}, want {want}")),
            Err(e) if e.to_string() != *want => {
                failures.push(format!("row {i}:\n   got {e}\n  want {want}"));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bound_errors_of_other_policies() {
    let strict = Policy::parse(
        "strict",
        "s",
        "[filesystem]\nmode = \"read-only\"\ncustom_rootfs = false\n[network]\nmode = \"none\"",
    )
    .unwrap();
    let table: Vec<(Req, &str)> = vec![
        (Req { filesystem: Some(FsMode::WorkspaceOnly), ..Default::default() }, "filesystem: workspace-only is more than the policy's read-only (policy strict)"),
        (Req { network: Some(NetMode::Allowlist), ..Default::default() }, "network: allowlist is more than the policy's none (policy strict)"),
        (Req { rootfs: Rootfs::Path { path: "/srv/r".into() }, ..Default::default() }, "rootfs: the policy allows no other root filesystem than its own (policy strict)"),
        (Req { mounts: vec![mount("/home", true)], ..Default::default() }, "mounts[0].host: the policy allows no host directories (policy strict)"),
        (Req { capabilities: caps(&["CAP_KILL"]), ..Default::default() }, "capabilities[0]: CAP_KILL is not among the capabilities the policy allows (none) (policy strict)"),
        (Req { limits: ReqLimits { memory: Some(2 * GIB), ..Default::default() }, ..Default::default() }, "limits.memory: 2147483648 bytes is above the policy's maximum 1073741824 bytes (policy strict)"),
    ];
    for (req, want) in table {
        assert_eq!(req.resolve(&strict).unwrap_err().to_string(), want);
    }
    // What strict allows: its own rootfs named explicitly, nothing at all.
    let ok = Req {
        rootfs: Rootfs::Host,
        ..Default::default()
    }
    .resolve(&strict)
    .unwrap();
    assert_eq!(ok.rootfs, RootfsSetting::Host);
    assert_eq!(ok.cpus, None);
}

#[test]
fn unbounded_options() {
    // No CPU limit and no bound: any sane CPU quota; no timeout bound: any sane timeout.
    let p = Policy::builtin_default();
    let req = Req {
        limits: ReqLimits {
            cpus: Some(64.0),
            timeout_ms: Some(30 * 86_400_000),
            ..Default::default()
        },
        ttl_ms: Some(1),
        ..Default::default()
    };
    let r = req.resolve(&p).unwrap();
    assert_eq!(
        (r.cpus, r.timeout_ms, r.ttl_ms),
        (Some(64.0), Some(30 * 86_400_000), Some(1))
    );
    let req = Req {
        limits: ReqLimits {
            cpus: Some(2000.0),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        req.resolve(&p).unwrap_err().to_string(),
        "limits.cpus: 2000 CPUs is above the maximum 1024 (policy builtin)"
    );
    // A bound with no limit: requests may ask up to it, and get none by default.
    let p = Policy::parse("p", "p", "[max]\ncpu_percent = 150\ntimeout = \"1h\"").unwrap();
    assert_eq!(Req::default().resolve(&p).unwrap().cpus, None);
    assert_eq!(Req::default().resolve(&p).unwrap().timeout_ms, None);
    let req = Req {
        limits: ReqLimits {
            cpus: Some(1.5),
            timeout_ms: Some(3_600_000),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(req.resolve(&p).unwrap().cpus, Some(1.5));
    let req = Req {
        limits: ReqLimits {
            cpus: Some(1.51),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        req.resolve(&p).unwrap_err().to_string(),
        "limits.cpus: 1.51 CPUs is above the policy's maximum 1.5 CPUs (policy p)"
    );
}
