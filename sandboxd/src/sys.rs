//! Safe wrappers for the few system calls nix does not wrap: the new mount API (`open_tree`,
//! `mount_setattr`, `move_mount`), `pidfd_open`, `close_range`, and bringing `lo` up.
//!
//! JUSTIFICATION for `unsafe` here: these calls have no wrapper in nix 0.31, so they go through
//! `libc::syscall`. Every wrapper takes Rust-owned arguments and returns owned fds.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;

/// `open_tree` flag: make a detached copy of the mount tree.
const OPEN_TREE_CLONE: libc::c_uint = 0x1;
/// `move_mount` flag: the source is the fd itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
/// Mount attribute: read-only.
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// Mount attribute: ignore set-user-id bits.
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
/// Mount attribute: no device files.
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
/// Mount attribute: no execution.
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// Mount attribute: an idmapped mount (with `userns_fd`).
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// The kernel's `struct mount_attr` (include/uapi/linux/mount.h), version 0 (32 bytes).
#[repr(C)]
#[derive(Debug, Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cpath(path: &Path) -> Result<CString, Errno> {
    CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)
}

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC [| AT_RECURSIVE])`: a detached
/// copy of the mount at `path`, not following a final symlink.
pub fn open_tree_clone(path: &Path, recursive: bool) -> Result<OwnedFd, Errno> {
    let p = cpath(path)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    flags |= libc::AT_SYMLINK_NOFOLLOW as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `p` is a NUL-terminated string that outlives the call; the kernel only reads it.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, p.as_ptr(), flags) };
    let fd = Errno::result(fd)?;
    // SAFETY: on success open_tree returns a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn mount_setattr_raw(
    dirfd: RawFd,
    path: &CString,
    flags: libc::c_uint,
    attr: &MountAttr,
) -> Result<(), Errno> {
    // SAFETY: `path` and `attr` are valid for the duration of the call and the size passed is
    // the size of `attr`; the kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map(drop)
}

/// Sets `attrs` (MOUNT_ATTR_*) on the mount at `path`, and on every mount below it when
/// `recursive`.
pub fn mount_setattr_path(path: &Path, attrs: u64, recursive: bool) -> Result<(), Errno> {
    let p = cpath(path)?;
    let flags = if recursive {
        libc::AT_RECURSIVE as libc::c_uint
    } else {
        0
    };
    let attr = MountAttr {
        attr_set: attrs,
        ..Default::default()
    };
    mount_setattr_raw(libc::AT_FDCWD, &p, flags, &attr)
}

/// Sets `attrs` on the mount `fd` (from open_tree), and on every mount below it when
/// `recursive`.
pub fn mount_setattr_fd(fd: BorrowedFd<'_>, attrs: u64, recursive: bool) -> Result<(), Errno> {
    let empty = CString::default();
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let attr = MountAttr {
        attr_set: attrs,
        ..Default::default()
    };
    mount_setattr_raw(fd.as_raw_fd(), &empty, flags, &attr)
}

/// Makes the detached mount `fd` an idmapped mount through the user namespace `userns`, adding
/// `attrs` (MOUNT_ATTR_*).
pub fn mount_setattr_idmap(
    fd: BorrowedFd<'_>,
    userns: BorrowedFd<'_>,
    attrs: u64,
) -> Result<(), Errno> {
    let empty = CString::default();
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP | attrs,
        userns_fd: userns.as_raw_fd() as u64,
        ..Default::default()
    };
    mount_setattr_raw(
        fd.as_raw_fd(),
        &empty,
        libc::AT_EMPTY_PATH as libc::c_uint,
        &attr,
    )
}

/// Attaches the detached mount `fd` at `target` (in the caller's mount namespace).
pub fn move_mount_to(fd: BorrowedFd<'_>, target: &Path) -> Result<(), Errno> {
    let empty = CString::default();
    let t = cpath(target)?;
    // SAFETY: both strings are NUL-terminated and outlive the call; the kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

/// `pidfd_open(pid, 0)`: an fd that refers to process `pid` and cannot be confused with a
/// later process that reuses the number.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes two integers and touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = Errno::result(fd)?;
    // SAFETY: on success pidfd_open returns a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Closes every fd from `first` up.
pub fn close_fds_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range only closes descriptors; the caller gives up every fd >= `first`,
    // and no Rust object that owns one of them is used afterwards (the caller execs next).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
    Errno::result(r).map(drop)
}

/// Brings the loopback interface of the current network namespace up (`SIOCSIFFLAGS`).
pub fn loopback_up() -> Result<(), Errno> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq that lives across the call; SIOCGIFFLAGS writes only into it.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: the union member ifru_flags was just filled by SIOCGIFFLAGS.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) })?;
    Ok(())
}

/// The kernel's `struct clone_args` (include/uapi/linux/sched.h), version 2 (88 bytes).
#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (linux >= 5.7): the child starts in the cgroup given by fd.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A fork-like `clone3(flags | CLONE_INTO_CGROUP)` with SIGCHLD as the exit signal: the child
/// starts in the cgroup v2 directory `cgroup` (no migration afterwards). Returns `None` in the
/// child and the child's pid in the parent.
///
/// # Safety
/// As `fork`: the caller must be single-threaded, since the child is a copy of it that goes on
/// running its code.
pub unsafe fn clone3_into_cgroup(flags: u64, cgroup: BorrowedFd<'_>) -> Result<Option<i32>, Errno> {
    let args = CloneArgs {
        flags: flags | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: `args` is valid for the call and its size is passed; the kernel only reads it.
    // No stack is given, so the child runs on a copy of ours (no CLONE_VM), as after fork; the
    // caller guarantees that is sound.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match Errno::result(r)? {
        0 => Ok(None),
        pid => Ok(Some(pid as i32)),
    }
}

/// Sets the window size of the terminal `fd` (`TIOCSWINSZ`).
pub fn set_winsize(fd: RawFd, ws: &libc::winsize) -> Result<(), Errno> {
    // SAFETY: TIOCSWINSZ only reads `ws`, which outlives the call.
    Errno::result(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, ws as *const libc::winsize) })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfd_of_self() {
        let fd = pidfd_open(std::process::id() as i32).unwrap();
        assert!(fd.as_raw_fd() > 2);
        assert_eq!(pidfd_open(-5).unwrap_err(), Errno::EINVAL);
    }

    #[test]
    fn open_tree_of_a_missing_path_fails() {
        assert_eq!(
            open_tree_clone(Path::new("/nonexistent/sandboxd"), false).unwrap_err(),
            Errno::ENOENT
        );
    }
}
