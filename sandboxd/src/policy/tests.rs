//! Table tests of the policy: requests in, plans or errors out.

use clap::Parser;
use sandbox_proto::{FsMode, Limits, Mount, NetMode, Rootfs, RunSpec};

use super::*;

fn cfg() -> Config {
    Config::parse_from(["sandboxd", "--uid-base", "200000", "--state-dir", "/s"])
}

/// The built-in defaults, with host folders allowed under /a, /b and /h.
fn pol() -> Policy {
    Policy::parse(
        "test",
        "test.toml",
        "[filesystem]\nhost_mounts = [\"/a\", \"/b\", \"/h\"]\n",
    )
    .unwrap()
}

fn caller(uid: u32) -> Caller {
    Caller {
        uid,
        gid: uid + 1,
        pid: 42,
    }
}

fn alloc() -> Allocation {
    Allocation {
        sandbox_id: "0123456789ab".into(),
        slot: 3,
    }
}

fn spec(argv: &[&str]) -> RunSpec {
    RunSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn err(s: RunSpec) -> String {
    plan(&s, &pol(), &caller(1000), &cfg(), &alloc())
        .unwrap_err()
        .to_string()
}

#[test]
fn defaults() {
    let p = plan(&spec(&["true"]), &pol(), &caller(1000), &cfg(), &alloc()).unwrap();
    assert_eq!(p.cwd, "/workspace");
    assert_eq!(p.hostname, "0123456789ab");
    assert_eq!(p.rootfs, RootPlan::Host);
    assert_eq!(
        p.ids,
        IdMap {
            host_base: 200000 + 3 * 65536,
            count: 65536,
            caller_uid: 1000,
            caller_gid: 1001
        }
    );
    assert_eq!(p.cgroup, "sandboxd/0123456789ab");
    assert_eq!(
        p.limits,
        CgroupLimits {
            memory: Some(1 << 30),
            swap: 0,
            pids: Some(1024),
            cpus: None
        }
    );
    assert_eq!(p.workspace_size, Some(512 << 20));
    assert_eq!(p.root_dir, "/s/root");
    assert!(p.env.iter().any(|e| e.starts_with("PATH=/usr/local/sbin")));
}

#[test]
fn env_overrides_defaults_once() {
    let mut s = spec(&["true"]);
    s.env = vec!["HOME=/workspace".into(), "A=b=c".into()];
    let p = plan(&s, &pol(), &caller(0), &cfg(), &alloc()).unwrap();
    assert_eq!(
        p.env
            .iter()
            .filter(|e| e.starts_with("HOME="))
            .collect::<Vec<_>>(),
        ["HOME=/workspace"]
    );
    assert!(p.env.contains(&"A=b=c".to_string()));
}

#[test]
fn rejected_values_name_their_field() {
    let cases: Vec<(RunSpec, &str)> = vec![
        (spec(&[]), "argv: empty command"),
        (spec(&["a\0b"]), "argv[0]: contains a NUL byte"),
        (
            RunSpec {
                env: vec!["NOEQUALS".into()],
                ..spec(&["x"])
            },
            "env[0]",
        ),
        (
            RunSpec {
                env: vec!["=v".into()],
                ..spec(&["x"])
            },
            "env[0]",
        ),
        (
            RunSpec {
                cwd: Some("rel".into()),
                ..spec(&["x"])
            },
            "cwd:",
        ),
        (
            RunSpec {
                cwd: Some("/a/../b".into()),
                ..spec(&["x"])
            },
            "cwd:",
        ),
        (
            RunSpec {
                hostname: Some("-bad".into()),
                ..spec(&["x"])
            },
            "hostname:",
        ),
        (
            RunSpec {
                hostname: Some("a b".into()),
                ..spec(&["x"])
            },
            "hostname:",
        ),
        (
            RunSpec {
                limits: Limits {
                    memory: Some(1024),
                    ..Default::default()
                },
                ..spec(&["x"])
            },
            "limits.memory",
        ),
        (
            RunSpec {
                limits: Limits {
                    pids: Some(0),
                    ..Default::default()
                },
                ..spec(&["x"])
            },
            "limits.pids",
        ),
        (
            RunSpec {
                limits: Limits {
                    cpus: Some(-1.0),
                    ..Default::default()
                },
                ..spec(&["x"])
            },
            "limits.cpus",
        ),
        (
            RunSpec {
                limits: Limits {
                    cpus: Some(f64::NAN),
                    ..Default::default()
                },
                ..spec(&["x"])
            },
            "limits.cpus",
        ),
        (
            RunSpec {
                limits: Limits {
                    timeout_ms: Some(0),
                    ..Default::default()
                },
                ..spec(&["x"])
            },
            "limits.timeout_ms",
        ),
        (
            RunSpec {
                limits: Limits {
                    workspace_size: Some(5),
                    ..Default::default()
                },
                ..spec(&["x"])
            },
            "limits.workspace_size",
        ),
        (
            RunSpec {
                rootfs: Rootfs::Path { path: "/".into() },
                ..spec(&["x"])
            },
            "rootfs",
        ),
        (
            RunSpec {
                rootfs: Rootfs::Path { path: "r".into() },
                ..spec(&["x"])
            },
            "rootfs",
        ),
    ];
    for (s, want) in cases {
        let got = err(s);
        assert!(
            got.starts_with(want),
            "got {got:?}, want it to start with {want:?}"
        );
    }
}

fn mount(host: &str, sandbox: &str) -> Mount {
    Mount {
        host: host.into(),
        sandbox: sandbox.into(),
        read_only: false,
    }
}

#[test]
fn mounts_are_checked_and_ordered() {
    for (m, want) in [
        (
            mount("/h", "/proc/x"),
            "mounts[0].sandbox: /proc/x is under /proc",
        ),
        (mount("/h", "/dev"), "mounts[0].sandbox: /dev is under /dev"),
        (mount("/h", "/"), "mounts[0].sandbox: cannot mount over"),
        (mount("h", "/x"), "mounts[0].host"),
        (mount("/etc", "/x"), "mounts[0].host: "),
        (mount("/h", "/x/../proc"), "mounts[0].sandbox"),
    ] {
        let got = err(RunSpec {
            mounts: vec![m],
            ..spec(&["x"])
        });
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
    }
    let dup = RunSpec {
        mounts: vec![mount("/a", "/x"), mount("/b", "/x/")],
        ..spec(&["x"])
    };
    assert!(err(dup).contains("mounted twice"));

    let s = RunSpec {
        mounts: vec![mount("/a", "/workspace/sub"), mount("/b", "/workspace")],
        ..spec(&["x"])
    };
    let p = plan(&s, &pol(), &caller(0), &cfg(), &alloc()).unwrap();
    let order: Vec<_> = p.mounts.iter().map(|m| m.sandbox.as_str()).collect();
    assert_eq!(order, ["/workspace", "/workspace/sub"]);
    assert_eq!(
        p.workspace_size, None,
        "a host folder on /workspace replaces the tmpfs"
    );
}

#[test]
fn host_dirs_only_for_their_owner() {
    let facts = HostDirFacts {
        is_dir: true,
        uid: 1000,
    };
    assert!(check_host_dir("m", &facts, &caller(1000)).is_ok());
    assert!(check_host_dir("m", &facts, &caller(0)).is_ok());
    assert!(matches!(
        check_host_dir("m", &facts, &caller(1001)),
        Err(PolicyError::Denied { .. })
    ));
    let file = HostDirFacts {
        is_dir: false,
        uid: 1000,
    };
    assert!(check_host_dir("m", &file, &caller(1000)).is_err());
}

#[test]
fn clean_paths() {
    assert_eq!(clean_abs_path("f", "/a//b/").unwrap(), "/a/b");
    assert_eq!(clean_abs_path("f", "/").unwrap(), "/");
    assert!(clean_abs_path("f", "/a/./b").is_err());
}

#[test]
fn reachability_follows_unix_search_permission() {
    let d = |mode, uid, gid| DirPerm { mode, uid, gid };
    let open = [d(0o755, 0, 0), d(0o755, 0, 0)];
    assert!(check_reachable("f", "/a", &open, &caller(1000)).is_ok());
    let private_home = [d(0o755, 0, 0), d(0o700, 2000, 2000), d(0o755, 2000, 2000)];
    assert!(matches!(
        check_reachable("f", "/h/x", &private_home, &caller(1000)),
        Err(PolicyError::Denied { .. })
    ));
    assert!(check_reachable("f", "/h/x", &private_home, &caller(0)).is_ok());
    let own = [d(0o755, 0, 0), d(0o700, 1000, 1000)];
    assert!(check_reachable("f", "/me", &own, &caller(1000)).is_ok());
    // Group search permission counts for the primary group (caller(1000) has gid 1001).
    let group = [d(0o710, 0, 1001)];
    assert!(check_reachable("f", "/g", &group, &caller(1000)).is_ok());
    let no_other = [d(0o770, 0, 5)];
    assert!(check_reachable("f", "/g", &no_other, &caller(1000)).is_err());
}

#[test]
fn create_and_exec_plans() {
    let spec = sandbox_proto::CreateSpec {
        ttl_ms: Some(0),
        ..Default::default()
    };
    assert!(plan_create(&spec, &pol(), &caller(0), &cfg(), &alloc())
        .unwrap_err()
        .to_string()
        .starts_with("ttl_ms"));
    let spec = sandbox_proto::CreateSpec {
        env: vec!["A=1".into()],
        ..Default::default()
    };
    let p = plan_create(&spec, &pol(), &caller(0), &cfg(), &alloc()).unwrap();
    assert!(p.argv.is_empty());
    let exec = sandbox_proto::ExecSpec {
        argv: vec!["sh".into()],
        env: vec!["B=2".into(), "A=3".into()],
        uid: 1000,
        ..Default::default()
    };
    let e = plan_exec(&exec, &p.env, 65536).unwrap();
    assert!(e.env.contains(&"A=3".to_string()) && e.env.contains(&"B=2".to_string()));
    assert!(!e.env.contains(&"A=1".to_string()));
    assert_eq!((e.uid, e.cwd.as_str()), (1000, "/workspace"));
    let bad = sandbox_proto::ExecSpec {
        argv: vec!["sh".into()],
        uid: 70000,
        ..Default::default()
    };
    assert!(plan_exec(&bad, &p.env, 65536)
        .unwrap_err()
        .to_string()
        .starts_with("uid"));
    let empty = sandbox_proto::ExecSpec::default();
    assert!(plan_exec(&empty, &p.env, 65536).is_err());
}

fn shipped(name: &str) -> Policy {
    sandbox_policy::load(None, name).unwrap()
}

/// Each shipped policy, through `plan`, gives the sandbox it describes.
#[test]
fn shipped_policies_become_plans() {
    let run = spec(&["true"]);
    let p = plan(&run, &shipped("strict"), &caller(1000), &cfg(), &alloc()).unwrap();
    assert_eq!(
        (p.policy.as_str(), p.fs_mode, p.network),
        ("strict", FsMode::ReadOnly, NetMode::None)
    );
    assert_eq!(p.limits.memory, Some(256 << 20));
    assert_eq!(p.limits.pids, Some(64));
    assert_eq!(p.limits.cpus, Some(0.5));
    assert_eq!(p.timeout_ms, Some(60_000));
    assert_eq!(
        (p.nofile, p.shm_size, p.tmp_size),
        (256, 16 << 20, 64 << 20)
    );
    assert!(p.capabilities.is_empty() && p.no_new_privileges);

    let p = plan(&run, &shipped("ci"), &caller(1000), &cfg(), &alloc()).unwrap();
    assert_eq!(p.fs_mode, FsMode::WorkspaceOnly);
    assert_eq!(p.limits.memory, Some(4 << 30));
    assert_eq!(p.limits.cpus, Some(2.0));
    assert_eq!(p.workspace_size, Some(8 << 30));

    let p = plan(&run, &shipped("browser"), &caller(1000), &cfg(), &alloc()).unwrap();
    assert_eq!((p.seccomp.as_str(), p.shm_size), ("browser", 1 << 30));

    let p = plan(&run, &shipped("default"), &caller(1000), &cfg(), &alloc()).unwrap();
    assert_eq!(
        (p.seccomp.as_str(), p.fs_mode, p.limits.memory),
        ("default", FsMode::WorkspaceOnly, Some(1 << 30))
    );
    assert_eq!(p.rootfs, RootPlan::Host);
}

/// A request may tighten a policy, and loosen it only up to the policy's maximum; every
/// refusal is a `Bound` error naming the request's field.
#[test]
fn requests_within_policy_bounds() {
    let strict = shipped("strict");
    let default = shipped("default");
    let with = |f: &dyn Fn(&mut RunSpec)| {
        let mut s = spec(&["true"]);
        f(&mut s);
        s
    };
    let ok = plan(
        &with(&|s| {
            s.limits.memory = Some(64 << 20);
            s.capabilities = Some(vec!["CAP_KILL".into()]);
        }),
        &default,
        &caller(1000),
        &cfg(),
        &alloc(),
    )
    .unwrap();
    assert_eq!(ok.limits.memory, Some(64 << 20));
    assert_eq!(ok.capabilities, ["CAP_KILL"]);

    let cases: Vec<(&Policy, RunSpec, &str)> = vec![
        (
            &strict,
            with(&|s| s.limits.memory = Some(512 << 20)),
            "limits.memory",
        ),
        (&strict, with(&|s| s.limits.cpus = Some(1.0)), "limits.cpus"),
        (
            &strict,
            with(&|s| s.filesystem = Some(FsMode::WorkspaceOnly)),
            "filesystem",
        ),
        (
            &strict,
            with(&|s| {
                s.rootfs = Rootfs::Path {
                    path: "/srv/r".into(),
                }
            }),
            "rootfs",
        ),
        (
            &strict,
            with(&|s| s.mounts = vec![mount("/home/x", "/x")]),
            "mounts[0].host",
        ),
        (
            &default,
            with(&|s| s.capabilities = Some(vec!["CAP_SYS_ADMIN".into()])),
            "capabilities[0]",
        ),
        (
            &default,
            with(&|s| s.network = Some(NetMode::Full)),
            "network",
        ),
        (
            &default,
            with(&|s| s.limits.memory = Some(8 << 30)),
            "limits.memory",
        ),
    ];
    for (pol, s, field) in cases {
        match plan(&s, pol, &caller(1000), &cfg(), &alloc()) {
            Err(PolicyError::Bound { field: f, reason }) => {
                assert_eq!(f, field, "{reason}");
            }
            other => panic!("{field}: {other:?}"),
        }
    }
}

/// Network modes other than none are refused until they exist, not silently downgraded.
#[test]
fn allowlist_policy_is_refused_not_downgraded() {
    let err = plan(
        &spec(&["true"]),
        &shipped("network-allowlist"),
        &caller(0),
        &cfg(),
        &alloc(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Bound { field, .. } if field == "network"),
        "{err:?}"
    );
    // Asking for none under it is fine.
    let mut s = spec(&["true"]);
    s.network = Some(NetMode::None);
    assert!(plan(
        &s,
        &shipped("network-allowlist"),
        &caller(0),
        &cfg(),
        &alloc()
    )
    .is_ok());
}

/// `full` mode sizes the overlay's writable layer like the workspace; a kept sandbox's ttl
/// comes from the policy when the request names none.
#[test]
fn full_mode_and_kept_lifetimes() {
    let pol = Policy::parse(
        "t",
        "t.toml",
        "[filesystem]\nmode = \"full\"\nrootfs = \"/srv/r\"\n[limits]\nttl = \"1h\"\nworkspace_size = \"2GiB\"\n",
    )
    .unwrap();
    let p = plan(&spec(&["true"]), &pol, &caller(0), &cfg(), &alloc()).unwrap();
    assert_eq!(p.fs_mode, FsMode::Full);
    assert_eq!(p.overlay_size, Some(2 << 30));
    assert_eq!(p.rootfs, RootPlan::Path("/srv/r".into()));
    let c = plan_create(
        &sandbox_proto::CreateSpec::default(),
        &pol,
        &caller(0),
        &cfg(),
        &alloc(),
    )
    .unwrap();
    assert_eq!((c.ttl_ms, c.timeout_ms), (Some(3_600_000), None));
}

/// A value no policy could allow is the client's error (`invalid_argument`), not the policy's.
#[test]
fn malformed_values_are_invalid_not_violations() {
    let mut s = spec(&["true"]);
    s.limits.memory = Some(1000);
    assert!(matches!(
        plan(&s, &pol(), &caller(0), &cfg(), &alloc()),
        Err(PolicyError::Invalid { field, .. }) if field == "limits.memory"
    ));
    let mut s = spec(&["true"]);
    s.limits.cpus = Some(f64::NAN);
    assert!(matches!(
        plan(&s, &pol(), &caller(0), &cfg(), &alloc()),
        Err(PolicyError::Invalid { field, .. }) if field == "limits.cpus"
    ));
}
