//! Applies a [`Plan`] to new processes: the per-sandbox helper (`spawn`) clones the sandbox's
//! init into new namespaces, and init (`init`) builds the sandbox with [`contain`] and then
//! executes sandbox-init (a separate static program, `sandbox-init/`) from a sealed memfd.
//! Nothing here runs in the multi-threaded daemon: the helper is a fresh single-threaded exec
//! of sandboxd.

use std::os::fd::OwnedFd;

use nix::errno::Errno;

use crate::policy::Plan;

/// pid 1 of the sandbox before it execs sandbox-init: builds the sandbox. [unsafe: dup2 onto fd 3]
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
/// The seccomp profile (seccompiler), compiled once by the daemon, installed by sandbox-init
/// in every exec.
pub mod seccomp;
/// The helper process: receives a plan, clones init, writes id maps, joins the cgroup,
/// prepares idmapped mounts, and reports to the daemon. [unsafe: clone, adopting fd 0]
#[allow(unsafe_code)]
pub mod spawn;
/// The zygote: forks a helper per sandbox instead of an exec of sandboxd. [unsafe: fork]
#[allow(unsafe_code)]
pub mod zygote;

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

/// Everything init does to itself between clone and executing sandbox-init, in order (nsjail's
/// `containProc`). The helper has already written our id maps and moved us into our cgroup.
pub fn contain(plan: &Plan, fds: &Handoff) -> Result<(), ContainError> {
    namespaces::become_root()?;
    // Changing credentials cleared the parent-death signal: set it now, so that init (and with
    // it the whole pid namespace) dies if the helper does.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| ContainError::Prctl("setting the parent-death signal", e))?;
    namespaces::enter_cgroup_ns()?;
    let root = mounts::build_root(plan, fds.rootfs.as_ref(), &fds.mounts)?;
    mounts::pivot(&root, plan.fs_mode == sandbox_proto::FsMode::Full)?;
    namespaces::set_hostname(&plan.hostname)?;
    namespaces::loopback_up()?;
    // Init keeps its capabilities (inside the sandbox's user namespace only) to serve the
    // sandbox; undumpable, the command cannot ptrace it or open its /proc/1/{mem,fd,exe}.
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| ContainError::Prctl("making init undumpable", e))?;
    Ok(())
}
