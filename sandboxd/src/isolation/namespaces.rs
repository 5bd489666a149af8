//! Namespaces: which ones a sandbox gets, the user-namespace id maps (written by the helper
//! from outside), and what init does inside them (become root, enter a cgroup namespace, set
//! the hostname, bring `lo` up).

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::{sethostname, setresgid, setresuid, Gid, Uid};

use crate::policy::IdMap;
use crate::sys;

/// The namespaces created with the sandbox's init, in the order the kernel sets them up (the
/// user namespace first, so it owns all the others). The cgroup namespace is entered later,
/// by init itself, once the helper has moved it into its cgroup.
pub const CLONE_NAMESPACES: &[CloneFlags] = &[
    CloneFlags::CLONE_NEWUSER,
    CloneFlags::CLONE_NEWNS,
    CloneFlags::CLONE_NEWPID,
    CloneFlags::CLONE_NEWNET,
    CloneFlags::CLONE_NEWIPC,
    CloneFlags::CLONE_NEWUTS,
];

/// The clone flags for [`CLONE_NAMESPACES`].
pub fn clone_flags() -> CloneFlags {
    CLONE_NAMESPACES
        .iter()
        .fold(CloneFlags::empty(), |acc, f| acc | *f)
}

/// A namespace step failed.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// Writing `/proc/PID/{uid,gid}_map`.
    #[error("writing {file} of pid {pid}")]
    WriteMap {
        /// `uid_map` or `gid_map`.
        file: &'static str,
        /// The process.
        pid: i32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `setresuid`/`setresgid`/`setgroups` to root inside.
    #[error("becoming root in the user namespace")]
    BecomeRoot(#[source] Errno),
    /// `unshare(CLONE_NEWCGROUP)`.
    #[error("entering a new cgroup namespace")]
    CgroupNs(#[source] Errno),
    /// `sethostname`.
    #[error("setting the hostname")]
    Hostname(#[source] Errno),
    /// Bringing `lo` up.
    #[error("bringing up the loopback interface")]
    Loopback(#[source] Errno),
}

/// Writes the sandbox's id maps from outside: ids `0..count` inside are `host_base..` outside.
pub fn write_id_maps(pid: i32, ids: &IdMap) -> Result<(), NamespaceError> {
    let line = format!("0 {} {}\n", ids.host_base, ids.count);
    write_maps(pid, &line, &line)
}

/// Writes both maps of `pid`'s user namespace.
pub fn write_maps(pid: i32, uid_line: &str, gid_line: &str) -> Result<(), NamespaceError> {
    for (file, line) in [("uid_map", uid_line), ("gid_map", gid_line)] {
        std::fs::write(format!("/proc/{pid}/{file}"), line)
            .map_err(|source| NamespaceError::WriteMap { file, pid, source })?;
    }
    Ok(())
}

/// Inside: switch every id to 0 (the mapped root) and drop supplementary groups.
pub fn become_root() -> Result<(), NamespaceError> {
    nix::unistd::setgroups(&[]).map_err(NamespaceError::BecomeRoot)?;
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .map_err(NamespaceError::BecomeRoot)?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .map_err(NamespaceError::BecomeRoot)
}

/// Inside, after the helper moved us into the sandbox's cgroup: that cgroup becomes the root
/// of what the sandbox sees in `/proc/self/cgroup`.
pub fn enter_cgroup_ns() -> Result<(), NamespaceError> {
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(NamespaceError::CgroupNs)
}

/// Inside: the UTS namespace's hostname.
pub fn set_hostname(name: &str) -> Result<(), NamespaceError> {
    sethostname(name).map_err(NamespaceError::Hostname)
}

/// Inside: the new network namespace has only `lo`, down; bring it up.
pub fn loopback_up() -> Result<(), NamespaceError> {
    sys::loopback_up().map_err(NamespaceError::Loopback)
}
