//! The sandboxd wire protocol: message types, the version handshake and the frame codec.
//!
//! This crate is the only place that knows the wire encoding (msgpack through rmp-serde); the
//! daemon, the CLI and the SDK exchange typed [`Request`]s and [`Response`]s through it. The
//! format is written down for other-language clients in `PROTOCOL.md` at the repository root.
#![forbid(unsafe_code)]

/// Length-prefixed frames: the 4-byte header, the size limit, sync and async readers.
pub mod codec;
/// Internal messages between sandboxd and sandbox-init (pid 1 of every sandbox).
pub mod init;
/// Every message and the data types they carry.
pub mod msg;
/// Data types of long-lived sandboxes (create, exec, inspect, stats, files).
pub mod sandboxes;

pub use codec::{
    decode_request, decode_response, encode, pack, peek_id, unpack, DecodeError, EncodeError,
    FrameError,
};
pub use msg::*;
