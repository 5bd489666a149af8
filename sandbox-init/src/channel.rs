//! The control socket: sandbox-proto frames, and fds with `SCM_RIGHTS` in a one-byte message.

use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest frame accepted from the daemon.
const MAX_FRAME: usize = 4 << 20;

/// The control socket.
#[derive(Debug)]
pub struct Channel(UnixStream);

impl Channel {
    /// Wraps the socket.
    pub fn new(sock: UnixStream) -> Self {
        Channel(sock)
    }

    /// Sends one message.
    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), String> {
        let frame = sandbox_proto::encode(msg).map_err(|e| e.to_string())?;
        self.0.write_all(&frame).map_err(|e| e.to_string())
    }

    /// Receives one message; an error at the end of the stream.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, String> {
        let body = sandbox_proto::codec::read_frame(&mut self.0, MAX_FRAME)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the daemon closed the socket".to_string())?;
        sandbox_proto::unpack(&body).map_err(|e| e.to_string())
    }

    /// Sends fds.
    pub fn send_fds(&self, fds: &[OwnedFd]) -> Result<(), String> {
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let iov = [IoSlice::new(b"F")];
        let cmsg = [ControlMessage::ScmRights(&raw)];
        sendmsg::<()>(self.0.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Receives exactly `n` fds.
    pub fn recv_fds(&self, n: usize) -> Result<Vec<OwnedFd>, String> {
        let mut byte = [0u8; 1];
        let mut iov = [IoSliceMut::new(&mut byte)];
        let mut space = nix::cmsg_space!([RawFd; 8]);
        let msg = recvmsg::<()>(
            self.0.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| e.to_string())?;
        let mut fds = Vec::new();
        for c in msg.cmsgs().map_err(|e| e.to_string())? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                for fd in raw {
                    // SAFETY: SCM_RIGHTS installed these fds in our table just now; nothing
                    // else owns them.
                    #[allow(unsafe_code)]
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        if fds.len() != n {
            return Err(format!("expected {n} fds, got {}", fds.len()));
        }
        Ok(fds)
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
