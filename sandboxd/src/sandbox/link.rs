//! The link between a connection and one of its runs. Output credit and the stdin window are
//! shared counters, so the connection's reader never waits on a run (a run may itself be
//! waiting for the client to read); stdin bytes travel in order on a queue bounded by the
//! stdin window; signals on a short bounded queue.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sandbox_proto::Stream;
use tokio::sync::{mpsc, Notify};

/// Control messages queued for one run before the connection answers `resource_exhausted`.
const MAX_PENDING_SIGNALS: usize = 16;

/// State shared by the connection and the run.
#[derive(Debug)]
pub struct RunLink {
    credit: [AtomicU64; 2],
    stdin_window: AtomicU64,
    violation: Mutex<Option<String>>,
    wake: Notify,
    done: AtomicBool,
}

fn idx(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl RunLink {
    /// Output credit left on `stream`.
    pub fn credit(&self, stream: Stream) -> u64 {
        self.credit[idx(stream)].load(Ordering::Acquire)
    }

    /// Spends `n` bytes of output credit.
    pub fn spend(&self, stream: Stream, n: u64) {
        let c = &self.credit[idx(stream)];
        let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            Some(v.saturating_sub(n))
        });
    }

    /// Gives back `n` bytes of stdin window (the writer drained them into the pipe).
    pub fn refill_stdin(&self, n: u64) {
        self.stdin_window.fetch_add(n, Ordering::AcqRel);
    }

    /// Waits until the client grants credit or breaks the protocol.
    pub async fn changed(&self) {
        self.wake.notified().await
    }

    /// The protocol violation that ends this run, if any.
    pub fn violation(&self) -> Option<String> {
        self.violation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The run has queued its final frame; the connection may forget it.
    pub fn finish(&self) {
        self.done.store(true, Ordering::Release);
    }
}

/// A control message for the run's command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Signal its process group (9: the whole sandbox of a one-shot run).
    Signal(i32),
    /// New terminal size of a tty exec.
    Resize(u16, u16),
}

/// The connection's end.
#[derive(Debug)]
pub struct LinkTx {
    link: Arc<RunLink>,
    stdin: Option<mpsc::UnboundedSender<Vec<u8>>>,
    signals: mpsc::Sender<Control>,
}

/// The run's end.
#[derive(Debug)]
pub struct LinkRx {
    /// Shared counters.
    pub link: Arc<RunLink>,
    /// Stdin bytes, in order (None when the run takes no stdin); ends at `close_stdin`.
    pub stdin: Option<mpsc::UnboundedReceiver<Vec<u8>>>,
    /// Signals; ends when the connection is gone.
    pub signals: mpsc::Receiver<Control>,
}

/// A new link with `window` bytes of credit per stream and of stdin window.
pub fn link(window: u32, stdin: bool) -> (LinkTx, LinkRx) {
    let w = u64::from(window);
    let link = Arc::new(RunLink {
        credit: [AtomicU64::new(w), AtomicU64::new(w)],
        stdin_window: AtomicU64::new(w),
        violation: Mutex::new(None),
        wake: Notify::new(),
        done: AtomicBool::new(false),
    });
    let (stdin_tx, stdin_rx) = if stdin {
        let (tx, rx) = mpsc::unbounded_channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let (sig_tx, sig_rx) = mpsc::channel(MAX_PENDING_SIGNALS);
    (
        LinkTx {
            link: link.clone(),
            stdin: stdin_tx,
            signals: sig_tx,
        },
        LinkRx {
            link,
            stdin: stdin_rx,
            signals: sig_rx,
        },
    )
}

/// A request the connection could not pass on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The client broke the protocol; the run is being killed.
    Violation(String),
    /// Too many signals are pending.
    Busy,
}

impl LinkTx {
    /// Whether the run has queued its final frame.
    pub fn is_done(&self) -> bool {
        self.link.done.load(Ordering::Acquire)
    }

    /// The client consumed `bytes` on `stream`.
    pub fn credit(&self, stream: Stream, bytes: u32) {
        let c = &self.link.credit[idx(stream)];
        let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            Some(v.saturating_add(u64::from(bytes)))
        });
        self.link.wake.notify_one();
    }

    fn violate(&self, why: &str) -> Refused {
        *self
            .link
            .violation
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(why.to_string());
        self.link.wake.notify_one();
        Refused::Violation(why.to_string())
    }

    /// Stdin bytes: within the window, or the run ends with a protocol violation.
    pub fn stdin(&self, data: Vec<u8>) -> Result<(), Refused> {
        let Some(tx) = &self.stdin else {
            return Err(self.violate("stdin is closed or was not requested"));
        };
        let len = data.len() as u64;
        let took = self
            .link
            .stdin_window
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| w.checked_sub(len))
            .is_ok();
        if !took {
            return Err(self.violate("stdin data past the granted window"));
        }
        // The run may be gone already; its end of the queue then dropped the data.
        let _ = tx.send(data);
        Ok(())
    }

    /// End of stdin.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Queue a signal for the command.
    pub fn signal(&self, signal: i32) -> Result<(), Refused> {
        self.signals
            .try_send(Control::Signal(signal))
            .map_err(|_| Refused::Busy)
    }

    /// Queue a terminal resize.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), Refused> {
        self.signals
            .try_send(Control::Resize(rows, cols))
            .map_err(|_| Refused::Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_and_window_accounting() {
        let (mut tx, rx) = link(10, true);
        assert_eq!(rx.link.credit(Stream::Stdout), 10);
        rx.link.spend(Stream::Stdout, 7);
        tx.credit(Stream::Stdout, 3);
        assert_eq!(rx.link.credit(Stream::Stdout), 6);
        assert_eq!(rx.link.credit(Stream::Stderr), 10);
        assert!(tx.stdin(vec![0; 10]).is_ok());
        assert_eq!(
            tx.stdin(vec![0; 1]),
            Err(Refused::Violation(
                "stdin data past the granted window".into()
            ))
        );
        assert!(rx.link.violation().is_some());
        rx.link.refill_stdin(10);
        assert!(tx.stdin(vec![0; 10]).is_ok());
        tx.close_stdin();
        assert!(matches!(tx.stdin(vec![1]), Err(Refused::Violation(_))));
        assert!(!tx.is_done());
        rx.link.finish();
        assert!(tx.is_done());
    }

    #[test]
    fn signals_are_bounded() {
        let (tx, _rx) = link(1, false);
        for _ in 0..MAX_PENDING_SIGNALS {
            assert!(tx.signal(15).is_ok());
        }
        assert_eq!(tx.signal(15), Err(Refused::Busy));
        assert!(matches!(tx.stdin(vec![1]), Err(Refused::Violation(_))));
    }
}
