//! cgroup and size limits, pushed against from inside. These tests also run on a pure
//! cgroup v2 kernel (`.ci/run` sends this binary to the VM); their time limits scale with
//! `SANDBOX_TEST_TIME_SCALE`.

// Integration tests are whole files of tests; the workspace lint is meant for unit tests.
#![allow(clippy::tests_outside_test_module)]

use std::time::{Duration, Instant};

use agent_sdk::SandboxBuilder;
use sandbox_tests::{cgroup_dirs, require_root, scaled, TestDaemon};

#[tokio::test]
async fn workspace_size_cap_gives_enospc() {
    if !require_root("workspace_size_cap_gives_enospc") {
        return;
    }
    let d = TestDaemon::start();
    let out = d
        .client()
        .await
        .run([
            "sh",
            "-c",
            "dd if=/dev/zero of=/workspace/big bs=1M count=20 2>&1; echo rc=$?",
        ])
        .workspace_size(8 << 20)
        .output()
        .await
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("No space left on device"), "{s}");
    assert!(s.contains("rc=1"), "{s}");
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn fork_bomb_stops_at_the_pids_limit() {
    if !require_root("fork_bomb_stops_at_the_pids_limit") {
        return;
    }
    let d = TestDaemon::start();
    // Forks until the kernel refuses; children sleep so they all count at once.
    let bomb = "import os, time, errno\nn = 0\ntry:\n    while n < 10000:\n        if os.fork() == 0:\n            time.sleep(60)\n            os._exit(0)\n        n += 1\nexcept OSError as e:\n    print('stopped', n, errno.errorcode[e.errno])\n";
    let out = d
        .client()
        .await
        .run(["python3", "-c", bomb])
        .pids(32)
        .output()
        .await
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = s.split_whitespace().collect();
    assert_eq!(
        fields.first(),
        Some(&"stopped"),
        "{s} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: u32 = fields[1].parse().unwrap();
    // 32 tasks in all: init and python itself count too.
    assert!(n <= 30, "forked {n} children under pids=32");
    assert_eq!(fields[2], "EAGAIN");
    // The sleeping children died with the sandbox.
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn memory_limit_oom_kill_is_reported() {
    if !require_root("memory_limit_oom_kill_is_reported") {
        return;
    }
    let d = TestDaemon::start();
    let out = d
        .sandboxctl()
        .args([
            "run",
            "--memory",
            "64M",
            "--",
            "python3",
            "-c",
            "b = bytearray(200 * 1024 * 1024); print('survived')",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(137), "{stderr}");
    assert!(
        stderr.contains("sandbox: killed: out of memory (limit 64 MiB)"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("survived"));
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn timeout_kills_the_whole_sandbox() {
    if !require_root("timeout_kills_the_whole_sandbox") {
        return;
    }
    let d = TestDaemon::start();
    let start = Instant::now();
    let out = d
        .sandboxctl()
        .args([
            "run",
            "--timeout",
            "1s",
            "--",
            "sh",
            "-c",
            "sleep 30 & sleep 30",
        ])
        .output()
        .unwrap();
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{stderr}");
    assert!(stderr.contains("sandbox: timed out after 1s"), "{stderr}");
    assert!(took < scaled(Duration::from_secs(3)), "took {took:?}");
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn limits_land_in_the_sandbox_cgroup() {
    if !require_root("limits_land_in_the_sandbox_cgroup") {
        return;
    }
    let d = TestDaemon::start();
    let c = d.client().await;
    let mut run = c
        .run(["sh", "-c", "echo ready; read x || true"])
        .memory(96 << 20)
        .pids(50)
        .cpus(0.5)
        .stdin(true)
        .start()
        .await
        .unwrap();
    let rel = format!("{}/{}", d.cgroup_parent, run.sandbox_id());
    let _ = run.next_event().await;
    let read = |file: &str| -> String {
        cgroup_dirs(&rel)
            .iter()
            .map(|dir| dir.join(file))
            .find(|p| p.exists())
            .map(|p| std::fs::read_to_string(p).unwrap().trim().to_string())
            .unwrap_or_else(|| panic!("no {file} for {rel}"))
    };
    if sandbox_tests::cgroup_v2() {
        assert_eq!(read("memory.max"), (96u64 << 20).to_string());
        assert_eq!(read("memory.swap.max"), "0");
        assert_eq!(read("pids.max"), "50");
        assert_eq!(read("cpu.max"), "50000 100000");
    } else {
        assert_eq!(read("memory.limit_in_bytes"), (96u64 << 20).to_string());
        assert_eq!(read("pids.max"), "50");
        assert_eq!(read("cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu.cfs_period_us"), "100000");
    }
    run.close_stdin().await.unwrap();
    let out = run.output().await.unwrap();
    assert_eq!(out.status.code, Some(0));
    d.assert_no_leaks().await;
    assert!(cgroup_dirs(&rel).is_empty(), "cgroup {rel} left behind");
}
