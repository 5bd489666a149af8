//! Sandbox policies: the TOML files that give a sandbox its defaults and bound what a request
//! may ask for.
//!
//! A policy file (see `policies/README.md` for the format) is parsed and validated by
//! [`Policy::parse`]; every error names the file, line, column and field
//! ([`PolicyFileError`]). [`load`] finds a policy by name in a directory
//! (`/etc/sandboxd/policies`) or among the [`SHIPPED`] ones, and [`Policy::resolve`] turns a
//! request into what the sandbox gets ([`Resolved`]), or names the field that asks for more than
//! the policy allows ([`BoundError`]).

#![warn(missing_docs)]

use std::collections::BTreeMap;

pub use sandbox_proto::{FsMode, NetMode};

mod file;
mod host;
mod load;
mod render;
mod resolve;
pub mod units;

#[cfg(any(test, feature = "proptest"))]
pub mod testing;

#[cfg(test)]
mod tests;

pub use file::PolicyFileError;
pub use host::HostPattern;
pub use load::{available, is_policy_name, load, LoadError};
pub use resolve::{BoundError, Request, Resolved};

/// The policies shipped with sandboxd, as `(name, TOML text)`: the files of `policies/`,
/// compiled in. The daemon uses them when `/etc/sandboxd/policies` does not exist.
pub const SHIPPED: &[(&str, &str)] = &[
    ("browser", include_str!("../../policies/browser.toml")),
    ("ci", include_str!("../../policies/ci.toml")),
    ("default", include_str!("../../policies/default.toml")),
    (
        "network-allowlist",
        include_str!("../../policies/network-allowlist.toml"),
    ),
    ("strict", include_str!("../../policies/strict.toml")),
];

/// A parsed and validated policy: every key filled in, defaults included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The policy's name (its file's stem, or what the caller named it).
    pub name: String,
    /// One line saying what the policy is for (`""` if the file has none).
    pub description: String,
    /// What a sandbox gets when its request names nothing (`[limits]`).
    pub limits: Limits,
    /// The most a request may ask for (`[max]`, filled in from `limits` where absent).
    pub max: Bounds,
    /// `[filesystem]`.
    pub filesystem: Filesystem,
    /// `[network]`.
    pub network: Network,
    /// `[process]`.
    pub process: Process,
    /// Host device nodes bound into the sandbox's `/dev` (`devices`).
    pub devices: Vec<String>,
}

/// The resources a sandbox gets when its request names nothing (`[limits]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Memory limit in bytes.
    pub memory: u64,
    /// Swap on top of `memory`, in bytes.
    pub swap: u64,
    /// CPU quota in percent of one CPU (100 = one CPU); `None`: no CPU limit.
    pub cpu_percent: Option<u32>,
    /// Most processes and threads at once.
    pub pids: u64,
    /// Size of the `/workspace` tmpfs in bytes.
    pub workspace_size: u64,
    /// Size of the `/tmp` tmpfs in bytes.
    pub tmp_size: u64,
    /// Size of the `/dev/shm` tmpfs in bytes.
    pub shm_size: u64,
    /// RLIMIT_NOFILE of every process.
    pub open_files: u64,
    /// Wall-clock limit of a run, in milliseconds; `None`: none.
    pub timeout_ms: Option<u64>,
    /// A kept sandbox is destroyed after this long without a client, in milliseconds; `None`:
    /// never.
    pub idle_timeout_ms: Option<u64>,
    /// A kept sandbox is destroyed this long after its creation, in milliseconds; `None`:
    /// never.
    pub ttl_ms: Option<u64>,
}

/// The most a request may ask for (`[max]`). A key the file leaves out takes the `[limits]`
/// value, so a request may only lower it. For the `Option` fields `None` means no bound: a
/// request may ask for any value within the sanity ranges, or for none. For `cpu_percent`:
/// limit `None` and max `None` is unbounded; limit `None` and max `Some(m)` lets a request
/// ask for up to `m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    /// Memory, bytes.
    pub memory: u64,
    /// Swap, bytes.
    pub swap: u64,
    /// CPU quota, percent of one CPU.
    pub cpu_percent: Option<u32>,
    /// Processes and threads.
    pub pids: u64,
    /// `/workspace` size, bytes.
    pub workspace_size: u64,
    /// `/tmp` size, bytes.
    pub tmp_size: u64,
    /// `/dev/shm` size, bytes.
    pub shm_size: u64,
    /// RLIMIT_NOFILE.
    pub open_files: u64,
    /// Run timeout, milliseconds.
    pub timeout_ms: Option<u64>,
    /// Idle timeout of a kept sandbox, milliseconds.
    pub idle_timeout_ms: Option<u64>,
    /// Lifetime of a kept sandbox, milliseconds.
    pub ttl_ms: Option<u64>,
    /// Capabilities (`CAP_*`) a request may ask to keep; includes `process.capabilities`.
    pub capabilities: Vec<String>,
}

/// The root filesystem a policy gives its sandboxes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RootfsSetting {
    /// Read-only binds of the host's system directories (`rootfs = "host"`).
    Host,
    /// A root filesystem directory on the host (an absolute, clean path, not `/`).
    Path(String),
}

/// `[filesystem]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filesystem {
    /// What a sandbox may write, at most.
    pub mode: FsMode,
    /// The root filesystem.
    pub rootfs: RootfsSetting,
    /// Whether a request may name another root filesystem.
    pub custom_rootfs: bool,
    /// Host directories (and everything under them) a request may mount.
    pub host_mounts: Vec<String>,
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// What network a sandbox gets, at most.
    pub mode: NetMode,
    /// The hosts an `allowlist` sandbox may reach (empty unless the mode is `allowlist`).
    pub allow_hosts: Vec<HostPattern>,
    /// Hosts never reachable, whatever else allows them.
    pub deny_hosts: Vec<HostPattern>,
}

/// `[process]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Capabilities (`CAP_*`) every process keeps.
    pub capabilities: Vec<String>,
    /// The seccomp profile: a name the daemon ships (`default`, `browser`) or an absolute path
    /// of a seccompiler JSON file.
    pub seccomp: String,
    /// Whether every process runs with `no_new_privs`.
    pub no_new_privileges: bool,
    /// Environment variables every process gets.
    pub env: BTreeMap<String, String>,
}

impl Policy {
    /// The policy an empty file gives (every built-in default), named `builtin`.
    pub fn builtin_default() -> Policy {
        file::defaults("builtin")
    }
}
