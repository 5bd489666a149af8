//! The per-sandbox helper: a single-threaded re-exec of sandboxd (`sandboxd __sandbox-helper`)
//! started by the daemon with a control socket as fd 0.
//!
//! In order: receive the sealed sandbox-init memfd, init's control socket and the plan; clone
//! init into new namespaces; from outside, write its id maps, move it into its cgroup and make
//! the idmapped host mounts; hand those over; wait until init has built the sandbox and
//! executed sandbox-init; report `Started`; then kill the sandbox on request and report its
//! end. If the daemon goes away (EOF), the sandbox is killed.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::ipc::{self, FromInit, HelperCommand, HelperEvent, IpcError, ToInit};
use super::namespaces::{self, NamespaceError};
use crate::cgroups::{CgroupError, SandboxCgroup};
use crate::policy::{Plan, RootPlan};
use crate::sys;

/// argv[1] that makes sandboxd run as a helper.
pub const HELPER_ARG: &str = "__sandbox-helper";
/// Stack for the cloned init (it runs Rust code before it execs anything).
const STACK_SIZE: usize = 1 << 20;

/// A helper step failed.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// Talking to the daemon or to init.
    #[error("talking to {0}")]
    Ipc(&'static str, #[source] IpcError),
    /// Opening the rootfs directory.
    #[error("opening rootfs {path}")]
    OpenRootfs {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: Errno,
    },
    /// clone.
    #[error("cloning the sandbox init")]
    Clone(#[source] Errno),
    /// Id maps.
    #[error("setting up the user namespace")]
    Namespace(#[from] NamespaceError),
    /// Joining the cgroup.
    #[error("moving init into its cgroup")]
    Cgroup(#[from] CgroupError),
    /// Making the user namespace for idmapped mounts.
    #[error("creating the id-mapping user namespace")]
    IdmapUserns(#[source] Errno),
    /// open_tree of a host folder.
    #[error("opening host folder {host}")]
    OpenTree {
        /// The folder.
        host: String,
        /// Why.
        #[source]
        source: Errno,
    },
    /// The folder is not the one the daemon checked.
    #[error("host folder {host} changed after it was checked")]
    HostDirChanged {
        /// The folder.
        host: String,
    },
    /// mount_setattr(MOUNT_ATTR_IDMAP).
    #[error("idmapping host folder {host} (does its filesystem support idmapped mounts?)")]
    Idmap {
        /// The folder.
        host: String,
        /// Why.
        #[source]
        source: Errno,
    },
    /// Init reported a failure building the sandbox.
    #[error("{0}")]
    Init(String),
}

/// The helper's main; returns the process exit code.
pub fn helper_main() -> i32 {
    // SAFETY: the daemon starts us with the control socket as fd 0 and nothing else owns it.
    let mut ctl = UnixStream::from(unsafe { OwnedFd::from_raw_fd(0) });
    let setup = || -> Result<(InitFds, Plan), SpawnError> {
        let fds = ipc::recv_fds(&ctl, 2).map_err(|e| SpawnError::Ipc("the daemon", e))?;
        let [memfd, control]: [OwnedFd; 2] =
            fds.try_into().map_err(|_| SpawnError::Init("fds".into()))?;
        let mut rd = ctl
            .try_clone()
            .map_err(|e| SpawnError::Ipc("the daemon", IpcError::Send(e)))?;
        let plan = ipc::recv(&mut rd).map_err(|e| SpawnError::Ipc("the daemon", e))?;
        Ok((InitFds { memfd, control }, plan))
    };
    let result = setup().and_then(|(fds, plan)| run(&plan, fds, &mut ctl));
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = ipc::send(
                &mut ctl,
                &HelperEvent::Failed {
                    error: ipc::chain(&e),
                },
            );
            1
        }
    }
}

/// What init needs to become sandbox-init.
#[derive(Debug)]
pub struct InitFds {
    /// The sealed memfd holding sandbox-init.
    pub memfd: OwnedFd,
    /// sandbox-init's control socket to the daemon.
    pub control: OwnedFd,
}

fn run(plan: &Plan, fds: InitFds, ctl: &mut UnixStream) -> Result<(), SpawnError> {
    // The policy's open-file limit: set here, by host root, since inside its user namespace
    // sandbox-init cannot raise the hard limit it inherits (runc sets it the same way). If the
    // host's fs.nr_open is lower, the inherited limit stays and sandbox-init caps at it.
    let _ = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_NOFILE,
        plan.nofile,
        plan.nofile,
    );
    let rootfs = match &plan.rootfs {
        RootPlan::Host => None,
        RootPlan::Path(path) => Some(rootfs_tree(plan, path)?),
    };
    let (mut to_init, init_end) =
        UnixStream::pair().map_err(|e| SpawnError::Ipc("init", IpcError::Send(e)))?;

    let cgroup = SandboxCgroup::load(&plan.cgroup);
    // On cgroup v2, init starts in its cgroup (CLONE_INTO_CGROUP); elsewhere, or if the
    // kernel refuses, it is cloned here and moved in afterwards.
    let into = cgroup.clone_target().and_then(|cg| {
        let flags = namespaces::clone_flags().bits() as u64;
        // SAFETY: the helper is single-threaded, so the child (a copy of this process) may
        // run any code; it never returns from this branch (init execs or exits).
        match unsafe { sys::clone3_into_cgroup(flags, cg.as_fd()) } {
            Ok(None) => super::init::run(
                plan,
                init_end
                    .try_clone()
                    .unwrap_or_else(|_| std::process::exit(1)),
                &fds,
            ),
            Ok(Some(pid)) => Some(Pid::from_raw(pid)),
            Err(_) => None,
        }
    });
    let (pid, attached) = match into {
        Some(pid) => (pid, true),
        None => {
            let mut stack = vec![0u8; STACK_SIZE];
            let mut end = init_end.try_clone().ok();
            let child = Box::new(|| -> isize {
                match end.take() {
                    Some(sock) => super::init::run(plan, sock, &fds),
                    None => 1,
                }
            });
            // SAFETY: the helper is single-threaded, so the child (a copy of this process)
            // may run Rust code; init never returns into the clone trampoline (it execs or
            // exits), and its code uses far less than STACK_SIZE of stack.
            let pid = unsafe {
                nix::sched::clone(
                    child,
                    &mut stack,
                    namespaces::clone_flags(),
                    Some(libc::SIGCHLD),
                )
            }
            .map_err(SpawnError::Clone)?;
            (pid, false)
        }
    };
    // Our copies: init has its own now.
    drop(fds);
    drop(init_end);

    let result = prepare_init(
        plan,
        pid,
        rootfs,
        &mut to_init,
        (!attached).then_some(&cgroup),
    );
    if let Err(e) = result {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(e);
    }
    // Init reports a failure, or execs sandbox-init, which closes its end of this socket.
    match ipc::recv::<FromInit>(&mut to_init) {
        Err(IpcError::Closed) => {}
        Ok(FromInit::Failed { error }) => {
            let _ = waitpid(pid, None);
            return Err(SpawnError::Init(error));
        }
        Err(e) => {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(SpawnError::Ipc("init", e));
        }
    }
    drop(to_init);
    ipc::send(
        ctl,
        &HelperEvent::Started {
            init_pid: pid.as_raw(),
        },
    )
    .map_err(|e| SpawnError::Ipc("the daemon", e))?;
    let (code, signal) = relay(pid, ctl);
    ipc::send(ctl, &HelperEvent::Exited { code, signal })
        .map_err(|e| SpawnError::Ipc("the daemon", e))
}

/// A detached, read-only, recursive copy of the rootfs directory's mount tree. Init attaches
/// it inside its own mount namespace (a path lookup from there would reach the host's mounts,
/// which cannot be bound into another namespace). In `full` mode it is also idmapped (host ids
/// `0..count` are the sandbox's same ids), so the overlay can copy a file up with its owner.
fn rootfs_tree(plan: &Plan, path: &str) -> Result<OwnedFd, SpawnError> {
    let err = |source| SpawnError::OpenRootfs {
        path: path.to_string(),
        source,
    };
    let fd = sys::open_tree_clone(Path::new(path), true).map_err(err)?;
    let attrs = sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
    sys::mount_setattr_fd(fd.as_fd(), attrs, true).map_err(err)?;
    if plan.fs_mode == sandbox_proto::FsMode::Full {
        // The top mount only: overlayfs does not look into submounts of its lower layer.
        let userns = idmap_userns(plan, true)?;
        sys::mount_setattr_idmap(fd.as_fd(), userns.as_fd(), attrs).map_err(|source| {
            SpawnError::Idmap {
                host: path.to_string(),
                source,
            }
        })?;
    }
    Ok(fd)
}

/// From outside, while init waits: id maps, cgroup (unless init started in it), idmapped
/// mounts, then the go-ahead.
fn prepare_init(
    plan: &Plan,
    pid: Pid,
    rootfs: Option<OwnedFd>,
    to_init: &mut UnixStream,
    attach_to: Option<&SandboxCgroup>,
) -> Result<(), SpawnError> {
    namespaces::write_id_maps(pid.as_raw(), &plan.ids)?;
    if let Some(cgroup) = attach_to {
        cgroup.attach(pid.as_raw() as u32)?;
    }
    let mounts = idmapped_mounts(plan)?;
    ipc::send(
        to_init,
        &ToInit::Go {
            rootfs_fd: rootfs.is_some(),
            mounts: mounts.len(),
        },
    )
    .map_err(|e| SpawnError::Ipc("init", e))?;
    let fds: Vec<RawFd> = rootfs
        .iter()
        .chain(mounts.iter())
        .map(|f| f.as_raw_fd())
        .collect();
    if !fds.is_empty() {
        ipc::send_fds(to_init, &fds).map_err(|e| SpawnError::Ipc("init", e))?;
    }
    Ok(())
}

/// A user namespace mapping the caller's uid and gid to the sandbox's root, held by a
/// throw-away process: through it, an idmapped mount shows the caller's files as the
/// sandbox root's and stores the sandbox root's new files as the caller's. With `whole_range`
/// (or a root caller), host ids `0..count` map to the sandbox's same ids.
fn idmap_userns(plan: &Plan, whole_range: bool) -> Result<OwnedFd, SpawnError> {
    let mut stack = vec![0u8; 64 * 1024];
    let holder = Box::new(|| -> isize {
        // Hold the namespace open until the helper has its fd and kills us.
        loop {
            nix::unistd::pause();
        }
    });
    // SAFETY: single-threaded helper; the child only sleeps until it is killed.
    let pid = unsafe {
        nix::sched::clone(
            holder,
            &mut stack,
            CloneFlags::CLONE_NEWUSER,
            Some(libc::SIGCHLD),
        )
    }
    .map_err(SpawnError::IdmapUserns)?;
    let ids = &plan.ids;
    // Root's mount behaves as on the host: every host id 0..count is the sandbox's same id,
    // so sandbox root may write anywhere host root could. Anyone else's mount maps only their
    // own uid and gid (to sandbox root): others' files stay unmapped, out of reach of the
    // sandbox's capabilities.
    let (uids, gids) = if whole_range || ids.caller_uid == 0 {
        (
            format!("0 {} {}\n", ids.host_base, ids.count),
            format!("0 {} {}\n", ids.host_base, ids.count),
        )
    } else {
        (
            format!("{} {} 1\n", ids.caller_uid, ids.host_base),
            format!("{} {} 1\n", ids.caller_gid, ids.host_base),
        )
    };
    let result = namespaces::write_maps(pid.as_raw(), &uids, &gids)
        .map_err(SpawnError::from)
        .and_then(|()| {
            open(
                format!("/proc/{pid}/ns/user").as_str(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(SpawnError::IdmapUserns)
        });
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, None);
    result
}

fn idmapped_mounts(plan: &Plan) -> Result<Vec<OwnedFd>, SpawnError> {
    if plan.mounts.is_empty() {
        return Ok(Vec::new());
    }
    let userns = idmap_userns(plan, false)?;
    let mut fds = Vec::with_capacity(plan.mounts.len());
    for b in &plan.mounts {
        let fd = sys::open_tree_clone(Path::new(&b.host), false).map_err(|source| {
            SpawnError::OpenTree {
                host: b.host.clone(),
                source,
            }
        })?;
        let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|source| SpawnError::OpenTree {
            host: b.host.clone(),
            source,
        })?;
        if st.st_dev != b.dev || st.st_ino != b.ino {
            return Err(SpawnError::HostDirChanged {
                host: b.host.clone(),
            });
        }
        let mut attrs = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
        if b.read_only {
            attrs |= sys::MOUNT_ATTR_RDONLY;
        }
        sys::mount_setattr_idmap(fd.as_fd(), userns.as_fd(), attrs).map_err(|source| {
            SpawnError::Idmap {
                host: b.host.clone(),
                source,
            }
        })?;
        fds.push(fd);
    }
    Ok(fds)
}

/// Until init ends: the daemon's SIGKILL goes to init, which takes the whole pid namespace
/// with it; the daemon's disappearance kills the sandbox. Returns init's exit code or signal.
fn relay(init: Pid, ctl: &mut UnixStream) -> (Option<i32>, Option<i32>) {
    let pidfd = sys::pidfd_open(init.as_raw()).ok();
    loop {
        let (ctl_ready, init_done) = {
            let mut fds = vec![PollFd::new(ctl.as_fd(), PollFlags::POLLIN)];
            if let Some(p) = &pidfd {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            if poll(&mut fds, PollTimeout::NONE).is_err() {
                continue;
            }
            (
                fds[0].any().unwrap_or(false),
                fds.get(1).and_then(|f| f.any()).unwrap_or(false),
            )
        };
        if init_done || pidfd.is_none() {
            return match waitpid(init, None) {
                Ok(WaitStatus::Exited(_, c)) => (Some(c), None),
                Ok(WaitStatus::Signaled(_, s, _)) => (None, Some(s as i32)),
                _ => (None, Some(libc::SIGKILL)),
            };
        }
        if ctl_ready {
            match ipc::recv::<HelperCommand>(ctl) {
                Ok(HelperCommand::Kill { .. }) => {
                    let _ = kill(init, Signal::SIGKILL);
                }
                // The daemon is gone: nobody will use this sandbox any more.
                Err(_) => {
                    let _ = kill(init, Signal::SIGKILL);
                    let _ = waitpid(init, None);
                    std::process::exit(1);
                }
            }
        }
    }
}
