//! The wire protocol under abuse, flow control and streaming. Every bad input gets a typed
//! error or a closed connection, and the daemon keeps serving a second, well-behaved client
//! in the same test.

// Integration tests are whole files of tests; the workspace lint is meant for unit tests.
#![allow(clippy::tests_outside_test_module)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use sandbox_proto::{
    decode_response, encode, ErrorCode, Request, Response, RunSpec, Stream, PROTOCOL_VERSION,
};
use sandbox_tests::{require_root, scaled, TestDaemon};

/// A raw protocol connection.
struct Raw(UnixStream);

impl Raw {
    fn connect(d: &TestDaemon) -> Raw {
        let s = UnixStream::connect(&d.socket).unwrap();
        s.set_read_timeout(Some(scaled(Duration::from_secs(10))))
            .unwrap();
        Raw(s)
    }
    fn hello(d: &TestDaemon) -> Raw {
        let mut r = Raw::connect(d);
        r.send(&Request::Hello {
            protocol: PROTOCOL_VERSION,
            client: "raw".into(),
        });
        assert!(matches!(r.recv(), Some(Response::Welcome { .. })));
        r
    }
    fn send(&mut self, req: &Request) {
        self.0.write_all(&encode(req).unwrap()).unwrap();
    }
    /// The next response, or None when the daemon closed the connection.
    fn recv(&mut self) -> Option<Response> {
        let body = sandbox_proto::codec::read_frame(&mut self.0, 16 << 20).ok()??;
        Some(decode_response(&body).unwrap())
    }
    fn expect_error(&mut self, code: ErrorCode) -> String {
        match self.recv() {
            Some(Response::Error {
                code: c, message, ..
            }) if c == code => message,
            other => panic!("expected {code} error, got {other:?}"),
        }
    }
    fn expect_closed(&mut self) {
        let mut b = [0u8; 1];
        assert_eq!(self.0.read(&mut b).unwrap(), 0, "connection still open");
    }
}

fn run(argv: &[&str]) -> RunSpec {
    RunSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A second client runs a command while the first one misbehaves.
async fn second_client_works(d: &TestDaemon) {
    let out = d
        .client()
        .await
        .run(["echo", "still serving"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"still serving\n");
}

#[tokio::test]
async fn bad_input_gets_typed_errors_and_the_daemon_keeps_serving() {
    if !require_root("bad_input_gets_typed_errors_and_the_daemon_keeps_serving") {
        return;
    }
    let d = TestDaemon::start();
    // An idle, well-behaved client connected the whole time.
    let bystander = d.client().await;

    // Wrong protocol version: a clear error, then the connection closes.
    let mut r = Raw::connect(&d);
    r.send(&Request::Hello {
        protocol: PROTOCOL_VERSION + 1,
        client: "future".into(),
    });
    let msg = r.expect_error(ErrorCode::VersionMismatch);
    assert!(
        msg.contains(&format!("this daemon speaks {PROTOCOL_VERSION}")),
        "{msg}"
    );
    r.expect_closed();

    // A request before hello.
    let mut r = Raw::connect(&d);
    r.send(&Request::Status { id: 1 });
    r.expect_error(ErrorCode::ProtocolViolation);
    r.expect_closed();

    // A frame over the limit: refused from its header, connection closed.
    let mut r = Raw::hello(&d);
    r.0.write_all(&(64u32 << 20).to_be_bytes()).unwrap();
    r.expect_error(ErrorCode::FrameTooLarge);
    r.expect_closed();

    // Garbage bytes in a well-framed body: bad_frame, and the connection still works.
    let mut r = Raw::hello(&d);
    r.0.write_all(&[0, 0, 0, 5, 0xc1, 0xff, 0x00, 0x13, 0x37])
        .unwrap();
    r.expect_error(ErrorCode::BadFrame);
    // An unknown request type: unknown_request, connection still works.
    let body = sandbox_proto::pack(&std::collections::BTreeMap::from([
        ("type", "launch"),
        ("x", "y"),
    ]))
    .unwrap();
    r.0.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    r.0.write_all(&body).unwrap();
    r.expect_error(ErrorCode::UnknownRequest);
    // A known type with a mistyped field: bad_frame.
    let body = sandbox_proto::pack(&std::collections::BTreeMap::from([
        ("type", "run"),
        ("id", "not a number"),
    ]))
    .unwrap();
    r.0.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    r.0.write_all(&body).unwrap();
    r.expect_error(ErrorCode::BadFrame);
    // Invalid flag values: invalid_argument naming the field.
    let mut spec = run(&["true"]);
    spec.limits.memory = Some(1000);
    r.send(&Request::Run { id: 1, spec });
    assert!(r
        .expect_error(ErrorCode::InvalidArgument)
        .starts_with("limits.memory"));
    let mut spec = run(&["true"]);
    spec.mounts = vec![sandbox_proto::Mount {
        host: "relative".into(),
        sandbox: "/x".into(),
        read_only: false,
    }];
    r.send(&Request::Run { id: 2, spec });
    assert!(r
        .expect_error(ErrorCode::InvalidArgument)
        .starts_with("mounts[0].host"));
    r.send(&Request::Run {
        id: 3,
        spec: run(&[]),
    });
    r.expect_error(ErrorCode::InvalidArgument);
    // A signal for a run that does not exist. (Credit for one is ignored: it can race with
    // the run's end.)
    r.send(&Request::Credit {
        id: 99,
        stream: Stream::Stdout,
        bytes: 1,
    });
    r.send(&Request::Kill { id: 99, signal: 15 });
    assert!(r
        .expect_error(ErrorCode::ProtocolViolation)
        .contains("no live run with id 99"));
    // Stdin for a run that did not ask for it ends that run with protocol_violation.
    r.send(&Request::Run {
        id: 5,
        spec: run(&["sleep", "30"]),
    });
    assert!(matches!(r.recv(), Some(Response::Started { id: 5, .. })));
    r.send(&Request::Stdin {
        id: 5,
        data: b"x".to_vec(),
    });
    match r.recv() {
        Some(Response::Error {
            id: Some(5),
            code: ErrorCode::ProtocolViolation,
            message,
        }) => {
            assert!(message.contains("stdin"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Stdin past the window, likewise.
    let mut spec = run(&["sleep", "30"]);
    spec.stdin = true;
    r.send(&Request::Run { id: 6, spec });
    assert!(matches!(r.recv(), Some(Response::Started { id: 6, .. })));
    r.send(&Request::Stdin {
        id: 6,
        data: vec![0; sandbox_proto::DEFAULT_WINDOW as usize + 1],
    });
    match r.recv() {
        Some(Response::Error {
            id: Some(6),
            code: ErrorCode::ProtocolViolation,
            message,
        }) => {
            assert!(message.contains("window"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // After all that, this connection still runs commands.
    r.send(&Request::Run {
        id: 4,
        spec: run(&["echo", "ok"]),
    });
    assert!(matches!(r.recv(), Some(Response::Started { id: 4, .. })));
    assert!(matches!(r.recv(), Some(Response::Output { id: 4, ref data, .. }) if data == b"ok\n"));
    assert!(matches!(r.recv(), Some(Response::Exit { id: 4, .. })));

    // A truncated frame: the header promises more than arrives before the client hangs up.
    let mut r = Raw::hello(&d);
    r.0.write_all(&[0, 0, 0, 100, 1, 2, 3]).unwrap();
    r.0.shutdown(std::net::Shutdown::Write).unwrap();
    r.expect_closed();

    second_client_works(&d).await;
    assert!(
        bystander.status().await.is_ok(),
        "the idle client's connection was affected"
    );
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_gets_at_most_its_window() {
    if !require_root("a_client_that_stops_reading_gets_at_most_its_window") {
        return;
    }
    let d = TestDaemon::start();
    let mut r = Raw::hello(&d);
    // `yes` writes forever; this client never grants credit.
    r.send(&Request::Run {
        id: 1,
        spec: run(&["yes"]),
    });
    assert!(matches!(r.recv(), Some(Response::Started { .. })));
    let mut got = 0usize;
    r.0.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while let Some(Response::Output {
        data,
        stream: Stream::Stdout,
        ..
    }) = r.recv()
    {
        got += data.len();
    }
    assert_eq!(
        got,
        sandbox_proto::DEFAULT_WINDOW as usize,
        "received past the window"
    );
    // Granting credit lets exactly that much more through.
    r.0.set_read_timeout(Some(scaled(Duration::from_secs(5))))
        .unwrap();
    r.send(&Request::Credit {
        id: 1,
        stream: Stream::Stdout,
        bytes: 1000,
    });
    let mut more = 0;
    r.0.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while let Some(Response::Output { data, .. }) = r.recv() {
        more += data.len();
    }
    assert_eq!(more, 1000);
    // The daemon kept serving others meanwhile; hanging up kills the stalled sandbox.
    second_client_works(&d).await;
    drop(r);
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn output_streams_before_the_command_ends() {
    if !require_root("output_streams_before_the_command_ends") {
        return;
    }
    let d = TestDaemon::start();
    let c = d.client().await;
    let mut run = c
        .run(["sh", "-c", "echo first; sleep 5; echo second"])
        .start()
        .await
        .unwrap();
    let start = Instant::now();
    match run.next_event().await {
        Some(agent_sdk::Event::Stdout(b)) => assert_eq!(b, b"first\n"),
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed() < scaled(Duration::from_secs(3)),
        "first line arrived only after {:?}",
        start.elapsed()
    );
    run.kill(9).await.unwrap();
    let out = run.output().await.unwrap();
    assert_eq!(out.status.signal, Some(9));
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn stdin_is_forwarded_by_sandboxctl() {
    if !require_root("stdin_is_forwarded_by_sandboxctl") {
        return;
    }
    let d = TestDaemon::start();
    let mut child = d
        .sandboxctl()
        .args(["run", "--", "sh", "-c", "wc -c; echo done >&2"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // More than one stdin window, so credit has to flow back.
    let data = vec![b'x'; 3 * sandbox_proto::DEFAULT_WINDOW as usize + 17];
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        (3 * sandbox_proto::DEFAULT_WINDOW + 17).to_string()
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "done\n");
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn a_client_that_writes_without_reading_is_never_blocked() {
    if !require_root("a_client_that_writes_without_reading_is_never_blocked") {
        return;
    }
    let d = TestDaemon::start();
    let mut r = Raw::hello(&d);
    r.send(&Request::Run {
        id: 1,
        spec: run(&["yes"]),
    });
    assert!(matches!(r.recv(), Some(Response::Started { .. })));
    // Flood the daemon with credit without reading: output piles up on the daemon's side of
    // the socket, yet the daemon must keep reading this connection (a single-threaded client
    // that writes credit after each chunk would otherwise deadlock with it).
    let mut w = r.0.try_clone().unwrap();
    let frame = encode(&Request::Credit {
        id: 1,
        stream: Stream::Stdout,
        bytes: 64 * 1024,
    })
    .unwrap();
    let flood = std::thread::spawn(move || {
        for _ in 0..20_000 {
            w.write_all(&frame)?;
        }
        Ok::<_, std::io::Error>(())
    });
    let deadline = Instant::now() + scaled(Duration::from_secs(20));
    while !flood.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the daemon stopped reading a client that was not reading"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    flood.join().unwrap().unwrap();
    // The run still answers: kill it and read up to its exit.
    r.send(&Request::Kill { id: 1, signal: 9 });
    loop {
        match r.recv() {
            Some(Response::Exit { status, .. }) => {
                assert_eq!(status.signal, Some(9));
                break;
            }
            Some(Response::Output { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    second_client_works(&d).await;
    drop(r);
    d.assert_no_leaks().await;
}

#[tokio::test]
async fn bad_sandbox_calls_get_typed_errors() {
    if !require_root("bad_sandbox_calls_get_typed_errors") {
        return;
    }
    let d = TestDaemon::start();
    let mut r = Raw::hello(&d);
    // Calls about a sandbox that does not exist.
    let ghost = "000000000000".to_string();
    for req in [
        Request::Inspect {
            id: 1,
            sandbox_id: ghost.clone(),
        },
        Request::Stats {
            id: 2,
            sandbox_id: ghost.clone(),
        },
        Request::Destroy {
            id: 3,
            sandbox_id: ghost.clone(),
        },
        Request::Pause {
            id: 4,
            sandbox_id: ghost.clone(),
        },
        Request::FileRead {
            id: 5,
            sandbox_id: ghost.clone(),
            path: "/etc/passwd".into(),
            offset: 0,
            len: 10,
        },
        Request::Exec {
            id: 6,
            sandbox_id: ghost.clone(),
            spec: sandbox_proto::ExecSpec {
                argv: vec!["true".into()],
                ..Default::default()
            },
        },
        Request::Attach {
            id: 7,
            sandbox_id: ghost.clone(),
            exec_id: 1,
            from_seq: 0,
        },
    ] {
        r.send(&req);
        r.expect_error(ErrorCode::NotFound);
    }
    // A real sandbox, and bad arguments about it.
    r.send(&Request::Create {
        id: 10,
        spec: Default::default(),
    });
    let sid = match r.recv() {
        Some(Response::Created { sandbox, .. }) => sandbox.sandbox_id,
        other => panic!("{other:?}"),
    };
    let file_err = |r: &mut Raw, req: Request| {
        r.send(&req);
        r.expect_error(ErrorCode::FileError)
    };
    assert!(file_err(
        &mut r,
        Request::FileRead {
            id: 11,
            sandbox_id: sid.clone(),
            path: "/no\0pe".into(),
            offset: 0,
            len: 1
        }
    )
    .starts_with("invalid_path"));
    assert!(file_err(
        &mut r,
        Request::FileRemove {
            id: 12,
            sandbox_id: sid.clone(),
            path: "/".into(),
            recursive: true
        }
    )
    .starts_with("invalid_path"));
    assert!(file_err(
        &mut r,
        Request::FileWrite {
            id: 13,
            sandbox_id: sid.clone(),
            path: "/usr/x".into(),
            offset: 0,
            data: vec![1],
            truncate: true,
            mode: 0o644
        }
    )
    .starts_with("read_only"));
    // A huge read is capped at the chunk size, not honoured.
    r.send(&Request::FileRead {
        id: 14,
        sandbox_id: sid.clone(),
        path: "/etc/passwd".into(),
        offset: 0,
        len: u64::MAX,
    });
    assert!(
        matches!(r.recv(), Some(Response::FileData { id: 14, ref data, .. }) if data.len() <= sandbox_proto::MAX_FILE_CHUNK)
    );
    r.send(&Request::Exec {
        id: 15,
        sandbox_id: sid.clone(),
        spec: sandbox_proto::ExecSpec {
            argv: vec!["true".into()],
            uid: 1 << 20,
            ..Default::default()
        },
    });
    assert!(r
        .expect_error(ErrorCode::InvalidArgument)
        .starts_with("uid"));
    r.send(&Request::Signal {
        id: 16,
        sandbox_id: sid.clone(),
        exec_id: None,
        signal: 99,
    });
    r.expect_error(ErrorCode::InvalidArgument);
    r.send(&Request::Attach {
        id: 17,
        sandbox_id: sid.clone(),
        exec_id: 424242,
        from_seq: 0,
    });
    r.expect_error(ErrorCode::NotFound);
    let mut spec = sandbox_proto::CreateSpec::default();
    spec.limits.timeout_ms = Some(10);
    r.send(&Request::Create { id: 18, spec });
    r.expect_error(ErrorCode::InvalidArgument);
    r.send(&Request::Destroy {
        id: 19,
        sandbox_id: sid,
    });
    assert!(matches!(r.recv(), Some(Response::Done { id: 19 })));
    second_client_works(&d).await;
    d.assert_no_leaks().await;
}
