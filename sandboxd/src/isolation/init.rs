//! pid 1 of a sandbox: waits for the helper's go-ahead, builds the sandbox ([`super::contain`]),
//! forks the command, reaps every process that ends, forwards signals, and reports the
//! command's exit to the helper. When it exits, the kernel kills whatever is left in the pid
//! namespace.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{
    killpg, sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal,
};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, fork, ForkResult, Pid};

use super::ipc::{self, FromInit, ToInit};
use super::seccomp::SeccompProfile;
use super::{contain, exec_command, Handoff};
use crate::policy::Plan;

/// Init's whole life; never returns.
pub fn run(plan: &Plan, mut sock: UnixStream, stdio: &[OwnedFd; 3], seccomp: &SeccompProfile) -> ! {
    let code = match serve(plan, &mut sock, stdio, seccomp) {
        Ok(()) => 0,
        Err(error) => {
            let _ = ipc::send(&mut sock, &FromInit::Failed { error });
            1
        }
    };
    std::process::exit(code)
}

fn receive_handoff(sock: &mut UnixStream) -> Result<Handoff, String> {
    let (rootfs_fd, mounts) = match ipc::recv::<ToInit>(sock) {
        Ok(ToInit::Go { rootfs_fd, mounts }) => (rootfs_fd, mounts),
        Ok(other) => return Err(format!("expected the go-ahead, got {other:?}")),
        Err(e) => return Err(format!("waiting for the helper: {}", ipc::chain(&e))),
    };
    let n = usize::from(rootfs_fd) + mounts;
    let mut fds = if n > 0 {
        ipc::recv_fds(sock, n).map_err(|e| ipc::chain(&e))?
    } else {
        Vec::new()
    };
    let rootfs = if rootfs_fd { Some(fds.remove(0)) } else { None };
    Ok(Handoff {
        rootfs,
        mounts: fds,
    })
}

fn serve(
    plan: &Plan,
    sock: &mut UnixStream,
    stdio: &[OwnedFd; 3],
    seccomp: &SeccompProfile,
) -> Result<(), String> {
    let handoff = receive_handoff(sock)?;
    contain(plan, &handoff).map_err(|e| ipc::chain(&e))?;
    drop(handoff);

    // SIGCHLD arrives through a signalfd, polled together with the helper's socket.
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    chld.thread_block()
        .map_err(|e| format!("blocking SIGCHLD: {e}"))?;
    let sfd = SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("creating a signalfd: {e}"))?;

    // SAFETY: init is single-threaded (a clone of the single-threaded helper), so the child
    // may run any code; it only sets itself up and execs.
    let command = match unsafe { fork() }.map_err(|e| format!("forking the command: {e}"))? {
        ForkResult::Child => {
            let err = match prepare_child(stdio) {
                Ok(()) => exec_command(plan, seccomp),
                Err(e) => e,
            };
            let _ = writeln!(std::io::stderr(), "sandbox: {}", ipc::chain(&err));
            std::process::exit(err.exit_code());
        }
        ForkResult::Parent { child } => child,
    };
    ipc::send(sock, &FromInit::Running).map_err(|e| ipc::chain(&e))?;
    let (code, signal) = supervise(command, sock, &sfd);
    // Best effort: if the helper is gone, it learns the status from our exit instead.
    let _ = ipc::send(sock, &FromInit::Exited { code, signal });
    Ok(())
}

/// In the command's process: stdio from the daemon's pipes, default signal dispositions and an
/// empty signal mask (init blocked SIGCHLD; the Rust runtime ignored SIGPIPE).
fn prepare_child(stdio: &[OwnedFd; 3]) -> Result<(), super::ExecError> {
    let map = |e| super::ExecError::Stdio(e);
    dup2_stdin(stdio[0].as_fd()).map_err(map)?;
    dup2_stdout(stdio[1].as_fd()).map_err(map)?;
    dup2_stderr(stdio[2].as_fd()).map_err(map)?;
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: installing SIG_DFL involves no handler code; the process is single-threaded.
        let _ = unsafe { sigaction(sig, &dfl) };
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(map)?;
    Ok(())
}

/// Reaps until the command ends; forwards the helper's signals to it. Returns its exit code or
/// killing signal.
fn supervise(command: Pid, sock: &mut UnixStream, sfd: &SignalFd) -> (Option<i32>, Option<i32>) {
    loop {
        let (sig_ready, sock_ready) = {
            let mut fds = [
                PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            ];
            if poll(&mut fds, PollTimeout::NONE).is_err() {
                continue;
            }
            (fds[0].any().unwrap_or(false), fds[1].any().unwrap_or(false))
        };
        if sig_ready {
            while let Ok(Some(_)) = sfd.read_signal() {}
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == command => {
                        return (Some(code), None)
                    }
                    Ok(WaitStatus::Signaled(pid, sig, _)) if pid == command => {
                        return (None, Some(sig as i32))
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        if sock_ready {
            match ipc::recv::<ToInit>(sock) {
                Ok(ToInit::Kill { signal }) => {
                    // The command leads its own process group (it called setsid): the signal
                    // reaches its children too, as Ctrl-C would in a terminal.
                    if let Ok(sig) = Signal::try_from(signal) {
                        let _ = killpg(command, sig);
                    }
                }
                Ok(ToInit::Go { .. }) => {}
                // The helper is gone: the parent-death signal ends us too.
                Err(_) => std::process::exit(1),
            }
        }
    }
}
