//! Table tests of the policy: requests in, plans or errors out.

use clap::Parser;
use sandbox_proto::{Limits, Mount, Rootfs, RunSpec};

use super::*;

fn cfg() -> Config {
    Config::parse_from(["sandboxd", "--uid-base", "200000", "--state-dir", "/s"])
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
    plan(&s, &caller(1000), &cfg(), &alloc())
        .unwrap_err()
        .to_string()
}

#[test]
fn defaults() {
    let p = plan(&spec(&["true"]), &caller(1000), &cfg(), &alloc()).unwrap();
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
    let p = plan(&s, &caller(0), &cfg(), &alloc()).unwrap();
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
            "rootfs.path",
        ),
        (
            RunSpec {
                rootfs: Rootfs::Path { path: "r".into() },
                ..spec(&["x"])
            },
            "rootfs.path",
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
    let p = plan(&s, &caller(0), &cfg(), &alloc()).unwrap();
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
    assert!(plan_create(&spec, &caller(0), &cfg(), &alloc())
        .unwrap_err()
        .to_string()
        .starts_with("ttl_ms"));
    let spec = sandbox_proto::CreateSpec {
        env: vec!["A=1".into()],
        ..Default::default()
    };
    let p = plan_create(&spec, &caller(0), &cfg(), &alloc()).unwrap();
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
