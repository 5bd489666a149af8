//! File access inside a running sandbox: every client path is resolved under the sandbox's root fd.
//!
//! The daemon opens `/proc/<init_pid>/root` once (`O_PATH | O_DIRECTORY`) and passes it as `root`.
//! Every client path goes through `openat2(root, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`,
//! so the kernel treats `root` as `/` for the whole walk: `/x`, and an absolute symlink target
//! `/x`, mean `<root>/x`; `..` at the root is clamped to the root, not refused (`../../etc/passwd`
//! is `<root>/etc/passwd`); magic links (`/proc/<pid>/fd/*`) fail with `ELOOP`; mount points are
//! crossed (no `RESOLVE_NO_XDEV`: `/workspace` and `/tmp` are separate mounts), but only those of
//! the sandbox's own mount tree. `EXDEV` (the kernel saw a `..` escape) is `FilesError::Escape`;
//! `EAGAIN` (a rename raced with the walk) is retried.
//!
//! After the walk only single names (never `.` or `..`) go to plain `*at` calls, relative to a
//! directory fd resolved in the root, and those never follow a symlink. A regular file is opened as
//! `O_PATH`, checked with `fstat`, then reopened through `/proc/self/fd/<n>`: a FIFO or device
//! planted by the sandbox is refused (`FilesError::NotAFile`) without being opened, so it can
//! neither block the daemon nor have open-time side effects. Paths are `&str`; names that are not
//! UTF-8 are listed lossily and cannot be addressed.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{self, Mode};
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};

/// The recursive remove: a walk over directory fds that never follows a symlink.
mod tree;

/// The result of every call here.
pub type Result<T, E = FilesError> = std::result::Result<T, E>;

/// Most bytes read or written per call (fits a 1 MiB frame).
pub const MAX_CHUNK: usize = 512 * 1024;
/// Most entries listed per call.
pub const MAX_LIST: usize = 10_000;
/// Longest path accepted, in bytes.
pub const MAX_PATH: usize = 4096;
/// Deepest directory nesting a recursive remove descends into (it holds one fd per level).
pub const MAX_DEPTH: usize = 256;
/// Permission bits honoured in a requested mode; set-id and sticky bits are dropped.
const MODE_MASK: u32 = 0o777;
/// How often `openat2` is retried when it reports `EAGAIN` (a concurrent rename).
const OPEN_RETRIES: usize = 8;

/// A file's kind and `lstat` as the wire carries them (uid and gid as the host sees them; the
/// caller translates them into the sandbox's ids).
pub use sandbox_proto::{FileKind, FileStat};

/// Why a file operation failed; [`FilesError::code`] gives the stable code for the wire.
///
/// `step` names the system call that failed: `resolve` is `openat2` under the root, `create` is
/// `openat2(O_CREAT | O_EXCL)`, `open` is a reopen through `/proc/self/fd` or an `openat` of a
/// found directory, `readdir` is `fdopendir`/`readdir`; the others are the call of that name.
///
/// Errnos map to variants in `FilesError::from_errno`: `EACCES` and `EPERM` are both
/// `PermissionDenied`, `ENOSPC` and `EDQUOT` both `NoSpace`, unlisted ones `Other`.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The path was refused before any system call.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("{step} {path}: not found")]
    NotFound { step: &'static str, path: String },
    #[error("{step} {path}: not a directory")]
    NotADirectory { step: &'static str, path: String },
    #[error("{step} {path}: is a directory")]
    IsADirectory { step: &'static str, path: String },
    /// A FIFO, socket, device or symlink where a regular file is needed.
    #[error("open {path}: not a regular file")]
    NotAFile { path: String },
    #[error("{step} {path}: permission denied")]
    PermissionDenied { step: &'static str, path: String },
    #[error("{step} {path}: read-only file system")]
    ReadOnly { step: &'static str, path: String },
    #[error("{step} {path}: already exists")]
    Exists { step: &'static str, path: String },
    #[error("{step} {path}: no space left")]
    NoSpace { step: &'static str, path: String },
    #[error("{step} {path}: directory not empty")]
    NotEmpty { step: &'static str, path: String },
    /// `EXDEV`: the kernel saw the walk leave the root.
    #[error("{step} {path}: path escapes the sandbox root")]
    Escape { step: &'static str, path: String },
    /// More than [`MAX_CHUNK`] bytes to write.
    #[error("write {path}: {len} bytes is more than the limit of {MAX_CHUNK}")]
    TooLarge { path: String, len: usize },
    /// More than [`MAX_LIST`] entries in a directory.
    #[error("list {path}: more than {MAX_LIST} entries")]
    TooMany { path: String },
    /// A directory nested deeper than [`MAX_DEPTH`] under the one being removed.
    #[error("remove {path}: nested deeper than {MAX_DEPTH} levels")]
    TooDeep { path: String },
    #[error("{step} {path}")]
    Other {
        step: &'static str,
        path: String,
        #[source]
        source: Errno,
    },
}

impl FilesError {
    /// A stable short code for the wire protocol.
    pub fn code(&self) -> &'static str {
        match self {
            FilesError::InvalidPath { .. } => "invalid_path",
            FilesError::NotFound { .. } => "not_found",
            FilesError::NotADirectory { .. } => "not_a_directory",
            FilesError::IsADirectory { .. } => "is_a_directory",
            FilesError::NotAFile { .. } => "not_a_file",
            FilesError::PermissionDenied { .. } => "permission_denied",
            FilesError::ReadOnly { .. } => "read_only",
            FilesError::Exists { .. } => "exists",
            FilesError::NoSpace { .. } => "no_space",
            FilesError::NotEmpty { .. } => "not_empty",
            FilesError::Escape { .. } => "escape",
            FilesError::TooLarge { .. } => "too_large",
            FilesError::TooMany { .. } => "too_many",
            FilesError::TooDeep { .. } => "too_deep",
            FilesError::Other { .. } => "os_error",
        }
    }

    /// Maps the errno of `step` on `path` to its variant.
    fn from_errno(errno: Errno, step: &'static str, path: &str) -> Self {
        let path = path.to_owned();
        match errno {
            Errno::ENOENT => FilesError::NotFound { step, path },
            Errno::ENOTDIR => FilesError::NotADirectory { step, path },
            Errno::EISDIR => FilesError::IsADirectory { step, path },
            Errno::EACCES | Errno::EPERM => FilesError::PermissionDenied { step, path },
            Errno::EROFS => FilesError::ReadOnly { step, path },
            Errno::EEXIST => FilesError::Exists { step, path },
            Errno::ENOSPC | Errno::EDQUOT => FilesError::NoSpace { step, path },
            Errno::ENOTEMPTY => FilesError::NotEmpty { step, path },
            Errno::EXDEV => FilesError::Escape { step, path },
            source => FilesError::Other { step, path, source },
        }
    }

    /// Maps an `io::Error` from std's file calls the same way.
    fn from_io(err: &io::Error, step: &'static str, path: &str) -> Self {
        let errno = err.raw_os_error().map_or(Errno::EIO, Errno::from_raw);
        Self::from_errno(errno, step, path)
    }
}

/// `map_err` adapter: `.map_err(on("stat", path))`.
fn on<'a>(step: &'static str, path: &'a str) -> impl Fn(Errno) -> FilesError + 'a {
    move |errno| FilesError::from_errno(errno, step, path)
}

/// `lstat` of `path`: a final symlink is reported as [`FileKind::Symlink`], not followed.
pub fn stat(root: BorrowedFd<'_>, path: &str) -> Result<FileStat> {
    check_path(path)?;
    // O_PATH | O_NOFOLLOW gives an fd for the symlink itself, which fstat then describes.
    let fd = resolve(root, path, OFlag::O_PATH | OFlag::O_NOFOLLOW, Mode::empty())?;
    let st = stat::fstat(&fd).map_err(on("stat", path))?;
    Ok(file_stat(path.to_owned(), &st))
}

/// Reads up to `len` bytes (capped at [`MAX_CHUNK`]) from `offset`; shorter or empty at EOF.
///
/// Symlinks are followed, but only inside the root.
pub fn read(root: BorrowedFd<'_>, path: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
    check_path(path)?;
    let file = open_regular(root, path, OFlag::O_RDONLY)?;
    let mut buf = vec![0u8; len.min(MAX_CHUNK)];
    let mut filled = 0;
    let mut pos = offset;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], pos) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                pos = pos.saturating_add(n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FilesError::from_io(&e, "read", path)),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Writes `data` (at most [`MAX_CHUNK`] bytes) at `offset`.
///
/// With `create`, a missing file is created with `mode & 0o777` (the daemon's umask does not
/// apply) and owned by `owner` (host uid, gid); an existing file keeps its owner and mode. A final
/// symlink is followed inside the root for an existing target, but a file is never created through
/// a symlink: a dangling one gives [`FilesError::NotFound`]. With `truncate`, the file is cut to
/// zero length before the write. If `fchown` or `fchmod` fails after creating, the new file is left
/// in place, owned by the daemon.
#[allow(clippy::too_many_arguments)]
pub fn write(
    root: BorrowedFd<'_>,
    path: &str,
    offset: u64,
    data: &[u8],
    create: bool,
    truncate: bool,
    mode: u32,
    owner: (u32, u32),
) -> Result<()> {
    check_path(path)?;
    split_last(path)?;
    if data.len() > MAX_CHUNK {
        return Err(FilesError::TooLarge {
            path: path.to_owned(),
            len: data.len(),
        });
    }
    let file = if create {
        match create_new(root, path, mode, owner) {
            Err(FilesError::Exists { .. }) => open_regular(root, path, OFlag::O_WRONLY)?,
            created => created?,
        }
    } else {
        open_regular(root, path, OFlag::O_WRONLY)?
    };
    if truncate {
        file.set_len(0)
            .map_err(|e| FilesError::from_io(&e, "truncate", path))?;
    }
    file.write_all_at(data, offset)
        .map_err(|e| FilesError::from_io(&e, "write", path))
}

/// Lists the directory at `path` (following symlinks inside the root), sorted by name.
///
/// Entries are `lstat`ed, so symlinks are reported as such. More than [`MAX_LIST`] entries give
/// [`FilesError::TooMany`]; an entry removed between `readdir` and `fstatat` is left out.
pub fn list(root: BorrowedFd<'_>, path: &str) -> Result<Vec<FileStat>> {
    check_path(path)?;
    let fd = resolve(
        root,
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    )?;
    let mut dir = Dir::from_fd(fd).map_err(on("readdir", path))?;
    let mut names = read_names(&mut dir, Some(MAX_LIST), path)?;
    names.sort();
    let prefix = path.trim_end_matches('/');
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let shown = format!("{prefix}/{}", name.to_string_lossy());
        match stat::fstatat(&dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => out.push(file_stat(shown, &st)),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(FilesError::from_errno(e, "stat", &shown)),
        }
    }
    Ok(out)
}

/// Creates the directory `path` with `mode & 0o777`, owned by `owner`.
///
/// With `parents`, missing ancestors are created the same way and an existing directory is not an
/// error (`mkdir -p`). Each ancestor is resolved afresh from the root, so `..` and symlinks among
/// them stay inside it. `mkdirat` returns no fd, so the new directory is reopened with
/// `O_NOFOLLOW` to set its owner and mode: a symlink swapped in meanwhile is refused, but a
/// directory swapped in meanwhile (by the sandbox, inside its own tree) would be chowned instead.
pub fn mkdir(
    root: BorrowedFd<'_>,
    path: &str,
    mode: u32,
    parents: bool,
    owner: (u32, u32),
) -> Result<()> {
    check_path(path)?;
    if !parents {
        let (parent, name) = split_last(path)?;
        return mkdir_one(root, parent, name, mode, owner, path);
    }
    let comps: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    for i in 0..comps.len() {
        let prefix = comps[..=i].join("/");
        match open_dir(root, &prefix) {
            Ok(_) => continue,
            Err(FilesError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let parent = comps[..i].join("/");
        match mkdir_one(root, &parent, comps[i], mode, owner, &prefix) {
            // Created meanwhile by someone else; checked to be a directory below or next round.
            Ok(()) | Err(FilesError::Exists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    open_dir(root, path).map(drop)
}

/// Removes `path`; a final symlink is removed itself, never followed.
///
/// A directory needs `recursive` unless it is empty. The recursive walk holds an fd per level and
/// only ever calls `openat(O_NOFOLLOW | O_DIRECTORY)`, `fstatat(AT_SYMLINK_NOFOLLOW)` and
/// `unlinkat` on single names relative to those fds, so symlinks inside the tree (even to
/// directories outside the root) are unlinked, not followed. It crosses mount points inside the
/// sandbox (their contents are removed; the mount point itself then fails with `EBUSY`).
/// The root itself, and paths ending in `.` or `..`, are refused. A failure part way through
/// (say [`FilesError::TooDeep`]) leaves removed what was already removed.
pub fn remove(root: BorrowedFd<'_>, path: &str, recursive: bool) -> Result<()> {
    check_path(path)?;
    let (parent, name) = split_last(path)?;
    let dir = open_dir(root, parent)?;
    let st = stat::fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(on("stat", path))?;
    if kind_of(st.st_mode) != FileKind::Dir {
        return unistd::unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir)
            .map_err(on("unlink", path));
    }
    if !recursive {
        return unistd::unlinkat(&dir, name, UnlinkatFlags::RemoveDir).map_err(on("rmdir", path));
    }
    let name = CString::new(name).map_err(|_| invalid(path, "contains a nul byte"))?;
    tree::remove_tree(dir.as_fd(), name, path.trim_end_matches('/').to_owned())
}

/// Reads the names in `dir` other than `.` and `..`; more than `limit` gives `TooMany`.
fn read_names(dir: &mut Dir, limit: Option<usize>, path: &str) -> Result<Vec<CString>> {
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(on("readdir", path))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        if limit.is_some_and(|max| names.len() >= max) {
            return Err(FilesError::TooMany {
                path: path.to_owned(),
            });
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// Creates `path` exclusively, then sets its owner and exact mode through the new fd.
fn create_new(root: BorrowedFd<'_>, path: &str, mode: u32, owner: (u32, u32)) -> Result<File> {
    // O_EXCL also refuses a final symlink, so nothing is ever created through one. The file starts
    // as 0600 so nobody else can open it before it has its owner.
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOCTTY;
    let fd = resolve(root, path, flags, Mode::S_IRUSR | Mode::S_IWUSR)?;
    set_owner_mode(&fd, mode, owner, path)?;
    Ok(File::from(fd))
}

/// `fchown` then `fchmod` (in that order: `fchown` clears set-id bits).
fn set_owner_mode(fd: &OwnedFd, mode: u32, owner: (u32, u32), path: &str) -> Result<()> {
    unistd::fchown(
        fd,
        Some(Uid::from_raw(owner.0)),
        Some(Gid::from_raw(owner.1)),
    )
    .map_err(on("chown", path))?;
    stat::fchmod(fd, Mode::from_bits_truncate(mode & MODE_MASK)).map_err(on("chmod", path))
}

/// Creates directory `name` in the directory `parent` (resolved in the root), then sets owner
/// and mode.
fn mkdir_one(
    root: BorrowedFd<'_>,
    parent: &str,
    name: &str,
    mode: u32,
    owner: (u32, u32),
    path: &str,
) -> Result<()> {
    let parent = if parent.is_empty() { "/" } else { parent };
    let dir = open_dir(root, parent)?;
    stat::mkdirat(&dir, name, Mode::S_IRWXU).map_err(on("mkdir", path))?;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = fcntl::openat(&dir, name, flags, Mode::empty()).map_err(on("open", path))?;
    set_owner_mode(&fd, mode, owner, path)
}

/// Opens a regular file for `access` (`O_RDONLY` or `O_WRONLY`), following symlinks in the root.
fn open_regular(root: BorrowedFd<'_>, path: &str, access: OFlag) -> Result<File> {
    let pfd = resolve(root, path, OFlag::O_PATH, Mode::empty())?;
    let st = stat::fstat(&pfd).map_err(on("stat", path))?;
    match kind_of(st.st_mode) {
        FileKind::File => {}
        FileKind::Dir => return Err(FilesError::from_errno(Errno::EISDIR, "open", path)),
        FileKind::Symlink | FileKind::Other => {
            return Err(FilesError::NotAFile {
                path: path.to_owned(),
            })
        }
    }
    // Reopening the checked O_PATH fd (not the path) means the file opened is the one checked.
    let proc = format!("/proc/self/fd/{}", pfd.as_raw_fd());
    let flags = access | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    let fd = fcntl::open(proc.as_str(), flags, Mode::empty()).map_err(on("open", path))?;
    Ok(File::from(fd))
}

/// An `O_PATH` fd for the directory `path` under the root, following symlinks inside it.
fn open_dir(root: BorrowedFd<'_>, path: &str) -> Result<OwnedFd> {
    resolve(
        root,
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
}

/// `openat2(root, path, flags | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`.
///
/// `mode` must be empty unless `flags` has `O_CREAT` (the kernel refuses it otherwise).
fn resolve(root: BorrowedFd<'_>, path: &str, flags: OFlag, mode: Mode) -> Result<OwnedFd> {
    let step = if flags.contains(OFlag::O_CREAT) {
        "create"
    } else {
        "resolve"
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut tries = 0;
    loop {
        match fcntl::openat2(root, path, how) {
            // EAGAIN: a rename raced with a `..` in the walk and the kernel could not prove it
            // stayed inside; a retry is what openat2(2) advises.
            Err(Errno::EAGAIN | Errno::EINTR) if tries < OPEN_RETRIES => tries += 1,
            res => return res.map_err(on(step, path)),
        }
    }
}

/// Checks the rules every client path must meet, before any system call.
fn check_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(invalid(path, "empty"));
    }
    if path.len() > MAX_PATH {
        return Err(invalid(path, "longer than 4096 bytes"));
    }
    if path.contains('\0') {
        return Err(invalid(path, "contains a nul byte"));
    }
    Ok(())
}

/// Splits `path` into its parent and last name; refuses the root and a last `.` or `..`.
fn split_last(path: &str) -> Result<(&str, &str)> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = match trimmed.rfind('/') {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(invalid(path, "names the root or ends in . or .."));
    }
    Ok((if parent.is_empty() { "/" } else { parent }, name))
}

fn invalid(path: &str, reason: &'static str) -> FilesError {
    FilesError::InvalidPath {
        path: path.to_owned(),
        reason,
    }
}

fn kind_of(mode: libc::mode_t) -> FileKind {
    match mode & libc::S_IFMT {
        libc::S_IFREG => FileKind::File,
        libc::S_IFDIR => FileKind::Dir,
        libc::S_IFLNK => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

fn file_stat(path: String, st: &stat::FileStat) -> FileStat {
    FileStat {
        path,
        kind: kind_of(st.st_mode),
        size: u64::try_from(st.st_size).unwrap_or(0),
        mode: st.st_mode & 0o7777,
        mtime_unix_ms: st
            .st_mtime
            .saturating_mul(1000)
            .saturating_add(st.st_mtime_nsec / 1_000_000),
        uid: st.st_uid,
        gid: st.st_gid,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::os::unix::fs::{symlink, MetadataExt};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::{env, fmt::Debug, fs};

    use super::*;

    /// A fresh directory under /tmp, removed on drop.
    pub(super) struct TempDir(pub(super) PathBuf);

    impl TempDir {
        pub(super) fn new(tag: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = env::temp_dir().join(format!("files-{tag}-{}-{n}", std::process::id()));
            fs::create_dir(&path).unwrap();
            TempDir(path)
        }

        /// The directory opened the way the daemon opens `/proc/<pid>/root`.
        pub(super) fn open(&self) -> OwnedFd {
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            fcntl::open(self.0.as_path(), flags, Mode::empty()).unwrap()
        }

        pub(super) fn join(&self, path: impl AsRef<Path>) -> PathBuf {
            self.0.join(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// This process's own ids: fchown to them needs no privilege.
    pub(super) fn me() -> (u32, u32) {
        (Uid::effective().as_raw(), Gid::effective().as_raw())
    }

    /// Creates or overwrites `path` with `data`, mode 0644.
    pub(super) fn put(r: BorrowedFd<'_>, path: &str, data: &[u8]) -> Result<()> {
        write(r, path, 0, data, true, true, 0o644, me())
    }

    /// Asserts that `res` failed with the error code `want`.
    #[track_caller]
    pub(super) fn fails<T: Debug>(res: Result<T>, want: &str) {
        let err = res.unwrap_err();
        assert_eq!(err.code(), want, "{err}");
    }

    #[test]
    fn write_then_read_with_offsets() {
        let tmp = TempDir::new("rw");
        let root = tmp.open();
        let r = root.as_fd();
        put(r, "/a.txt", b"hello world").unwrap();
        write(r, "a.txt", 6, b"there", false, false, 0, me()).unwrap();
        assert_eq!(read(r, "/a.txt", 0, 100).unwrap(), b"hello there");
        assert_eq!(read(r, "a.txt", 6, 3).unwrap(), b"the");
        assert_eq!(read(r, "a.txt", 11, 10).unwrap(), b"");
        assert_eq!(read(r, "a.txt", 1 << 40, 10).unwrap(), b"");
        // Past the end leaves a hole of zeros; truncate starts over; the mode stays.
        write(r, "a.txt", 13, b"!", true, false, 0o600, me()).unwrap();
        assert_eq!(read(r, "a.txt", 0, 100).unwrap(), b"hello there\0\0!");
        write(r, "a.txt", 0, b"new", true, true, 0o600, me()).unwrap();
        assert_eq!(read(r, "a.txt", 0, 100).unwrap(), b"new");
        assert_eq!(stat(r, "a.txt").unwrap().mode, 0o644);
        fails(write(r, "b", 0, b"x", false, false, 0, me()), "not_found");
        fails(read(r, "/", 0, 1), "is_a_directory");
    }

    #[test]
    fn fifty_megabytes_in_chunks() {
        let tmp = TempDir::new("big");
        let root = tmp.open();
        let r = root.as_fd();
        let mut x = 0x2545_f491_u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        };
        let data: Vec<u8> = (0..50 << 20).map(|_| next()).collect();
        for (i, chunk) in data.chunks(MAX_CHUNK).enumerate() {
            let offset = (i * MAX_CHUNK) as u64;
            write(r, "big", offset, chunk, true, false, 0o600, me()).unwrap();
        }
        assert_eq!(fs::metadata(tmp.join("big")).unwrap().len(), 50 << 20);
        let mut back = Vec::with_capacity(data.len());
        loop {
            // Asking for more than MAX_CHUNK gets MAX_CHUNK.
            let chunk = read(r, "big", back.len() as u64, usize::MAX).unwrap();
            assert!(chunk.len() <= MAX_CHUNK);
            if chunk.is_empty() {
                break;
            }
            back.extend_from_slice(&chunk);
        }
        assert!(back == data, "read back differs");
        fails(put(r, "big", &data[..=MAX_CHUNK]), "too_large");
    }

    #[test]
    fn list_reports_kinds_sizes_modes() {
        let tmp = TempDir::new("list");
        let root = tmp.open();
        let r = root.as_fd();
        mkdir(r, "/d", 0o750, false, me()).unwrap();
        write(r, "/d/f", 0, b"12345", true, false, 0o640, me()).unwrap();
        symlink("/nowhere", tmp.join("d/l")).unwrap();
        unistd::mkfifo(&tmp.join("d/p"), Mode::S_IRUSR).unwrap();
        let got: Vec<_> = list(r, "/d/")
            .unwrap()
            .into_iter()
            .map(|s| (s.path, s.kind, s.size, s.mode))
            .collect();
        let want = [
            ("/d/f".to_owned(), FileKind::File, 5, 0o640),
            ("/d/l".to_owned(), FileKind::Symlink, 8, 0o777),
            ("/d/p".to_owned(), FileKind::Other, 0, 0o400),
        ];
        assert_eq!(got, want);
        let top = list(r, "/").unwrap();
        assert_eq!(
            (top.len(), top[0].kind, top[0].mode),
            (1, FileKind::Dir, 0o750)
        );
        fails(list(r, "/d/f"), "not_a_directory");
        // A FIFO is refused without being opened (opening it would block).
        fails(read(r, "/d/p", 0, 1), "not_a_file");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let now_ms = i64::try_from(now.as_millis()).unwrap();
        assert!((now_ms - stat(r, "d/f").unwrap().mtime_unix_ms).abs() < 60_000);
        for i in 0..MAX_LIST {
            fs::write(tmp.join(i.to_string()), b"").unwrap();
        }
        fails(list(r, "/"), "too_many");
        fs::remove_file(tmp.join("0")).unwrap();
        assert_eq!(list(r, "/").unwrap().len(), MAX_LIST);
    }

    #[test]
    fn mkdir_with_and_without_parents() {
        let tmp = TempDir::new("mkdir");
        let root = tmp.open();
        let r = root.as_fd();
        fails(mkdir(r, "a/b", 0o755, false, me()), "not_found");
        mkdir(r, "/a/./b/../b/c/", 0o705, true, me()).unwrap();
        mkdir(r, "/a/b/c", 0o705, true, me()).unwrap();
        mkdir(r, "/", 0o705, true, me()).unwrap();
        assert_eq!(
            fs::metadata(tmp.join("a/b/c")).unwrap().mode() & 0o7777,
            0o705
        );
        fails(mkdir(r, "/a", 0o755, false, me()), "exists");
        put(r, "/a/f", b"").unwrap();
        fails(mkdir(r, "/a/f/g", 0o755, true, me()), "not_a_directory");
        fails(mkdir(r, "/a/f", 0o755, true, me()), "not_a_directory");
    }

    #[test]
    fn created_files_and_dirs_get_the_owner() {
        if !Uid::effective().is_root() {
            assert!(
                env::var_os("SANDBOX_TESTS_MUST_RUN").is_none(),
                "needs root"
            );
            eprintln!("skipped: needs root for fchown");
            return;
        }
        let tmp = TempDir::new("owner");
        let root = tmp.open();
        let r = root.as_fd();
        write(r, "/f", 0, b"x", true, false, 0o4755, (12345, 12346)).unwrap();
        mkdir(r, "/d/e", 0o1777, true, (12345, 12346)).unwrap();
        for (path, mode) in [("f", 0o755), ("d", 0o777), ("d/e", 0o777)] {
            let meta = fs::symlink_metadata(tmp.join(path)).unwrap();
            let got = (meta.uid(), meta.gid(), meta.mode() & 0o7777);
            assert_eq!(got, (12345, 12346, mode), "{path}");
        }
        let s = stat(r, "/f").unwrap();
        assert_eq!((s.uid, s.gid), (12345, 12346));
    }

    #[test]
    fn symlinks_and_dotdot_stay_inside_the_root() {
        let decoy = TempDir::new("decoy");
        let secret = decoy.join("secret");
        fs::write(&secret, b"secret").unwrap();
        let tmp = TempDir::new("escape");
        let root = tmp.open();
        let r = root.as_fd();
        fs::create_dir(tmp.join("inside")).unwrap();
        symlink(&secret, tmp.join("inside/evil")).unwrap();
        symlink("../../../..", tmp.join("inside/up")).unwrap();
        symlink(decoy.join("new"), tmp.join("inside/dangling")).unwrap();
        let secret_str = secret.to_str().unwrap();
        let dotdot = format!("../../../../..{secret_str}");
        let via_up = format!("inside/up{secret_str}");
        let paths = ["inside/evil", &dotdot, &via_up];
        for path in paths {
            fails(read(r, path, 0, 100), "not_found");
            fails(put(r, path, b"pwned"), "not_found");
        }
        assert_eq!(stat(r, "inside/evil").unwrap().kind, FileKind::Symlink);
        assert_eq!(
            list(r, "inside/up").unwrap().len(),
            1,
            "up is the root itself"
        );
        // Writing through a dangling symlink creates nothing, inside or out.
        fails(put(r, "inside/dangling", b"x"), "not_found");
        // The same absolute target, planted inside the root, is what the links reach.
        let mirror = tmp.join(secret.strip_prefix("/").unwrap());
        fs::create_dir_all(mirror.parent().unwrap()).unwrap();
        fs::write(&mirror, b"inside").unwrap();
        for path in paths {
            assert_eq!(read(r, path, 0, 100).unwrap(), b"inside", "{path}");
        }
        write(r, "inside/evil", 0, b"INSIDE", false, false, 0, me()).unwrap();
        assert_eq!(fs::read(&mirror).unwrap(), b"INSIDE");
        assert_eq!(fs::read(&secret).unwrap(), b"secret");
        assert_eq!(
            fs::read_dir(&decoy.0).unwrap().count(),
            1,
            "nothing created outside"
        );
    }

    #[test]
    fn paths_are_checked_before_any_syscall() {
        let tmp = TempDir::new("paths");
        let root = tmp.open();
        let r = root.as_fd();
        let long = "a/".repeat(MAX_PATH / 2 + 1);
        for path in ["", "a\0b", long.as_str()] {
            fails(stat(r, path), "invalid_path");
        }
        for path in ["/", ".", "/a/.."] {
            fails(put(r, path, b""), "invalid_path");
        }
    }

    #[test]
    fn errno_maps_to_variant_and_code() {
        use Errno::*;
        let c = |errno| FilesError::from_errno(errno, "write", "/x").code();
        let errnos = [
            ENOENT, ENOTDIR, EISDIR, EACCES, EPERM, EROFS, EEXIST, ENOSPC, EDQUOT, ENOTEMPTY,
        ];
        let want = [
            "not_found",
            "not_a_directory",
            "is_a_directory",
            "permission_denied",
            "permission_denied",
            "read_only",
            "exists",
            "no_space",
            "no_space",
            "not_empty",
        ];
        assert_eq!(errnos.map(c), want);
        assert_eq!((c(EXDEV), c(ELOOP)), ("escape", "os_error"));
        let err = FilesError::from_errno(Errno::EROFS, "create", "/etc/x");
        assert_eq!(err.to_string(), "create /etc/x: read-only file system");
        assert!(matches!(err, FilesError::ReadOnly { step: "create", .. }));
    }
}
