//! Recursive copies between a host directory and a sandbox directory: regular files,
//! directories and symlinks, never following a symlink.
//!
//! The protocol has no call to create or read a symlink, so:
//! - [`Sandbox::upload_dir`] skips host symlinks (reported in [`Transfer::skipped`]): it cannot
//!   recreate them, and following them could copy files from outside the directory;
//! - [`Sandbox::download_dir`] learns each symlink's target by running `readlink -z` in the
//!   sandbox (one exec per batch of links, so it shows in the sandbox's exec list), then
//!   recreates the link on the host as it is. A link whose target cannot be read (no `readlink`
//!   in the sandbox's root filesystem, a paused sandbox) is reported in [`Transfer::failed`].
//!
//! An entry that cannot be copied (a host source file that cannot be read, a `file_error` from
//! the daemon such as `permission_denied`) is reported in [`Transfer::failed`] and the copy goes
//! on, as `cp -r` does; any other failure ends the copy with an error.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sandbox_proto::{ErrorCode, FileKind};

use crate::files::PERMISSION_BITS;
use crate::{Error, Sandbox};

/// Symlinks resolved per `readlink` exec.
const READLINK_BATCH: usize = 128;
/// How long one `readlink` exec may take.
const READLINK_PATIENCE: Duration = Duration::from_secs(30);

/// What a recursive copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Regular files copied.
    pub files: u64,
    /// Directories made (the top one included).
    pub dirs: u64,
    /// Symlinks recreated.
    pub symlinks: u64,
    /// Bytes of file content copied.
    pub bytes: u64,
    /// Entries left out by design (host symlinks on upload, special files, names that are not
    /// UTF-8), and why.
    pub skipped: Vec<Skipped>,
    /// Entries that could not be copied, and the error.
    pub failed: Vec<Skipped>,
}

/// An entry a recursive copy left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its path (on the side it was read from).
    pub path: String,
    /// Why it was left out.
    pub reason: String,
}

impl Transfer {
    fn skip(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            path: path.into(),
            reason: reason.into(),
        });
    }

    /// Records `err` as the failure of the entry at `path` if it concerns that entry only;
    /// otherwise returns it.
    fn fail(&mut self, path: impl Into<String>, err: Error) -> Result<(), Error> {
        if !matches!(err, Error::Host { .. }) && err.code() != Some(ErrorCode::FileError) {
            return Err(err);
        }
        let mut reason = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        self.failed.push(Skipped {
            path: path.into(),
            reason,
        });
        Ok(())
    }
}

impl Sandbox {
    /// Copies the host directory `host_dir` (a symlink named here is followed) and everything
    /// in it to `sandbox_dir`, which is made (with its parents) if missing. Regular files keep
    /// their permission bits; directories keep theirs plus owner `rwx`. Symlinks and special
    /// files inside are skipped and listed in [`Transfer::skipped`]; so are names that are not
    /// UTF-8. Existing sandbox files are overwritten.
    pub async fn upload_dir(
        &self,
        host_dir: impl AsRef<Path>,
        sandbox_dir: &str,
    ) -> Result<Transfer, Error> {
        let host_dir = host_dir.as_ref();
        let meta = tokio::fs::metadata(host_dir)
            .await
            .map_err(Error::host("stat", host_dir))?;
        if !meta.is_dir() {
            let err = io::Error::new(io::ErrorKind::NotADirectory, "not a directory");
            return Err(Error::host("list", host_dir)(err));
        }
        self.mkdir_mode(sandbox_dir, true, dir_mode(meta.mode()))
            .await?;
        let mut t = Transfer {
            dirs: 1,
            ..Transfer::default()
        };
        let mut stack = vec![(host_dir.to_path_buf(), sandbox_dir.to_owned())];
        while let Some((hdir, sdir)) = stack.pop() {
            let entries = match host_entries(&hdir).await {
                Ok(entries) => entries,
                Err(err) if hdir != host_dir => {
                    t.fail(hdir.display().to_string(), err)?;
                    continue;
                }
                Err(err) => return Err(err),
            };
            for (name, hpath) in entries {
                let shown = hpath.display().to_string();
                let Some(name) = name.to_str() else {
                    t.skip(shown, "the name is not UTF-8");
                    continue;
                };
                let spath = join(&sdir, name);
                let meta = match tokio::fs::symlink_metadata(&hpath).await {
                    Ok(meta) => meta,
                    Err(err) => {
                        t.fail(shown, Error::host("stat", &hpath)(err))?;
                        continue;
                    }
                };
                let kind = meta.file_type();
                if kind.is_dir() {
                    match self.mkdir_mode(&spath, true, dir_mode(meta.mode())).await {
                        Ok(()) => {
                            t.dirs += 1;
                            stack.push((hpath, spath));
                        }
                        Err(err) => t.fail(shown, err)?,
                    }
                } else if kind.is_file() {
                    let mode = meta.mode() & PERMISSION_BITS;
                    match self.upload_to(&hpath, &spath, mode).await {
                        Ok(bytes) => {
                            t.bytes += bytes;
                            t.files += 1;
                        }
                        Err(err) => t.fail(shown, err)?,
                    }
                } else if kind.is_symlink() {
                    t.skip(shown, "a symlink (symlinks are not uploaded)");
                } else {
                    t.skip(shown, "not a regular file, directory or symlink");
                }
            }
        }
        Ok(t)
    }

    /// Copies the sandbox directory `sandbox_dir` and everything in it to `host_dir`, which is
    /// made (with its parents) if missing. Files and directories keep their permission bits
    /// (never set-id or sticky bits; the umask applies to files); symlinks are recreated as
    /// symlinks with the same target, never followed (see the module docs for how their
    /// targets are read); other kinds are skipped. Existing host files and symlinks in the way
    /// are replaced, never written through; an existing directory is merged into.
    pub async fn download_dir(
        &self,
        sandbox_dir: &str,
        host_dir: impl AsRef<Path>,
    ) -> Result<Transfer, Error> {
        let host_dir = host_dir.as_ref();
        // The first listing comes before the host is touched: a missing source leaves it alone.
        let mut listing = Some(self.list(sandbox_dir).await?);
        tokio::fs::create_dir_all(host_dir)
            .await
            .map_err(Error::host("mkdir", host_dir))?;
        let mut t = Transfer {
            dirs: 1,
            ..Transfer::default()
        };
        let mut dir_modes = Vec::new();
        let mut links = Vec::new();
        let mut stack = vec![(sandbox_dir.to_owned(), host_dir.to_path_buf())];
        while let Some((sdir, hdir)) = stack.pop() {
            let entries = match listing.take() {
                Some(entries) => entries,
                None => match self.list(&sdir).await {
                    Ok(entries) => entries,
                    Err(err) => {
                        t.fail(sdir, err)?;
                        continue;
                    }
                },
            };
            let mut seen = HashSet::new();
            for entry in entries {
                let name = entry_name(&entry.path)?;
                if !seen.insert(name.to_owned()) {
                    return Err(Error::Protocol(format!("{sdir} listed {name:?} twice")));
                }
                let (spath, hpath) = (join(&sdir, name), hdir.join(name));
                match entry.kind {
                    FileKind::Dir => {
                        make_host_dir(&hpath).await?;
                        dir_modes.push((hpath.clone(), entry.mode));
                        t.dirs += 1;
                        stack.push((spath, hpath));
                    }
                    FileKind::File => match self.download_to(&spath, &hpath, entry.mode).await {
                        Ok(bytes) => {
                            t.bytes += bytes;
                            t.files += 1;
                        }
                        // Host-side failures (the destination) end the copy.
                        Err(err @ Error::Host { .. }) => return Err(err),
                        Err(err) => t.fail(spath, err)?,
                    },
                    FileKind::Symlink => links.push((spath, hpath)),
                    FileKind::Other => t.skip(spath, "not a regular file, directory or symlink"),
                }
            }
        }
        // Links last, so no file is written below one made here.
        let paths: Vec<String> = links.iter().map(|(s, _)| s.clone()).collect();
        for ((spath, hpath), target) in links.into_iter().zip(self.readlinks(&paths).await) {
            match target {
                Ok(target) => {
                    replace_with_symlink(&target, &hpath).await?;
                    t.symlinks += 1;
                }
                Err(reason) => t.failed.push(Skipped {
                    path: spath,
                    reason,
                }),
            }
        }
        // Modes last (deepest first), so a read-only directory was still writable while filled.
        for (path, mode) in dir_modes.into_iter().rev() {
            let perms = std::fs::Permissions::from_mode(mode & PERMISSION_BITS);
            tokio::fs::set_permissions(&path, perms)
                .await
                .map_err(Error::host("chmod", &path))?;
        }
        Ok(t)
    }

    /// The targets of the symlinks at `paths`, in order; a failure says why for that link.
    async fn readlinks(&self, paths: &[String]) -> Vec<Result<String, String>> {
        if paths.is_empty() {
            return Vec::new();
        }
        // An exec in a paused sandbox would wait for its resume.
        if self
            .inspect()
            .await
            .is_ok_and(|info| info.state == "paused")
        {
            let paused = "the sandbox is paused, so its target cannot be read (resume it first)";
            return paths.iter().map(|_| Err(paused.to_owned())).collect();
        }
        let mut out = Vec::with_capacity(paths.len());
        for batch in paths.chunks(READLINK_BATCH) {
            match self.readlink_batch(batch).await {
                Ok(targets) if targets.len() == batch.len() => {
                    out.extend(targets.into_iter().map(Ok))
                }
                // Some link failed (or vanished): find out which, one at a time.
                Ok(_) | Err(_) if batch.len() > 1 => {
                    for path in batch {
                        out.push(
                            match self.readlink_batch(std::slice::from_ref(path)).await {
                                Ok(mut one) if one.len() == 1 => Ok(one.remove(0)),
                                Ok(_) => Err("its target could not be read".to_owned()),
                                Err(reason) => Err(reason),
                            },
                        );
                    }
                }
                Ok(_) => out.push(Err("its target could not be read".to_owned())),
                Err(reason) => out.push(Err(reason)),
            }
        }
        out
    }

    /// Runs `readlink -z -- PATHS...` in the sandbox: one target per path, if all succeed.
    async fn readlink_batch(&self, paths: &[String]) -> Result<Vec<String>, String> {
        let mut argv = vec!["readlink".to_owned(), "-z".to_owned(), "--".to_owned()];
        argv.extend(paths.iter().cloned());
        let exec = self.exec(argv).timeout(READLINK_PATIENCE).output();
        let out = match tokio::time::timeout(READLINK_PATIENCE * 2, exec).await {
            Err(_) => return Err("reading its target in the sandbox timed out".to_owned()),
            Ok(Err(err)) => return Err(format!("reading its target in the sandbox failed: {err}")),
            Ok(Ok(out)) => out,
        };
        if out.status.code != Some(0) {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "readlink in the sandbox failed (status {}): {}",
                out.status.shell_code(),
                stderr.trim()
            ));
        }
        let body = out.stdout.strip_suffix(b"\0").unwrap_or(&out.stdout);
        if body.is_empty() {
            return Ok(Vec::new());
        }
        body.split(|b| *b == 0)
            .map(|t| match std::str::from_utf8(t) {
                Ok(t) if !t.is_empty() => Ok(t.to_owned()),
                _ => Err("its target is empty or not UTF-8".to_owned()),
            })
            .collect()
    }
}

/// The names and paths of the entries of host directory `dir`, by name.
async fn host_entries(dir: &Path) -> Result<Vec<(std::ffi::OsString, PathBuf)>, Error> {
    let mut read = tokio::fs::read_dir(dir)
        .await
        .map_err(Error::host("list", dir))?;
    let mut entries = Vec::new();
    while let Some(entry) = read.next_entry().await.map_err(Error::host("list", dir))? {
        entries.push((entry.file_name(), entry.path()));
    }
    entries.sort();
    Ok(entries)
}

/// Makes the host directory `path`, or accepts an existing real directory (not a symlink).
async fn make_host_dir(path: &Path) -> Result<(), Error> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => {
            let err = io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a directory",
            );
            Err(Error::host("mkdir", path)(err))
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => tokio::fs::create_dir(path)
            .await
            .map_err(Error::host("mkdir", path)),
        Err(err) => Err(Error::host("stat", path)(err)),
    }
}

/// Makes `path` a symlink to `target`, replacing a file or symlink there (not a directory).
async fn replace_with_symlink(target: &str, path: &Path) -> Result<(), Error> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(meta) if meta.is_dir() => {
            let err = io::Error::new(io::ErrorKind::IsADirectory, "a directory is in the way");
            return Err(Error::host("symlink", path)(err));
        }
        Ok(_) => tokio::fs::remove_file(path)
            .await
            .map_err(Error::host("remove", path))?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(Error::host("stat", path)(err)),
    }
    tokio::fs::symlink(target, path)
        .await
        .map_err(Error::host("symlink", path))
}

/// The name of a listed entry (the daemon may give the name or the whole path). Anything that
/// could lead out of the directory being copied is refused.
fn entry_name(listed: &str) -> Result<&str, Error> {
    match listed.rsplit('/').next() {
        Some(name) if !name.is_empty() && name != "." && name != ".." && !name.contains('\0') => {
            Ok(name)
        }
        _ => Err(Error::Protocol(format!(
            "the daemon listed an invalid entry {listed:?}"
        ))),
    }
}

/// `dir/name` in the sandbox.
fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// A host directory's mode for the sandbox copy: its permission bits, and always owner `rwx`
/// so the copy can be filled.
fn dir_mode(mode: u32) -> u32 {
    (mode & PERMISSION_BITS) | 0o700
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        assert_eq!(entry_name("a").unwrap(), "a");
        assert_eq!(entry_name("/w/d/a.txt").unwrap(), "a.txt");
        for bad in ["", "/w/", ".", "..", "/w/..", "/w/."] {
            assert!(entry_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn joins() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/w/", "a"), "/w/a");
        assert_eq!(join("/w", "a"), "/w/a");
    }
}
