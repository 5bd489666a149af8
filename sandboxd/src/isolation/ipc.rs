//! Messages between the daemon, the per-sandbox helper and the sandbox's init, and fd passing.
//!
//! All three speak sandbox-proto frames (4-byte length + msgpack) over Unix stream sockets; fds
//! travel with `SCM_RIGHTS` in a one-byte message of their own just before the frame they
//! belong to.

use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Most fds passed in one message.
pub const MAX_FDS: usize = 40;
/// Largest internal frame (a plan is bounded by the client's frame limit).
pub const MAX_INTERNAL_FRAME: usize = 4 << 20;

/// Helper → daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelperEvent {
    /// The sandbox is built and sandbox-init runs as its pid 1; `init_pid` is its pid as the
    /// host sees it.
    Started {
        /// Host pid of the sandbox's init.
        init_pid: i32,
    },
    /// The sandbox's init ended (exit code or signal): the sandbox is gone.
    Exited {
        /// Exit code.
        code: Option<i32>,
        /// Killing signal.
        signal: Option<i32>,
    },
    /// Building the sandbox failed at `error` (the whole error chain).
    Failed {
        /// What failed, step by step.
        error: String,
    },
}

/// Daemon → helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelperCommand {
    /// Kill the sandbox: SIGKILL to its init, which takes the pid namespace with it.
    Kill {
        /// Always SIGKILL today; signals for execs go to sandbox-init directly.
        signal: i32,
    },
}

/// Helper → init (before init becomes sandbox-init).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToInit {
    /// Id maps are written and the cgroup is joined; the fds for the rootfs (if any) and the
    /// host mounts follow, in plan order.
    Go {
        /// Whether the first fd is the rootfs directory.
        rootfs_fd: bool,
        /// How many idmapped mount fds follow.
        mounts: usize,
    },
}

/// Init → helper. On success init sends nothing: it execs sandbox-init, which closes the
/// socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromInit {
    /// Building the sandbox failed.
    Failed {
        /// The error chain.
        error: String,
    },
}

/// An internal message could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    /// Writing failed.
    #[error("sending a message")]
    Send(#[source] std::io::Error),
    /// Encoding failed.
    #[error("encoding a message")]
    Encode(#[source] sandbox_proto::EncodeError),
    /// Reading failed.
    #[error("receiving a message")]
    Recv(#[source] sandbox_proto::FrameError),
    /// The peer closed the socket.
    #[error("the peer closed the socket")]
    Closed,
    /// The frame did not decode.
    #[error("decoding a message")]
    Decode(#[source] sandbox_proto::DecodeError),
    /// Passing fds failed.
    #[error("passing file descriptors")]
    Fds(#[source] nix::Error),
    /// The fd message was not what was expected.
    #[error("expected {expected} file descriptors, got {got}")]
    FdCount {
        /// Expected.
        expected: usize,
        /// Received.
        got: usize,
    },
}

/// Writes one message frame.
pub fn send<T: Serialize>(sock: &mut UnixStream, msg: &T) -> Result<(), IpcError> {
    let frame = sandbox_proto::encode(msg).map_err(IpcError::Encode)?;
    sock.write_all(&frame).map_err(IpcError::Send)
}

/// Reads one message frame; `Closed` at a clean end of stream.
pub fn recv<T: DeserializeOwned>(sock: &mut UnixStream) -> Result<T, IpcError> {
    let body = sandbox_proto::codec::read_frame(sock, MAX_INTERNAL_FRAME)
        .map_err(IpcError::Recv)?
        .ok_or(IpcError::Closed)?;
    sandbox_proto::unpack(&body).map_err(IpcError::Decode)
}

/// Sends `fds` in one one-byte message.
pub fn send_fds(sock: &UnixStream, fds: &[RawFd]) -> Result<(), IpcError> {
    let iov = [IoSlice::new(b"F")];
    let cmsg = [ControlMessage::ScmRights(fds)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).map_err(IpcError::Fds)?;
    Ok(())
}

/// Receives exactly `n` fds sent by [`send_fds`].
pub fn recv_fds(sock: &UnixStream, n: usize) -> Result<Vec<OwnedFd>, IpcError> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(IpcError::Fds)?;
    if msg.bytes == 0 {
        return Err(IpcError::Closed);
    }
    let mut fds = Vec::new();
    for c in msg.cmsgs().map_err(IpcError::Fds)? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            for fd in raw {
                // SAFETY: SCM_RIGHTS installed these fds in our table just now; nothing else
                // owns them.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    if fds.len() != n {
        return Err(IpcError::FdCount {
            expected: n,
            got: fds.len(),
        });
    }
    Ok(fds)
}

/// The error chain of `e` on one line: `step: cause: cause`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
