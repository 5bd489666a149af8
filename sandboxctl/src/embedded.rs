//! An embedded sandboxd for a single `run`, started when no daemon answers and the caller is
//! root: a private directory under `/run`, the daemon as a child with its own cgroup parent and
//! uid range, and everything removed again after the run.

use std::fs::{self, DirBuilder, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use agent_sdk::Client;
use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{geteuid, Pid};
use tokio::process::{Child, Command};

use crate::commands::CLIENT_NAME;

/// How long the daemon gets to answer its first connection.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often to try connecting meanwhile.
const POLL: Duration = Duration::from_millis(5);
/// How long the daemon gets to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of the daemon's log shown when it fails.
const LOG_TAIL: u64 = 4096;
/// Sandboxes the embedded daemon may hold at once.
const MAX_SANDBOXES: u32 = 16;

/// Whether `err` means "no daemon here" and we may start our own (only root can).
pub fn applies(err: &agent_sdk::Error) -> bool {
    err.is_no_daemon() && geteuid().is_root()
}

/// The first uid of the embedded daemon's range: 1024 slots of 16 sandboxes of 65536 ids each,
/// picked by pid, above where a system daemon would allocate.
fn uid_base(pid: u32) -> u64 {
    0x4800_0000 + u64::from(pid % 1024) * 16 * 65536
}

/// A running embedded daemon. [`Embedded::stop`] ends it and removes its directory; if the
/// handle is dropped instead, the daemon is still killed.
#[derive(Debug)]
pub struct Embedded {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    /// The log's tail was already shown.
    reported: bool,
}

impl Embedded {
    /// Creates the private directory and starts the daemon in it.
    pub fn spawn() -> anyhow::Result<Embedded> {
        let pid = std::process::id();
        let exe = find_sandboxd()?;
        let dir = PathBuf::from(format!("/run/sandboxctl-embedded-{pid}"));
        if dir.symlink_metadata().is_ok() {
            // Left behind by an earlier sandboxctl that had our pid and died.
            remove_tree(&dir).with_context(|| format!("removing stale {}", dir.display()))?;
        }
        // 0711: others may not list it, but a sandbox's unprivileged ids must traverse it to
        // reach the state directory where their root is assembled.
        DirBuilder::new()
            .mode(0o711)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        match Embedded::spawn_in(&exe, dir.clone(), pid) {
            Ok(embedded) => Ok(embedded),
            Err(err) => {
                let _ = remove_tree(&dir);
                Err(err)
            }
        }
    }

    fn spawn_in(exe: &Path, dir: PathBuf, pid: u32) -> anyhow::Result<Embedded> {
        let socket = dir.join("sandboxd.sock");
        let log = dir.join("sandboxd.log");
        let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let log_err = log_file.try_clone().context("duplicating the log file")?;
        let child = Command::new(exe)
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--cgroup-parent")
            .arg(format!("sandboxd-embedded-{pid}"))
            .arg("--uid-base")
            .arg(uid_base(pid).to_string())
            .arg("--max-sandboxes")
            .arg(MAX_SANDBOXES.to_string())
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            // Its own process group: a Ctrl-C at the terminal reaches sandboxctl, which
            // forwards it to the run, and not the daemon.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        Ok(Embedded {
            child,
            dir,
            socket,
            log,
            reported: false,
        })
    }

    /// Connects once the daemon answers, polling every 5 ms for up to 5 s.
    pub async fn connect(&mut self) -> anyhow::Result<Client> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("checking on sandboxd")? {
                self.print_log_tail();
                bail!("the embedded sandboxd exited before answering ({status})");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, Client::connect_as(&self.socket, CLIENT_NAME)).await {
                Ok(Ok(client)) => return Ok(client),
                Ok(Err(err)) if err.is_no_daemon() => {}
                Ok(Err(err)) => return Err(err).context("talking to the embedded sandboxd"),
                Err(_elapsed) => {}
            }
            if Instant::now() >= deadline {
                self.print_log_tail();
                bail!(
                    "the embedded sandboxd did not answer within {}s",
                    READY_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after 5 s) and removes its directory. Problems
    /// are reported on stderr only: they do not change the run's exit code.
    pub async fn stop(mut self) {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                if !self.reported {
                    eprintln!("sandboxctl: the embedded sandboxd exited early ({status})");
                    self.print_log_tail();
                }
            }
            _ => {
                if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                }
                if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
                    .await
                    .is_err()
                {
                    eprintln!("sandboxctl: the embedded sandboxd ignored SIGTERM; killing it");
                    let _ = self.child.kill().await;
                }
            }
        }
        if let Err(err) = remove_tree(&self.dir) {
            eprintln!("sandboxctl: removing {}: {err}", self.dir.display());
        }
    }

    fn print_log_tail(&mut self) {
        self.reported = true;
        match read_tail(&self.log, LOG_TAIL) {
            Ok(tail) if tail.trim().is_empty() => {
                eprintln!("sandboxctl: the embedded sandboxd's log is empty");
            }
            Ok(tail) => {
                eprintln!("sandboxctl: end of {}:", self.log.display());
                eprint!("{tail}");
                if !tail.ends_with('\n') {
                    eprintln!();
                }
            }
            Err(err) => eprintln!("sandboxctl: reading {}: {err}", self.log.display()),
        }
    }
}

/// `sandboxd` next to the running executable, else on `PATH`.
fn find_sandboxd() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the sandboxctl executable")?;
    let beside = exe.parent().map(|dir| dir.join("sandboxd"));
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|dir| dir.join("sandboxd"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(on_path)
        .find(|p| is_executable(p))
        .with_context(|| format!("cannot find sandboxd next to {} or on PATH", exe.display()))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The last `max` bytes of the file, from the first whole line.
fn read_tail(path: &Path, max: u64) -> io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if start > 0 {
        if let Some(nl) = text.find('\n') {
            return Ok(text[nl + 1..].to_string());
        }
    }
    Ok(text)
}

/// Removes `root` and everything under it without crossing into another filesystem: a mount
/// the daemon left behind (a bound host folder) is left alone and makes the removal fail,
/// rather than having its host files deleted.
fn remove_tree(root: &Path) -> io::Result<()> {
    if let Some(mount) = mounts_under(root)?.first() {
        return Err(io::Error::other(format!(
            "{mount} is still mounted; not removing it"
        )));
    }
    let dev = fs::symlink_metadata(root)?.dev();
    remove_within(root, dev)
}

/// Mount points at or below `root`, from `/proc/self/mountinfo` (its fifth field).
fn mounts_under(root: &Path) -> io::Result<Vec<String>> {
    let root = root.to_string_lossy();
    let root = root.trim_end_matches('/');
    let inside = |mount: &str| {
        mount
            .strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    let info = match fs::read_to_string("/proc/self/mountinfo") {
        Ok(info) => info,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    Ok(info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|mount| inside(mount))
        .map(str::to_string)
        .collect())
}

fn remove_within(path: &Path, dev: u64) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return fs::remove_file(path);
    }
    if meta.dev() != dev {
        return Err(io::Error::other(format!(
            "{} is a mount point; not removing what is under it",
            path.display()
        )));
    }
    for entry in fs::read_dir(path)? {
        remove_within(&entry?.path(), dev)?;
    }
    fs::remove_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_bases_stay_in_range() {
        assert_eq!(uid_base(0), 0x4800_0000);
        assert_eq!(uid_base(1), 0x4800_0000 + 0x10_0000);
        assert_eq!(uid_base(1024), uid_base(0));
        // The last slot's 16 ranges of 65536 ids still fit in a u32.
        assert!(uid_base(1023) + 16 * 65536 <= u64::from(u32::MAX));
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sandboxctl-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn removes_a_tree_but_not_through_symlinks() {
        let outside = scratch("outside");
        fs::write(outside.join("keep"), "x").unwrap();
        let dir = scratch("tree");
        fs::create_dir_all(dir.join("state/a/b")).unwrap();
        fs::write(dir.join("state/a/b/f"), "x").unwrap();
        fs::write(dir.join("sandboxd.log"), "log").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("state/link")).unwrap();
        remove_tree(&dir).unwrap();
        assert!(!dir.exists());
        assert!(outside.join("keep").exists());
        fs::remove_dir_all(outside).unwrap();
    }

    #[test]
    fn finds_mounts_under_a_root() {
        assert!(mounts_under(Path::new("/proc"))
            .unwrap()
            .contains(&"/proc".to_string()));
        assert!(mounts_under(Path::new("/pro")).unwrap().is_empty());
        assert!(mounts_under(&scratch("nomounts")).unwrap().is_empty());
    }

    #[test]
    fn log_tail_starts_at_a_line() {
        let dir = scratch("log");
        let log = dir.join("sandboxd.log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        fs::write(&log, &text).unwrap();
        let tail = read_tail(&log, 30).unwrap();
        assert!(tail.starts_with("line "), "{tail:?}");
        assert!(tail.ends_with("line 99\n"));
        assert!(tail.len() <= 30);
        assert_eq!(read_tail(&log, 1 << 20).unwrap(), text);
        fs::remove_dir_all(dir).unwrap();
    }
}
