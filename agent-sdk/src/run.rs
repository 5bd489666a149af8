//! One run: describing it ([`RunBuilder`]), starting it, and driving it through its events,
//! stdin and signals ([`Run`]). A [`Run`] is also the handle of an exec in a long-lived sandbox,
//! and of an attach to one.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sandbox_proto::{ExitStatus, Request, RunSpec, Stream};
use tokio::sync::{mpsc, Mutex};

use crate::router::{Routed, RunShared};
use crate::spec::{millis, sealed};
use crate::{Client, Error};

/// Describes a run; mirrors the flags of `sandboxctl run`. The sandbox settings (limits, rootfs,
/// mounts, env, hostname) come from [`SandboxBuilder`](crate::SandboxBuilder). Unset limits take
/// the daemon's defaults.
#[derive(Debug)]
pub struct RunBuilder {
    client: Client,
    spec: RunSpec,
}

impl RunBuilder {
    pub(crate) fn new(client: Client, argv: Vec<String>) -> Self {
        RunBuilder {
            client,
            spec: RunSpec {
                argv,
                ..RunSpec::default()
            },
        }
    }

    pub(crate) fn from_spec(client: Client, spec: RunSpec) -> Self {
        RunBuilder { client, spec }
    }

    /// Wall-clock limit; the sandbox is killed when it passes. Rounded up to whole milliseconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.spec.limits.timeout_ms = Some(millis(timeout));
        self
    }

    /// Working directory inside the sandbox (absolute; default `/workspace`).
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.spec.cwd = Some(dir.into());
        self
    }

    /// Whether the caller will feed stdin through [`Run::write_stdin`]; if not, the command
    /// reads EOF at once.
    pub fn stdin(mut self, stdin: bool) -> Self {
        self.spec.stdin = stdin;
        self
    }

    /// The spec that [`RunBuilder::start`] will send.
    pub fn spec(&self) -> &RunSpec {
        &self.spec
    }

    /// Sends the run and waits until the sandbox has started (or the daemon refused it).
    pub async fn start(self) -> Result<Run, Error> {
        let RunBuilder { client, spec } = self;
        let opening = Opening {
            kill_on_drop: true,
            stdin: spec.stdin,
            from_seq: 0,
        };
        Run::open(client, opening, |id| Request::Run { id, spec }).await
    }

    /// Starts the run and collects all of its output. Stdin, if enabled, is closed at once.
    pub async fn output(self) -> Result<Output, Error> {
        let run = self.start().await?;
        run.close_stdin().await?;
        run.output().await
    }
}

impl sealed::Sealed for RunBuilder {
    fn fields(&mut self) -> sealed::Fields<'_> {
        sealed::Fields::of_run(&mut self.spec)
    }
}

/// How a stream is opened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opening {
    /// A one-shot run: killed when its handle is dropped early. An exec goes on.
    pub(crate) kill_on_drop: bool,
    /// The caller may write stdin.
    pub(crate) stdin: bool,
    /// The first sequence number expected (attach).
    pub(crate) from_seq: u64,
}

/// Something that happened to a run.
#[derive(Debug)]
pub enum Event {
    /// A chunk of standard output.
    Stdout(Vec<u8>),
    /// A chunk of standard error.
    Stderr(Vec<u8>),
    /// The command ended and the sandbox is gone. The last event.
    Exit(ExitStatus),
    /// The run failed (the daemon's error, or the connection closed). The last event.
    Error(Error),
}

/// Everything a run printed, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// All of standard output.
    pub stdout: Vec<u8>,
    /// All of standard error.
    pub stderr: Vec<u8>,
    /// How the command ended.
    pub status: ExitStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StdinState {
    Disabled,
    Open,
    Closed,
}

/// A started run, exec or attach.
///
/// Dropping the handle of a one-shot run before its exit arrived kills the run (SIGKILL). Dropping
/// the handle of an exec does not: the exec goes on (end it with [`Run::kill`] or
/// [`crate::Sandbox::signal`]), its stdin is closed if it was open, and its output stays in the
/// exec's log for [`crate::Sandbox::attach`]. Dropping an attach only stops following.
pub struct Run {
    client: Client,
    id: u64,
    sandbox_id: String,
    exec_id: Option<u64>,
    /// One past the last output sequence number taken.
    next_seq: u64,
    kill_on_drop: bool,
    rx: mpsc::UnboundedReceiver<Routed>,
    shared: Arc<RunShared>,
    /// Serializes stdin writers so chunks keep their order.
    stdin: Arc<Mutex<StdinState>>,
    /// The last event was returned.
    finished: bool,
    exit: Option<ExitStatus>,
}

impl Run {
    /// Registers a stream, sends the request `request(id)` makes and waits for its `started`.
    pub(crate) async fn open(
        client: Client,
        opening: Opening,
        request: impl FnOnce(u64) -> Request,
    ) -> Result<Run, Error> {
        let id = client.next_id();
        let (shared, rx) = client.router().register_run(id, opening.kill_on_drop)?;
        // From here on, dropping `run` (also by cancelling this future) releases the stream.
        let mut run = Run {
            client,
            id,
            sandbox_id: String::new(),
            exec_id: None,
            next_seq: opening.from_seq,
            kill_on_drop: opening.kill_on_drop,
            rx,
            shared,
            stdin: Arc::new(Mutex::new(if opening.stdin {
                StdinState::Open
            } else {
                StdinState::Disabled
            })),
            finished: false,
            exit: None,
        };
        run.client.router().send(&request(id))?;
        match run.rx.recv().await {
            Some(Routed::Started {
                sandbox_id,
                exec_id,
            }) => {
                run.sandbox_id = sandbox_id;
                run.exec_id = exec_id;
                Ok(run)
            }
            Some(Routed::Error(err)) => {
                run.finished = true;
                Err(err)
            }
            Some(other) => Err(Error::Protocol(format!(
                "expected the run to start, got {other:?}"
            ))),
            None => Err(Error::Closed),
        }
    }

    /// The sandbox's name (also its hostname unless the spec set one).
    pub fn sandbox_id(&self) -> &str {
        &self.sandbox_id
    }

    /// The exec's id within its sandbox, for an exec or an attach; `None` for a one-shot run.
    pub fn exec_id(&self) -> Option<u64> {
        self.exec_id
    }

    /// One past the sequence number of the last output chunk taken from
    /// [`Run::next_event`] (for an attach that has taken nothing yet: its `from_seq`). Attach
    /// again from here to go on without losing or repeating output.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Changes the terminal size of a tty exec. A no-op once the exec has ended.
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<(), Error> {
        if self.shared.is_done() {
            return Ok(());
        }
        self.client.router().send(&Request::Resize {
            id: self.id,
            rows,
            cols,
        })
    }

    /// The next output chunk, or the run's end. `None` after [`Event::Exit`] or
    /// [`Event::Error`]. Taking an output chunk grants the daemon credit for it. Cancel-safe.
    pub async fn next_event(&mut self) -> Option<Event> {
        if self.finished {
            return None;
        }
        loop {
            // The only await: everything after it runs to completion, so dropping this future
            // loses no event.
            let routed = self.rx.recv().await;
            return Some(match routed {
                Some(Routed::Output(stream, data, seq)) => {
                    self.credit(stream, data.len());
                    if let Some(seq) = seq {
                        self.next_seq = self.next_seq.max(seq.saturating_add(1));
                    }
                    match stream {
                        Stream::Stdout => Event::Stdout(data),
                        Stream::Stderr => Event::Stderr(data),
                    }
                }
                Some(Routed::Exit(status)) => {
                    self.finished = true;
                    self.exit = Some(status.clone());
                    Event::Exit(status)
                }
                Some(Routed::Error(err)) => {
                    self.finished = true;
                    Event::Error(err)
                }
                // A repeated `started` carries nothing new.
                Some(Routed::Started { .. }) => continue,
                None => {
                    self.finished = true;
                    Event::Error(Error::Closed)
                }
            });
        }
    }

    fn credit(&self, stream: Stream, bytes: usize) {
        self.shared.taken(stream, bytes);
        // After the exit no more output comes, so credit would only be noise.
        if bytes == 0 || self.shared.is_done() {
            return;
        }
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        // A failure means the connection is gone; the run's error event says so.
        let _ = self.client.router().send(&Request::Credit {
            id: self.id,
            stream,
            bytes,
        });
    }

    /// Writes `data` to the command's stdin; see [`RunStdin::write`].
    pub async fn write_stdin(&self, data: &[u8]) -> Result<(), Error> {
        self.stdin_handle().write(data).await
    }

    /// Ends the command's stdin; see [`RunStdin::close`].
    pub async fn close_stdin(&self) -> Result<(), Error> {
        self.stdin_handle().close().await
    }

    /// A handle on the run's stdin that can move to another task, to feed stdin while this
    /// one reads events.
    pub fn stdin_handle(&self) -> RunStdin {
        RunStdin {
            client: self.client.clone(),
            id: self.id,
            shared: Arc::clone(&self.shared),
            state: Arc::clone(&self.stdin),
        }
    }

    /// Sends `signal` to the command (for a one-shot run 9 ends the whole sandbox; for an exec
    /// it reaches the exec's process group). A no-op once the run has ended.
    pub async fn kill(&self, signal: i32) -> Result<(), Error> {
        if self.shared.is_done() {
            return Ok(());
        }
        self.client.router().send(&Request::Kill {
            id: self.id,
            signal,
        })
    }

    /// Collects the rest of the output and the exit status.
    pub async fn output(mut self) -> Result<Output, Error> {
        let mut out = Output::default();
        while let Some(event) = self.next_event().await {
            match event {
                Event::Stdout(data) => out.stdout.extend_from_slice(&data),
                Event::Stderr(data) => out.stderr.extend_from_slice(&data),
                Event::Exit(status) => {
                    out.status = status;
                    return Ok(out);
                }
                Event::Error(err) => return Err(err),
            }
        }
        // The exit was taken by an earlier `next_event`.
        out.status = self.exit.take().ok_or(Error::Closed)?;
        Ok(out)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // An exec outlives its handle; nobody could ever close its stdin after this.
        if !self.kill_on_drop && !self.shared.is_done() {
            if let Ok(mut state) = self.stdin.try_lock() {
                if *state == StdinState::Open {
                    *state = StdinState::Closed;
                    let _ = self
                        .client
                        .router()
                        .send(&Request::CloseStdin { id: self.id });
                }
            }
        }
        self.client.router().release(self.id);
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("id", &self.id)
            .field("sandbox_id", &self.sandbox_id)
            .field("exec_id", &self.exec_id)
            .field("next_seq", &self.next_seq)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// The stdin of a run, apart from its [`Run`] handle. Cheap to clone; writers are serialized.
#[derive(Clone)]
pub struct RunStdin {
    client: Client,
    id: u64,
    shared: Arc<RunShared>,
    state: Arc<Mutex<StdinState>>,
}

impl RunStdin {
    /// Writes `data` to the command's stdin, in frames of at most 64 KiB, waiting for stdin
    /// credit whenever the window is used up. The run must have been built with
    /// [`RunBuilder::stdin`]`(true)`. Fails with [`Error::Closed`] once the run has ended.
    pub async fn write(&self, data: &[u8]) -> Result<(), Error> {
        let state = self.state.lock().await;
        match *state {
            StdinState::Disabled => {
                return Err(Error::Protocol("the run was started without stdin".into()))
            }
            StdinState::Closed => return Err(Error::Protocol("stdin is already closed".into())),
            StdinState::Open => {}
        }
        for chunk in data.chunks(self.client.stdin_chunk()) {
            let n = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            let permit = self
                .shared
                .stdin
                .acquire_many(n)
                .await
                .map_err(|_| Error::Closed)?;
            permit.forget();
            self.client.router().send(&Request::Stdin {
                id: self.id,
                data: chunk.to_vec(),
            })?;
        }
        Ok(())
    }

    /// Ends the command's stdin (it reads EOF). A no-op if stdin is not enabled, already
    /// closed, or the run has ended.
    pub async fn close(&self) -> Result<(), Error> {
        let mut state = self.state.lock().await;
        if *state != StdinState::Open {
            return Ok(());
        }
        *state = StdinState::Closed;
        if self.shared.is_done() {
            return Ok(());
        }
        self.client
            .router()
            .send(&Request::CloseStdin { id: self.id })
    }
}

impl fmt::Debug for RunStdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunStdin")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
