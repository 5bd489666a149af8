//! The zygote: one single-threaded process (`sandboxd __sandbox-zygote`, started by the daemon
//! with a control socket as fd 0) that forks a per-sandbox helper on request, so a sandbox
//! costs a fork of a small process instead of an exec of sandboxd. Each request is a one-byte
//! message carrying one fd: the new helper's control socket, which becomes the helper's fd 0.
//! Helpers are reaped by the kernel; the zygote exits when the daemon closes its socket.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sys::signal::{signal, SigHandler, Signal};
use nix::unistd::{fork, ForkResult};

use super::ipc::{self, IpcError};
use super::spawn::helper_main;

/// argv[1] that makes sandboxd run as the zygote.
pub const ZYGOTE_ARG: &str = "__sandbox-zygote";

/// The zygote's main; returns the process exit code.
pub fn zygote_main() -> i32 {
    // SAFETY: the daemon starts us with the control socket as fd 0 and nothing else owns it.
    let ctl = UnixStream::from(unsafe { OwnedFd::from_raw_fd(0) });
    // SAFETY: SIG_IGN installs no handler code; the zygote is single-threaded. Ignoring
    // SIGCHLD makes the kernel reap the helpers as they exit.
    if unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) }.is_err() {
        return 1;
    }
    loop {
        let helper_ctl = match ipc::recv_fds(&ctl, 1) {
            Ok(mut fds) => fds.remove(0),
            Err(IpcError::Closed) => return 0,
            Err(_) => return 1,
        };
        // SAFETY: the zygote is single-threaded, so the child (a copy of it) may run any code.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                // The helper waits for its own children: default SIGCHLD again. Its control
                // socket becomes fd 0, replacing the zygote's (which the child must not close
                // again through `ctl`).
                // SAFETY: SIG_DFL installs no handler code; single-threaded.
                let _ = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) };
                // SAFETY: dup2 onto fd 0 closes the zygote's control socket in this process;
                // `ctl`, its owner, is forgotten below and never used again.
                let ok = unsafe { libc::dup2(helper_ctl.as_raw_fd(), 0) } == 0;
                std::mem::forget(ctl);
                drop(helper_ctl);
                std::process::exit(if ok { helper_main() } else { 1 });
            }
            Ok(ForkResult::Parent { .. }) => drop(helper_ctl),
            Err(_) => drop(helper_ctl),
        }
    }
}
