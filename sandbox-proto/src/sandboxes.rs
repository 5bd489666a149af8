//! Data types of long-lived sandboxes: what `create` and `exec` take, and what `inspect`,
//! `stats` and the file calls return.

use serde::{Deserialize, Serialize};

use crate::msg::{ExitStatus, Limits, Mount, Rootfs};

/// A sandbox to create and keep: like a run's spec without the command.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateSpec {
    /// Environment every exec starts with (`KEY=VALUE`), over the defaults.
    pub env: Vec<String>,
    /// Hostname; default the sandbox id.
    pub hostname: Option<String>,
    /// The root filesystem.
    pub rootfs: Rootfs,
    /// Host folders.
    pub mounts: Vec<Mount>,
    /// Limits; `timeout_ms` is not used (see `ttl_ms`).
    pub limits: Limits,
    /// Destroy the sandbox this long after its creation.
    pub ttl_ms: Option<u64>,
    /// Destroy the sandbox after this long without any request about it (exec, files, ...)
    /// while no exec runs.
    pub idle_timeout_ms: Option<u64>,
    /// The policy (as [`crate::RunSpec::policy`]); its `ttl` and `idle_timeout` apply when
    /// the request names none.
    pub policy: Option<crate::PolicyRef>,
    /// Filesystem mode; at most the policy's.
    pub filesystem: Option<crate::FsMode>,
    /// Network mode; at most the policy's.
    pub network: Option<crate::NetMode>,
    /// Capabilities to keep; each one the policy allows.
    pub capabilities: Option<Vec<String>>,
    /// Free-form labels kept with the sandbox and shown by `inspect` (at most 64, keys up to
    /// 256 bytes, values up to 4096); `io.sandboxd.bundle` names the OCI bundle it came from.
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// A command to run in an existing sandbox.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecSpec {
    /// The command and its arguments (looked up in `PATH`).
    pub argv: Vec<String>,
    /// Extra environment over the sandbox's.
    pub env: Vec<String>,
    /// Working directory; default `/workspace`.
    pub cwd: Option<String>,
    /// User inside the sandbox (0..65536); default 0.
    pub uid: u32,
    /// Group inside the sandbox; default 0.
    pub gid: u32,
    /// Whether the client sends stdin (not with `tty`, where input always flows).
    pub stdin: bool,
    /// Run on a pseudo-terminal of this size; its output comes as `stdout`, input as `stdin`.
    pub tty: Option<crate::init::TtySize>,
    /// Kill this exec (its process group) after this long.
    pub timeout_ms: Option<u64>,
}

/// One exec of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecInfo {
    /// Its id within the sandbox.
    pub exec_id: u64,
    /// The command.
    pub argv: Vec<String>,
    /// Its pid inside the sandbox.
    pub pid: i32,
    /// Start time, ms since the epoch.
    pub started_unix_ms: u64,
    /// How it ended, once it has.
    pub exit: Option<ExitStatus>,
    /// The next output sequence number (how much output it produced, in records).
    pub next_seq: u64,
}

/// A long-lived sandbox as `list` and `inspect` show it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxInfo {
    /// The sandbox id.
    pub sandbox_id: String,
    /// `running` or `paused`.
    pub state: String,
    /// The uid that created it.
    pub owner_uid: u32,
    /// Creation time, ms since the epoch.
    pub created_unix_ms: u64,
    /// Last request about it, ms since the epoch.
    pub last_used_unix_ms: u64,
    /// Its TTL.
    pub ttl_ms: Option<u64>,
    /// Its idle timeout.
    pub idle_timeout_ms: Option<u64>,
    /// Hostname.
    pub hostname: String,
    /// Root filesystem.
    pub rootfs: Rootfs,
    /// Host folders.
    pub mounts: Vec<Mount>,
    /// The limits in force (defaults filled in).
    pub limits: Limits,
    /// First host uid of its user-namespace range.
    pub host_uid_base: u32,
    /// Its cgroup.
    pub cgroup: String,
    /// Host pid of its init.
    pub init_pid: u32,
    /// The policy it was made under.
    pub policy: String,
    /// Its filesystem mode.
    pub filesystem: crate::FsMode,
    /// Its network mode.
    pub network: crate::NetMode,
    /// Capabilities its execs keep.
    pub capabilities: Vec<String>,
    /// Its annotations (from `create`).
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Its execs, running and ended (most recent last; bounded).
    pub execs: Vec<ExecInfo>,
}

/// Resource usage of a sandbox (from its cgroup); absent fields are not available on this
/// host's cgroup version.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxStats {
    /// CPU time, µs.
    pub cpu_usage_us: Option<u64>,
    /// User CPU time, µs.
    pub cpu_user_us: Option<u64>,
    /// System CPU time, µs.
    pub cpu_system_us: Option<u64>,
    /// Memory in use, bytes.
    pub memory_current: Option<u64>,
    /// Peak memory, bytes.
    pub memory_peak: Option<u64>,
    /// Memory limit, bytes.
    pub memory_limit: Option<u64>,
    /// Processes now.
    pub pids_current: Option<u64>,
    /// Process limit.
    pub pids_limit: Option<u64>,
    /// OOM kills so far.
    pub oom_kills: u64,
    /// Bytes read from block devices.
    pub io_read_bytes: Option<u64>,
    /// Bytes written to block devices.
    pub io_write_bytes: Option<u64>,
    /// Whether it is paused.
    pub frozen: bool,
}

/// Kind of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A regular file.
    #[default]
    File,
    /// A directory.
    Dir,
    /// A symbolic link (not followed).
    Symlink,
    /// Anything else.
    Other,
}

/// A file inside a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FileStat {
    /// Its path (for `list`: the entry's name).
    pub path: String,
    /// Its kind.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, ms since the epoch.
    pub mtime_unix_ms: i64,
    /// Owner as the sandbox sees it.
    pub uid: u32,
    /// Group as the sandbox sees it.
    pub gid: u32,
}
