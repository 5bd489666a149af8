//! The sandbox's pid 1 before it becomes sandbox-init: waits for the helper's go-ahead,
//! builds the sandbox ([`super::contain`]), puts its control socket on fd 3, and executes
//! sandbox-init from the sealed memfd. A failure is reported to the helper.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::stat::Mode;
use sandbox_proto::init::INIT_CONTROL_FD;

use super::ipc::{self, FromInit, ToInit};
use super::spawn::InitFds;
use super::{contain, Handoff};
use crate::policy::Plan;

/// Init's whole life in sandboxd code; returns only by exiting (or by becoming sandbox-init).
pub fn run(plan: &Plan, mut sock: UnixStream, fds: &InitFds) -> ! {
    let Err(error) = build_and_exec(plan, &mut sock, fds);
    let _ = ipc::send(&mut sock, &FromInit::Failed { error });
    std::process::exit(1)
}

fn receive_handoff(sock: &mut UnixStream) -> Result<Handoff, String> {
    let (rootfs_fd, mounts) = match ipc::recv::<ToInit>(sock) {
        Ok(ToInit::Go { rootfs_fd, mounts }) => (rootfs_fd, mounts),
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

fn build_and_exec(
    plan: &Plan,
    sock: &mut UnixStream,
    fds: &InitFds,
) -> Result<std::convert::Infallible, String> {
    let handoff = receive_handoff(sock)?;
    contain(plan, &handoff).map_err(|e| ipc::chain(&e))?;
    drop(handoff);
    // stdin and stdout: /dev/null (the helper's were the daemon's control socket and
    // /dev/null); stderr stays the daemon's log for sandbox-init's own errors.
    let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("opening /dev/null: {e}"))?;
    nix::unistd::dup2_stdin(null.as_fd()).map_err(|e| format!("stdin: {e}"))?;
    nix::unistd::dup2_stdout(null.as_fd()).map_err(|e| format!("stdout: {e}"))?;
    // The memfd must not sit on fd 3, which the control socket is about to take.
    let memfd = fcntl(&fds.memfd, FcntlArg::F_DUPFD_CLOEXEC(10))
        .map_err(|e| format!("dup of the memfd: {e}"))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    let memfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(memfd) };
    control_on_fd3(&fds.control)?;
    let argv = [c"sandbox-init"];
    let env: [&std::ffi::CStr; 0] = [];
    let e = nix::unistd::fexecve(memfd.as_fd(), &argv, &env).unwrap_err();
    Err(format!("executing sandbox-init: {e}"))
}

/// Puts the control socket on fd 3 without close-on-exec, as sandbox-init expects.
fn control_on_fd3(control: &OwnedFd) -> Result<(), String> {
    let err = |e: nix::Error| format!("control socket on fd {INIT_CONTROL_FD}: {e}");
    if control.as_raw_fd() == INIT_CONTROL_FD {
        fcntl(control, FcntlArg::F_SETFD(FdFlag::empty())).map_err(err)?;
        return Ok(());
    }
    // SAFETY: dup2 onto fd 3 closes whatever fd 3 was; no Rust object in this process that is
    // used again owns fd 3 (the helper's fds are numbered by the kernel, and this process
    // execs next). The new fd 3 is deliberately not owned: sandbox-init takes it.
    let r = unsafe { libc::dup2(control.as_raw_fd(), INIT_CONTROL_FD) };
    nix::errno::Errno::result(r).map(drop).map_err(err)
}
