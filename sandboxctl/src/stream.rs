//! Following a run or an exec from the terminal: its output written live to our stdout and
//! stderr, our stdin forwarded, our SIGINT and SIGTERM passed on, and (for a tty exec) our
//! window size changes sent.

use std::io::{Read, Write};
use std::time::Duration;

use agent_sdk::{Event, ExitStatus, Run, RunStdin};
use anyhow::bail;
use nix::sys::signal::Signal;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::tty;

/// Bytes of stdin read at a time.
const STDIN_CHUNK: usize = 64 * 1024;
/// How long the command gets to die of SIGPIPE once our stdout is closed, before SIGKILL.
const PIPE_GRACE: Duration = Duration::from_secs(2);
/// The signal count at which sandboxctl stops forwarding and kills the command.
const SIGNALS_BEFORE_KILL: u32 = 3;

/// Writes every chunk as it comes, forwarding signals (and window size changes) meanwhile,
/// until the exit.
pub async fn stream(run: &mut Run, signals: &mut Signals) -> anyhow::Result<ExitStatus> {
    let mut stdout = Sink::stdout();
    let mut stderr = Sink::stderr();
    let mut signalled = 0;
    // When set, the run gets SIGKILL then: it outlived the SIGPIPE sent for our closed stdout.
    let mut kill_at: Option<Instant> = None;
    loop {
        let deadline = async move {
            match kill_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            event = run.next_event() => event,
            caught = signals.recv() => {
                on_caught(run, caught, &mut signalled).await?;
                continue;
            }
            () = deadline => {
                kill_at = None;
                run.kill(Signal::SIGKILL as i32).await?;
                continue;
            }
        };
        let (sink, data) = match event {
            Some(Event::Stdout(data)) => (&mut stdout, data),
            Some(Event::Stderr(data)) => (&mut stderr, data),
            Some(Event::Exit(status)) => return Ok(status),
            Some(Event::Error(err)) => return Err(err.into()),
            None => bail!("the run ended without an exit status"),
        };
        let to_stdout = sink.to_stdout;
        let write = sink.write(data);
        tokio::pin!(write);
        let written = loop {
            tokio::select! {
                written = &mut write => break written,
                caught = signals.recv() => on_caught(run, caught, &mut signalled).await?,
            }
        };
        if !written && to_stdout {
            // Like a shell pipeline whose reader went away: end the command with SIGPIPE,
            // and SIGKILL if that is not enough.
            run.kill(Signal::SIGPIPE as i32).await?;
            kill_at = Some(Instant::now() + PIPE_GRACE);
        }
    }
}

async fn on_caught(run: &Run, caught: Caught, signalled: &mut u32) -> anyhow::Result<()> {
    match caught {
        Caught::Signal(sig) => forward(run, sig, signalled).await,
        Caught::Resize => {
            if let Some((rows, cols)) = tty::size() {
                run.resize(rows, cols).await?;
            }
            Ok(())
        }
    }
}

/// Passes a signal we got on to the run; the third one kills it instead.
async fn forward(run: &Run, sig: i32, signalled: &mut u32) -> anyhow::Result<()> {
    *signalled += 1;
    if *signalled < SIGNALS_BEFORE_KILL {
        return Ok(run.kill(sig).await?);
    }
    eprintln!("sandboxctl: got {signalled} signals; killing the command");
    Ok(run.kill(Signal::SIGKILL as i32).await?)
}

/// Our stdout or stderr. After a failed write it swallows the rest.
#[derive(Debug)]
pub struct Sink {
    to_stdout: bool,
    broken: bool,
}

impl Sink {
    /// Our stdout.
    pub fn stdout() -> Sink {
        Sink {
            to_stdout: true,
            broken: false,
        }
    }

    /// Our stderr.
    pub fn stderr() -> Sink {
        Sink {
            to_stdout: false,
            broken: false,
        }
    }

    /// Writes and flushes `data` on a blocking thread (a full pipe must not stall signal
    /// forwarding); false when this write failed (the first time only).
    pub async fn write(&mut self, data: Vec<u8>) -> bool {
        if self.broken {
            return true;
        }
        let to_stdout = self.to_stdout;
        let written = tokio::task::spawn_blocking(move || {
            if to_stdout {
                let mut out = std::io::stdout().lock();
                out.write_all(&data).and_then(|()| out.flush())
            } else {
                let mut out = std::io::stderr().lock();
                out.write_all(&data).and_then(|()| out.flush())
            }
        })
        .await;
        self.broken = !matches!(written, Ok(Ok(())));
        !self.broken
    }
}

/// Reads our stdin on a thread (a blocking read cannot be cancelled, and process exit ends
/// the thread) and feeds it to the run, byte for byte (in raw mode a Ctrl-C is just `\x03`);
/// closes the run's stdin at EOF.
pub fn forward_stdin(stdin: RunStdin) {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(1);
    std::thread::spawn(move || {
        let mut input = std::io::stdin().lock();
        let mut buf = vec![0u8; STDIN_CHUNK];
        loop {
            match input.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                // An unreadable stdin (e.g. closed) ends it like EOF.
                Err(_) => return,
            }
        }
    });
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            // A failure means the run is over; its exit is reported by the event loop.
            if stdin.write(&chunk).await.is_err() {
                return;
            }
        }
        let _ = stdin.close().await;
    });
}

/// What [`Signals::recv`] caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caught {
    /// SIGINT or SIGTERM (the number), to pass on.
    Signal(i32),
    /// SIGWINCH: the terminal's size changed.
    Resize,
}

/// SIGINT and SIGTERM, caught so they can be forwarded to the run; and SIGWINCH for a tty.
#[derive(Debug)]
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    winch: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Catches SIGINT and SIGTERM, and SIGWINCH too with `winch`.
    pub fn new(winch: bool) -> anyhow::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            winch: if winch {
                Some(signal(SignalKind::window_change())?)
            } else {
                None
            },
        })
    }

    /// The next signal. Cancel-safe.
    pub async fn recv(&mut self) -> Caught {
        let winch = async {
            match &mut self.winch {
                Some(winch) => winch.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(()) = self.int.recv() => Caught::Signal(Signal::SIGINT as i32),
            Some(()) = self.term.recv() => Caught::Signal(Signal::SIGTERM as i32),
            Some(()) = winch => Caught::Resize,
        }
    }

    /// The next SIGINT or SIGTERM's number, ignoring window size changes. Cancel-safe.
    pub async fn recv_signal(&mut self) -> i32 {
        loop {
            if let Caught::Signal(sig) = self.recv().await {
                return sig;
            }
        }
    }
}
