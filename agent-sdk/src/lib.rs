//! Async client SDK for sandboxd: run commands in sandboxes and stream their output.
//!
//! A [`Client`] holds one connection to the daemon. Its background task reads every frame and
//! routes it by request id, so many runs and calls share one connection. Output flows under
//! credit: the SDK grants credit for a chunk only when the consumer takes it from
//! [`Run::next_event`], so a consumer that stops reading stalls its sandboxed command, not the
//! connection.
//!
//! One-shot runs ([`Client::run`]) make a sandbox for one command. Long-lived sandboxes
//! ([`Client::create`]) stay until destroyed: run commands in them ([`Sandbox::exec`]), follow
//! an exec again after a reconnect ([`Sandbox::attach`]), move files in and out
//! ([`Sandbox::read_file`], [`Sandbox::upload_dir`]...).
//!
//! ```no_run
//! # async fn demo() -> Result<(), agent_sdk::Error> {
//! use agent_sdk::SandboxBuilder;
//!
//! let client = agent_sdk::Client::connect("/run/sandboxd/sandboxd.sock").await?;
//! let out = client.run(["echo", "hello"]).memory(64 << 20).output().await?;
//! assert_eq!(out.stdout, b"hello\n");
//!
//! let sandbox = client.create().memory(256 << 20).create().await?.guard();
//! sandbox.write_file("/workspace/a.txt", b"hi", 0o644).await?;
//! let out = sandbox.exec(["cat", "/workspace/a.txt"]).output().await?;
//! assert_eq!(out.stdout, b"hi");
//! sandbox.destroy().await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

/// The connection: handshake, request ids, single-answer calls, `status`, `create`, `list`.
mod client;
/// The SDK's error type.
mod error;
/// Describing and starting a command in a long-lived sandbox.
mod exec;
/// File calls on a long-lived sandbox, and single-file copies.
mod files;
/// The background reader and writer tasks and the per-request routing table.
mod router;
/// Building, starting and driving one run (or exec, or attach).
mod run;
/// Long-lived sandboxes: creating one, its handle and lifecycle calls, its drop guard.
mod sandbox;
/// The sandbox settings shared by the run and create builders.
mod spec;
/// A fake daemon and the tests that drive the SDK against it.
#[cfg(test)]
mod tests;
/// Recursive copies between host and sandbox directories.
mod transfer;

pub use client::Client;
pub use error::Error;
pub use exec::ExecBuilder;
pub use run::{Event, Output, Run, RunBuilder, RunStdin};
pub use sandbox::{CreateBuilder, Sandbox, SandboxGuard};
pub use sandbox_proto::init::TtySize;
pub use sandbox_proto::{
    CreateSpec, DaemonStatus, ErrorCode, ExecInfo, ExecSpec, ExitStatus, FileKind, FileStat,
    FsMode, Limits, Mount, NetMode, PolicyRef, Rootfs, RunSpec, SandboxInfo, SandboxStats,
    SandboxSummary, Stream, MAX_FILE_CHUNK,
};
pub use spec::SandboxBuilder;
pub use transfer::{Skipped, Transfer};
