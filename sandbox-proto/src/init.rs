//! Internal messages between sandboxd and `sandbox-init`, pid 1 of every sandbox. Not part of
//! the client protocol: both ends are built from the same commit. Frames are the same
//! length-prefixed msgpack as the client protocol; fds travel with `SCM_RIGHTS` in a one-byte
//! message right after the frame they belong to.

use serde::{Deserialize, Serialize};

/// The fd on which sandbox-init finds its control socket.
pub const INIT_CONTROL_FD: i32 = 3;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BpfInsn {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

/// Daemon → init, the first frame: what every exec gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitConfig {
    /// Seccomp filters, installed in order in every exec's process.
    pub seccomp: Vec<Vec<BpfInsn>>,
    /// RLIMIT_NOFILE for execs (capped at the inherited hard limit).
    pub nofile: u64,
    /// Capabilities every exec keeps (`CAP_*` names, checked by the daemon); all others are
    /// dropped from every set.
    pub capabilities: Vec<String>,
    /// Set no_new_privs on every exec.
    pub no_new_privileges: bool,
}

/// Terminal size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtySize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// One command to start in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Chosen by the daemon; names the exec in later messages.
    pub exec_id: u64,
    /// The command; `argv[0]` is looked up in `PATH` from `env` unless it has a `/`.
    pub argv: Vec<String>,
    /// The whole environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// User inside the sandbox.
    pub uid: u32,
    /// Group inside the sandbox.
    pub gid: u32,
    /// With a size: run on a new pseudo-terminal of the sandbox (its master comes back with
    /// `ExecStarted`); without: three stdio fds (stdin, stdout, stderr) follow this frame.
    pub tty: Option<TtySize>,
}

/// Daemon → init.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToInit {
    /// Start a command.
    Exec(ExecRequest),
    /// Signal every process of the sandbox but init.
    SignalAll {
        /// Signal number.
        signal: i32,
    },
    /// Signal an exec's process group.
    Signal {
        /// Which exec.
        exec_id: u64,
        /// Signal number.
        signal: i32,
    },
}

/// Init → daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromInit {
    /// Configured; ready for execs.
    Ready,
    /// The exec's process runs (pid as the sandbox sees it). For a tty exec, the pty master
    /// fd follows this frame.
    ExecStarted {
        /// Which exec.
        exec_id: u64,
        /// Its pid inside the sandbox.
        pid: i32,
    },
    /// The exec could not be started.
    ExecFailed {
        /// Which exec.
        exec_id: u64,
        /// Why.
        error: String,
    },
    /// The exec's process ended.
    ExecExited {
        /// Which exec.
        exec_id: u64,
        /// Exit code.
        code: Option<i32>,
        /// Killing signal.
        signal: Option<i32>,
    },
}
