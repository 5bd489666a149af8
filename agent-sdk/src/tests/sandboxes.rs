//! Long-lived sandboxes against the stateful fake daemon (and a few scripted answers): create,
//! exec, attach, files in chunks, directory copies, lifecycle calls, errors, the drop guard.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use sandbox_proto::{ErrorCode, ExitStatus, FileKind, Request, Response, Stream, MAX_FILE_CHUNK};

use super::fakebox::{serve, FakeFile, Shared};
use super::{connect, Fake, TempDir, PATIENCE, QUIET};
use crate::{Client, Error, Event, SandboxBuilder};

/// A client connected to a fresh stateful fake, and the fake's state.
async fn fake_daemon() -> (Client, Shared, Fake) {
    let fake = Fake::new();
    let (client, conn) = connect(&fake, 1 << 20).await;
    let state = Shared::default();
    tokio::spawn(serve(conn, state.clone()));
    (client, state, fake)
}

#[tokio::test]
async fn create_then_exec_streams_output_and_exit() {
    let (client, state, _fake) = fake_daemon().await;
    let sandbox = client
        .create()
        .memory(64 << 20)
        .env("A", "1")
        .hostname("box")
        .ttl(Duration::from_secs(60))
        .idle_timeout(Duration::from_millis(1500))
        .create()
        .await
        .unwrap();
    assert_eq!(sandbox.id(), "sb-1");
    match &state.lock().requests[0] {
        Request::Create { spec, .. } => {
            assert_eq!(spec.limits.memory, Some(64 << 20));
            assert_eq!(spec.env, ["A=1"]);
            assert_eq!(spec.hostname.as_deref(), Some("box"));
            assert_eq!(
                (spec.ttl_ms, spec.idle_timeout_ms),
                (Some(60_000), Some(1500))
            );
        }
        other => panic!("expected create, got {other:?}"),
    }

    let out = sandbox.exec(["echo", "hello"]).output().await.unwrap();
    assert_eq!(out.stdout, b"hello\n");
    assert_eq!(out.status.code, Some(0));

    let mut run = sandbox.exec(["seq3"]).start().await.unwrap();
    assert_eq!(run.exec_id(), Some(2));
    assert_eq!(run.sandbox_id(), "sb-1");
    assert_eq!(run.next_seq(), 0);
    assert!(matches!(run.next_event().await, Some(Event::Stdout(d)) if d == b"a"));
    assert_eq!(run.next_seq(), 1);
    assert!(matches!(run.next_event().await, Some(Event::Stderr(d)) if d == b"b"));
    assert!(matches!(run.next_event().await, Some(Event::Stdout(d)) if d == b"c"));
    assert_eq!(run.next_seq(), 3);
    assert!(matches!(run.next_event().await, Some(Event::Exit(s)) if s.code == Some(0)));

    let missing = sandbox.exec(["nope"]).output().await.unwrap();
    assert_eq!(missing.status.shell_code(), 127);
}

#[tokio::test]
async fn exec_builder_fills_the_spec() {
    let (client, _state, _fake) = fake_daemon().await;
    let sandbox = client.sandbox("sb-9");
    let b = sandbox
        .exec(["sh"])
        .env("K", "V")
        .cwd("/tmp")
        .user(1000, 100)
        .tty(24, 80)
        .timeout(Duration::from_micros(1_000_001));
    let spec = b.spec();
    assert_eq!(spec.argv, ["sh"]);
    assert_eq!(spec.env, ["K=V"]);
    assert_eq!(spec.cwd.as_deref(), Some("/tmp"));
    assert_eq!((spec.uid, spec.gid), (1000, 100));
    assert_eq!(spec.tty.map(|t| (t.rows, t.cols)), Some((24, 80)));
    assert_eq!(spec.timeout_ms, Some(1001));
    assert!(!spec.stdin);
}

#[tokio::test]
async fn attach_replays_from_a_sequence_number() {
    let (client, _state, _fake) = fake_daemon().await;
    let sandbox = client.create().create().await.unwrap();
    sandbox.exec(["seq3"]).output().await.unwrap();

    let all = sandbox.attach(1, 0).await.unwrap();
    assert_eq!(all.exec_id(), Some(1));
    let out = all.output().await.unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"ac"[..], &b"b"[..])
    );

    let mut tail = sandbox.attach(1, 2).await.unwrap();
    assert_eq!(tail.next_seq(), 2);
    assert!(matches!(tail.next_event().await, Some(Event::Stdout(d)) if d == b"c"));
    assert_eq!(tail.next_seq(), 3);
    assert!(matches!(tail.next_event().await, Some(Event::Exit(_))));

    // A reconnected client reaches the same sandbox by id.
    let again = client.sandbox(sandbox.id());
    let out = again.attach(1, 1).await.unwrap().output().await.unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"c"[..], &b"b"[..])
    );
    let err = again.attach(7, 0).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn files_are_read_and_written_in_chunks() {
    let (client, state, _fake) = fake_daemon().await;
    let sandbox = client.create().create().await.unwrap();
    let data: Vec<u8> = (0..MAX_FILE_CHUNK * 2 + 1000)
        .map(|i| (i % 251) as u8)
        .collect();
    sandbox
        .write_file("/workspace/big", &data, 0o444)
        .await
        .unwrap();
    let writes: Vec<(u64, usize, bool, u32)> = state
        .lock()
        .requests
        .iter()
        .filter_map(|r| match r {
            Request::FileWrite {
                offset,
                data,
                truncate,
                mode,
                ..
            } => Some((*offset, data.len(), *truncate, *mode)),
            _ => None,
        })
        .collect();
    let chunk = MAX_FILE_CHUNK as u64;
    assert_eq!(
        writes,
        [
            // Owner write is added: every later chunk reopens the file for writing.
            (0, MAX_FILE_CHUNK, true, 0o644),
            (chunk, MAX_FILE_CHUNK, false, 0o644),
            (2 * chunk, 1000, false, 0o644),
        ]
    );
    assert_eq!(sandbox.read_file("/workspace/big").await.unwrap(), data);
    let reads = |st: &Shared| {
        st.lock()
            .requests
            .iter()
            .filter(|r| matches!(r, Request::FileRead { .. }))
            .count()
    };
    assert_eq!(reads(&state), 3);

    // A rewrite truncates: a shorter file leaves nothing of the longer one.
    sandbox
        .write_file("/workspace/big", b"short", 0o644)
        .await
        .unwrap();
    assert_eq!(sandbox.read_file("/workspace/big").await.unwrap(), b"short");
    // A single chunk keeps the mode as given.
    sandbox
        .write_file("/workspace/ro", b"x", 0o444)
        .await
        .unwrap();
    assert_eq!(sandbox.stat("/workspace/ro").await.unwrap().mode, 0o444);
    sandbox.remove("/workspace/ro", false).await.unwrap();
    sandbox
        .write_file("/workspace/empty", b"", 0o644)
        .await
        .unwrap();
    assert_eq!(sandbox.read_file("/workspace/empty").await.unwrap(), b"");

    let stat = sandbox.stat("/workspace/big").await.unwrap();
    assert_eq!(
        (stat.kind, stat.size, stat.mode),
        (FileKind::File, 5, 0o644)
    );
    sandbox.mkdir("/workspace/a/b", true).await.unwrap();
    let names: Vec<String> = sandbox
        .list("/workspace")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        names,
        ["/workspace/a", "/workspace/big", "/workspace/empty"]
    );
    let err = sandbox.remove("/workspace/a", false).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::FileError));
    sandbox.remove("/workspace/a", true).await.unwrap();
    assert!(sandbox
        .stat("/workspace/a/b")
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn lifecycle_round_trips() {
    let (client, _state, _fake) = fake_daemon().await;
    let a = client.create().memory(1 << 30).create().await.unwrap();
    let b = client.create().create().await.unwrap();
    let ids: Vec<String> = client
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.sandbox_id)
        .collect();
    assert_eq!(ids, [a.id(), b.id()]);

    let info = a.inspect().await.unwrap();
    assert_eq!(
        (info.state.as_str(), info.limits.memory),
        ("running", Some(1 << 30))
    );
    a.pause().await.unwrap();
    assert_eq!(a.inspect().await.unwrap().state, "paused");
    assert!(a.stats().await.unwrap().frozen);
    a.resume().await.unwrap();
    let stats = a.stats().await.unwrap();
    assert_eq!((stats.frozen, stats.memory_limit), (false, Some(1 << 30)));
    a.signal(None, 15).await.unwrap();
    a.signal(Some(3), 9).await.unwrap();

    a.destroy().await.unwrap();
    assert_eq!(client.list().await.unwrap().len(), 1);
    let err = a.inspect().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Daemon {
                code: ErrorCode::NotFound,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn not_found_surfaces_as_a_daemon_error() {
    let (client, _state, _fake) = fake_daemon().await;
    let ghost = client.sandbox("sb-404");
    for err in [
        ghost.inspect().await.unwrap_err(),
        ghost.stats().await.unwrap_err(),
        ghost.destroy().await.unwrap_err(),
        ghost.pause().await.unwrap_err(),
        ghost.read_file("/etc/hostname").await.unwrap_err(),
        ghost.exec(["echo"]).start().await.unwrap_err(),
        ghost.attach(1, 0).await.unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                Error::Daemon {
                    code: ErrorCode::NotFound,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.is_not_found());
    }
    let real = client.create().create().await.unwrap();
    // A missing file is a `file_error` with the file code `not_found`.
    let err = real.read_file("/nope").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::FileError));
    assert_eq!(err.file_error_code(), Some("not_found"));
    assert!(err.is_not_found());
    // The connection is still good.
    assert_eq!(client.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn guard_destroys_on_drop_unless_kept() {
    let (client, state, _fake) = fake_daemon().await;
    let kept = client.create().create().await.unwrap().guard().keep();
    {
        let guard = client.create().create().await.unwrap().guard();
        guard.write_file("/workspace/x", b"x", 0o644).await.unwrap();
        assert_eq!(client.list().await.unwrap().len(), 2);
    }
    // The destroy is queued on drop (calls may take effect in any order: wait for it).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let ids = loop {
        let ids: Vec<String> = client
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.sandbox_id)
            .collect();
        if ids.len() == 1 || tokio::time::Instant::now() > deadline {
            break ids;
        }
        tokio::time::sleep(QUIET).await;
    };
    assert_eq!(ids, [kept.id()]);
    assert!(state
        .lock()
        .requests
        .iter()
        .any(|r| matches!(r, Request::Destroy { sandbox_id, .. } if sandbox_id == "sb-2")));

    // An explicit destroy reports its result.
    let guard = client.create().create().await.unwrap().guard();
    guard.destroy().await.unwrap();
    assert_eq!(client.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn directories_round_trip_with_symlinks() {
    let (client, state, _fake) = fake_daemon().await;
    let sandbox = client.create().create().await.unwrap();
    let host = TempDir::new();
    let src = host.0.join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("a.txt"), b"alpha").unwrap();
    let big: Vec<u8> = (0..MAX_FILE_CHUNK + 7).map(|i| (i % 13) as u8).collect();
    std::fs::write(src.join("sub/big.bin"), &big).unwrap();
    std::fs::set_permissions(src.join("a.txt"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("../a.txt", src.join("sub/link")).unwrap();

    let up = sandbox.upload_dir(&src, "/workspace/proj").await.unwrap();
    assert_eq!((up.files, up.dirs, up.symlinks), (2, 3, 0));
    assert_eq!(up.bytes, 5 + big.len() as u64);
    assert_eq!(up.skipped.len(), 1);
    assert!(up.skipped[0].path.ends_with("sub/link"), "{:?}", up.skipped);
    assert_eq!(
        sandbox
            .read_file("/workspace/proj/sub/big.bin")
            .await
            .unwrap(),
        big
    );
    assert_eq!(
        sandbox.stat("/workspace/proj/a.txt").await.unwrap().mode,
        0o750
    );

    // In the sandbox: a symlink (recreated, not followed) and a read-only directory.
    {
        let mut st = state.lock();
        let files = &mut st.boxes.get_mut("sb-1").unwrap().files;
        files.insert(
            "/workspace/proj/sub/link".into(),
            FakeFile::symlink("../a.txt"),
        );
        files.insert(
            "/workspace/proj/abs".into(),
            FakeFile::symlink("/etc/passwd"),
        );
        files.get_mut("/workspace/proj/sub/deeper").unwrap().mode = 0o555;
    }
    let dst = host.0.join("dst");
    let down = sandbox.download_dir("/workspace/proj", &dst).await.unwrap();
    assert_eq!((down.files, down.dirs, down.symlinks), (2, 3, 2));
    assert!(down.skipped.is_empty(), "{:?}", down.skipped);
    assert_eq!(std::fs::read(dst.join("a.txt")).unwrap(), b"alpha");
    assert_eq!(std::fs::read(dst.join("sub/big.bin")).unwrap(), big);
    assert_eq!(
        std::fs::read_link(dst.join("sub/link")).unwrap().to_str(),
        Some("../a.txt")
    );
    assert_eq!(
        std::fs::read_link(dst.join("abs")).unwrap().to_str(),
        Some("/etc/passwd")
    );
    let mode = |p: &str| std::fs::metadata(dst.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("sub/deeper"), 0o555);
    // One exec resolved both links.
    let execs = state.lock().boxes["sb-1"].execs.clone();
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0].argv[..3], ["readlink", "-z", "--"]);

    // A download over an existing tree replaces a host symlink instead of writing through it.
    let outside = host.0.join("outside.txt");
    std::fs::write(&outside, b"keep").unwrap();
    std::fs::remove_file(dst.join("a.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, dst.join("a.txt")).unwrap();
    std::fs::set_permissions(
        dst.join("sub/deeper"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    sandbox.download_dir("/workspace/proj", &dst).await.unwrap();
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
    assert!(!std::fs::symlink_metadata(dst.join("a.txt"))
        .unwrap()
        .is_symlink());

    // A special file is skipped, the rest still copied.
    state.lock().boxes.get_mut("sb-1").unwrap().files.insert(
        "/workspace/proj/sub/deeper/x".into(),
        FakeFile {
            kind: FileKind::Other,
            ..FakeFile::dir(0)
        },
    );
    let third = host.0.join("third");
    let down = sandbox
        .download_dir("/workspace/proj", &third)
        .await
        .unwrap();
    assert_eq!(down.skipped.len(), 1);
    assert_eq!(down.skipped[0].path, "/workspace/proj/sub/deeper/x");

    // Single files both ways.
    let n = sandbox
        .upload_file(src.join("sub/big.bin"), "/workspace/one")
        .await
        .unwrap();
    assert_eq!(n, big.len() as u64);
    let n = sandbox
        .download_file("/workspace/one", host.0.join("one"))
        .await
        .unwrap();
    assert_eq!(n, big.len() as u64);
    assert_eq!(std::fs::read(host.0.join("one")).unwrap(), big);
}

#[tokio::test]
async fn entries_that_cannot_be_copied_are_reported_and_the_copy_goes_on() {
    let (client, state, _fake) = fake_daemon().await;
    let sandbox = client.create().create().await.unwrap();
    {
        let mut st = state.lock();
        let files = &mut st.boxes.get_mut("sb-1").unwrap().files;
        files.insert("/workspace/good".into(), FakeFile::symlink("target"));
        files.insert("/workspace/bad".into(), FakeFile::symlink(""));
        let mut secret = FakeFile::dir(0);
        secret.kind = FileKind::File;
        files.insert("/workspace/secret".into(), secret);
    }
    sandbox
        .write_file("/workspace/plain", b"p", 0o644)
        .await
        .unwrap();
    let host = TempDir::new();
    let t = sandbox
        .download_dir("/workspace", host.0.join("d"))
        .await
        .unwrap();
    assert_eq!((t.files, t.symlinks), (1, 1));
    assert!(t.skipped.is_empty(), "{:?}", t.skipped);
    let failed: Vec<&str> = t.failed.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        failed,
        ["/workspace/secret", "/workspace/bad"],
        "{:?}",
        t.failed
    );
    assert!(
        t.failed[0].reason.contains("permission_denied"),
        "{:?}",
        t.failed
    );
    assert_eq!(std::fs::read(host.0.join("d/plain")).unwrap(), b"p");
    assert_eq!(
        std::fs::read_link(host.0.join("d/good")).unwrap().to_str(),
        Some("target")
    );

    // Paused: no exec can read the links, and none is tried.
    sandbox.pause().await.unwrap();
    let execs_before = state.lock().boxes["sb-1"].execs.len();
    let t = sandbox
        .download_dir("/workspace", host.0.join("e"))
        .await
        .unwrap();
    assert_eq!((t.files, t.symlinks, t.failed.len()), (1, 0, 3));
    assert!(t.failed[1].reason.contains("paused"), "{:?}", t.failed);
    assert_eq!(state.lock().boxes["sb-1"].execs.len(), execs_before);
}

#[tokio::test]
async fn dropping_an_exec_detaches_without_killing() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 8).await;
    let daemon = tokio::spawn(async move {
        let Request::Exec { id, spec, .. } = conn.expect().await else {
            panic!("expected exec")
        };
        // A tty's input always flows; `stdin` is for pipes only.
        assert!(!spec.stdin && spec.tty.is_some());
        conn.send(Response::Started {
            id,
            sandbox_id: "sb-1".into(),
            exec_id: Some(4),
        })
        .await;
        assert_eq!(
            conn.expect().await,
            Request::Resize {
                id,
                rows: 40,
                cols: 120
            }
        );
        // The handle goes: its stdin is closed, the exec is not killed, later output drained.
        assert_eq!(conn.expect().await, Request::CloseStdin { id });
        conn.send(Response::Output {
            id,
            stream: Stream::Stdout,
            data: b"later".to_vec(),
            seq: Some(0),
        })
        .await;
        assert_eq!(
            conn.expect().await,
            Request::Credit {
                id,
                stream: Stream::Stdout,
                bytes: 5
            }
        );
        conn.send(Response::Exit {
            id,
            status: ExitStatus::default(),
        })
        .await;
        conn.expect_quiet().await;
    });
    let sandbox = client.sandbox("sb-1");
    let run = sandbox.exec(["sh"]).tty(24, 80).start().await.unwrap();
    assert_eq!(run.exec_id(), Some(4));
    run.resize(40, 120).await.unwrap();
    drop(run);
    tokio::time::timeout(PATIENCE, daemon)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn an_older_daemon_refusing_a_request_fails_the_call() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 1024).await;
    let daemon = tokio::spawn(async move {
        for expected in ["list", "exec"] {
            let req = conn.expect().await;
            assert!(
                format!("{req:?}").to_lowercase().starts_with(expected),
                "{req:?}"
            );
            let message = format!("unknown request type \"{expected}\"");
            conn.send(Response::Error {
                id: None,
                code: ErrorCode::UnknownRequest,
                message,
            })
            .await;
        }
        conn.expect_quiet().await;
    });
    let err = client.list().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::UnknownRequest));
    assert!(err.to_string().contains("older"), "{err}");
    let err = client
        .sandbox("x")
        .exec(["true"])
        .start()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::UnknownRequest));
    tokio::time::timeout(PATIENCE, daemon)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(QUIET).await;
}
