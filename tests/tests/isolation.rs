//! Isolation, checked from inside: a probe binary runs in a sandbox and reports what it has
//! and what it can do; each property is asserted on its report. Nothing of the sandbox may be
//! left afterwards.

// Integration tests are whole files of tests; the workspace lint is meant for unit tests.
#![allow(clippy::tests_outside_test_module)]

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use agent_sdk::SandboxBuilder;
use sandbox_tests::{bin, busybox_rootfs, parse_probe, require_root, TestDaemon};

/// The directory holding the probe binary, mounted read-only at /probe.
fn probe_dir() -> String {
    bin("sandbox-probe")
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[tokio::test]
async fn probe_sees_every_isolation_layer() {
    if !require_root("probe_sees_every_isolation_layer") {
        return;
    }
    let d = TestDaemon::start();
    // Host paths that must not be visible inside: /root (with a marker) and the daemon's
    // state dir.
    let marker = format!("/root/.sandboxd-test-marker-{}", std::process::id());
    std::fs::write(&marker, b"secret").unwrap();
    let state = d.state_dir.to_string_lossy().into_owned();
    let client = d.client().await;
    let out = client
        .run([
            "/probe/sandbox-probe",
            marker.as_str(),
            state.as_str(),
            "/etc/shadow",
            "/etc/passwd",
            "/usr/bin",
        ])
        .mount(probe_dir(), "/probe", true)
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_file(&marker);
    let p = parse_probe(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code, Some(0), "probe failed: {stderr}\n{p:?}");

    // User namespace: root inside is an unprivileged, non-identity host uid.
    let map: Vec<u64> = p["uid_map"]
        .split(' ')
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(map[0], 0, "{p:?}");
    assert!(
        map[1] >= u64::from(d.uid_base) && map[1] < u64::from(d.uid_range().end),
        "uid_map {map:?}"
    );
    assert_eq!(map[2], 65536);
    assert_eq!(p["uid"], "0");
    // Own pid namespace: init is 1, the command 2, nothing else is visible.
    assert_eq!(p["pid"], "2");
    assert!(p["procs"].parse::<u32>().unwrap() <= 2, "{p:?}");
    // UTS: hostname is the sandbox id (12 hex digits).
    assert_eq!(p["hostname"].len(), 12);
    assert!(p["hostname"].bytes().all(|b| b.is_ascii_hexdigit()));
    // Network: only lo, and it is up.
    assert_eq!(p["net_ifaces"], "lo");
    assert_eq!(p["loopback_works"], "1");
    // No capabilities in any set; no_new_privs; seccomp filter mode.
    for k in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"] {
        assert_eq!(p[k], "0000000000000000", "{k}");
    }
    assert_eq!(p["NoNewPrivs"], "1");
    assert_eq!(p["Seccomp"], "2");
    // Mounting and new namespaces are refused (seccomp says EPERM).
    assert_eq!(p["mount"], "EPERM");
    assert_eq!(p["unshare_user"], "EPERM");
    assert_eq!(p["unshare_mount"], "EPERM");
    // Only stdio is open.
    assert_eq!(p["open_fds"], "0,1,2");
    // Cgroup namespace: the sandbox's cgroup is its root.
    assert!(
        p["cgroup"].split(';').all(|l| l.ends_with(":/")),
        "{}",
        p["cgroup"]
    );
    // Read-only root, runc's masked /proc paths, read-only /proc/sys, no core dumps.
    assert_eq!(p["root_write"], "EROFS");
    for k in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/acpi",
        "/proc/scsi",
    ] {
        let v = &p[&format!("masked:{k}")];
        assert!(
            ["absent", "devnull", "dir-entries-0"].contains(&v.as_str()),
            "{k} is not masked: {v}"
        );
    }
    assert_eq!(p["proc_sys_write"], "EROFS");
    assert_eq!(p["rlimit_core"], "0,0");
    // Host secrets and daemon state are not there; the curated host system is.
    assert_eq!(
        p[&format!("exists:/root/.sandboxd-test-marker-{}", std::process::id())],
        "0"
    );
    assert_eq!(p[&format!("exists:{state}")], "0");
    assert_eq!(p["exists:/etc/shadow"], "0");
    assert_eq!(p["exists:/etc/passwd"], "1");
    assert_eq!(p["exists:/usr/bin"], "1");
    drop(client);
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn hostname_env_cwd_and_exit_codes() {
    if !require_root("hostname_env_cwd_and_exit_codes") {
        return;
    }
    let d = TestDaemon::start();
    let c = d.client().await;
    let out = c
        .run(["sh", "-c", "hostname; echo $GREETING; pwd; exit 7"])
        .hostname("box-1")
        .env("GREETING", "hi")
        .cwd("/tmp")
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "box-1\nhi\n/tmp\n");
    assert_eq!(out.status.code, Some(7));
    let out = c.run(["sh", "-c", "kill -TERM $$"]).output().await.unwrap();
    assert_eq!(out.status.signal, Some(15));
    assert_eq!(out.status.shell_code(), 143);
    let out = c.run(["no-such-command-xyz"]).output().await.unwrap();
    assert_eq!(out.status.code, Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("command not found"));
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn path_rootfs_is_read_only_and_has_its_own_tree() {
    if !require_root("path_rootfs_is_read_only_and_has_its_own_tree") {
        return;
    }
    let rootfs = busybox_rootfs();
    let d = TestDaemon::start();
    let c = d.client().await;
    let out = c
        .run(["/bin/sh", "-c", "ls /; touch /bin/x 2>&1; echo ws > /workspace/f && cat /workspace/f; test -e /usr/lib/x86_64-linux-gnu && echo HOST"])
        .rootfs_path(rootfs.to_string_lossy())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Read-only file system"), "{stdout}");
    assert!(stdout.contains("ws\n"));
    assert!(
        !stdout.contains("HOST"),
        "the host's /usr leaked into a path rootfs: {stdout}"
    );
    assert!(!rootfs.join("bin/x").exists());
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn host_folder_files_belong_to_the_caller() {
    if !require_root("host_folder_files_belong_to_the_caller") {
        return;
    }
    let d = TestDaemon::start();
    // Root as the caller: files land owned by root.
    let root_dir = d.dir.join("root-owned");
    std::fs::create_dir(&root_dir).unwrap();
    let out = d
        .client()
        .await
        .run(["sh", "-c", "echo hi > /data/by-root && id -u"])
        .mount(root_dir.to_string_lossy(), "/data", false)
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::metadata(root_dir.join("by-root")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));

    // An unprivileged caller (uid 4242, in the socket's group): files land owned by 4242,
    // not by the sandbox's mapped range, and it may not mount a folder it does not own.
    let user_dir = d.dir.join("user-owned");
    std::fs::create_dir(&user_dir).unwrap();
    nix::unistd::chown(
        &user_dir,
        Some(nix::unistd::Uid::from_raw(4242)),
        Some(nix::unistd::Gid::from_raw(4242)),
    )
    .unwrap();
    let as_user = |mount: &std::path::Path| {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=4242", "--regid=4242", "--groups=0", "--"])
            .arg(bin("sandboxctl"))
            .arg("--socket")
            .arg(&d.socket)
            .arg("run")
            .arg("--mount")
            .arg(format!("{}:/workspace", mount.display()))
            .args([
                "--",
                "sh",
                "-c",
                "echo hello > /workspace/made-inside; ls -ln /workspace/made-inside",
            ]);
        cmd.output().unwrap()
    };
    let out = as_user(&user_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Inside, the caller's file belongs to the sandbox's root.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(" 0 0 "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let meta = std::fs::metadata(user_dir.join("made-inside")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4242, 4242));
    let out = as_user(&root_dir);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission_denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn read_only_mount_refuses_writes() {
    if !require_root("read_only_mount_refuses_writes") {
        return;
    }
    let d = TestDaemon::start();
    let dir = d.dir.join("ro");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("f"), b"keep").unwrap();
    let out = d
        .client()
        .await
        .run(["sh", "-c", "cat /ro/f; echo x > /ro/f"])
        .mount(dir.to_string_lossy(), "/ro", true)
        .output()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"keep");
    assert_ne!(out.status.code, Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"keep");
    tokio::time::sleep(Duration::from_millis(1)).await;
    d.assert_no_leaks().await;
}
