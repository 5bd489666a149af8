//! Nothing leaks: a sandbox is torn down when its client disconnects, when the daemon is
//! stopped, and after the daemon crashes and restarts. Many sandboxes at once get distinct uid
//! ranges.

// Integration tests are whole files of tests; the workspace lint is meant for unit tests.
#![allow(clippy::tests_outside_test_module)]

use std::collections::BTreeSet;
use std::time::Duration;

use sandbox_tests::{
    cgroup_dirs, processes_with_uid_in, raw_start, require_root, scaled, TestDaemon,
};

/// Starts `sleep 300` sandboxes and waits until they run.
async fn start_sleepers(c: &agent_sdk::Client, n: usize) -> Vec<agent_sdk::Run> {
    let mut runs = Vec::new();
    for _ in 0..n {
        runs.push(c.run(["sleep", "300"]).start().await.unwrap());
    }
    runs
}

#[tokio::test]
async fn client_disconnect_kills_its_sandboxes() {
    if !require_root("client_disconnect_kills_its_sandboxes") {
        return;
    }
    let d = TestDaemon::start();
    let conns: Vec<_> = (0..3)
        .map(|_| raw_start(&d.socket, &["sleep", "300"]))
        .collect();
    let status = d.client().await.status().await.unwrap();
    assert_eq!(status.sandboxes.len(), 3);
    let bases: BTreeSet<u32> = status.sandboxes.iter().map(|s| s.host_uid_base).collect();
    assert_eq!(
        bases.len(),
        3,
        "uid ranges must be distinct per live sandbox"
    );
    assert!(!processes_with_uid_in(d.uid_range()).is_empty());
    // The clients vanish without a word (as a killed process would).
    drop(conns);
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn sigterm_kills_sandboxes_and_removes_everything() {
    if !require_root("sigterm_kills_sandboxes_and_removes_everything") {
        return;
    }
    let mut d = TestDaemon::start();
    let c = d.client().await;
    let mut runs = start_sleepers(&c, 2).await;
    let st = d.stop();
    assert!(st.success(), "{st:?}\n{}", d.log_text());
    for r in &mut runs {
        match r.next_event().await {
            Some(agent_sdk::Event::Error(e)) => {
                assert!(
                    matches!(e.code(), Some(agent_sdk::ErrorCode::ShuttingDown) | None),
                    "{e}"
                )
            }
            other => panic!("expected a shutdown error, got {other:?}"),
        }
    }
    assert!(!d.socket.exists(), "socket not unlinked");
    assert!(
        cgroup_dirs(&d.cgroup_parent).is_empty(),
        "cgroup parent left behind"
    );
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn restart_after_a_crash_cleans_up() {
    if !require_root("restart_after_a_crash_cleans_up") {
        return;
    }
    let mut d = TestDaemon::start();
    let conns: Vec<_> = (0..2)
        .map(|_| raw_start(&d.socket, &["sleep", "300"]))
        .collect();
    d.crash();
    drop(conns);
    // The helpers notice the daemon is gone and kill their sandboxes; the restarted daemon
    // removes the cgroups they leave.
    d.restart();
    d.assert_no_leaks().await;
    assert!(
        d.log_text()
            .contains("removed cgroups left by a previous daemon")
            || cgroup_dirs(&d.cgroup_parent).is_empty()
    );
    // And it works.
    let out = d.client().await.run(["true"]).output().await.unwrap();
    assert_eq!(out.status.code, Some(0));
    tokio::time::sleep(scaled(Duration::from_millis(1))).await;
    d.assert_no_leaks().await;
}
