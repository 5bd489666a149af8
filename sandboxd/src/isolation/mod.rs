//! Applies a [`Plan`] to new processes: the per-sandbox helper (`spawn`) clones the sandbox's
//! init into new namespaces, and init (`init`) builds the sandbox with [`contain`] and starts
//! the command with [`exec_command`]. Nothing here runs in the multi-threaded daemon: the helper
//! is a fresh single-threaded exec of sandboxd.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;

use crate::policy::Plan;

/// Capability sets: cleared for the command.
pub mod caps;
/// pid 1 of the sandbox: builds it, forks the command, reaps, reports the exit. [unsafe: fork]
#[allow(unsafe_code)]
mod init;
/// The embedded static sandbox-init and its sealed memfd.
pub mod initbin;
/// Messages and fd passing between daemon, helper and init. [unsafe: adopting received fds]
#[allow(unsafe_code)]
pub mod ipc;
/// The mount tree and `pivot_root`.
pub mod mounts;
/// Namespaces: clone flags, id maps, hostname, loopback.
pub mod namespaces;
/// setrlimit.
pub mod rlimits;
/// The seccomp profile (seccompiler), compiled by the helper, installed before exec.
pub mod seccomp;
/// The helper process: receives a plan, clones init, writes id maps, joins the cgroup,
/// prepares idmapped mounts, and reports to the daemon. [unsafe: clone, adopting fd 0]
#[allow(unsafe_code)]
pub mod spawn;

/// Building the sandbox inside init failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainError {
    /// A namespace step.
    #[error("setting up namespaces")]
    Namespace(#[from] namespaces::NamespaceError),
    /// A mount step.
    #[error("building the filesystem")]
    Mount(#[from] mounts::MountError),
    /// prctl.
    #[error("{0}")]
    Prctl(&'static str, #[source] Errno),
}

/// Fds init receives from the helper.
#[derive(Debug)]
pub struct Handoff {
    /// The rootfs directory for a path rootfs.
    pub rootfs: Option<OwnedFd>,
    /// Idmapped host folders, in plan order.
    pub mounts: Vec<OwnedFd>,
}

/// Everything init does to itself between clone and forking the command, in order (nsjail's
/// `containProc`). The helper has already written our id maps and moved us into our cgroup.
pub fn contain(plan: &Plan, fds: &Handoff) -> Result<(), ContainError> {
    namespaces::become_root()?;
    // Changing credentials cleared the parent-death signal: set it now, so that init (and with
    // it the whole pid namespace) dies if the helper does.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| ContainError::Prctl("setting the parent-death signal", e))?;
    namespaces::enter_cgroup_ns()?;
    mounts::build_root(plan, fds.rootfs.as_ref(), &fds.mounts)?;
    mounts::pivot(Path::new(&plan.root_dir))?;
    namespaces::set_hostname(&plan.hostname)?;
    namespaces::loopback_up()?;
    // Init keeps its capabilities (inside the sandbox's user namespace only) to serve the
    // sandbox; undumpable, the command cannot ptrace it or open its /proc/1/{mem,fd,exe}.
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| ContainError::Prctl("making init undumpable", e))?;
    Ok(())
}

/// Starting the command failed; init's child prints it and exits 126 or 127.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// dup2 of stdio.
    #[error("installing stdio")]
    Stdio(#[source] Errno),
    /// setsid.
    #[error("starting a session")]
    Setsid(#[source] Errno),
    /// rlimits.
    #[error("setting resource limits")]
    Rlimits(#[from] rlimits::RlimitError),
    /// cwd.
    #[error("cwd {0}")]
    Chdir(String, #[source] Errno),
    /// caps.
    #[error("dropping capabilities")]
    Caps(#[from] caps::CapsDropError),
    /// no_new_privs.
    #[error("setting no_new_privs")]
    NoNewPrivs(#[source] Errno),
    /// seccomp.
    #[error("installing the seccomp filter")]
    Seccomp(#[from] seccomp::SeccompError),
    /// close_range.
    #[error("closing inherited file descriptors")]
    CloseFds(#[source] Errno),
    /// The command is not in PATH.
    #[error("{0}: command not found")]
    NotFound(String),
    /// A NUL in argv/env (the policy refuses these; kept for safety).
    #[error("argument with a NUL byte")]
    Nul,
    /// execve.
    #[error("{0}")]
    Exec(String, #[source] Errno),
}

impl ExecError {
    /// The shell's convention: 127 for not found, 126 for found but not runnable.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::NotFound(_) => 127,
            ExecError::Exec(_, Errno::ENOENT) => 127,
            _ => 126,
        }
    }
}

/// `argv0` as execve needs it: itself if it has a `/`, else the first executable file of that
/// name in `PATH` (from the sandbox's environment, not ours).
fn resolve(argv0: &str, env: &[String]) -> Result<String, ExecError> {
    if argv0.contains('/') {
        return Ok(argv0.to_string());
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/bin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = format!("{dir}/{argv0}");
        let is_file = std::fs::metadata(&candidate)
            .map(|m| m.is_file())
            .unwrap_or(false);
        if is_file
            && nix::unistd::access(candidate.as_str(), nix::unistd::AccessFlags::X_OK).is_ok()
        {
            return Ok(candidate);
        }
    }
    Err(ExecError::NotFound(argv0.to_string()))
}

fn cstrings(v: &[String]) -> Result<Vec<CString>, ExecError> {
    v.iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| ExecError::Nul))
        .collect()
}

/// In the command's process (forked by init), in order: stdio, a new session, rlimits, cwd;
/// then, as the sandbox's root with no privilege left: no capabilities, no_new_privs,
/// seccomp, only fds 0-2, exec. Returns only on failure.
pub fn exec_command(plan: &Plan, seccomp: &seccomp::SeccompProfile) -> ExecError {
    let run = || -> Result<std::convert::Infallible, ExecError> {
        nix::unistd::setsid().map_err(ExecError::Setsid)?;
        rlimits::apply(plan.nofile)?;
        nix::unistd::chdir(plan.cwd.as_str()).map_err(|e| ExecError::Chdir(plan.cwd.clone(), e))?;
        let path = resolve(&plan.argv[0], &plan.env)?;
        let (cpath, args, env) = (
            CString::new(path.as_str()).map_err(|_| ExecError::Nul)?,
            cstrings(&plan.argv)?,
            cstrings(&plan.env)?,
        );
        // As non-root from here on.
        caps::drop_all()?;
        nix::sys::prctl::set_no_new_privs().map_err(ExecError::NoNewPrivs)?;
        seccomp.apply()?;
        crate::sys::close_fds_from(3).map_err(ExecError::CloseFds)?;
        let e = nix::unistd::execve(&cpath, &args, &env).unwrap_err();
        Err(ExecError::Exec(path, e))
    };
    match run() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}
