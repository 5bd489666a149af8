//! The SDK's one-shot runs against a scripted fake daemon: streaming, credit, stdin, kill,
//! errors, cancellation.

use std::time::Duration;

use sandbox_proto::{
    DaemonStatus, ErrorCode, ExitStatus, Request, Response, Rootfs, SandboxSummary, Stream,
};
use tokio::time::timeout;

use super::{connect, Fake, TempDir, QUIET};
use crate::{Client, Error, Event, SandboxBuilder};

#[tokio::test]
async fn run_streams_output_and_exit() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 1024).await;
    assert_eq!(client.daemon(), "fake 0");
    let daemon = tokio::spawn(async move {
        let (id, spec) = match conn.expect().await {
            Request::Run { id, spec } => (id, spec),
            other => panic!("expected run, got {other:?}"),
        };
        assert_eq!(spec.argv, ["echo", "hello"]);
        assert_eq!(spec.limits.memory, Some(64 << 20));
        conn.send(Response::Started {
            id,
            sandbox_id: "sb-1".into(),
            exec_id: None,
        })
        .await;
        conn.output(id, Stream::Stdout, b"hello\n").await;
        conn.output(id, Stream::Stderr, b"warn").await;
        conn.exit(id, 3).await;
        conn
    });
    let out = client
        .run(["echo", "hello"])
        .memory(64 << 20)
        .output()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"hello\n");
    assert_eq!(out.stderr, b"warn");
    assert_eq!(out.status.code, Some(3));
    assert_eq!(out.status.shell_code(), 3);
    daemon.await.unwrap();
}

#[tokio::test]
async fn credit_is_granted_only_as_events_are_taken() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 8).await;
    let (filled_tx, filled_rx) = tokio::sync::oneshot::channel();
    let daemon = tokio::spawn(async move {
        let id = conn.start_run().await;
        conn.output(id, Stream::Stdout, b"abcdefgh").await;
        // The window is used up and nobody has read: no credit may come.
        conn.expect_quiet().await;
        filled_tx.send(()).unwrap();
        assert_eq!(
            conn.expect().await,
            Request::Credit {
                id,
                stream: Stream::Stdout,
                bytes: 8
            }
        );
        conn.output(id, Stream::Stderr, b"xyz").await;
        conn.output(id, Stream::Stdout, b"12").await;
        assert_eq!(
            conn.expect().await,
            Request::Credit {
                id,
                stream: Stream::Stderr,
                bytes: 3
            }
        );
        assert_eq!(
            conn.expect().await,
            Request::Credit {
                id,
                stream: Stream::Stdout,
                bytes: 2
            }
        );
        conn.exit(id, 0).await;
        conn.expect_quiet().await;
    });
    let mut run = client.run(["cat"]).start().await.unwrap();
    assert_eq!(run.sandbox_id(), "sb-1");
    filled_rx.await.unwrap();
    assert!(matches!(run.next_event().await, Some(Event::Stdout(d)) if d == b"abcdefgh"));
    assert!(matches!(run.next_event().await, Some(Event::Stderr(d)) if d == b"xyz"));
    assert!(matches!(run.next_event().await, Some(Event::Stdout(d)) if d == b"12"));
    assert!(matches!(run.next_event().await, Some(Event::Exit(s)) if s.code == Some(0)));
    assert!(run.next_event().await.is_none());
    daemon.await.unwrap();
}

#[tokio::test]
async fn output_past_the_window_ends_the_run() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 8).await;
    let daemon = tokio::spawn(async move {
        let id = conn.start_run().await;
        conn.output(id, Stream::Stdout, b"12345").await;
        conn.output(id, Stream::Stdout, b"6789").await;
        // The SDK kills the run and credits what it holds, so the daemon can finish.
        assert_eq!(
            conn.expect().await,
            Request::Credit {
                id,
                stream: Stream::Stdout,
                bytes: 5
            }
        );
        assert_eq!(conn.expect().await, Request::Kill { id, signal: 9 });
        assert_eq!(
            conn.expect().await,
            Request::Credit {
                id,
                stream: Stream::Stdout,
                bytes: 4
            }
        );
        conn.exit(id, 0).await;
    });
    let mut run = client.run(["yes"]).start().await.unwrap();
    daemon.await.unwrap();
    assert!(matches!(run.next_event().await, Some(Event::Stdout(d)) if d == b"12345"));
    match run.next_event().await {
        Some(Event::Error(Error::Protocol(m))) => assert!(m.contains("window"), "{m}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert!(run.next_event().await.is_none());
}

#[tokio::test]
async fn version_mismatch_is_reported() {
    let fake = Fake::new();
    let daemon = async {
        let mut conn = fake.accept().await;
        assert!(matches!(conn.expect().await, Request::Hello { .. }));
        conn.send(Response::Error {
            id: None,
            code: ErrorCode::VersionMismatch,
            message: "daemon speaks protocol 2".into(),
        })
        .await;
    };
    let (res, ()) = tokio::join!(Client::connect(fake.path()), daemon);
    let err = res.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::VersionMismatch));
    assert!(matches!(&err, Error::VersionMismatch { message } if message.contains("protocol 2")));

    // A welcome naming another version is a mismatch too.
    let daemon = async {
        let mut conn = fake.accept().await;
        conn.expect().await;
        let (max_frame, window) = (1024, 1024);
        conn.send(Response::Welcome {
            protocol: 99,
            daemon: "new".into(),
            max_frame,
            window,
        })
        .await;
    };
    let (res, ()) = tokio::join!(Client::connect(fake.path()), daemon);
    assert!(matches!(res, Err(Error::VersionMismatch { .. })));
}

#[tokio::test]
async fn no_daemon_is_a_connect_error() {
    let dir = TempDir::new();
    let err = Client::connect(dir.0.join("none.sock")).await.unwrap_err();
    assert!(err.is_no_daemon(), "{err:?}");
    assert!(matches!(err, Error::Connect { .. }));
}

#[tokio::test]
async fn connection_closed_mid_run() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 1024).await;
    let daemon = tokio::spawn(async move {
        let id = conn.start_run().await;
        conn.output(id, Stream::Stdout, b"partial").await;
    });
    let mut run = client.run(["sleep", "9"]).start().await.unwrap();
    daemon.await.unwrap();
    assert!(matches!(run.next_event().await, Some(Event::Stdout(d)) if d == b"partial"));
    assert!(matches!(
        run.next_event().await,
        Some(Event::Error(Error::Closed))
    ));
    assert!(run.next_event().await.is_none());
    assert!(matches!(client.status().await, Err(Error::Closed)));
    assert!(matches!(
        client.run(["true"]).start().await,
        Err(Error::Closed)
    ));
    assert!(matches!(run.kill(15).await, Ok(())));
}

#[tokio::test]
async fn connection_level_error_names_why_the_connection_ended() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 1024).await;
    let (refused_tx, refused_rx) = tokio::sync::oneshot::channel();
    let daemon = tokio::spawn(async move {
        let id = conn.start_run().await;
        // A refused kill (the only id-less error that leaves things as they were) ends nothing.
        let message = "too many signals pending for run 1".to_string();
        conn.send(Response::Error {
            id: None,
            code: ErrorCode::ResourceExhausted,
            message,
        })
        .await;
        conn.output(id, Stream::Stdout, b"still here").await;
        refused_rx.await.unwrap();
        let message = "daemon is stopping".to_string();
        conn.send(Response::Error {
            id: None,
            code: ErrorCode::ShuttingDown,
            message,
        })
        .await;
    });
    let mut run = client.run(["sleep", "9"]).start().await.unwrap();
    assert!(matches!(run.next_event().await, Some(Event::Stdout(d)) if d == b"still here"));
    refused_tx.send(()).unwrap();
    daemon.await.unwrap();
    match run.next_event().await {
        Some(Event::Error(err)) => assert_eq!(err.code(), Some(ErrorCode::ShuttingDown)),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(matches!(client.status().await, Err(Error::Closed)));
}

#[tokio::test]
async fn daemon_refuses_a_run() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 1024).await;
    let daemon = tokio::spawn(async move {
        let Request::Run { id, .. } = conn.expect().await else {
            panic!("expected run")
        };
        let message = "no such command".to_string();
        conn.send(Response::Error {
            id: Some(id),
            code: ErrorCode::SpawnFailed,
            message,
        })
        .await;
        // A refused run is not killed.
        conn.expect_quiet().await;
    });
    let err = client.run(["nope"]).start().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SpawnFailed));
    assert_eq!(err.to_string(), "spawn_failed: no such command");
    daemon.await.unwrap();
}

#[tokio::test]
async fn runs_are_multiplexed() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 1024).await;
    let daemon = tokio::spawn(async move {
        let a = conn.start_run().await;
        let b = conn.start_run().await;
        assert_ne!(a, b);
        conn.output(b, Stream::Stdout, b"from b").await;
        conn.output(a, Stream::Stdout, b"from a").await;
        conn.exit(b, 2).await;
        conn.exit(a, 1).await;
        // Keep the connection until the client is done.
        while conn.recv().await.is_some() {}
    });
    let run_a = client.run(["a"]).start().await.unwrap();
    let run_b = client.run(["b"]).start().await.unwrap();
    let (out_a, out_b) = tokio::join!(run_a.output(), run_b.output());
    let (out_a, out_b) = (out_a.unwrap(), out_b.unwrap());
    assert_eq!(
        (out_a.stdout.as_slice(), out_a.status.code),
        (&b"from a"[..], Some(1))
    );
    assert_eq!(
        (out_b.stdout.as_slice(), out_b.status.code),
        (&b"from b"[..], Some(2))
    );
    drop(client);
    daemon.await.unwrap();
}

#[tokio::test]
async fn stdin_waits_for_credit() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 8).await;
    let daemon = tokio::spawn(async move {
        let id = conn.start_run().await;
        let stdin = |data: &[u8]| Request::Stdin {
            id,
            data: data.to_vec(),
        };
        assert_eq!(conn.expect().await, stdin(b"01234567"));
        conn.expect_quiet().await;
        conn.send(Response::StdinCredit { id, bytes: 8 }).await;
        assert_eq!(conn.expect().await, stdin(b"89abcdef"));
        conn.expect_quiet().await;
        conn.send(Response::StdinCredit { id, bytes: 8 }).await;
        assert_eq!(conn.expect().await, stdin(b"gh"));
        assert_eq!(conn.expect().await, Request::CloseStdin { id });
        conn.exit(id, 0).await;
    });
    let run = client.run(["cat"]).stdin(true).start().await.unwrap();
    run.write_stdin(b"0123456789abcdefgh").await.unwrap();
    run.close_stdin().await.unwrap();
    assert!(matches!(
        run.write_stdin(b"late").await,
        Err(Error::Protocol(_))
    ));
    let out = run.output().await.unwrap();
    assert_eq!(out.status.code, Some(0));
    daemon.await.unwrap();
}

#[tokio::test]
async fn stdin_needs_to_be_enabled() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 8).await;
    let daemon = tokio::spawn(async move {
        let id = conn.start_run().await;
        conn.expect_quiet().await;
        conn.exit(id, 0).await;
    });
    let run = client.run(["cat"]).start().await.unwrap();
    assert!(matches!(
        run.write_stdin(b"x").await,
        Err(Error::Protocol(_))
    ));
    run.close_stdin().await.unwrap();
    daemon.await.unwrap();
    assert_eq!(run.output().await.unwrap().status.code, Some(0));
}

#[tokio::test]
async fn dropping_a_live_run_kills_it_and_drains() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 8).await;
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
    let daemon = tokio::spawn(async move {
        let id = conn.start_run().await;
        conn.output(id, Stream::Stderr, b"1234").await;
        sent_tx.send(()).unwrap();
        // The untaken chunk is credited, then the run is killed.
        assert_eq!(
            conn.expect().await,
            Request::Credit {
                id,
                stream: Stream::Stderr,
                bytes: 4
            }
        );
        assert_eq!(conn.expect().await, Request::Kill { id, signal: 9 });
        // Output that was in flight is credited and dropped.
        conn.output(id, Stream::Stdout, b"late").await;
        assert_eq!(
            conn.expect().await,
            Request::Credit {
                id,
                stream: Stream::Stdout,
                bytes: 4
            }
        );
        conn.exit(id, 137).await;
        conn.expect_quiet().await;
    });
    let run = client.run(["sleep", "9"]).start().await.unwrap();
    sent_rx.await.unwrap();
    // Let the reader route the chunk before the handle goes.
    tokio::time::sleep(QUIET).await;
    drop(run);
    daemon.await.unwrap();
}

#[tokio::test]
async fn finished_runs_are_not_killed_on_drop() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 8).await;
    let daemon = tokio::spawn(async move {
        let id = conn.start_run().await;
        conn.exit(id, 0).await;
        conn.expect_quiet().await;
    });
    let mut run = client.run(["true"]).start().await.unwrap();
    assert!(matches!(run.next_event().await, Some(Event::Exit(_))));
    drop(run);
    daemon.await.unwrap();
}

#[tokio::test]
async fn kill_and_status() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 1024).await;
    let info = DaemonStatus {
        daemon: "fake 0".into(),
        cgroup_version: "v2".into(),
        sandboxes: vec![SandboxSummary {
            sandbox_id: "sb-1".into(),
            ..Default::default()
        }],
    };
    let expected = info.clone();
    let daemon = tokio::spawn(async move {
        let id = conn.start_run().await;
        assert_eq!(conn.expect().await, Request::Kill { id, signal: 15 });
        let Request::Status { id: status_id } = conn.expect().await else {
            panic!("no status")
        };
        assert_ne!(status_id, id);
        conn.send(Response::Status {
            id: status_id,
            info,
        })
        .await;
        let status = ExitStatus {
            signal: Some(15),
            ..ExitStatus::default()
        };
        conn.send(Response::Exit { id, status }).await;
    });
    let run = client.run(["sleep", "9"]).start().await.unwrap();
    run.kill(15).await.unwrap();
    assert_eq!(client.status().await.unwrap(), expected);
    let out = run.output().await.unwrap();
    assert_eq!(out.status.shell_code(), 143);
    daemon.await.unwrap();
}

#[tokio::test]
async fn builder_fills_the_spec() {
    let fake = Fake::new();
    let (client, _conn) = connect(&fake, 1024).await;
    let b = client
        .run(vec!["node".to_string(), "index.js".to_string()])
        .memory(1 << 30)
        .pids(64)
        .cpus(0.5)
        .timeout(Duration::from_micros(1_500_001))
        .workspace_size(16 << 20)
        .rootfs_path("/srv/root")
        .mount("/home/a/proj", "/workspace", false)
        .mount("/data", "/data", true)
        .env("NODE_ENV", "test")
        .cwd("/workspace")
        .hostname("box")
        .stdin(true);
    let spec = b.spec();
    assert_eq!(spec.argv, ["node", "index.js"]);
    assert_eq!(spec.limits.memory, Some(1 << 30));
    assert_eq!(spec.limits.pids, Some(64));
    assert_eq!(spec.limits.cpus, Some(0.5));
    assert_eq!(spec.limits.timeout_ms, Some(1501));
    assert_eq!(spec.limits.workspace_size, Some(16 << 20));
    assert_eq!(
        spec.rootfs,
        Rootfs::Path {
            path: "/srv/root".into()
        }
    );
    assert_eq!(spec.mounts.len(), 2);
    assert!(spec.mounts[1].read_only && !spec.mounts[0].read_only);
    assert_eq!(spec.env, ["NODE_ENV=test"]);
    assert_eq!(spec.cwd.as_deref(), Some("/workspace"));
    assert_eq!(spec.hostname.as_deref(), Some("box"));
    assert!(spec.stdin);
    assert_eq!(b.rootfs_host().spec().rootfs, Rootfs::Host);
}

#[tokio::test]
async fn stdin_from_another_task_while_reading_events() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 4).await;
    // The daemon plays `cat`: every stdin chunk comes back as output, and is credited.
    let daemon = tokio::spawn(async move {
        let id = conn.start_run().await;
        loop {
            match conn.expect().await {
                Request::Stdin { data, .. } => {
                    let bytes = data.len() as u32;
                    conn.output(id, Stream::Stdout, &data).await;
                    conn.send(Response::StdinCredit { id, bytes }).await;
                }
                Request::Credit {
                    stream: Stream::Stdout,
                    ..
                } => {}
                Request::CloseStdin { .. } => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        conn.exit(id, 0).await;
        while conn.recv().await.is_some() {}
    });
    let mut run = client.run(["cat"]).stdin(true).start().await.unwrap();
    let stdin = run.stdin_handle();
    let input: Vec<u8> = (0..100u8).collect();
    let feed = input.clone();
    let feeder = tokio::spawn(async move {
        stdin.write(&feed).await.unwrap();
        stdin.close().await.unwrap();
    });
    let mut echoed = Vec::new();
    loop {
        match run.next_event().await {
            Some(Event::Stdout(data)) => echoed.extend(data),
            Some(Event::Exit(status)) => {
                assert_eq!(status.code, Some(0));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(echoed, input);
    feeder.await.unwrap();
    drop((run, client));
    daemon.await.unwrap();
}

#[tokio::test]
async fn cancelling_start_kills_the_run() {
    let fake = Fake::new();
    let (client, mut conn) = connect(&fake, 1024).await;
    let start = client.run(["sleep", "9"]).start();
    assert!(timeout(QUIET, start).await.is_err());
    let Request::Run { id, .. } = conn.expect().await else {
        panic!("expected run")
    };
    assert_eq!(conn.expect().await, Request::Kill { id, signal: 9 });
    // Its late start and exit are absorbed.
    conn.send(Response::Started {
        id,
        sandbox_id: "late".into(),
        exec_id: None,
    })
    .await;
    conn.exit(id, 137).await;
    // The connection is still good for the next run.
    let (run, next_id) = tokio::join!(client.run(["true"]).start(), conn.start_run());
    assert_eq!(run.unwrap().sandbox_id(), format!("sb-{next_id}"));
}
