//! OCI compatibility, both ways: a bundle `sandboxctl export-bundle` writes runs under runc and
//! crun with the isolation sandboxd gives (the probe reports the same inside); the bundle
//! `runc spec` makes runs under `sandboxctl run --bundle`; `sandboxctl state` prints OCI state.

// Integration tests are a crate of their own, not a test module.
#![allow(clippy::tests_outside_test_module)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sandbox_tests::{bin, busybox_rootfs, cgroup_v2, parse_probe, require_root, TestDaemon};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `cmd`; it must succeed (its stderr is the message otherwise).
fn ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

fn probe_dir() -> String {
    bin("sandbox-probe")
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// crun 1.8 refuses hosts whose cgroup v2 hierarchy holds controllers beside v1 ones
/// ("cgroups in hybrid mode not supported"); this test machine is such a host, the cgroup-v2
/// guest is not.
fn crun_can_run_here() -> bool {
    cgroup_v2()
        || std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
            .map(|c| c.trim().is_empty())
            .unwrap_or(true)
}

/// The probe's report with what legitimately differs between runtimes taken out: the host
/// uid range (bundles use the export range), pid numbers (sandboxd's init is pid 1, a
/// runtime's command is), the hostname (the id), the root's filesystem type (a tmpfs of binds
/// here, the bundle directory there) and `/dev`'s read-only seal (a runtime creates its nodes
/// after mounting it).
/// `rootfs_entries`: the top-level entries of a rootfs directory, which sandboxd binds one by
/// one into its tmpfs root and a runtime shows as part of its root.
fn normalized(p: &BTreeMap<String, String>, rootfs_entries: &[String]) -> BTreeMap<String, String> {
    let mut out = p.clone();
    for k in ["pid", "procs", "hostname"] {
        out.remove(k);
    }
    for k in ["uid_map", "gid_map"] {
        let v: Vec<&str> = p[k].split(' ').collect();
        out.insert(k.into(), format!("{} HOST {}", v[0], v[2]));
    }
    let mounts: Vec<String> = p["mounts"]
        .split(';')
        .filter(|m| {
            let point = m.split(':').next().unwrap_or("");
            !rootfs_entries.iter().any(|e| point == format!("/{e}"))
        })
        .map(|m| {
            if m.starts_with("/:") {
                "/:ROOT:ro".to_owned()
            } else if m.starts_with("/dev:tmpfs:") {
                "/dev:tmpfs".to_owned()
            } else if m.starts_with("/proc/") && m.contains(":devtmpfs:") {
                // A masked file: /dev/null bound over it, read-only under crun, read-write
                // under runc and sandboxd (writing /dev/null discards either way).
                m.rsplit_once(':').map(|(a, _)| a).unwrap_or(m).to_owned()
            } else {
                m.to_owned()
            }
        })
        .collect();
    out.insert("mounts".into(), mounts.join(";"));
    out
}

fn run_runtime(runtime: &str, bundle: &Path, id: &str) -> BTreeMap<String, String> {
    let out = Command::new(runtime)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id)
        .output()
        .unwrap();
    let _ = Command::new(runtime).args(["delete", "-f", id]).output();
    assert!(
        out.status.success(),
        "{runtime} run: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    parse_probe(&out.stdout)
}

/// The limits: read from the cgroup a runtime made for a detached container, and from the
/// sandbox's. Returns (memory, memory+swap or swap, pids, cpu quota).
fn cgroup_limits(dir_of: &dyn Fn(&str) -> PathBuf) -> Vec<String> {
    let read = |ctl: &str, file: &str| {
        std::fs::read_to_string(dir_of(ctl).join(file))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|e| format!("{file}: {e}"))
    };
    if cgroup_v2() {
        vec![
            read("", "memory.max"),
            read("", "memory.swap.max"),
            read("", "pids.max"),
            read("", "cpu.max"),
        ]
    } else {
        vec![
            read("memory", "memory.limit_in_bytes"),
            read("pids", "pids.max"),
            read("cpu", "cpu.cfs_quota_us"),
        ]
    }
}

fn cgroup_dir(ctl: &str, rel: &str) -> PathBuf {
    let rel = rel.trim_start_matches('/');
    if cgroup_v2() {
        Path::new("/sys/fs/cgroup").join(rel)
    } else {
        Path::new("/sys/fs/cgroup").join(ctl).join(rel)
    }
}

/// The cgroup of `pid` on the hierarchy of `ctl` (v2: the unified one), from /proc.
fn cgroup_of(pid: u32, ctl: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctls, path) = (f.next()?, f.next()?, f.next()?);
            let hit = if cgroup_v2() {
                ctls.is_empty()
            } else {
                ctls.split(',').any(|c| c == ctl)
            };
            hit.then(|| path.to_owned())
        })
        .unwrap_or_default()
}

/// A host root: the bundle rebuilds it with binds; runc shows the same mounts inside.
#[test]
fn exported_host_root_bundle_runs_under_runc_like_sandboxd() {
    if !require_root("exported_host_root_bundle_runs_under_runc_like_sandboxd") {
        return;
    }
    let d = TestDaemon::start();
    let mount = format!("{}:/probe:ro", probe_dir());
    let bundle = d.dir.join("bundle");
    ok(d.sandboxctl()
        .args(["export-bundle", "--mount", &mount])
        .arg(&bundle)
        .args(["--", "/probe/sandbox-probe"]));
    let ours = ok(d
        .sandboxctl()
        .args(["run", "--mount", &mount, "--", "/probe/sandbox-probe"]));
    let ours = parse_probe(&ours.stdout);
    let theirs = run_runtime(
        "runc",
        &bundle,
        &format!("sbxoci-{}-host", std::process::id()),
    );
    assert_eq!(normalized(&theirs, &[]), normalized(&ours, &[]));
    assert!(ours["mounts"].contains("/usr:"), "{ours:?}");
}

/// A rootfs directory with the probe in it (no host folders: the cgroup-v2 guest's shared
/// filesystem has no idmapped mounts). Limits are compared from the cgroups.
#[test]
fn exported_bundle_runs_under_runc_and_crun_like_sandboxd() {
    if !require_root("exported_bundle_runs_under_runc_and_crun_like_sandboxd") {
        return;
    }
    let d = TestDaemon::start();
    let root = d.dir.join("root");
    probe_rootfs(&root);
    let entries: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !["proc", "dev", "tmp", "workspace"].contains(&n.as_str()))
        .collect();
    let probe = format!(
        "/{}",
        bin("sandbox-probe").strip_prefix("/").unwrap().display()
    );
    let limits = ["--memory", "512M", "--pids", "100", "--cpus", "0.5"];
    let rootfs = root.to_string_lossy().into_owned();
    let bundle = d.dir.join("bundle");
    ok(d.sandboxctl()
        .arg("export-bundle")
        .args(limits)
        .args(["--rootfs", &rootfs])
        .arg(&bundle)
        .args(["--", &probe]));
    let ours = ok(d
        .sandboxctl()
        .arg("run")
        .args(limits)
        .args(["--rootfs", &rootfs, "--", &probe]));
    let ours = parse_probe(&ours.stdout);
    assert_eq!(ours["Seccomp"], "2", "{ours:?}");

    let mut runtimes = vec!["runc"];
    if crun_can_run_here() {
        runtimes.push("crun");
    } else {
        // test.sh runs this test again in the cgroup-v2 guest, where crun is compared.
        eprintln!(
            "crun cannot run on this hybrid cgroup host; it is compared in the cgroup-v2 guest"
        );
    }
    let id_base = format!("sbxoci-{}", std::process::id());
    for rt in &runtimes {
        let theirs = run_runtime(rt, &bundle, &format!("{id_base}-{rt}"));
        assert_eq!(
            normalized(&theirs, &entries),
            normalized(&ours, &entries),
            "{rt} differs"
        );
        // Their uid range is the daemon's export range, outside its sandboxes' ranges.
        let base: u32 = theirs["uid_map"]
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(base, d.uid_range().end, "{theirs:?}");
    }

    // Limits, read from the cgroups: a detached runc container and a kept sandbox.
    let sleeper = d.dir.join("sleeper");
    ok(d.sandboxctl()
        .arg("export-bundle")
        .args(limits)
        .args(["--rootfs", &rootfs])
        .arg(&sleeper)
        .args(["--", "sleep", "30"]));
    let id = format!("{id_base}-limits");
    let st = Command::new("runc")
        .args(["run", "-d", "--bundle"])
        .arg(&sleeper)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let state = Command::new("runc").args(["state", &id]).output().unwrap();
    let state: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
    let pid = state["pid"].as_u64().unwrap() as u32;
    let theirs = cgroup_limits(&|ctl| cgroup_dir(ctl, &cgroup_of(pid, ctl)));
    let _ = Command::new("runc").args(["delete", "-f", &id]).output();
    let out = ok(d.sandboxctl().arg("create").args(limits));
    let sid = text(&out.stdout).trim().to_owned();
    let rel = format!("{}/{sid}", d.cgroup_parent);
    let ours = cgroup_limits(&|ctl| cgroup_dir(ctl, &rel));
    let _ = d.sandboxctl().args(["rm", "-f", &sid]).output();
    assert_eq!(theirs, ours);
    assert_eq!(ours[0], (512u64 << 20).to_string());
}

/// Copies the busybox root and puts the probe in it with the libraries it links.
fn probe_rootfs(dir: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(busybox_rootfs())
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
    let probe = bin("sandbox-probe");
    let ldd = Command::new("ldd").arg(&probe).output().unwrap();
    let mut files = vec![probe.clone()];
    for l in text(&ldd.stdout).lines() {
        if let Some(p) = l.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(PathBuf::from(p));
        }
    }
    for f in files {
        let to = dir.join(f.strip_prefix("/").unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
}

#[test]
fn runc_spec_bundle_runs_under_sandboxctl_run_bundle() {
    if !require_root("runc_spec_bundle_runs_under_sandboxctl_run_bundle") {
        return;
    }
    let d = TestDaemon::start();
    let bundle = d.dir.join("runc-bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let st = Command::new("runc")
        .arg("spec")
        .current_dir(&bundle)
        .status()
        .unwrap();
    assert!(st.success());
    probe_rootfs(&bundle.join("rootfs"));
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let probe = format!(
        "/{}",
        bin("sandbox-probe").strip_prefix("/").unwrap().display()
    );
    config["process"]["args"] = serde_json::json!([probe]);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();

    let out = d
        .sandboxctl()
        .args(["run", "--bundle"])
        .arg(&bundle)
        .output()
        .unwrap();
    let e = text(&out.stderr);
    assert!(out.status.success(), "{}{e}", text(&out.stdout));
    let p = parse_probe(&out.stdout);
    // What the bundle asks for: runc's three capabilities, 1024 files, a 64 MiB /dev/shm.
    let caps = (1u64 << 29) | (1 << 5) | (1 << 10);
    assert_eq!(p["CapEff"], format!("{caps:016x}"), "{p:?}");
    assert_eq!(p["CapBnd"], format!("{caps:016x}"), "{p:?}");
    assert_eq!(p["rlimit_nofile"], "1024,1024");
    assert_eq!(p["size:/dev/shm"], (64u64 << 20).to_string());
    // What sandboxd adds: its user namespace, seccomp, no_new_privs; and no /sys.
    assert!(!p["uid_map"].starts_with("0 0 "), "{p:?}");
    assert_eq!(
        (p["Seccomp"].as_str(), p["NoNewPrivs"].as_str()),
        ("2", "1")
    );
    assert!(!p["mounts"].contains(":sysfs:"), "{p:?}");
    assert!(e.contains("/sys") && e.contains("not mounted"), "{e}");

    // A field sandboxd cannot honour is refused, all of them in one list.
    config["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/true"}]});
    config["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let out = d
        .sandboxctl()
        .args(["run", "--bundle"])
        .arg(&bundle)
        .output()
        .unwrap();
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{e}");
    assert!(e.contains("hooks") && e.contains("linux.sysctl"), "{e}");
}

/// An exported bundle runs back under sandboxd (its seccomp profile is the policy's); a
/// bundle with another profile is refused.
#[test]
fn exported_bundle_round_trips_and_state_is_oci() {
    if !require_root("exported_bundle_round_trips_and_state_is_oci") {
        return;
    }
    let d = TestDaemon::start();
    let bundle = d.dir.join("rt");
    std::fs::create_dir_all(&bundle).unwrap();
    probe_rootfs(&bundle.join("root"));
    let root = bundle.join("root");
    let probe = format!(
        "/{}",
        bin("sandbox-probe").strip_prefix("/").unwrap().display()
    );
    ok(d.sandboxctl()
        .args(["export-bundle", "--rootfs"])
        .arg(&root)
        .arg(&bundle)
        .args(["--", &probe]));
    let out = ok(d.sandboxctl().args(["run", "--bundle"]).arg(&bundle));
    let p = parse_probe(&out.stdout);
    assert_eq!(
        (p["Seccomp"].as_str(), p["CapEff"].as_str()),
        ("2", "0000000000000000")
    );

    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["linux"]["seccomp"]["defaultAction"] = serde_json::json!("SCMP_ACT_LOG");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let out = d
        .sandboxctl()
        .args(["run", "--bundle"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("linux.seccomp"),
        "{}",
        text(&out.stderr)
    );

    // OCI state of a kept sandbox.
    let out = ok(d.sandboxctl().args(["create", "--policy", "ci"]));
    let id = text(&out.stdout).trim().to_owned();
    let out = ok(d.sandboxctl().args(["state", &id]));
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["ociVersion"], "1.0.2");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["status"], "running");
    assert!(state["pid"].as_u64().unwrap() > 1);
    assert_eq!(state["annotations"]["io.sandboxd.policy"], "ci");
    let _ = d.sandboxctl().args(["rm", "-f", &id]).output();
}
