//! The recursive remove: empties a directory through fds, one level per fd, never following a
//! symlink.
//!
//! Every call takes a single name relative to an open directory fd: `openat(O_NOFOLLOW |
//! O_DIRECTORY)` to descend, `fstatat(AT_SYMLINK_NOFOLLOW)` to decide, `unlinkat` to remove. No
//! path is ever re-resolved, so a symlink in the tree (even to a directory outside the root) is
//! unlinked, and a directory swapped for a symlink mid-walk makes `openat` fail instead of
//! walking out. Mount points inside the sandbox are crossed: their contents are removed and the
//! mount point itself then fails with `EBUSY`.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, Mode};
use nix::unistd::{self, UnlinkatFlags};

use super::{kind_of, on, read_names, FileKind, FilesError, Result, MAX_DEPTH};

/// One directory being emptied by [`remove_tree`].
#[derive(Debug)]
struct Frame {
    dir: Dir,
    /// Its name in the parent frame's directory, and its path for error messages.
    name: CString,
    shown: String,
    /// Entries still to remove.
    pending: Vec<CString>,
}

impl Frame {
    fn open(parent: BorrowedFd<'_>, name: CString, shown: String) -> Result<Self> {
        // O_NOFOLLOW: if the sandbox swapped the directory for a symlink since fstatat, this fails
        // instead of walking into the link's target.
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = fcntl::openat(parent, name.as_c_str(), flags, Mode::empty())
            .map_err(on("open", &shown))?;
        let mut dir = Dir::from_fd(fd).map_err(on("readdir", &shown))?;
        let pending = read_names(&mut dir, None, &shown)?;
        Ok(Frame {
            dir,
            name,
            shown,
            pending,
        })
    }
}

/// Empties and removes the directory `name` in `parent`, depth first, without recursion.
pub(super) fn remove_tree(parent: BorrowedFd<'_>, name: CString, shown: String) -> Result<()> {
    let mut stack = vec![Frame::open(parent, name, shown)?];
    loop {
        let depth = stack.len();
        let Some(top) = stack.last_mut() else {
            return Ok(());
        };
        let Some(child) = top.pending.pop() else {
            let done = stack
                .pop()
                .expect("the loop checked the stack is not empty");
            let dirfd = stack.last().map_or(parent, |f| f.dir.as_fd());
            match unistd::unlinkat(dirfd, done.name.as_c_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => continue,
                Err(e) => return Err(FilesError::from_errno(e, "rmdir", &done.shown)),
            }
        };
        let shown = format!("{}/{}", top.shown, child.to_string_lossy());
        let st = match stat::fstatat(&top.dir, child.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(FilesError::from_errno(e, "stat", &shown)),
        };
        if kind_of(st.st_mode) == FileKind::Dir {
            if depth >= MAX_DEPTH {
                return Err(FilesError::TooDeep { path: shown });
            }
            let frame = Frame::open(top.dir.as_fd(), child, shown)?;
            stack.push(frame);
            continue;
        }
        match unistd::unlinkat(&top.dir, child.as_c_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(FilesError::from_errno(e, "unlink", &shown)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::fd::AsFd;
    use std::os::unix::fs::symlink;

    use super::super::tests::{fails, me, put, TempDir};
    use super::super::{mkdir, remove, MAX_DEPTH};

    #[test]
    fn remove_does_not_follow_symlinks_out_of_the_root() {
        let outside = TempDir::new("outside");
        fs::write(outside.join("keep"), b"keep").unwrap();
        let tmp = TempDir::new("rm");
        let root = tmp.open();
        let r = root.as_fd();
        mkdir(r, "/t/sub/deeper", 0o755, true, me()).unwrap();
        put(r, "/t/sub/deeper/f", b"x").unwrap();
        symlink(&outside.0, tmp.join("t/sub/abs")).unwrap();
        symlink("../../../../../..", tmp.join("t/sub/up")).unwrap();
        symlink(&outside.0, tmp.join("link")).unwrap();
        fails(remove(r, "/t", false), "not_empty");
        remove(r, "/t/", true).unwrap();
        remove(r, "/link", true).unwrap();
        assert!(!tmp.join("t").exists() && !tmp.join("link").exists());
        assert_eq!(fs::read(outside.join("keep")).unwrap(), b"keep");
        for path in ["/", "", ".", "//", "/t/..", "a/."] {
            fails(remove(r, path, true), "invalid_path");
        }
        fails(remove(r, "/t", true), "not_found");
        mkdir(r, "e", 0o755, false, me()).unwrap();
        remove(r, "e", false).unwrap();
        mkdir(r, &"/d".repeat(MAX_DEPTH + 1), 0o755, true, me()).unwrap();
        fails(remove(r, "/d", true), "too_deep");
    }
}
