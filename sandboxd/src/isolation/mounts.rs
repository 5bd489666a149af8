//! The sandbox's filesystem: a private mount tree with a tmpfs root holding read-only binds of
//! the root filesystem (or, in `full` mode, a writable overlay over it), `/proc` with runc's masked and read-only paths, a minimal `/dev`, tmpfs
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

use sandbox_proto::FsMode;

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
    /// A mount target goes through a symlink (or is not a directory).
    #[error("mount target {path} goes through a symlink or is not a directory")]
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
    /// A device node the policy names is missing on the host or not a device.
    #[error("device {path}: {reason}")]
    Device {
        /// The host path.
        path: String,
        /// Why.
        reason: String,
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

/// Creates a directory to mount on; one already there must be a directory, not a symlink
/// (which a mount would follow out of the sandbox's root, e.g. a rootfs's `/tmp -> /etc`).
fn mkdir(path: &Path, mode: u32) -> Result<(), MountError> {
    match fs::DirBuilder::new().mode(mode).create(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            match fs::symlink_metadata(path) {
                Ok(m) if m.is_dir() => Ok(()),
                _ => Err(MountError::SymlinkInTarget { path: path.into() }),
            }
        }
        Err(e) => Err(MountError::Create {
            path: path.into(),
            source: e,
        }),
        Ok(()) => Ok(()),
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

/// One entry of the `Rootfs::Host` root as the host has it now (what [`host_system`] makes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEntry {
    /// A directory bound read-only from the same host path.
    Dir(String),
    /// A file bound read-only from the same host path.
    File(String),
    /// A symlink, copied.
    Symlink(String, String),
}

/// The entries of the `Rootfs::Host` root (absolute paths, parents first), for an OCI bundle
/// that rebuilds it with binds.
pub fn host_layout() -> Vec<HostEntry> {
    let mut out = Vec::new();
    let mut add = |src: PathBuf, follow: bool| {
        let meta = if follow {
            fs::metadata(&src)
        } else {
            fs::symlink_metadata(&src)
        };
        let Ok(meta) = meta else { return };
        let p = src.to_string_lossy().into_owned();
        if meta.file_type().is_symlink() {
            if let Ok(t) = fs::read_link(&src) {
                out.push(HostEntry::Symlink(p, t.to_string_lossy().into_owned()));
            }
        } else if meta.is_dir() {
            out.push(HostEntry::Dir(p));
        } else if meta.is_file() {
            out.push(HostEntry::File(p));
        }
    };
    for d in HOST_DIRS {
        add(Path::new("/").join(d), false);
    }
    for e in HOST_ETC {
        add(Path::new("/etc").join(e), true);
    }
    out
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

fn dev(root: &Path, plan: &Plan) -> Result<(), MountError> {
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
        &format!("mode=1777,size={}", plan.shm_size),
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
    for path in &plan.devices {
        device(&d, path)?;
    }
    set_attr(&d, sys::MOUNT_ATTR_RDONLY, false)
}

/// Binds the host's device node `path` (`/dev/...`, checked by the policy) at the same path
/// in the sandbox's `/dev` (`d`). The node keeps its host owner and mode; the sandbox cannot
/// create device nodes itself.
fn device(d: &Path, path: &str) -> Result<(), MountError> {
    use std::os::unix::fs::FileTypeExt;
    let err = |reason: String| MountError::Device {
        path: path.to_owned(),
        reason,
    };
    let meta = fs::symlink_metadata(path).map_err(|e| err(e.to_string()))?;
    let ft = meta.file_type();
    if !ft.is_char_device() && !ft.is_block_device() {
        return Err(err("not a device node".into()));
    }
    let rel = path
        .strip_prefix("/dev/")
        .ok_or_else(|| err("not under /dev".into()))?;
    let target = d.join(rel);
    if let Some(parent) = target.parent() {
        let mut cur = d.to_path_buf();
        for c in parent.strip_prefix(d).unwrap_or(Path::new("")).components() {
            cur.push(c);
            mkdir(&cur, 0o755)?;
        }
    }
    touch(&target)?;
    mount(Some(path), &target, NONE, MsFlags::MS_BIND, NONE).map_err(|source| MountError::Bind {
        src: path.into(),
        target: target.clone(),
        source,
    })
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

/// Builds the whole tree at `plan.root_dir` and returns the directory to pivot into.
/// `rootfs_dir` is the open rootfs directory for `RootPlan::Path`; `host_mounts` are the
/// helper's idmapped detached mounts, in plan order.
pub fn build_root(
    plan: &Plan,
    rootfs_dir: Option<&OwnedFd>,
    host_mounts: &[OwnedFd],
) -> Result<PathBuf, MountError> {
    // Nothing we mount may propagate back to the host.
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
        .map_err(MountError::MakePrivate)?;
    let base = Path::new(&plan.root_dir);
    let no_fd = |p: &str| MountError::ReadRootfs(std::io::Error::other(format!("{p}: no fd")));
    let root = match (&plan.rootfs, rootfs_dir, plan.overlay_size) {
        (RootPlan::Path(_), Some(dir), Some(size)) if plan.fs_mode == FsMode::Full => {
            overlay_root(dir, base, size)?
        }
        (RootPlan::Host, _, _) => {
            tmpfs(
                base,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                "mode=0755,size=1m,nr_inodes=4096",
            )?;
            host_system(base)?;
            base.to_path_buf()
        }
        (RootPlan::Path(_), Some(dir), _) => {
            tmpfs(
                base,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                "mode=0755,size=1m,nr_inodes=4096",
            )?;
            path_rootfs(dir, base, plan)?;
            base.to_path_buf()
        }
        (RootPlan::Path(p), None, _) => return Err(no_fd(p)),
    };
    proc(&root)?;
    dev(&root, plan)?;
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
        // Read-only mode: the workspace exists (the default working directory) but nothing
        // can be written there.
        let ro = if plan.fs_mode == FsMode::ReadOnly {
            MsFlags::MS_RDONLY
        } else {
            MsFlags::empty()
        };
        tmpfs(
            &ws,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | ro,
            &format!("mode=0755,size={size}"),
        )?;
    }
    for (b, fd) in plan.mounts.iter().zip(host_mounts) {
        let target = mkdir_in_root(&root, &b.sandbox)?;
        sys::move_mount_to(fd.as_fd(), &target).map_err(|source| MountError::AttachHostDir {
            host: b.host.clone(),
            target: b.sandbox.clone().into(),
            source,
        })?;
    }
    Ok(root)
}

/// `full` mode: the root is an overlay of the rootfs (the helper's idmapped read-only tree,
/// whose files keep their owners) under a writable layer on a tmpfs of `size` bytes. The
/// tmpfs is mounted at `base` and holds the layer, overlayfs's work directory and the mount
/// point `base/merged`, which is returned; the rootfs is attached at `base/lower` only while
/// the overlay is mounted (overlayfs keeps its own reference).
fn overlay_root(tree: &OwnedFd, base: &Path, size: u64) -> Result<PathBuf, MountError> {
    tmpfs(
        base,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        &format!("mode=0755,size={size}"),
    )?;
    let (lower, upper, work, merged) = (
        base.join("lower"),
        base.join("upper"),
        base.join("work"),
        base.join("merged"),
    );
    mkdir(&lower, 0o700)?;
    mkdir(&upper, 0o755)?;
    mkdir(&work, 0o700)?;
    mkdir(&merged, 0o755)?;
    sys::move_mount_to(tree.as_fd(), &lower).map_err(MountError::AttachRootfs)?;
    // userxattr: in a user namespace overlayfs keeps its metadata in user.* xattrs.
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        lower.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(opts.as_str()),
    )
    .map_err(|source| MountError::Mount {
        fstype: "overlay",
        target: merged.clone(),
        source,
    })?;
    umount2(&lower, MntFlags::MNT_DETACH).map_err(MountError::AttachRootfs)?;
    Ok(merged)
}

/// Makes `root` the process's `/`, detaches the old root, and seals the root read-only
/// unless `writable` (`full` mode's overlay).
pub fn pivot(root: &Path, writable: bool) -> Result<(), MountError> {
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
    let attrs = if writable {
        sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV
    } else {
        sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV
    };
    set_attr(Path::new("/"), attrs, false)
}
