//! Messages of protocol version [`PROTOCOL_VERSION`]: what a client sends ([`Request`]), what the
//! daemon answers ([`Response`]), and the run description ([`RunSpec`]) they carry.
//!
//! Every message is a msgpack map with a `type` key naming the variant in snake_case; field names
//! are the Rust names. Optional fields may be omitted by a client.

use serde::{Deserialize, Serialize};

pub use crate::sandboxes::{
    CreateSpec, ExecInfo, ExecSpec, FileKind, FileStat, SandboxInfo, SandboxStats,
};

/// The protocol version this crate speaks. A client and the daemon must agree exactly.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest frame body either side accepts by default (1 MiB). The daemon states its own
/// limit in [`Response::Welcome`].
pub const MAX_FRAME_LEN: usize = 1 << 20;
/// The largest `data` the daemon puts in one [`Response::Output`] frame.
pub const MAX_OUTPUT_CHUNK: usize = 64 * 1024;
/// The most bytes one `file_read` returns or one `file_write` carries.
pub const MAX_FILE_CHUNK: usize = 512 * 1024;
/// The output window a run starts with, in bytes, per stream (stdout and stderr each), and the
/// stdin window the daemon grants a run that takes stdin.
pub const DEFAULT_WINDOW: u32 = 256 * 1024;

/// A message from a client to the daemon.
// A request is decoded once and moved into its handler; boxing `Run`'s spec would only add an
// allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// The first frame on every connection. Precondition: nothing was sent before it. The daemon
    /// answers [`Response::Welcome`], or [`ErrorCode::VersionMismatch`] and closes.
    Hello {
        /// The protocol version the client speaks ([`PROTOCOL_VERSION`]).
        protocol: u32,
        /// Free text naming the client, for the daemon's log (e.g. `sandboxctl 0.1.0`).
        client: String,
    },
    /// Create a sandbox, run `spec.argv` in it, stream its output and report its exit; the
    /// sandbox is destroyed when the command ends. Precondition: `id` is not in use on this
    /// connection. Answered by [`Response::Started`] then [`Response::Output`]s and one
    /// [`Response::Exit`], or by one [`Response::Error`] with this `id`.
    Run {
        /// Chosen by the client; names the run in every later frame of either side.
        id: u64,
        /// What to run and how.
        spec: RunSpec,
    },
    /// Bytes for the run's standard input. Precondition: the run was started with
    /// `spec.stdin = true`, stdin is not closed, and `data` fits in the stdin window the daemon
    /// granted (the initial [`DEFAULT_WINDOW`] plus every [`Response::StdinCredit`]).
    Stdin {
        /// The run.
        id: u64,
        /// The bytes, as msgpack bin.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// End of the run's standard input (the command reads EOF).
    CloseStdin {
        /// The run.
        id: u64,
    },
    /// The client consumed `bytes` of the run's output on `stream`: the daemon may send that many
    /// more bytes on it.
    Credit {
        /// The run.
        id: u64,
        /// Which output stream the credit is for.
        stream: Stream,
        /// How many bytes.
        bytes: u32,
    },
    /// Send a signal to the run's command and its process group (SIGKILL ends the whole
    /// sandbox).
    Kill {
        /// The run.
        id: u64,
        /// The signal number (e.g. 9, 15).
        signal: i32,
    },
    /// Ask for the daemon's state. Answered by [`Response::Status`].
    Status {
        /// Names the answer.
        id: u64,
    },
    /// Create a long-lived sandbox. Answered by [`Response::Created`] or an error.
    Create {
        /// Names the answer.
        id: u64,
        /// The sandbox.
        spec: CreateSpec,
    },
    /// Run a command in a sandbox made by `create`. Precondition: `id` is not in use on this
    /// connection. Answered like `run`: `started` (with the `exec_id`), `output`s (with
    /// sequence numbers), `exit`; stdin, credit and kill work as for a run. Output is also kept
    /// in the exec's log, so `attach` can replay it; the exec goes on if the client leaves.
    Exec {
        /// Names the exec on this connection.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
        /// What to run.
        spec: ExecSpec,
    },
    /// Follow an exec again (after a reconnect): its output from sequence `from_seq`, then
    /// live, then its `exit`. Answered like `exec`.
    Attach {
        /// Names the stream on this connection.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
        /// The exec.
        exec_id: u64,
        /// First sequence number to send.
        from_seq: u64,
    },
    /// Change the terminal size of a tty exec started on this connection (by its `id`).
    Resize {
        /// The exec's id on this connection.
        id: u64,
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// Signal one exec of a sandbox (its process group), or with no `exec_id` every process
    /// of the sandbox. Answered by [`Response::Done`].
    Signal {
        /// Names the answer.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
        /// The exec, or none for the whole sandbox.
        exec_id: Option<u64>,
        /// Signal number.
        signal: i32,
    },
    /// Freeze every process of a sandbox. Answered by [`Response::Done`].
    Pause {
        /// Names the answer.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
    },
    /// Thaw a paused sandbox. Answered by [`Response::Done`].
    Resume {
        /// Names the answer.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
    },
    /// Destroy a sandbox: kill everything in it and release all it had. Answered by
    /// [`Response::Done`] once it is gone.
    Destroy {
        /// Names the answer.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
    },
    /// The OCI form of the sandbox `spec` describes (its policy resolved as for `run`), for
    /// runc or crun: answered by [`Response::Bundle`]. Creates nothing. The bundle's user
    /// namespace maps the daemon's export uid range, outside the ranges of its own sandboxes.
    ExportBundle {
        /// Names the answer.
        id: u64,
        /// The sandbox, as for `run` (`argv` is the bundle's command).
        spec: RunSpec,
    },
    /// A policy the daemon knows, with every default filled in: answered by
    /// [`Response::Policy`].
    Policy {
        /// Names the answer.
        id: u64,
        /// Its name; `None`: the daemon's default policy.
        name: Option<String>,
    },
    /// The caller's sandboxes (root: all). Answered by [`Response::Sandboxes`].
    List {
        /// Names the answer.
        id: u64,
    },
    /// One sandbox in detail. Answered by [`Response::Sandbox`].
    Inspect {
        /// Names the answer.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
    },
    /// A sandbox's resource usage. Answered by [`Response::Stats`].
    Stats {
        /// Names the answer.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
    },
    /// Read up to `len` bytes (at most `MAX_FILE_CHUNK`) of a file in a sandbox from
    /// `offset`. Answered by [`Response::FileData`].
    FileRead {
        /// Names the answer.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
        /// Path inside the sandbox.
        path: String,
        /// Where to start.
        offset: u64,
        /// How much.
        len: u64,
    },
    /// Write `data` (at most `MAX_FILE_CHUNK`) at `offset` of a file in a sandbox, creating
    /// it (owned by the sandbox's root) if needed. Answered by [`Response::Done`].
    FileWrite {
        /// Names the answer.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
        /// Path inside the sandbox.
        path: String,
        /// Where to write.
        offset: u64,
        /// The bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        /// Truncate the file first.
        truncate: bool,
        /// Permission bits for a new file.
        mode: u32,
    },
    /// List a directory in a sandbox. Answered by [`Response::FileList`].
    FileList {
        /// Names the answer.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
        /// Path inside the sandbox.
        path: String,
    },
    /// Stat a path in a sandbox (a symlink is not followed). Answered by [`Response::FileInfo`].
    FileStat {
        /// Names the answer.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
        /// Path inside the sandbox.
        path: String,
    },
    /// Make a directory in a sandbox. Answered by [`Response::Done`].
    FileMkdir {
        /// Names the answer.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
        /// Path inside the sandbox.
        path: String,
        /// Make missing parents too.
        parents: bool,
        /// Permission bits.
        mode: u32,
    },
    /// Remove a file or directory in a sandbox. Answered by [`Response::Done`].
    FileRemove {
        /// Names the answer.
        id: u64,
        /// The sandbox.
        sandbox_id: String,
        /// Path inside the sandbox.
        path: String,
        /// Remove a directory and everything in it (symlinks are removed, never followed).
        recursive: bool,
    },
}

/// A message from the daemon to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The answer to [`Request::Hello`] when the versions match.
    Welcome {
        /// The protocol version the daemon speaks.
        protocol: u32,
        /// The daemon's name and version, e.g. `sandboxd 0.1.0`.
        daemon: String,
        /// The largest frame body the daemon accepts.
        max_frame: u32,
        /// The initial output window of every stream, and the initial stdin window, in bytes.
        window: u32,
    },
    /// The sandbox exists and the command is running.
    Started {
        /// The run.
        id: u64,
        /// The sandbox's name (also its hostname unless the spec set one).
        sandbox_id: String,
        /// For `exec` and `attach`: the exec's id within the sandbox.
        #[serde(default)]
        exec_id: Option<u64>,
    },
    /// A chunk of the command's output (at most [`MAX_OUTPUT_CHUNK`] bytes).
    Output {
        /// The run.
        id: u64,
        /// Which stream the bytes came from.
        stream: Stream,
        /// The bytes, as msgpack bin.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        /// For `exec` and `attach`: the chunk's sequence number in the exec's log.
        #[serde(default)]
        seq: Option<u64>,
    },
    /// The daemon wrote `bytes` of stdin into the command's pipe: the client may send that many
    /// more.
    StdinCredit {
        /// The run.
        id: u64,
        /// How many bytes.
        bytes: u32,
    },
    /// The command ended. Sent after all of its output. For a run, the sandbox is being
    /// killed; its teardown completes just after.
    Exit {
        /// The run.
        id: u64,
        /// How it ended.
        status: ExitStatus,
    },
    /// The answer to [`Request::Status`].
    Status {
        /// The request's id.
        id: u64,
        /// The daemon's state.
        info: DaemonStatus,
    },
    /// The answer to `create`.
    Created {
        /// The request's id.
        id: u64,
        /// The new sandbox.
        sandbox: SandboxInfo,
    },
    /// A request without data to return succeeded.
    Done {
        /// The request's id.
        id: u64,
    },
    /// The answer to `export_bundle`.
    Bundle {
        /// The request's id.
        id: u64,
        /// `config.json`, runtime-spec 1.0.2. Its `root.path` is `rootfs` (relative to the
        /// bundle) for the host's system directories, or the absolute path of the sandbox's
        /// root filesystem directory.
        config: String,
        /// For a `rootfs` inside the bundle: what to create there before running it (the mount
        /// points of the read-only binds `config` lists, and the host's symlinks such as
        /// `bin -> usr/bin`). Empty for a root filesystem directory.
        rootfs: Vec<BundleEntry>,
    },
    /// The answer to `policy`.
    Policy {
        /// The request's id.
        id: u64,
        /// The policy's name.
        name: String,
        /// The effective policy as TOML (every key written).
        text: String,
    },
    /// The answer to `list`.
    Sandboxes {
        /// The request's id.
        id: u64,
        /// The caller's sandboxes (root: all).
        sandboxes: Vec<SandboxInfo>,
    },
    /// The answer to `inspect`.
    Sandbox {
        /// The request's id.
        id: u64,
        /// The sandbox.
        info: SandboxInfo,
    },
    /// The answer to `stats`.
    Stats {
        /// The request's id.
        id: u64,
        /// The sandbox's usage.
        stats: SandboxStats,
    },
    /// The answer to `file_read`.
    FileData {
        /// The request's id.
        id: u64,
        /// The bytes (shorter than asked at the end of the file).
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        /// The read reached the end of the file.
        eof: bool,
    },
    /// The answer to `file_list`.
    FileList {
        /// The request's id.
        id: u64,
        /// The entries, by name.
        entries: Vec<FileStat>,
    },
    /// The answer to `file_stat`.
    FileInfo {
        /// The request's id.
        id: u64,
        /// The file.
        stat: FileStat,
    },
    /// A request failed, or (with no `id`) the connection did.
    Error {
        /// The request or run it is about; absent for connection-level errors.
        id: Option<u64>,
        /// Stable machine-readable code.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
    },
}

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// The command's standard output.
    Stdout,
    /// The command's standard error.
    Stderr,
}

/// Stable error codes. They are part of the protocol: a code's meaning never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The client's protocol version is not the daemon's. The connection is closed.
    VersionMismatch,
    /// A frame's length header exceeds the limit. The connection is closed.
    FrameTooLarge,
    /// A frame's body is not a valid message (not msgpack, missing or mistyped fields).
    BadFrame,
    /// The message's `type` is not one this daemon knows.
    UnknownRequest,
    /// The message is valid but not allowed now (before `hello`, an id in use, an unknown id,
    /// stdin past its window or after it was closed).
    ProtocolViolation,
    /// A field has a value outside what is allowed (a limit, a path, a name).
    InvalidArgument,
    /// The caller may not do this (e.g. mount a folder it does not own).
    PermissionDenied,
    /// The request asks for more than its policy allows (a limit above the policy's maximum,
    /// a capability it does not list, a looser filesystem or network mode); the message names
    /// the field and the bound.
    PolicyViolation,
    /// A daemon limit was reached (sandboxes, connections, runs per connection).
    ResourceExhausted,
    /// The sandbox could not be created; the message names the step that failed.
    SpawnFailed,
    /// The daemon is shutting down.
    ShuttingDown,
    /// No such sandbox, exec or file (a sandbox of another user is reported the same way).
    NotFound,
    /// The file call failed inside the sandbox (read-only, not a directory, no space...).
    FileError,
    /// A bug or an unexpected host failure; the message says what.
    Internal,
    /// A code this client does not know (a newer daemon).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::UnknownRequest => "unknown_request",
            ErrorCode::ProtocolViolation => "protocol_violation",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::PolicyViolation => "policy_violation",
            ErrorCode::ResourceExhausted => "resource_exhausted",
            ErrorCode::SpawnFailed => "spawn_failed",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::NotFound => "not_found",
            ErrorCode::FileError => "file_error",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of an exported bundle's `rootfs` directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleEntry {
    /// Path relative to `rootfs` (parents come first).
    pub path: String,
    /// `dir`, `file` (an empty file, a mount point) or `symlink`.
    pub kind: String,
    /// A symlink's target.
    pub target: Option<String>,
}

/// What to run and in what kind of sandbox.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSpec {
    /// The command and its arguments; `argv[0]` is looked up in the sandbox's `PATH` unless it
    /// contains a `/`. Must not be empty.
    pub argv: Vec<String>,
    /// Extra environment, `KEY=VALUE` each; overrides the defaults (`PATH`, `HOME=/tmp`,
    /// `LANG=C.UTF-8`).
    pub env: Vec<String>,
    /// Working directory inside the sandbox (absolute); default `/workspace`.
    pub cwd: Option<String>,
    /// Hostname inside the sandbox; default the sandbox id.
    pub hostname: Option<String>,
    /// The root filesystem.
    pub rootfs: Rootfs,
    /// Host folders bound into the sandbox.
    pub mounts: Vec<Mount>,
    /// Resource limits; absent fields take the daemon's defaults.
    pub limits: Limits,
    /// Whether the client will send stdin ([`Request::Stdin`]); if false the command's stdin is
    /// empty (reads EOF at once).
    pub stdin: bool,
    /// What the sandbox is allowed: the policy's defaults fill every field the request leaves
    /// out, and its bounds cap what the request may ask for. `None`: the daemon's default
    /// policy.
    pub policy: Option<PolicyRef>,
    /// Filesystem mode; at most as permissive as the policy's. `None`: the policy's.
    pub filesystem: Option<FsMode>,
    /// Network mode; at most as permissive as the policy's. `None`: the policy's.
    pub network: Option<NetMode>,
    /// Capabilities to keep (`CAP_*` names), each one the policy allows. `None`: the policy's.
    pub capabilities: Option<Vec<String>>,
}

/// Which policy a sandbox is made under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PolicyRef {
    /// A policy the daemon knows by name (`/etc/sandboxd/policies/NAME.toml`).
    Name {
        /// Its name.
        name: String,
    },
    /// A policy file's text, sent by the client (only root may use one: a policy is what
    /// bounds a client's requests).
    Inline {
        /// Where the text came from, for error messages (a file name).
        source: String,
        /// The TOML text.
        text: String,
    },
}

/// How much of its filesystem a sandbox may write, from least to most.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum FsMode {
    /// Nothing writable but the tmpfs `/tmp` (and `/dev/shm`); `/workspace` and every host
    /// folder are read-only.
    ReadOnly,
    /// `/workspace`, `/tmp`, `/dev/shm` and read-write host folders are writable; the rest is
    /// read-only.
    #[default]
    WorkspaceOnly,
    /// The root is a writable overlay (upper layer on a tmpfs) over the root filesystem.
    Full,
}

impl FsMode {
    /// The policy-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FsMode::ReadOnly => "read-only",
            FsMode::WorkspaceOnly => "workspace-only",
            FsMode::Full => "full",
        }
    }
}

/// What network a sandbox has, from least to most.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum NetMode {
    /// A network namespace with only `lo`.
    #[default]
    None,
    /// Only the hosts a policy allows, through the daemon's proxy.
    Allowlist,
    /// A routed link out, with a deny list for private ranges.
    Full,
}

impl NetMode {
    /// The policy-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NetMode::None => "none",
            NetMode::Allowlist => "allowlist",
            NetMode::Full => "full",
        }
    }
}

/// The root filesystem a sandbox sees.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rootfs {
    /// The policy's root filesystem.
    #[default]
    Policy,
    /// Read-only binds of the host's `/usr`, `/bin`, `/sbin`, `/lib*` and a curated `/etc`.
    Host,
    /// A directory on the host, mounted read-only as `/`.
    Path {
        /// Absolute host path.
        path: String,
    },
}

/// A host folder bound into the sandbox. Files the sandbox creates in it are owned on the host
/// by the client's uid and gid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute path of an existing host directory.
    pub host: String,
    /// Absolute path inside the sandbox.
    pub sandbox: String,
    /// Mount read-only.
    #[serde(default)]
    pub read_only: bool,
}

/// Resource limits of one sandbox. `None` takes the policy's default; a value must be within
/// the policy's bounds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Most processes and threads at once.
    pub pids: Option<u64>,
    /// CPU quota as a number of CPUs (0.5 = half of one CPU).
    pub cpus: Option<f64>,
    /// Wall-clock limit in milliseconds; the whole sandbox is killed when it passes.
    pub timeout_ms: Option<u64>,
    /// Size of the `/workspace` tmpfs in bytes.
    pub workspace_size: Option<u64>,
    /// Swap the sandbox may use on top of `memory`, in bytes (0: none).
    pub swap: Option<u64>,
    /// Size of the `/tmp` tmpfs in bytes.
    pub tmp_size: Option<u64>,
    /// Size of the `/dev/shm` tmpfs in bytes.
    pub shm_size: Option<u64>,
    /// RLIMIT_NOFILE of every process.
    pub open_files: Option<u64>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExitStatus {
    /// The exit code, if the command exited.
    pub code: Option<i32>,
    /// The signal number, if the command was killed by a signal.
    pub signal: Option<i32>,
    /// The wall-clock timeout passed and the daemon killed the sandbox.
    pub timed_out: bool,
    /// The kernel's OOM killer killed a process of the sandbox (the memory limit was hit).
    pub oom_killed: bool,
    /// The memory limit in force, in bytes (to report with an OOM kill).
    pub memory_limit: Option<u64>,
    /// Milliseconds from the sandbox's start to the command's end.
    pub duration_ms: u64,
}

impl ExitStatus {
    /// The status as a shell reports it: 124 after a timeout, 137 after an OOM kill, 128+N for
    /// signal N, otherwise the exit code.
    pub fn shell_code(&self) -> i32 {
        if self.timed_out {
            124
        } else if self.oom_killed {
            137
        } else if let Some(sig) = self.signal {
            128 + sig
        } else {
            self.code.unwrap_or(255)
        }
    }
}

/// The daemon's state, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DaemonStatus {
    /// `sandboxd VERSION`.
    pub daemon: String,
    /// `v1`, `v2` (cgroup hierarchy in use).
    pub cgroup_version: String,
    /// Live sandboxes.
    pub sandboxes: Vec<SandboxSummary>,
}

/// One live sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxSummary {
    /// The sandbox id.
    pub sandbox_id: String,
    /// The uid of the client that created it.
    pub owner_uid: u32,
    /// The first host uid (and gid) of its user-namespace range.
    pub host_uid_base: u32,
    /// The cgroup path, relative to the hierarchy root.
    pub cgroup: String,
    /// Host pid of the sandbox's init (pid 1 inside), 0 while starting.
    pub init_pid: u32,
}
