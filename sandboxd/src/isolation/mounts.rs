//! The sandbox's filesystem: a private mount tree with a tmpfs root holding read-only binds of
//! the root filesystem, `/proc` with runc's masked and read-only paths, a minimal `/dev`, tmpfs
//! `/tmp` and `/workspace`, and the host folders (idmapped by the helper); then `pivot_root`.
//!
//! Runs in the sandbox's init, inside its user and mount namespaces, before `pivot_root`: host
//! paths are still visible, and only the new mount namespace is changed.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{symlink, DirBuilderExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::policy::{Plan, RootPlan};
use crate::sys;

/// Host system directories bound read-only for `Rootfs::Host` (a symlink is copied as one).
const HOST_DIRS: &[&str] = &["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];
/// The curated `/etc` of `Rootfs::Host`: what programs need to run, resolve names and verify
/// TLS; never shadow, ssh keys or machine secrets.
const HOST_ETC: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "passwd",
    "group",
    "hosts",
    "resolv.conf",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "protocols",
    "services",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "alternatives",
    "localtime",
    "timezone",
    "os-release",
    "debian_version",
    "mime.types",
    "profile",
    "bash.bashrc",
    "inputrc",
    "python3",
    "python3.11",
];
/// Top-level entries of a path rootfs that the sandbox provides itself.
const OWN_ENTRIES: &[&str] = &["proc", "dev", "tmp"];
/// runc's default masked paths: a file gets /dev/null over it, a directory an empty read-only
/// tmpfs.
pub(crate) const MASKED: &[&str] = &[
    "proc/acpi",
    "proc/asound",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
];
/// runc's default read-only paths.
pub(crate) const READ_ONLY: &[&str] = &[
    "proc/bus",
    "proc/fs",
    "proc/irq",
    "proc/sys",
    "proc/sysrq-trigger",
];
/// Device nodes bound from the host's /dev.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];
/// Symlinks in /dev.
const DEV_LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Building the mount tree failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// Making the copied mount tree private.
    #[error("making the mount tree private")]
    MakePrivate(#[source] Errno),
    /// A filesystem mount.
    #[error("mounting {fstype} on {target}")]
    Mount {
        /// Filesystem type.
        fstype: &'static str,
        /// Where.
        target: PathBuf,
        /// Why.
        #[source]
        source: Errno,
    },
    /// A bind mount.
    #[error("binding {src} on {target}")]
    Bind {
        /// What.
        src: PathBuf,
        /// Where.
        target: PathBuf,
        /// Why.
        #[source]
        source: Errno,
    },
    /// Setting mount attributes (read-only, nosuid, ...).
    #[error("setting mount attributes on {path}")]
    SetAttr {
        /// Which mount.
        path: PathBuf,
        /// Why.
        #[source]
        source: Errno,
    },
    /// Creating a mount point, file or symlink in the new root.
    #[error("creating {path}")]
    Create {
        /// What.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A mount target goes through a symlink.
    #[error("mount target {path} goes through a symlink")]
    SymlinkInTarget {
        /// The target.
        path: PathBuf,
    },
    /// Listing the root filesystem directory.
    #[error("reading the root filesystem directory")]
    ReadRootfs(#[source] std::io::Error),
    /// Attaching (or detaching) the rootfs tree at its staging point.
    #[error("attaching the rootfs")]
    AttachRootfs(#[source] Errno),
    /// Attaching an idmapped host folder.
    #[error("attaching host folder {host} on {target}")]
    AttachHostDir {
        /// Host path.
        host: String,
        /// Where.
        target: PathBuf,
        /// Why.
        #[source]
        source: Errno,
    },
    /// `pivot_root`.
    #[error("pivot_root into {root}")]
    PivotRoot {
        /// The new root.
        root: PathBuf,
        /// Why.
        #[source]
        source: Errno,
    },
    /// Detaching the old root after `pivot_root`.
    #[error("detaching the old root")]
    UmountOldRoot(#[source] Errno),
    /// `chdir`.
    #[error("chdir to {path}")]
    Chdir {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: Errno,
    },
}

const NONE: Option<&str> = None;

fn tmpfs(target: &Path, flags: MsFlags, opts: &str) -> Result<(), MountError> {
    mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some(opts)).map_err(|source| {
        MountError::Mount {
            fstype: "tmpfs",
            target: target.into(),
            source,
        }
    })
}

fn mkdir(path: &Path, mode: u32) -> Result<(), MountError> {
    match fs::DirBuilder::new().mode(mode).create(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(MountError::Create {
            path: path.into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn touch(path: &Path) -> Result<(), MountError> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map(drop)
        .map_err(|source| MountError::Create {
            path: path.into(),
            source,
        })
}

fn link(target: &Path, at: &Path) -> Result<(), MountError> {
    symlink(target, at).map_err(|source| MountError::Create {
        path: at.into(),
        source,
    })
}

fn set_attr(path: &Path, attrs: u64, recursive: bool) -> Result<(), MountError> {
    sys::mount_setattr_path(path, attrs, recursive).map_err(|source| MountError::SetAttr {
        path: path.into(),
        source,
    })
}

/// Binds `src` (file or directory, recursively) on `target` and makes it read-only, nosuid,
/// nodev.
fn bind_ro(src: &Path, target: &Path) -> Result<(), MountError> {
    mount(
        Some(src),
        target,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(|source| MountError::Bind {
        src: src.into(),
        target: target.into(),
        source,
    })?;
    set_attr(
        target,
        sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
        true,
    )
}

/// Mirrors host entry `src` at `dst`: a symlink is copied, a directory or file bound read-only.
/// `follow` binds what a symlink points to instead of copying it (for /etc, whose links often
/// point outside what the sandbox sees). Missing entries are skipped.
fn mirror(src: &Path, dst: &Path, follow: bool) -> Result<(), MountError> {
    let meta = if follow {
        fs::metadata(src)
    } else {
        fs::symlink_metadata(src)
    };
    let Ok(meta) = meta else { return Ok(()) };
    if meta.file_type().is_symlink() {
        let target = fs::read_link(src).map_err(|source| MountError::Create {
            path: src.into(),
            source,
        })?;
        return link(&target, dst);
    }
    if meta.is_dir() {
        mkdir(dst, 0o755)?;
    } else if meta.is_file() {
        touch(dst)?;
    } else {
        return Ok(());
    }
    bind_ro(src, dst)
}

fn host_system(root: &Path) -> Result<(), MountError> {
    for d in HOST_DIRS {
        mirror(&Path::new("/").join(d), &root.join(d), false)?;
    }
    let etc = root.join("etc");
    mkdir(&etc, 0o755)?;
    for e in HOST_ETC {
        mirror(&Path::new("/etc").join(e), &etc.join(e), true)?;
    }
    Ok(())
}

/// Every top-level entry of the rootfs, except what the sandbox provides itself. `tree` is the
/// helper's detached read-only copy of the rootfs; it is attached at a staging directory,
/// mirrored entry by entry, then detached again.
fn path_rootfs(tree: &OwnedFd, root: &Path, plan: &Plan) -> Result<(), MountError> {
    let staging = root.join(".rootfs");
    mkdir(&staging, 0o700)?;
    sys::move_mount_to(tree.as_fd(), &staging).map_err(MountError::AttachRootfs)?;
    for entry in fs::read_dir(&staging).map_err(MountError::ReadRootfs)? {
        let entry = entry.map_err(MountError::ReadRootfs)?;
        let name = entry.file_name();
        let own = OWN_ENTRIES.iter().any(|o| name == *o)
            || (name == "workspace" && plan.workspace_size.is_some());
        if !own {
            mirror(&staging.join(&name), &root.join(&name), false)?;
        }
    }
    umount2(&staging, MntFlags::MNT_DETACH).map_err(MountError::AttachRootfs)?;
    fs::remove_dir(&staging).map_err(|source| MountError::Create {
        path: staging,
        source,
    })
}

fn proc(root: &Path) -> Result<(), MountError> {
    let target = root.join("proc");
    mkdir(&target, 0o555)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), &target, Some("proc"), flags, NONE).map_err(|source| {
        MountError::Mount {
            fstype: "proc",
            target: target.clone(),
            source,
        }
    })?;
    for m in MASKED {
        let p = root.join(m);
        match fs::symlink_metadata(&p) {
            Ok(meta) if meta.is_dir() => tmpfs(&p, MsFlags::MS_RDONLY, "size=0,mode=0555")?,
            Ok(_) => {
                mount(Some("/dev/null"), &p, NONE, MsFlags::MS_BIND, NONE).map_err(|source| {
                    MountError::Bind {
                        src: "/dev/null".into(),
                        target: p.clone(),
                        source,
                    }
                })?
            }
            Err(_) => {}
        }
    }
    for r in READ_ONLY {
        let p = root.join(r);
        if p.exists() {
            bind_ro(&p, &p)?;
        }
    }
    Ok(())
}

fn dev(root: &Path) -> Result<(), MountError> {
    let d = root.join("dev");
    mkdir(&d, 0o755)?;
    tmpfs(
        &d,
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "mode=0755,size=64k,nr_inodes=64",
    )?;
    for name in DEVICES {
        let target = d.join(name);
        touch(&target)?;
        let src = Path::new("/dev").join(name);
        mount(Some(&src), &target, NONE, MsFlags::MS_BIND, NONE).map_err(|source| {
            MountError::Bind {
                src,
                target: target.clone(),
                source,
            }
        })?;
    }
    let pts = d.join("pts");
    mkdir(&pts, 0o755)?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(|source| MountError::Mount {
        fstype: "devpts",
        target: pts.clone(),
        source,
    })?;
    let shm = d.join("shm");
    mkdir(&shm, 0o1777)?;
    tmpfs(
        &shm,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "mode=1777,size=64m",
    )?;
    let mq = d.join("mqueue");
    mkdir(&mq, 0o755)?;
    mount(
        Some("mqueue"),
        &mq,
        Some("mqueue"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        NONE,
    )
    .map_err(|source| MountError::Mount {
        fstype: "mqueue",
        target: mq.clone(),
        source,
    })?;
    for (name, target) in DEV_LINKS {
        link(Path::new(target), &d.join(name))?;
    }
    set_attr(&d, sys::MOUNT_ATTR_RDONLY, false)
}

/// Creates directory `rel` (absolute inside the sandbox) under `root`, refusing to go through
/// a symlink, so a rootfs cannot redirect a mount onto a host path.
fn mkdir_in_root(root: &Path, rel: &str) -> Result<PathBuf, MountError> {
    let mut cur = root.to_path_buf();
    for c in Path::new(rel).components() {
        if let Component::Normal(name) = c {
            cur.push(name);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(MountError::SymlinkInTarget { path: rel.into() })
                }
                Ok(_) => {}
                Err(_) => mkdir(&cur, 0o755)?,
            }
        }
    }
    Ok(cur)
}

/// Builds the whole tree at `plan.root_dir`. `rootfs_dir` is the open rootfs directory for
/// `RootPlan::Path`; `host_mounts` are the helper's idmapped detached mounts, in plan order.
pub fn build_root(
    plan: &Plan,
    rootfs_dir: Option<&OwnedFd>,
    host_mounts: &[OwnedFd],
) -> Result<(), MountError> {
    // Nothing we mount may propagate back to the host.
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
        .map_err(MountError::MakePrivate)?;
    let root = Path::new(&plan.root_dir);
    tmpfs(
        root,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "mode=0755,size=1m,nr_inodes=4096",
    )?;
    match (&plan.rootfs, rootfs_dir) {
        (RootPlan::Host, _) => host_system(root)?,
        (RootPlan::Path(_), Some(dir)) => path_rootfs(dir, root, plan)?,
        (RootPlan::Path(p), None) => {
            return Err(MountError::ReadRootfs(std::io::Error::other(format!(
                "{p}: no fd"
            ))))
        }
    }
    proc(root)?;
    dev(root)?;
    let tmp = root.join("tmp");
    mkdir(&tmp, 0o1777)?;
    tmpfs(
        &tmp,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        &format!("mode=1777,size={}", plan.tmp_size),
    )?;
    if let Some(size) = plan.workspace_size {
        let ws = root.join("workspace");
        mkdir(&ws, 0o755)?;
        tmpfs(
            &ws,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            &format!("mode=0755,size={size}"),
        )?;
    }
    for (b, fd) in plan.mounts.iter().zip(host_mounts) {
        let target = mkdir_in_root(root, &b.sandbox)?;
        sys::move_mount_to(fd.as_fd(), &target).map_err(|source| MountError::AttachHostDir {
            host: b.host.clone(),
            target: b.sandbox.clone().into(),
            source,
        })?;
    }
    Ok(())
}

/// Makes `root` the process's `/`, detaches the old root, and seals the root tmpfs read-only.
pub fn pivot(root: &Path) -> Result<(), MountError> {
    let chdir = |path: &Path| {
        nix::unistd::chdir(path).map_err(|source| MountError::Chdir {
            path: path.into(),
            source,
        })
    };
    chdir(root)?;
    // pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." then
    // removes it without needing a directory for it inside the new root.
    nix::unistd::pivot_root(".", ".").map_err(|source| MountError::PivotRoot {
        root: root.into(),
        source,
    })?;
    umount2(".", MntFlags::MNT_DETACH).map_err(MountError::UmountOldRoot)?;
    chdir(Path::new("/"))?;
    set_attr(
        Path::new("/"),
        sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
        false,
    )
}
