//! The connection's background reader and writer tasks, and the table that routes every frame
//! from the daemon to the stream (run, exec or attach) or the single-answer call it names.
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
    decode_response, encode, DecodeError, ErrorCode, ExitStatus, FrameError, Request, Response,
    Stream, MAX_FRAME_LEN,
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
    Started {
        sandbox_id: String,
        exec_id: Option<u64>,
    },
    /// A chunk, with its sequence number in the exec's log (execs and attaches only).
    Output(Stream, Vec<u8>, Option<u64>),
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
    /// A one-shot run, killed when its handle goes; an exec (or attach) goes on.
    kill_on_abandon: bool,
}

impl RunShared {
    fn new(stdin_window: u32, kill_on_abandon: bool) -> Self {
        RunShared {
            kill_on_abandon,
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
        /// Its `started` arrived.
        started: bool,
    },
    /// The handle is gone before the exit: output is credited and dropped until the exit.
    Draining,
}

/// Where the one answer to a request goes.
pub(crate) type Reply = oneshot::Sender<Result<Response, Error>>;

#[derive(Debug, Default)]
struct Table {
    lost: Option<Loss>,
    /// The daemon's last connection-level error: why the connection ends, if it then does.
    last_error: Option<Loss>,
    runs: HashMap<u64, Slot>,
    /// Requests answered by exactly one frame (`status`, `create`, `inspect`, the file calls...).
    calls: HashMap<u64, Reply>,
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

    /// Registers stream `id` before its `run`, `exec` or `attach` request is sent. `kill`: the
    /// command is killed if the stream is abandoned (one-shot runs).
    pub(crate) fn register_run(
        &self,
        id: u64,
        kill: bool,
    ) -> Result<(Arc<RunShared>, mpsc::UnboundedReceiver<Routed>), Error> {
        let mut t = self.table();
        if t.lost.is_some() {
            return Err(Error::Closed);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(RunShared::new(self.window, kill));
        t.runs.insert(
            id,
            Slot::Live {
                tx,
                shared: Arc::clone(&shared),
                started: false,
            },
        );
        Ok((shared, rx))
    }

    /// Registers request `id`, answered by a single frame, before it is sent.
    pub(crate) fn register_call(
        &self,
        id: u64,
    ) -> Result<oneshot::Receiver<Result<Response, Error>>, Error> {
        let mut t = self.table();
        if t.lost.is_some() {
            return Err(Error::Closed);
        }
        let (tx, rx) = oneshot::channel();
        t.calls.insert(id, tx);
        Ok(rx)
    }

    /// The handle of stream `id` is gone. A stream still going is drained: the output it had
    /// in flight and all later output is credited and dropped, so the daemon can reach its
    /// exit. A one-shot run is killed with SIGKILL first; an exec goes on.
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
        if shared.kill_on_abandon {
            let _ = self.queue(&Request::Kill { id, signal: 9 });
        }
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
        if let Some(id) = call_answer_id(&resp) {
            if let Some(reply) = t.calls.remove(&id) {
                let _ = reply.send(Ok(resp));
            }
            return None;
        }
        match resp {
            Response::Started {
                id,
                sandbox_id,
                exec_id,
            } => {
                if let Some(Slot::Live { tx, started, .. }) = t.runs.get_mut(&id) {
                    *started = true;
                    let _ = tx.send(Routed::Started {
                        sandbox_id,
                        exec_id,
                    });
                }
            }
            Response::Output {
                id,
                stream,
                data,
                seq,
            } => self.output(&mut t, id, stream, data, seq),
            Response::StdinCredit { id, bytes } => {
                if let Some(Slot::Live { shared, .. }) = t.runs.get(&id) {
                    let room = MAX_STDIN_PERMITS.saturating_sub(shared.stdin.available_permits());
                    shared.stdin.add_permits((bytes as usize).min(room));
                }
            }
            Response::Exit { id, status } => {
                if let Some(Slot::Live { tx, shared, .. }) = t.runs.remove(&id) {
                    shared.finish();
                    let _ = tx.send(Routed::Exit(status));
                }
            }
            Response::Error {
                id: Some(id),
                code,
                message,
            } => {
                let err = Error::Daemon { code, message };
                if let Some(slot) = t.runs.remove(&id) {
                    if let Slot::Live { tx, shared, .. } = slot {
                        shared.finish();
                        let _ = tx.send(Routed::Error(err));
                    }
                } else if let Some(reply) = t.calls.remove(&id) {
                    let _ = reply.send(Err(err));
                }
            }
            // An older daemon cannot tell which request it did not know, so it names none. Only
            // the newer requests can be unknown, and each is either a call or a stream not yet
            // started: those fail (rather than wait forever); started streams go on.
            Response::Error {
                id: None,
                code: code @ ErrorCode::UnknownRequest,
                message,
            } => {
                let err = || Error::Daemon {
                    code,
                    message: format!("{message} (the daemon is older than this client)"),
                };
                for (_, reply) in t.calls.drain() {
                    let _ = reply.send(Err(err()));
                }
                t.runs.retain(|_, slot| match slot {
                    Slot::Live {
                        tx,
                        shared,
                        started: false,
                    } => {
                        shared.finish();
                        let _ = tx.send(Routed::Error(err()));
                        false
                    }
                    _ => true,
                });
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
            // Single answers, routed above.
            Response::Status { .. }
            | Response::Bundle { .. }
            | Response::Policy { .. }
            | Response::Created { .. }
            | Response::Done { .. }
            | Response::Sandboxes { .. }
            | Response::Sandbox { .. }
            | Response::Stats { .. }
            | Response::FileData { .. }
            | Response::FileList { .. }
            | Response::FileInfo { .. } => {}
        }
        None
    }

    fn output(&self, t: &mut Table, id: u64, stream: Stream, data: Vec<u8>, seq: Option<u64>) {
        let bytes = data.len() as u64;
        match t.runs.get(&id) {
            Some(Slot::Live { tx, shared, .. }) => {
                let pending = shared.buffered(stream).fetch_add(bytes, Ordering::AcqRel) + bytes;
                if pending <= u64::from(self.window) {
                    let _ = tx.send(Routed::Output(stream, data, seq));
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

    /// The connection is over: every pending stream and call gets `loss`, and every later
    /// request fails with [`Error::Closed`].
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
            if let Slot::Live { tx, shared, .. } = slot {
                shared.finish();
                let _ = tx.send(Routed::Error(loss.to_error()));
            }
        }
        for (_, reply) in t.calls.drain() {
            let _ = reply.send(Err(loss.to_error()));
        }
        t.lost = Some(loss);
    }
}

/// The id of a response that is the single answer to a request, or `None` for frames of a
/// stream and connection-level messages.
fn call_answer_id(resp: &Response) -> Option<u64> {
    match resp {
        Response::Status { id, .. }
        | Response::Created { id, .. }
        | Response::Done { id }
        | Response::Sandboxes { id, .. }
        | Response::Sandbox { id, .. }
        | Response::Stats { id, .. }
        | Response::FileData { id, .. }
        | Response::FileList { id, .. }
        | Response::FileInfo { id, .. }
        | Response::Bundle { id, .. }
        | Response::Policy { id, .. } => Some(*id),
        Response::Welcome { .. }
        | Response::Started { .. }
        | Response::Output { .. }
        | Response::StdinCredit { .. }
        | Response::Exit { .. }
        | Response::Error { .. } => None,
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
