//! Tests of the SDK against a fake daemon: a Unix listener in a temporary directory that speaks
//! the protocol, from a script in each test (`runs`) or as a small stateful daemon of
//! long-lived sandboxes (`sandboxes`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sandbox_proto::codec::{read_frame_async, write_frame_async};
use sandbox_proto::{
    decode_request, encode, ExitStatus, Request, Response, Stream, MAX_FRAME_LEN, PROTOCOL_VERSION,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::time::timeout;

use crate::Client;

/// A stateful fake daemon of long-lived sandboxes.
mod fakebox;
/// One-shot runs against scripted answers.
mod runs;
/// Long-lived sandboxes against a stateful fake.
mod sandboxes;

/// How long a test waits for something that must happen.
pub(super) const PATIENCE: Duration = Duration::from_secs(5);
/// How long a test waits to be sure something does not happen.
pub(super) const QUIET: Duration = Duration::from_millis(100);

/// A directory removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("agent-sdk-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A listening fake daemon.
pub(super) struct Fake {
    _dir: TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl Fake {
    pub(super) fn new() -> Fake {
        let dir = TempDir::new();
        let path = dir.0.join("d.sock");
        let listener = UnixListener::bind(&path).unwrap();
        Fake {
            _dir: dir,
            path,
            listener,
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) async fn accept(&self) -> Conn {
        let (stream, _) = self.listener.accept().await.unwrap();
        Conn(stream)
    }

    /// Accepts one client and welcomes it with `window`.
    pub(super) async fn accept_welcome(&self, window: u32) -> Conn {
        let mut conn = self.accept().await;
        match conn.recv().await {
            Some(Request::Hello { protocol, .. }) => assert_eq!(protocol, PROTOCOL_VERSION),
            other => panic!("expected hello, got {other:?}"),
        }
        conn.send(Response::Welcome {
            protocol: PROTOCOL_VERSION,
            daemon: "fake 0".into(),
            max_frame: MAX_FRAME_LEN as u32,
            window,
        })
        .await;
        conn
    }
}

/// The daemon's side of one connection.
pub(super) struct Conn(UnixStream);

impl Conn {
    pub(super) async fn send(&mut self, resp: Response) {
        write_frame_async(&mut self.0, &encode(&resp).unwrap())
            .await
            .unwrap();
    }

    /// The next request, or `None` at end of stream.
    pub(super) async fn recv(&mut self) -> Option<Request> {
        let body = timeout(PATIENCE, read_frame_async(&mut self.0, MAX_FRAME_LEN))
            .await
            .expect("the client sent nothing")
            .unwrap()?;
        Some(decode_request(&body).unwrap())
    }

    /// The next request, however long it takes; `None` once the client closed (or broke) the
    /// connection.
    pub(super) async fn recv_until_closed(&mut self) -> Option<Request> {
        let body = read_frame_async(&mut self.0, MAX_FRAME_LEN).await.ok()??;
        Some(decode_request(&body).unwrap())
    }

    pub(super) async fn expect(&mut self) -> Request {
        self.recv().await.expect("the client closed the connection")
    }

    /// Asserts the client sends nothing for a while.
    pub(super) async fn expect_quiet(&mut self) {
        if let Ok(frame) = timeout(QUIET, read_frame_async(&mut self.0, MAX_FRAME_LEN)).await {
            panic!(
                "expected no request, got {:?}",
                frame.unwrap().map(|b| decode_request(&b))
            );
        }
    }

    /// Reads a `run` and answers `started`; returns the run's id.
    pub(super) async fn start_run(&mut self) -> u64 {
        match self.expect().await {
            Request::Run { id, .. } => {
                self.send(Response::Started {
                    id,
                    sandbox_id: format!("sb-{id}"),
                    exec_id: None,
                })
                .await;
                id
            }
            other => panic!("expected run, got {other:?}"),
        }
    }

    pub(super) async fn output(&mut self, id: u64, stream: Stream, data: &[u8]) {
        self.send(Response::Output {
            id,
            stream,
            data: data.to_vec(),
            seq: None,
        })
        .await;
    }

    pub(super) async fn exit(&mut self, id: u64, code: i32) {
        let status = ExitStatus {
            code: Some(code),
            ..ExitStatus::default()
        };
        self.send(Response::Exit { id, status }).await;
    }
}

pub(super) async fn connect(fake: &Fake, window: u32) -> (Client, Conn) {
    let (client, conn) = tokio::join!(Client::connect(fake.path()), fake.accept_welcome(window));
    (client.unwrap(), conn)
}
