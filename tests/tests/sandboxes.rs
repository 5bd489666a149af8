//! Long-lived sandboxes: many and concurrent execs in one sandbox, files in and out (and
//! never out of the sandbox's root), reattaching to an exec, ownership, TTL and idle timeout,
//! PTYs, and an init nothing inside can replace.

// Integration tests are whole files of tests; the workspace lint is meant for unit tests.
#![allow(clippy::tests_outside_test_module)]

use std::time::Duration;

use agent_sdk::{Event, Sandbox};
use sandbox_tests::{bin, require_root, scaled, TestDaemon};

async fn stdout_of(sb: &Sandbox, argv: &[&str]) -> (String, Option<i32>) {
    let out = sb.exec(argv.iter().copied()).output().await.unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code,
    )
}

#[tokio::test]
async fn a_hundred_execs_and_ten_at_once() {
    if !require_root("a_hundred_execs_and_ten_at_once") {
        return;
    }
    let d = TestDaemon::start();
    let c = d.client().await;
    let sb = c.create().create().await.unwrap();
    for i in 0..100 {
        let (out, code) =
            stdout_of(&sb, &["sh", "-c", &format!("echo run {i}; exit {}", i % 7)]).await;
        assert_eq!(out, format!("run {i}\n"));
        assert_eq!(code, Some(i % 7));
    }
    // Ten at once: each waits until all ten are running (a file per exec in /tmp), so they
    // can only all finish if they truly run concurrently.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let sb = sb.clone();
        let script = format!("touch /tmp/up{i}; while [ $(ls /tmp | grep -c ^up) -lt 10 ]; do sleep 0.05; done; echo done {i}");
        tasks.push(tokio::spawn(async move {
            sb.exec(["sh", "-c", script.as_str()])
                .timeout(scaled(Duration::from_secs(20)))
                .output()
                .await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let out = t.await.unwrap().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("done {i}\n"),
            "{:?}",
            out.status
        );
    }
    let info = sb.inspect().await.unwrap();
    assert_eq!(info.execs.len(), 110);
    sb.destroy().await.unwrap();
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn files_round_trip_and_cannot_escape() {
    if !require_root("files_round_trip_and_cannot_escape") {
        return;
    }
    let d = TestDaemon::start();
    let c = d.client().await;
    let sb = c.create().create().await.unwrap();
    // 50 MB of non-repeating bytes, written and read back byte-identical.
    let mut data = vec![0u8; 50 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    sb.write_file("/workspace/big.bin", &data, 0o644)
        .await
        .unwrap();
    assert!(
        sb.read_file("/workspace/big.bin").await.unwrap() == data,
        "the 50 MB file came back different"
    );
    let (size, _) = stdout_of(&sb, &["sh", "-c", "stat -c %s /workspace/big.bin"]).await;
    assert_eq!(size.trim(), (50u64 << 20).to_string());
    // Inside, the file belongs to the sandbox's root.
    let (owner, _) = stdout_of(&sb, &["stat", "-c", "%u:%g", "/workspace/big.bin"]).await;
    assert_eq!(owner.trim(), "0:0");

    // A secret on the host, and symlinks planted inside that point at it.
    let secret = format!("/root/.sandboxd-test-secret-{}", std::process::id());
    std::fs::write(&secret, b"host secret").unwrap();
    let plant = format!("ln -s {secret} /workspace/evil && ln -s ../../../../../.. /workspace/up && ln -s /etc/shadow /workspace/shadow");
    assert_eq!(stdout_of(&sb, &["sh", "-c", &plant]).await.1, Some(0));
    for path in [
        "/workspace/evil",
        "/workspace/shadow",
        &format!("/workspace/up{secret}"),
    ] {
        let r = sb.read_file(path).await;
        assert!(
            r.as_ref()
                .map(|b| !b.starts_with(b"host secret"))
                .unwrap_or(true),
            "{path} read the host: {r:?}"
        );
        assert!(r.is_err(), "{path}: {r:?}");
    }
    let w = sb
        .write_file(&format!("/workspace/up{secret}-written"), b"x", 0o644)
        .await;
    assert!(w.is_err());
    assert!(
        !std::path::Path::new(&format!("{secret}-written")).exists(),
        "a write escaped the sandbox"
    );
    assert_eq!(std::fs::read(&secret).unwrap(), b"host secret");
    let _ = std::fs::remove_file(&secret);
    // list and stat see the symlinks as symlinks.
    let entries = sb.list("/workspace").await.unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.path.ends_with("evil") && e.kind == agent_sdk::FileKind::Symlink),
        "{entries:?}"
    );
    sb.destroy().await.unwrap();
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn cp_copies_a_directory_in_and_out() {
    if !require_root("cp_copies_a_directory_in_and_out") {
        return;
    }
    let d = TestDaemon::start();
    let id = String::from_utf8(d.sandboxctl().args(["create"]).output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(id.len(), 12, "create printed {id:?}");
    let src = d.dir.join("tree");
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    std::fs::write(src.join("top.txt"), b"top").unwrap();
    std::fs::write(
        src.join("a/b/deep.bin"),
        (0..=255u8).cycle().take(100_000).collect::<Vec<_>>(),
    )
    .unwrap();
    let ok = |args: &[&str]| {
        let out = d.sandboxctl().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    ok(&[
        "cp",
        src.to_str().unwrap(),
        &format!("{id}:/workspace/tree"),
    ]);
    let out = ok(&[
        "exec",
        &id,
        "--",
        "sh",
        "-c",
        "cat /workspace/tree/top.txt; wc -c < /workspace/tree/a/b/deep.bin",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "top100000\n");
    let back = d.dir.join("back");
    ok(&[
        "cp",
        &format!("{id}:/workspace/tree"),
        back.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(back.join("top.txt")).unwrap(), b"top");
    assert_eq!(
        std::fs::read(back.join("a/b/deep.bin")).unwrap(),
        std::fs::read(src.join("a/b/deep.bin")).unwrap()
    );
    ok(&["rm", "-f", &id]);
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn reattach_replays_from_zero_then_follows() {
    if !require_root("reattach_replays_from_zero_then_follows") {
        return;
    }
    let d = TestDaemon::start();
    let c = d.client().await;
    let sb = c.create().create().await.unwrap();
    // A client starts a slow exec and is killed mid-way.
    let mut child = d
        .sandboxctl()
        .args([
            "exec",
            sb.id(),
            "--",
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6; do echo line$i; sleep 0.3; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    assert_eq!(&first, b"line1\n");
    child.kill().unwrap();
    let _ = child.wait();
    // The exec went on; attaching from sequence 0 replays everything, then follows live.
    let exec_id = sb
        .inspect()
        .await
        .unwrap()
        .execs
        .last()
        .expect("the exec")
        .exec_id;
    let mut run = sb.attach(exec_id, 0).await.unwrap();
    let mut text = String::new();
    let status = loop {
        match run.next_event().await {
            Some(Event::Stdout(b)) => text.push_str(&String::from_utf8_lossy(&b)),
            Some(Event::Stderr(_)) => {}
            Some(Event::Exit(s)) => break s,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(text, "line1\nline2\nline3\nline4\nline5\nline6\n");
    assert_eq!(status.code, Some(0));
    // From the middle: only the rest.
    let mut run = sb.attach(exec_id, 4).await.unwrap();
    let mut rest = String::new();
    while let Some(Event::Stdout(b)) = run.next_event().await {
        rest.push_str(&String::from_utf8_lossy(&b));
    }
    assert_eq!(rest, "line5\nline6\n");
    sb.destroy().await.unwrap();
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn another_uid_cannot_see_or_touch_a_sandbox() {
    if !require_root("another_uid_cannot_see_or_touch_a_sandbox") {
        return;
    }
    let d = TestDaemon::start();
    let as_uid = |uid: u32, args: &[&str]| {
        std::process::Command::new("setpriv")
            .args([
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--groups=0".into(),
                "--".into(),
            ])
            .arg(bin("sandboxctl"))
            .arg("--socket")
            .arg(&d.socket)
            .args(args)
            .output()
            .unwrap()
    };
    let out = as_uid(4242, &["create"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    // The owner sees it and uses it.
    assert!(String::from_utf8_lossy(&as_uid(4242, &["ls"]).stdout).contains(&id));
    assert_eq!(
        String::from_utf8_lossy(&as_uid(4242, &["exec", &id, "--", "echo", "mine"]).stdout),
        "mine\n"
    );
    // Another uid: not in its list, and every call says "not found", as for an unknown id.
    assert!(!String::from_utf8_lossy(&as_uid(4343, &["ls"]).stdout).contains(&id));
    for args in [
        vec!["inspect", &id],
        vec!["exec", &id, "--", "true"],
        vec!["rm", "-f", &id],
        vec!["stats", &id],
    ] {
        let out = as_uid(4343, &args);
        assert!(!out.status.success(), "{args:?} succeeded for another uid");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not_found") || err.contains("not found"),
            "{args:?}: {err}"
        );
    }
    let out = as_uid(
        4343,
        &[
            "cp",
            &format!("{id}:/etc/hostname"),
            "/tmp/x-should-not-exist",
        ],
    );
    assert!(!out.status.success());
    // Root sees all.
    let all = d.client().await.list().await.unwrap();
    assert!(all
        .iter()
        .any(|s| s.sandbox_id == id && s.owner_uid == 4242));
    assert!(as_uid(4242, &["rm", "-f", &id]).status.success());
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn ttl_and_idle_timeout_destroy_the_sandbox() {
    if !require_root("ttl_and_idle_timeout_destroy_the_sandbox") {
        return;
    }
    let d = TestDaemon::start();
    let c = d.client().await;
    let ttl = c
        .create()
        .ttl(Duration::from_millis(800))
        .create()
        .await
        .unwrap();
    let idle = c
        .create()
        .idle_timeout(Duration::from_millis(800))
        .create()
        .await
        .unwrap();
    let kept = c.create().create().await.unwrap();
    // Activity does not save a sandbox from its TTL.
    for _ in 0..3 {
        assert_eq!(stdout_of(&ttl, &["true"]).await.1, Some(0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = std::time::Instant::now() + scaled(Duration::from_secs(10));
    loop {
        let ids: Vec<String> = c
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.sandbox_id)
            .collect();
        if !ids.contains(&ttl.id().to_string()) && !ids.contains(&idle.id().to_string()) {
            assert!(
                ids.contains(&kept.id().to_string()),
                "a sandbox without limits went too"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still there: {ids:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ttl.inspect().await.unwrap_err().is_not_found());
    kept.destroy().await.unwrap();
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn pty_exec_has_a_terminal_that_resizes() {
    if !require_root("pty_exec_has_a_terminal_that_resizes") {
        return;
    }
    let d = TestDaemon::start();
    let c = d.client().await;
    let sb = c.create().create().await.unwrap();
    let mut run = sb
        .exec([
            "sh",
            "-c",
            "tty; stty size; read line; stty size; echo got:$line",
        ])
        .tty(24, 80)
        .start()
        .await
        .unwrap();
    let mut seen = String::new();
    let mut resized = false;
    let status = loop {
        match run.next_event().await {
            Some(Event::Stdout(b)) => {
                seen.push_str(&String::from_utf8_lossy(&b));
                if !resized && seen.contains("24 80") {
                    resized = true;
                    run.resize(30, 100).await.unwrap();
                    run.write_stdin(b"hello\n").await.unwrap();
                }
            }
            Some(Event::Stderr(_)) => {}
            Some(Event::Exit(s)) => break s,
            other => panic!("{other:?} after {seen:?}"),
        }
    };
    assert!(seen.contains("/dev/pts/"), "{seen:?}");
    assert!(seen.contains("24 80"), "{seen:?}");
    assert!(seen.contains("30 100"), "{seen:?}");
    assert!(seen.contains("got:hello"), "{seen:?}");
    assert_eq!(status.code, Some(0));
    sb.destroy().await.unwrap();
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn init_cannot_be_replaced_from_inside() {
    if !require_root("init_cannot_be_replaced_from_inside") {
        return;
    }
    let host_binary = std::fs::read(bin("sandboxd")).unwrap();
    let d = TestDaemon::start();
    let c = d.client().await;
    let sb = c.create().create().await.unwrap();
    let script = "echo x > /proc/1/exe; echo write=$?; cat /proc/1/exe > /dev/null; echo read=$?; \
                  ls -l /proc/1/fd >/dev/null 2>&1; echo fds=$?; head -c1 /proc/1/mem >/dev/null 2>&1; echo mem=$?";
    let (out, _) = stdout_of(&sb, &["sh", "-c", script]).await;
    for line in ["write=", "read=", "fds=", "mem="] {
        let v = out
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .unwrap_or_else(|| panic!("{out}"));
        assert_ne!(v, "0", "{line} succeeded: {out}");
    }
    // init still serves execs, and the host's binary is untouched.
    assert_eq!(stdout_of(&sb, &["echo", "alive"]).await.0, "alive\n");
    assert_eq!(std::fs::read(bin("sandboxd")).unwrap(), host_binary);
    sb.destroy().await.unwrap();
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn pause_resume_stats_and_signals() {
    if !require_root("pause_resume_stats_and_signals") {
        return;
    }
    let d = TestDaemon::start();
    let c = d.client().await;
    let sb = c.create().create().await.unwrap();
    let mut sleeper = sb.exec(["sleep", "300"]).start().await.unwrap();
    sb.pause().await.unwrap();
    assert!(sb.stats().await.unwrap().frozen);
    assert_eq!(sb.inspect().await.unwrap().state, "paused");
    sb.resume().await.unwrap();
    let stats = sb.stats().await.unwrap();
    assert!(!stats.frozen);
    assert!(stats.pids_current.unwrap_or(0) >= 2, "{stats:?}");
    assert!(stats.memory_current.unwrap_or(0) > 0, "{stats:?}");
    // A signal to one exec ends it and nothing else.
    sb.signal(sleeper.exec_id(), 15).await.unwrap();
    let status = loop {
        match sleeper.next_event().await {
            Some(Event::Exit(s)) => break s,
            Some(_) => {}
            None => panic!("no exit"),
        }
    };
    assert_eq!(status.signal, Some(15));
    assert_eq!(stdout_of(&sb, &["echo", "still"]).await.0, "still\n");
    sb.destroy().await.unwrap();
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn sandboxctl_exec_t_gives_a_real_terminal() {
    if !require_root("sandboxctl_exec_t_gives_a_real_terminal") {
        return;
    }
    let d = TestDaemon::start();
    let out = d.sandboxctl().arg("create").output().unwrap();
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    // `script` puts sandboxctl on a pseudo-terminal of its own (33x77); we type into it.
    let cmd = format!(
        "stty rows 33 cols 77; {} --socket {} exec -t {id} -- sh",
        bin("sandboxctl").display(),
        d.socket.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let typist = std::thread::spawn(move || {
        use std::io::Write;
        let pause = |ms| std::thread::sleep(scaled(Duration::from_millis(ms)));
        pause(700);
        stdin.write_all(b"stty size; tty; sleep 30\n")?;
        pause(700);
        // Ctrl-C is a byte for the sandbox's terminal: it interrupts `sleep` in there, not
        // sandboxctl.
        stdin.write_all(b"\x03")?;
        pause(300);
        stdin.write_all(b"echo after-ctrl-c; exit 3\n")
    });
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    typist.join().unwrap().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("33 77"), "{text}");
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("after-ctrl-c"), "{text}");
    assert!(
        started.elapsed() < scaled(Duration::from_secs(25)),
        "Ctrl-C did not reach sleep"
    );
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(d
        .sandboxctl()
        .args(["rm", "-f", &id])
        .status()
        .unwrap()
        .success());
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn an_exec_killed_by_the_oom_killer_says_so() {
    if !require_root("an_exec_killed_by_the_oom_killer_says_so") {
        return;
    }
    let d = TestDaemon::start();
    let c = d.client().await;
    let sb = agent_sdk::SandboxBuilder::memory(c.create(), 64 << 20)
        .create()
        .await
        .unwrap();
    let out = sb
        .exec(["python3", "-c", "b = bytearray(200 * 1024 * 1024)"])
        .output()
        .await
        .unwrap();
    assert!(out.status.oom_killed, "{:?}", out.status);
    assert_eq!(out.status.shell_code(), 137);
    // The sandbox survives its exec's OOM kill.
    assert_eq!(stdout_of(&sb, &["echo", "alive"]).await.0, "alive\n");
    sb.destroy().await.unwrap();
    d.assert_no_leaks().await;
}
