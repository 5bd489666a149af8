//! The one error type of the SDK: connecting, the transport, the protocol, the daemon's own
//! error answers, and the host side of file transfers.

use std::io;
use std::path::PathBuf;

use sandbox_proto::{DecodeError, ErrorCode, FrameError};

/// Something the SDK or the daemon could not do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Connecting to the daemon's socket failed (no daemon: `NotFound` or `ConnectionRefused`).
    #[error("connecting to {}", path.display())]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Writing to or reading from the connection failed.
    #[error("talking to the daemon")]
    Io(#[source] io::Error),
    /// A frame from the daemon could not be read.
    #[error("reading a frame from the daemon")]
    Frame(#[source] FrameError),
    /// A frame from the daemon is not a valid message.
    #[error("decoding a message from the daemon")]
    Decode(#[source] DecodeError),
    /// The daemon speaks another protocol version; nothing can be sent on this connection.
    #[error("protocol version mismatch: {message}")]
    VersionMismatch {
        /// The daemon's explanation, or ours when its welcome named another version.
        message: String,
    },
    /// The daemon refused a request or failed it (see [`Error::code`]).
    #[error("{code}: {message}")]
    Daemon {
        /// The stable code.
        code: ErrorCode,
        /// The daemon's detail.
        message: String,
    },
    /// The daemon (or the caller) broke the protocol: an unexpected message, output past the
    /// window, stdin on a run that takes none.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection is closed (the daemon went away, or a run's handle outlived it), or the
    /// run this call is about has already ended.
    #[error("connection to the daemon closed")]
    Closed,
    /// A host file or directory of an upload or download could not be read or written.
    #[error("{op} {}", path.display())]
    Host {
        /// The step: `read`, `create`, `write`, `list`, `mkdir`, `symlink`...
        op: &'static str,
        /// The host path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// A host-side failure of step `op` on `path`.
    pub(crate) fn host(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Host { op, path, source }
    }

    /// Whether the daemon answered that there is no such sandbox (or one of another user),
    /// exec, or file: the `not_found` code, or a `file_error` whose file code is `not_found`.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(ErrorCode::NotFound) || self.file_error_code() == Some("not_found")
    }

    /// For a `file_error`, its stable file code: the first word of the daemon's message
    /// (`not_found`, `permission_denied`, `read_only`, `no_space`...).
    pub fn file_error_code(&self) -> Option<&str> {
        match self {
            Error::Daemon {
                code: ErrorCode::FileError,
                message,
            } => message.split_once(':').map(|(code, _)| code.trim()),
            _ => None,
        }
    }

    /// The protocol's error code, for errors that carry one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Daemon { code, .. } => Some(*code),
            Error::VersionMismatch { .. } => Some(ErrorCode::VersionMismatch),
            _ => None,
        }
    }

    /// Whether this is a failure to connect because no daemon listens at the path (the socket
    /// file is missing, or nothing accepts on it).
    pub fn is_no_daemon(&self) -> bool {
        match self {
            Error::Connect { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ),
            _ => false,
        }
    }
}
