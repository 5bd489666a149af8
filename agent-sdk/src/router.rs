//! The connection's background reader and writer tasks, and the table that routes every frame
//! from the daemon to the run (or `status` call) it names.
//!
//! The reader never awaits anything but the socket: it hands frames to unbounded per-run
//! channels. That is safe because the daemon sends at most a window of output per stream before
//! it needs credit, and the router checks that it does (a run's undelivered bytes never exceed
//! the window).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use sandbox_proto::codec::{read_frame_async, write_frame_async};
use sandbox_proto::{
    decode_response, encode, DaemonStatus, DecodeError, ErrorCode, ExitStatus, FrameError, Request,
    Response, Stream, MAX_FRAME_LEN,
};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::Error;

/// The most stdin credit a run may hold, so a daemon granting wildly cannot overflow the
/// semaphore.
const MAX_STDIN_PERMITS: usize = u32::MAX as usize;

/// What the reader hands to a run, in the order the daemon sent it.
#[derive(Debug)]
pub(crate) enum Routed {
    Started(String),
    Output(Stream, Vec<u8>),
    Exit(ExitStatus),
    Error(Error),
}

/// State of one run that both the reader and the run's handle touch.
#[derive(Debug)]
pub(crate) struct RunShared {
    /// The run's exit or error has arrived (set by the reader under the table lock).
    done: AtomicBool,
    /// Output bytes routed to the handle and not yet taken, per stream (stdout, stderr).
    buffered: [AtomicU64; 2],
    /// Stdin bytes the daemon will still accept.
    pub(crate) stdin: Semaphore,
}

impl RunShared {
    fn new(stdin_window: u32) -> Self {
        RunShared {
            done: AtomicBool::new(false),
            buffered: [AtomicU64::new(0), AtomicU64::new(0)],
            stdin: Semaphore::new(stdin_window as usize),
        }
    }

    /// Whether the run's exit or error has arrived from the daemon.
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Records that the handle took `bytes` of output from `stream`.
    pub(crate) fn taken(&self, stream: Stream, bytes: usize) {
        let bytes = bytes as u64;
        // Saturating: a run abandoned after a window violation had its counter reset.
        let _ = self
            .buffered(stream)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(bytes))
            });
    }

    fn buffered(&self, stream: Stream) -> &AtomicU64 {
        match stream {
            Stream::Stdout => &self.buffered[0],
            Stream::Stderr => &self.buffered[1],
        }
    }

    fn finish(&self) {
        self.done.store(true, Ordering::Release);
        self.stdin.close();
    }
}

/// Why the connection ended; every pending run gets it as its last event.
#[derive(Debug, Clone)]
enum Loss {
    Closed,
    Daemon { code: ErrorCode, message: String },
    Protocol(String),
}

impl Loss {
    fn to_error(&self) -> Error {
        match self {
            Loss::Closed => Error::Closed,
            Loss::Daemon { code, message } => Error::Daemon {
                code: *code,
                message: message.clone(),
            },
            Loss::Protocol(m) => Error::Protocol(m.clone()),
        }
    }
}

#[derive(Debug)]
enum Slot {
    /// A handle consumes this run's events.
    Live {
        tx: mpsc::UnboundedSender<Routed>,
        shared: Arc<RunShared>,
    },
    /// The handle is gone before the exit: output is credited and dropped until the exit.
    Draining,
}

type StatusReply = oneshot::Sender<Result<DaemonStatus, Error>>;

#[derive(Debug, Default)]
struct Table {
    lost: Option<Loss>,
    /// The daemon's last connection-level error: why the connection ends, if it then does.
    last_error: Option<Loss>,
    runs: HashMap<u64, Slot>,
    statuses: HashMap<u64, StatusReply>,
}

/// The routing table and the queue of frames for the writer task.
#[derive(Debug)]
pub(crate) struct Router {
    table: Mutex<Table>,
    frames: mpsc::UnboundedSender<Vec<u8>>,
    window: u32,
}

impl Router {
    /// Starts the writer task on `w` and returns the router that feeds it. The writer ends when
    /// the router is dropped.
    pub(crate) fn start(w: OwnedWriteHalf, window: u32) -> Arc<Router> {
        let (frames, rx) = mpsc::unbounded_channel();
        let router = Arc::new(Router {
            table: Mutex::new(Table::default()),
            frames,
            window,
        });
        tokio::spawn(write_loop(w, rx, Arc::downgrade(&router)));
        router
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `req` for the daemon.
    pub(crate) fn send(&self, req: &Request) -> Result<(), Error> {
        if self.table().lost.is_some() {
            return Err(Error::Closed);
        }
        self.queue(req)
    }

    fn queue(&self, req: &Request) -> Result<(), Error> {
        let frame = encode(req).map_err(|e| Error::Protocol(format!("encoding a request: {e}")))?;
        self.frames.send(frame).map_err(|_| Error::Closed)
    }

    /// Registers run `id` before its `Run` request is sent.
    pub(crate) fn register_run(
        &self,
        id: u64,
    ) -> Result<(Arc<RunShared>, mpsc::UnboundedReceiver<Routed>), Error> {
        let mut t = self.table();
        if t.lost.is_some() {
            return Err(Error::Closed);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(RunShared::new(self.window));
        t.runs.insert(
            id,
            Slot::Live {
                tx,
                shared: Arc::clone(&shared),
            },
        );
        Ok((shared, rx))
    }

    /// Registers status request `id` before it is sent.
    pub(crate) fn register_status(
        &self,
        id: u64,
    ) -> Result<oneshot::Receiver<Result<DaemonStatus, Error>>, Error> {
        let mut t = self.table();
        if t.lost.is_some() {
            return Err(Error::Closed);
        }
        let (tx, rx) = oneshot::channel();
        t.statuses.insert(id, tx);
        Ok(rx)
    }

    /// The handle of run `id` is gone. A run still going is killed with SIGKILL, and the
    /// output it had in flight is credited so the daemon can reach its exit.
    pub(crate) fn release(&self, id: u64) {
        let mut t = self.table();
        if t.lost.is_some() {
            return;
        }
        if let Some(Slot::Live { shared, .. }) = t.runs.get(&id) {
            let shared = Arc::clone(shared);
            self.abandon(&mut t, id, &shared);
        }
    }

    fn abandon(&self, t: &mut Table, id: u64, shared: &RunShared) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let bytes = shared.buffered(stream).swap(0, Ordering::AcqRel);
            self.credit(id, stream, bytes);
        }
        shared.finish();
        let _ = self.queue(&Request::Kill { id, signal: 9 });
        t.runs.insert(id, Slot::Draining);
    }

    fn credit(&self, id: u64, stream: Stream, mut bytes: u64) {
        while bytes > 0 {
            let chunk = u32::try_from(bytes).unwrap_or(u32::MAX);
            let _ = self.queue(&Request::Credit {
                id,
                stream,
                bytes: chunk,
            });
            bytes -= u64::from(chunk);
        }
    }

    /// Routes one message; returns why the connection is over if it is.
    fn dispatch(&self, resp: Response) -> Option<Loss> {
        let mut t = self.table();
        match resp {
            Response::Started { id, sandbox_id } => {
                if let Some(Slot::Live { tx, .. }) = t.runs.get(&id) {
                    let _ = tx.send(Routed::Started(sandbox_id));
                }
            }
            Response::Output { id, stream, data } => self.output(&mut t, id, stream, data),
            Response::StdinCredit { id, bytes } => {
                if let Some(Slot::Live { shared, .. }) = t.runs.get(&id) {
                    let room = MAX_STDIN_PERMITS.saturating_sub(shared.stdin.available_permits());
                    shared.stdin.add_permits((bytes as usize).min(room));
                }
            }
            Response::Exit { id, status } => {
                if let Some(Slot::Live { tx, shared }) = t.runs.remove(&id) {
                    shared.finish();
                    let _ = tx.send(Routed::Exit(status));
                }
            }
            Response::Status { id, info } => {
                if let Some(reply) = t.statuses.remove(&id) {
                    let _ = reply.send(Ok(info));
                }
            }
            Response::Error {
                id: Some(id),
                code,
                message,
            } => {
                let err = Error::Daemon { code, message };
                if let Some(slot) = t.runs.remove(&id) {
                    if let Slot::Live { tx, shared } = slot {
                        shared.finish();
                        let _ = tx.send(Routed::Error(err));
                    }
                } else if let Some(reply) = t.statuses.remove(&id) {
                    let _ = reply.send(Err(err));
                }
            }
            // A connection-level error does not end the connection by itself (the daemon
            // closes it when it must); it is what pending runs get if the connection then ends.
            // `resource_exhausted` without an id is a refused `kill`: the run goes on.
            Response::Error {
                id: None,
                code: ErrorCode::ResourceExhausted,
                ..
            } => {}
            Response::Error {
                id: None,
                code,
                message,
            } => {
                t.last_error = Some(Loss::Daemon { code, message });
            }
            Response::Welcome { .. } => {
                return Some(Loss::Protocol("the daemon sent a second welcome".into()));
            }
        }
        None
    }

    fn output(&self, t: &mut Table, id: u64, stream: Stream, data: Vec<u8>) {
        let bytes = data.len() as u64;
        match t.runs.get(&id) {
            Some(Slot::Live { tx, shared }) => {
                let pending = shared.buffered(stream).fetch_add(bytes, Ordering::AcqRel) + bytes;
                if pending <= u64::from(self.window) {
                    let _ = tx.send(Routed::Output(stream, data));
                    return;
                }
                // The daemon ignored flow control: end the run rather than buffer without bound.
                let message = format!(
                    "the daemon sent {pending} bytes of {stream:?} past a window of {} bytes",
                    self.window
                );
                let _ = tx.send(Routed::Error(Error::Protocol(message)));
                let shared = Arc::clone(shared);
                shared.buffered(stream).fetch_sub(bytes, Ordering::AcqRel);
                self.abandon(t, id, &shared);
                self.credit(id, stream, bytes);
            }
            Some(Slot::Draining) => self.credit(id, stream, bytes),
            None => {}
        }
    }

    /// The connection is over: every pending run and status call gets `loss`, and every later
    /// call fails with [`Error::Closed`].
    fn lose(&self, loss: Loss) {
        let mut t = self.table();
        if t.lost.is_some() {
            return;
        }
        let loss = match (loss, t.last_error.take()) {
            (Loss::Closed, Some(reason)) => reason,
            (loss, _) => loss,
        };
        for (_, slot) in t.runs.drain() {
            if let Slot::Live { tx, shared } = slot {
                shared.finish();
                let _ = tx.send(Routed::Error(loss.to_error()));
            }
        }
        for (_, reply) in t.statuses.drain() {
            let _ = reply.send(Err(loss.to_error()));
        }
        t.lost = Some(loss);
    }
}

/// Reads frames until the connection ends, routing each.
pub(crate) async fn read_loop(mut r: OwnedReadHalf, router: Arc<Router>) {
    let loss = loop {
        let body = match read_frame_async(&mut r, MAX_FRAME_LEN).await {
            Ok(Some(body)) => body,
            Ok(None) | Err(FrameError::Truncated | FrameError::Io(_)) => break Loss::Closed,
            Err(e @ FrameError::TooLarge { .. }) => break Loss::Protocol(e.to_string()),
        };
        match decode_response(&body) {
            Ok(resp) => {
                if let Some(loss) = router.dispatch(resp) {
                    break loss;
                }
            }
            // A newer daemon may send messages this SDK does not know; they carry nothing a
            // run of this version waits for.
            Err(DecodeError::UnknownType(_)) => {}
            Err(e) => break Loss::Protocol(e.to_string()),
        }
    };
    router.lose(loss);
}

/// Writes queued frames until the router is gone, then shuts the write side down.
async fn write_loop(
    mut w: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    router: Weak<Router>,
) {
    while let Some(frame) = rx.recv().await {
        if write_frame_async(&mut w, &frame).await.is_err() {
            if let Some(router) = router.upgrade() {
                router.lose(Loss::Closed);
            }
            return;
        }
    }
    let _ = w.shutdown().await;
}
