//! Async client SDK for sandboxd: run commands in sandboxes and stream their output.
//!
//! A [`Client`] holds one connection to the daemon. Its background task reads every frame and
//! routes it by run id, so many runs share one connection. Output flows under credit: the SDK
//! grants credit for a chunk only when the consumer takes it from [`Run::next_event`], so a
//! consumer that stops reading stalls its sandboxed command, not the connection.
//!
//! ```no_run
//! # async fn demo() -> Result<(), agent_sdk::Error> {
//! let client = agent_sdk::Client::connect("/run/sandboxd/sandboxd.sock").await?;
//! let out = client.run(["echo", "hello"]).memory(64 << 20).output().await?;
//! assert_eq!(out.stdout, b"hello\n");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

/// The connection: handshake, request ids, the `status` call.
mod client;
/// The SDK's error type.
mod error;
/// The background reader and writer tasks and the per-run routing table.
mod router;
/// Building, starting and driving one run.
mod run;
/// A fake daemon and the tests that drive the SDK against it.
#[cfg(test)]
mod tests;

pub use client::Client;
pub use error::Error;
pub use run::{Event, Output, Run, RunBuilder, RunStdin};
pub use sandbox_proto::{
    DaemonStatus, ErrorCode, ExitStatus, Limits, Mount, Rootfs, RunSpec, SandboxSummary, Stream,
};
