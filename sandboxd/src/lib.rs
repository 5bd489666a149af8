//! sandboxd: a daemon that runs commands in Linux sandboxes for its clients.
//!
//! `main.rs` decides, before any thread exists, whether this process is the daemon (tokio,
//! [`server`]) or a per-sandbox helper ([`isolation::spawn`], single-threaded, no tokio).
#![deny(unsafe_code)]

/// One cgroup per sandbox through cgroups-rs, v1 and v2.
pub mod cgroups;
/// The daemon's flags.
pub mod config;
/// Reads and writes files inside a running sandbox, resolved under its root fd.
pub mod files;
/// Applies a plan in the helper and the sandbox's init; the only place that clones or forks.
pub mod isolation;
/// Renders a plan as an OCI runtime spec for runc/crun.
pub mod oci;
/// Pure: request + caller + config → plan.
pub mod policy;
/// Sandbox lifecycle: the registry and one file per verb.
pub mod sandbox;
/// The socket, connections, shutdown (tokio only; never forks).
pub mod server;
/// State records: atomic JSON per sandbox, reloaded on restart.
pub mod store;
/// Safe wrappers for syscalls nix lacks. [unsafe allowed]
#[allow(unsafe_code)]
pub mod sys;
