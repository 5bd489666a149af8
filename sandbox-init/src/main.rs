//! sandbox-init: pid 1 of every sandbox.
//!
//! sandboxd builds the sandbox (namespaces, mounts, `pivot_root`) in a clone of its helper,
//! then executes this program from a sealed memfd — never from a path the sandbox could write —
//! with its control socket on fd 3. It receives an [`InitConfig`], answers `Ready`, and then
//! serves exec requests: fork, drop every privilege, exec; it reaps every process that ends and
//! reports each exec's exit. When the control socket closes, it exits, and the kernel kills
//! whatever is left in the sandbox.
//!
//! It is built statically (`-C target-feature=+crt-static`), so it runs in any root filesystem.
#![deny(unsafe_code)]

use std::collections::HashMap;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use sandbox_proto::init::{ExecRequest, FromInit, InitConfig, ToInit, INIT_CONTROL_FD};

/// Talking to the daemon: frames and fd passing.
mod channel;
/// Starting one exec: fork, privileges, exec. [unsafe: fork, signal dispositions, seccomp]
#[allow(unsafe_code)]
mod exec;

use channel::Channel;

fn main() {
    // The sandbox's processes must not ptrace us or read our memory or fds.
    let _ = nix::sys::prctl::set_dumpable(false);
    // SAFETY: sandboxd starts us with the control socket on this fd and nothing else owns it.
    #[allow(unsafe_code)]
    let sock = UnixStream::from(unsafe { OwnedFd::from_raw_fd(INIT_CONTROL_FD as RawFd) });
    let mut ch = Channel::new(sock);
    let code = match serve(&mut ch) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sandbox-init: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn serve(ch: &mut Channel) -> Result<(), String> {
    let config: InitConfig = ch.recv().map_err(|e| format!("reading the config: {e}"))?;
    // SIGCHLD arrives through a signalfd, polled together with the control socket.
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    chld.thread_block()
        .map_err(|e| format!("blocking SIGCHLD: {e}"))?;
    let sfd = SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("creating a signalfd: {e}"))?;
    // The seccomp filters go on init itself, once: every exec inherits them through fork
    // (installing them per exec cost ~0.2 ms each), and init is held to them too. Nothing
    // init still does is on the deny-list.
    exec::install_seccomp_all(&config)
        .map_err(|e| format!("installing the seccomp filters: {e}"))?;
    ch.send(&FromInit::Ready)
        .map_err(|e| format!("answering: {e}"))?;

    // exec pid (as we see it) → exec id
    let mut execs: HashMap<Pid, u64> = HashMap::new();
    loop {
        let (sig_ready, sock_ready) = {
            let mut fds = [
                PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(ch.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => (fds[0].any().unwrap_or(false), fds[1].any().unwrap_or(false)),
                Err(_) => continue,
            }
        };
        if sig_ready {
            while let Ok(Some(_)) = sfd.read_signal() {}
            reap(ch, &mut execs);
        }
        if sock_ready {
            match ch.recv::<ToInit>() {
                Ok(ToInit::Exec(req)) => start(ch, &config, req, &mut execs),
                Ok(ToInit::Signal { exec_id, signal }) => {
                    let found = execs
                        .iter()
                        .find(|(_, id)| **id == exec_id)
                        .map(|(p, _)| *p);
                    if let (Some(pid), Ok(sig)) = (found, Signal::try_from(signal)) {
                        // Each exec leads its own process group.
                        let _ = killpg(pid, sig);
                    }
                }
                Ok(ToInit::SignalAll { signal }) => {
                    // pid -1 from pid 1: every process of the pid namespace but ourselves.
                    if let Ok(sig) = Signal::try_from(signal) {
                        let _ = nix::sys::signal::kill(Pid::from_raw(-1), sig);
                    }
                }
                // The daemon is done with this sandbox (or gone): everything ends with us.
                Err(_) => return Ok(()),
            }
        }
    }
}

/// Starts one exec and tells the daemon how that went.
fn start(ch: &mut Channel, config: &InitConfig, req: ExecRequest, execs: &mut HashMap<Pid, u64>) {
    let exec_id = req.exec_id;
    let stdio = if req.tty.is_none() {
        match ch.recv_fds(3) {
            Ok(fds) => Some(fds),
            Err(e) => {
                let _ = ch.send(&FromInit::ExecFailed {
                    exec_id,
                    error: format!("receiving stdio: {e}"),
                });
                return;
            }
        }
    } else {
        None
    };
    match exec::spawn(config, &req, stdio) {
        Ok((pid, master)) => {
            execs.insert(pid, exec_id);
            let _ = ch.send(&FromInit::ExecStarted {
                exec_id,
                pid: pid.as_raw(),
            });
            if let Some(m) = master {
                let _ = ch.send_fds(&[m]);
            }
        }
        Err(error) => {
            let _ = ch.send(&FromInit::ExecFailed { exec_id, error });
        }
    }
}

/// Reaps every child that ended; reports the execs among them.
fn reap(ch: &mut Channel, execs: &mut HashMap<Pid, u64>) {
    loop {
        let (pid, code, signal) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, Some(code), None),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, None, Some(sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => continue,
        };
        if let Some(exec_id) = execs.remove(&pid) {
            let _ = ch.send(&FromInit::ExecExited {
                exec_id,
                code,
                signal,
            });
        }
    }
}
